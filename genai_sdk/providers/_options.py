"""Typed ``provider_options``: each provider declares its options, and :meth:`OptionSpec.parse` turns a call's raw
dict into :class:`ParsedOptions` before anything is reserved, or raises ``InvalidRequestError`` saying what is wrong.
Values are never coerced: ``"false"`` is not a bool, ``"5"`` not an integer, ``True`` not a number; ``None`` is the
same as leaving the option out. Only the standard library is imported, so declaring options costs nothing."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, overload

from .._errors import InvalidRequestError

if TYPE_CHECKING:
    from .._requests import Request

T = TypeVar("T")


class _Refused(Exception):
    """A value an option type does not accept (internal: turned into InvalidRequestError by the spec)."""


def _bounds(minimum: float | None, maximum: float | None, min_open: bool = False, max_open: bool = False) -> str:
    """The range for a message: `` from 0 to 100``, `` in (0, 1]``, `` >= 1``."""
    text = _range_text(minimum, maximum, min_open, max_open)
    if minimum is not None and maximum is not None:
        return f" from {text}" if not (min_open or max_open) else f" in {text}"
    return f" {text}" if text else ""


def _range_text(minimum: float | None, maximum: float | None, min_open: bool = False, max_open: bool = False) -> str:
    """The range in the docs' notation: ``0 to 1``, ``(0, 1]``, ``>= 1``."""
    if minimum is None and maximum is None:
        return ""
    if minimum is not None and maximum is not None:
        if not min_open and not max_open:
            return f"{minimum:g} to {maximum:g}"
        return f"{'(' if min_open else '['}{minimum:g}, {maximum:g}{')' if max_open else ']'}"
    if minimum is not None:
        return f"{'>' if min_open else '>='} {minimum:g}"
    return f"{'<' if max_open else '<='} {maximum:g}"


@dataclass(frozen=True)
class Bool:
    """``True`` or ``False``, and nothing else: the string ``"false"`` is refused, not taken as true."""

    type_name = "bool"

    def accepts(self) -> str:
        return "True or False"

    def values(self) -> str:
        return "`True`, `False`"

    def parse(self, value: object) -> bool:
        if not isinstance(value, bool):
            raise _Refused("a bool")
        return value


@dataclass(frozen=True)
class Int:
    """A whole number (not a bool, not a float, not a string of digits), within the bounds when given."""

    minimum: int | None = None
    maximum: int | None = None
    type_name = "int"

    def accepts(self) -> str:
        return "an integer" + _bounds(self.minimum, self.maximum)

    def values(self) -> str:
        return _range_text(self.minimum, self.maximum) or "any integer"

    def parse(self, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Refused("an integer")
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise _Refused("an integer in range")
        return value


@dataclass(frozen=True)
class Float:
    """A finite number (an int is taken as a float; a bool or a string is not), within the bounds when given."""

    minimum: float | None = None
    maximum: float | None = None
    min_open: bool = False  # the minimum itself is excluded
    max_open: bool = False
    type_name = "float"

    def accepts(self) -> str:
        return "a number" + _bounds(self.minimum, self.maximum, self.min_open, self.max_open)

    def values(self) -> str:
        return _range_text(self.minimum, self.maximum, self.min_open, self.max_open) or "any number"

    def parse(self, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Refused("a number")
        number = float(value)
        if not math.isfinite(number):
            raise _Refused("a finite number")
        if self.minimum is not None and (number < self.minimum or (self.min_open and number == self.minimum)):
            raise _Refused("a number in range")
        if self.maximum is not None and (number > self.maximum or (self.max_open and number == self.maximum)):
            raise _Refused("a number in range")
        return number


@dataclass(frozen=True)
class Str:
    """A string, non-empty, at most ``max_length`` characters, matching ``pattern`` (in full) when given."""

    max_length: int | None = None
    pattern: str | None = None
    pattern_text: str = ""  # what the pattern means, in words, for messages and docs
    type_name = "str"

    def accepts(self) -> str:
        pattern = f": {self.pattern_text}" if self.pattern_text else ""
        limit = f", at most {self.max_length} characters" if self.max_length is not None else ""
        return f"a non-empty string{pattern}{limit}"

    def values(self) -> str:
        limit = f"text, up to {self.max_length} characters" if self.max_length is not None else "any non-empty text"
        return self.pattern_text or limit

    def parse(self, value: object) -> str:
        if not isinstance(value, str) or not value:
            raise _Refused("a string")
        if self.max_length is not None and len(value) > self.max_length:
            raise _Refused("a shorter string")
        if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
            raise _Refused("a string of the right form")
        return value


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of strings, matched exactly."""

    choices: tuple[str, ...]
    type_name = "choice"

    def accepts(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def values(self) -> str:
        return ", ".join(f"`{c}`" for c in self.choices)

    def parse(self, value: object) -> str:
        if not isinstance(value, str) or value not in self.choices:
            raise _Refused("one of the choices")
        return value


@dataclass(frozen=True)
class StrList:
    """A list (or tuple) of non-empty strings, each one of ``choices`` when given; at most ``max_items``."""

    choices: tuple[str, ...] | None = None
    max_items: int | None = None
    type_name = "list[str]"

    def accepts(self) -> str:
        choices = ", each one of " + ", ".join(repr(c) for c in self.choices) if self.choices is not None else ""
        most = f", at most {self.max_items}" if self.max_items is not None else ""
        return f"a list of strings{choices}{most}"

    def values(self) -> str:
        text = ", ".join(f"`{c}`" for c in self.choices) if self.choices is not None else "strings"
        return text + (f" (at most {self.max_items})" if self.max_items is not None else "")

    def parse(self, value: object) -> list[str]:
        if not isinstance(value, list | tuple) or not all(isinstance(item, str) and item for item in value):
            raise _Refused("a list of strings")
        if self.choices is not None and any(item not in self.choices for item in value):
            raise _Refused("a list of the choices")
        if self.max_items is not None and len(value) > self.max_items:
            raise _Refused("a shorter list")
        return list(value)


OptionType = Bool | Int | Float | Str | Choice | StrList


@dataclass(frozen=True)
class Option:
    name: str
    type: OptionType
    description: str  # one line: what the option does (and its default)
    operations: frozenset[str] | None = None  # the operations it applies to ("images.edit", ...); None: all of them

    def applies_to(self, operation: str) -> bool:
        return self.operations is None or operation in self.operations


def operation_name(request: Request) -> str:
    """The operation a request asks for, as the catalog names it: images.generate, speech.transcribe, ..."""
    family = {"images": "images", "videos": "videos", "image_scoring": "images"}.get(request.modality, "speech")
    return f"{family}.{request.operation}"


class ParsedOptions(Mapping[str, object]):
    """The options of one call, each of its declared type; the typed getters give ``default`` for one left out."""

    def __init__(self, provider: str, values: dict[str, object]) -> None:
        self.provider = provider
        self._values = values

    def __getitem__(self, name: str) -> object:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"ParsedOptions({self.provider!r}, {self._values!r})"

    def _typed(self, name: str, kind: type[T], default: T | None) -> T | None:
        value = self._values.get(name)
        if value is None:
            return default
        if not isinstance(value, kind):  # a provider reading an option as another type than it declared: a bug
            raise TypeError(f"{self.provider} option {name!r} holds {type(value).__name__}, not {kind}")
        return value

    @overload
    def flag(self, name: str) -> bool | None: ...
    @overload
    def flag(self, name: str, default: bool) -> bool: ...
    def flag(self, name: str, default: bool | None = None) -> bool | None:
        return self._typed(name, bool, default)

    @overload
    def integer(self, name: str) -> int | None: ...
    @overload
    def integer(self, name: str, default: int) -> int: ...
    def integer(self, name: str, default: int | None = None) -> int | None:
        return self._typed(name, int, default)

    @overload
    def number(self, name: str) -> float | None: ...
    @overload
    def number(self, name: str, default: float) -> float: ...
    def number(self, name: str, default: float | None = None) -> float | None:
        return self._typed(name, float, default)

    @overload
    def text(self, name: str) -> str | None: ...
    @overload
    def text(self, name: str, default: str) -> str: ...
    def text(self, name: str, default: str | None = None) -> str | None:
        return self._typed(name, str, default)

    def texts(self, name: str) -> list[str] | None:
        return self._typed(name, list, None)


class OptionSpec:
    """The options one provider takes, by name, in the order its documentation lists them."""

    def __init__(self, provider: str, *options: Option) -> None:
        self.provider = provider
        self.options: dict[str, Option] = {}
        for option in options:
            if option.name in self.options:
                raise ValueError(f"{provider} declares the option {option.name!r} twice")
            self.options[option.name] = option

    def __repr__(self) -> str:
        return f"OptionSpec({self.provider!r}, {', '.join(self.options)})"

    def names(self, operation: str | None = None) -> list[str]:
        """The options that apply to ``operation`` (all of them when None), in declaration order."""
        return [o.name for o in self.options.values() if operation is None or o.applies_to(operation)]

    def for_request(self, request: Request) -> ParsedOptions:
        """The provider's options of a request, parsed for the request's operation."""
        return self.parse(request.options.provider_options.get(self.provider), operation_name(request))

    def parse(self, raw: Mapping[str, object] | None, operation: str) -> ParsedOptions:
        """Typed values from the raw options of a call, or InvalidRequestError saying what is wrong."""
        where = f"provider_options[{self.provider!r}]"
        if raw is None:
            return ParsedOptions(self.provider, {})
        if not isinstance(raw, Mapping):
            raise InvalidRequestError(f"{where} must be a dict of option names and values, not {type(raw).__name__}")
        known = self.names(operation)
        unknown = [str(key) for key in raw if key not in self.options]
        if unknown:
            close = closest(unknown[0], known) if len(unknown) == 1 else None
            hint = f" (did you mean {close!r}?)" if close else ""
            raise InvalidRequestError(
                f"{where} for {operation}: unknown key(s) {', '.join(sorted(unknown))}{hint}; "
                f"known: {', '.join(known) or 'none'}"
            )
        values: dict[str, object] = {}
        for name, value in raw.items():
            option = self.options[name]
            if not option.applies_to(operation):
                assert option.operations is not None
                raise InvalidRequestError(
                    f"{where}[{name!r}] does not apply to {operation}: it is for "
                    f"{', '.join(sorted(option.operations))} only; options for {operation}: {', '.join(known) or 'none'}"
                )
            if value is None:
                continue
            try:
                values[name] = option.type.parse(value)
            except _Refused as exc:
                bool_string = isinstance(option.type, Bool) and isinstance(value, str)
                hint = f" (the string {value!r} is not a bool)" if bool_string else ""
                raise InvalidRequestError(
                    f"{where}[{name!r}]={_shown(value)} is refused{hint}: {name} takes {option.type.accepts()}"
                ) from exc
        return ParsedOptions(self.provider, values)

    def markdown(self, operations: bool = False) -> str:
        """The options as a Markdown table (option, type, accepted values, meaning), for the provider's docs page."""
        head, rule = (" operations |", "---|") if operations else ("", "")
        rows = ["| option | type | accepted values | meaning |" + head, "|---|---|---|---|" + rule]
        for option in self.options.values():
            row = f"| `{option.name}` | {option.type.type_name} | {option.type.values()} | {option.description} |"
            if operations:
                row += " " + (", ".join(sorted(option.operations)) if option.operations is not None else "all") + " |"
            rows.append(row)
        return "\n".join(rows)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to a misspelt ``name``, ignoring case, or None."""
    import difflib

    lowered = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


__all__ = [
    "Bool", "Choice", "Float", "Int", "Option", "OptionSpec", "OptionType", "ParsedOptions", "Str", "StrList",
    "operation_name",
]  # fmt: skip
