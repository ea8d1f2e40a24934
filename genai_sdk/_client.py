"""Client and AsyncClient, and their namespaces. Public methods build a typed request and hand it to the pipeline."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Never, TypeVar, cast

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._score_jobs import Ranking
    from ._streaming import AsyncSpeechStream, AsyncTranscriptStream, SpeechStream, TranscriptStream

from ._batch import BatchResults, arun_batch, run_batch
from ._catalog import Catalog, default_catalog
from ._config import MAX_TIMEOUT, Settings, resolve_settings
from ._errors import ConfigError, GenAIError, InvalidRequestError
from ._limits import rate_limiter
from ._longjobs import Job, check_status
from ._media import Audio, as_image
from ._observe import CallEvent, Observer
from ._pipeline import Pipeline
from ._requests import (
    CallOptions,
    Classification,
    CommonOptions,
    Cost,
    ImageOptions,
    ImageRequest,
    ImageResult,
    ImageScores,
    LanguageGuess,
    LedgerEntry,
    PolicyDecision,
    ProgressCallback,
    ScoreRequest,
    SpeechResult,
    SynthesizeOptions,
    SynthesizeRequest,
    TranscribeOptions,
    TranscribeRequest,
    Transcript,
    VideoOptions,
    VideoRequest,
    VideoResult,
    sequence_of_images,
)
from ._retry import RetryPolicy
from .credits import Budget, default_ledger_url, open_ledger
from .credits._base import Ledger
from .credits._plans import plan_named
from .credits._rules import utcnow
from .policy import Policy, config_from_setting
from .providers import ProviderPool
from .providers.base import Provider

_T = TypeVar("_T")

_PERIODS = ("day", "month")


def _check_provider_options(provider_options: object) -> None:
    """A dict of dicts with string keys, holding what JSON can carry (no NaN, no bytes, no objects): the options go
    to a backend as JSON, and what cannot be sent is refused here rather than half-way through a call."""
    import json

    if not isinstance(provider_options, Mapping) or not all(isinstance(v, Mapping) for v in provider_options.values()):
        raise InvalidRequestError("provider_options must map a provider name to a dict of that provider's options")
    for provider, options in provider_options.items():
        if not isinstance(provider, str) or not all(isinstance(key, str) for key in options):
            raise InvalidRequestError(f"provider_options: names must be strings, not {provider!r} -> {list(options)!r}")
        try:
            json.dumps(options, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise InvalidRequestError(
                f"provider_options[{provider!r}] holds a value that cannot be sent as JSON ({exc}): use strings, "
                "finite numbers, booleans, None, lists and dicts"
            ) from None


def _options(
    model: str | Sequence[str] | None,
    account: str | None,
    timeout: float | None,
    provider_options: Mapping[str, Mapping[str, object]] | None,
    on_progress: ProgressCallback | None,
) -> CallOptions:
    """The options every call takes, checked before anything is reserved or sent."""
    if isinstance(model, list | tuple):  # fallbacks, tried in order
        if not model or not all(isinstance(m, str) and m for m in model) or len(set(model)) != len(model):
            raise InvalidRequestError(f"model={model!r}: give a model, or a list of different models to try in order")
        model = tuple(model) if len(model) > 1 else model[0]
    elif model is not None and not isinstance(model, str):
        raise InvalidRequestError(f"model={model!r}: name a model as 'provider:model', for example 'openai:dall-e-2'")
    if account is not None and (not isinstance(account, str) or not account.strip()):
        raise InvalidRequestError(f"account={account!r}: an account is a non-empty string")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or not math.isfinite(timeout) or timeout <= 0
        or timeout > MAX_TIMEOUT
    ):
        raise InvalidRequestError(
            f"timeout={timeout!r}: give seconds as a finite number above 0 and at most {MAX_TIMEOUT:g} (or None for the default)"
        )
    if provider_options is not None:
        _check_provider_options(provider_options)
    if on_progress is not None and not callable(on_progress):
        raise InvalidRequestError(f"on_progress must be a function taking a genai.Progress, not {type(on_progress).__name__}")
    return CallOptions(model, account, None if timeout is None else float(timeout), dict(provider_options or {}), on_progress)


def _text(value: object, what: str, *, optional: bool = False) -> str | None:
    """A prompt or another text setting: a string that UTF-8 can carry (no lone surrogates)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidRequestError(f"{what} must be a string, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequestError(
            f"{what} contains a character UTF-8 cannot carry (a lone surrogate at position {exc.start}): "
            "decode the text it came from correctly"
        ) from None
    return value


def _whole(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"{what}={value!r}: give a whole number")
    return value


def _number(value: object, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRequestError(f"{what}={value!r}: give a finite number")
    return float(value)


def _image_request(
    operation: str,
    prompt: str | None,
    images: object = None,
    mask: object = None,
    *,
    model: str | Sequence[str] | None = None,
    n: int = 1,
    size: str | None = None,
    quality: str | None = None,
    style: str | None = None,
    seed: int | None = None,
    negative_prompt: str | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    scale: int | None = None,
    weights: object = None,
    account: str | None = None,
    timeout: float | None = None,
    provider_options: Mapping[str, Mapping[str, object]] | None = None,
    on_progress: ProgressCallback | None = None,
) -> ImageRequest:
    options = _options(model, account, timeout, provider_options, on_progress)
    inputs = tuple(as_image(item) for item in sequence_of_images(images)) if images is not None else ()
    return ImageRequest(
        operation=operation,  # type: ignore[arg-type]
        prompt=_text(prompt, "the prompt", optional=operation in ("variations", "upscale", "blend")),
        options=options,
        images=inputs,
        mask=as_image(mask, "mask") if mask is not None else None,
        n=n,
        size=_text(size, "size", optional=True),
        quality=_text(quality, "quality", optional=True),
        style=_text(style, "style", optional=True),
        seed=_whole(seed, "seed"),
        negative_prompt=_text(negative_prompt, "negative_prompt", optional=True),
        steps=_whole(steps, "steps"),
        guidance=_number(guidance, "guidance"),
        scale=_whole(scale, "scale"),
        weights=_weights(weights, len(inputs)) if operation == "blend" else _no_weights(weights),
    )


def _weights(value: object, count: int) -> tuple[float, ...]:
    """A blend's weights, one per image, not negative, scaled to sum to 1 (None: equal shares)."""
    if value is None:
        return tuple(1.0 / count for _ in range(count)) if count else ()
    if not isinstance(value, list | tuple) or len(value) != count:
        raise InvalidRequestError(f"weights={value!r}: give one number per image ({count})")
    numbers = [_number(v, "weights") for v in value]
    if any(n is None or n < 0 for n in numbers) or not sum(n or 0 for n in numbers) > 0:
        raise InvalidRequestError(f"weights={value!r}: give numbers of 0 or more, not all 0")
    total = sum(n or 0 for n in numbers)
    return tuple((n or 0) / total for n in numbers)


def _no_weights(value: object) -> tuple[float, ...]:
    if value is not None:
        raise InvalidRequestError("weights= is for images.blend")
    return ()


DEFAULT_TEMPLATE = "a photo of a {label}"  # CLIP's zero-shot prompt


def _texts(value: object, what: str) -> tuple[str, ...]:
    """A list of texts (one string is one text), each a string UTF-8 can carry."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise InvalidRequestError(f"{what} must be a list of strings, not {type(value).__name__}")
    return tuple(cast(str, _text(item, f"{what}[{index}]")) for index, item in enumerate(items))


def _score_request(
    operation: str,
    image: object,
    texts: object,
    *,
    template: str | None = None,
    model: str | Sequence[str] | None = None,
    account: str | None = None,
    timeout: float | None = None,
    provider_options: Mapping[str, Mapping[str, object]] | None = None,
    on_progress: ProgressCallback | None = None,
) -> ScoreRequest:
    options = _options(model, account, timeout, provider_options, on_progress)
    picture = as_image(image)
    if operation == "score":
        return ScoreRequest("score", (picture,), _texts(texts, "texts"), options)
    labels = _texts(texts, "labels")
    chosen = DEFAULT_TEMPLATE if template is None else cast(str, _text(template, "template"))
    if "{label}" not in chosen:
        raise InvalidRequestError(f"template={chosen!r} has no '{{label}}' to write each label into, as in {DEFAULT_TEMPLATE!r}")
    prompts = tuple(chosen.replace("{label}", label) for label in labels)
    return ScoreRequest("classify", (picture,), prompts, options, labels, chosen)


class ScoreOptions(CommonOptions, total=False):
    template: str


def _audio_input(audio: object) -> Audio:
    if isinstance(audio, Audio):
        return audio
    if isinstance(audio, (bytes, bytearray)):
        if not audio:
            raise InvalidRequestError("the audio is empty")
        return Audio.from_bytes(bytes(audio))
    if isinstance(audio, (str, os.PathLike)):
        return Audio.from_path(audio)
    raise InvalidRequestError(f"audio must be a path, bytes or a genai.Audio, not {type(audio).__name__}")


class _Namespace:
    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline


class Images(_Namespace):
    """``client.images``: generate, edit, variations, score, classify, estimate."""

    def generate(
        self, prompt: str, *, best_of: int | None = None, clip_model: str | None = None, **kwargs: Unpack[ImageOptions]
    ) -> ImageResult:
        """Generate ``n`` images of ``prompt``. With ``best_of=k``, k candidates are made (and charged) and the ``n``
        that the image-scoring model (``clip_model``, else the ``image_scoring`` setting) ranks highest against the
        prompt are returned, best first, their scores in ``result.scores``. See the docs for every keyword argument."""
        request = _image_request("generate", prompt, **kwargs)
        if best_of is None:
            result: ImageResult = self._pipeline.run(request)
            return result
        from ._best_of import best, candidates_request, ranking_request

        candidates, scorer = candidates_request(self._pipeline, request, best_of, clip_model)
        made: ImageResult = self._pipeline.run(candidates)
        ranking = cast("Ranking", self._pipeline.run(ranking_request(request, made, scorer)))
        return best(made, ranking, request.n)

    def score(self, image: object, texts: Sequence[str], **kwargs: Unpack[CommonOptions]) -> ImageScores:
        """How well each text matches the image, by an image-text model (CLIP): the cosine similarity of their
        embeddings and the probability of each text among those given."""
        return _expect(self._pipeline.run(_score_request("score", image, texts, **kwargs)), ImageScores)

    def classify(self, image: object, labels: Sequence[str], **kwargs: Unpack[ScoreOptions]) -> Classification:
        """Zero-shot classification: the labels ranked by probability, each written into ``template`` (CLIP's
        "a photo of a {label}" unless given)."""
        return _expect(self._pipeline.run(_score_request("classify", image, labels, **kwargs)), Classification)

    def edit(self, image: object, prompt: str, *, mask: object = None, **kwargs: Unpack[ImageOptions]) -> ImageResult:
        """Edit an image (or combine several) as the prompt says; a mask's transparent areas mark what may change."""
        result: ImageResult = self._pipeline.run(_image_request("edit", prompt, image, mask, **kwargs))
        return result

    def variations(self, image: object, **kwargs: Unpack[ImageOptions]) -> ImageResult:
        result: ImageResult = self._pipeline.run(_image_request("variations", None, image, **kwargs))
        return result

    def upscale(self, image: object, *, scale: int | None = None, prompt: str | None = None,
                **kwargs: Unpack[ImageOptions]) -> ImageResult:  # fmt: skip
        """A larger picture of ``image``: ``scale`` times its size (None: the model's own), guided by ``prompt``
        where the model takes one."""
        result: ImageResult = self._pipeline.run(_image_request("upscale", prompt, image, scale=scale, **kwargs))
        return result

    def from_sketch(self, sketch: object, prompt: str, **kwargs: Unpack[ImageOptions]) -> ImageResult:
        """A picture from a line drawing or scribble and a prompt (the sketch sets its composition and size)."""
        result: ImageResult = self._pipeline.run(_image_request("sketch", prompt, sketch, **kwargs))
        return result

    def blend(self, images: Sequence[object], *, weights: Sequence[float] | None = None, prompt: str | None = None,
              **kwargs: Unpack[ImageOptions]) -> ImageResult:  # fmt: skip
        """One picture that combines several: ``weights`` (one per image, equal by default) say how much of each;
        ``prompt`` adds what the blend should show. A backend that cannot weigh them exactly says so in a warning."""
        request = _image_request("blend", prompt, list(images), weights=weights, **kwargs)
        result: ImageResult = self._pipeline.run(request)
        return result

    def generate_many(
        self, prompts: Iterable[object], *, concurrency: int = 8, progress: bool | None = None,
        **kwargs: Unpack[ImageOptions],
    ) -> BatchResults[ImageResult]:
        """``generate`` for every prompt (or mapping of per-item arguments), ``concurrency`` at a time: the answers
        in input order, each an ImageResult or the GenAIError that item ended with."""
        return run_batch(
            lambda prompt, kw: self.generate(cast(str, prompt), **kw), prompts, kwargs,
            primary="prompt", concurrency=concurrency, progress=progress, label="images",
        )  # fmt: skip

    def edit_many(
        self, images: Iterable[object], *, concurrency: int = 8, progress: bool | None = None, **kwargs: Any
    ) -> BatchResults[ImageResult]:
        """``edit`` for every image (with the common ``prompt=``), or every mapping of per-item arguments
        (``{"image": ..., "prompt": ..., "mask": ...}``)."""
        return run_batch(
            lambda image, kw: self.edit(image, **kw), images, kwargs,
            primary="image", concurrency=concurrency, progress=progress, label="edits",
        )  # fmt: skip

    def estimate(
        self, prompt: str | None = None, *, operation: str = "generate", image: object = None, **kwargs: Unpack[ImageOptions]
    ) -> Cost:
        """What the call would cost; nothing is sent and nothing is reserved."""
        return self._pipeline.estimate(_image_request(operation, prompt, image, **kwargs))


class AsyncImages(_Namespace):
    async def generate(
        self, prompt: str, *, best_of: int | None = None, clip_model: str | None = None, **kwargs: Unpack[ImageOptions]
    ) -> ImageResult:
        request = _image_request("generate", prompt, **kwargs)
        if best_of is None:
            result: ImageResult = await self._pipeline.arun(request)
            return result
        from ._best_of import best, candidates_request, ranking_request

        candidates, scorer = candidates_request(self._pipeline, request, best_of, clip_model)
        made: ImageResult = await self._pipeline.arun(candidates)
        ranking = cast("Ranking", await self._pipeline.arun(ranking_request(request, made, scorer)))
        return best(made, ranking, request.n)

    async def score(self, image: object, texts: Sequence[str], **kwargs: Unpack[CommonOptions]) -> ImageScores:
        return _expect(await self._pipeline.arun(_score_request("score", image, texts, **kwargs)), ImageScores)

    async def classify(self, image: object, labels: Sequence[str], **kwargs: Unpack[ScoreOptions]) -> Classification:
        return _expect(await self._pipeline.arun(_score_request("classify", image, labels, **kwargs)), Classification)

    async def edit(self, image: object, prompt: str, *, mask: object = None, **kwargs: Unpack[ImageOptions]) -> ImageResult:
        result: ImageResult = await self._pipeline.arun(_image_request("edit", prompt, image, mask, **kwargs))
        return result

    async def variations(self, image: object, **kwargs: Unpack[ImageOptions]) -> ImageResult:
        result: ImageResult = await self._pipeline.arun(_image_request("variations", None, image, **kwargs))
        return result

    async def upscale(self, image: object, *, scale: int | None = None, prompt: str | None = None,
                      **kwargs: Unpack[ImageOptions]) -> ImageResult:  # fmt: skip
        result: ImageResult = await self._pipeline.arun(_image_request("upscale", prompt, image, scale=scale, **kwargs))
        return result

    async def from_sketch(self, sketch: object, prompt: str, **kwargs: Unpack[ImageOptions]) -> ImageResult:
        result: ImageResult = await self._pipeline.arun(_image_request("sketch", prompt, sketch, **kwargs))
        return result

    async def blend(self, images: Sequence[object], *, weights: Sequence[float] | None = None, prompt: str | None = None,
                    **kwargs: Unpack[ImageOptions]) -> ImageResult:  # fmt: skip
        request = _image_request("blend", prompt, list(images), weights=weights, **kwargs)
        result: ImageResult = await self._pipeline.arun(request)
        return result

    async def generate_many(
        self, prompts: Iterable[object], *, concurrency: int = 8, progress: bool | None = None,
        **kwargs: Unpack[ImageOptions],
    ) -> BatchResults[ImageResult]:
        return await arun_batch(
            lambda prompt, kw: self.generate(cast(str, prompt), **kw), prompts, kwargs,
            primary="prompt", concurrency=concurrency, progress=progress, label="images",
        )  # fmt: skip

    async def edit_many(
        self, images: Iterable[object], *, concurrency: int = 8, progress: bool | None = None, **kwargs: Any
    ) -> BatchResults[ImageResult]:
        return await arun_batch(
            lambda image, kw: self.edit(image, **kw), images, kwargs,
            primary="image", concurrency=concurrency, progress=progress, label="edits",
        )  # fmt: skip

    async def estimate(
        self, prompt: str | None = None, *, operation: str = "generate", image: object = None, **kwargs: Unpack[ImageOptions]
    ) -> Cost:
        return self._pipeline.estimate(_image_request(operation, prompt, image, **kwargs))


def _video_request(prompt: str, **kwargs: Any) -> VideoRequest:
    common = {k: kwargs.pop(k, None) for k in ("model", "account", "timeout", "provider_options", "on_progress")}
    options = _options(**common)
    image = kwargs.pop("image", None)
    for name in ("fps", "seed", "steps"):
        kwargs[name] = _whole(kwargs.get(name), name)
    for name in ("seconds", "guidance"):
        kwargs[name] = _number(kwargs.get(name), name)
    for name in ("size", "negative_prompt"):
        kwargs[name] = _text(kwargs.get(name), name, optional=True)
    text = _text(prompt, "the prompt")
    return VideoRequest(text or "", options, image=as_image(image) if image is not None else None, **kwargs)


class Videos(_Namespace):
    def generate(self, prompt: str, **kwargs: Unpack[VideoOptions]) -> VideoResult:
        result: VideoResult = self._pipeline.run(_video_request(prompt, **kwargs))
        return result

    def generate_many(
        self, prompts: Iterable[object], *, concurrency: int = 4, progress: bool | None = None,
        **kwargs: Unpack[VideoOptions],
    ) -> BatchResults[VideoResult]:
        return run_batch(
            lambda prompt, kw: self.generate(cast(str, prompt), **kw), prompts, kwargs,
            primary="prompt", concurrency=concurrency, progress=progress, label="videos",
        )  # fmt: skip


class AsyncVideos(_Namespace):
    async def generate(self, prompt: str, **kwargs: Unpack[VideoOptions]) -> VideoResult:
        result: VideoResult = await self._pipeline.arun(_video_request(prompt, **kwargs))
        return result

    async def generate_many(
        self, prompts: Iterable[object], *, concurrency: int = 4, progress: bool | None = None,
        **kwargs: Unpack[VideoOptions],
    ) -> BatchResults[VideoResult]:
        return await arun_batch(
            lambda prompt, kw: self.generate(cast(str, prompt), **kw), prompts, kwargs,
            primary="prompt", concurrency=concurrency, progress=progress, label="videos",
        )  # fmt: skip


def _speech_request(operation: str, audio: object, **kwargs: Any) -> TranscribeRequest:
    common = {k: kwargs.pop(k, None) for k in ("model", "account", "timeout", "provider_options", "on_progress")}
    options = _options(**common)
    for name in ("language", "prompt"):
        if name in kwargs:
            kwargs[name] = _text(kwargs[name], name, optional=True)
    return TranscribeRequest(operation, _audio_input(audio), options, **kwargs)  # type: ignore[arg-type]


def _synthesize_request(text: str, **kwargs: Any) -> SynthesizeRequest:
    common = {k: kwargs.pop(k, None) for k in ("model", "account", "timeout", "provider_options", "on_progress")}
    options = _options(**common)
    spoken = _text(text, "the text to speak") or ""
    if not spoken.strip():
        raise InvalidRequestError("the text to speak is empty")
    for name in ("voice", "format"):
        if name in kwargs:
            kwargs[name] = _text(kwargs[name], name, optional=True)
    if "speed" in kwargs:
        kwargs["speed"] = _number(kwargs["speed"], "speed")
    return SynthesizeRequest(spoken, options, **kwargs)


def _speech_estimate_request(operation: str, value: object, **kwargs: Any) -> TranscribeRequest | SynthesizeRequest:
    if operation == "synthesize":
        if not isinstance(value, str):
            raise InvalidRequestError("estimate('synthesize', text): the text must be a string")
        return _synthesize_request(value, **kwargs)
    if operation not in ("transcribe", "translate", "detect_language"):
        raise InvalidRequestError(f"operation={operation!r}: use synthesize, transcribe, translate or detect_language")
    return _speech_request(operation, value, **kwargs)


def _expect(result: object, kind: type[_T]) -> _T:
    """A transcription's result as its operation makes it (a detect_language call makes a LanguageGuess)."""
    if not isinstance(result, kind):
        raise TypeError(f"expected a {kind.__name__}, the pipeline made a {type(result).__name__}")  # a bug, not input
    return result


class Speech(_Namespace):
    def transcribe(self, audio: object, **kwargs: Unpack[TranscribeOptions]) -> Transcript:
        return _expect(self._pipeline.run(_speech_request("transcribe", audio, **kwargs)), Transcript)

    def translate(self, audio: object, **kwargs: Unpack[TranscribeOptions]) -> Transcript:
        return _expect(self._pipeline.run(_speech_request("translate", audio, **kwargs)), Transcript)

    def detect_language(self, audio: object, **kwargs: Unpack[CommonOptions]) -> LanguageGuess:
        return _expect(self._pipeline.run(_speech_request("detect_language", audio, **kwargs)), LanguageGuess)

    def synthesize(self, text: str, **kwargs: Unpack[SynthesizeOptions]) -> SpeechResult:
        result: SpeechResult = self._pipeline.run(_synthesize_request(text, **kwargs))
        return result

    def synthesize_dialogue(
        self, script: Iterable[tuple[str, str]], *, voices: Mapping[str, object] | None = None, pause: float = 0.5,
        format: str = "wav", **kwargs: Unpack[CommonOptions],
    ) -> SpeechResult:  # fmt: skip
        """A script of ``(speaker, text)`` turns spoken by several voices, as one audio file: ``voices`` maps a
        speaker to a model, ``"MODEL@VOICE"`` or synthesize settings (speakers without one get the default model's
        voices in turn); ``pause`` seconds between turns. ``result.turns`` holds each turn's time; MP3 and M4A files
        carry a chapter per turn. Each turn is one call and one charge."""
        from ._dialogue import Dialogue, failed, script_text

        dialogue = Dialogue(self._pipeline, script, voices, pause, format, kwargs)
        refused = dialogue.refused(self._pipeline)
        if refused is not None:  # refused, and recorded, before any line is spoken
            self.synthesize(refused[0], **refused[1])
        results: list[SpeechResult] = []
        for index, (text, settings) in enumerate(dialogue.calls()):
            try:
                results.append(self.synthesize(text, **settings))
            except GenAIError as error:
                raise failed(error, index, results, len(dialogue.lines)) from None
        return dialogue.joined(results, script_text(dialogue.lines))

    def transcribe_stream(self, audio: object, **kwargs: Unpack[TranscribeOptions]) -> TranscriptStream:
        """The transcript's segments as they are recognised (a local Whisper model hands each over as it hears
        it); ``.result`` is the Transcript once it ends. Closing it early cancels the call."""
        from ._streaming import TranscriptStream

        return TranscriptStream(self._pipeline, _speech_request("transcribe", audio, **kwargs))

    def stream(self, text: str, **kwargs: Unpack[SynthesizeOptions]) -> SpeechStream:
        """Speech as it is made: iterate for encoded chunks (``format`` wav, pcm or mp3); ``.result`` once it ends.
        Nothing runs until the first chunk is asked for."""
        from ._streaming import SpeechStream

        return SpeechStream(self._pipeline, _synthesize_request(text, **kwargs))

    def transcribe_many(
        self, files: Iterable[object], *, concurrency: int = 4, progress: bool | None = None,
        **kwargs: Unpack[TranscribeOptions],
    ) -> BatchResults[Transcript]:
        return run_batch(
            lambda audio, kw: self.transcribe(audio, **kw), files, kwargs,
            primary="audio", concurrency=concurrency, progress=progress, label="transcripts",
        )  # fmt: skip

    def synthesize_many(
        self, texts: Iterable[object], *, concurrency: int = 4, progress: bool | None = None,
        **kwargs: Unpack[SynthesizeOptions],
    ) -> BatchResults[SpeechResult]:
        return run_batch(
            lambda text, kw: self.synthesize(cast(str, text), **kw), texts, kwargs,
            primary="text", concurrency=concurrency, progress=progress, label="speech",
        )  # fmt: skip

    def estimate(self, operation: str, value: object, **kwargs: Any) -> Cost:
        """What a call would cost: ``estimate("synthesize", text)`` or ``estimate("transcribe", audio)``
        (also "translate", "detect_language"). Nothing is sent and nothing is reserved."""
        return self._pipeline.estimate(_speech_estimate_request(operation, value, **kwargs))


class AsyncSpeech(_Namespace):
    async def transcribe(self, audio: object, **kwargs: Unpack[TranscribeOptions]) -> Transcript:
        return _expect(await self._pipeline.arun(_speech_request("transcribe", audio, **kwargs)), Transcript)

    async def translate(self, audio: object, **kwargs: Unpack[TranscribeOptions]) -> Transcript:
        return _expect(await self._pipeline.arun(_speech_request("translate", audio, **kwargs)), Transcript)

    async def detect_language(self, audio: object, **kwargs: Unpack[CommonOptions]) -> LanguageGuess:
        return _expect(await self._pipeline.arun(_speech_request("detect_language", audio, **kwargs)), LanguageGuess)

    async def synthesize(self, text: str, **kwargs: Unpack[SynthesizeOptions]) -> SpeechResult:
        result: SpeechResult = await self._pipeline.arun(_synthesize_request(text, **kwargs))
        return result

    async def synthesize_dialogue(
        self, script: Iterable[tuple[str, str]], *, voices: Mapping[str, object] | None = None, pause: float = 0.5,
        format: str = "wav", **kwargs: Unpack[CommonOptions],
    ) -> SpeechResult:  # fmt: skip
        """``Client.speech.synthesize_dialogue``, from an event loop."""
        from ._dialogue import Dialogue, failed, script_text

        dialogue = Dialogue(self._pipeline, script, voices, pause, format, kwargs)
        refused = await _thread(dialogue.refused, self._pipeline)
        if refused is not None:  # refused, and recorded, before any line is spoken
            await self.synthesize(refused[0], **refused[1])
        results: list[SpeechResult] = []
        for index, (text, settings) in enumerate(dialogue.calls()):
            try:
                results.append(await self.synthesize(text, **settings))
            except GenAIError as error:
                raise failed(error, index, results, len(dialogue.lines)) from None
        return await _thread(dialogue.joined, results, script_text(dialogue.lines))

    def transcribe_stream(self, audio: object, **kwargs: Unpack[TranscribeOptions]) -> AsyncTranscriptStream:
        """``async for segment in client.speech.transcribe_stream(audio)``; ``.result`` once it ends."""
        from ._streaming import AsyncTranscriptStream

        return AsyncTranscriptStream(self._pipeline, _speech_request("transcribe", audio, **kwargs))

    def stream(self, text: str, **kwargs: Unpack[SynthesizeOptions]) -> AsyncSpeechStream:
        """Speech as it is made: ``async for chunk in client.speech.stream(text)``; ``.result`` once it ends."""
        from ._streaming import AsyncSpeechStream

        return AsyncSpeechStream(self._pipeline, _synthesize_request(text, **kwargs))

    async def transcribe_many(
        self, files: Iterable[object], *, concurrency: int = 4, progress: bool | None = None,
        **kwargs: Unpack[TranscribeOptions],
    ) -> BatchResults[Transcript]:
        return await arun_batch(
            lambda audio, kw: self.transcribe(audio, **kw), files, kwargs,
            primary="audio", concurrency=concurrency, progress=progress, label="transcripts",
        )  # fmt: skip

    async def synthesize_many(
        self, texts: Iterable[object], *, concurrency: int = 4, progress: bool | None = None,
        **kwargs: Unpack[SynthesizeOptions],
    ) -> BatchResults[SpeechResult]:
        return await arun_batch(
            lambda text, kw: self.synthesize(cast(str, text), **kw), texts, kwargs,
            primary="text", concurrency=concurrency, progress=progress, label="speech",
        )  # fmt: skip

    async def estimate(self, operation: str, value: object, **kwargs: Any) -> Cost:
        return self._pipeline.estimate(_speech_estimate_request(operation, value, **kwargs))


MAX_CREDITS = Decimal(10) ** 12  # beyond any real grant or budget; the SQL ledgers store 64-bit integers


def _decimal(value: object, what: str, *, positive: bool = False) -> Decimal:
    if isinstance(value, bool):
        raise InvalidRequestError(f"{what} must be a number, not {value!r}")
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise InvalidRequestError(f"{what} must be a number, not {value!r}") from None
    if not number.is_finite():
        raise InvalidRequestError(f"{what} must be a finite number, not {value!r}")
    if abs(number) >= MAX_CREDITS:
        raise InvalidRequestError(f"{what}={value!r} is out of range: below {MAX_CREDITS:,} please")
    if positive and number <= 0:
        raise InvalidRequestError(f"{what}={value!r}: give a number above 0 (or None to have no limit)")
    return number


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and (not isinstance(moment, datetime) or moment.tzinfo is None):
        raise InvalidRequestError(
            f"expires={moment!r}: give a datetime with a time zone, for example datetime(2027, 1, 1, tzinfo=UTC)"
        )
    return moment


class Credits(_Namespace):
    """``client.credits``: balances, grants, budgets and history of the ledger."""

    def _account(self, account: str | None) -> str:
        """The account, given what the credit plan gives it by now (free monthly credits)."""
        name = account or self._pipeline.settings.account
        self._pipeline.plan.prepare(self._pipeline.ledger, name, self._pipeline.clock())
        return name

    def balance(self, account: str | None = None) -> Decimal:
        return self._pipeline.ledger.balance(self._account(account))

    def reserved(self, account: str | None = None) -> Decimal:
        """Credits set aside by calls in flight (or by a crashed process, until its reservations expire)."""
        return self._pipeline.ledger.reserved(self._account(account))

    def buy(self, packs: int = 1, account: str | None = None) -> LedgerEntry:
        """Record the purchase of packs of credits, as the credit plan sells them (the 'dalle' plan: 115 for 15 USD)."""
        return self._pipeline.plan.buy(self._pipeline.ledger, self._account(account), packs)

    def grant(
        self, credits: object, account: str | None = None, reason: str = "purchase", expires: datetime | None = None
    ) -> LedgerEntry:
        return self._pipeline.ledger.grant(
            self._account(account), _decimal(credits, "credits"), reason, _aware(expires)
        )

    def set_budget(
        self, credits: object = None, usd: object = None, period: str = "month", account: str | None = None
    ) -> None:
        if period not in _PERIODS:
            raise InvalidRequestError(f"period={period!r}: use one of {', '.join(_PERIODS)}")
        budget = Budget(
            period,
            None if credits is None else _decimal(credits, "credits", positive=True),
            None if usd is None else _decimal(usd, "usd", positive=True),
        )
        self._pipeline.ledger.set_budget(self._account(account), budget)

    def history(self, account: str | None = None) -> list[LedgerEntry]:
        return self._pipeline.ledger.history(self._account(account))

    def budgets(self, account: str | None = None) -> list[Budget]:
        """The account's budgets (``set_budget`` with neither credits nor usd removes one)."""
        return self._pipeline.ledger.budgets(self._account(account))


class AsyncCredits(_Namespace):
    """The credits namespace for async code: a SQLite or PostgreSQL ledger is read and written in a worker thread,
    never on the event loop (the in-memory ledger, which never blocks, is used in place)."""

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__(pipeline)
        self._sync = Credits(pipeline)

    async def _off_loop(self, operation: Callable[..., _T], *args: Any) -> _T:
        return await self._pipeline._ledger(operation, *args)  # type: ignore[no-any-return]

    async def balance(self, account: str | None = None) -> Decimal:
        return await self._off_loop(self._sync.balance, account)

    async def grant(
        self, credits: object, account: str | None = None, reason: str = "purchase", expires: datetime | None = None
    ) -> LedgerEntry:
        return await self._off_loop(self._sync.grant, credits, account, reason, expires)

    async def set_budget(
        self, credits: object = None, usd: object = None, period: str = "month", account: str | None = None
    ) -> None:
        await self._off_loop(self._sync.set_budget, credits, usd, period, account)

    async def history(self, account: str | None = None) -> list[LedgerEntry]:
        return await self._off_loop(self._sync.history, account)

    async def budgets(self, account: str | None = None) -> list[Budget]:
        return await self._off_loop(self._sync.budgets, account)

    async def reserved(self, account: str | None = None) -> Decimal:
        return await self._off_loop(self._sync.reserved, account)

    async def buy(self, packs: int = 1, account: str | None = None) -> LedgerEntry:
        return await self._off_loop(self._sync.buy, packs, account)


class Jobs(_Namespace):
    """``client.jobs``: long backend jobs (Replicate predictions) recorded beside the ledger, so that a job whose
    process died can be collected, and charged once, from another: ``list``, ``get``, ``resume``, ``cancel``."""

    def list(self, status: str | None = None, account: str | None = None) -> list[Job]:
        """Recorded jobs, oldest first: all, or those with ``status`` (running, done, failed, cancelled)."""
        return self._pipeline.jobs.list(check_status(status), account)

    def get(self, job_id: str) -> Job:
        job = self._pipeline.jobs.get(job_id) if isinstance(job_id, str) else None
        if job is None:
            raise InvalidRequestError(f"no job {job_id!r} is recorded with this ledger: client.jobs.list() shows them")
        return job

    def resume(self, job_id: str) -> ImageResult | VideoResult:
        """Wait for a running job (its process gone) to finish, and return its result, charged exactly once."""
        return self._pipeline.resume_job(job_id)

    def cancel(self, job_id: str) -> Job:
        """Stop a running job on its backend and give its reservation back."""
        return self._pipeline.cancel_job(job_id)


class AsyncJobs(_Namespace):
    """``client.jobs`` for async code: the same, each in a worker thread."""

    async def list(self, status: str | None = None, account: str | None = None) -> list[Job]:
        return await _thread(Jobs(self._pipeline).list, status, account)

    async def get(self, job_id: str) -> Job:
        return await _thread(Jobs(self._pipeline).get, job_id)

    async def resume(self, job_id: str) -> ImageResult | VideoResult:
        return await _thread(self._pipeline.resume_job, job_id)

    async def cancel(self, job_id: str) -> Job:
        return await _thread(self._pipeline.cancel_job, job_id)


async def _thread(function: Callable[..., _T], *args: Any) -> _T:
    import asyncio

    return await asyncio.to_thread(function, *args)


def _policy_text(text: object) -> str:
    if not isinstance(text, str):
        raise InvalidRequestError(f"policy.check takes the text to check, not {type(text).__name__}")
    return text


class PolicyNamespace(_Namespace):
    """``client.policy``: the decisions the content policy would make, without making a call."""

    def check(self, text: str) -> PolicyDecision:
        """The decision on a prompt: categories, scores, the layer that decided and a reason."""
        return self._pipeline.policy.check(_policy_text(text))

    def check_image(self, image: object, *, people: list[str] | None = None) -> PolicyDecision:
        """The output checks on any image (a path, bytes, a genai.Image or a PIL image); ``people`` names the public
        figures a prompt asked for, which turns on the likeness check."""
        return self._pipeline.policy.check_image(image, people=people or ())


class AsyncPolicyNamespace(_Namespace):
    async def check(self, text: str) -> PolicyDecision:
        return await self._pipeline.policy.acheck(_policy_text(text))

    async def check_image(self, image: object, *, people: list[str] | None = None) -> PolicyDecision:
        import asyncio

        return await asyncio.to_thread(self._pipeline.policy.check_image, image, people=people or ())


def _build_pipeline(
    config: str | os.PathLike[str] | None,
    profile: str | None,
    overrides: dict[str, Any],
    clock: Callable[[], datetime] | None,
    providers_given: Mapping[str, Any] | None = None,
    on_call_end: Callable[[CallEvent], None] | None = None,
) -> Pipeline:
    ledger_given = overrides.get("ledger")
    ledger_is_object = ledger_given is not None and not isinstance(ledger_given, str)
    if ledger_given is not None and not isinstance(ledger_given, str):  # a ledger object, used as it is
        overrides = {**overrides, "ledger": None}
        for method in ("reserve", "commit", "release", "balance", "history", "record"):
            if not callable(getattr(ledger_given, method, None)):
                raise ConfigError(f"ledger={type(ledger_given).__name__}(...) is not a ledger: it has no {method}()")
    settings = resolve_settings(config, profile, **overrides)
    now = clock or utcnow
    providers = ProviderPool(settings)
    if providers_given is not None:
        if not isinstance(providers_given, Mapping) or not all(isinstance(k, str) for k in providers_given):
            raise ConfigError("providers= maps a provider name (the part before ':' in a model id) to a provider object")
        for name, provider in providers_given.items():
            providers.register(name, provider)
    retry = RetryPolicy(max_retries=settings.max_retries)
    policy_config = config_from_setting(settings.policy)
    moderator = None
    if settings.policy_moderator and policy_config.level != "off":
        from .policy._moderator import Moderator

        moderator = Moderator(
            settings.policy_moderator, providers, retry, outage=settings.policy_moderator_outage,
            thresholds=policy_config.moderator_thresholds, strict=policy_config.strict,
        )  # fmt: skip
    return Pipeline(
        settings=settings,
        catalog=default_catalog(),
        policy=Policy(policy_config, moderator),
        ledger=ledger_given if ledger_given is not None and not isinstance(ledger_given, str)
        else open_ledger(settings.ledger, now, settings.ledger_ttl()),
        providers=providers,
        retry=retry,
        plan=plan_named(settings.plan),
        clock=now,
        observer=Observer(on_call_end, settings.otel, settings.account) if on_call_end or settings.otel else None,
        jobs_url=None if ledger_is_object else settings.ledger or default_ledger_url(),
        limiter=rate_limiter(settings.rate_limits, None if ledger_is_object else settings.ledger or default_ledger_url(),
                             settings.ledger_ttl()),
    )


class _BaseClient:
    def __init__(
        self,
        config: str | os.PathLike[str] | None = None,
        profile: str | None = None,
        *,
        image: str | Sequence[str] | None = None,
        video: str | Sequence[str] | None = None,
        speech_to_text: str | Sequence[str] | None = None,
        text_to_speech: str | Sequence[str] | None = None,
        image_scoring: str | Sequence[str] | None = None,
        ledger: str | Ledger | None = None,
        account: str | None = None,
        policy: str | None = None,
        policy_moderator: str | None = None,
        policy_moderator_outage: str | None = None,
        max_retries: int | None = None,
        timeout: float | None = None,
        credits_per_usd: Decimal | int | float | str | None = None,
        local_usd_per_second: Decimal | int | float | str | None = None,
        reservation_ttl: float | None = None,
        plan: str | None = None,
        trusted_hosts: Sequence[str] | str | None = None,
        circuit_breaker_failures: int | None = None,
        circuit_breaker_cooldown: float | None = None,
        otel: bool | None = None,
        rate_limits: Mapping[str, Mapping[str, float]] | None = None,
        on_call_end: Callable[[CallEvent], None] | None = None,
        providers: Mapping[str, Provider] | None = None,
        clock: Callable[[], datetime] | None = None,
        **unknown: Never,  # a misspelt setting: flagged by type checkers, a ConfigError when run
    ) -> None:
        """Settings not given here come from ``config`` (a genai.toml, its ``profile``), then ``GENAI_*`` variables.
        ``ledger`` may be a URL or a ledger object; ``providers`` maps provider names to provider objects used in
        place of the built-in ones (``genai_sdk.testing.FakeProvider``, a custom backend)."""
        if unknown:
            from ._config import KEYS

            raise ConfigError(
                f"Client(): unknown setting(s) {', '.join(sorted(unknown))}; known settings: {', '.join(KEYS)}, "
                "and the objects providers=, clock= and on_call_end="
            )
        overrides = {
            "image": image,
            "video": video,
            "speech_to_text": speech_to_text,
            "text_to_speech": text_to_speech,
            "image_scoring": image_scoring,
            "ledger": ledger,
            "account": account,
            "policy": policy,
            "policy_moderator": policy_moderator,
            "policy_moderator_outage": policy_moderator_outage,
            "max_retries": max_retries,
            "timeout": timeout,
            "credits_per_usd": credits_per_usd,
            "local_usd_per_second": local_usd_per_second,
            "reservation_ttl": reservation_ttl,
            "plan": plan,
            "trusted_hosts": trusted_hosts,
            "circuit_breaker_failures": circuit_breaker_failures,
            "circuit_breaker_cooldown": circuit_breaker_cooldown,
            "otel": otel,
            "rate_limits": rate_limits,
        }
        if on_call_end is not None and not callable(on_call_end):
            raise ConfigError(f"on_call_end must be a function taking a genai.CallEvent, not {type(on_call_end).__name__}")
        self._pipeline = _build_pipeline(config, profile, overrides, clock, providers, on_call_end)
        self._namespaces()

    def _namespaces(self) -> None:
        raise NotImplementedError

    @property
    def settings(self) -> Settings:
        return self._pipeline.settings

    @property
    def catalog(self) -> Catalog:
        return self._pipeline.catalog

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._pipeline.retry

    def __repr__(self) -> str:
        from ._errors import redact

        s = self.settings
        return redact(f"{type(self).__name__}(image={s.image!r}, ledger={s.ledger!r}, account={s.account!r})")


class Client(_BaseClient):
    """The synchronous client. Thread-safe: share one across threads."""

    def _namespaces(self) -> None:
        self.images = Images(self._pipeline)
        self.videos = Videos(self._pipeline)
        self.speech = Speech(self._pipeline)
        self.credits = Credits(self._pipeline)
        self.policy = PolicyNamespace(self._pipeline)
        self.jobs = Jobs(self._pipeline)

    def close(self) -> None:
        self._pipeline.providers.close()
        self._pipeline.ledger.close()
        self._pipeline.close_side_tables()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncClient(_BaseClient):
    """The asyncio client: the same methods, awaitable."""

    def _namespaces(self) -> None:
        self.images = AsyncImages(self._pipeline)
        self.videos = AsyncVideos(self._pipeline)
        self.speech = AsyncSpeech(self._pipeline)
        self.credits = AsyncCredits(self._pipeline)
        self.policy = AsyncPolicyNamespace(self._pipeline)
        self.jobs = AsyncJobs(self._pipeline)

    async def aclose(self) -> None:
        import asyncio

        await self._pipeline.providers.aclose()
        self._pipeline.ledger.close()
        await asyncio.to_thread(self._pipeline.close_side_tables)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
