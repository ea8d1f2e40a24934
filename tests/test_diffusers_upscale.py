"""Local super-resolution through diffusers upscalers, tiled for large inputs, with tiny random pipelines."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import genai_sdk as genai

pytest.importorskip("diffusers", reason="the diffusers tests need the 'local' extra: pip install -e '.[dev,local]'")

from genai_sdk.testing.tiny_diffusers import (  # noqa: E402
    latent_upscaler,
    ldm_super_resolution,
    sd_upscaler,
    stable_diffusion,
)


@pytest.fixture(scope="module")
def ldm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ldm_super_resolution(tmp_path_factory.mktemp("models") / "tiny-ldm-sr")


@pytest.fixture(scope="module")
def sd_x4_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sd_upscaler(tmp_path_factory.mktemp("models") / "tiny-sd-x4")


def _picture(width: int, height: int) -> genai.Image:
    import numpy as np
    from PIL import Image as PILImage

    rows = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    cols = np.linspace(255, 0, width, dtype=np.float32)[None, :]
    array = np.stack([rows + 0 * cols, 0 * rows + cols, (rows + cols) / 2], axis=-1).astype(np.uint8)
    return genai.Image.from_pil(PILImage.fromarray(array, "RGB"))


def test_the_output_is_scale_times_the_input_and_follows_the_seed(ldm_folder: Path) -> None:
    client = genai.Client(image=f"diffusers:{ldm_folder}", ledger="memory://")
    source = _picture(40, 24)  # not multiples of the pipeline's 32: padded, and cropped off again
    first = client.images.upscale(source, seed=1, steps=2)
    again = client.images.upscale(source, scale=4, seed=1, steps=2)
    other = client.images.upscale(source, seed=2, steps=2)
    assert first.image.size == (160, 96)
    assert first.image.data == again.image.data and first.image.data != other.image.data
    assert first.image.provenance["seed"] == "1"
    charges = [e for e in client.credits.history() if e.kind == "charge"]
    assert len(charges) == 3, "each upscale is charged once"
    assert client.credits.reserved() == 0
    with pytest.raises(genai.UnsupportedError, match="cannot do images.generate"):
        client.images.generate("a cat")


def test_the_sd_x4_upscaler_takes_a_prompt_and_noise_level(sd_x4_folder: Path) -> None:
    client = genai.Client(image=f"diffusers:{sd_x4_folder}", ledger="memory://")
    options = {"diffusers": {"noise_level": 10}}
    made = client.images.upscale(_picture(24, 16), prompt="a red fox", seed=3, steps=2, provider_options=options)
    again = client.images.upscale(_picture(24, 16), prompt="a red fox", seed=3, steps=2, provider_options=options)
    assert made.image.size == (96, 64) and made.image.data == again.image.data
    noisier = client.images.upscale(_picture(24, 16), prompt="a red fox", seed=3, steps=2,
                                    provider_options={"diffusers": {"noise_level": 90}})  # fmt: skip
    assert noisier.image.data != made.image.data


# diffusers' Euler scheduler hands numpy a tensor in a way numpy 2 deprecates (diffusers' code, not the SDK's).
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
def test_the_latent_upscaler_doubles_in_tiles(tmp_path: Path) -> None:
    client = genai.Client(image=f"diffusers:{latent_upscaler(tmp_path / 'x2')}", ledger="memory://")
    with pytest.raises(genai.InvalidRequestError, match="upscales 2 times only"):
        client.images.upscale(_picture(20, 12), scale=4)
    seen: list[genai.Progress] = []
    options = {"diffusers": {"tile_size": 32, "tile_overlap": 8}}
    made = client.images.upscale(_picture(52, 20), prompt="a fox", seed=2, steps=2, scale=2, provider_options=options,
                                 on_progress=seen.append)  # fmt: skip
    assert made.image.size == (104, 40)  # 2 tiles across, padded from 20 to the pipeline's multiple of 8 and back
    assert [p.completed for p in seen if p.stage == "tiles"] == [1, 2]


def test_a_scale_the_pipeline_does_not_make_is_refused_before_loading(ldm_folder: Path, tmp_path: Path) -> None:
    from genai_sdk.providers.diffusers import POOL

    fresh = ldm_super_resolution(tmp_path / "never-loaded")
    client = genai.Client(image=f"diffusers:{fresh}", ledger="memory://")
    loads = POOL.loads
    with pytest.raises(genai.InvalidRequestError, match="upscales 4 times only"):
        client.images.upscale(_picture(16, 16), scale=2)
    with pytest.raises(genai.InvalidRequestError, match="tile_overlap=16: .*less than half"):
        client.images.upscale(_picture(16, 16), provider_options={"diffusers": {"tile_size": 32, "tile_overlap": 16}})
    with pytest.raises(genai.InvalidRequestError, match="size= is not taken"):
        client.images.upscale(_picture(16, 16), size="64x64")
    with pytest.raises(genai.InvalidRequestError, match="unknown key|not for images.upscale|does not apply"):
        client.images.upscale(_picture(16, 16), provider_options={"diffusers": {"controlnet": "/x"}})
    assert POOL.loads == loads and client.credits.reserved() == 0
    assert not client.credits.history()
    no_prompt = genai.Client(image=f"diffusers:{ldm_folder}", ledger="memory://")
    warned = no_prompt.images.upscale(_picture(16, 16), prompt="a cat", seed=1, steps=1)
    assert any("LDMSuperResolutionPipeline takes no prompt" in w for w in warned.warnings)


def test_a_text_to_image_folder_does_not_upscale(tmp_path: Path) -> None:
    folder = stable_diffusion(tmp_path / "sd")
    client = genai.Client(image=f"diffusers:{folder}", ledger="memory://")
    with pytest.raises(genai.UnsupportedError, match="cannot do images.upscale"):
        client.images.upscale(_picture(16, 16))


def test_large_inputs_go_in_overlapping_tiles_with_progress(ldm_folder: Path) -> None:
    import numpy as np

    client = genai.Client(image=f"diffusers:{ldm_folder}", ledger="memory://")
    seen: list[genai.Progress] = []
    options = {"diffusers": {"tile_size": 32, "tile_overlap": 8}}
    made = client.images.upscale(_picture(80, 48), seed=1, steps=2, provider_options=options, on_progress=seen.append)
    assert made.image.size == (320, 192)
    tiles = [p for p in seen if p.stage == "tiles"]
    assert [p.completed for p in tiles] == [1, 2, 3, 4, 5, 6] and tiles[-1].total == 6  # 3 across, 2 down
    steps = [p for p in seen if p.stage == "denoising"]
    assert [p.completed for p in steps] == list(range(1, 13)) and steps[-1].total == 12
    # No seam: where tiles meet, neighbouring columns differ no more than neighbouring columns anywhere do.
    array = np.asarray(made.image.to_pil().convert("RGB"), dtype=np.float32)
    jumps = np.abs(np.diff(array, axis=1)).mean(axis=(0, 2))
    for edge in (24 * 4, 32 * 4, 48 * 4, 56 * 4):  # the tiles' first and last columns, in output pixels
        assert jumps[edge - 1] <= 2.0 * float(np.median(jumps)) + 1.0, f"a seam at column {edge}"


def test_tiles_blend_exactly_and_without_seams() -> None:
    import numpy as np
    from PIL import Image as PILImage

    from genai_sdk.providers.diffusers_upscale import tile_starts, tiled

    assert tile_starts(100, 32, 8) == [0, 24, 48, 68] and tile_starts(30, 32, 8) == [0]
    source = _picture(70, 45).to_pil()

    def nearest(tile: PILImage.Image, index: int, count: int) -> PILImage.Image:
        return tile.resize((tile.width * 4, tile.height * 4), PILImage.Resampling.NEAREST)

    whole = nearest(source, 0, 1)
    assert np.array_equal(np.asarray(tiled(source, 4, 24, 6, nearest)), np.asarray(whole)), "tiling changed the picture"

    def biased(tile: PILImage.Image, index: int, count: int) -> PILImage.Image:  # a checkerboard of tiles 40 apart
        row, column = divmod(index, 4)  # 4 tiles across 70 pixels
        return PILImage.new("RGB", (tile.width * 4, tile.height * 4), (40 * ((row + column) % 2),) * 3)

    array = np.asarray(tiled(PILImage.new("RGB", (70, 45)), 4, 24, 6, biased), dtype=np.float32)
    worst = max(np.abs(np.diff(array, axis=1)).max(), np.abs(np.diff(array, axis=0)).max())
    assert worst <= 40 * 2 / (6 * 4) + 1, f"a step of {worst} between neighbouring pixels: the overlaps are not blended"


def test_stopping_from_a_callback_stops_between_tiles_and_is_not_charged(ldm_folder: Path) -> None:
    client = genai.Client(image=f"diffusers:{ldm_folder}", ledger="memory://")

    class Stop(Exception):
        pass

    def stop_on_second_tile(progress: genai.Progress) -> None:
        if progress.stage == "denoising" and progress.completed > 2:
            raise Stop

    with pytest.raises(Stop):
        client.images.upscale(_picture(80, 48), seed=1, steps=2, on_progress=stop_on_second_tile,
                              provider_options={"diffusers": {"tile_size": 32, "tile_overlap": 8}})  # fmt: skip
    assert client.credits.reserved() == 0 and not client.credits.history()


def test_the_async_form_matches_and_a_cancel_stops_it(ldm_folder: Path) -> None:
    sync = genai.Client(image=f"diffusers:{ldm_folder}", ledger="memory://").images.upscale(_picture(32, 32), seed=5, steps=2)

    async def main() -> tuple[bytes, int, int]:
        client = genai.AsyncClient(image=f"diffusers:{ldm_folder}", ledger="memory://")
        made = await client.images.upscale(_picture(32, 32), seed=5, steps=2)
        started = asyncio.Event()
        steps: list[float] = []
        loop = asyncio.get_running_loop()

        def report(progress: genai.Progress) -> None:
            if progress.stage == "denoising":
                steps.append(progress.completed)
                loop.call_soon_threadsafe(started.set)

        task = asyncio.create_task(client.images.upscale(_picture(32, 32), seed=1, steps=400, on_progress=report))
        await asyncio.wait_for(started.wait(), 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        at_cancel = len(steps)
        await asyncio.sleep(0.5)
        assert await client.credits.reserved() == 0
        charges = len([e for e in await client.credits.history() if e.kind == "charge"])
        assert charges == 1, "the cancelled upscale was charged"
        return made.image.data, at_cancel, len(steps)

    data, at_cancel, after = asyncio.run(main())
    assert data == sync.image.data
    assert after <= at_cancel + 2 and after < 400, "the pipeline went on after the cancel"
