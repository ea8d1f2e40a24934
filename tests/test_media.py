import io
import struct
import wave
from pathlib import Path

import pytest
from PIL import Image as PILImage

import genai_sdk as genai
from genai_sdk._media import atomic_write, read_provenance, sniff_image

FACTS = {"model": "openai:dall-e-2", "prompt_sha256": "ab" * 32, "seed": "7", "request_id": "req_1", "created": "2026-11-25T00:00:00+00:00"}


def _encoded(fmt: str, size: tuple[int, int] = (40, 30), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    PILImage.new(mode, size, (10, 20, 30) if mode == "RGB" else 128).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(("fmt", "media_type"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("GIF", "image/gif")])
def test_facts_are_read_from_the_header(fmt: str, media_type: str) -> None:
    assert sniff_image(_encoded(fmt, (123, 45))) == (media_type, 123, 45)


def test_lossless_webp_header() -> None:
    buffer = io.BytesIO()
    PILImage.new("RGBA", (77, 33)).save(buffer, format="WEBP", lossless=True)
    assert sniff_image(buffer.getvalue())[1:] == (77, 33)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".jpeg", ".webp"])
def test_save_picks_the_format_and_embeds_provenance(tmp_path: Path, suffix: str) -> None:
    image = genai.Image.from_bytes(_encoded("PNG", mode="RGBA"), FACTS)
    path = image.save(tmp_path / f"out{suffix}")
    reread = genai.Image.from_path(path)
    expected = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}[suffix]
    assert reread.media_type == expected and reread.size == (40, 30)
    assert reread.provenance == FACTS
    reference = tmp_path.parent / f"reference{suffix}"
    reference.write_bytes(b"")  # the mode any plain new file gets here
    assert path.stat().st_mode & 0o777 == reference.stat().st_mode & 0o777
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "no temporary file is left behind"


def test_save_refuses_unknown_extensions(tmp_path: Path) -> None:
    image = genai.Image.from_bytes(_encoded("PNG"))
    with pytest.raises(genai.InvalidRequestError, match="use one of .jpeg, .jpg, .png, .webp"):
        image.save(tmp_path / "out.bmp")
    with pytest.raises(genai.InvalidRequestError, match="folder .* does not exist"):
        image.save(tmp_path / "missing" / "out.png")


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "keep.png"
    target.write_bytes(b"old")

    def broken(handle: object) -> None:
        handle.write(b"half")  # type: ignore[attr-defined]
        raise OSError("disk full")

    with pytest.raises(genai.InvalidRequestError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_pil_round_trip_and_notebook_display() -> None:
    picture = PILImage.new("RGB", (16, 8), (255, 0, 0))
    image = genai.Image.from_pil(picture)
    assert image.to_pil().getpixel((0, 0)) == (255, 0, 0)
    bundle = image._repr_mimebundle_()
    assert "image/png" in bundle and "Image(image/png, 16x8" in bundle["text/plain"]
    webp = genai.Image.from_bytes(_encoded("WEBP"))
    assert "image/png" in webp._repr_mimebundle_()


def test_provenance_absent_is_empty() -> None:
    assert read_provenance(_encoded("PNG")) == {}
    assert read_provenance(b"junk") == {}


def test_from_path_errors(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(genai.InvalidRequestError, match="is empty"):
        genai.Image.from_path(tmp_path / "empty.png")
    with pytest.raises(genai.InvalidRequestError, match="no such file"):
        genai.Image.from_path(tmp_path / "nope.png")
    with pytest.raises(genai.InvalidRequestError, match="is a folder"):
        genai.Image.from_path(tmp_path)


def _wav(seconds: float, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(struct.pack("<h", 0) * int(seconds * rate))
    return buffer.getvalue()


def test_wav_provenance_round_trip(tmp_path: Path) -> None:
    audio = genai.Audio.from_bytes(_wav(0.5), provenance=FACTS)
    reread = genai.Audio.from_path(audio.save(tmp_path / "p.wav"))
    assert reread.provenance == FACTS and reread.duration == 0.5 and reread.sample_rate == 16000
    assert genai.Audio.from_path(genai.Audio.from_bytes(_wav(0.5)).save(tmp_path / "q.wav")).provenance == {}


def test_audio_facts_and_save(tmp_path: Path) -> None:
    audio = genai.Audio.from_bytes(_wav(1.5))
    assert (audio.media_type, audio.sample_rate, audio.duration, audio.channels) == ("audio/wav", 16000, 1.5, 1)
    audio.save(tmp_path / "a.wav")
    assert genai.Audio.from_path(tmp_path / "a.wav").duration == 1.5
    with pytest.raises(genai.InvalidRequestError, match="save it with the extension .wav"):
        audio.save(tmp_path / "a.mp3")
    with pytest.raises(genai.InvalidRequestError, match="unreadable WAV"):
        genai.Audio.from_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    assert "<audio controls" in audio._repr_html_()


def test_video_save_checks_the_container(tmp_path: Path) -> None:
    video = genai.Video(b"\x00\x00\x00\x18ftypmp42", "video/mp4", 64, 48, 8.0, 2.0)
    video.save(tmp_path / "v.mp4")
    assert (tmp_path / "v.mp4").read_bytes() == video.data
    with pytest.raises(genai.InvalidRequestError, match="extension .mp4"):
        video.save(tmp_path / "v.webm")
    assert "Video(video/mp4, 64x48, 2.0s" in repr(video)
    assert genai.Video.from_path(tmp_path / "v.mp4").media_type == "video/mp4"


def test_cost_arithmetic_keeps_unknown_prices_unknown() -> None:
    from decimal import Decimal

    priced = genai.Cost(Decimal(2), Decimal("0.02"))
    unpriced = genai.Cost(Decimal(1), None, estimated=True)
    assert (priced + priced).usd == Decimal("0.04")
    total = priced + unpriced
    assert total.usd is None and total.credits == 3 and total.estimated
    assert "unpriced" in str(total)
