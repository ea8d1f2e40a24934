"""Subtitle cues people can read: at most ``max_line_width`` characters a line and ``max_line_count`` lines a cue,
split at word timestamps (or, without them, at words timed by their share of the segment), at pauses and after the
end of a sentence, each cue on screen between ``min_duration`` and ``max_duration`` seconds.

The defaults follow common broadcast practice (42 characters, two lines, 1 to 7 seconds)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._errors import InvalidRequestError

if TYPE_CHECKING:
    from ._requests import Segment

PAUSE = 0.6  # seconds of silence between two words that end a cue
_SENTENCE_END = (".", "?", "!", "…", "。", "？", "！")


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]


@dataclass(frozen=True)
class _Word:
    start: float
    end: float
    text: str
    last_of_segment: bool


def check_layout(max_line_width: object, max_line_count: object, min_duration: object, max_duration: object) -> None:
    for name, value in (("max_line_width", max_line_width), ("max_line_count", max_line_count)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequestError(f"{name}={value!r}: give a whole number of at least 1")
    for name, value in (("min_duration", min_duration), ("max_duration", max_duration)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
            raise InvalidRequestError(f"{name}={value!r}: give a number of seconds, 0 or more")
    assert isinstance(min_duration, int | float) and isinstance(max_duration, int | float)
    if max_duration < min_duration or max_duration == 0:
        raise InvalidRequestError(f"max_duration={max_duration!r} must be above 0 and at least min_duration={min_duration!r}")


def _words(segments: Sequence[Segment]) -> list[_Word]:
    """Every word with its time: the recogniser's word timestamps, or the segment's time shared by characters."""
    words: list[_Word] = []
    for segment in segments:
        timed = [w for w in segment.words if w.text.strip()]
        if timed:
            found = [_Word(w.start, max(w.end, w.start), w.text.strip(), False) for w in timed]
        else:
            texts = segment.text.split()
            total = sum(len(t) + 1 for t in texts) or 1
            span, at, found = max(segment.end - segment.start, 0.0), segment.start, []
            for text in texts:
                length = span * (len(text) + 1) / total
                found.append(_Word(at, at + length, text, False))
                at += length
        if found:
            last = found[-1]
            found[-1] = _Word(last.start, last.end, last.text, True)
            words.extend(found)
    return words


def wrap(words: Sequence[str], width: int, count: int) -> tuple[str, ...] | None:
    """The words in at most ``count`` lines of at most ``width`` characters, lines as even as can be (a single word
    longer than a line is a line of its own); None if they do not fit."""
    if not words:
        return ()
    line = " ".join(words)
    if len(line) <= width or len(words) == 1:
        return (line,)
    if count == 1:
        return None
    best: tuple[str, ...] | None = None
    for split in range(1, len(words) + 1):
        first = " ".join(words[:split])
        if len(first) > width and split > 1:
            break
        rest = wrap(words[split:], width, count - 1) if split < len(words) else ()
        if rest is None:
            continue
        lines = (first, *rest)
        if best is None or max(map(len, lines)) < max(map(len, best)):
            best = lines
    return best


def cues(
    segments: Sequence[Segment], *, max_line_width: int = 42, max_line_count: int = 2, min_duration: float = 1.0,
    max_duration: float = 7.0,
) -> list[Cue]:  # fmt: skip
    check_layout(max_line_width, max_line_count, min_duration, max_duration)
    groups: list[list[_Word]] = []
    current: list[_Word] = []
    for word in _words(segments):
        if current:
            previous = current[-1]
            pause = word.start - previous.end >= PAUSE
            sentence = previous.text.endswith(_SENTENCE_END) and len(" ".join(w.text for w in current)) >= max_line_width // 2
            too_long = word.end - current[0].start > max_duration
            fits = wrap([w.text for w in (*current, word)], max_line_width, max_line_count) is not None
            if pause or sentence or too_long or not fits or (previous.last_of_segment and previous.text.endswith(_SENTENCE_END)):
                groups.append(current)
                current = []
        current.append(word)
    if current:
        groups.append(current)
    made: list[Cue] = []
    for index, group in enumerate(groups):
        lines = wrap([w.text for w in group], max_line_width, max_line_count) or (" ".join(w.text for w in group),)
        start, end = group[0].start, group[-1].end
        if end - start < min_duration:  # long enough to read, never over the next cue
            following = groups[index + 1][0].start if index + 1 < len(groups) else float("inf")
            end = max(end, min(start + min_duration, following))
        made.append(Cue(start, end, lines))
    return made
