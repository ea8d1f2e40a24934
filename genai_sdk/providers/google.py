"""Google's Gemini API (generativelanguage.googleapis.com, an API key): Imagen for images, Veo for video.

Imagen answers at once (``models/{model}:predict``). Veo runs a long operation (``models/{model}:predictLongRunning``)
that the core follows to its end (``_flow.follow``); the video is then downloaded from the API with the key. The
Gemini API cannot cancel a video operation: one the caller gives up on runs on and is billed, so it is recorded as
spent. Both are written once, as flows, for sync and async callers.

Wire format: the Gemini API reference (ai.google.dev/api) and Google's cookbook; see docs/providers/google.md.
"""

from __future__ import annotations

import base64
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._catalog import ModelInfo
from .._config import Settings
from .._errors import (
    AuthenticationError,
    ConfigError,
    ContentPolicyError,
    GenAIError,
    GenerationFailedError,
    InvalidRequestError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitError,
    redact,
)
from .._flow import Abandoned, Fetch, Flow, Http, JsonApi, adrive, drive, follow, never_sent
from .._http import AddressGuard
from .._media import Video
from .._requests import ImageRequest, Request, VideoRequest
from .._retry import parse_retry_after
from ._options import Choice, Option, OptionSpec
from .base import CallContext, ImageBatch, VideoOutcome, backend_image, mark_spent, video_from_bytes

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
API_VERSION = "v1beta"
MAX_ANSWER_BYTES = 160 * 1024 * 1024  # four 2K pictures in base64, with room to spare
MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024
_FOLLOWED = 4096  # operations remembered per provider, so that a retried call follows its own instead of paying again

# Sizes the models make: (aspect ratio, Imagen's sampleImageSize or Veo's resolution).
IMAGE_SIZES = {
    "1024x1024": ("1:1", "1K"), "896x1280": ("3:4", "1K"), "1280x896": ("4:3", "1K"), "768x1408": ("9:16", "1K"),
    "1408x768": ("16:9", "1K"), "2048x2048": ("1:1", "2K"), "1792x2560": ("3:4", "2K"), "2560x1792": ("4:3", "2K"),
    "1536x2816": ("9:16", "2K"), "2816x1536": ("16:9", "2K"),
}  # fmt: skip
VIDEO_SIZES = {
    "1280x720": ("16:9", "720p"), "1920x1080": ("16:9", "1080p"),
    "720x1280": ("9:16", "720p"), "1080x1920": ("9:16", "1080p"),
}  # fmt: skip
_POLICY_WORDS = ("safety", "responsible ai", "usage guidelines", "sensitive", "blocked", "prohibited", "violat")

OPTIONS = OptionSpec(
    "google",
    Option("person_generation", Choice(("dont_allow", "allow_adult", "allow_all")),
           "whether people may be shown: allow_adult is the default for Imagen; Veo text-to-video takes allow_all, "
           "image-to-video allow_adult (some regions allow less)"),
    Option("output_mime_type", Choice(("image/png", "image/jpeg")), "the format of Imagen's pictures (default png)",
           frozenset({"images.generate"})),
)  # fmt: skip


class GoogleProvider:
    name = "google"

    def __init__(self, settings: Settings, environ: Mapping[str, str]) -> None:
        import httpx  # noqa: F401  (fail first, with the extra's name, when it is missing)

        # As google-genai: GOOGLE_API_KEY wins when both are set.
        self._variable = "GOOGLE_API_KEY" if environ.get("GOOGLE_API_KEY", "").strip() else "GEMINI_API_KEY"
        key = environ.get(self._variable, "").strip()
        if not key:
            raise ConfigError("google models need GEMINI_API_KEY (or GOOGLE_API_KEY): make one at aistudio.google.com/apikey")
        base = environ.get("GOOGLE_GEMINI_BASE_URL", DEFAULT_BASE_URL).strip().rstrip("/")
        self._key = key
        from .. import __version__

        self._io = JsonApi(
            provider="google", base_url=f"{base}/{API_VERSION}/",
            headers={"x-goog-api-key": key, "User-Agent": f"genai-sdk/{__version__}"},
            timeout=settings.timeout or 600.0, answer_cap=MAX_ANSWER_BYTES, download_cap=MAX_DOWNLOAD_BYTES,
            guard=AddressGuard.for_base_url(base, settings.trusted_hosts), error=self._error,
        )  # fmt: skip
        self._lock = threading.Lock()
        # idempotency key -> operation name, until the call has its video: a retried attempt (after a failed poll
        # or download) follows the same operation instead of paying for another.
        self._started: OrderedDict[str, str] = OrderedDict()

    def describe(self, model_name: str) -> ModelInfo | None:
        return None  # the catalog (google.json) lists every model this backend knows

    def check(self, model: ModelInfo, request: Request) -> list[str]:
        OPTIONS.for_request(request)
        warnings = []
        if isinstance(request, ImageRequest) and request.size not in (None, "auto") and request.size not in IMAGE_SIZES:
            raise InvalidRequestError(f"size={request.size!r} is not available for {model.id}: use one of {', '.join(model.sizes)}")
        if isinstance(request, VideoRequest) and request.size is not None and request.size not in VIDEO_SIZES:
            raise InvalidRequestError(f"size={request.size!r} is not available for {model.id}: use one of {', '.join(model.sizes)}")
        if isinstance(request, VideoRequest) and request.fps is not None and request.fps != 24:
            warnings.append(f"{model.id} makes 24 frames a second: fps={request.fps} was not applied")
        return warnings

    # -- images --------------------------------------------------------------------------------------------------

    def images(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> ImageBatch:
        return drive(self._images(model, request, n, ctx), self._io, ctx)

    async def aimages(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> ImageBatch:
        return await adrive(self._images(model, request, n, ctx), self._io, ctx)

    def _images(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> Flow[ImageBatch]:
        options = OPTIONS.for_request(request)
        aspect, resolution = IMAGE_SIZES[request.size or model.default_size or "1024x1024"]
        parameters: dict[str, Any] = {"sampleCount": n, "aspectRatio": aspect, "includeRaiReason": True}
        if resolution != "1K":
            parameters["sampleImageSize"] = resolution
        if "person_generation" in options:
            parameters["personGeneration"] = options.text("person_generation")
        if "output_mime_type" in options:
            parameters["outputOptions"] = {"mimeType": options.text("output_mime_type")}
        try:
            body = yield Http("POST", f"models/{model.name}:predict", ctx.timeout,
                              json={"instances": [{"prompt": request.prompt}], "parameters": parameters})  # fmt: skip
            return self._pictures(body, n)
        except ProviderError as error:
            # Sent, and answered with something unusable or not at all: the pictures were made and billed. Not
            # asked for again (they would be billed twice); recorded as spent.
            if error.status is not None and error.status >= 300 or never_sent(error):
                raise
            error.retryable = False
            mark_spent(error, f"{ctx.idempotency_key}#{ctx.attempt}", ImageBatch([], billed=n))
            raise
        except Abandoned as abandoned:  # the caller gave up with the request sent: it runs on and is billed
            mark_spent(abandoned, f"{ctx.idempotency_key}#{ctx.attempt}", ImageBatch([], billed=n))
            raise

    def _pictures(self, body: object, n: int) -> ImageBatch:
        predictions = body.get("predictions") if isinstance(body, dict) else None
        if predictions is None and isinstance(body, dict):
            predictions = []  # every picture withheld (the API leaves the list out)
        if not isinstance(predictions, list):
            raise ProviderError("Google answered with something other than a list of predictions", provider="google",
                                status=200)  # fmt: skip
        images, reasons = [], []
        for item in predictions:
            if isinstance(item, dict) and isinstance(item.get("bytesBase64Encoded"), str):
                try:
                    data = base64.b64decode(item["bytesBase64Encoded"], validate=True)
                except ValueError:
                    raise ProviderError("Google answered with a picture that is not base64", provider="google",
                                        status=200) from None  # fmt: skip
                try:
                    images.append(backend_image(data, "google"))
                except ProviderError as error:
                    error.status = 200
                    raise
            elif isinstance(item, dict) and item.get("raiFilteredReason"):
                reasons.append(redact(str(item["raiFilteredReason"]), (self._key,)))
        if not images:
            why = "; ".join(reasons) or "no reason given"
            raise ContentPolicyError(f"Google's safety filters withheld every picture: {why}", stage="output",
                                     source="provider", categories=["provider_filter"])  # fmt: skip
        warnings = []
        if len(images) < n:
            warnings.append(f"Google's safety filters withheld {n - len(images)} of {n} pictures: {'; '.join(reasons)}")
        return ImageBatch(images, warnings=warnings)

    # -- video -------------------------------------------------------------------------------------------------

    def video(self, model: ModelInfo, request: VideoRequest, ctx: CallContext) -> VideoOutcome:
        return drive(self._video(model, request, ctx), self._io, ctx)

    async def avideo(self, model: ModelInfo, request: VideoRequest, ctx: CallContext) -> VideoOutcome:
        return await adrive(self._video(model, request, ctx), self._io, ctx)

    def _video(self, model: ModelInfo, request: VideoRequest, ctx: CallContext) -> Flow[VideoOutcome]:
        options = OPTIONS.for_request(request)
        aspect, resolution = VIDEO_SIZES[request.size or model.default_size or "1280x720"]
        parameters: dict[str, Any] = {"aspectRatio": aspect, "resolution": resolution}
        if request.negative_prompt:
            parameters["negativePrompt"] = request.negative_prompt
        if request.seconds is not None and len(model.durations) > 1:  # Veo 3.0 makes 8 seconds, and takes no length
            parameters["durationSeconds"] = int(request.seconds)
        if "person_generation" in options:
            parameters["personGeneration"] = options.text("person_generation")
        instance: dict[str, Any] = {"prompt": request.prompt}
        if request.image is not None:
            instance["image"] = {"bytesBase64Encoded": base64.b64encode(request.image.data).decode(),
                                 "mimeType": request.image.media_type}  # fmt: skip
        seconds = float(request.seconds or (model.durations[0] if model.durations else 8))
        job = _Operation(self, model.name, {"instances": [instance], "parameters": parameters}, ctx, seconds)
        state = yield from follow(job, ctx)
        name = str(state.get("name"))
        try:
            answer = _video_answer(state, name, self._key)
        except GenAIError:  # it ended without a video: not billed, and a retry starts afresh
            self._forget(ctx.idempotency_key)
            raise
        try:
            data = yield from _video_bytes(answer, ctx)
            video = video_from_bytes(data, "google")
        except (GenAIError, Abandoned) as error:  # made and billed: a retry downloads it again, never makes another
            mark_spent(error, name, _lost(seconds, name))
            raise
        self._forget(ctx.idempotency_key)
        return VideoOutcome(video, request_id=name)

    def _forget(self, key: str) -> None:
        with self._lock:
            self._started.pop(key, None)

    def resume(self, model: ModelInfo, kind: str, handle: Mapping[str, Any], ctx: CallContext) -> VideoOutcome:
        """Follow a Veo operation a call started (its process gone) to its end, and download its video."""
        return drive(self._resumed(model, str(handle.get("operation") or ""), ctx), self._io, ctx)

    def _resumed(self, model: ModelInfo, name: str, ctx: CallContext) -> Flow[VideoOutcome]:
        if not name:
            raise InvalidRequestError("the job's record names no Google operation")
        state = yield from follow(_Resumed(self, model.name, {"name": name}, ctx, 0.0), ctx)
        video = video_from_bytes((yield from _video_bytes(_video_answer(state, name, self._key), ctx)), "google")
        return VideoOutcome(video, request_id=name)

    # -- errors ------------------------------------------------------------------------------------------------

    def _error(self, response: Any) -> GenAIError:
        status = response.status_code
        try:
            body = response.json()
        except (ValueError, RecursionError):
            body = {}
        if isinstance(body, list) and len(body) == 1:  # some front ends wrap the error in a list
            body = body[0]
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        details = error.get("details")
        error["details"] = [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []
        text = str(error.get("message") or response.text[:300] or f"HTTP {status}")
        detail = redact(text, (self._key,))
        message = " ".join(f"Google answered {status} {error.get('status') or ''}".split()) + f": {detail}"
        common: dict[str, Any] = {"provider": "google", "status": status}
        reasons = {str(d.get("reason")) for d in error["details"]}
        if status in (401, 403) or "API_KEY_INVALID" in reasons or "api key not valid" in text.lower():
            return AuthenticationError(f"{message}: check {self._variable}", **common)
        if status == 429:
            return RateLimitError(message, retryable=True, retry_after=_retry_delay(response, error, text), **common)
        if status >= 500 or status == 408:
            return ProviderUnavailableError(message, retryable=True, retry_after=parse_retry_after(response.headers),
                                            **common)  # fmt: skip
        if status == 404 and re.search(r"/(operations|files)/", str(response.request.url)):
            return ProviderError(message + ": the video operation or its file is gone",
                                 retryable=False, **common)  # fmt: skip
        if status == 404:
            return ConfigError(message + ": check the model name, and whether Google has retired the model")
        if status == 400 and any(word in text.lower() for word in _POLICY_WORDS):
            return ContentPolicyError(f"Google refused the prompt: {detail}", stage="prompt", source="provider",
                                      categories=["provider_filter"])  # fmt: skip
        if status in (400, 413):
            return InvalidRequestError(message)
        return ProviderError(message, retryable=False, **common)

    def close(self) -> None:
        self._io.close()

    async def aclose(self) -> None:
        await self._io.aclose()


@dataclass
class _Operation:
    """A Veo operation as a long job the core follows."""

    owner: GoogleProvider
    model_name: str
    body: dict[str, Any]
    ctx: CallContext
    seconds: float  # the video's length, for what a lost operation costs
    provider: str = "google"
    first_pause: float = 1.0
    max_pause: float = 10.0  # Google's own samples poll every 10 seconds
    cancellable: bool = False  # the Gemini API binds no cancel to model operations

    def label(self, state: dict[str, Any]) -> str:
        return f"operation {state.get('name')}"

    def request_id(self, state: dict[str, Any]) -> str | None:
        return str(state.get("name"))

    def start(self) -> Flow[dict[str, Any]]:
        key = self.ctx.idempotency_key
        with self.owner._lock:
            name = self.owner._started.get(key)
        if name is not None:  # an earlier attempt started it: follow it at once
            self.first_pause = 0.0
            return {"name": name}
        try:
            answer = yield Http("POST", f"models/{self.model_name}:predictLongRunning", self.ctx.timeout, json=self.body)
            state = _operation(answer)
        except ProviderError as error:
            # Lost or unreadable, or a gateway's 502/504 (Google may have started it behind the gateway): it may
            # exist. A request that never left (no connection), a refusal, Google's own 500 or 503: nothing started.
            if never_sent(error) or (error.status is not None and error.status >= 300 and error.status not in (502, 504)):
                raise
            raise self._maybe_made(error) from error
        except Abandoned as abandoned:  # the caller gave up with the start sent: it may run, and be billed
            mark_spent(abandoned, f"{key}?", _lost(self.seconds, None))
            raise
        with self.owner._lock:
            self.owner._started[key] = str(state["name"])
            while len(self.owner._started) > _FOLLOWED:
                self.owner._started.popitem(last=False)
        return state

    def _maybe_made(self, error: ProviderError) -> ProviderError:
        """A create whose answer was lost may have started an operation that will be billed: not made again."""
        error.retryable = False
        error.message = str(error) + "; the video may have been started, so it was not started again"
        error.args = (error.message,)
        mark_spent(error, f"{self.ctx.idempotency_key}?", _lost(self.seconds, None))
        return error

    def finished(self, state: dict[str, Any]) -> bool:
        return bool(state.get("done"))

    def handle(self, state: dict[str, Any]) -> dict[str, Any]:
        """What finds the operation again from another process (``client.jobs.resume``)."""
        return {"operation": str(state.get("name"))}

    def poll(self, state: dict[str, Any]) -> Flow[dict[str, Any]]:
        return _operation((yield Http("GET", str(state["name"]), self.ctx.timeout)))

    def progress(self, state: dict[str, Any]) -> tuple[float, float, str] | None:
        return None  # operations report no progress

    def cancel(self, state: dict[str, Any]) -> Flow[dict[str, Any] | None]:
        """It cannot be canceled: one last look says whether it ended without a video (then it is not billed)."""
        try:
            return _operation((yield Http("GET", str(state["name"]), 10.0, unbounded=True)))
        except GenAIError:
            return None

    def given_up(self, state: dict[str, Any], final: dict[str, Any] | None, error: BaseException) -> None:
        """It runs on, and is billed, unless it ended without a video. After polls that kept failing (a retryable
        error), the pipeline's retry follows the same operation: it is remembered, and its delivery clears the
        spent mark."""
        if not (isinstance(error, ProviderError) and error.retryable):
            self.owner._forget(self.ctx.idempotency_key)
        failed = final is not None and final.get("done") and not _samples(final)
        if not failed:
            name = str(state["name"])
            mark_spent(error, name, _lost(self.seconds, name))


class _Resumed(_Operation):
    """An operation started by a call whose process is gone (its name in ``body``): followed from its state now."""

    def start(self) -> Flow[dict[str, Any]]:
        return (yield from self.poll(self.body))

    def cancel(self, state: dict[str, Any]) -> Flow[dict[str, Any] | None]:
        """A resume that gives up leaves the operation to run on: it can be resumed again."""
        return None
        yield  # a flow, that never sends anything

    def given_up(self, state: dict[str, Any], final: dict[str, Any] | None, error: BaseException) -> None:
        pass  # the job's record says what became of it


def _operation(body: object) -> dict[str, Any]:
    if isinstance(body, dict) and isinstance(body.get("name"), str) and body["name"]:
        return body
    raise ProviderError("Google answered with something other than an operation (it has no name)", provider="google")


def _samples(state: Mapping[str, Any]) -> list[Any]:
    response = state.get("response")
    answer = response.get("generateVideoResponse") if isinstance(response, dict) else None
    samples = answer.get("generatedSamples") if isinstance(answer, dict) else None
    return samples if isinstance(samples, list) else []


def _video_answer(state: Mapping[str, Any], name: str, key: str) -> dict[str, Any]:
    """The finished operation's video (a URI or inline bytes), or the SDK's error for how it ended."""
    error = state.get("error")
    if isinstance(error, dict):
        message = redact(str(error.get("message") or "no message"), (key,))
        if any(word in message.lower() for word in _POLICY_WORDS):
            raise ContentPolicyError(f"Google refused the video: {message} ({name})", stage="output",
                                     source="provider", categories=["provider_filter"], request_id=name)  # fmt: skip
        raise GenerationFailedError(f"the video failed: {message} ({name})", provider="google", request_id=name,
                                    code=str(error.get("code")) if error.get("code") is not None else None)  # fmt: skip
    samples = _samples(state)
    video = samples[0].get("video") if samples and isinstance(samples[0], dict) else None
    if isinstance(video, dict) and (isinstance(video.get("uri"), str) or isinstance(video.get("encodedVideo"), str)):
        return video
    response = state.get("response")
    answer = response.get("generateVideoResponse") if isinstance(response, dict) else None
    reasons = answer.get("raiMediaFilteredReasons") if isinstance(answer, dict) else None
    if isinstance(answer, dict) and (answer.get("raiMediaFilteredCount") or reasons):
        why = "; ".join(str(r) for r in reasons) if isinstance(reasons, list) else "no reason given"
        raise ContentPolicyError(f"Google's safety filters withheld the video: {redact(why, (key,))} ({name})",
                                 stage="output", source="provider", categories=["provider_filter"],
                                 request_id=name)  # fmt: skip
    raise GenerationFailedError(f"the operation finished without a video ({name})", provider="google", request_id=name)


def _video_bytes(video: Mapping[str, Any], ctx: CallContext) -> Flow[bytes]:
    if isinstance(video.get("encodedVideo"), str):
        try:
            return base64.b64decode(video["encodedVideo"], validate=True)
        except ValueError:
            raise ProviderError("Google answered with a video that is not base64", provider="google") from None
    data: bytes = yield Fetch(str(video["uri"]), ctx.timeout or 300.0, authorized=True)
    return data


def _lost(seconds: float, name: str | None) -> VideoOutcome:
    """What a billed video the caller will not get costs: its length."""
    return VideoOutcome(Video(b"", "video/mp4", duration=seconds), request_id=name)


def _retry_delay(response: Any, error: Mapping[str, Any], text: str) -> float | None:
    """How long a 429 asks to wait: Retry-After, RetryInfo's retryDelay ("59s"), or "Please retry in 47.1s"."""
    after = parse_retry_after(response.headers)
    if after is not None:
        return after
    for detail in error.get("details") or ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        match = re.fullmatch(r"(\d+(?:\.\d+)?)s", str(delay or ""))
        if match:
            return float(match.group(1))
    match = re.search(r"retry in (\d+(?:\.\d+)?)(ms|s)\b", text)
    if match is None:
        return None
    return float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)


__all__ = ["GoogleProvider", "OPTIONS"]
