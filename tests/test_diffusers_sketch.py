"""Pictures from sketches through ControlNet pipelines, with tiny random models built in the test."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

import genai_sdk as genai

pytest.importorskip("diffusers", reason="the diffusers tests need the 'local' extra: pip install -e '.[dev,local]'")

from genai_sdk.testing.tiny_diffusers import controlnet, controlnet_pipeline, stable_diffusion  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {"pipeline": controlnet_pipeline(root / "tiny-sd-controlnet"), "sd": stable_diffusion(root / "tiny-sd"),
            "canny": controlnet(root / "tiny-controlnet-canny")}  # fmt: skip


def _scribble(width: int, height: int) -> genai.Image:
    """Dark lines on white, as people draw."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    picture = PILImage.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(picture)
    draw.line((2, 2, width - 3, height - 3), fill="black", width=2)
    draw.rectangle((width // 4, height // 4, width // 2, height // 2), outline="black")
    return genai.Image.from_pil(picture)


def _photo(width: int, height: int) -> genai.Image:
    import numpy as np
    from PIL import Image as PILImage

    rng = np.random.default_rng(0)
    array = np.full((height, width, 3), 120, dtype=np.uint8)
    array[height // 3: 2 * height // 3, width // 3: 2 * width // 3] = (200, 60, 40)  # a block with sharp edges
    array = np.clip(array + rng.integers(-20, 20, array.shape), 0, 255).astype(np.uint8)
    return genai.Image.from_pil(PILImage.fromarray(array, "RGB"))


def test_a_controlnet_pipeline_makes_pictures_at_the_sketch_size(models: dict[str, Path]) -> None:
    client = genai.Client(image=f"diffusers:{models['pipeline']}", ledger="memory://")
    seen: list[genai.Progress] = []
    made = client.images.from_sketch(_scribble(32, 24), "a house", n=2, seed=4, steps=2, on_progress=seen.append)
    again = client.images.from_sketch(_scribble(32, 24), "a house", n=2, seed=4, steps=2)
    other = client.images.from_sketch(_scribble(32, 24), "a house", n=2, seed=5, steps=2)
    assert [i.size for i in made.images] == [(32, 24)] * 2
    assert [i.data for i in made.images] == [i.data for i in again.images] != [i.data for i in other.images]
    assert [p.completed for p in seen if p.stage == "denoising"] == [1, 2]
    assert len([e for e in client.credits.history() if e.kind == "charge"]) == 3, "each call is charged once"
    rounded = client.images.from_sketch(_scribble(36, 27), "a house", seed=4, steps=1)
    assert rounded.image.size == (40, 24) and any("multiples of 8" in w for w in rounded.warnings)
    with pytest.raises(genai.UnsupportedError, match="cannot do images.generate"):
        client.images.generate("a house")


def test_a_plain_pipeline_takes_a_controlnet_folder_as_an_option(models: dict[str, Path]) -> None:
    from genai_sdk.providers.diffusers import POOL

    client = genai.Client(image=f"diffusers:{models['sd']}", ledger="memory://")
    with pytest.raises(genai.ConfigError, match="has no ControlNet: pass provider_options"):
        client.images.from_sketch(_scribble(32, 32), "a house")
    with pytest.raises(genai.ConfigError, match="not a ControlNet folder"):
        client.images.from_sketch(_scribble(32, 32), "a house", provider_options={"diffusers": {"controlnet": "/nowhere"}})
    assert client.credits.reserved() == 0 and not client.credits.history()
    options = {"diffusers": {"controlnet": str(models["canny"])}}
    made = client.images.from_sketch(_photo(32, 32), "a red fox", seed=1, steps=2, provider_options=options)
    loads = POOL.loads
    again = client.images.from_sketch(_photo(32, 32), "a red fox", seed=1, steps=2, provider_options=options)
    assert made.image.size == (32, 32) and made.image.data == again.image.data
    assert POOL.loads == loads, "the ControlNet pipeline was built again"
    plain = client.images.generate("a red fox", size="32x32", seed=1, steps=2)
    assert plain.image.size == (32, 32), "text-to-image still works beside the ControlNet"


def test_control_images_are_prepared_by_kind() -> None:
    import numpy as np

    from genai_sdk.providers.diffusers_control import control_image, guess_kind

    scribble = control_image(_scribble(32, 32).to_pil(), "scribble", (32, 32))
    array = np.asarray(scribble.convert("L"))
    assert np.median(array) == 0 and array.max() == 255, "dark lines on white are turned to white lines on black"
    edges = np.asarray(control_image(_photo(48, 48).to_pil(), "canny", (48, 48)).convert("L"))
    assert set(np.unique(edges)) <= {0, 255} and 0 < np.count_nonzero(edges) < edges.size // 3, "a photo becomes edges"
    assert edges[16, 16:32].max() == 255, "the block's top edge is found"
    depth = _photo(16, 16).to_pil()
    assert control_image(depth, "depth", (16, 16)).tobytes() == depth.tobytes(), "a depth map is used as given"
    assert [guess_kind(n) for n in ("sd-controlnet-canny", "control_v11f1p_sd15_depth", "my-net")] == [
        "canny", "depth", "scribble"]


def test_edges_without_opencv_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from genai_sdk.providers.diffusers_control import control_image

    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(genai.ConfigError, match=r"genai-sdk\[policy\]"):
        control_image(_photo(16, 16).to_pil(), "canny", (16, 16))
    control_image(_scribble(16, 16).to_pil(), "canny", (16, 16))  # a drawing needs no edge finding


def test_stopping_from_a_callback_is_not_charged(models: dict[str, Path]) -> None:
    client = genai.Client(image=f"diffusers:{models['pipeline']}", ledger="memory://")

    class Stop(Exception):
        pass

    def stop(progress: genai.Progress) -> None:
        if progress.stage == "denoising" and progress.completed == 2:
            raise Stop

    with pytest.raises(Stop):
        client.images.from_sketch(_scribble(32, 32), "a house", seed=1, steps=20, on_progress=stop)
    assert client.credits.reserved() == 0 and not client.credits.history()


def test_the_async_form(models: dict[str, Path]) -> None:
    sync = genai.Client(image=f"diffusers:{models['pipeline']}", ledger="memory://")
    expected = sync.images.from_sketch(_scribble(32, 32), "a house", seed=9, steps=2).image.data

    async def main() -> bytes:
        async with genai.AsyncClient(image=f"diffusers:{models['pipeline']}", ledger="memory://") as client:
            made = await client.images.from_sketch(_scribble(32, 32), "a house", seed=9, steps=2)
            return made.image.data

    assert asyncio.run(main()) == expected
