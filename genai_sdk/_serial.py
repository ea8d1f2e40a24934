"""Results that serialise: ``to_dict()`` / ``to_json()`` and ``from_dict()`` / ``from_json()`` back, on every result
and on ``Cost``. Decimals travel as strings (no float rounding of money), times as ISO 8601, and media either
embedded as base64 (the default) or saved into a folder and referenced by path (``media_dir=``)."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
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


def _bad(where: str, value: Any, wanted: str) -> InvalidRequestError:
    return InvalidRequestError(f"{where or 'the value'}: expected {wanted}, found {type(value).__name__} {value!r:.60}")


def _decode(value: Any, kind: Any, base: Path, where: str) -> Any:
    """``value`` read back as the annotation ``kind`` says, checked on the way."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        if value is None:
            return None
        return _decode(value, options[0], base, where)
    if origin is typing.Literal:
        if value not in typing.get_args(kind):
            raise _bad(where, value, " or ".join(map(repr, typing.get_args(kind))))
        return value
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise _bad(where, value, "a list")
        (item,) = typing.get_args(kind)[:1]
        return [_decode(v, item, base, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, Mapping) or kind in (dict, Mapping):
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise _bad(where, value, "an object")
        value_kind = typing.get_args(kind)[1] if typing.get_args(kind) else Any
        return {k: _decode(v, value_kind, base, f"{where}.{k}") for k, v in value.items()}
    if kind is Decimal:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise _bad(where, value, "a decimal number written as a string")
        number = Decimal(str(value))
        if not number.is_finite():
            raise _bad(where, value, "a finite number")
        return number
    if kind is datetime:
        if not isinstance(value, str):
            raise _bad(where, value, "an ISO 8601 time")
        return datetime.fromisoformat(value)
    if kind is bool and not isinstance(value, bool):
        raise _bad(where, value, "true or false")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise _bad(where, value, "a whole number")
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise _bad(where, value, "a finite number")
        return float(value)
    if kind is str and not isinstance(value, str):
        raise _bad(where, value, "a string")
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise _bad(where, value, f"an object ({kind.__name__})")
        return _dataclass(kind, value, base, where)
    return value


def _dataclass(kind: type, value: Mapping[str, Any], base: Path, where: str) -> Any:
    hints = typing.get_type_hints(kind)
    arguments: dict[str, Any] = {}
    for f in dataclasses.fields(kind):
        if f.name == "data" and f.name not in value:  # a media value: embedded or saved
            arguments["data"] = _media_bytes(value, base, where)
        elif f.name in value:
            arguments[f.name] = _decode(value[f.name], hints[f.name], base, f"{where}.{f.name}".lstrip("."))
    from ._media import Audio, Image

    if kind is Image:  # the facts are read from the bytes, which must be a picture
        return Image.from_bytes(arguments["data"], arguments.get("provenance"))
    if kind is Audio:
        return Audio.from_bytes(arguments["data"], arguments.get("media_type"), arguments.get("provenance"))
    return kind(**arguments)


def _media_bytes(value: Mapping[str, Any], base: Path, where: str) -> bytes:
    if isinstance(value.get("base64"), str):
        return base64.b64decode(value["base64"], validate=True)
    if isinstance(value.get("path"), str):
        path = (base / value["path"]).resolve()
        if not path.is_relative_to(base.resolve()):
            raise InvalidRequestError(
                f"{where}: the media file {value['path']!r} lies outside {str(base)!r}: give base_dir= the folder that "
                "holds it (a serialised result never reads files elsewhere)"
            )
        data: bytes = path.read_bytes()
        return data
    raise InvalidRequestError(f"{where or 'a media value'} holds neither 'base64' nor 'path'")


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
        """Read back what ``to_dict`` made, every field checked. Media saved by path are read relative to
        ``base_dir`` (default: the current folder, as ``to_dict(media_dir=...)`` wrote them from there), and only
        from inside it."""
        if not isinstance(data, Mapping) or data.get("type", cls.__name__) != cls.__name__:
            found = data.get("type") if isinstance(data, Mapping) else type(data).__name__
            raise InvalidRequestError(f"this is not a serialised {cls.__name__} (it is a {found})")
        base = Path.cwd() if base_dir is None else Path(base_dir)
        try:
            value: T = _dataclass(cls, {k: v for k, v in data.items() if k != "type"}, base, "")
        except InvalidRequestError as exc:
            raise InvalidRequestError(f"cannot read this {cls.__name__} back: {exc}") from exc
        except (KeyError, TypeError, ValueError, InvalidOperation, OSError, AttributeError) as exc:
            raise InvalidRequestError(f"cannot read this {cls.__name__} back: {type(exc).__name__}: {exc}") from exc
        return value

    @classmethod
    def from_json(cls: type[T], text: str | bytes, *, base_dir: str | os.PathLike[str] | None = None) -> T:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidRequestError(f"not JSON: {exc}") from exc
        return cls.from_dict(data, base_dir=base_dir)
