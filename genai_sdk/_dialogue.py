"""A script spoken by several voices: ``client.speech.synthesize_dialogue([("host", "..."), ("guest", "...")],
voices={...})`` makes one audio file, a pause between turns, with each turn's time and, in MP3 and M4A, a chapter
per turn.

Each turn is one ordinary call (validation, the content policy, a reservation, retries, its own charge). Every line
is checked by the content policy before the first is spoken, so a refused line costs nothing; a turn that fails
later stops the dialogue with an error that says what the turns before it cost.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import GenAIError, InvalidRequestError
from ._media import Audio, make_provenance
from ._requests import Cost, SpeechResult, Turn

if TYPE_CHECKING:
    from ._pipeline import Pipeline

RATE = 24000  # every turn is resampled to one rate before they are joined
MAX_PAUSE = 10.0
_VOICE = re.compile(r"(?P<model>[^@]+)(?:@(?P<voice>.+))?")


@dataclass(frozen=True)
class _Line:
    speaker: str
    text: str
    settings: Mapping[str, Any]


def read_script(text: str) -> list[tuple[str, str]]:
    """A script file's turns: one ``speaker: line`` a line; blank lines and lines starting with ``#`` are skipped."""
    turns: list[tuple[str, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        speaker, colon, said = line.partition(":")
        if not colon or not speaker.strip() or not said.strip():
            raise InvalidRequestError(f"script line {number}: write 'speaker: what they say', not {line[:60]!r}")
        turns.append((speaker.strip(), said.strip()))
    return turns


def voice_setting(value: str) -> dict[str, str]:
    """``MODEL`` or ``MODEL@VOICE`` (``openai:tts-1@nova``, ``piper:en_US-joe-medium``) as synthesize's settings."""
    found = _VOICE.fullmatch(value.strip())
    if found is None or ":" not in found["model"]:
        raise InvalidRequestError(f"voice {value!r}: give MODEL or MODEL@VOICE, for example openai:tts-1@nova")
    return {"model": found["model"], **({"voice": found["voice"]} if found["voice"] else {})}


class Dialogue:
    """The turns to speak and how to join them: the client's sync and async forms drive it the same way."""

    def __init__(self, pipeline: Pipeline, script: object, voices: object, pause: object, fmt: object,
                 common: Mapping[str, Any]) -> None:  # fmt: skip
        from ._audio import FORMATS

        if isinstance(pause, bool) or not isinstance(pause, int | float) or not 0 <= pause <= MAX_PAUSE:
            raise InvalidRequestError(f"pause={pause!r}: give seconds between turns, from 0 to {MAX_PAUSE:g}")
        if not isinstance(fmt, str) or fmt not in FORMATS or fmt == "pcm":
            raise InvalidRequestError(f"format={fmt!r}: use one of {', '.join(f for f in FORMATS if f != 'pcm')}")
        self.pause, self.format = float(pause), fmt
        self.warnings: list[str] = []
        self.lines = self._lines(pipeline, _turns(script), voices, common)

    def _lines(self, pipeline: Pipeline, turns: list[tuple[str, str]], voices: object, common: Mapping[str, Any]
               ) -> list[_Line]:  # fmt: skip
        if voices is None:
            voices = {}
        if not isinstance(voices, Mapping):
            raise InvalidRequestError("voices must map each speaker to a model, 'MODEL@VOICE', or synthesize settings")
        chosen: dict[str, dict[str, Any]] = {}
        for speaker, value in voices.items():
            if isinstance(value, str):
                chosen[str(speaker)] = voice_setting(value)
            elif isinstance(value, Mapping):
                chosen[str(speaker)] = dict(value)
            else:
                raise InvalidRequestError(f"voices[{speaker!r}]: give a model, 'MODEL@VOICE', or a mapping of settings")
        speakers = list(dict.fromkeys(speaker for speaker, _ in turns))
        unknown = sorted(set(chosen) - set(speakers))
        if unknown:
            raise InvalidRequestError(f"voices names speakers the script does not have: {', '.join(unknown)}")
        self._assign(pipeline, [s for s in speakers if s not in chosen], chosen, common)
        return [_Line(speaker, text, {**common, **chosen[speaker]}) for speaker, text in turns]

    def _assign(self, pipeline: Pipeline, speakers: list[str], chosen: dict[str, dict[str, Any]],
                common: Mapping[str, Any]) -> None:  # fmt: skip
        """Speakers without a voice of their own get the default model's voices in turn (one each where it has
        several); a model of one voice speaks for them all, and a warning says so."""
        if not speakers:
            return
        model_id = pipeline.model_id_for("text_to_speech", common.get("model"))
        model, _ = pipeline.resolve("text_to_speech", model_id)
        taken = {c.get("voice") for c in chosen.values() if c.get("model", model_id) == model_id}
        free = [v for v in model.voices if v not in taken] or list(model.voices)
        for index, speaker in enumerate(speakers):
            chosen[speaker] = {"model": model_id, **({"voice": free[index % len(free)]} if free else {})}
        if len(speakers) > max(1, len(free)):
            self.warnings.append(f"{model_id} has {len(free) or 1} voice(s) for {len(speakers)} speakers: some share a "
                                 "voice (give each its own with voices=)")  # fmt: skip

    def calls(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for line in self.lines:
            yield line.text, {**line.settings, "format": "wav"}

    def refused(self, pipeline: Pipeline) -> tuple[str, dict[str, Any]] | None:
        """The first line the content policy refuses (spoken first, so that it fails, recorded, before anything is
        charged), or None."""
        if not pipeline.policy.enabled:
            return None
        for text, settings in self.calls():
            if not pipeline.policy.check(text).allowed:
                return text, settings
        return None

    def joined(self, results: list[SpeechResult], script_text: str) -> SpeechResult:
        import numpy as np

        from ._audio import decode, encode_with_chapters, to_int16

        gap = np.zeros(int(self.pause * RATE), dtype=np.float32)
        pieces, turns, at = [], [], 0.0
        for index, (line, result) in enumerate(zip(self.lines, results, strict=True)):
            samples = decode(result.audio, sample_rate=RATE)
            if index:
                pieces.append(gap)
                at += len(gap) / RATE
            pieces.append(samples)
            turns.append(Turn(line.speaker, line.text, at, at + len(samples) / RATE, result.model))
            at += len(samples) / RATE
        chapters = [(turn.start, turn.end, f"{turn.speaker}: {turn.text[:60]}") for turn in turns]
        audio = encode_with_chapters(to_int16(np.concatenate(pieces)), RATE, self.format, chapters)
        models = list(dict.fromkeys(result.model for result in results))
        facts = make_provenance(model=", ".join(models), prompt=script_text)
        audio = Audio(audio.data, audio.media_type, audio.sample_rate, audio.duration, audio.channels, facts)
        cost = sum((r.cost for r in results[1:]), results[0].cost)
        warnings = list(dict.fromkeys([*self.warnings, *(w for r in results for w in r.warnings)]))
        return SpeechResult(audio, cost, ", ".join(models), warnings, turns=turns)


def _turns(script: object) -> list[tuple[str, str]]:
    if isinstance(script, str):
        raise InvalidRequestError("the script is a list of (speaker, text) pairs; read a script file with read_script")
    if not isinstance(script, Iterable):
        raise InvalidRequestError(f"the script is a list of (speaker, text) pairs, not {type(script).__name__}")
    turns = []
    for index, turn in enumerate(script):
        if not (isinstance(turn, tuple | list) and len(turn) == 2 and all(isinstance(x, str) for x in turn)):
            raise InvalidRequestError(f"turn {index}: give a (speaker, text) pair of strings, not {turn!r:.60}")
        speaker, text = turn[0].strip(), turn[1].strip()
        if not speaker or not text:
            raise InvalidRequestError(f"turn {index}: the speaker and the text must not be empty")
        turns.append((speaker, text))
    if not turns:
        raise InvalidRequestError("the script has no turns")
    return turns


def script_text(lines: list[_Line]) -> str:
    return "\n".join(f"{line.speaker}: {line.text}" for line in lines)


def failed(error: GenAIError, index: int, done: list[SpeechResult], count: int) -> GenAIError:
    """The error of a turn that failed, with what the turns before it cost (they were spoken and charged)."""
    if done:
        spent: Cost = sum((r.cost for r in done[1:]), done[0].cost)
        error.message = (f"{error.message} (turn {index + 1} of {count}; the {len(done)} turn(s) before it were spoken "
                         f"and charged {spent})")  # fmt: skip
        error.args = (error.message,)
    return error
