"""Speech plans: transcription, translation and language detection; synthesis. Run by the same pipeline as images."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import cast

from ._audio import FORMATS, WHISPER_RATE, decode, encode, split_at_silences, to_int16
from ._catalog import Catalog, ModelInfo
from ._errors import InvalidRequestError, UnsupportedError
from ._jobs import CallPlan, Priced, check_operation, estimate_with_notices
from ._media import Audio, make_provenance
from ._requests import (
    Cost,
    LanguageGuess,
    Segment,
    SpeechResult,
    SynthesizeRequest,
    TranscribeRequest,
    Transcript,
    Word,
)
from .credits._pricing import Notice, Notices, Pricing, Usage
from .providers.base import (
    AudioPart,
    CallContext,
    Provider,
    SpeechPart,
    SpeechProvider,
    TranscriptionProvider,
    TranscriptPart,
)

_WAV_BYTES_PER_SECOND = WHISPER_RATE * 2
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
# Rough compute-seconds to reserve for a local run; the actual figure is measured.
_ESTIMATED_TRANSCRIBE_RTF = Decimal(1)
_ESTIMATED_SPEECH_SECONDS_PER_CHAR = Decimal("0.02")


def _compute_seconds(outcomes: Sequence[TranscriptPart] | Sequence[SpeechPart]) -> Usage:
    return Usage("compute_second", sum((u.quantity for o in outcomes for u in o.usage()), Decimal(0)))


@dataclass(frozen=True, kw_only=True)
class TranscribePlan(CallPlan[AudioPart, TranscriptPart, Transcript | LanguageGuess]):
    request: TranscribeRequest
    duration: float  # seconds of the whole audio

    def call(self, part: AudioPart, ctx: CallContext) -> TranscriptPart:
        return cast(TranscriptionProvider, self.provider).transcribe(self.model, self.request, part, ctx)

    async def acall(self, part: AudioPart, ctx: CallContext) -> TranscriptPart:
        return await cast(TranscriptionProvider, self.provider).atranscribe(self.model, self.request, part, ctx)

    def cost(self, outcomes: Sequence[TranscriptPart]) -> Priced:
        minutes = Usage("minute", Decimal(str(round(self.duration, 3))) / 60)  # of the audio sent
        return self._priced([minutes, _compute_seconds(outcomes)])

    def result(
        self, outcomes: Sequence[TranscriptPart], cost: Cost, request_id: str, notices: Notices
    ) -> Transcript | LanguageGuess:
        for outcome in outcomes:
            notices.extend(outcome.warnings)
        first = outcomes[0]
        if self.request.operation == "detect_language":
            return LanguageGuess(first.language or "und", first.language_probability, first.alternatives)
        segments: list[Segment] = []
        for part, outcome in zip(self.parts, outcomes, strict=True):
            for s in outcome.segments:
                words = [Word(w.start + part.offset, w.end + part.offset, w.text, w.probability) for w in s.words]
                segments.append(Segment(s.start + part.offset, min(s.end + part.offset, self.duration), s.text, words))
        text = " ".join(o.text for o in outcomes if o.text).strip()
        return Transcript(text, first.language, self.duration, segments, cost, self.model.id, notices.messages())


def build_transcribe_job(
    request: TranscribeRequest, model: ModelInfo, provider: Provider | None, catalog: Catalog, pricing: Pricing,
    today: date,
) -> TranscribePlan:  # fmt: skip
    model = catalog.priced(model)  # a model the catalog does not know may still have a price the application set
    warnings = check_operation(model, f"speech.{request.operation}", catalog, today)
    if model.english_only:
        instead = "use a multilingual model such as whisper:base (pip install 'genai-sdk[multilingual]') or openai:whisper-1"
        if request.operation == "translate":
            raise UnsupportedError(f"{model.id} knows only English and cannot translate: {instead}")
        if request.operation == "detect_language":
            raise UnsupportedError(f"{model.id} knows only English and cannot tell languages apart: {instead}")
        if request.language not in (None, "en"):
            raise UnsupportedError(f"{model.id} knows only English, not {request.language!r}: {instead}")
    if request.language is not None and not re.fullmatch(r"[a-z]{2,3}", request.language):
        raise InvalidRequestError(f"language={request.language!r}: give an ISO 639-1 code such as 'en' or 'de'")
    if request.prompt is not None and model.max_prompt is not None and len(request.prompt) > model.max_prompt:
        raise InvalidRequestError(f"the prompt has {len(request.prompt)} characters; {model.id} accepts at most {model.max_prompt}")
    if provider is not None:
        warnings.extend(provider.check(model, request))

    samples = decode(request.audio)
    duration = samples.shape[0] / WHISPER_RATE
    if model.max_upload_bytes is not None and len(request.audio.data) > model.max_upload_bytes:
        seconds = model.max_upload_bytes * 0.9 / _WAV_BYTES_PER_SECOND
        parts = []
        for start, end in split_at_silences(samples, WHISPER_RATE, seconds):
            chunk = encode(to_int16(samples[start:end]), WHISPER_RATE, "wav")
            parts.append(AudioPart(chunk, samples[start:end], start / WHISPER_RATE, (end - start) / WHISPER_RATE))
        if request.operation == "detect_language":  # the language is heard in the first part: only it is sent
            parts, duration = parts[:1], parts[0].duration
            warnings.append(Notice("split", model.id, f"the audio is over {model.id}'s upload limit of "
                                                      f"{model.max_upload_bytes} bytes: its first {duration:.0f} s were "
                                                      "sent to tell the language"))  # fmt: skip
        else:
            warnings.append(Notice("split", model.id, f"the audio is over {model.id}'s upload limit of "
                                                      f"{model.max_upload_bytes} bytes: it was split at silences into "
                                                      f"{len(parts)} parts"))  # fmt: skip
    else:
        parts = [AudioPart(request.audio, samples, 0.0, duration)]

    audio_seconds = Decimal(str(round(duration, 3)))
    expected = [Usage("minute", audio_seconds / 60), Usage("compute_second", audio_seconds * _ESTIMATED_TRANSCRIBE_RTF)]
    estimate, notices = estimate_with_notices(pricing, model, expected, warnings)
    return TranscribePlan(
        model=model, provider=provider, policy_text=request.prompt, estimate=estimate, parts=tuple(parts),
        notices=notices, pricing=pricing, request=request, duration=duration,
    )


def split_text(text: str, limit: int) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at sentence ends where possible, else at spaces."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text.strip()):
        while len(sentence) > limit:
            cut = sentence.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            pieces += [current, sentence[:cut].strip()]  # empty pieces are dropped at the end
            current, sentence = "", sentence[cut:].strip()
        candidate = f"{current} {sentence}".strip()
        if len(candidate) > limit:
            pieces.append(current)
            current = sentence
        else:
            current = candidate
    return [p for p in (*pieces, current) if p]


@dataclass(frozen=True, kw_only=True)
class SynthesizePlan(CallPlan[str, SpeechPart, SpeechResult]):
    request: SynthesizeRequest

    def call(self, part: str, ctx: CallContext) -> SpeechPart:
        provider = cast(SpeechProvider, self.provider)
        return provider.synthesize(self.model, self.request, part, ctx, final=len(self.parts) == 1)

    async def acall(self, part: str, ctx: CallContext) -> SpeechPart:
        provider = cast(SpeechProvider, self.provider)
        return await provider.asynthesize(self.model, self.request, part, ctx, final=len(self.parts) == 1)

    def cost(self, outcomes: Sequence[SpeechPart]) -> Priced:
        return self._priced([Usage.of("character", len(self.request.text)), _compute_seconds(outcomes)])

    def result(self, outcomes: Sequence[SpeechPart], cost: Cost, request_id: str, notices: Notices) -> SpeechResult:
        for outcome in outcomes:
            notices.extend(outcome.warnings)
        if len(outcomes) == 1:
            audio = outcomes[0].audio
        else:
            rates = {o.audio.sample_rate for o in outcomes}
            if len(rates) != 1 or None in rates:
                raise InvalidRequestError("the speech parts came back at different sample rates")
            audio = encode(b"".join(o.audio.data for o in outcomes), int(rates.pop() or 0), self.request.format)
        facts = make_provenance(model=self.model.id, prompt=self.request.text, request_id=outcomes[0].request_id or request_id)
        audio = Audio(audio.data, audio.media_type, audio.sample_rate, audio.duration, audio.channels, facts)
        return SpeechResult(audio, cost, self.model.id, notices.messages())


def build_synthesize_job(
    request: SynthesizeRequest, model: ModelInfo, provider: Provider | None, catalog: Catalog, pricing: Pricing,
    today: date,
) -> SynthesizePlan:  # fmt: skip
    model = catalog.priced(model)  # a model the catalog does not know may still have a price the application set
    warnings = check_operation(model, "speech.synthesize", catalog, today)
    formats = model.audio_formats or FORMATS
    if request.format not in formats:
        raise InvalidRequestError(f"format={request.format!r} is not available for {model.id}: use one of {', '.join(formats)}")
    low, high = model.speed_range
    if not low <= request.speed <= high:
        raise InvalidRequestError(f"speed={request.speed} is outside {model.id}'s range {low} to {high}")
    if request.voice is not None and model.voices and request.voice not in model.voices:
        raise InvalidRequestError(f"voice={request.voice!r} is not available for {model.id}: use one of {', '.join(model.voices)}")
    if provider is not None:
        warnings.extend(provider.check(model, request))
    parts = split_text(request.text, model.max_chars) if model.max_chars else [request.text]
    if len(parts) > 1:
        warnings.append(Notice("split", model.id, f"the text is over {model.id}'s limit of {model.max_chars} characters: "
                                                  f"it was spoken in {len(parts)} parts"))  # fmt: skip
    characters = Decimal(len(request.text))
    expected = [Usage("character", characters), Usage("compute_second", characters * _ESTIMATED_SPEECH_SECONDS_PER_CHAR)]
    estimate, notices = estimate_with_notices(pricing, model, expected, warnings)
    return SynthesizePlan(
        model=model, provider=provider, policy_text=request.text, estimate=estimate, parts=tuple(parts),
        notices=notices, pricing=pricing, request=request,
    )
