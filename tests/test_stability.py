"""Stability AI's v2beta Stable Image API through the emulator over real HTTP: generate (Core, Ultra, SD 3.5) and
inpaint, upscale and sketch through the client, sync and async (the upscalers and sketch control also at the provider
level); prices, refusals, retries, typed errors before sending, and no secret in any message."""

from __future__ import annotations

import asyncio
import io
import os
from decimal import Decimal
from typing import Any, cast

import pytest

import genai_sdk as genai
from genai_sdk.testing import Emulator
from genai_sdk.testing._api_stability import StabilityApi  # the emulator's Stability module, for its controls
from genai_sdk.testing._media_maker import make_image

pytest.importorskip("httpx", reason="the Stability tests need httpx: pip install -e '.[dev]'")

CORE = "stability:stable-image-core"
GENERATE = [
    ("stable-image-core", "core", None),
    ("stable-image-ultra", "ultra", None),
    ("sd3.5-large", "sd3", "sd3.5-large"),
    ("sd3.5-large-turbo", "sd3", "sd3.5-large-turbo"),
    ("sd3.5-medium", "sd3", "sd3.5-medium"),
]


def _stability(emulator: Emulator) -> StabilityApi:
    return cast(StabilityApi, emulator.api("stability"))


def _client(**kwargs: Any) -> genai.Client:
    return genai.Client(ledger="memory://", **kwargs)


def _price(client: genai.Client, model: str) -> Decimal:
    info = client.catalog.get(model)
    assert info is not None and info.price is not None
    found = info.price.lookup(None, None)
    assert found is not None
    return found


def _picture(width: int, height: int, *, alpha: bool = False, fmt: str = "png") -> genai.Image:
    return genai.Image.from_bytes(make_image(f"input {width}x{height}", width, height, fmt=fmt, transparent=alpha))


def _provider(client: genai.Client) -> Any:
    from genai_sdk.providers.stability import StabilityProvider

    return StabilityProvider(client.settings, os.environ)


def _ctx(key: str = "call-1") -> Any:
    from genai_sdk.providers.base import CallContext

    return CallContext(idempotency_key=key, timeout=60.0, attempt=0)


def _charged(client: genai.Client, model: str, batch: Any) -> genai.Cost:
    """What the pipeline's pricing makes of a provider-level answer (called outside the pipeline, nothing charges it)."""
    from genai_sdk.credits._pricing import Pricing

    info = client.catalog.get(model)
    assert info is not None
    cost, notice = Pricing(client.settings.credits_per_usd).cost(info, batch.usage(), estimated=False)
    assert notice is None
    return cost


# -- images.generate ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "service", "sd3_model"), GENERATE)
def test_each_generate_model_is_asked_as_the_reference_says_and_charged_its_catalog_price(
    genai_emulator: Emulator, name: str, service: str, sd3_model: str | None
) -> None:
    client = _client()
    model = f"stability:{name}"
    result = client.images.generate("an avocado couch", model=model, size="1344x768", seed=7, negative_prompt="rain",
                                    style="photographic")  # fmt: skip
    assert result.image.size == (1344, 768) and result.image.media_type == "image/png"
    (call,) = genai_emulator.calls("stability.generate")
    assert call.path == f"/v2beta/stable-image/generate/{service}"
    assert call.headers["authorization"] == f"Bearer {genai_emulator.api_key}"
    assert call.headers["accept"] == "application/json"
    expected = {"prompt": "an avocado couch", "negative_prompt": "rain", "seed": "7", "style_preset": "photographic",
                "output_format": "png", "aspect_ratio": "16:9"}  # fmt: skip
    if sd3_model is not None:
        expected["model"] = sd3_model
    assert call.form == expected and call.files == {}
    assert result.warnings == []
    assert result.cost.usd == _price(client, model) and not result.cost.estimated, "the catalog's price, per picture"
    [entry] = client.credits.history()
    assert entry.kind == "charge" and entry.credits == -result.cost.credits


def test_the_catalog_prices_are_stabilitys_credits_at_a_cent_each() -> None:
    client = _client()
    credits = {"stable-image-core": "3", "stable-image-ultra": "8", "sd3.5-large": "6.5", "sd3.5-large-turbo": "4",
               "sd3.5-medium": "3.5", "inpaint": "5", "upscale-fast": "2", "upscale-conservative": "40", "sketch": "5"}  # fmt: skip
    for name, count in credits.items():
        assert _price(client, f"stability:{name}") == Decimal(count) / 100, name


def test_several_pictures_are_one_request_each_and_guidance_reaches_sd3(genai_emulator: Emulator) -> None:
    client = _client()
    result = client.images.generate("a fox", model="stability:sd3.5-medium", n=3, guidance=4.5)
    calls = genai_emulator.calls("stability.generate")
    assert len(result.images) == 3 and len(calls) == 3
    assert {c.form["cfg_scale"] for c in calls} == {"4.5"}
    assert result.cost.usd == Decimal("0.105")
    core = client.images.generate("a fox", model=CORE, guidance=4.5)
    assert "cfg_scale" not in genai_emulator.calls("stability.generate")[-1].form
    assert any("guidance" in w for w in core.warnings), "Core takes no guidance: said, not silently dropped"


@pytest.mark.parametrize(("fmt", "media_type"), [("jpeg", "image/jpeg"), ("webp", "image/webp")])
def test_output_format_asks_for_jpeg_or_webp(genai_emulator: Emulator, fmt: str, media_type: str) -> None:
    result = _client().images.generate("a fox", model=CORE, provider_options={"stability": {"output_format": fmt}})
    assert result.image.media_type == media_type
    assert genai_emulator.calls("stability.generate")[0].form["output_format"] == fmt


def test_bad_input_is_refused_before_anything_is_sent(genai_emulator: Emulator) -> None:
    client = _client()
    with pytest.raises(genai.InvalidRequestError, match="1000x1000"):
        client.images.generate("a fox", model=CORE, size="1000x1000")
    with pytest.raises(genai.InvalidRequestError, match="png or jpeg"):
        client.images.generate(
            "a fox", model="stability:sd3.5-large", provider_options={"stability": {"output_format": "webp"}}
        )
    with pytest.raises(genai.InvalidRequestError, match="output_format"):
        client.images.generate("a fox", model=CORE, provider_options={"stability": {"output_format": "gif"}})
    with pytest.raises(genai.InvalidRequestError, match="did you mean 'output_format'"):
        client.images.generate("a fox", model=CORE, provider_options={"stability": {"output_fmt": "png"}})
    with pytest.raises(genai.InvalidRequestError, match="style='watercolour'"):
        client.images.generate("a fox", model=CORE, style="watercolour")
    with pytest.raises(genai.InvalidRequestError, match="at most 10000"):
        client.images.generate("a fox " * 2000, model=CORE)
    with pytest.raises(genai.UnsupportedError, match="cannot do images.edit"):
        client.images.edit(_picture(128, 128), "a door", model=CORE)
    assert genai_emulator.calls() == [] and client.credits.history() == []


# -- images.edit: inpaint -------------------------------------------------------------------------------------------


def test_inpaint_sends_the_image_and_mask_and_keeps_the_inputs_size(genai_emulator: Emulator) -> None:
    client = _client()
    image, mask = _picture(320, 256), _picture(320, 256)
    result = client.images.edit(image, "a red door", mask=mask, model="stability:inpaint", seed=11,
                                provider_options={"stability": {"grow_mask": 8}})  # fmt: skip
    (call,) = genai_emulator.calls("stability.inpaint")
    assert call.path == "/v2beta/stable-image/edit/inpaint"
    assert call.files == {"image": [image.data], "mask": [mask.data]}
    assert call.form == {"prompt": "a red door", "seed": "11", "output_format": "png", "grow_mask": "8"}
    assert result.image.size == (320, 256)
    assert result.cost.usd == Decimal("0.05") == _price(client, "stability:inpaint")


def test_inpaint_takes_the_alpha_channel_as_the_mask_and_refuses_an_image_without_one(genai_emulator: Emulator) -> None:
    client = _client()
    with pytest.raises(genai.InvalidRequestError, match="needs a mask"):
        client.images.edit(_picture(256, 256), "a red door", model="stability:inpaint")
    with pytest.raises(genai.InvalidRequestError, match="every side at least 64"):
        client.images.edit(_picture(48, 256), "a red door", mask=_picture(48, 256), model="stability:inpaint")
    with pytest.raises(genai.InvalidRequestError, match="grow_mask"):
        client.images.edit(_picture(256, 256), "a door", mask=_picture(256, 256), model="stability:inpaint",
                           provider_options={"stability": {"grow_mask": 500}})  # fmt: skip
    assert genai_emulator.calls() == []
    result = client.images.edit(_picture(256, 256, alpha=True), "a red door", model="stability:inpaint")
    (call,) = genai_emulator.calls("stability.inpaint")
    assert set(call.files) == {"image"} and result.image.size == (256, 256)


# -- refusals, errors and retries -----------------------------------------------------------------------------------


def test_moderation_refuses_the_prompt_recorded_not_charged_not_retried(genai_emulator: Emulator) -> None:
    client = _client(max_retries=3)
    with pytest.raises(genai.ContentPolicyError, match="content moderation") as raised:
        client.images.generate("a blockedword on a wall", model=CORE)
    assert raised.value.source == "provider" and raised.value.stage == "prompt"
    assert [c.status for c in genai_emulator.calls("stability.generate")] == [403], "a refusal is not retried"
    assert [(e.kind, e.credits) for e in client.credits.history()] == [("refusal", Decimal(0))]
    assert client.credits.reserved() == 0


def test_a_filtered_picture_is_an_output_refusal_and_is_not_charged(genai_emulator: Emulator) -> None:
    client = _client()
    with pytest.raises(genai.ContentPolicyError, match="CONTENT_FILTERED") as raised:
        client.images.edit(_picture(256, 256), "a blockedpicture", mask=_picture(256, 256), model="stability:inpaint")
    assert raised.value.source == "provider" and raised.value.stage == "output"
    assert [(e.kind, e.credits) for e in client.credits.history()] == [("refusal", Decimal(0))]
    assert _stability(genai_emulator).spent == 0, "Stability does not bill it either"


def test_rate_limits_and_server_errors_are_retried_and_charged_once(genai_emulator: Emulator) -> None:
    client = _client(max_retries=3)
    genai_emulator.fail("stability.generate", "rate_limit", retry_after=0.1)
    genai_emulator.fail("stability.generate", "server_error")
    genai_emulator.fail("stability.generate", "unavailable")
    result = client.images.generate("a fox", model=CORE)
    assert [c.status for c in genai_emulator.calls("stability.generate")] == [429, 500, 503, 200]
    assert [e.kind for e in client.credits.history()] == ["charge"] and result.cost.usd == Decimal("0.03")


def test_rate_limit_after_retries_is_a_rate_limit_error(genai_emulator: Emulator) -> None:
    genai_emulator.fail("stability.generate", "rate_limit", times=5, retry_after=0.01)
    client = _client(max_retries=1)
    with pytest.raises(genai.RateLimitError, match="rate limit") as raised:
        client.images.generate("a fox", model=CORE)
    assert raised.value.status == 429 and client.credits.history() == []


def test_payment_required_is_final_and_says_to_buy_credits(genai_emulator: Emulator) -> None:
    _stability(genai_emulator).credits = 2.0  # fewer than Core's 3
    client = _client(max_retries=3)
    with pytest.raises(genai.RateLimitError, match="credits are spent") as raised:
        client.images.generate("a fox", model=CORE)
    assert raised.value.status == 402 and not raised.value.retryable
    assert len(genai_emulator.calls("stability.generate")) == 1 and client.credits.history() == []


def test_a_wrong_key_is_an_authentication_error_that_never_shows_the_key(
    genai_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-StabilityNotTheRightKey0123456789"
    monkeypatch.setenv("STABILITY_API_KEY", secret)
    client = _client()
    with pytest.raises(genai.AuthenticationError, match="check STABILITY_API_KEY") as raised:
        client.images.generate("a fox", model=CORE)
    assert secret not in str(raised.value) and secret not in repr(raised.value)
    assert "[redacted]" in genai.ProviderError(f"echo {secret}").message
    monkeypatch.delenv("STABILITY_API_KEY")
    with pytest.raises(genai.ConfigError, match="STABILITY_API_KEY") as missing:
        _client().images.generate("a fox", model=CORE)
    assert secret not in str(missing.value)


@pytest.mark.parametrize("fault", ["lost_answer", "malformed_json"])
def test_an_answer_lost_after_sending_is_spent_not_asked_for_again(genai_emulator: Emulator, fault: str) -> None:
    genai_emulator.fail("stability.generate", fault)
    client = _client(max_retries=3)
    with pytest.raises(genai.ProviderError) as raised:
        client.images.generate("a fox", model=CORE)
    assert not raised.value.retryable and len(genai_emulator.calls("stability.generate")) == 1
    assert [(e.kind, e.usd) for e in client.credits.history()] == [("spent", Decimal("0.03"))]


def test_stability_error_bodies_map_to_the_sdks_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    monkeypatch.setenv("STABILITY_API_KEY", "sk-0123456789abcdefXYZ")
    monkeypatch.setenv("STABILITY_BASE_URL", "http://127.0.0.1:9")
    provider = _provider(_client())

    def error(status: int, body: object) -> Any:
        request = httpx.Request("POST", "http://127.0.0.1:9/v2beta/stable-image/generate/core")
        return provider._error(httpx.Response(status, json=body, request=request))

    refused = error(403, {"id": "a1", "name": "content_moderation", "errors": ["flagged"]})
    assert isinstance(refused, genai.ContentPolicyError) and refused.request_id == "a1"
    bad = error(400, {"id": "b2", "name": "bad_request", "errors": ["aspect_ratio: bad", "seed: bad"]})
    assert isinstance(bad, genai.InvalidRequestError) and "aspect_ratio: bad; seed: bad" in str(bad)
    echoed = error(401, {"name": "unauthorized", "errors": ["bad key sk-0123456789abcdefXYZ"]})
    assert isinstance(echoed, genai.AuthenticationError) and "sk-0123456789abcdefXYZ" not in str(echoed)
    assert isinstance(error(413, {"name": "payload_too_large", "errors": ["too big"]}), genai.InvalidRequestError)
    assert isinstance(error(502, ["not an object"]), genai.ProviderUnavailableError)
    assert isinstance(error(404, {"name": "not_found", "errors": ["no"]}), genai.ConfigError)
    provider.close()


# -- async ----------------------------------------------------------------------------------------------------------


def test_async_generate_and_inpaint(genai_emulator: Emulator) -> None:
    async def main() -> None:
        async with genai.AsyncClient(ledger="memory://") as client:
            result = await client.images.generate("an async fox", model="stability:stable-image-ultra", n=2)
            assert len(result.images) == 2 and result.cost.usd == Decimal("0.16")
            edited = await client.images.edit(_picture(256, 192), "a red door", mask=_picture(256, 192),
                                              model="stability:inpaint")  # fmt: skip
            assert edited.image.size == (256, 192) and edited.cost.usd == Decimal("0.05")
            assert [e.kind for e in await client.credits.history()] == ["charge", "charge"]

    asyncio.run(main())
    assert len(genai_emulator.calls("stability.generate")) == 2 and len(genai_emulator.calls("stability.inpaint")) == 1


# -- upscale and sketch: the provider's own operations ---------------------------------------------------------------


def test_fast_upscale_makes_four_times_the_picture(genai_emulator: Emulator) -> None:
    client = _client()
    provider, model = _provider(client), client.catalog.get("stability:upscale-fast")
    try:
        batch = provider.upscale(model, _picture(128, 96), _ctx(), options={"output_format": "webp"})
    finally:
        provider.close()
    assert batch.images[0].size == (512, 384) and batch.images[0].media_type == "image/webp"
    (call,) = genai_emulator.calls("stability.upscale")
    assert call.path == "/v2beta/stable-image/upscale/fast" and call.form == {"output_format": "webp"}
    assert _charged(client, "stability:upscale-fast", batch).usd == Decimal("0.02")


def test_conservative_upscale_needs_a_prompt_and_reaches_four_megapixels(genai_emulator: Emulator) -> None:
    client = _client()
    provider, model = _provider(client), client.catalog.get("stability:upscale-conservative")
    try:
        with pytest.raises(genai.InvalidRequestError, match="needs a prompt"):
            provider.upscale(model, _picture(128, 128), _ctx())
        with pytest.raises(genai.InvalidRequestError, match="creativity"):
            provider.upscale(model, _picture(128, 128), _ctx(), prompt="a flower", options={"creativity": 0.9})
        with pytest.raises(genai.InvalidRequestError, match="does not apply to images.upscale"):
            provider.upscale(model, _picture(128, 128), _ctx(), prompt="a flower", options={"grow_mask": 3})
        fast = client.catalog.get("stability:upscale-fast")
        with pytest.raises(genai.InvalidRequestError, match="between 32 and 1536"):
            provider.upscale(fast, _picture(1600, 64), _ctx())
        assert genai_emulator.calls() == []
        batch = provider.upscale(model, _picture(128, 128), _ctx(), prompt="a flower", seed=5,
                                 options={"creativity": 0.3})  # fmt: skip
    finally:
        provider.close()
    assert batch.images[0].size == (2048, 2048) and batch.seed == 5
    (call,) = genai_emulator.calls("stability.upscale")
    assert call.form == {"output_format": "png", "prompt": "a flower", "seed": "5", "creativity": "0.3"}
    assert _charged(client, "stability:upscale-conservative", batch).usd == Decimal("0.40")


def test_sketch_control_sync_and_async(genai_emulator: Emulator) -> None:
    client = _client()
    provider, model = _provider(client), client.catalog.get("stability:sketch")
    sketch = _picture(320, 240)
    try:
        batch = provider.sketch(model, sketch, "a castle on a hill", _ctx(), style="fantasy-art",
                                options={"control_strength": 0.6})  # fmt: skip
        with pytest.raises(genai.InvalidRequestError, match="control_strength"):
            provider.sketch(model, sketch, "a castle", _ctx(), options={"control_strength": 2})
        with pytest.raises(genai.InvalidRequestError, match="style='watercolour'"):
            provider.sketch(model, sketch, "a castle", _ctx(), style="watercolour")

        async def main() -> Any:
            try:
                return await provider.asketch(model, sketch, "an async castle", _ctx("call-2"))
            finally:
                await provider.aclose()

        later = asyncio.run(main())
    finally:
        provider.close()
    assert batch.images[0].size == (320, 240) == later.images[0].size
    calls = genai_emulator.calls("stability.sketch")
    assert [c.path for c in calls] == ["/v2beta/stable-image/control/sketch"] * 2
    assert calls[0].form == {"prompt": "a castle on a hill", "style_preset": "fantasy-art", "control_strength": "0.6",
                             "output_format": "png"}  # fmt: skip
    assert calls[0].files == {"image": [sketch.data]}
    assert _charged(client, "stability:sketch", batch).usd == Decimal("0.05")


def test_async_upscale_and_provider_level_refusals_and_retryable_errors(genai_emulator: Emulator) -> None:
    client = _client()
    provider, model = _provider(client), client.catalog.get("stability:upscale-conservative")

    async def main() -> Any:
        try:
            upscaled = await provider.aupscale(model, _picture(100, 100), _ctx(), prompt="a flower")
            with pytest.raises(genai.ContentPolicyError) as refused:
                await provider.aupscale(model, _picture(100, 100), _ctx("call-2"), prompt="a blockedword flower")
            genai_emulator.fail("stability.upscale", "rate_limit", retry_after=2)
            with pytest.raises(genai.RateLimitError) as limited:
                await provider.aupscale(model, _picture(100, 100), _ctx("call-3"), prompt="a flower")
            return upscaled, refused.value, limited.value
        finally:
            await provider.aclose()

    upscaled, refused, limited = asyncio.run(main())
    assert upscaled.images[0].width * upscaled.images[0].height == pytest.approx(4_194_304, rel=0.01)
    assert refused.stage == "prompt" and refused.source == "provider"
    assert limited.retryable and limited.retry_after == 2, "the provider classifies; the pipeline retries"


def test_the_emulator_answers_image_bytes_when_asked_for_them(genai_emulator: Emulator) -> None:
    import httpx
    from PIL import Image as PILImage

    answer = httpx.post(
        f"{genai_emulator.url}/v2beta/stable-image/generate/core",
        headers={"Authorization": f"Bearer {genai_emulator.api_key}", "Accept": "image/*"},
        files={"prompt": (None, "a fox"), "aspect_ratio": (None, "9:21"), "output_format": (None, "jpeg")},
    )
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"
    assert answer.headers["finish-reason"] == "SUCCESS" and int(answer.headers["seed"]) > 0
    assert PILImage.open(io.BytesIO(answer.content)).size == (640, 1536)
    bad = httpx.post(f"{genai_emulator.url}/v2beta/stable-image/generate/sd3",
                     headers={"Authorization": f"Bearer {genai_emulator.api_key}"},
                     files={"prompt": (None, "a fox"), "model": (None, "sd9")})  # fmt: skip
    assert bad.status_code == 400 and bad.json()["name"] == "bad_request" and "model" in bad.json()["errors"][0]


# -- upscale and sketch through the client: the one path -------------------------------------------------------------


def test_client_upscale_is_checked_reserved_and_charged_once(genai_emulator: Emulator) -> None:
    client = genai.Client(ledger="memory://")
    result = client.images.upscale(_picture(128, 96), model="stability:upscale-fast")
    assert result.image.size == (512, 384) and result.cost.usd == Decimal("0.02")
    assert [e.kind for e in client.credits.history()] == ["charge"] and client.credits.reserved() == 0
    assert len(genai_emulator.calls("stability.upscale")) == 1
    careful = client.images.upscale(_picture(128, 128), model="stability:upscale-conservative", prompt="a red flower")
    assert careful.cost.usd == Decimal("0.40") and careful.image.size[0] > 1024
    for call, message in [
        (lambda: client.images.upscale(_picture(128, 96), model="stability:upscale-fast", scale=2), "4 times larger"),
        (lambda: client.images.upscale(_picture(128, 96), model="stability:upscale-conservative"), "needs a prompt"),
        (lambda: client.images.upscale(_picture(128, 96), model="stability:upscale-fast", n=2), "one picture"),
        (lambda: client.images.upscale(_picture(128, 96), model="stability:upscale-fast", scale=9), "from 2 to 8"),
        (lambda: client.images.upscale(_picture(2000, 64), model="stability:upscale-fast"), "1536"),
    ]:
        with pytest.raises(genai.InvalidRequestError, match=message):
            call()
    with pytest.raises(genai.UnsupportedError):
        client.images.upscale(_picture(128, 96), model="stability:stable-image-core")
    with pytest.raises(genai.ContentPolicyError):
        client.images.upscale(_picture(128, 128), model="stability:upscale-conservative", prompt="a nude statue")
    assert len(genai_emulator.calls("stability.upscale")) == 2  # nothing refused was sent


def test_client_from_sketch_makes_each_picture_at_the_sketchs_size(genai_emulator: Emulator) -> None:
    client = genai.Client(ledger="memory://")
    result = client.images.from_sketch(_picture(320, 192), "a castle on a hill", model="stability:sketch", n=2,
                                       style="line-art", seed=7)  # fmt: skip
    assert [image.size for image in result.images] == [(320, 192), (320, 192)]
    assert result.cost.usd == Decimal("0.10") and len(genai_emulator.calls("stability.sketch")) == 2
    with pytest.raises(genai.InvalidRequestError, match="size= is not taken"):
        client.images.from_sketch(_picture(320, 192), "a castle", model="stability:sketch", size="512x512")
    with pytest.raises(genai.InvalidRequestError, match="style"):
        client.images.from_sketch(_picture(320, 192), "a castle", model="stability:sketch", style="nope")
    assert len(genai_emulator.calls("stability.sketch")) == 2


def test_async_upscale_and_sketch(genai_emulator: Emulator) -> None:
    async def main() -> tuple[genai.ImageResult, genai.ImageResult]:
        async with genai.AsyncClient(ledger="memory://") as client:
            big = await client.images.upscale(_picture(64, 64), model="stability:upscale-fast")
            drawn = await client.images.from_sketch(_picture(256, 256), "a boat", model="stability:sketch")
            return big, drawn

    big, drawn = asyncio.run(main())
    assert big.image.size == (256, 256) and drawn.image.size == (256, 256)


def test_genai_upscale_and_sketch_commands(
    genai_emulator: Emulator, tmp_path: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from genai_sdk.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GENAI_LEDGER", "memory://")
    _picture(96, 64).save(tmp_path / "small.png")
    assert main(["upscale", "small.png", "--model", "stability:upscale-fast", "-o", "big.png"]) == 0, capsys.readouterr().err
    assert genai.Image.from_path(tmp_path / "big.png").size == (384, 256)
    assert main(["sketch", "small.png", "-p", "a castle", "--style", "line-art", "--model", "stability:sketch",
                 "-o", "castle{i}.png", "-n", "2"]) == 0  # fmt: skip
    assert sorted(p.name for p in tmp_path.glob("castle*.png")) == ["castle0.png", "castle1.png"]
    assert genai_emulator.calls("stability.sketch")[0].form["style_preset"] == "line-art"
    assert main(["upscale", "small.png", "--model", "stability:upscale-fast", "--estimate"]) == 0
    assert "0.02" in capsys.readouterr().out and len(genai_emulator.calls("stability.upscale")) == 1
    assert main(["upscale", "small.png", "--model", "stability:upscale-fast", "--scale", "3", "-o", "x.png"]) == 2
    assert "4 times larger" in capsys.readouterr().err
