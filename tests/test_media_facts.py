"""Media facts for every format: duration, sample rate and channels of MP3, FLAC, Ogg, Opus, AAC and M4A audio, size,
frame rate and duration of video, provenance kept in each container's own tags, and notebook display of results."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest

import genai_sdk as genai

av = pytest.importorskip("av", reason="media facts need PyAV (the 'openai' or 'local' extra)")
np = pytest.importorskip("numpy")

from genai_sdk._audio import encode, to_int16  # noqa: E402

FACTS = {"model": "test:model", "request_id": "r-1", "software": "genai_sdk"}
EXTENSIONS = {"mp3": ".mp3", "flac": ".flac", "ogg": ".ogg", "opus": ".opus", "aac": ".aac", "m4a": ".m4a"}


def _tone(seconds: float = 2.0, rate: int = 22050) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return to_int16((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))


@pytest.mark.parametrize("fmt", list(EXTENSIONS))
def test_audio_facts_and_provenance_in_every_format(fmt: str, tmp_path: Path) -> None:
    made = encode(_tone(), 22050, fmt)
    audio = genai.Audio(made.data, made.media_type, provenance=FACTS)
    path = audio.save(tmp_path / f"speech{EXTENSIONS[fmt]}")
    loaded = genai.Audio.from_path(path)
    assert loaded.media_type == made.media_type
    assert loaded.duration == pytest.approx(2.0, abs=0.12)  # what the container states (encoder padding aside)
    assert loaded.sample_rate == (48000 if fmt in ("ogg", "opus") else 22050) and loaded.channels == 1
    if fmt == "aac":  # raw AAC (ADTS) has no tags: saved as it is
        assert loaded.provenance == {} and path.read_bytes() == made.data
    else:
        assert loaded.provenance == FACTS
        with av.open(io.BytesIO(path.read_bytes())) as container:  # still the same audio: re-muxed, not re-encoded
            assert container.streams.audio[0].codec_context.name == av.open(io.BytesIO(made.data)).streams.audio[0].codec_context.name


def test_audio_that_is_not_what_it_says_has_no_facts_and_saves_as_it_came(tmp_path: Path) -> None:
    junk = genai.Audio(b"\x00not an mp3 at all" * 10, "audio/mpeg", provenance=FACTS)
    path = junk.save(tmp_path / "junk.mp3")
    assert path.read_bytes() == junk.data
    loaded = genai.Audio.from_path(path)
    assert (loaded.duration, loaded.sample_rate, loaded.provenance) == (None, None, {})


def _video(path: Path, fps: int = 8, frames: int = 16, size: tuple[int, int] = (64, 48)) -> None:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(frames):
            picture = np.full((size[1], size[0], 3), i * 12, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        container.mux(stream.encode(None))


def test_video_facts_and_provenance(tmp_path: Path) -> None:
    _video(tmp_path / "clip.mp4")
    video = genai.Video.from_path(tmp_path / "clip.mp4")
    assert (video.width, video.height, video.fps) == (64, 48, 8.0)
    assert video.duration == pytest.approx(2.0, abs=0.15)
    tagged = genai.Video(video.data, "video/mp4", provenance=FACTS).save(tmp_path / "tagged.mp4")
    again = genai.Video.from_path(tagged)
    assert again.provenance == FACTS and (again.width, again.height, again.fps) == (64, 48, 8.0)


def test_results_display_in_a_notebook() -> None:
    from genai_sdk._requests import Segment, SpeechResult, Transcript

    pictures = [genai.Image.from_pil(__import__("PIL.Image").Image.new("RGB", (8, 8), c)) for c in ("red", "blue")]
    cost = genai.Cost(Decimal("1.5"), None)
    result = genai.ImageResult(pictures, cost, "test:<model>", warnings=["a <b>bold</b> claim"])
    html = result._repr_html_()
    assert html.count("<img ") == 2 and "data:image/png;base64," in html
    assert "&lt;b&gt;bold" in html and "test:&lt;model&gt;" in html and "<b>" not in html
    transcript = Transcript("hi <there>", "en", 1.0, [Segment(0.0, 1.0, "hi <there>")], cost, "whisper:tiny.en")
    assert "hi &lt;there&gt;" in transcript._repr_html_() and "00:00:01.000" in transcript._repr_html_()
    speech = SpeechResult(genai.Audio(b"RIFF", "audio/wav"), cost, "piper:x")
    assert speech._repr_html_().startswith("<audio controls") and "1.5 credits" in speech._repr_html_()


def test_a_streamed_wav_with_unknown_sizes_reads_as_what_it_holds() -> None:
    import struct

    pcm = _tone(1.5)
    header = (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 22050, 44100, 2, 16)
              + b"data" + struct.pack("<I", 0xFFFFFFFF))  # fmt: skip
    audio = genai.Audio.from_bytes(header + pcm)
    assert audio.duration == pytest.approx(1.5) and audio.sample_rate == 22050
    assert struct.unpack("<I", audio.data[40:44])[0] == len(pcm) and struct.unpack("<I", audio.data[4:8])[0] == len(audio.data) - 8
    cut = genai.Audio.from_bytes(header + pcm[:-1])  # a sample cut in two at the end: dropped
    assert len(cut.data) - 44 == len(pcm) - 2
