"""Subtitles people can read: at most 42 characters a line and two lines a cue (or what the caller sets), split at
word timestamps, pauses and sentence ends, each cue on screen long enough to read and never too long."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import genai_sdk as genai
from genai_sdk._requests import Segment, Transcript, Word

_STAMP = r"(\d{2}):(\d{2}):(\d{2})[,.](\d{3})"


def _cues(srt: str) -> list[tuple[float, float, list[str]]]:
    """An SRT file's cues with their lines (a parser of its own, not the SDK's writer)."""
    found = []
    for block in re.split(r"\n\s*\n", srt.strip()):
        lines = block.splitlines()
        match = re.fullmatch(_STAMP + " --> " + _STAMP, lines[1])
        assert lines[0].isdigit() and match, block
        g = [int(x) for x in match.groups()]
        found.append((g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000, g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000, lines[2:]))
    return found


def _transcript(segments: list[Segment]) -> Transcript:
    return Transcript(" ".join(s.text for s in segments), "en", segments[-1].end if segments else 0.0, segments,
                      genai.Cost(Decimal(0), None), "test")  # fmt: skip


def _timed(text: str, start: float, step: float = 0.3, pauses: dict[int, float] | None = None) -> Segment:
    words, at = [], start
    for i, word in enumerate(text.split()):
        at += (pauses or {}).get(i, 0.0)
        words.append(Word(at, at + step * 0.8, word))
        at += step
    return Segment(start, words[-1].end, text, words)


def test_a_long_segment_becomes_cues_of_two_short_lines() -> None:
    text = ("The committee met on Tuesday to discuss the new budget for the regional library network and agreed to "
            "extend opening hours on weekends starting next month")  # fmt: skip
    cues = _cues(_transcript([_timed(text, 0.0)]).to_srt())
    assert len(cues) == 2
    assert all(len(line) <= 42 for _, _, lines in cues for line in lines)
    assert all(1 <= len(lines) <= 2 for _, _, lines in cues)
    assert " ".join(" ".join(lines) for _, _, lines in cues) == text  # every word once, in order
    assert all(1.0 - 0.001 <= end - start <= 7.0 + 0.001 for start, end, _ in cues)


def test_cues_split_at_pauses_and_sentence_ends_at_word_times() -> None:
    first = _timed("Good morning everyone. Thank you for coming today", 0.0, pauses={3: 1.5})
    cues = _cues(_transcript([first]).to_srt())
    assert [" ".join(lines) for _, _, lines in cues] == ["Good morning everyone.", "Thank you for coming today"]
    assert cues[1][0] == pytest.approx(first.words[3].start, abs=0.001)  # the cue starts when its first word is said
    assert cues[0][1] <= cues[1][0]


def test_line_width_and_count_are_the_callers() -> None:
    text = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    cues = _cues(_transcript([_timed(text, 0.0, step=0.2)]).to_srt(max_line_width=16, max_line_count=1))
    assert all(len(lines) == 1 and len(lines[0]) <= 16 for _, _, lines in cues)
    vtt = _transcript([_timed(text, 0.0, step=0.2)]).to_vtt(max_line_width=30, max_line_count=3)
    assert vtt.startswith("WEBVTT\n\n") and all(len(line) <= 30 for line in vtt.splitlines()[2:])


def test_a_short_cue_stays_long_enough_to_read_but_never_overlaps() -> None:
    quick = Segment(0.0, 0.3, "Hi.", [Word(0.0, 0.3, "Hi.")])
    late = _timed("Then a long silence before this.", 5.0)
    cues = _cues(_transcript([quick, late]).to_srt(min_duration=1.5))
    assert cues[0][:2] == (0.0, 1.5)
    close = _timed("And right after.", 0.8)
    cues = _cues(_transcript([quick, close]).to_srt(min_duration=1.5))
    assert cues[0][1] == pytest.approx(0.8)  # stretched only up to the next cue


def test_segments_without_word_times_are_split_by_their_share_of_characters() -> None:
    text = "word " * 40
    cues = _cues(_transcript([Segment(0.0, 20.0, text.strip())]).to_srt())
    assert len(cues) >= 3 and cues[0][0] == 0.0 and cues[-1][1] == pytest.approx(20.0)
    assert all(b[0] >= a[1] - 0.001 for a, b in zip(cues, cues[1:], strict=False))


@pytest.mark.parametrize(
    "kwargs", [{"max_line_width": 0}, {"max_line_count": 1.5}, {"min_duration": -1}, {"max_duration": 0},
               {"min_duration": 3, "max_duration": 2}, {"max_line_width": True}],
)  # fmt: skip
def test_bad_layouts_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(genai.InvalidRequestError):
        _transcript([_timed("a b c", 0.0)]).to_srt(**kwargs)  # type: ignore[arg-type]


_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz.,?", min_size=1, max_size=14)


@settings(max_examples=60, deadline=None, database=None)
@given(
    st.lists(st.tuples(st.lists(_WORD, min_size=1, max_size=30), st.floats(0.05, 1.0), st.floats(0.0, 2.0)),
             min_size=1, max_size=5),
    st.integers(8, 60), st.integers(1, 3),
)  # fmt: skip
def test_any_transcript_gives_ordered_cues_within_the_layout(
    parts: list[tuple[list[str], float, float]], width: int, count: int
) -> None:
    segments, at = [], 0.0
    for words, step, gap in parts:
        segment = _timed(" ".join(words), at + gap, step=step)
        segments.append(segment)
        at = segment.end
    transcript = _transcript(segments)
    cues = _cues(transcript.to_srt(max_line_width=width, max_line_count=count))
    assert " ".join(" ".join(lines) for _, _, lines in cues).split() == transcript.text.split()
    for start, end, lines in cues:
        assert start <= end and 1 <= len(lines) <= count
        assert all(len(line) <= width or " " not in line for line in lines)  # only a single long word overflows
    assert all(b[0] >= a[1] - 0.001 for a, b in zip(cues, cues[1:], strict=False))
