"""Results that serialise: ``to_dict()`` / ``to_json()`` and ``from_dict()`` / ``from_json()`` back, on every result
and on ``Cost``. Decimals travel as strings (no float rounding of money), times as ISO 8601, and media either
embedded as base64 (the default) or saved into a folder and referenced by path (``media_dir=``)."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

from ._errors import InvalidRequestError

T = TypeVar("T", bound="Serialisable")
_EXTENSIONS = {"image/jpeg": ".jpg", "audio/mpeg": ".mp3", "audio/wav": ".wav", "audio/ogg": ".ogg"}


def _is_media(value: object) -> bool:
    from ._media import Audio, Image, Video

    return isinstance(value, Image | Video | Audio)


class _Writer:
    """Encodes values; saves media into ``folder`` when one is given, under names that do not collide."""

    def __init__(self, folder: str | os.PathLike[str] | None, stem: str) -> None:
        self.folder = None if folder is None else Path(folder)
        self.stem = stem
        self.count = 0
        if self.folder is not None and not self.folder.is_dir():
            raise InvalidRequestError(f"media_dir={str(folder)!r} is not a folder: create it first")

    def encode(self, value: object) -> Any:
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, datetime):
            return value.isoformat()
        if _is_media(value):
            return self.media(value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: self.encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, list | tuple):
            return [self.encode(item) for item in value]
        if isinstance(value, Mapping):
            return {str(key): self.encode(item) for key, item in value.items()}
        return value

    def media(self, value: Any) -> dict[str, Any]:
        facts = {f.name: self.encode(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "data"}
        if self.folder is None:
            return {**facts, "base64": base64.b64encode(value.data).decode("ascii")}
        import mimetypes

        extension = _EXTENSIONS.get(value.media_type) or mimetypes.guess_extension(value.media_type) or ".bin"
        path = self.folder / f"{self.stem}-{self.count}{extension}"
        self.count += 1
        from ._media import atomic_write

        atomic_write(path, lambda handle: handle.write(value.data))  # the bytes as they are: the facts stay true
        return {**facts, "path": str(path)}


def _decode(value: Any, kind: Any, base: Path | None) -> Any:
    """``value`` read back as the annotation ``kind`` says."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        if value is None:
            return None
        return _decode(value, options[0], base) if len(options) == 1 else value
    if origin in (list, tuple):
        (item,) = typing.get_args(kind)[:1]
        return [_decode(v, item, base) for v in value]
    if origin in (dict, Mapping) or kind is Mapping or origin is typing.get_origin(Mapping[str, str]):
        value_kind = typing.get_args(kind)[1] if typing.get_args(kind) else Any
        return {k: _decode(v, value_kind, base) for k, v in value.items()}
    if kind is Decimal:
        return Decimal(str(value))
    if kind is datetime:
        return datetime.fromisoformat(value)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _dataclass(kind, value, base)
    return value


def _dataclass(kind: type, value: Mapping[str, Any], base: Path | None) -> Any:
    hints = typing.get_type_hints(kind)
    arguments = {}
    for f in dataclasses.fields(kind):
        if f.name == "data" and f.name not in value:  # a media value: embedded or saved
            arguments["data"] = _media_bytes(value, base)
        elif f.name in value:
            arguments[f.name] = _decode(value[f.name], hints[f.name], base)
    return kind(**arguments)


def _media_bytes(value: Mapping[str, Any], base: Path | None) -> bytes:
    if "base64" in value:
        return base64.b64decode(value["base64"], validate=True)
    if "path" in value:
        path = Path(value["path"])
        return (path if path.is_absolute() or base is None else base / path).read_bytes()
    raise InvalidRequestError("a media value holds neither 'base64' nor 'path'")


class Serialisable:
    """``to_dict`` / ``to_json`` and ``from_dict`` / ``from_json`` for a result dataclass."""

    def to_dict(self, *, media_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """Plain JSON types, with a ``"type"`` key naming the class. Media are embedded as base64, or, with
        ``media_dir``, saved there (atomically) and referenced by path."""
        stem = str((getattr(self, "request_ids", None) or [None])[0] or f"{type(self).__name__.lower()}-{os.urandom(4).hex()}")
        encoded = _Writer(media_dir, stem).encode(self)
        return {"type": type(self).__name__, **encoded}

    def to_json(self, *, media_dir: str | os.PathLike[str] | None = None, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(media_dir=media_dir), ensure_ascii=False, indent=indent)

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any], *, base_dir: str | os.PathLike[str] | None = None) -> T:
        """Read back what ``to_dict`` made; media paths are relative to ``base_dir`` (default: the current folder)."""
        if not isinstance(data, Mapping) or data.get("type", cls.__name__) != cls.__name__:
            found = data.get("type") if isinstance(data, Mapping) else type(data).__name__
            raise InvalidRequestError(f"this is not a serialised {cls.__name__} (it is a {found})")
        try:
            value: T = _dataclass(cls, {k: v for k, v in data.items() if k != "type"}, None if base_dir is None else Path(base_dir))
        except (KeyError, TypeError, ValueError, InvalidOperation, OSError) as exc:
            raise InvalidRequestError(f"cannot read this {cls.__name__} back: {type(exc).__name__}: {exc}") from exc
        return value

    @classmethod
    def from_json(cls: type[T], text: str | bytes, *, base_dir: str | os.PathLike[str] | None = None) -> T:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidRequestError(f"not JSON: {exc}") from exc
        return cls.from_dict(data, base_dir=base_dir)
