"""The OpenAI images provider, through the emulator over real HTTP."""

import io
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image as PILImage

import genai_sdk as genai
from genai_sdk.providers.openai import map_error
from genai_sdk.testing import Emulator


def _picture(size: tuple[int, int] = (64, 64), mode: str = "RGB", colour: tuple[int, ...] = (200, 30, 30)) -> PILImage.Image:
    return PILImage.new(mode, size, colour)


def test_generate_dalle2_asks_for_base64(client: genai.Client, genai_emulator: Emulator) -> None:
    result = client.images.generate("an avocado couch", n=4, size="512x512")
    (call,) = genai_emulator.calls("images.generate")
    assert call.json == {"model": "dall-e-2", "n": 4, "prompt": "an avocado couch", "size": "512x512",
                         "response_format": "b64_json"}  # the model's only quality goes unsaid
    assert [i.size for i in result.images] == [(512, 512)] * 4
    assert len({i.data for i in result.images}) == 4, "each image differs"
    assert result.model == "openai:dall-e-2"
    assert result.request_ids[0].startswith("req_")
    assert result.images[0].provenance["request_id"] == result.request_ids[0]


def test_images_differ_per_prompt_and_repeat_per_prompt(client: genai.Client) -> None:
    a = client.images.generate("a red fox", size="256x256").image
    b = client.images.generate("a blue whale", size="256x256").image
    again = client.images.generate("a red fox", size="256x256").image
    assert a.data == again.data and a.data != b.data
    pa, pb = a.to_pil().convert("RGB"), b.to_pil().convert("RGB")
    assert pa.getpixel((128, 200)) != pb.getpixel((128, 200))


def test_url_results_are_downloaded_at_once(client: genai.Client, genai_emulator: Emulator) -> None:
    result = client.images.generate("a couch", n=2, size="256x256", provider_options={"openai": {"response_format": "url"}})
    assert [i.media_type for i in result.images] == ["image/png"] * 2
    assert genai_emulator.calls("images.generate")[0].json["response_format"] == "url"


def test_download_size_cap(client: genai.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from genai_sdk.providers import openai as provider_module

    monkeypatch.setattr(provider_module, "MAX_DOWNLOAD_BYTES", 100)
    with pytest.raises(genai.ProviderError, match="cap of 100 bytes") as caught:
        client.images.generate("a couch", size="256x256", provider_options={"openai": {"response_format": "url"}})
    assert not caught.value.retryable  # the image was made: asking again would pay for another
    # The image was made and billed, then refused: the spending is recorded, not charged as a delivered result.
    [entry] = client.credits.history()
    assert entry.kind == "spent" and entry.credits < 0 and "not delivered" in entry.reason
    assert client.credits.reserved() == 0


def test_gpt_image_options_and_formats(client: genai.Client, genai_emulator: Emulator) -> None:
    result = client.images.generate(
        "a couch", model="openai:gpt-image-1-mini", size="1536x1024", quality="low",
        provider_options={"openai": {"output_format": "webp", "background": "opaque"}},
    )
    call = genai_emulator.calls("images.generate")[0].json
    assert call["output_format"] == "webp" and "response_format" not in call
    assert result.image.media_type == "image/webp" and result.image.size == (1536, 1024)
    assert result.cost.usd == Decimal("0.006")


def test_edit_with_mask_converts_to_rgba_png(client: genai.Client, genai_emulator: Emulator, tmp_path: Path) -> None:
    source = tmp_path / "room.jpg"
    _picture((128, 128)).save(source, format="JPEG")
    mask = _picture((128, 128), "RGBA", (0, 0, 0, 0))
    result = client.images.edit(str(source), "add a lamp", mask=mask, n=2, size="256x256")
    call = genai_emulator.calls("images.edit")[0]
    sent = PILImage.open(io.BytesIO(call.files["image"][0]))
    assert sent.format == "PNG" and sent.mode == "RGBA"
    assert PILImage.open(io.BytesIO(call.files["mask"][0])).mode == "RGBA"
    assert call.form["prompt"] == "add a lamp" and call.form["n"] == "2"
    assert len(result.images) == 2 and result.cost.usd == Decimal("0.032")


def test_edit_combines_several_images(client: genai.Client, genai_emulator: Emulator) -> None:
    a, b = genai.Image.from_pil(_picture()), _picture(colour=(0, 0, 255))
    result = client.images.edit([a, b], "put both on a shelf", model="openai:gpt-image-1.5", quality="medium")
    call = genai_emulator.calls("images.edit")[0]
    assert len(call.files.get("image[]", []) + call.files.get("image", [])) == 2
    assert result.image.size == (1024, 1024) and result.cost.usd == Decimal("0.034")


def test_variations(client: genai.Client, genai_emulator: Emulator) -> None:
    result = client.images.variations(_picture((256, 256)), n=3, size="256x256")
    call = genai_emulator.calls("images.variations")[0]
    assert call.form["n"] == "3" and "prompt" not in call.form
    assert len(result.images) == 3 and result.cost.usd == Decimal("0.048")


def test_moderation_blocked_on_gpt_image(client: genai.Client) -> None:
    with pytest.raises(genai.ContentPolicyError) as info:
        client.images.generate("a forbidden scene", model="openai:gpt-image-1.5")
    # gpt-image models say at which stage and for what: moderation_details
    assert (info.value.stage, info.value.source, info.value.categories) == ("prompt", "provider", ["violence"])


def test_wrong_key_is_an_authentication_error_without_the_key(genai_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-proj-ThisIsMySecretKey1234567890"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    client = genai.Client(image="openai:dall-e-2")
    with pytest.raises(genai.AuthenticationError) as info:
        client.images.generate("a couch")
    assert info.value.status == 401 and info.value.request_id
    assert "OPENAI_API_KEY" in str(info.value)
    for text in (str(info.value), repr(info.value), repr(client), repr(client._pipeline.providers.get("openai"))):
        assert secret not in text and "SecretKey" not in text
    assert len(genai_emulator.calls()) == 1


def _status_error(status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> Exception:
    import httpx2
    import openai

    request = httpx2.Request("POST", "http://127.0.0.1/v1/images/generations")
    response = httpx2.Response(status, headers={"x-request-id": "req_123", **(headers or {})}, request=request)
    return openai.APIStatusError("error", response=response, body=body)


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "retryable"),
    [
        (400, {"code": "content_policy_violation", "type": "invalid_request_error", "message": "no"}, {}, genai.ContentPolicyError, None),
        (400, {"code": "moderation_blocked", "type": "image_generation_user_error", "message": "no"}, {}, genai.ContentPolicyError, None),
        (400, {"code": None, "type": "invalid_request_error", "message": "bad size"}, {}, genai.ProviderError, False),
        (401, {"code": "invalid_api_key", "type": "invalid_request_error", "message": "no"}, {}, genai.AuthenticationError, False),
        (403, {"code": None, "type": "invalid_request_error", "message": "no"}, {}, genai.AuthenticationError, False),
        (408, {"message": "timeout"}, {}, genai.ProviderUnavailableError, True),
        (409, {"message": "conflict"}, {}, genai.ProviderError, True),
        (429, {"code": "rate_limit_exceeded", "type": "requests", "message": "slow down"}, {"retry-after": "2"}, genai.RateLimitError, True),
        (429, {"code": "insufficient_quota", "type": "insufficient_quota", "message": "pay"}, {}, genai.RateLimitError, False),
        (500, {"message": "oops"}, {}, genai.ProviderUnavailableError, True),
        (503, {"message": "busy"}, {"x-should-retry": "false"}, genai.ProviderUnavailableError, False),
        (400, {"message": "try again"}, {"x-should-retry": "true"}, genai.ProviderError, True),
    ],
)
def test_error_mapping(status: int, body: dict, headers: dict, error: type, retryable: bool | None) -> None:
    mapped = map_error(_status_error(status, body, headers))
    assert type(mapped) is error
    if isinstance(mapped, genai.ProviderError):
        assert (mapped.status, mapped.request_id, mapped.provider, mapped.retryable) == (status, "req_123", "openai", retryable)
        if "retry-after" in headers:
            assert mapped.retry_after == 2.0
    else:
        assert isinstance(mapped, genai.ContentPolicyError) and mapped.request_id == "req_123"


def test_connection_errors_map_to_unavailable() -> None:
    import httpx2
    import openai

    request = httpx2.Request("POST", "http://127.0.0.1/v1/images/generations")
    assert isinstance(map_error(openai.APITimeoutError(request)), genai.ProviderUnavailableError)
    mapped = map_error(openai.APIConnectionError(request=request))
    assert isinstance(mapped, genai.ProviderUnavailableError) and mapped.retryable


def test_secrets_are_redacted_from_provider_messages() -> None:
    mapped = map_error(_status_error(400, {"message": "key sk-abcdef1234567890 is odd"}), ("sk-abcdef1234567890",))
    assert "sk-abcdef1234567890" not in str(mapped)


def test_unreadable_image_data_is_a_provider_error(client: genai.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from genai_sdk.testing import _api_openai

    monkeypatch.setattr(_api_openai, "make_image", lambda *a, **k: b"not an image")
    with pytest.raises(genai.ProviderError, match="an image that cannot be used"):
        client.images.generate("a couch", size="256x256")


def test_a_task_cancelled_while_url_results_download_counts_the_images_spent(genai_emulator: Emulator) -> None:
    """OpenAI answered 200: the images were made and billed, whether or not the caller waits for their download."""
    import asyncio

    genai_emulator.fail("files.get", "trickle", delay=0.2)

    async def main() -> None:
        async with genai.AsyncClient(image="openai:dall-e-2", ledger="memory://", timeout=60) as client:
            task = asyncio.create_task(client.images.generate(
                "a couch", n=2, size="256x256", provider_options={"openai": {"response_format": "url"}}))
            while not genai_emulator.calls("images.generate"):
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.4)  # answered; the first file trickles in
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            spent = [e for e in await client.credits.history() if e.kind == "spent"]
            assert [e.usd for e in spent] == [Decimal("0.032")], "two 256x256 dall-e-2 images at 0.016, made and billed"
            assert await client.credits.reserved() == 0

    asyncio.run(main())


def test_extra_pictures_that_are_thrown_away_are_not_checked() -> None:
    """Only the pictures kept are checked against the size asked for: a tiny extra one neither fails the call nor
    counts as billed work."""
    from datetime import date

    from genai_sdk._catalog import default_catalog
    from genai_sdk._jobs import build_image_job
    from genai_sdk._requests import CallOptions, ImageRequest
    from genai_sdk.credits._pricing import Pricing
    from genai_sdk.providers.base import ImageBatch

    def picture(width: int, height: int) -> genai.Image:
        buffer = io.BytesIO()
        PILImage.new("RGB", (width, height), "white").save(buffer, format="PNG")
        return genai.Image.from_bytes(buffer.getvalue())

    catalog = default_catalog()
    model = catalog.get("openai:dall-e-2")
    assert model is not None
    plan = build_image_job(ImageRequest("generate", "a couch", CallOptions(), n=1, size="256x256"), model, None,
                           catalog, Pricing(Decimal(100)), date(2026, 1, 1))  # fmt: skip
    kept = plan._counted(ImageBatch([picture(256, 256), picture(1, 1), picture(300, 256)]), 1)
    assert [i.size for i in kept.images] == [(256, 256)]
    assert kept.warnings == ["openai:dall-e-2 answered with 3 images where 1 were asked for: the first 1 were kept and charged"]
