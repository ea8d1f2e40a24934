"""Blending images: client.images.blend([a, b], weights=..., prompt=...) through the one path, on gpt-image models
(several input images and an instruction) through the emulator over real HTTP."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from PIL import Image as PILImage

import genai_sdk as genai
from genai_sdk.testing import Emulator


def _picture(colour: str) -> genai.Image:
    return genai.Image.from_pil(PILImage.new("RGB", (256, 256), colour))


def test_a_blend_sends_every_image_and_its_weights_in_words(genai_emulator: Emulator) -> None:
    client = genai.Client(ledger="memory://")
    result = client.images.blend([_picture("red"), _picture("blue")], weights=[3, 1], prompt="a sunset over the sea",
                                 model="openai:gpt-image-1.5", size="1024x1024")  # fmt: skip
    (call,) = genai_emulator.calls("images.edit")
    assert len(call.files["image[]"]) == 2
    assert "image 1 about 75%, image 2 about 25%" in call.form["prompt"] and "a sunset over the sea" in call.form["prompt"]
    assert any("weights (75%, 25%)" in w and "not applied exactly" in w for w in result.warnings)
    assert result.image.size == (1024, 1024) and result.cost.credits > 0
    assert [e.kind for e in client.credits.history()] == ["charge"]
    even = client.images.blend([_picture("red"), _picture("blue")], model="openai:gpt-image-1.5")
    assert not any("weights" in w for w in even.warnings)
    assert "shares" not in genai_emulator.calls("images.edit")[1].form["prompt"]  # equal shares go unsaid


@pytest.mark.parametrize(
    ("images", "kwargs", "error", "message"),
    [
        (["red"], {}, genai.InvalidRequestError, "at least two images"),
        (["red", "blue"], {"weights": [1]}, genai.InvalidRequestError, "one number per image"),
        (["red", "blue"], {"weights": [1, -1]}, genai.InvalidRequestError, "0 or more"),
        (["red", "blue"], {"weights": [0, 0]}, genai.InvalidRequestError, "not all 0"),
        (["red", "blue"], {"model": "openai:dall-e-2"}, genai.UnsupportedError, "blend"),
        (["red", "blue"], {"prompt": "a nude statue"}, genai.ContentPolicyError, "prompt"),
    ],
)
def test_bad_blends_are_refused_before_anything_is_sent(
    images: list[str], kwargs: dict[str, object], error: type[Exception], message: str, genai_emulator: Emulator
) -> None:
    client = genai.Client(ledger="memory://")
    settings = {"model": "openai:gpt-image-1.5", **kwargs}
    with pytest.raises(error, match=message):
        client.images.blend([_picture(c) for c in images], **settings)  # type: ignore[arg-type]
    assert genai_emulator.calls("images.edit") == []
    with pytest.raises(genai.InvalidRequestError, match="weights= is for images.blend"):
        client.images.generate("a cat", weights=[1, 2])  # type: ignore[call-arg]


def test_async_blend(genai_emulator: Emulator) -> None:
    async def main() -> genai.ImageResult:
        async with genai.AsyncClient(ledger="memory://") as client:
            return await client.images.blend([_picture("red"), _picture("green")], weights=(0.5, 0.5),
                                             model="openai:gpt-image-1.5")  # fmt: skip

    result = asyncio.run(main())
    assert result.images and result.cost.credits > Decimal(0)


def test_genai_blend_command(
    genai_emulator: Emulator, tmp_path: object, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    from genai_sdk.cli import main

    monkeypatch.chdir(str(tmp_path))
    monkeypatch.setenv("GENAI_LEDGER", "memory://")
    _picture("red").save(Path("a.png"))
    _picture("blue").save(Path("b.png"))
    argv = ["blend", "a.png", "b.png", "--weights", "0.7,0.3", "-p", "a sunset", "--model", "openai:gpt-image-1.5"]
    assert main([*argv, "-o", "mix.png"]) == 0, capsys.readouterr().err
    assert genai.Image.from_path(Path("mix.png")).provenance["model"] == "openai:gpt-image-1.5"
    assert "image 1 about 70%" in genai_emulator.calls("images.edit")[0].form["prompt"]
    assert main(["blend", "a.png", "b.png", "--weights", "x", "-o", "y.png"]) == 2
    assert "--weights" in capsys.readouterr().err
