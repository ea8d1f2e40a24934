"""Replicate upscalers and sketch (control) models through the emulator over real HTTP: the request mapped onto each
model's published schema, output sizes, refusals before anything is sent, one charge, async."""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

import pytest

import genai_sdk as genai
from genai_sdk.testing import EmulatedModel, Emulator

pytest.importorskip("httpx", reason="the Replicate tests need the 'replicate' extra: pip install -e '.[dev]'")

ESRGAN = "replicate:nightmareai/real-esrgan"
CLARITY = "replicate:philz1337x/clarity-upscaler"
SCRIBBLE = "replicate:jagilley/controlnet-scribble"
CANNY = "replicate:black-forest-labs/flux-canny-dev"


def _client(**kwargs: Any) -> genai.Client:
    return genai.Client(ledger="memory://", **kwargs)


def _png(width: int, height: int, colour: str = "white") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def _data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _creates(emulator: Emulator) -> list[dict[str, Any]]:
    return [r.json for r in emulator.calls("replicate.predictions.create")]


def test_real_esrgan_upscales_by_the_scale_asked_for_into_its_scale_input(genai_emulator: Emulator) -> None:
    client = _client()
    small = _png(40, 30)
    result = client.images.upscale(small, scale=3, model=ESRGAN)
    assert result.image.size == (120, 90)
    assert _creates(genai_emulator) == [{"input": {"image": _data_url(small), "scale": 3}}]
    assert result.model == ESRGAN
    assert result.cost.usd is None and result.cost.credits > 0, "billed by GPU time: unpriced, never free"
    (entry,) = [e for e in client.credits.history() if e.credits < 0]
    assert entry.credits == -result.cost.credits, "charged once"


def test_without_scale_the_model_uses_its_own_factor(genai_emulator: Emulator) -> None:
    result = _client().images.upscale(_png(20, 10), model=ESRGAN)
    assert result.image.size == (80, 40), "Real-ESRGAN's default factor is 4"
    assert "scale" not in _creates(genai_emulator)[0]["input"]


def test_clarity_takes_the_prompt_and_its_scale_factor(genai_emulator: Emulator) -> None:
    result = _client().images.upscale(_png(32, 32), scale=2, prompt="a red flower", seed=7, model=CLARITY)
    assert result.image.size == (64, 64)
    (sent,) = _creates(genai_emulator)
    assert sent["input"] == {"image": _data_url(_png(32, 32)), "scale_factor": 2, "prompt": "a red flower", "seed": 7}


def test_a_scale_outside_the_schema_is_refused_before_anything_is_sent(genai_emulator: Emulator) -> None:
    narrow = EmulatedModel("acme", "upscaler-x2-x4", {
        "image": {"type": "string", "format": "uri"},
        "upscale_factor": {"type": "string", "enum": ["2x", "4x"], "default": "2x"},
    }, required=("image",), makes="upscale")
    genai_emulator.replicate.add_model(narrow)
    client = _client()
    with pytest.raises(genai.InvalidRequestError, match="upscales by 2, 4 only"):
        client.images.upscale(_png(16, 16), scale=3, model="replicate:acme/upscaler-x2-x4")
    assert _creates(genai_emulator) == []
    result = client.images.upscale(_png(16, 16), scale=4, model="replicate:acme/upscaler-x2-x4")
    assert _creates(genai_emulator)[-1]["input"]["upscale_factor"] == "4x"
    assert result.image.size == (64, 64)


def test_a_model_without_a_scale_input_refuses_scale(genai_emulator: Emulator) -> None:
    fixed = EmulatedModel("acme", "crisp-upscaler", {"image": {"type": "string", "format": "uri"}},
                          required=("image",), makes="upscale")
    genai_emulator.replicate.add_model(fixed)
    client = _client()
    with pytest.raises(genai.InvalidRequestError, match="factor of its own"):
        client.images.upscale(_png(16, 16), scale=2, model="replicate:acme/crisp-upscaler")
    assert _creates(genai_emulator) == []
    assert client.images.upscale(_png(16, 16), model="replicate:acme/crisp-upscaler").image.size == (64, 64)


def test_a_prompt_the_upscaler_does_not_take_is_refused(genai_emulator: Emulator) -> None:
    with pytest.raises(genai.InvalidRequestError, match="takes no prompt"):
        _client().images.upscale(_png(16, 16), prompt="a cat", model=ESRGAN)
    assert _creates(genai_emulator) == []


def test_an_upscaler_that_needs_a_prompt_is_refused_without_one(genai_emulator: Emulator) -> None:
    needy = EmulatedModel("acme", "prompted-upscaler", {
        "image": {"type": "string", "format": "uri"}, "prompt": {"type": "string"},
        "scale_factor": {"type": "number", "minimum": 1, "maximum": 4},
    }, required=("image", "prompt"), makes="upscale")
    genai_emulator.replicate.add_model(needy)
    with pytest.raises(genai.InvalidRequestError, match="needs a prompt"):
        _client().images.upscale(_png(16, 16), scale=2, model="replicate:acme/prompted-upscaler")
    with pytest.raises(genai.InvalidRequestError, match="upscales by 1 to 4"):
        _client().images.upscale(_png(16, 16), scale=5, prompt="a cat", model="replicate:acme/prompted-upscaler")
    assert _creates(genai_emulator) == []


def test_the_scribble_model_gets_its_own_input_names(genai_emulator: Emulator) -> None:
    sketch = _png(512, 768)
    result = _client().images.from_sketch(sketch, "a castle on a hill", n=4, seed=5, guidance=7.5, steps=30,
                                          negative_prompt="blurry", model=SCRIBBLE)
    assert [image.size for image in result.images] == [(512, 768)] * 4, "the sketch's size"
    (sent,) = _creates(genai_emulator)
    assert sent["input"] == {"image": _data_url(sketch), "image_resolution": "512", "prompt": "a castle on a hill",
                             "seed": 5, "n_prompt": "blurry", "ddim_steps": 30, "scale": 7.5, "num_samples": "4"}
    assert not [w for w in result.warnings if "short side" in w], "the sketch's short side is one the model makes"


def test_scribble_makes_two_pictures_in_two_predictions(genai_emulator: Emulator) -> None:
    client = _client()
    result = client.images.from_sketch(_png(300, 300), "a boat", n=2, model=SCRIBBLE)
    assert len(result.images) == 2 and result.images[0].size == (256, 256), "the nearest resolution it makes"
    assert any("short side is 256: the sketch's is 300" in w for w in result.warnings)
    assert [c["input"]["num_samples"] for c in _creates(genai_emulator)] == ["1", "1"], "it makes one or four"
    assert len([e for e in client.credits.history() if e.credits < 0]) == 1, "one call, one charge"


def test_flux_canny_gets_the_sketch_as_its_control_image_at_its_size(genai_emulator: Emulator) -> None:
    sketch = _png(640, 480)
    result = _client().images.from_sketch(sketch, "a red car", n=2, guidance=25, model=CANNY)
    assert [image.size for image in result.images] == [(640, 480)] * 2
    (sent,) = _creates(genai_emulator)
    assert sent["input"] == {"control_image": _data_url(sketch), "megapixels": "match_input", "prompt": "a red car",
                             "guidance": 25, "num_outputs": 2}


def test_a_large_sketch_is_uploaded_through_the_files_api(genai_emulator: Emulator) -> None:
    import os

    from PIL import Image

    noisy = Image.frombytes("RGB", (400, 300), os.urandom(400 * 300 * 3))
    buffer = io.BytesIO()
    noisy.save(buffer, "PNG")
    result = _client().images.from_sketch(buffer.getvalue(), "a forest", model=CANNY)
    assert genai_emulator.calls("replicate.files.create")
    assert _creates(genai_emulator)[0]["input"]["control_image"].startswith("http")
    assert result.image.size == (400, 304), "the uploaded sketch's size, sides multiples of 16"


def test_an_image_only_model_cannot_be_asked_to_sketch(genai_emulator: Emulator) -> None:
    client = _client()
    with pytest.raises(genai.UnsupportedError, match="images.sketch"):
        client.images.from_sketch(_png(64, 64), "a castle", model=ESRGAN)  # the catalog says it upscales only
    sdxl = "replicate:stability-ai/sdxl"  # not in the catalog: its schema has an image, but no control image
    with pytest.raises(genai.UnsupportedError, match="no control image"):
        client.images.from_sketch(_png(64, 64), "a castle", model=sdxl)
    with pytest.raises(genai.UnsupportedError, match="cannot do images.sketch"):  # known now: refused at once
        client.images.from_sketch(_png(64, 64), "a castle", model=sdxl)
    with pytest.raises(genai.UnsupportedError, match="images.upscale"):
        client.images.upscale(_png(64, 64), model=sdxl)
    with pytest.raises(genai.UnsupportedError, match="images.upscale"):
        client.images.upscale(_png(64, 64), model=SCRIBBLE)
    assert _creates(genai_emulator) == []
    assert all(e.credits >= 0 for e in client.credits.history()), "nothing charged"


def test_models_outside_the_catalog_are_recognised_by_schema(genai_emulator: Emulator) -> None:
    genai_emulator.replicate.add_model(EmulatedModel("acme", "lineart-control", {
        "prompt": {"type": "string"}, "control_image": {"type": "string", "format": "uri"},
        "num_outputs": {"type": "integer", "minimum": 1, "maximum": 2},
    }, required=("prompt", "control_image"), makes="control"))
    genai_emulator.replicate.add_model(EmulatedModel("acme", "enlarge", {
        "image": {"type": "string", "format": "uri"}, "scale": {"type": "integer", "minimum": 2, "maximum": 4},
    }, required=("image",), makes="upscale"))
    client = _client()
    made = client.images.from_sketch(_png(96, 64), "a bridge", n=3, model="replicate:acme/lineart-control")
    assert [image.size for image in made.images] == [(96, 64)] * 3
    assert sorted(c["input"]["num_outputs"] for c in _creates(genai_emulator)) == [1, 2]
    assert client.images.upscale(_png(10, 10), scale=2, model="replicate:acme/enlarge").image.size == (20, 20)
    with pytest.raises(genai.UnsupportedError):
        client.images.from_sketch(_png(64, 64), "a castle", model="replicate:acme/enlarge")


def test_inputs_the_schema_refuses_come_back_as_422(genai_emulator: Emulator) -> None:
    with pytest.raises(genai.InvalidRequestError, match="422.*face_enhance"):
        _client().images.upscale(_png(16, 16), model=ESRGAN, provider_options={"replicate": {"face_enhance": "yes"}})


def test_a_failed_upscale_is_not_charged(genai_emulator: Emulator) -> None:
    genai_emulator.replicate.fail_next_prediction()
    client = _client()
    with pytest.raises(genai.GenerationFailedError):
        client.images.upscale(_png(16, 16), model=ESRGAN)
    assert all(e.credits >= 0 for e in client.credits.history())


def test_async_upscale_and_sketch(genai_emulator: Emulator) -> None:
    async def main() -> tuple[genai.ImageResult, genai.ImageResult]:
        async with genai.AsyncClient(ledger="memory://") as client:
            return await asyncio.gather(
                client.images.upscale(_png(30, 20), scale=2, model=ESRGAN),
                client.images.from_sketch(_png(512, 512), "a tower", model=SCRIBBLE),
            )

    big, drawn = asyncio.run(main())
    assert big.image.size == (60, 40)
    assert drawn.image.size == (512, 512)
    assert len(_creates(genai_emulator)) == 2
