"""Image, Video and Audio values: bytes plus the facts about them, saved atomically with provenance."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import struct
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from glob import escape as glob_escape
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ._errors import InvalidRequestError

if TYPE_CHECKING:
    from PIL import Image as PILImage

PROVENANCE_KEY = "genai:provenance"
_EXIF_IMAGE_DESCRIPTION = 0x010E
_EXIF_SOFTWARE = 0x0131
STALE_TEMPORARY = 3600.0  # seconds after which a temporary file of a save is taken for one a killed process left
MAX_PIXELS = 100_000_000  # 100 megapixels: above any model's output (upscalers included), far below a "bomb"

_IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}  # extension -> Pillow format
_VIDEO_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".gif": "image/gif", ".mov": "video/quicktime"}
IMAGE_EXTENSIONS = tuple(_IMAGE_FORMATS)
VIDEO_EXTENSIONS = tuple(_VIDEO_TYPES)
_AUDIO_TYPES = {
    ".wav": "audio/wav", ".mp3": "audio/mpeg", ".flac": "audio/flac", ".ogg": "audio/ogg", ".opus": "audio/opus",
    ".aac": "audio/aac", ".m4a": "audio/mp4", ".pcm": "audio/pcm",
}  # fmt: skip
AUDIO_EXTENSIONS = tuple(_AUDIO_TYPES)


def make_provenance(
    *, model: str, prompt: str | None, seed: int | None = None, request_id: str | None = None
) -> dict[str, str]:
    """The facts recorded in every file the SDK saves. The prompt itself is not stored, only its digest."""
    facts = {"model": model, "created": datetime.now(UTC).isoformat(timespec="seconds"), "software": "genai_sdk"}
    if prompt is not None:
        facts["prompt_sha256"] = hashlib.sha256(prompt.encode("utf-8")).hexdigest()
    if seed is not None:
        facts["seed"] = str(seed)
    if request_id:
        facts["request_id"] = request_id
    return facts


@lru_cache(maxsize=1)
def _file_mode() -> int:
    """The mode a plain open() would give a new file (mkstemp's 0600 would surprise users)."""
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> Path:
    """Write through a temporary file in the target folder, then rename: never a half-written file."""
    target = _checked_path(path)
    folder = target.parent  # Path("name").parent is Path(".")
    try:
        if not folder.is_dir():
            raise InvalidRequestError(f"cannot save {target}: the folder {folder} does not exist")
        if target.is_dir():
            raise InvalidRequestError(f"cannot save to {target}: it is a folder; give a file name")
        _remove_stale_temporaries(folder, target.name)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        try:
            os.fchmod(fd, _file_mode())
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
    except OSError as exc:  # a name too long, a folder that cannot be read, a full disk
        raise InvalidRequestError(f"cannot save {target}: {exc.strerror or exc}") from exc
    return target


def _remove_stale_temporaries(folder: Path, name: str) -> None:
    """A save killed midway (kill -9, a power cut) leaves its temporary file: the next save of the file removes it."""
    limit = time.time() - STALE_TEMPORARY
    for stale in folder.glob(f".{glob_escape(name)}.*.tmp"):
        with contextlib.suppress(OSError):  # another process's, or already gone
            if stale.stat().st_mtime < limit:
                stale.unlink()


def _checked_path(path: str | os.PathLike[str]) -> Path:
    """A file name the SDK can write to, or an InvalidRequestError saying why not."""
    try:
        text = os.fspath(path)
    except TypeError:
        raise InvalidRequestError(f"{path!r} is not a file name: give a str or a pathlib.Path") from None
    if isinstance(text, bytes) or "\x00" in text or not text:
        raise InvalidRequestError(f"{text!r} is not a usable file name (bytes, empty, or with a NUL character)")
    try:
        os.fsencode(text)
    except UnicodeEncodeError:
        raise InvalidRequestError(f"{text!r} cannot be a file name here: "
                                  "it holds characters the file system cannot encode") from None  # fmt: skip
    return Path(text)


def sniff_image(data: bytes) -> tuple[str, int, int]:
    """Media type, width and height read from the header alone (no Pillow, so it stays cheap)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return ("image/png", *struct.unpack(">II", data[16:24]))
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return ("image/gif", *struct.unpack("<HH", data[6:10]))
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ("image/webp", *_webp_size(data))
    if data[:2] == b"\xff\xd8":
        return ("image/jpeg", *_jpeg_size(data))
    raise InvalidRequestError("not a PNG, JPEG, WebP or GIF image (the first bytes match none of them)")


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> tuple[str, int, int]:
    """Media type and size of untrusted image bytes, every pixel decoded (the declared size checked first): a truncated
    file, junk after a header or a "decompression bomb" is an InvalidRequestError here, not a crash in ``save()``."""
    media_type, width, height = sniff_image(data)
    if width <= 0 or height <= 0 or width * height > max_pixels:
        raise InvalidRequestError(f"the image declares {width}x{height} pixels: the limit is {max_pixels:,} pixels")
    from PIL import Image as PILImageModule

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImageModule.DecompressionBombWarning)
            picture = PILImageModule.open(io.BytesIO(data))
            if picture.width * picture.height > max_pixels:
                raise InvalidRequestError(f"the image is {picture.width}x{picture.height}: over {max_pixels:,} pixels")
            picture.load()
    except (OSError, SyntaxError, ValueError, EOFError, PILImageModule.DecompressionBombError, Warning) as exc:
        raise InvalidRequestError(f"the {media_type} image cannot be decoded: {exc}") from exc
    return media_type, picture.width, picture.height


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    raise InvalidRequestError("unreadable WebP header")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos = 2
    while pos + 9 < len(data):
        if data[pos] != 0xFF:
            pos += 1
            continue
        marker = data[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    raise InvalidRequestError("unreadable JPEG header (no frame marker)")


def _load_bytes(source: str | os.PathLike[str]) -> bytes:
    path = _checked_path(source)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidRequestError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise InvalidRequestError(f"{path} is a folder, not a file") from None
    except OSError as exc:
        raise InvalidRequestError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not data:
        raise InvalidRequestError(f"{path} is empty")
    return data


@dataclass(frozen=True, eq=False)
class Image:
    """An image: its encoded bytes, media type and pixel size, plus where it came from."""

    data: bytes
    media_type: str
    width: int
    height: int
    provenance: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_bytes(cls, data: bytes, provenance: Mapping[str, str] | None = None) -> Image:
        """An image from encoded bytes, decoded in full (under MAX_PIXELS) to make sure it is one."""
        media_type, width, height = decode_image(data)
        return cls(data, media_type, width, height, dict(provenance or {}))

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Image:
        """Read an image file, with any provenance the SDK embedded when it saved it."""
        data = _load_bytes(path)
        return replace(cls.from_bytes(data), provenance=read_provenance(data))

    @classmethod
    def from_pil(cls, picture: PILImage.Image, provenance: Mapping[str, str] | None = None) -> Image:
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        return cls(buffer.getvalue(), "image/png", picture.width, picture.height, dict(provenance or {}))

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def to_pil(self) -> PILImage.Image:
        from PIL import Image as PILImageModule

        picture = PILImageModule.open(io.BytesIO(self.data))
        picture.load()
        return picture

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the image, in the format its extension names, atomically, with provenance in its metadata."""
        encoded = self._encode(_IMAGE_FORMATS[_suffix(path, _IMAGE_FORMATS, "an image")])
        return atomic_write(path, lambda handle: handle.write(encoded))

    def encode(self, extension: str) -> bytes:
        """The bytes ``save`` would write for a file with this extension."""
        suffix = (extension if extension.startswith(".") else f".{extension}").lower()
        if suffix not in _IMAGE_FORMATS:
            raise InvalidRequestError(f"unknown image format {extension!r}")
        return self._encode(_IMAGE_FORMATS[suffix])

    def _encode(self, pil_format: str) -> bytes:
        from PIL import Image as PILImageModule
        from PIL import PngImagePlugin

        picture = self.to_pil()
        facts = json.dumps(dict(self.provenance), sort_keys=True)
        buffer = io.BytesIO()
        # CMYK, YCbCr, LAB: not in PNG nor WebP
        if pil_format in ("PNG", "WEBP") and picture.mode not in ("RGB", "RGBA", "L", "LA", "P", "1", "I", "I;16"):
            picture = picture.convert("RGBA" if "A" in picture.mode else "RGB")
        if pil_format == "PNG":
            info = PngImagePlugin.PngInfo()
            info.add_text(PROVENANCE_KEY, facts)
            info.add_text("Software", "genai_sdk")
            picture.save(buffer, format="PNG", pnginfo=info)
        else:
            if pil_format == "JPEG" and picture.mode not in ("RGB", "L"):
                picture = picture.convert("RGB")
            exif = PILImageModule.Exif()
            exif[_EXIF_IMAGE_DESCRIPTION] = f"{PROVENANCE_KEY}={facts}"
            exif[_EXIF_SOFTWARE] = "genai_sdk"
            picture.save(buffer, format=pil_format, exif=exif.tobytes(), quality=95)
        return buffer.getvalue()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        data = self.data if self.media_type in ("image/png", "image/jpeg") else self._encode("PNG")
        media_type = self.media_type if data is self.data else "image/png"
        return {media_type: base64.b64encode(data).decode("ascii"), "text/plain": repr(self)}

    def __repr__(self) -> str:
        return f"Image({self.media_type}, {self.width}x{self.height}, {len(self.data)} bytes)"


def read_provenance(data: bytes) -> dict[str, str]:
    """The provenance the SDK embedded in an image file, or an empty dict."""
    from PIL import Image as PILImageModule

    try:
        picture = PILImageModule.open(io.BytesIO(data))
    except Exception:
        return {}
    text = getattr(picture, "text", {}).get(PROVENANCE_KEY)
    if text is None:
        description = picture.getexif().get(_EXIF_IMAGE_DESCRIPTION)
        if isinstance(description, str) and description.startswith(PROVENANCE_KEY + "="):
            text = description[len(PROVENANCE_KEY) + 1 :]
    return _parse_facts(text) if text else {}


def _parse_facts(text: str | bytes) -> dict[str, str]:
    """The provenance in its JSON text, or an empty dict when the text is not a JSON object."""
    try:
        loaded = json.loads(text)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


def _wav_sized(data: bytes) -> bytes:
    """A WAV file whose header states the sizes it has. A streamed WAV (``genai speak -o -``, many recorders writing
    to a pipe) says "unknown" (0xFFFFFFFF) or more than it holds: its data chunk is taken to run to the end."""
    at = 12
    while at + 8 <= len(data):
        chunk, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        if chunk == b"data":
            held = len(data) - at - 8
            if size <= held and struct.unpack("<I", data[4:8])[0] <= len(data) - 8:
                return data
            held -= held % 2
            body = data[12 : at + 4] + struct.pack("<I", held) + data[at + 8 : at + 8 + held]
            return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body
        at += 8 + size + (size % 2)
    return data


def wav_with_provenance(data: bytes, provenance: Mapping[str, str]) -> bytes:
    """A WAV file with the provenance in a LIST/INFO chunk (ICMT, a comment), as players and editors read it."""
    if not provenance or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return data
    text = f"{PROVENANCE_KEY}={json.dumps(dict(provenance), sort_keys=True)}".encode() + b"\x00"
    text += b"\x00" * (len(text) % 2)  # RIFF chunks have an even size
    info = b"INFO" + b"ICMT" + struct.pack("<I", len(text)) + text
    body = data[12:] + b"LIST" + struct.pack("<I", len(info)) + info
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def wav_provenance(data: bytes) -> dict[str, str]:
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return {}
    marker = f"{PROVENANCE_KEY}=".encode()
    start = data.find(b"ICMT")
    while start != -1:
        size = struct.unpack("<I", data[start + 4 : start + 8])[0]
        value = data[start + 8 : start + 8 + size].rstrip(b"\x00")
        if value.startswith(marker):
            return _parse_facts(value[len(marker) :])
        start = data.find(b"ICMT", start + 4)
    return {}


# Containers whose tags hold the provenance (a ``comment``: ID3 in MP3, Vorbis comments in FLAC and Ogg, MP4 tags),
# written by re-muxing (no re-encoding). WAV has its own INFO chunk; raw AAC, PCM, WebM and GIF carry none.
_TAGGED = {
    "video/mp4": "mp4", "audio/mp4": "mp4", "audio/mpeg": "mp3", "audio/flac": "flac", "audio/ogg": "ogg",
    "audio/opus": "ogg",
}  # fmt: skip


def with_provenance_tag(data: bytes, media_type: str, provenance: Mapping[str, str]) -> bytes:
    """The file re-muxed with the provenance in its ``comment`` tag; unchanged without PyAV, for a container that
    has no tags, or for data PyAV cannot read (saved as it is)."""
    container_format = _TAGGED.get(media_type)
    if not provenance or container_format is None:
        return data
    try:
        import av
    except ModuleNotFoundError:
        return data
    buffer = io.BytesIO()
    try:
        with av.open(io.BytesIO(data)) as source, av.open(buffer, mode="w", format=container_format) as target:
            target.metadata["comment"] = f"{PROVENANCE_KEY}={json.dumps(dict(provenance), sort_keys=True)}"
            if source.chapters():  # a podcast's chapters are kept
                target.set_chapters(source.chapters())
            streams = {s.index: target.add_stream_from_template(s) for s in source.streams if s.type in ("audio", "video")}
            for packet in source.demux():
                if packet.dts is None or packet.stream.index not in streams:  # a flushing packet, a data stream
                    continue
                packet.stream = streams[packet.stream.index]
                target.mux(packet)
    except Exception:  # noqa: BLE001 - not a file PyAV can re-mux: kept as it came
        return data
    return buffer.getvalue()


def tag_provenance(data: bytes) -> dict[str, str]:
    """The provenance in a container's (or, for Ogg, a stream's) ``comment`` tag, or an empty dict."""
    try:
        import av

        with av.open(io.BytesIO(data)) as container:
            comments = [container.metadata.get("comment", "")]
            comments += [stream.metadata.get("comment", "") for stream in container.streams]
    except Exception:  # not a file PyAV can read, or no PyAV: no provenance to report
        return {}
    for comment in comments:
        if comment.startswith(PROVENANCE_KEY + "="):
            return _parse_facts(comment[len(PROVENANCE_KEY) + 1 :])
    return {}


def media_facts(data: bytes) -> dict[str, Any]:
    """What a container states about its media, without decoding it: ``duration`` (seconds), ``sample_rate`` and
    ``channels`` of the first audio stream, ``width``, ``height`` and ``fps`` of the first video stream. Empty
    without PyAV or for data it cannot read."""
    try:
        import av

        with av.open(io.BytesIO(data)) as container:
            facts: dict[str, Any] = {}
            if container.duration:
                facts["duration"] = container.duration / 1_000_000
            if container.streams.audio:
                audio = container.streams.audio[0]
                facts.update(sample_rate=audio.rate, channels=audio.channels)
            if container.streams.video:
                video = container.streams.video[0]
                facts.update(width=video.width, height=video.height)
                rate = video.average_rate or video.guessed_rate
                if rate:
                    facts["fps"] = float(rate)
                if "duration" not in facts and video.duration and video.time_base:
                    facts["duration"] = float(video.duration * video.time_base)
            return facts
    except Exception:  # noqa: BLE001 - no PyAV, or not a container it reads: nothing known
        return {}


def _suffix(path: str | os.PathLike[str], table: Mapping[str, str], what: str) -> str:
    """The extension of ``path``, lower-cased, when ``table`` knows it."""
    suffix = _checked_path(path).suffix.lower()
    if suffix not in table:
        raise InvalidRequestError(
            f"cannot save {what} as {suffix or 'a file without extension'!r}: use one of {', '.join(sorted(table))}"
        )
    return suffix


def _save_same_type(data: bytes, path: str | os.PathLike[str], media_type: str, table: dict[str, str]) -> Path:
    suffix = _suffix(path, table, media_type)
    if table[suffix] != media_type:
        own = next((ext for ext, kind in table.items() if kind == media_type), "of its own type")
        raise InvalidRequestError(
            f"this is {media_type}; saving it as {suffix} would need a conversion the SDK does not do: "
            f"save it with the extension {own}"
        )
    return atomic_write(path, lambda handle: handle.write(data))


@dataclass(frozen=True, eq=False)
class Video:
    """A video: encoded bytes and the facts the producer knows about them."""

    data: bytes
    media_type: str = "video/mp4"
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    duration: float | None = None
    provenance: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Video:
        """The video in a file, with the size, frame rate and duration its container states (PyAV reads them)."""
        media_type = _VIDEO_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")
        data = _load_bytes(path)
        facts = media_facts(data)
        return cls(data, media_type, facts.get("width"), facts.get("height"), facts.get("fps"), facts.get("duration"),
                   tag_provenance(data) if media_type in _TAGGED else {})  # fmt: skip

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write it atomically, with provenance in an MP4's comment tag. The extension must match the container."""
        return _save_same_type(with_provenance_tag(self.data, self.media_type, self.provenance), path, self.media_type,
                               _VIDEO_TYPES)  # fmt: skip

    def _repr_html_(self) -> str:
        return f'<video controls src="data:{self.media_type};base64,{base64.b64encode(self.data).decode()}"></video>'

    def __repr__(self) -> str:
        facts = f"{self.width}x{self.height}, " if self.width else ""
        return f"Video({self.media_type}, {facts}{self.duration}s, {len(self.data)} bytes)"


@dataclass(frozen=True, eq=False)
class Audio:
    """Audio: encoded bytes and the facts known about them (WAV facts are read from the header)."""

    data: bytes
    media_type: str = "audio/wav"
    sample_rate: int | None = None
    duration: float | None = None
    channels: int | None = None
    provenance: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_bytes(
        cls, data: bytes, media_type: str | None = None, provenance: Mapping[str, str] | None = None
    ) -> Audio:
        if media_type in (None, "audio/wav", "audio/x-wav") and data[:4] == b"RIFF" and data[8:12] == b"WAVE":
            import wave

            data = _wav_sized(data)

            try:
                with wave.open(io.BytesIO(data)) as reader:
                    rate, frames, channels = reader.getframerate(), reader.getnframes(), reader.getnchannels()
            except (wave.Error, EOFError) as exc:
                raise InvalidRequestError(f"unreadable WAV data: {exc}") from exc
            return cls(data, "audio/wav", rate, frames / rate if rate else None, channels, dict(provenance or {}))
        facts = media_facts(data) if media_type not in (None, "audio/pcm") else {}  # what the container states
        return cls(data, media_type or "application/octet-stream", facts.get("sample_rate"), facts.get("duration"),
                   facts.get("channels"), dict(provenance or {}))  # fmt: skip

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Audio:
        """The audio in a file: WAV facts from its header; MP3, FLAC, Ogg, Opus, AAC and M4A facts (duration, sample
        rate, channels) from what the container states (PyAV reads them); provenance from its tags."""
        media_type = _AUDIO_TYPES.get(Path(path).suffix.lower())
        data = _load_bytes(path)
        provenance = wav_provenance(data) if media_type in (None, "audio/wav") else tag_provenance(data)
        return cls.from_bytes(data, media_type, provenance)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the audio atomically, with provenance in a WAV's INFO comment or the tags of an MP3 (ID3), FLAC or
        Ogg/Opus (Vorbis comments) or M4A (MP4 tags) file. The extension must match its format."""
        if self.media_type == "audio/wav":
            data = wav_with_provenance(self.data, self.provenance)
        else:
            data = with_provenance_tag(self.data, self.media_type, self.provenance)
        return _save_same_type(data, path, self.media_type, _AUDIO_TYPES)

    def _repr_html_(self) -> str:
        return f'<audio controls src="data:{self.media_type};base64,{base64.b64encode(self.data).decode()}"></audio>'

    def __repr__(self) -> str:
        return f"Audio({self.media_type}, {self.duration}s, {len(self.data)} bytes)"


def as_image(value: object, what: str = "image") -> Image:
    """Accept a path, bytes, an Image or a PIL image."""
    if isinstance(value, Image):
        return value
    if isinstance(value, (bytes, bytearray)):
        if not value:
            raise InvalidRequestError(f"{what} is empty")
        return Image.from_bytes(bytes(value))
    if isinstance(value, (str, os.PathLike)):
        return Image.from_bytes(_load_bytes(value))
    if hasattr(value, "save") and hasattr(value, "mode") and hasattr(value, "width"):
        return Image.from_pil(value)  # type: ignore[arg-type]
    raise InvalidRequestError(f"{what} must be a path, bytes, a genai.Image or a PIL image, not {type(value).__name__}")
