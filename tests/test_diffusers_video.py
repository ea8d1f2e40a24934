"""Every family of diffusers video pipeline through the one video code path, with tiny random models on the CPU."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict

import pytest

import genai_sdk as genai

pytest.importorskip("diffusers", reason="the diffusers tests need the 'local' extra: pip install -e '.[dev,local]'")

from genai_sdk.testing.tiny_diffusers import animatediff, cogvideox, ltx_video, wan  # noqa: E402


class _Small(TypedDict):
    seconds: float
    fps: int
    size: str
    steps: int


SMALL: _Small = {"seconds": 1, "fps": 8, "size": "32x32", "steps": 2}  # typed, so that **SMALL is checked against the keywords
FAMILIES: dict[str, tuple[Callable[[Path], Path], int]] = {
    # family: (builder, frames made for 1 s at 8 fps: VAEs that compress time by 4 make 4k+1 frames)
    "animatediff": (animatediff, 8),
    "cogvideox": (cogvideox, 9),
    "ltx": (ltx_video, 9),
    "wan": (wan, 9),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("video-models")
    return {name: build(root / name) for name, (build, _) in FAMILIES.items()}


def _decoded_frames(data: bytes) -> tuple[int, float, str]:
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        return len(list(container.decode(video=0))), float(stream.average_rate), stream.codec_context.name


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_makes_an_mp4_of_the_frames_it_can_make(family: str, folders: dict[str, Path]) -> None:
    client = genai.Client(video=f"diffusers:{folders[family]}", ledger="memory://")
    steps: list[float] = []
    result = client.videos.generate("a panda playing guitar", seed=0, on_progress=lambda p: steps.append(p.completed) if p.stage == "denoising" else None, **SMALL)
    expected = FAMILIES[family][1]
    assert _decoded_frames(result.video.data) == (expected, 8.0, "h264")
    assert (result.video.width, result.video.height, result.video.fps) == (32, 32, 8.0)
    assert result.video.duration == pytest.approx(expected / 8)
    rounded = [w for w in result.warnings if "4k+1 frames" in w]
    assert len(rounded) == (expected != 8), result.warnings
    assert steps[-2:] == [1, 2], "each denoising step is reported"
    again = client.videos.generate("a panda playing guitar", seed=0, **SMALL)
    assert again.video.data == result.video.data, "the same seed makes the same video"


def test_sizes_the_model_cannot_make_are_refused_before_anything_is_charged(folders: dict[str, Path]) -> None:
    wan_client = genai.Client(video=f"diffusers:{folders['wan']}", ledger="memory://")
    with pytest.raises(genai.InvalidRequestError, match="multiples of 16"):
        wan_client.videos.generate("a cat", seconds=1, fps=8, size="24x24", steps=2)
    ltx_client = genai.Client(video=f"diffusers:{folders['ltx']}", ledger="memory://")
    with pytest.raises(genai.InvalidRequestError, match="refused the settings: .*divisible by 32"):
        ltx_client.videos.generate("a cat", seconds=1, fps=8, size="48x48", steps=2)
    for client in (wan_client, ltx_client):
        assert client.credits.reserved() == 0
        assert client.credits.history() == []


def test_image_to_video_pipelines_take_the_starting_image(tmp_path: Path, folders: dict[str, Path]) -> None:
    from PIL import Image as PILImage

    folder = ltx_video(tmp_path / "ltx-i2v", image_to_video=True)
    client = genai.Client(video=f"diffusers:{folder}", ledger="memory://")
    start = PILImage.new("RGB", (40, 40), (200, 30, 30))
    result = client.videos.generate("a red lamp", image=start, seed=1, **SMALL)
    assert _decoded_frames(result.video.data)[0] == 9
    other = client.videos.generate("a red lamp", image=PILImage.new("RGB", (40, 40), (0, 0, 220)), seed=1, **SMALL)
    assert other.video.data != result.video.data, "the starting image conditions the video"
    with pytest.raises(genai.InvalidRequestError, match="from a starting image: pass image="):
        client.videos.generate("a red lamp", seed=1, **SMALL)
    text_only = genai.Client(video=f"diffusers:{folders['wan']}", ledger="memory://")
    with pytest.raises(genai.UnsupportedError, match="from text alone"):
        text_only.videos.generate("a red lamp", image=start, **SMALL)
    assert text_only.credits.reserved() == 0


def test_encoded_frames_show_what_they_were_given_in_any_memory_layout() -> None:
    import numpy as np

    from genai_sdk.providers.diffusers import encode_mp4

    ramp = np.linspace(0, 255, 32, dtype=np.float32)
    planes = np.stack([np.add.outer(ramp, ramp) / 2, np.add.outer(ramp, 255 - ramp) / 2, np.full((32, 32), 128.0)])
    channels_first = np.stack([np.roll(planes, shift, axis=2) for shift in range(0, 20, 4)]).round().astype(np.uint8)
    strided = channels_first.transpose(0, 2, 3, 1)  # (frames, height, width, 3) as a view, the way a tensor gives it
    assert not strided.flags["C_CONTIGUOUS"]
    video = encode_mp4(strided, 5)
    assert video.data == encode_mp4(np.ascontiguousarray(strided), 5).data
    import av

    with av.open(io.BytesIO(video.data)) as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]).astype(float)
    assert decoded.shape == strided.shape
    assert np.abs(decoded - strided).mean() < 3, "the encoded video shows the frames it was given"
