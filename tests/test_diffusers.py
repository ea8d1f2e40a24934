"""Local diffusers pipelines through the SDK's real loading code, on the CPU, with tiny random models."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import TypedDict

import pytest

import genai_sdk as genai

pytest.importorskip("diffusers", reason="the diffusers tests need the 'local' extra: pip install -e '.[dev,local]'")

from genai_sdk.testing.tiny_diffusers import image_variation, stable_diffusion, text_to_video  # noqa: E402


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stable_diffusion(tmp_path_factory.mktemp("models") / "tiny-sd")


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return text_to_video(tmp_path_factory.mktemp("models") / "tiny-video")


@pytest.fixture
def client(sd_folder: Path) -> genai.Client:
    return genai.Client(image=f"diffusers:{sd_folder}", ledger="memory://")


class _Small(TypedDict):
    size: str
    steps: int


SMALL: _Small = {"size": "32x32", "steps": 2}  # typed, so that **SMALL is checked against the calls' keywords


def test_generate_is_reproducible_by_seed(client: genai.Client) -> None:
    first = client.images.generate("an avocado couch", seed=7, **SMALL)
    again = client.images.generate("an avocado couch", seed=7, **SMALL)
    other = client.images.generate("an avocado couch", seed=8, **SMALL)
    assert first.image.data == again.image.data
    assert first.image.data != other.image.data
    assert first.image.size == (32, 32) and first.model.startswith("diffusers:")
    assert first.image.provenance["seed"] == "7"
    assert first.cost.usd is None and first.cost.credits > 0
    assert not any("does not support" in w for w in first.warnings)


def test_a_seedless_call_records_the_seed_it_used(client: genai.Client) -> None:
    result = client.images.generate("a red fox", n=2, negative_prompt="blue", guidance=3.0, **SMALL)
    seed = int(result.images[0].provenance["seed"])
    assert len(result.images) == 2
    again = client.images.generate("a red fox", n=2, negative_prompt="blue", guidance=3.0, seed=seed, **SMALL)
    assert [i.data for i in again.images] == [i.data for i in result.images]


def test_inpainting_keeps_the_unmasked_region(client: genai.Client) -> None:
    from PIL import Image as PILImage
    from PIL import ImageChops

    source = client.images.generate("a house", seed=1, **SMALL).image
    mask = PILImage.new("RGBA", (32, 32), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (8, 8, 24, 24))  # transparent: may change
    edited = client.images.edit(source, "a lamp", mask=mask, seed=2, **SMALL).image
    before, after = source.to_pil().convert("RGB"), edited.to_pil().convert("RGB")
    outside = PILImage.new("L", (32, 32), 255)
    outside.paste(0, (8, 8, 24, 24))
    diff = ImageChops.difference(before, after)
    assert ImageChops.multiply(diff.convert("L"), outside).getbbox() is None, "pixels outside the mask changed"
    inside = diff.crop((8, 8, 24, 24)).convert("L")
    assert inside.getbbox() is not None, "nothing changed inside the mask"


def test_edit_without_mask_and_variations(client: genai.Client) -> None:
    source = client.images.generate("a cat", seed=3, **SMALL).image
    restyled = client.images.edit(source, "a blue cat", seed=4, steps=4)
    varied = client.images.variations(source, n=2, seed=5, steps=4)
    assert restyled.image.size == (32, 32) and len(varied.images) == 2
    assert restyled.image.data != source.data
    combined = client.images.edit([source, restyled.image], "both", seed=6, steps=4)
    assert any("blended into one starting image" in w for w in combined.warnings)


def test_weights_load_once_and_tasks_share_them(client: genai.Client, sd_folder: Path) -> None:
    from genai_sdk.providers.diffusers import POOL

    client.images.generate("a dog", seed=1, **SMALL)
    loads = POOL.loads
    source = client.images.generate("a dog", seed=1, **SMALL).image
    client.images.edit(source, "a hat", seed=1, steps=4)
    client.images.variations(source, seed=1, steps=4)
    mask = genai.Image.from_pil(__import__("PIL.Image", fromlist=["Image"]).new("L", (32, 32), 255))
    client.images.edit(source, "a hat", mask=mask, seed=1, **SMALL)
    genai.Client(ledger="memory://").images.generate("a dog", model=f"diffusers:{sd_folder}", seed=1, **SMALL)
    assert POOL.loads == loads, "a second call, another client or a switch of task reloaded the weights"
    entry = next(e for k, e in POOL._entries.items() if k[0] == str(sd_folder.resolve()))
    assert {"text2img", "img2img", "inpaint"} <= set(entry)
    assert entry["inpaint"].unet is entry["base"].unet and entry["img2img"].vae is entry["base"].vae


def test_progress_and_cancellation_from_a_callback(client: genai.Client) -> None:
    seen: list[genai.Progress] = []
    client.images.generate("a panda", seed=1, on_progress=seen.append, size="32x32", steps=3)
    steps = [p for p in seen if p.stage == "denoising"]
    assert [p.completed for p in steps] == [1, 2, 3] and steps[-1].total == 3

    class Stop(Exception):
        pass

    def stop_at_two(progress: genai.Progress) -> None:
        if progress.stage == "denoising" and progress.completed == 2:
            raise Stop

    charges = len(client.credits.history())
    with pytest.raises(Stop):
        client.images.generate("a panda", seed=1, on_progress=stop_at_two, size="32x32", steps=50)
    assert client.credits.reserved() == 0
    assert len(client.credits.history()) == charges, "a stopped call must not be charged"


def test_a_cancelled_task_stops_at_the_next_step_and_is_not_charged(sd_folder: Path) -> None:
    async def main() -> tuple[int, int]:
        client = genai.AsyncClient(image=f"diffusers:{sd_folder}", ledger="memory://")
        started = asyncio.Event()
        steps: list[float] = []
        loop = asyncio.get_running_loop()

        def report(progress: genai.Progress) -> None:  # called from the worker thread that runs the pipeline
            if progress.stage == "denoising":
                steps.append(progress.completed)
                loop.call_soon_threadsafe(started.set)

        task = asyncio.create_task(client.images.generate("a couch", size="32x32", steps=400, seed=1, on_progress=report))
        await asyncio.wait_for(started.wait(), 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        at_cancel = len(steps)
        await asyncio.sleep(0.5)
        charges = len([e for e in await client.credits.history() if e.kind == "charge"])
        assert await client.credits.reserved() == 0
        return at_cancel, len(steps) + charges

    at_cancel, after = asyncio.run(main())
    assert after <= at_cancel + 2, "the pipeline went on after the cancel"


def test_video_pipeline_makes_an_mp4(video_folder: Path) -> None:
    import av

    client = genai.Client(video=f"diffusers:{video_folder}", ledger="memory://")
    result = client.videos.generate("a panda playing guitar", seconds=1.5, fps=6, size="32x32", seed=0, steps=2)
    video = result.video
    assert (video.media_type, video.width, video.height, video.fps) == ("video/mp4", 32, 32, 6.0)
    assert video.duration == pytest.approx(1.5)
    with av.open(io.BytesIO(video.data)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(video=0))
        assert stream.codec_context.name == "h264" and float(stream.average_rate) == 6.0
        assert len(frames) == 9 and frames[0].width == 32
    assert video.provenance["seed"] == "0"
    saved = genai.Video.from_path(video.save(Path("panda.mp4")))
    assert saved.provenance == video.provenance, "the MP4's comment tag carries the provenance"
    with av.open("panda.mp4") as container:
        assert len(list(container.decode(video=0))) == 9, "re-muxing kept every frame"
    again = client.videos.generate("a panda playing guitar", seconds=1.5, fps=6, size="32x32", seed=0, steps=2)
    assert again.video.data == video.data
    with pytest.raises(genai.UnsupportedError, match="cannot do images.generate"):
        client.images.generate("a panda", model=f"diffusers:{video_folder}")


def test_pickle_weights_are_refused_unless_allowed(tmp_path: Path) -> None:
    folder = stable_diffusion(tmp_path / "pickled", safetensors=False)
    client = genai.Client(image=f"diffusers:{folder}", ledger="memory://")
    with pytest.raises(genai.ConfigError, match="only pickle weights .* runs code from the file"):
        client.images.generate("a couch", **SMALL)
    allowed = client.images.generate("a couch", provider_options={"diffusers": {"allow_pickle": True}}, **SMALL)
    assert allowed.image.size == (32, 32)


def test_missing_or_malformed_folders(tmp_path: Path, sd_folder: Path) -> None:
    import shutil

    empty = tmp_path / "empty"
    empty.mkdir()
    client = genai.Client(ledger="memory://")
    with pytest.raises(genai.ConfigError, match="model_index.json is missing"):
        client.images.generate("x", model=f"diffusers:{empty}")
    broken = tmp_path / "broken"
    shutil.copytree(sd_folder, broken)
    shutil.rmtree(broken / "vae")
    with pytest.raises(genai.ConfigError, match="missing the 'vae' component"):
        client.images.generate("x", model=f"diffusers:{broken}")
    (broken / "model_index.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(genai.ConfigError, match="not valid JSON"):
        client.images.generate("x", model=f"diffusers:{broken}")
    with pytest.raises(genai.ConfigError, match="not in the local Hugging Face cache .*downloads are off"):
        client.images.generate("x", model="diffusers:nobody/no-such-model")
    with pytest.raises(genai.InvalidRequestError, match="multiples of 8"):
        client.images.generate("x", model=f"diffusers:{sd_folder}", size="30x30")
    with pytest.raises(genai.InvalidRequestError, match="unknown key"):
        client.images.generate("x", model=f"diffusers:{sd_folder}", provider_options={"diffusers": {"turbo": 1}})


def test_the_pool_evicts_the_least_recently_used_under_a_memory_budget(sd_folder: Path, tmp_path: Path) -> None:
    from genai_sdk.providers import diffusers as provider

    other = stable_diffusion(tmp_path / "second-sd")
    small = provider.PipelinePool()
    saved, provider.POOL = provider.POOL, small
    try:
        client = genai.Client(ledger="memory://")
        client.images.generate("a", model=f"diffusers:{sd_folder}", seed=1, **SMALL)
        one = next(iter(small._entries.values()))["bytes"]
        assert one > 0
        small.budget_bytes = int(one * 1.5)  # room for one pipeline, not two
        client.images.generate("a", model=f"diffusers:{other}", seed=1, **SMALL)
        assert [k[0] for k in small._entries] == [str(other.resolve())], "the least recently used was not evicted"
        client.images.generate("a", model=f"diffusers:{other}", seed=1, **SMALL)
        assert small.loads == 2
        client.images.generate("a", model=f"diffusers:{sd_folder}", seed=1, **SMALL)
        assert small.loads == 3 and len(small._entries) == 1
    finally:
        provider.POOL = saved


def test_an_image_variation_pipeline_is_used_as_one(tmp_path: Path) -> None:
    from PIL import Image as PILImage

    folder = image_variation(tmp_path / "variation")
    client = genai.Client(ledger="memory://")
    source = PILImage.new("RGB", (32, 32), (200, 10, 10))
    first = client.images.variations(source, model=f"diffusers:{folder}", n=2, seed=1, **SMALL)
    again = client.images.variations(source, model=f"diffusers:{folder}", n=2, seed=1, **SMALL)
    assert [i.size for i in first.images] == [(32, 32)] * 2
    assert [i.data for i in first.images] == [i.data for i in again.images]
    with pytest.raises(genai.UnsupportedError, match="cannot do images.generate"):
        client.images.generate("a couch", model=f"diffusers:{folder}")


def test_the_video_command(video_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from genai_sdk.cli import main

    code = main(["video", "a panda playing guitar", "--model", f"diffusers:{video_folder}", "--seconds", "1",
                 "--fps", "4", "--size", "32x32", "--seed", "3", "--steps", "2"])
    assert code == 0
    assert capsys.readouterr().out.strip() == "a_panda_playing_guitar.mp4"
    video = genai.Video.from_path(tmp_path / "a_panda_playing_guitar.mp4")
    assert video.media_type == "video/mp4" and len(video.data) > 100
