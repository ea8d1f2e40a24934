"""What a provider implements: the operations its backend can do, which the jobs call only when the catalog says the
model supports them. Providers translate and classify; they never retry, sleep, charge or apply policy."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .._catalog import ModelInfo
from .._errors import (
    ConfigError,
    GenAIError,
    GenerationFailedError,
    InvalidRequestError,
    ProviderError,
    ProviderUnavailableError,
)
from .._media import Audio, Image, Video
from .._requests import (
    ImageRequest,
    Request,
    ScoreRequest,
    Segment,
    SynthesizeRequest,
    TranscribeRequest,
    VideoRequest,
)
from ..credits._pricing import Usage

if TYPE_CHECKING:
    import numpy as np

# (done, total, message): how far a long backend call has got, in the call's own units (seconds of audio, ...)
StepReporter = Callable[[float, float, str], None]
SPENT = "_genai_spent"  # the attribute mark_spent sets on an error
E = TypeVar("E", bound=BaseException)


class Cancelled(GenerationFailedError):
    """The caller gave up (a cancelled task, an exception from on_progress): the backend work was stopped."""


@dataclass(frozen=True)
class CallContext:
    idempotency_key: str  # the same for every attempt of one backend call
    timeout: float | None  # seconds this attempt may take
    attempt: int
    progress: StepReporter | None = None
    cancelled: threading.Event | None = None  # set when the caller gave up: long local work stops at its next step
    # A long job started: record it (the backend's id of it, and what finds it again) before waiting on it.
    on_job: Callable[[str, Mapping[str, Any]], None] | None = None
    # A picture of the work in progress (a partial image): its index, and the image.
    preview: Callable[[int, Any], None] | None = None


@dataclass
class ImageBatch:
    images: list[Image]
    request_id: str | None = None
    quality: str | None = None  # what the backend says it used, for the actual cost
    size: str | None = None
    warnings: list[str] = field(default_factory=list)
    seed: int | None = None  # the seed a local backend used (chosen at random when none was given)
    compute_seconds: float | None = None
    billed: int | None = None  # images the backend made and billed, when not the images here (work that was lost)

    def usage(self) -> list[Usage]:
        """The images the backend billed (at the quality and size it says, if it says) and the compute-seconds."""
        count = len(self.images) if self.billed is None else self.billed
        return [Usage.of("image", count, self.quality, self.size), *_seconds(self.compute_seconds)]


@dataclass
class VideoOutcome:
    video: Video
    request_id: str | None = None
    seed: int | None = None
    compute_seconds: float | None = None
    warnings: list[str] = field(default_factory=list)

    def usage(self) -> list[Usage]:
        """The video's length, when known, and the compute-seconds measured."""
        length = [Usage.of("second", self.video.duration)] if self.video.duration else []
        return [*length, *_seconds(self.compute_seconds)]


@dataclass
class AudioPart:
    """A piece of the input audio: the bytes to upload, its decoded samples, and where it starts."""

    audio: Audio
    samples: np.ndarray[Any, Any] | None
    offset: float
    duration: float


@dataclass
class TranscriptPart:
    text: str
    language: str | None
    duration: float
    segments: list[Segment]
    request_id: str | None = None
    compute_seconds: float | None = None
    language_probability: float | None = None
    alternatives: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def usage(self) -> list[Usage]:
        return _seconds(self.compute_seconds)


@dataclass
class SpeechPart:
    audio: Audio  # already in the requested format when it is the only part; else 16-bit PCM ("audio/pcm")
    request_id: str | None = None
    compute_seconds: float | None = None
    warnings: list[str] = field(default_factory=list)

    def usage(self) -> list[Usage]:
        return _seconds(self.compute_seconds)


@dataclass
class ScoreOutcome:
    """Images against texts: one row per image, one column per text. ``similarities`` are the cosine similarities
    of the embeddings; ``probabilities`` the softmax of the model's logits over the texts, per image."""

    similarities: list[list[float]]
    probabilities: list[list[float]]
    compute_seconds: float | None = None
    warnings: list[str] = field(default_factory=list)

    def usage(self) -> list[Usage]:
        return _seconds(self.compute_seconds)


def _seconds(compute_seconds: float | None) -> list[Usage]:
    return [Usage.of("compute_second", compute_seconds)] if compute_seconds is not None else []


class Provider(Protocol):
    name: str

    def describe(self, model_name: str) -> ModelInfo | None:
        """Catalog facts for a model the built-in catalog does not list, or None if unknown."""

    def check(self, model: ModelInfo, request: Request) -> list[str]:
        """Provider-specific validation (``provider_options``, parsed with the provider's ``OptionSpec`` from
        ``providers/_options.py``); returns warnings, raises InvalidRequestError. Runs before anything is reserved."""

    def close(self) -> None: ...
    async def aclose(self) -> None: ...


class ImageProvider(Provider, Protocol):
    def images(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> ImageBatch: ...
    async def aimages(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> ImageBatch: ...


class VideoProvider(Provider, Protocol):
    def video(self, model: ModelInfo, request: VideoRequest, ctx: CallContext) -> VideoOutcome: ...
    async def avideo(self, model: ModelInfo, request: VideoRequest, ctx: CallContext) -> VideoOutcome: ...


class TranscriptionProvider(Provider, Protocol):
    def transcribe(
        self, model: ModelInfo, request: TranscribeRequest, part: AudioPart, ctx: CallContext
    ) -> TranscriptPart: ...
    async def atranscribe(
        self, model: ModelInfo, request: TranscribeRequest, part: AudioPart, ctx: CallContext
    ) -> TranscriptPart: ...


class SpeechProvider(Provider, Protocol):
    def synthesize(
        self, model: ModelInfo, request: SynthesizeRequest, text: str, ctx: CallContext, *, final: bool
    ) -> SpeechPart:
        """Speak ``text``; ``final`` means this is the only part, so answer in the requested format."""

    async def asynthesize(
        self, model: ModelInfo, request: SynthesizeRequest, text: str, ctx: CallContext, *, final: bool
    ) -> SpeechPart: ...


class ScoreProvider(Provider, Protocol):
    def score(self, model: ModelInfo, request: ScoreRequest, ctx: CallContext) -> ScoreOutcome: ...
    async def ascore(self, model: ModelInfo, request: ScoreRequest, ctx: CallContext) -> ScoreOutcome: ...


class LoadedModels:
    """Models a local provider has loaded, by key: each is loaded once per process, whatever the number of clients.
    ``loads`` counts real loads, so tests can observe that a second call reloads nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[Hashable, Any] = {}
        self.loads = 0

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        with self._lock:  # one load at a time: two threads asking for one model must not load it twice
            model = self._models.get(key)
            if model is None:
                model = self._models[key] = load()
                self.loads += 1
            return model

    def put(self, key: Hashable, model: Any) -> None:
        with self._lock:
            self._models[key] = model


def backend_image(data: bytes, provider: str, what: str = "an image") -> Image:
    """A backend's image, decoded in full under the pixel cap; anything else is its fault (a ProviderError)."""
    try:
        return Image.from_bytes(data)
    except InvalidRequestError as exc:
        raise ProviderError(f"{provider} answered with {what} that cannot be used: {exc.message}",
                            provider=provider) from exc  # fmt: skip


def video_from_bytes(data: bytes, provider: str) -> Video:
    """A backend's video file, with the facts PyAV (if installed) reads; not a video: the backend's failure."""
    media_type = "video/webm" if data[:4] == b"\x1a\x45\xdf\xa3" else "video/mp4"
    try:
        import av
    except ModuleNotFoundError:
        return Video(data, media_type)
    try:
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else None
            duration = float(container.duration) / 1_000_000 if container.duration else None
            return Video(data, media_type, stream.codec_context.width, stream.codec_context.height, fps, duration)
    except (av.error.FFmpegError, IndexError) as exc:
        raise GenerationFailedError(f"{provider.capitalize()} returned a file that is not a video: {exc}",
                                    provider=provider) from exc  # fmt: skip


def mark_spent(error: E, key: str, outcome: object) -> E:
    """Say that the backend did and billed the work of the call that failed with ``error`` (or that a caller gave up
    on: ``Abandoned``, a Ctrl-C, a cancelled task): ``outcome`` is what it made (an ImageBatch with ``billed`` images,
    say), ``key`` identifies it (a request id). The pipeline records it as spent unless a later attempt delivers it."""
    setattr(error, SPENT, (key, outcome))
    return error


def spent_work(error: BaseException) -> tuple[str, object] | None:
    found = getattr(error, SPENT, None)
    return found if isinstance(found, tuple) else None


def status_error(status: int, message: str, headers: Any, common: Mapping[str, Any], not_found: str) -> GenAIError:
    """The error of an HTTP answer that a provider's own rules (keys, limits, refusals) did not claim: a server's or a
    timeout (retried, after its Retry-After), a missing model (``not_found`` says what to check), a refused request."""
    from .._retry import parse_retry_after

    if status >= 500 or status == 408:
        return ProviderUnavailableError(message, retryable=True, retry_after=parse_retry_after(headers), **common)
    if status == 404:
        return ConfigError(f"{message}: {not_found}")
    if status in (400, 413, 422):
        return InvalidRequestError(message)
    return ProviderError(message, retryable=False, **common)
