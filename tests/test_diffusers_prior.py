"""Kandinsky 2.2's prior and decoder (DALL-E 2's design) through the SDK's real loading code, on the CPU, with tiny
random models: one combined folder, or a decoder folder and its prior's folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

import pytest

import genai_sdk as genai

pytest.importorskip("diffusers", reason="the diffusers tests need the 'local' extra: pip install -e '.[dev,local]'")

from genai_sdk.testing.tiny_diffusers import (  # noqa: E402
    kandinsky_combined,
    kandinsky_decoder,
    kandinsky_prior,
    stable_diffusion,
)


class _Small(TypedDict):
    size: str
    steps: int


SMALL: _Small = {"size": "32x32", "steps": 2}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("kandinsky")
    return {
        "prior": kandinsky_prior(root / "prior"),
        "decoder": kandinsky_decoder(root / "decoder"),
        "inpaint": kandinsky_decoder(root / "inpaint", inpaint=True),
        "combined": kandinsky_combined(root / "combined"),
    }


def _two_folders(folders: dict[str, Path], name: str = "decoder") -> dict[str, Any]:
    return {"model": f"diffusers:{folders[name]}", "provider_options": {"diffusers": {"prior": str(folders["prior"])}}}


def _pictures() -> tuple[Any, Any]:
    from PIL import Image as PILImage

    red = PILImage.new("RGB", (32, 32), (200, 10, 10))
    blue = PILImage.new("RGB", (32, 32), (10, 10, 200))
    blue.paste((250, 250, 0), (8, 8, 24, 24))
    return red, blue


def test_the_folders_say_what_they_serve(folders: dict[str, Path]) -> None:
    from genai_sdk._config import Settings
    from genai_sdk.providers.diffusers import DiffusersProvider

    provider = DiffusersProvider(Settings(), {})

    def served(name: str) -> set[str]:
        model = provider.describe(str(folders[name]))
        assert model is not None
        return set(model.operations)

    every = {"images.generate", "images.edit", "images.variations", "images.blend"}
    assert served("combined") == served("decoder") == every
    assert served("inpaint") == {"images.edit"}
    assert served("prior") == set(), "a prior alone makes embeddings, not pictures"


def test_generate_through_a_combined_folder_is_reproducible(folders: dict[str, Path]) -> None:
    client = genai.Client(image=f"diffusers:{folders['combined']}", ledger="memory://")
    first = client.images.generate("a red fox", seed=7, **SMALL)
    again = client.images.generate("a red fox", seed=7, **SMALL)
    other = client.images.generate("a red fox", seed=8, **SMALL)
    assert first.image.data == again.image.data != other.image.data
    assert first.image.size == (32, 32) and first.image.provenance["seed"] == "7"
    two = client.images.generate("a red fox", n=2, seed=7, **SMALL)
    assert len(two.images) == 2


def test_a_decoder_folder_with_its_prior_folder(folders: dict[str, Path]) -> None:
    client = genai.Client(ledger="memory://")
    first = client.images.generate("a blue house", seed=3, **SMALL, **_two_folders(folders))
    again = client.images.generate("a blue house", seed=3, **SMALL, **_two_folders(folders))
    assert first.image.data == again.image.data and first.image.size == (32, 32)
    red, _ = _pictures()
    varied = client.images.variations(red, n=2, seed=3, **SMALL, **_two_folders(folders))
    assert [i.size for i in varied.images] == [(32, 32)] * 2
    edited = client.images.edit(red, "a cat", seed=3, **SMALL, **_two_folders(folders))
    assert edited.image.size == (32, 32)


def test_blend_weights_one_and_zero_give_the_first_images_embedding(folders: dict[str, Path]) -> None:
    import torch

    from genai_sdk.providers import diffusers as provider

    client = genai.Client(image=f"diffusers:{folders['combined']}", ledger="memory://")
    red, blue = _pictures()
    client.images.variations(red, seed=5, **SMALL)  # loads the pipeline
    entry = next(e for k, e in provider.POOL._entries.items() if k[0] == str(folders["combined"].resolve()))
    combined = entry["base"]
    seen: list[Any] = []
    decoder_class = type(combined.decoder_pipe)
    original = decoder_class.__call__

    def observe(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["image_embeds"].clone())
        return original(self, *args, **kwargs)

    charges = len(client.credits.history())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(decoder_class, "__call__", observe)
        blended = client.images.blend([red, blue], weights=[1, 0], seed=5, **SMALL)
        varied = client.images.variations(red, seed=5, **SMALL)
    assert len(client.credits.history()) == charges + 2, "each call is charged once"
    prior = combined.prior_pipe
    pixels = prior.image_processor(red, return_tensors="pt").pixel_values.to(prior.image_encoder.dtype)
    with torch.no_grad():
        expected = prior.image_encoder(pixels).image_embeds
    assert len(seen) == 2
    assert torch.equal(seen[0], expected) and torch.equal(seen[1], expected)
    assert blended.image.data == varied.image.data
    even = client.images.blend([red, blue], seed=5, **SMALL)
    assert even.image.data != blended.image.data


def test_a_blend_prompt_joins_the_mix(folders: dict[str, Path]) -> None:
    from genai_sdk._requests import CallOptions, ImageRequest
    from genai_sdk.providers.diffusers_prior import blend_conditions

    red, blue = _pictures()
    inputs = (genai.Image.from_pil(red), genai.Image.from_pil(blue))
    request = ImageRequest(operation="blend", prompt="at sunset", options=CallOptions(), images=inputs, weights=(0.75, 0.25))
    conditions, weights = blend_conditions(request, None)
    assert conditions[-1] == "at sunset" and weights == pytest.approx([0.5, 0.5 / 3, 1 / 3])
    assert blend_conditions(request, 0.2)[1] == pytest.approx([0.6, 0.2, 0.2])
    client = genai.Client(image=f"diffusers:{folders['combined']}", ledger="memory://")
    plain = client.images.blend([red, blue], seed=1, **SMALL)
    prompted = client.images.blend([red, blue], prompt="a red fox", seed=1, **SMALL,
                                   provider_options={"diffusers": {"prompt_weight": 0.5}})
    assert prompted.image.size == (32, 32) and prompted.image.data != plain.image.data
    unused = client.images.blend([red, blue], seed=1, **SMALL, provider_options={"diffusers": {"prompt_weight": 0.5}})
    assert any("prompt_weight" in w for w in unused.warnings)


def test_inpainting_decoder_keeps_the_unmasked_region(folders: dict[str, Path]) -> None:
    from PIL import Image as PILImage
    from PIL import ImageChops

    red, _ = _pictures()
    mask = PILImage.new("RGBA", (32, 32), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (8, 8, 24, 24))  # transparent: may change
    client = genai.Client(ledger="memory://")
    edited = client.images.edit(red, "a lamp", mask=mask, seed=2, **SMALL, **_two_folders(folders, "inpaint"))
    again = client.images.edit(red, "a lamp", mask=mask, seed=2, **SMALL, **_two_folders(folders, "inpaint"))
    assert edited.image.data == again.image.data
    diff = ImageChops.difference(red, edited.image.to_pil().convert("RGB")).convert("L")
    outside = PILImage.new("L", (32, 32), 255)
    outside.paste(0, (8, 8, 24, 24))
    assert ImageChops.multiply(diff, outside).getbbox() is None, "pixels outside the mask changed"
    assert diff.crop((8, 8, 24, 24)).getbbox() is not None, "nothing changed inside the mask"
    with pytest.raises(genai.InvalidRequestError, match="needs mask="):
        client.images.edit(red, "a lamp", seed=2, **SMALL, **_two_folders(folders, "inpaint"))
    with pytest.raises(genai.UnsupportedError, match="cannot do images.generate"):
        client.images.generate("a lamp", **SMALL, **_two_folders(folders, "inpaint"))
    with pytest.raises(genai.UnsupportedError, match="no inpainting decoder"):
        client.images.edit(red, "a lamp", mask=mask, **SMALL, **_two_folders(folders))


def test_typed_errors(folders: dict[str, Path], tmp_path: Path) -> None:
    red, blue = _pictures()
    client = genai.Client(ledger="memory://")
    sd = stable_diffusion(tmp_path / "sd")
    with pytest.raises(genai.UnsupportedError, match="cannot do images.blend"):
        client.images.blend([red, blue], model=f"diffusers:{sd}", **SMALL)
    with pytest.raises(genai.ConfigError, match="needs a prior|it paints from an image embedding"):
        client.images.generate("a cat", model=f"diffusers:{folders['decoder']}", **SMALL)
    missing = {"diffusers": {"prior": str(tmp_path / "no-prior")}}
    with pytest.raises(genai.ConfigError, match="no diffusers model folder"):
        client.images.generate("a cat", model=f"diffusers:{folders['decoder']}", provider_options=missing, **SMALL)
    not_a_prior = {"diffusers": {"prior": str(folders["decoder"])}}
    with pytest.raises(genai.ConfigError, match="not a prior"):
        client.images.generate("a cat", model=f"diffusers:{folders['decoder']}", provider_options=not_a_prior, **SMALL)
    assert client.credits.reserved() == 0 and not [e for e in client.credits.history() if e.kind == "charge"]
