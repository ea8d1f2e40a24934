"""Helpers for the speech tests: SRT/VTT parsers written independently of the SDK's writers."""

from __future__ import annotations

import re

_STAMP = r"(\d{2}):(\d{2}):(\d{2})[,.](\d{3})"


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    cues = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.strip().splitlines()
        assert lines[0].strip().isdigit(), f"SRT cue without a number: {block!r}"
        match = re.fullmatch(_STAMP + r" --> " + _STAMP, lines[1].strip())
        assert match, f"bad SRT timing line: {lines[1]!r}"
        g = match.groups()
        cues.append((_seconds(*g[:4]), _seconds(*g[4:]), " ".join(lines[2:]).strip()))
    return cues


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    assert text.startswith("WEBVTT"), "a VTT file starts with WEBVTT"
    cues = []
    for block in re.split(r"\n\s*\n", text.strip())[1:]:
        lines = block.strip().splitlines()
        match = re.fullmatch(_STAMP + r" --> " + _STAMP, lines[0].strip())
        assert match, f"bad VTT timing line: {lines[0]!r}"
        g = match.groups()
        cues.append((_seconds(*g[:4]), _seconds(*g[4:]), " ".join(lines[1:]).strip()))
    return cues
