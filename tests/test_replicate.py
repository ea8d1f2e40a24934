"""Replicate images and video through the emulator over real HTTP: input mapping, polling, retries, failures, cancels."""

from __future__ import annotations

import asyncio
import base64
import time
import urllib.request
from decimal import Decimal
from typing import Any

import pytest

import genai_sdk as genai
from genai_sdk.testing import EmulatedModel, Emulator

pytest.importorskip("httpx", reason="the Replicate tests need the 'replicate' extra: pip install -e '.[dev]'")

SCHNELL = "replicate:black-forest-labs/flux-schnell"
SDXL = "replicate:stability-ai/sdxl:39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b"
WAN = "replicate:wan-video/wan-2.2-t2v-fast"


def _client(**kwargs: Any) -> genai.Client:
    return genai.Client(ledger="memory://", **kwargs)


def _creates(emulator: Emulator) -> list[dict[str, Any]]:
    return [r.json for r in emulator.calls("replicate.predictions.create")]


def test_flux_images_map_size_to_the_nearest_aspect_ratio_and_megapixels(genai_emulator: Emulator) -> None:
    client = _client(image=SCHNELL)
    result = client.images.generate("an avocado couch", n=2, size="1024x576", seed=3, steps=4)
    assert [image.size for image in result.images] == [(1344, 768), (1344, 768)], "1344x768 as FLUX makes it"
    assert result.images[0].media_type == "image/webp"
    (sent,) = _creates(genai_emulator)
    assert sent == {"input": {"prompt": "an avocado couch", "aspect_ratio": "16:9", "megapixels": "1", "seed": 3,
                              "num_inference_steps": 4, "num_outputs": 2}}
    assert any("aspect ratio 16:9 and 1 megapixels" in w for w in result.warnings)
    assert result.cost.usd == Decimal("0.006") and not result.cost.estimated, "0.003 USD an image"
    assert client.credits.history()[-1].credits == -result.cost.credits
    again = client.images.generate("an avocado couch", n=2, size="1024x576", seed=3, steps=4)
    assert [i.data for i in again.images] == [i.data for i in result.images]


def test_a_small_size_asks_flux_for_a_quarter_megapixel(genai_emulator: Emulator) -> None:
    client = _client(image=SCHNELL)
    small = client.images.generate("a lamp", size="512x512")
    assert _creates(genai_emulator)[-1]["input"]["megapixels"] == "0.25"
    assert small.image.size == (512, 512), "512x512 as FLUX makes it"
    tall = client.images.generate("a lamp", size="768x1344")
    assert _creates(genai_emulator)[-1]["input"] == {"prompt": "a lamp", "aspect_ratio": "9:16", "megapixels": "1",
                                                       "num_outputs": 1}
    assert tall.image.size == (768, 1344)


def test_more_images_than_one_prediction_makes_are_split(genai_emulator: Emulator) -> None:
    client = _client(image=SCHNELL)
    result = client.images.generate("a red fox", n=6, size="512x512")
    assert len(result.images) == 6
    assert sorted(c["input"]["num_outputs"] for c in _creates(genai_emulator)) == [2, 4]
    assert result.cost.usd == Decimal("0.018")


def test_a_pinned_version_takes_width_height_and_every_portable_setting(genai_emulator: Emulator) -> None:
    client = _client(image=SDXL)
    result = client.images.generate("a blue house", size="512x384", negative_prompt="people", steps=12, guidance=6.5)
    assert result.image.size == (512, 384)
    (call,) = genai_emulator.calls("replicate.predictions.create")
    assert call.path == "/v1/predictions"
    assert call.json["version"] == SDXL.rsplit(":", 1)[1]
    assert call.json["input"] == {"prompt": "a blue house", "width": 512, "height": 384, "negative_prompt": "people",
                                  "num_inference_steps": 12, "guidance_scale": 6.5, "num_outputs": 1}
    assert call.headers["authorization"] == f"Bearer {genai_emulator.api_key}"
    assert call.headers["cancel-after"].endswith("s") and call.headers["prefer"].startswith("wait=")
    assert result.cost.usd is None and result.cost.credits > 0, "GPU-time models are unpriced, never free"
    assert result.request_ids == list(genai_emulator.replicate.predictions)


def test_settings_a_model_lacks_become_warnings_and_unknown_inputs_errors(genai_emulator: Emulator) -> None:
    client = _client(image=SCHNELL)
    result = client.images.generate("a lamp", negative_prompt="dark", guidance=4.0)
    assert any("has no negative_prompt input" in w for w in result.warnings)
    assert any("has no guidance input" in w for w in result.warnings)
    result = client.images.generate("a lamp", provider_options={"replicate": {"output_format": "png", "go_fast": False}})
    assert result.image.media_type == "image/png"
    with pytest.raises(genai.InvalidRequestError, match="has no input colour; its inputs: aspect_ratio"):
        client.images.generate("a lamp", provider_options={"replicate": {"colour": "red"}})
    with pytest.raises(genai.InvalidRequestError, match="Replicate answered 422: - input.num_inference_steps: Must be less"):
        client.images.generate("a lamp", steps=9)
    assert client.credits.reserved() == 0


def test_async_edit_uploads_a_large_image_and_reports_progress(genai_emulator: Emulator) -> None:
    import os

    from PIL import Image as PILImage

    genai_emulator.replicate.job_seconds, genai_emulator.replicate.max_wait = 0.8, 0
    noisy = PILImage.frombytes("RGB", (400, 400), os.urandom(400 * 400 * 3))
    progress: list[genai.Progress] = []

    async def main() -> genai.ImageResult:
        async with genai.AsyncClient(image=SDXL, ledger="memory://", timeout=60) as client:
            return await client.images.edit(noisy, "add a hat", size="512x512", on_progress=progress.append)

    result = asyncio.run(main())
    (upload,) = genai_emulator.calls("replicate.files.create")
    assert len(upload.files["content"][0]) > 256 * 1024
    assert _creates(genai_emulator)[-1]["input"]["image"].startswith(genai_emulator.url + "/files/")
    assert result.image.size == (512, 512)
    fractions = [p.fraction for p in progress if p.stage == "processing"]
    steps = [f for f in fractions if f is not None]
    assert steps and steps == fractions and steps == sorted(steps), "progress parsed from the model's logs, in order"
    assert progress[-1].stage == "done"


def test_edit_sends_the_image_and_mask_as_data_urls_or_uploads(genai_emulator: Emulator) -> None:
    from PIL import Image as PILImage

    client = _client(image=SDXL)
    small = PILImage.new("RGB", (64, 64), (200, 40, 40))
    mask = PILImage.new("L", (64, 64), 255)
    client.images.edit(small, "add a hat", mask=mask)
    sent = _creates(genai_emulator)[-1]["input"]
    assert sent["image"].startswith("data:image/png;base64,")
    assert genai.Image.from_bytes(base64.b64decode(sent["mask"].split(",", 1)[1])).size == (64, 64)
    import os

    noisy = PILImage.frombytes("RGB", (400, 400), os.urandom(400 * 400 * 3))  # over 256 kB as PNG: uploaded
    client.images.edit(noisy, "add a hat")
    uploads = genai_emulator.calls("replicate.files.create")
    assert len(uploads) == 1 and len(uploads[0].files["content"][0]) > 256 * 1024
    assert _creates(genai_emulator)[-1]["input"]["image"].startswith(genai_emulator.url + "/files/")
    with pytest.raises(genai.UnsupportedError, match="cannot do images.edit"):
        client.images.edit(small, "add a hat", model=SCHNELL)


def test_video_follows_a_running_prediction_to_its_end(genai_emulator: Emulator) -> None:
    genai_emulator.replicate.job_seconds, genai_emulator.replicate.max_wait = 0.6, 0
    client = _client(video=WAN, timeout=30)
    progress: list[float] = []
    result = client.videos.generate("a panda playing guitar", seconds=2, fps=16, size="832x480", seed=1,
                                    on_progress=lambda p: progress.append(p.completed))
    video = result.video
    assert (video.media_type, video.width, video.height, video.fps) == ("video/mp4", 64, 48, 16.0)
    assert video.duration == pytest.approx(2.0)
    (sent,) = _creates(genai_emulator)
    assert sent["input"] == {"prompt": "a panda playing guitar", "num_frames": 32, "frames_per_second": 16,
                             "aspect_ratio": "16:9", "resolution": "480p", "seed": 1}
    assert len(genai_emulator.calls("replicate.predictions.get")) >= 2, "the prediction was polled"
    assert progress, "the model's progress reached on_progress"
    assert video.provenance["request_id"] in genai_emulator.replicate.predictions
    kling = client.videos.generate("a panda", model="replicate:kwaivgi/kling-v2.1", seconds=7, image=_png())
    assert _creates(genai_emulator)[-1]["input"]["duration"] == 5
    assert _creates(genai_emulator)[-1]["input"]["start_image"].startswith("data:image/png")
    assert any("makes videos of 5 s where 7 s were asked for" in w for w in kling.warnings)


def _png() -> bytes:
    import io

    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.new("RGB", (32, 32), (0, 90, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_failed_poll_resumes_the_same_prediction_instead_of_paying_for_another(genai_emulator: Emulator, mode: str) -> None:
    genai_emulator.replicate.job_seconds, genai_emulator.replicate.max_wait = 0.3, 0
    genai_emulator.fail("replicate.predictions.get", "unavailable", times=1)
    if mode == "sync":
        client = _client(video=WAN, timeout=30)
        result = client.videos.generate("a panda", seconds=2, fps=16)
        history = client.credits.history()
    else:
        async def main() -> tuple[genai.VideoResult, list[genai.LedgerEntry]]:
            async with genai.AsyncClient(video=WAN, ledger="memory://", timeout=30) as client:
                done = await client.videos.generate("a panda", seconds=2, fps=16)
                return done, await client.credits.history()

        result, history = asyncio.run(main())
    assert [r.status for r in genai_emulator.calls("replicate.predictions.get")][0] == 503
    assert len(_creates(genai_emulator)) == 1, "one prediction, however many attempts"
    assert [e.kind for e in history].count("charge") == 1
    assert result.cost.credits > 0 and result.video.fps == 16.0


def test_async_calls_follow_many_predictions_at_once_without_worker_threads(genai_emulator: Emulator) -> None:
    genai_emulator.replicate.job_seconds, genai_emulator.replicate.max_wait = 1.5, 0
    calls = 12  # more than asyncio's default thread pool holds on a small machine (cores + 4)

    async def main() -> list[genai.ImageResult]:
        async with genai.AsyncClient(image=SCHNELL, ledger="memory://", timeout=60) as client:
            return list(await asyncio.gather(*(client.images.generate(f"a fox, take {i}", size="512x512")
                                               for i in range(calls))))

    results = asyncio.run(main())
    assert [len(r.images) for r in results] == [1] * calls
    assert len({r.images[0].data for r in results}) == calls
    assert genai_emulator.replicate.peak_running() == calls, "every prediction was in flight at once"
    assert genai_emulator.replicate.status_counts() == {"succeeded": calls}


def test_rate_limits_and_server_errors_on_create_are_retried(genai_emulator: Emulator) -> None:
    genai_emulator.fail("replicate.predictions.create", "rate_limit", times=1, retry_after=0.05)
    genai_emulator.fail("replicate.predictions.create", "server_error", times=1)
    client = _client(image=SCHNELL)
    result = client.images.generate("a cat")
    statuses = [r.status for r in genai_emulator.calls("replicate.predictions.create")]
    assert statuses == [429, 500, 201]
    assert len(result.images) == 1


def test_model_failures_and_refusals_are_not_charged(genai_emulator: Emulator) -> None:
    client = _client(image=SCHNELL)
    genai_emulator.replicate.fail_next_prediction("E1001: CUDA out of memory")
    with pytest.raises(genai.GenerationFailedError, match="E1001") as failed:
        client.images.generate("a cat")
    assert failed.value.code == "E1001" and failed.value.request_id in genai_emulator.replicate.predictions
    with pytest.raises(genai.ContentPolicyError) as refused:
        client.images.generate("a forbidden cat", provider_options={"replicate": {}})
    assert (refused.value.source, refused.value.stage) == ("provider", "output")
    assert len(_creates(genai_emulator)) == 2, "neither failure was retried"
    assert refused.value.categories == ["sexual"]
    (entry,) = client.credits.history()  # the refusal is recorded, neither failure is charged
    assert entry.kind == "refusal" and entry.credits == 0 and "output refused by provider (sexual)" in entry.reason
    assert client.credits.reserved() == 0 and client.credits.balance() == 0


def test_bad_tokens_unknown_models_and_missing_configuration(genai_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(genai.ConfigError, match="check the model name"):
        _client(image="replicate:nobody/nothing").images.generate("a cat")
    with pytest.raises(genai.ConfigError, match="malformed Replicate model"):
        _client(image="replicate:Not A Model").images.generate("a cat")
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_wrong_token_123")
    with pytest.raises(genai.AuthenticationError, match="check REPLICATE_API_TOKEN") as denied:
        _client(image=SCHNELL).images.generate("a cat")
    assert "r8_wrong_token_123" not in str(denied.value) + repr(denied.value)
    monkeypatch.delenv("REPLICATE_API_TOKEN")
    with pytest.raises(genai.ConfigError, match="REPLICATE_API_TOKEN"):
        _client(image=SCHNELL).images.generate("a cat")


def test_a_call_past_its_timeout_cancels_its_prediction(genai_emulator: Emulator) -> None:
    genai_emulator.replicate.job_seconds, genai_emulator.replicate.max_wait = 30, 0
    client = _client(video=WAN, timeout=1)
    started = time.monotonic()
    with pytest.raises(genai.ProviderUnavailableError, match="did not finish within the call's timeout; it was canceled"):
        client.videos.generate("a slow panda", seconds=2, fps=16)
    assert time.monotonic() - started < 10
    assert genai_emulator.replicate.status_counts() == {"canceled": 1}
    assert client.credits.reserved() == 0 and client.credits.history() == []


def test_cancelling_an_async_call_cancels_its_prediction(genai_emulator: Emulator) -> None:
    genai_emulator.replicate.job_seconds, genai_emulator.replicate.max_wait = 30, 0

    async def main() -> dict[str, int]:
        async with genai.AsyncClient(video=WAN, ledger="memory://", timeout=60) as client:
            task = asyncio.create_task(client.videos.generate("a long panda", seconds=2, fps=16))
            while not genai_emulator.calls("replicate.predictions.get"):
                await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            deadline = time.monotonic() + 10
            while genai_emulator.replicate.status_counts() != {"canceled": 1} and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert await client.credits.reserved() == 0
            return genai_emulator.replicate.status_counts()

    assert asyncio.run(main()) == {"canceled": 1}


def test_a_task_cancelled_while_its_output_downloads_counts_the_prediction_spent(genai_emulator: Emulator) -> None:
    genai_emulator.fail("files.get", "trickle", delay=0.2)  # the finished video arrives a few bytes at a time

    async def main() -> None:
        async with genai.AsyncClient(video=WAN, ledger="memory://", timeout=60) as client:
            task = asyncio.create_task(client.videos.generate("a panda", seconds=2, fps=16))
            deadline = time.monotonic() + 10
            while genai_emulator.replicate.status_counts() != {"succeeded": 1} and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # the download has begun
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await client.credits.reserved() == 0
            spent = [e for e in await client.credits.history() if e.kind == "spent"]
            assert len(spent) == 1 and spent[0].credits < 0, "it ran and was billed: the caller gave up on delivery"

    asyncio.run(main())


def test_an_on_progress_that_raises_stops_the_call_and_its_prediction(genai_emulator: Emulator) -> None:
    genai_emulator.replicate.job_seconds, genai_emulator.replicate.max_wait = 30, 0

    class Stop(Exception):
        pass

    def stop_when_running(progress: genai.Progress) -> None:
        if progress.stage == "processing":
            raise Stop

    client = _client(video=WAN, timeout=60)
    with pytest.raises(Stop):
        client.videos.generate("a long panda", seconds=2, fps=16, on_progress=stop_when_running)
    assert genai_emulator.replicate.status_counts() == {"canceled": 1}
    assert client.credits.reserved() == 0 and client.credits.history() == []


def test_deployments_run_the_model_of_their_current_release(genai_emulator: Emulator) -> None:
    genai_emulator.replicate.add_deployment("acme", "couch-maker", "stability-ai/sdxl")
    client = _client(image="replicate:deployments/acme/couch-maker")
    result = client.images.generate("a green couch", size="512x384", steps=8)
    assert result.image.size == (512, 384), "the inputs were mapped from the deployed model's schema"
    (call,) = genai_emulator.calls("replicate.predictions.create")
    assert call.path == "/v1/deployments/acme/couch-maker/predictions" and "version" not in call.json
    assert call.json["input"]["num_inference_steps"] == 8
    assert genai_emulator.replicate.predictions[result.request_ids[0]].body["deployment"] == "acme/couch-maker"
    assert result.cost.usd is None and result.cost.credits > 0, "deployments are billed by hardware time: unpriced"
    with pytest.raises(genai.ConfigError, match="deployments/owner/name"):
        _client(image="replicate:deployments/acme/missing").images.generate("a couch")
    with pytest.raises(genai.ConfigError, match="a deployment runs the version of its current release"):
        _client(image=f"replicate:deployments/acme/couch-maker:{SDXL.rsplit(':', 1)[1]}").images.generate("a couch")


def test_models_users_add_to_the_emulator(genai_emulator: Emulator) -> None:
    genai_emulator.replicate.add_model(EmulatedModel("acme", "sketch", {"text": {"type": "string"}}, required=("text",)))
    with pytest.raises(genai.InvalidRequestError, match="takes no prompt"):
        _client(image="replicate:acme/sketch").images.generate("a cat")
    genai_emulator.replicate.add_model(EmulatedModel(
        "acme", "styled", {"prompt": {"type": "string"}, "style": {"type": "string", "enum": ["ink", "oil"]}},
        required=("prompt", "style"),
    ))
    client = _client(image="replicate:acme/styled")
    with pytest.raises(genai.InvalidRequestError, match="needs the input.s. style: pass them as provider_options"):
        client.images.generate("a cat")
    result = client.images.generate("a cat", provider_options={"replicate": {"style": "ink"}})
    assert _creates(genai_emulator)[-1] == {"input": {"prompt": "a cat", "style": "ink"}}
    assert len(result.images) == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_outputs_answered_inline_as_data_urls_are_decoded(genai_emulator: Emulator, mode: str) -> None:
    genai_emulator.replicate.inline_outputs = True
    if mode == "sync":
        images = _client(image=SCHNELL).images.generate("a fox", n=2, size="512x512").images
        clip = _client(video=WAN).videos.generate("a fox", seconds=1, fps=8)
    else:
        async def main() -> tuple[list[genai.Image], genai.VideoResult]:
            async with genai.AsyncClient(image=SCHNELL, video=WAN, ledger="memory://") as client:
                made = await client.images.generate("a fox", n=2, size="512x512")
                return made.images, await client.videos.generate("a fox", seconds=1, fps=8)

        images, clip = asyncio.run(main())
    assert [image.size for image in images] == [(512, 512), (512, 512)] and images[0].data != images[1].data
    assert (clip.video.fps, clip.video.width) == (8.0, 64)
    assert _creates(genai_emulator)[-1]["input"]["num_frames"] == 17
    assert any("makes 17-121 frames: 17 frames were asked for where 1 s at 8 fps would be 8" in w for w in clip.warnings)
    assert all(str(url).startswith("data:") for c in genai_emulator.replicate.predictions.values()
               for url in (c.body["output"] if isinstance(c.body["output"], list) else [c.body["output"]]))


def test_the_official_replicate_client_runs_models_on_the_emulator(genai_emulator: Emulator) -> None:
    """Applications that call Replicate with its own client can test against the emulator too."""
    replicate = pytest.importorskip("replicate", reason="the official client comes with the dev extra")
    official = replicate.Client(api_token=genai_emulator.api_key, base_url=genai_emulator.url)
    (output,) = official.run("black-forest-labs/flux-schnell", input={"prompt": "a fox", "aspect_ratio": "16:9"})
    # the client wraps https URLs only; the emulator serves its files over http on loopback
    assert genai.Image.from_bytes(urllib.request.urlopen(str(output)).read()).size == (1344, 768)
    genai_emulator.replicate.job_seconds, genai_emulator.replicate.max_wait = 0.5, 0
    prediction = official.predictions.create(version=SDXL.rsplit(":", 1)[1], input={"prompt": "a fox", "num_outputs": 2})
    assert prediction.status == "starting", "a create that did not wait answers the prediction as starting"
    prediction.wait()
    assert prediction.status == "succeeded" and len(prediction.output) == 2
    assert prediction.metrics["predict_time"] > 0 and "100%" in prediction.logs
    genai_emulator.replicate.fail_next_prediction("E1001: out of memory")
    with pytest.raises(replicate.exceptions.ModelError, match="E1001"):
        official.run("black-forest-labs/flux-schnell", input={"prompt": "a fox"})
    genai_emulator.fail("replicate.predictions.create", "rate_limit", retry_after=0)
    with pytest.raises(replicate.exceptions.ReplicateError) as throttled:
        official.predictions.create(version=SDXL.rsplit(":", 1)[1], input={"prompt": "a fox"})
    assert throttled.value.status == 429


def test_variations_on_a_model_that_needs_a_prompt_send_a_neutral_one(genai_emulator: Emulator) -> None:
    from PIL import Image as PILImage

    image_input = {"type": "string", "format": "uri"}
    genai_emulator.replicate.add_model(EmulatedModel(
        "acme", "remix", {"prompt": {"type": "string"}, "image": image_input}, required=("prompt", "image"),
    ))  # fmt: skip
    client = _client(image="replicate:acme/remix")
    picture = PILImage.new("RGB", (64, 64), (30, 120, 200))
    result = client.images.variations(picture, n=2)
    assert len(result.images) == 2
    sent = _creates(genai_emulator)[-1]["input"]
    assert sent["prompt"] == "a variation of this image" and sent["image"].startswith("data:image/png;base64,")
    assert [w for w in result.warnings if "neutral prompt" in w] == [
        "replicate:acme/remix needs a prompt and variations have none: the neutral prompt 'a variation of this image' "
        "was sent (choose another with provider_options={'replicate': {'prompt': ...}})"
    ]
    chosen = client.images.variations(picture, provider_options={"replicate": {"prompt": "in ink"}})
    assert _creates(genai_emulator)[-1]["input"]["prompt"] == "in ink"
    assert not any("neutral prompt" in w for w in chosen.warnings)
    # a model that takes a prompt without needing one: nothing is made up
    genai_emulator.replicate.add_model(EmulatedModel(
        "acme", "upscale", {"prompt": {"type": "string", "default": ""}, "image": image_input}, required=("image",),
    ))  # fmt: skip
    quiet = client.images.variations(picture, model="replicate:acme/upscale")
    assert "prompt" not in _creates(genai_emulator)[-1]["input"] and not any("neutral prompt" in w for w in quiet.warnings)
    # another required input is still the caller's to give, and nothing is charged for the refusal
    genai_emulator.replicate.add_model(EmulatedModel(
        "acme", "styled-remix", {"prompt": {"type": "string"}, "image": image_input, "style": {"type": "string"}},
        required=("prompt", "image", "style"),
    ))  # fmt: skip
    charges = len(client.credits.history())
    with pytest.raises(genai.InvalidRequestError, match=r"needs the input\(s\) style: pass them as provider_options"):
        client.images.variations(picture, model="replicate:acme/styled-remix")
    assert len(client.credits.history()) == charges and client.credits.reserved() == 0


def test_a_users_own_model_is_charged_at_the_price_set_for_it(genai_emulator: Emulator) -> None:
    genai_emulator.replicate.add_model(EmulatedModel(
        "acme", "sketch", {"prompt": {"type": "string"}, "num_outputs": {"type": "integer", "minimum": 1, "maximum": 4}},
    ))  # fmt: skip
    client = _client(image="replicate:acme/sketch")
    unpriced = client.images.generate("a cat")
    assert unpriced.cost.usd is None and unpriced.cost.credits > 0, "a hosted model without a price is never free"
    assert any("no USD price is known for replicate:acme/sketch" in w for w in unpriced.warnings), "and it is said"

    client.catalog.set_price("replicate:acme/sketch", "0.002", unit="image")
    assert client.images.estimate("a cat", n=3).usd == Decimal("0.006")
    result = client.images.generate("a cat", n=3)
    assert result.cost.usd == Decimal("0.006") and not result.cost.estimated
    assert result.cost.credits == Decimal("0.6"), "100 credits a USD"
    assert not any("no USD price" in w for w in result.warnings)
    assert client.credits.history()[-1].credits == -result.cost.credits
    assert client.catalog.get("replicate:acme/sketch") is None, "no other model's capabilities were copied into the catalog"
    # the price is per client: another client's calls of the same model stay unpriced
    assert _client(image="replicate:acme/sketch").images.generate("a cat").cost.usd is None
