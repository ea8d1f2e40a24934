"""Local models are quiet: no bars of diffusers' own on stderr (the SDK's on_progress reports the steps), no warning
that a local model has no USD price (its cost says so), and a price the application sets is charged."""

from __future__ import annotations

import asyncio
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

import pytest

import genai_sdk as genai

pytest.importorskip("diffusers", reason="the diffusers tests need the 'local' extra: pip install -e '.[dev,local]'")

from genai_sdk.testing.tiny_diffusers import stable_diffusion, text_to_video  # noqa: E402

BAR_TEXT = ("it/s]", "s/it]", "%|", "Loading pipeline components", "Loading weights")


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stable_diffusion(tmp_path_factory.mktemp("quiet") / "tiny-sd")


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return text_to_video(tmp_path_factory.mktemp("quiet") / "tiny-video")


def _denoising(seen: list[genai.Progress]) -> list[float]:
    return [p.completed for p in seen if p.stage == "denoising"]


def _no_bars(err: str) -> None:
    drawn = [text for text in BAR_TEXT if text in err]
    assert not drawn, f"a progress bar was drawn on stderr ({drawn}): {err[-500:]!r}"


def test_no_bar_is_drawn_by_any_pipeline_the_sdk_loads_or_derives(sd_folder: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from diffusers.utils import logging as diffusers_logging

    capfd.readouterr()  # what building the model drew
    client = genai.Client(image=f"diffusers:{sd_folder}", ledger="memory://")
    seen: list[genai.Progress] = []
    made = client.images.generate("a red fox", size="32x32", steps=3, seed=1, on_progress=seen.append)  # loads it
    assert _denoising(seen) == [1, 2, 3]
    for operation in ("img2img", "inpaint", "variations"):
        seen.clear()
        if operation == "variations":
            client.images.variations(made.image, steps=4, seed=1, on_progress=seen.append)
        else:
            mask = made.image if operation == "inpaint" else None
            client.images.edit(made.image, "a blue hat", mask=mask, steps=4, seed=1, on_progress=seen.append)
        assert _denoising(seen), f"{operation}: on_progress received no step"
    _no_bars(capfd.readouterr().err)
    assert diffusers_logging.is_progress_bar_enabled(), "diffusers' own setting is given back after loading"


def test_a_video_pipeline_without_step_callbacks_reports_and_stops_at_its_steps(
    video_folder: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import inspect

    from diffusers import TextToVideoSDPipeline

    assert "callback_on_step_end" not in inspect.signature(TextToVideoSDPipeline.__call__).parameters
    capfd.readouterr()
    client = genai.Client(video=f"diffusers:{video_folder}", ledger="memory://")
    seen: list[genai.Progress] = []
    result = client.videos.generate("a panda", seconds=1, fps=4, size="32x32", steps=3, seed=0, on_progress=seen.append)
    assert _denoising(seen) == [1, 2, 3] and [p.total for p in seen if p.stage == "denoising"] == [3, 3, 3]
    assert result.video.duration == pytest.approx(1.0)
    _no_bars(capfd.readouterr().err)

    class Stop(Exception):
        pass

    def stop_at_two(progress: genai.Progress) -> None:
        if progress.stage == "denoising" and progress.completed == 2:
            raise Stop

    charges = len(client.credits.history())
    with pytest.raises(Stop):
        client.videos.generate("a panda", seconds=1, fps=4, size="32x32", steps=50, seed=0, on_progress=stop_at_two)
    assert client.credits.reserved() == 0 and len(client.credits.history()) == charges, "a stopped call is not charged"
    seen.clear()
    again = client.videos.generate("a panda", seconds=1, fps=4, size="32x32", steps=3, seed=0, on_progress=seen.append)
    assert again.video.data == result.video.data and _denoising(seen) == [1, 2, 3], "the pooled pipeline is as it was"


def test_a_cancelled_video_task_stops_at_the_next_step_and_is_not_charged(video_folder: Path) -> None:
    async def main() -> tuple[int, int, int]:
        client = genai.AsyncClient(video=f"diffusers:{video_folder}", ledger="memory://")
        started = asyncio.Event()
        steps: list[float] = []
        loop = asyncio.get_running_loop()

        def report(progress: genai.Progress) -> None:  # from the worker thread that runs the pipeline
            if progress.stage == "denoising":
                steps.append(progress.completed)
                loop.call_soon_threadsafe(started.set)

        task = asyncio.create_task(client.videos.generate(
            "a panda", seconds=1, fps=4, size="32x32", steps=400, seed=0, on_progress=report,
        ))  # fmt: skip
        await asyncio.wait_for(started.wait(), 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        at_cancel = len(steps)
        await asyncio.sleep(0.5)
        charges = len([e for e in await client.credits.history() if e.kind == "charge"])
        assert await client.credits.reserved() == 0
        return at_cancel, len(steps), charges

    at_cancel, after, charges = asyncio.run(main())
    assert after <= at_cancel + 2 and after < 400, "the pipeline went on after the cancel"
    assert charges == 0


def test_a_local_model_is_unpriced_without_a_warning_and_priced_when_asked(sd_folder: Path) -> None:
    model = f"diffusers:{sd_folder}"
    result = genai.Client(image=model, ledger="memory://").images.generate("a cat", size="32x32", steps=2, seed=1)
    assert result.cost.usd is None and result.cost.credits > 0, "never a silent zero"
    assert not any("no USD price" in w for w in result.warnings), result.warnings

    configured = genai.Client(image=model, ledger="memory://", local_usd_per_second="0.001")
    assert configured.images.estimate("a cat", size="32x32", steps=2).usd == Decimal("0.01"), "10 s reserved an image"
    priced = configured.images.generate("a cat", size="32x32", steps=2, seed=1)
    assert priced.cost.usd is not None and priced.cost.usd > 0 and not priced.warnings
    assert priced.cost.credits == (priced.cost.usd * 100).quantize(Decimal("0.0001"), rounding=ROUND_CEILING)


def test_set_price_prices_a_local_folder_over_the_configured_rate(sd_folder: Path) -> None:
    model = f"diffusers:{sd_folder}"
    client = genai.Client(image=model, ledger="memory://", local_usd_per_second="0.001")
    client.catalog.set_price(model, "0.5")  # USD a compute-second, the unit of the model's own price
    assert client.images.estimate("a cat", n=2, size="32x32", steps=2).usd == Decimal("10.0"), "2 images, 10 s each"
    result = client.images.generate("a cat", size="32x32", steps=2, seed=1)
    assert result.cost.usd is not None and result.cost.usd > 0 and not result.warnings
    assert result.cost.credits == (result.cost.usd * 100).quantize(Decimal("0.0001"), rounding=ROUND_CEILING)
    assert client.credits.history()[-1].credits == -result.cost.credits
    client.catalog.set_price(model, "2", unit="image")
    per_image = client.images.generate("a cat", n=2, size="32x32", steps=2, seed=1)
    assert per_image.cost.usd == Decimal("4") and per_image.cost.credits == Decimal("400")
    with pytest.raises(genai.ConfigError, match="must be a finite number of USD >= 0"):
        client.catalog.set_price(model, "-0.5")
    assert client.images.generate("a cat", size="32x32", steps=2, seed=1).cost.usd == Decimal("2"), "the last good price"


def test_a_price_set_for_a_local_voice_is_charged() -> None:
    pytest.importorskip("piper", reason="the bundled voice needs the 'speech' extra")
    client = genai.Client(ledger="memory://")
    client.catalog.set_price("piper:en_US-joe-medium", "0.01", unit="compute_second")
    result = client.speech.synthesize("A priced voice.")
    assert result.cost.usd is not None and result.cost.usd > 0 and not result.warnings
