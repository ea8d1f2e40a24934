"""Typed requests and results, one per operation.

Plain frozen dataclasses rather than pydantic models: they cost nothing to import, and the values are
validated against the catalog by the pipeline, not by the type layer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal, TypedDict

from ._media import Audio, Image, Video
from ._serial import Serialisable

ImageOperation = Literal["generate", "edit", "variations", "upscale", "sketch", "blend"]
ScoreOperation = Literal["score", "classify", "rank"]  # rank: candidates against one text (best_of)
SpeechOperation = Literal["transcribe", "translate", "detect_language"]
ProviderOptions = Mapping[str, Mapping[str, object]]


@dataclass(frozen=True)
class Cost(Serialisable):
    """What a call costs. ``usd`` is None when the price is unknown: never a silent zero."""

    credits: Decimal
    usd: Decimal | None
    estimated: bool = False

    def __add__(self, other: Cost) -> Cost:
        usd = None if self.usd is None or other.usd is None else self.usd + other.usd
        return Cost(self.credits + other.credits, usd, self.estimated or other.estimated)

    def __str__(self) -> str:
        usd = "unpriced" if self.usd is None else f"${self.usd}"
        return f"{self.credits} credits ({usd}{', estimated' if self.estimated else ''})"


@dataclass(frozen=True)
class Progress:
    """Reported to ``on_progress`` while a call runs."""

    stage: str
    completed: float
    total: float | None = None
    message: str = ""
    preview: Image | None = None  # stage "partial": a picture of the work in progress (gpt-image's partial_images)

    @property
    def fraction(self) -> float | None:
        return None if not self.total else min(1.0, self.completed / self.total)


ProgressCallback = Callable[[Progress], None]


class CommonOptions(TypedDict, total=False):
    """Keyword arguments every call takes."""

    model: str | Sequence[str]  # several: fallbacks, tried in order
    account: str
    timeout: float
    provider_options: ProviderOptions
    on_progress: ProgressCallback


class ImageOptions(CommonOptions, total=False):
    """Keyword arguments of the image calls (see the Images page of the docs)."""

    n: int
    size: str
    quality: str
    style: str
    seed: int
    negative_prompt: str
    steps: int
    guidance: float


class VideoOptions(CommonOptions, total=False):
    seconds: float
    size: str
    fps: int
    seed: int
    negative_prompt: str
    steps: int
    guidance: float
    image: object


class TranscribeOptions(CommonOptions, total=False):
    language: str
    word_timestamps: bool
    prompt: str


class SynthesizeOptions(CommonOptions, total=False):
    voice: str
    format: str
    speed: float


@dataclass(frozen=True)
class CallOptions:
    """Settings common to every operation."""

    model: str | tuple[str, ...] | None = None  # several: fallbacks, tried in order
    account: str | None = None
    timeout: float | None = None
    provider_options: ProviderOptions = field(default_factory=dict)
    on_progress: ProgressCallback | None = None


@dataclass(frozen=True)
class ImageRequest:
    operation: ImageOperation
    prompt: str | None
    options: CallOptions
    images: tuple[Image, ...] = ()
    mask: Image | None = None
    n: int = 1
    size: str | None = None
    quality: str | None = None
    style: str | None = None
    seed: int | None = None
    negative_prompt: str | None = None
    steps: int | None = None
    guidance: float | None = None
    scale: int | None = None  # upscale: how many times larger (None: the model's own)
    weights: tuple[float, ...] = ()  # blend: each input image's share, summing to 1

    @property
    def modality(self) -> str:
        return "images"

    def resolved(self, size: str | None, quality: str | None) -> ImageRequest:
        """A copy with the catalog's defaults filled in (a direct call: ``replace`` is slow on the hot path)."""
        return ImageRequest(
            self.operation, self.prompt, self.options, self.images, self.mask, self.n, size, quality,
            self.style, self.seed, self.negative_prompt, self.steps, self.guidance, self.scale, self.weights,
        )


@dataclass(frozen=True)
class VideoRequest:
    prompt: str
    options: CallOptions
    seconds: float | None = None
    size: str | None = None
    fps: int | None = None
    seed: int | None = None
    negative_prompt: str | None = None
    steps: int | None = None
    guidance: float | None = None
    image: Image | None = None

    @property
    def operation(self) -> str:
        return "generate"

    @property
    def modality(self) -> str:
        return "videos"


@dataclass(frozen=True)
class TranscribeRequest:
    operation: SpeechOperation
    audio: Audio
    options: CallOptions
    language: str | None = None
    word_timestamps: bool = False
    prompt: str | None = None

    @property
    def modality(self) -> str:
        return "speech_to_text"


@dataclass(frozen=True)
class SynthesizeRequest:
    text: str
    options: CallOptions
    voice: str | None = None
    format: str = "wav"
    speed: float = 1.0

    @property
    def operation(self) -> str:
        return "synthesize"

    @property
    def modality(self) -> str:
        return "text_to_speech"

    @property
    def prompt(self) -> str:
        return self.text


@dataclass(frozen=True)
class ScoreRequest:
    """An image (or, to rank candidates, several) against texts, by an image-text model such as CLIP. For
    ``classify``, ``texts`` are the labels written into ``template``; ``labels`` keeps them as given."""

    operation: ScoreOperation
    images: tuple[Image, ...]
    texts: tuple[str, ...]
    options: CallOptions
    labels: tuple[str, ...] = ()
    template: str | None = None

    @property
    def modality(self) -> str:
        return "image_scoring"

    @property
    def prompt(self) -> str:
        return "\n".join(self.texts)


@dataclass(frozen=True)
class ImageResult(Serialisable):
    images: list[Image]
    cost: Cost
    model: str
    warnings: list[str] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    policy: list[PolicyDecision] = field(default_factory=list)  # the content policy's decisions (prompt, output)
    failed_models: list[str] = field(default_factory=list)  # fallbacks: the models that failed before ``model``
    # best_of: each image's similarity to the prompt by the scoring model (CLIP), in the order of ``images``
    scores: list[float] = field(default_factory=list)

    @property
    def image(self) -> Image:
        return self.images[0]

    def _repr_html_(self) -> str:
        """In a notebook: the pictures in a grid, with the model, the cost and any warnings."""
        cells = "".join(
            f'<img src="data:{media};base64,{data}" style="max-width:256px;max-height:256px;margin:2px">'
            for media, data in (_png_or_own(image) for image in self.images)
        )
        return f'<div style="display:flex;flex-wrap:wrap">{cells}</div>{_caption(self)}'


@dataclass(frozen=True)
class TextScore:
    """How well one text matches the image: the cosine similarity of their embeddings, and the probability of the
    text among those given (the softmax of the model's logits over the texts)."""

    text: str
    similarity: float
    probability: float


@dataclass(frozen=True)
class ImageScores(Serialisable):
    """``client.images.score``: one ``TextScore`` per text, in the order the texts were given."""

    scores: list[TextScore]
    cost: Cost
    model: str
    warnings: list[str] = field(default_factory=list)
    policy: list[PolicyDecision] = field(default_factory=list)  # the content policy's decisions (prompt, output)
    failed_models: list[str] = field(default_factory=list)  # fallbacks: the models that failed before ``model``

    @property
    def similarities(self) -> list[float]:
        return [s.similarity for s in self.scores]

    @property
    def probabilities(self) -> list[float]:
        return [s.probability for s in self.scores]

    @property
    def best(self) -> TextScore:
        return max(self.scores, key=lambda s: s.similarity)


@dataclass(frozen=True)
class LabelScore:
    """One label of a zero-shot classification: its probability among the labels, and the similarity of its
    prompt (the label written into the template) to the image."""

    label: str
    probability: float
    similarity: float


@dataclass(frozen=True)
class Classification(Serialisable):
    """``client.images.classify``: the labels ranked by probability, most likely first."""

    labels: list[LabelScore]
    cost: Cost
    model: str
    template: str = ""
    warnings: list[str] = field(default_factory=list)
    policy: list[PolicyDecision] = field(default_factory=list)  # the content policy's decisions (prompt, output)
    failed_models: list[str] = field(default_factory=list)  # fallbacks: the models that failed before ``model``

    @property
    def label(self) -> str:
        """The most likely label."""
        return self.labels[0].label


@dataclass(frozen=True)
class VideoResult(Serialisable):
    video: Video
    cost: Cost
    model: str
    warnings: list[str] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    policy: list[PolicyDecision] = field(default_factory=list)  # the content policy's decisions (prompt, output)
    failed_models: list[str] = field(default_factory=list)  # fallbacks: the models that failed before ``model``

    def _repr_html_(self) -> str:
        return self.video._repr_html_() + _caption(self)


def _png_or_own(image: Image) -> tuple[str, str]:
    bundle = image._repr_mimebundle_()
    media = next(key for key in bundle if key.startswith("image/"))
    return media, bundle[media]


def _caption(result: ImageResult | VideoResult | SpeechResult | Transcript) -> str:
    from html import escape

    lines = [f"{escape(result.model)}: {escape(str(result.cost))}", *(f"warning: {escape(w)}" for w in result.warnings)]
    return "<div><small>" + "<br>".join(lines) + "</small></div>"


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str
    probability: float | None = None


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)


def _timestamp(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


@dataclass(frozen=True)
class Transcript(Serialisable):
    text: str
    language: str | None
    duration: float | None
    segments: list[Segment]
    cost: Cost
    model: str
    warnings: list[str] = field(default_factory=list)
    policy: list[PolicyDecision] = field(default_factory=list)  # the content policy's decisions (prompt, output)
    failed_models: list[str] = field(default_factory=list)  # fallbacks: the models that failed before ``model``

    def to_srt(self, *, max_line_width: int = 42, max_line_count: int = 2, min_duration: float = 1.0,
               max_duration: float = 7.0) -> str:  # fmt: skip
        """SubRip subtitles: cues of at most ``max_line_count`` lines of ``max_line_width`` characters, split at
        word timestamps where the transcript has them (``word_timestamps=True``), at pauses and sentence ends."""
        from ._subtitles import cues

        made = cues(self.segments, max_line_width=max_line_width, max_line_count=max_line_count,
                    min_duration=min_duration, max_duration=max_duration)  # fmt: skip
        blocks = [
            f"{i}\n{_timestamp(c.start, ',')} --> {_timestamp(c.end, ',')}\n" + "\n".join(c.lines) + "\n"
            for i, c in enumerate(made, start=1)
        ]
        return "\n".join(blocks)

    def to_vtt(self, *, max_line_width: int = 42, max_line_count: int = 2, min_duration: float = 1.0,
               max_duration: float = 7.0) -> str:  # fmt: skip
        """WebVTT subtitles, laid out as :meth:`to_srt`'s."""
        from ._subtitles import cues

        made = cues(self.segments, max_line_width=max_line_width, max_line_count=max_line_count,
                    min_duration=min_duration, max_duration=max_duration)  # fmt: skip
        blocks = [f"{_timestamp(c.start, '.')} --> {_timestamp(c.end, '.')}\n" + "\n".join(c.lines) + "\n" for c in made]
        return "WEBVTT\n\n" + "\n".join(blocks)

    def _repr_html_(self) -> str:
        """In a notebook: the segments with their times, then the model and the cost."""
        from html import escape

        rows = "".join(
            f"<tr><td>{_timestamp(s.start, '.')}</td><td>{_timestamp(s.end, '.')}</td><td>{escape(s.text)}</td></tr>"
            for s in self.segments
        )
        language = f" ({escape(self.language)})" if self.language else ""
        return f"<table><tr><th>start</th><th>end</th><th>text{language}</th></tr>{rows}</table>{_caption(self)}"


@dataclass(frozen=True)
class LanguageGuess(Serialisable):
    language: str
    probability: float | None  # None: the backend does not say how sure it is (openai:whisper-1)
    alternatives: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Turn:
    """One turn of a spoken dialogue: who said what, when (seconds into the audio), with which model."""

    speaker: str
    text: str
    start: float
    end: float
    model: str


@dataclass(frozen=True)
class SpeechResult(Serialisable):
    audio: Audio
    cost: Cost
    model: str
    warnings: list[str] = field(default_factory=list)
    policy: list[PolicyDecision] = field(default_factory=list)  # the content policy's decisions (prompt, output)
    failed_models: list[str] = field(default_factory=list)  # fallbacks: the models that failed before ``model``
    turns: list[Turn] = field(default_factory=list)  # a dialogue's turns (synthesize_dialogue)

    def _repr_html_(self) -> str:
        return self.audio._repr_html_() + _caption(self)


@dataclass(frozen=True)
class PolicyDecision:
    """What the content policy decided about a prompt, a transcript or an image.

    ``action`` is "allow", "flag" (recorded and reported, not blocked) or "block"; ``allowed`` is False only for
    "block". ``categories`` are those flagged or blocked; ``scores`` hold each layer's score per category (a rule
    match counts as 1.0); ``layer`` names the check that decided ("rules", "classifier", "moderator",
    "nsfw-image", "faces"), or the layers consulted when nothing was found.
    """

    allowed: bool
    categories: list[str] = field(default_factory=list)
    reason: str = ""
    scores: Mapping[str, float] = field(default_factory=dict)
    layer: str = ""
    action: str = ""
    stage: str = "prompt"
    people: list[str] = field(default_factory=list)  # public figures the text names
    warnings: list[str] = field(default_factory=list)  # a layer that could not run (the moderator unreachable)

    def __post_init__(self) -> None:
        if not self.action:
            object.__setattr__(self, "action", "allow" if self.allowed else "block")


@dataclass(frozen=True)
class LedgerEntry:
    """One line of an account's history: a grant, a charge, or an expiry."""

    id: int
    account: str
    kind: str
    credits: Decimal
    usd: Decimal | None
    created: datetime
    reason: str = ""
    request_id: str | None = None
    model: str | None = None
    expires: datetime | None = None


Request = ImageRequest | VideoRequest | TranscribeRequest | SynthesizeRequest | ScoreRequest


def sequence_of_images(value: object) -> Sequence[object]:
    return value if isinstance(value, (list, tuple)) else [value]
