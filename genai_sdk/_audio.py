"""Audio in and out: decoding any common container through PyAV, encoding speech, splitting long audio at silences.
numpy and PyAV are imported lazily; they come with the ``openai`` and ``local`` extras."""

from __future__ import annotations

import io
import itertools
import wave
from typing import TYPE_CHECKING, Any

from ._errors import ConfigError, InvalidRequestError
from ._media import Audio

if TYPE_CHECKING:
    import numpy as np

WHISPER_RATE = 16000
ENCODINGS = {  # container, codec and media type of each output format PyAV can write
    "mp3": ("mp3", "libmp3lame", "audio/mpeg"),
    "flac": ("flac", "flac", "audio/flac"),
    "ogg": ("ogg", "libopus", "audio/ogg"),
    "opus": ("ogg", "libopus", "audio/opus"),
    "aac": ("adts", "aac", "audio/aac"),
    "m4a": ("mp4", "aac", "audio/mp4"),
}
FORMATS = ("wav", "pcm", *ENCODINGS)


def _av() -> Any:
    try:
        import av
    except ModuleNotFoundError:
        raise ConfigError("decoding and encoding audio needs PyAV: "
                          "pip install 'genai-sdk[openai]' or '[speech]'") from None  # fmt: skip
    return av


def decode(audio: Audio, sample_rate: int = WHISPER_RATE) -> np.ndarray[Any, Any]:
    """Mono float32 samples at ``sample_rate`` from any container PyAV reads (wav, flac, mp3, ogg, m4a, webm)."""
    import numpy as np

    if not audio.data:
        raise InvalidRequestError("the audio is empty")
    av = _av()
    try:
        with av.open(io.BytesIO(audio.data), mode="r") as container:
            if not container.streams.audio:
                raise InvalidRequestError(f"no audio stream in this {audio.media_type} file")  # not caught below
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            frames = itertools.chain(container.decode(audio=0), [None])  # None: flush the resampler
            pieces = [converted.to_ndarray().reshape(-1) for frame in frames for converted in resampler.resample(frame)]
    except (av.error.FFmpegError, ValueError, EOFError) as exc:
        raise InvalidRequestError(f"could not decode the audio ({audio.media_type}): "
                                  f"corrupt or not audio ({exc})") from exc  # fmt: skip
    if not any(piece.size for piece in pieces):
        raise InvalidRequestError("the audio holds no samples")
    return np.concatenate(pieces).astype(np.float32, copy=False)


def probe(data: bytes, media_type: str) -> Audio:
    """An Audio value with the duration, rate and channels its container states (no decoding)."""
    try:
        av = _av()
        with av.open(io.BytesIO(data), mode="r") as container:
            stream = container.streams.audio[0]
            duration = float(container.duration / 1_000_000) if container.duration else None
            return Audio(data, media_type, stream.rate, duration, stream.channels)
    except Exception:  # no PyAV, no audio stream, or unreadable data (PyAV raises FFmpegError subclasses)
        return Audio(data, media_type)


def to_int16(samples: np.ndarray[Any, Any]) -> bytes:
    import numpy as np

    pcm: bytes = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    return pcm


def wav_bytes(pcm16: bytes, sample_rate: int, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setparams((channels, 2, sample_rate, 0, "NONE", "not compressed"))  # 16-bit PCM
        writer.writeframes(pcm16)
    return buffer.getvalue()


def encode(pcm16: bytes, sample_rate: int, fmt: str) -> Audio:
    """Mono 16-bit PCM as an Audio value in ``fmt`` (wav, pcm, mp3, flac, ogg, opus, aac, m4a)."""
    return encode_with_chapters(pcm16, sample_rate, fmt, [])


def encode_with_chapters(pcm16: bytes, sample_rate: int, fmt: str, chapters: list[tuple[float, float, str]]) -> Audio:
    """:func:`encode`, with chapters (start and end in seconds, a title) where the format holds them: MP3 (ID3
    chapter frames) and M4A (MP4 chapters). Other formats are written without them."""
    if fmt == "wav":
        return Audio.from_bytes(wav_bytes(pcm16, sample_rate))
    if fmt == "pcm":
        return Audio(pcm16, "audio/pcm", sample_rate, len(pcm16) / 2 / sample_rate, 1)
    if fmt not in ENCODINGS:
        raise InvalidRequestError(f"format={fmt!r}: use one of {', '.join(FORMATS)}")
    import numpy as np

    av = _av()
    container_format, codec, media_type = ENCODINGS[fmt]
    rate = 48000 if codec == "libopus" else sample_rate
    samples = np.frombuffer(pcm16, dtype="<i2").reshape(1, -1)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format) as container:
        if chapters and fmt in ("mp3", "m4a"):
            from fractions import Fraction

            container.set_chapters([
                {"id": i, "start": round(start * 1000), "end": round(end * 1000), "time_base": Fraction(1, 1000),
                 "metadata": {"title": title}}
                for i, (start, end, title) in enumerate(chapters, start=1)
            ])  # fmt: skip
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = sample_rate
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=rate)
        for converted in [*resampler.resample(frame), *resampler.resample(None), None]:  # None: flush the encoder
            container.mux(stream.encode(converted))
    return Audio(buffer.getvalue(), media_type, sample_rate, samples.shape[1] / sample_rate, 1)


def split_at_silences(samples: np.ndarray[Any, Any], sample_rate: int, max_seconds: float) -> list[tuple[int, int]]:
    """Cut points so that no piece is longer than ``max_seconds``, each cut at the quietest moment of the last
    fifth of its piece (the silence between words or sentences), so that no word is cut in two."""
    import numpy as np

    limit = int(max_seconds * sample_rate)
    if limit <= 0:
        raise ValueError("max_seconds must be positive")
    window = max(1, sample_rate // 50)  # 20 ms
    pieces: list[tuple[int, int]] = []
    start = 0
    total = samples.shape[0]
    while total - start > limit:
        search_from = start + int(limit * 0.8)
        search = samples[search_from : start + limit]
        usable = search.shape[0] // window * window
        if usable >= window:
            energy = np.sqrt(np.mean(search[:usable].reshape(-1, window) ** 2, axis=1))
            cut = search_from + int(np.argmin(energy)) * window + window // 2
        else:
            cut = start + limit
        pieces.append((start, cut))
        start = cut
    pieces.append((start, total))
    return pieces
