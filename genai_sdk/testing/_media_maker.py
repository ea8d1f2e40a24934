"""Deterministic media for the emulator: images that differ visibly per prompt, speech-like WAV audio, and short
MP4 videos."""

from __future__ import annotations

import hashlib
import io
import math
import struct
import wave
from functools import lru_cache

_TEXT_CHUNK = b"gtxt"  # a private RIFF chunk carrying the spoken text, so the emulator can "transcribe" its own speech


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()


@lru_cache(maxsize=256)
def make_image(
    prompt: str, width: int, height: int, index: int = 0, seed: int | None = None, fmt: str = "png",
    transparent: bool = False, compression: int = 85,
) -> bytes:
    """A picture derived from the prompt: two colours, a gradient, shapes placed by its hash, and the prompt text.
    ``transparent``: an RGBA picture (png or webp) whose gradient background is fully transparent."""
    from PIL import Image, ImageDraw, ImageOps

    digest = _digest(prompt, seed, index)
    first = (digest[0], digest[1], digest[2])
    second = (255 - digest[3], 255 - digest[4], 255 - digest[5])
    gradient = Image.linear_gradient("L").rotate(digest[6] % 4 * 90).resize((width, height))
    picture = ImageOps.colorize(gradient, first, second).convert("RGB")
    draw = ImageDraw.Draw(picture)
    alpha = Image.new("L", (width, height), 0)
    shapes = ImageDraw.Draw(alpha)
    for k in range(4):
        b = digest[8 + 4 * k : 12 + 4 * k]
        x, y = b[0] * width // 256, b[1] * height // 256
        r = (b[2] % 64 + 16) * min(width, height) // 256
        colour = (b[3], 255 - b[2], (b[0] + b[1]) % 256)
        if k % 2:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
            shapes.ellipse((x - r, y - r, x + r, y + r), fill=255)
        else:
            draw.rectangle((x - r, y - r // 2, x + r, y + r // 2), fill=colour)
            shapes.rectangle((x - r, y - r // 2, x + r, y + r // 2), fill=255)
    draw.text((8, 8), prompt[:60], fill=(255, 255, 255))
    shapes.text((8, 8), prompt[:60], fill=255)
    if transparent and fmt in ("png", "webp"):
        picture.putalpha(alpha)
    buffer = io.BytesIO()
    if fmt == "png":
        picture.save(buffer, format="PNG", compress_level=1)
    else:
        picture.save(buffer, format="JPEG" if fmt == "jpeg" else "WEBP", quality=compression)
    return buffer.getvalue()


def make_speech_wav(text: str, sample_rate: int = 24000, speed: float = 1.0) -> bytes:
    """A tone sequence as long as the text would take to say (about 15 characters a second), with the text inside."""
    seconds = max(0.5, len(text) / 15.0 / speed)
    frames = int(seconds * sample_rate)
    digest = _digest(text)
    samples = bytearray()
    for i in range(frames):
        word = digest[(i * 12 // sample_rate) % len(digest)]
        frequency = 180 + word * 2
        envelope = 0.5 + 0.5 * math.sin(math.pi * (i % (sample_rate // 6)) / (sample_rate // 6))
        samples += struct.pack("<h", int(9000 * envelope * math.sin(2 * math.pi * frequency * i / sample_rate)))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(bytes(samples))
    return _with_text_chunk(buffer.getvalue(), text)


def _with_text_chunk(wav: bytes, text: str) -> bytes:
    payload = text.encode("utf-8")
    if len(payload) % 2:
        payload += b"\x00"
    chunk = _TEXT_CHUNK + struct.pack("<I", len(payload)) + payload
    body = wav[12:] + chunk
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def spoken_text(wav: bytes) -> str | None:
    """The text the emulator hid in audio it made, if this is such audio."""
    if wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(wav):
        name, size = wav[pos : pos + 4], struct.unpack("<I", wav[pos + 4 : pos + 8])[0]
        if name == _TEXT_CHUNK:
            return wav[pos + 8 : pos + 8 + size].rstrip(b"\x00").decode("utf-8", "replace")
        pos += 8 + size + (size % 2)
    return None


def wav_duration(data: bytes) -> float | None:
    try:
        with wave.open(io.BytesIO(data)) as reader:
            return float(reader.getnframes()) / float(reader.getframerate())
    except (wave.Error, EOFError, ZeroDivisionError):
        return None


def audio_duration(data: bytes) -> float | None:
    """Seconds of audio in any container PyAV reads (wav, mp3, flac, ogg/opus, m4a/mp4, webm), counted from the decoded
    samples; None for data that is not audio."""
    seconds = wav_duration(data)
    if seconds is not None:
        return seconds
    try:
        import av
    except ModuleNotFoundError:  # pragma: no cover - PyAV comes with the openai extra
        return None
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                return None
            samples = 0
            rate = 0
            for frame in container.decode(audio=0):
                samples += frame.samples
                rate = frame.sample_rate or rate
            return samples / rate if rate and samples else None
    except (av.error.FFmpegError, ValueError, EOFError, IndexError):
        return None


def make_video(prompt: str, width: int, height: int, frames: int, fps: int) -> bytes:
    """A short H.264 MP4: the emulator's picture for the prompt, sliding one pixel a frame."""
    import av
    import numpy as np
    from PIL import Image as PILImage

    picture = np.asarray(PILImage.open(io.BytesIO(make_image(prompt, width, height, 0, None, "png"))).convert("RGB"))
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.roll(picture, index, axis=1)), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()
