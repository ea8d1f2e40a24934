"""``-`` for standard input and standard output, through the real ``genai`` command in a child process against the
emulator (real pipes, real bytes): nothing but the payload on standard output, messages on standard error."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import genai_sdk as genai
from genai_sdk.testing import Emulator

PNG = b"\x89PNG\r\n\x1a\n"


def _genai(args: list[str], emulator: Emulator, folder: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, **emulator.env(), "GENAI_LEDGER": "memory://"}
    env.pop("PYTHONWARNINGS", None)  # only the command's own output may reach its standard error
    return subprocess.run(
        [sys.executable, "-m", "genai_sdk.cli", *args], cwd=folder, env=env, input=stdin if stdin is not None else b"",
        capture_output=True, timeout=120,
    )  # fmt: skip


def _png(size: tuple[int, int] = (64, 64)) -> bytes:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.new("RGB", size, (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_image_to_standard_output_is_the_image_alone(genai_emulator: Emulator, tmp_path: Path) -> None:
    done = _genai(["image", "a red fox", "--model", "openai:dall-e-2", "--size", "256x256", "-o", "-"], genai_emulator, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(PNG)
    image = genai.Image.from_bytes(done.stdout)  # decoded in full: the bytes are one PNG and nothing more
    assert (image.media_type, image.size) == ("image/png", (256, 256))
    assert b"cost: 1.6000 credits" in done.stderr
    assert list(tmp_path.iterdir()) == [], "no file was written"

    jpeg = _genai(["image", "a red fox", "--model", "openai:dall-e-2", "--size", "256x256", "-o", "-", "--format", "jpg"],
                  genai_emulator, tmp_path)  # fmt: skip
    assert jpeg.returncode == 0, jpeg.stderr
    assert jpeg.stdout.startswith(b"\xff\xd8\xff") and genai.Image.from_bytes(jpeg.stdout).media_type == "image/jpeg"


def test_several_images_to_standard_output_are_refused_before_sending(genai_emulator: Emulator, tmp_path: Path) -> None:
    done = _genai(["image", "a fox", "--model", "openai:dall-e-2", "-n", "2", "-o", "-"], genai_emulator, tmp_path)
    assert done.returncode == 2 and done.stdout == b""
    assert done.stderr.decode().splitlines() == [
        "genai: -o - writes one image to standard output, and 2 were asked for: use -n 1, or a file pattern such as "
        "'out{i}.png'"
    ]
    assert not genai_emulator.requests, "nothing was sent"


def test_speak_from_standard_input_to_standard_output_then_transcribe_it_back(genai_emulator: Emulator, tmp_path: Path) -> None:
    pytest.importorskip("av", reason="audio needs PyAV, which the 'openai' extra installs")
    spoken = _genai(["speak", "-", "-o", "-", "--model", "openai:tts-1"], genai_emulator, tmp_path, b"Hello from a pipe.\n")
    assert spoken.returncode == 0, spoken.stderr
    assert spoken.stdout[:4] == b"RIFF" and spoken.stdout[8:12] == b"WAVE"
    audio = genai.Audio.from_bytes(spoken.stdout)
    assert audio.media_type == "audio/wav" and (audio.duration or 0) > 0
    assert genai_emulator.calls("audio.speech")[0].json["input"] == "Hello from a pipe."
    assert b"s of audio" in spoken.stderr

    heard = _genai(["transcribe", "-", "--model", "openai:whisper-1"], genai_emulator, tmp_path, spoken.stdout)
    assert heard.returncode == 0, heard.stderr
    # The speech was streamed (re-encoded here as it arrived), so the emulator cannot echo its text; it says what
    # it heard: the length of the audio, read from a header whose sizes said "unknown".
    said = re.fullmatch(r"emulated transcript of ([0-9.]+) seconds of audio\n", heard.stdout.decode())
    assert said is not None and float(said.group(1)) == pytest.approx(audio.duration, abs=0.1)
    assert b"cost:" in heard.stderr and b"cost:" not in heard.stdout

    srt = _genai(["transcribe", "-", "--model", "openai:whisper-1", "--format", "srt", "-o", "-"], genai_emulator, tmp_path,
                 spoken.stdout)  # fmt: skip
    assert srt.returncode == 0 and b"--> " in srt.stdout and b"seconds of audio" in srt.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["transcribe", "-", "--model", "openai:whisper-1"],
        ["speak", "-", "-o", "x.wav", "--model", "openai:tts-1"],
        ["variations", "-", "--model", "openai:dall-e-2"],
        ["image", "-", "--model", "openai:dall-e-2"],
    ],
)
def test_an_empty_standard_input_is_an_error(genai_emulator: Emulator, tmp_path: Path, args: list[str]) -> None:
    done = _genai(args, genai_emulator, tmp_path, b"")
    assert done.returncode == 2 and done.stdout == b""
    (line,) = done.stderr.decode().splitlines()
    assert "standard input is empty" in line
    assert not genai_emulator.requests


def test_variations_of_an_image_read_from_standard_input(genai_emulator: Emulator, tmp_path: Path) -> None:
    done = _genai(["variations", "-", "--model", "openai:dall-e-2", "--size", "256x256", "-o", "-"], genai_emulator, tmp_path,
                  _png())  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert genai.Image.from_bytes(done.stdout).size == (256, 256)
    (call,) = genai_emulator.calls("images.variations")
    assert call.status == 200


def test_image_to_video_with_the_first_frame_from_standard_input(genai_emulator: Emulator, tmp_path: Path) -> None:
    done = _genai(["video", "a panda", "--model", "replicate:kwaivgi/kling-v2.1", "--image", "-", "--seconds", "5", "-o", "-"],
                  genai_emulator, tmp_path, _png())  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout[4:8] == b"ftyp", "an MP4 file, alone on standard output"
    (create,) = genai_emulator.calls("replicate.predictions.create")
    assert create.json["input"]["start_image"].startswith("data:image/png")
    assert list(tmp_path.iterdir()) == []
