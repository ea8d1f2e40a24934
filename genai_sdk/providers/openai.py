"""OpenAI images and audio on the official ``openai`` package, with its own retries turned off (the pipeline retries).

Each operation is written once, as a flow (``genai_sdk._flow``) of calls of the package's client and downloads,
which the core runs on ``openai.OpenAI`` for sync callers and on ``openai.AsyncOpenAI`` for async ones."""

from __future__ import annotations

import base64
import io
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import openai
from openai.types import ImagesResponse

from .._catalog import ModelInfo
from .._config import Settings
from .._errors import (
    AuthenticationError,
    ConfigError,
    ContentPolicyError,
    GenAIError,
    InvalidRequestError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitError,
    redact,
)
from .._flow import Abandoned, Call, Fetch, Flow, Http, adrive, drive
from .._http import AddressGuard, afetch, fetch, transport
from .._media import Audio, Image
from .._requests import ImageRequest, Request, Segment, SynthesizeRequest, TranscribeRequest, Word
from .._retry import parse_retry_after
from ._options import Choice, Float, Int, Option, OptionSpec, Str
from .base import (
    AudioPart,
    CallContext,
    ImageBatch,
    SpeechPart,
    TranscriptPart,
    backend_image,
    mark_spent,
)

if TYPE_CHECKING:
    import httpx2

MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024
# The largest API answer read: ten 1536x1024 PNGs in base64 are about 60 MB; speech and transcripts are far smaller.
MAX_ANSWER_BYTES = 160 * 1024 * 1024
_CLIENTS_LOCK = threading.Lock()
DALLE2_MAX_UPLOAD = 4 * 1024 * 1024
_POLICY_CODES = {"content_policy_violation", "moderation_blocked"}
_SAFETY_VIOLATIONS = re.compile(r"safety_violations=\[([^\]]*)\]")
log = logging.getLogger("genai_sdk")
OPENAI_PCM_RATE = 24000  # response_format="pcm" is 24 kHz 16-bit little-endian mono
_UPLOAD_NAMES = {
    "audio/wav": "audio.wav", "audio/x-wav": "audio.wav", "audio/mpeg": "audio.mp3", "audio/flac": "audio.flac",
    "audio/ogg": "audio.ogg", "audio/opus": "audio.ogg", "audio/mp4": "audio.m4a", "audio/webm": "audio.webm",
    "video/mp4": "audio.mp4", "video/webm": "audio.webm",
}
_FORMAT_TYPES = {"mp3": "audio/mpeg", "opus": "audio/opus", "aac": "audio/aac", "flac": "audio/flac", "wav": "audio/wav", "pcm": "audio/pcm"}
# whisper-1 names the language in words (verbose_json's "language": "german"); the SDK speaks ISO 639-1 everywhere.
# Whisper's own table of the languages it knows.
_LANGUAGE_CODES = {
    "english": "en", "chinese": "zh", "german": "de", "spanish": "es", "russian": "ru", "korean": "ko", "french": "fr",
    "japanese": "ja", "portuguese": "pt", "turkish": "tr", "polish": "pl", "catalan": "ca", "dutch": "nl",
    "arabic": "ar", "swedish": "sv", "italian": "it", "indonesian": "id", "hindi": "hi", "finnish": "fi",
    "vietnamese": "vi", "hebrew": "he", "ukrainian": "uk", "greek": "el", "malay": "ms", "czech": "cs",
    "romanian": "ro", "danish": "da", "hungarian": "hu", "tamil": "ta", "norwegian": "no", "thai": "th", "urdu": "ur",
    "croatian": "hr", "bulgarian": "bg", "lithuanian": "lt", "latin": "la", "maori": "mi", "malayalam": "ml",
    "welsh": "cy", "slovak": "sk", "telugu": "te", "persian": "fa", "latvian": "lv", "bengali": "bn", "serbian": "sr",
    "azerbaijani": "az", "slovenian": "sl", "kannada": "kn", "estonian": "et", "macedonian": "mk", "breton": "br",
    "basque": "eu", "icelandic": "is", "armenian": "hy", "nepali": "ne", "mongolian": "mn", "bosnian": "bs",
    "kazakh": "kk", "albanian": "sq", "swahili": "sw", "galician": "gl", "marathi": "mr", "punjabi": "pa",
    "sinhala": "si", "khmer": "km", "shona": "sn", "yoruba": "yo", "somali": "so", "afrikaans": "af",
    "occitan": "oc", "georgian": "ka", "belarusian": "be", "tajik": "tg", "sindhi": "sd", "gujarati": "gu",
    "amharic": "am", "yiddish": "yi", "lao": "lo", "uzbek": "uz", "faroese": "fo", "haitian creole": "ht",
    "pashto": "ps", "turkmen": "tk", "nynorsk": "nn", "maltese": "mt", "sanskrit": "sa", "luxembourgish": "lb",
    "myanmar": "my", "tibetan": "bo", "tagalog": "tl", "malagasy": "mg", "assamese": "as", "tatar": "tt",
    "hawaiian": "haw", "lingala": "ln", "hausa": "ha", "bashkir": "ba", "javanese": "jw", "sundanese": "su",
    "cantonese": "yue",
}
_GENERATE, _EDIT, _VARIATIONS = "images.generate", "images.edit", "images.variations"
# What the API takes beside the SDK's own settings, per operation, as its published specification declares it
# (CreateImageRequest, CreateImageEditRequest, CreateImageVariationRequest, CreateTranscriptionRequest,
# CreateTranslationRequest, CreateSpeechRequest). Each is sent as given.
OPTIONS = OptionSpec(
    "openai",
    Option("background", Choice(("transparent", "opaque", "auto")),
           "background of the images, gpt-image models; transparent needs output_format png or webp (default auto)",
           frozenset({_GENERATE, _EDIT})),
    Option("moderation", Choice(("low", "auto")), "content-moderation level of gpt-image models (default auto)",
           frozenset({_GENERATE})),
    Option("output_format", Choice(("png", "jpeg", "webp")), "image format of gpt-image models (default png)",
           frozenset({_GENERATE, _EDIT})),
    Option("output_compression", Int(0, 100), "compression in percent for jpeg and webp, gpt-image models (default 100)",
           frozenset({_GENERATE, _EDIT})),
    Option("partial_images", Int(0, 3), "gpt-image models: up to 3 pictures of the generation in progress, each handed "
           "to on_progress as Progress.preview (the answer is streamed)", frozenset({_GENERATE, _EDIT})),
    Option("input_fidelity", Choice(("high", "low")), "how closely an edit keeps the input images' features, faces "
           "especially (gpt-image-1 and later, not gpt-image-1-mini; default low)", frozenset({_EDIT})),
    Option("response_format", Choice(("url", "b64_json")), "how dall-e models answer: url results are downloaded at "
           "once (default b64_json; gpt-image models always answer b64_json)", frozenset({_GENERATE, _EDIT, _VARIATIONS})),
    Option("user", Str(), "an identifier of your end user, which helps OpenAI detect abuse",
           frozenset({_GENERATE, _EDIT, _VARIATIONS})),
    Option("temperature", Float(0.0, 1.0), "sampling temperature; 0 (default) raises it as needed on failed decodes",
           frozenset({"speech.transcribe", "speech.translate"})),
    Option("instructions", Str(max_length=4096), "how the voice should speak (gpt-4o-mini-tts; not tts-1 or tts-1-hd)",
           frozenset({"speech.synthesize"})),
)


def _refusal_details(body: Mapping[str, Any], message: str) -> tuple[str, list[str]]:
    """Stage and categories of a safety refusal: gpt-image models send ``moderation_details``
    (``moderation_stage`` input or output, coarse ``categories``); older answers name ``safety_violations=[...]``
    in the message. An output-stage refusal means the picture was made and withheld."""
    details = body.get("moderation_details")
    details = details if isinstance(details, Mapping) else {}
    stage = "output" if str(details.get("moderation_stage") or "").lower() == "output" else "prompt"
    raw = details.get("categories")
    categories = [str(c) for c in raw if isinstance(c, str)] if isinstance(raw, list) else []
    if not categories:
        found = _SAFETY_VIOLATIONS.search(message)
        if found:
            categories = [c.strip(" '\"") for c in found.group(1).split(",") if c.strip(" '\"")]
    return stage, categories


def map_error(exc: BaseException, secrets: tuple[str, ...] = ()) -> GenAIError:
    """The SDK's error for an exception raised by the openai package."""
    if isinstance(exc.__cause__, GenAIError):  # the SDK's own transport refused the answer (its size, an address)
        return exc.__cause__
    if isinstance(exc, openai.APITimeoutError):
        return ProviderUnavailableError("OpenAI did not answer in time", provider="openai", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        return ProviderUnavailableError(f"could not reach OpenAI: {exc}", provider="openai", retryable=True)
    if not isinstance(exc, openai.APIStatusError):
        return ProviderError(redact(f"OpenAI call failed: {exc}", secrets), provider="openai")

    status = exc.status_code
    body = exc.body if isinstance(exc.body, Mapping) else {}
    code = str(body.get("code") or "") or None
    kind = str(body.get("type") or "") or None
    detail = redact(str(body.get("message") or exc.message), secrets)
    request_id = exc.request_id
    headers = exc.response.headers
    message = f"OpenAI answered {status}: {detail}" + (f" (request id {request_id})" if request_id else "")
    common: dict[str, Any] = {"provider": "openai", "status": status, "request_id": request_id, "code": code or kind}

    if status == 400 and (code in _POLICY_CODES or kind in _POLICY_CODES):
        stage, categories = _refusal_details(body, detail)
        return ContentPolicyError(
            message, stage=stage, source="provider", categories=categories or [code or kind or "unknown"],
            request_id=request_id,
        )  # fmt: skip
    if status in (401, 403):
        return AuthenticationError(message + ": check OPENAI_API_KEY", **common)
    should = headers.get("x-should-retry")
    forced = None if should is None else should.lower() == "true"
    if status == 429:
        quota = "insufficient_quota" in (code, kind)
        retryable = False if quota else (True if forced is None else forced)
        return RateLimitError(message, retryable=retryable, retry_after=parse_retry_after(headers), **common)
    if status >= 500 or status == 408:
        retryable = True if forced is None else forced
        return ProviderUnavailableError(message, retryable=retryable, retry_after=parse_retry_after(headers), **common)
    if status == 409:
        return ProviderError(message, retryable=True if forced is None else forced, retry_after=parse_retry_after(headers), **common)
    return ProviderError(message, retryable=bool(forced), **common)


def _raise(error: BaseException, exc: BaseException) -> NoReturn:
    """Raise the SDK's error for ``exc`` with ``exc`` as its cause (a TLS or proxy failure stays visible), unless it
    is ``exc`` itself or already ``exc``'s own cause (the SDK's transport refused the answer): no cycle."""
    if error is exc:
        raise error
    if error is exc.__cause__:
        raise error from None
    raise error from exc


def _current(method: Any) -> Any:
    """The method without the ``openai`` package's ``@deprecated`` wrapper. dall-e-2 variations and translations are
    still served and part of the SDK's contract (the catalog says when a model retires); the package's warning
    at every call would reach the SDK's users as noise about code they did not write."""
    function = getattr(method, "__func__", None)
    wrapped = getattr(function, "__wrapped__", None)
    return wrapped.__get__(method.__self__) if wrapped is not None else method


def _malformed(what: str, work: str = "the images") -> ProviderError:
    """A 200 that is not what the API documents: a proxy's page, a truncated body. Not retried: a 200 means the work
    was done and billed, and a retry would pay for it again."""
    return ProviderError(
        f"OpenAI answered 200, but {what}; {work} may have been made (and billed), so the request was not sent again",
        provider="openai", retryable=False,
    )  # fmt: skip


def _blend_prompt(request: ImageRequest) -> str:
    """What a blend asks of an image model that takes several images and an instruction: the shares in words."""
    text = "Combine the input images into one coherent picture"
    if len({round(w, 3) for w in request.weights}) > 1:
        shares = ", ".join(f"image {i + 1} about {round(w * 100)}%" for i, w in enumerate(request.weights))
        text += f", taking from each in these shares: {shares}"
    return f"{text}." + (f" {request.prompt}" if request.prompt else "")


def _previewer(ctx: CallContext, n: int) -> Callable[[int, bytes], None]:
    """Partial pictures to the caller's ``on_progress``. One that cannot be read is skipped (a preview is only that);
    a callback that raises stops the call, whose pictures were being made and are billed: spent."""

    def show(index: int, data: bytes) -> None:
        if ctx.preview is None:
            return
        try:
            picture = backend_image(data, "openai", "a partial image")
        except GenAIError as exc:
            log.warning("a partial image from OpenAI was skipped: %s", exc)
            return
        try:
            ctx.preview(index, picture)
        except BaseException as stop:  # the caller's own exception, passed through as it is: marked spent
            mark_spent(stop, f"{ctx.idempotency_key}#{ctx.attempt}", ImageBatch([], billed=n))
            raise

    return show


def _streamed(step: Call) -> tuple[dict[str, Any], Callable[[int, bytes], None] | None]:
    """A call's keyword arguments, and the receiver of its partial images when it asks for them (``partial_images``
    streams the answer: events, the last of them the finished pictures)."""
    kwargs = dict(step.kwargs)
    preview = kwargs.pop("preview", None)
    body = kwargs.get("body") if step.path == "post" else kwargs
    if not (isinstance(body, dict) and body.get("partial_images")):
        return kwargs, None
    body["stream"] = True
    if step.path == "post":
        from openai.types import ImageGenStreamEvent

        kwargs["stream"], kwargs["stream_cls"] = True, openai.Stream[ImageGenStreamEvent]
    return kwargs, preview or (lambda index, data: None)


def _collected(events: Iterable[Any], preview: Callable[[int, bytes], None]) -> Any:
    """The finished pictures of a streamed answer, as its plain answer would hold them; each partial picture handed
    to ``preview`` as it arrives."""
    done = []
    for event in events:
        kind = getattr(event, "type", "")
        if kind.endswith(".partial_image"):
            try:
                data = base64.b64decode(event.b64_json, validate=True)
            except ValueError as exc:
                raise ProviderError(f"OpenAI sent a partial image that is not base64: {exc}", provider="openai") from exc
            preview(int(getattr(event, "partial_image_index", 0)), data)
        elif kind.endswith(".completed"):
            done.append(event)
    if not done:
        raise _malformed("its streamed answer ended without the finished picture")
    from openai.types import Image as ImageItem

    last = done[-1]
    return ImagesResponse.model_construct(
        created=int(getattr(last, "created_at", 0) or 0), data=[ImageItem.model_construct(b64_json=e.b64_json) for e in done],
        quality=getattr(last, "quality", None), size=getattr(last, "size", None), usage=getattr(last, "usage", None),
    )  # fmt: skip


class _Library:
    """The I/O of OpenAI's flows: calls of the ``openai`` package's clients, and result files fetched by
    ``_http.fetch`` from public addresses under a size cap (on httpx2, the HTTP stack the package brings)."""

    def __init__(self, provider: OpenAIProvider) -> None:
        self._provider = provider

    @staticmethod
    def _method(client: Any, step: Call) -> Any:
        method = client
        for name in step.path.split("."):
            method = getattr(method, name)
        return _current(method) if step.undeprecated else method

    def call(self, step: Call) -> Any:
        kwargs, preview = _streamed(step)
        answer = self._method(self._provider.client, step)(**kwargs)
        if preview is None:
            return answer
        with answer as events:
            return _collected(events, preview)

    async def acall(self, step: Call) -> Any:
        kwargs, preview = _streamed(step)
        answer = await self._method(self._provider.aclient, step)(**kwargs)
        if preview is None:
            return answer
        async with answer as events:
            return _collected([event async for event in events], preview)

    def _downloads(self, asynchronous: bool) -> Any:
        """The httpx2 client for result files, made on first use (one blocking, one async), under the size cap and
        the address guard."""
        import httpx2

        provider, name = self._provider, "_adownloader" if asynchronous else "_downloader"
        if getattr(provider, name) is None:
            with _CLIENTS_LOCK:
                if getattr(provider, name) is None:
                    made = transport(httpx2, asynchronous=asynchronous, limit=MAX_DOWNLOAD_BYTES, provider="openai",
                                     guard=provider._guard)  # fmt: skip
                    setattr(provider, name, (httpx2.AsyncClient if asynchronous else httpx2.Client)(transport=made))
        return getattr(provider, name)

    def download(self, step: Fetch) -> bytes:
        import httpx2

        client, guard = self._downloads(False), self._provider._guard
        return fetch(httpx2, client, step.url, guard, provider="openai", timeout=step.timeout)

    async def adownload(self, step: Fetch) -> bytes:
        import httpx2

        client, guard = self._downloads(True), self._provider._guard
        return await afetch(httpx2, client, step.url, guard, provider="openai", timeout=step.timeout)

    def send(self, step: Http) -> Any:
        raise TypeError("OpenAI's calls go through the openai package")

    async def asend(self, step: Http) -> Any:
        raise TypeError("OpenAI's calls go through the openai package")


def _image_items(response: object) -> list[Any]:
    """The ``data`` items of an images answer, checked: the client hands back whatever the body parsed to."""
    data = getattr(response, "data", None) if isinstance(response, ImagesResponse) else None
    if not isinstance(response, ImagesResponse):
        kind = "an HTML page" if isinstance(response, str) and "<html" in response.lower() else type(response).__name__
        raise _malformed(f"its answer is {kind}, not an images response")
    if data is None:
        return []
    if not isinstance(data, list):
        raise _malformed(f"its data is {type(data).__name__}, not a list of images")
    for item in data:
        b64, url = getattr(item, "b64_json", None), getattr(item, "url", None)
        if isinstance(item, dict | list | str | int | float) or not (isinstance(b64, str | None) and isinstance(url, str | None)):
            raise _malformed("an item of its data is not an image object (b64_json or url as strings)")
    return data


def _sent_unanswered(exc: BaseException) -> bool:
    """Whether a request was sent in full and its answer never came (a connection dropped, or the deadline passed,
    while waiting for it): only then may OpenAI have done, and billed, the work."""
    import httpx2

    if not isinstance(exc, openai.APIConnectionError):  # APITimeoutError is one too
        return False
    cause = exc.__cause__
    return isinstance(cause, httpx2.RemoteProtocolError | httpx2.ReadError | httpx2.ReadTimeout)


def _with_call_options(args: dict[str, Any], request: Request, ctx: CallContext) -> dict[str, Any]:
    """Add what every call carries: the user's provider options, the idempotency key, this attempt's timeout."""
    args.update(OPTIONS.for_request(request))
    args["extra_headers"] = {"Idempotency-Key": ctx.idempotency_key}
    if ctx.timeout is not None:
        args["timeout"] = ctx.timeout
    return args


def _png(image: Image, mode: str | None = None) -> bytes:
    if image.media_type == "image/png" and mode is None:
        return image.data
    picture = image.to_pil()
    if mode is not None and picture.mode != mode:
        picture = picture.convert(mode)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _file(name: str, data: bytes, media_type: str = "image/png") -> tuple[str, bytes, str]:
    return (name, data, media_type)


class OpenAIProvider:
    name = "openai"

    def __init__(self, settings: Settings, environ: Mapping[str, str]) -> None:
        key = environ.get("OPENAI_API_KEY")
        if not key:
            raise ConfigError("OpenAI models need an API key: set OPENAI_API_KEY")
        self._key = key
        self._base_url = environ.get("OPENAI_BASE_URL") or None
        self._guard = AddressGuard.for_base_url(self._base_url or "https://api.openai.com/v1", settings.trusted_hosts)
        self._sync: openai.OpenAI | None = None
        self._async: openai.AsyncOpenAI | None = None
        self._downloader: httpx2.Client | None = None
        self._adownloader: httpx2.AsyncClient | None = None
        self._io = _Library(self)

    def __repr__(self) -> str:
        return f"OpenAIProvider(base_url={self._base_url!r})"

    # Clients are made on first use, once, under a lock: threads making their first calls at the same moment must
    # neither make two nor import the HTTP stack's modules side by side.

    @property
    def client(self) -> openai.OpenAI:
        if self._sync is None:
            with _CLIENTS_LOCK:
                if self._sync is None:
                    self._sync = self._make_client(asynchronous=False)
        return self._sync

    @property
    def aclient(self) -> openai.AsyncOpenAI:
        if self._async is None:
            with _CLIENTS_LOCK:
                if self._async is None:
                    self._async = self._make_client(asynchronous=True)
        return self._async

    def prepare(self, *, asynchronous: bool) -> None:
        """Make the client now (and load the openai modules it loads on first use), before a rate-limit slot."""
        client = self.aclient if asynchronous else self.client
        client.images, client.audio  # noqa: B018 - properties that import their modules

    def _make_client(self, *, asynchronous: bool) -> Any:
        """The openai client on the SDK's transport (the call's deadline on every read, answers under a cap), with
        its own retries off: the pipeline retries."""
        import httpx2

        made = transport(httpx2, asynchronous=asynchronous, limit=MAX_ANSWER_BYTES, provider="openai",
                         limits=openai.DEFAULT_CONNECTION_LIMITS)  # fmt: skip
        if asynchronous:
            return openai.AsyncOpenAI(api_key=self._key, base_url=self._base_url, max_retries=0,
                                      http_client=openai.DefaultAsyncHttpxClient(transport=made))  # fmt: skip
        return openai.OpenAI(api_key=self._key, base_url=self._base_url, max_retries=0,
                             http_client=openai.DefaultHttpxClient(transport=made))  # fmt: skip

    def describe(self, model_name: str) -> ModelInfo | None:
        return None

    def check(self, model: ModelInfo, request: Request) -> list[str]:
        OPTIONS.for_request(request)
        if not isinstance(request, ImageRequest):
            return []
        if request.operation == "blend" and len({round(w, 3) for w in request.weights}) > 1:
            shares = ", ".join(f"{round(w * 100)}%" for w in request.weights)
            return [f"{model.id} blends as its instruction says: the weights ({shares}) were put in words in the "
                    "prompt, not applied exactly"]  # fmt: skip
        if model.name == "dall-e-2" and request.operation in ("edit", "variations"):
            for image in request.images:
                if image.width != image.height:
                    raise InvalidRequestError(
                        f"dall-e-2 edits and variations need a square image; this one is {image.width}x{image.height}"
                    )
                if len(_png(image, "RGBA")) > DALLE2_MAX_UPLOAD:
                    raise InvalidRequestError("dall-e-2 accepts input images under 4 MB as PNG")
        if request.mask is not None and request.images:
            first = request.images[0]
            if request.mask.size != first.size:
                raise InvalidRequestError(
                    f"the mask is {request.mask.width}x{request.mask.height} but the image is {first.width}x{first.height}: "
                    "they must match"
                )
        return []

    # -- building the call ---------------------------------------------------------------------------------

    def _arguments(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> dict[str, Any]:
        args: dict[str, Any] = {"model": model.name, "n": n}
        if request.operation == "blend":
            args["prompt"] = _blend_prompt(request)
        elif request.operation != "variations":
            args["prompt"] = request.prompt
        if request.size is not None:
            args["size"] = request.size
        if request.quality not in (None, model.default_quality) and request.operation != "variations":
            args["quality"] = request.quality  # the model's default goes unsaid: the API applies it anyway
        if request.style is not None and model.styles:
            args["style"] = request.style
        if model.name.startswith("dall-e"):
            args["response_format"] = "b64_json"  # no second round trip to fetch a URL
        if request.operation in ("edit", "blend"):  # a blend is an edit of several images, as the prompt says
            rgba = model.name == "dall-e-2"
            files = [_file(f"image{i}.png", _png(img, "RGBA" if rgba else None)) for i, img in enumerate(request.images)]
            args["image"] = files[0] if len(files) == 1 else files
            if request.mask is not None:
                args["mask"] = _file("mask.png", _png(request.mask, "RGBA"))
        elif request.operation == "variations":
            args["image"] = _file("image.png", _png(request.images[0], "RGBA"))
        return _with_call_options(args, request, ctx)

    def _batch(self, response: Any, images: list[Image]) -> ImageBatch:
        return ImageBatch(
            images,
            request_id=getattr(response, "_request_id", None),
            quality=getattr(response, "quality", None),
            size=getattr(response, "size", None),
        )

    @staticmethod
    def _decode(item: Any) -> Image | None:
        if getattr(item, "b64_json", None):
            try:
                data = base64.b64decode(item.b64_json, validate=True)
            except ValueError as exc:
                raise ProviderError(f"OpenAI returned an image that is not base64: {exc}", provider="openai") from exc
            return backend_image(data, "openai")
        return None

    @staticmethod
    def _post_options(args: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        """The JSON body and the request options of a generate call.

        Generation goes through the client's documented ``post`` rather than ``images.generate``: the catalog has
        validated every field already, and the resource method's per-call type transformation of the parameters
        costs more than the rest of the SDK's pipeline."""
        body = dict(args)
        options: dict[str, Any] = {"headers": body.pop("extra_headers")}
        if "timeout" in body:
            options["timeout"] = body.pop("timeout")
        return body, options

    def images(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> ImageBatch:
        return drive(self._images(model, request, n, ctx), self._io, ctx)

    async def aimages(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> ImageBatch:
        return await adrive(self._images(model, request, n, ctx), self._io, ctx)

    def _images(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> Flow[ImageBatch]:
        args = self._arguments(model, request, n, ctx)
        answered = False
        try:
            preview = _previewer(ctx, n) if args.get("partial_images") else None
            if request.operation == "generate":
                body, options = self._post_options(args)
                response = yield Call("post", {"path": "/images/generations", "body": body, "cast_to": ImagesResponse,
                                               "options": options, "stream": False, "preview": preview})  # fmt: skip
            elif request.operation in ("edit", "blend"):
                response = yield Call("images.edit", {**args, "preview": preview})
            else:
                response = yield Call("images.create_variation", args, undeprecated=True)
            answered = True
            images = []
            for item in _image_items(response):
                image = self._decode(item)
                if image is None:
                    if not item.url:
                        raise ProviderError("OpenAI returned an image with neither data nor URL", provider="openai")
                    data: bytes = yield Fetch(item.url, ctx.timeout or 60.0)
                    image = backend_image(data, "openai", f"the image at {item.url}")
                images.append(image)
        except Abandoned as abandoned:  # the caller gave up: once OpenAI has answered, the images were billed
            if answered:
                mark_spent(abandoned, f"{ctx.idempotency_key}#{ctx.attempt}", ImageBatch([], billed=n))
            raise
        except Exception as exc:  # the package's error, or an unusable answer
            _raise(self._failure(exc, n, ctx), exc)
        return self._batch(response, images)

    def _failure(self, exc: BaseException, n: int, ctx: CallContext) -> BaseException:
        """The SDK's error for a failed images call. Once OpenAI has answered 200, the images were made and billed:
        if they cannot be delivered (an answer that is not what the API documents, an image that does not decode,
        a result URL that does not download), the error says the work was spent, and it is not retried, because a
        retry would pay for the images again."""
        if isinstance(exc, openai.OpenAIError):
            error = map_error(exc, (self._key,))
            code, status = getattr(error, "code", None), getattr(error, "status", None)
            if _sent_unanswered(exc):
                # The request went out whole and no answer came: the images may have been made and billed. They
                # are recorded as spent (budgets hold whatever OpenAI did), and the call is tried again.
                return mark_spent(error, f"{ctx.idempotency_key}#{ctx.attempt}", ImageBatch([], billed=n))
            if code not in ("answer_too_large", "answer_cut_off") or (status or 0) >= 300:
                return error
        elif isinstance(exc, ValueError | RecursionError):  # a 200 whose body is not JSON, or nested beyond reason
            error = _malformed(f"its answer is not JSON ({type(exc).__name__})")
        elif isinstance(exc, ProviderError):
            if exc.code == "answer_cut_off" and (exc.status or 0) >= 300:
                return exc  # an error answer cut off: nothing was made
            error = exc
        else:
            return exc  # a cancellation, or a bug: as it is
        if isinstance(error, ProviderError):
            error.retryable = False
        return mark_spent(error, f"{ctx.idempotency_key}#{ctx.attempt}", ImageBatch([], billed=n))

    # -- audio ----------------------------------------------------------------------------------------------

    def _transcription_args(self, model: ModelInfo, request: TranscribeRequest, part: AudioPart, ctx: CallContext) -> dict[str, Any]:
        name = _UPLOAD_NAMES.get(part.audio.media_type, "audio.wav")
        args: dict[str, Any] = {
            "model": model.name,
            "file": (name, part.audio.data, part.audio.media_type),
            "response_format": "verbose_json" if model.segments else "json",
        }
        if request.prompt:
            args["prompt"] = request.prompt
        if request.operation == "transcribe":
            if request.language:
                args["language"] = request.language
            if request.word_timestamps and model.segments:
                args["timestamp_granularities"] = ["segment", "word"]
        return _with_call_options(args, request, ctx)

    @staticmethod
    def _language(response: Any) -> str | None:
        language = getattr(response, "language", None)
        if not isinstance(language, str) or not language.strip():
            return None
        return _LANGUAGE_CODES.get(language.strip().lower(), language.strip().lower())

    @staticmethod
    def _transcript(response: Any, request: TranscribeRequest, part: AudioPart) -> TranscriptPart:
        text = str(getattr(response, "text", "") or "").strip()
        language = OpenAIProvider._language(response)
        request_id = getattr(response, "_request_id", None)
        if request.operation == "detect_language":
            # whisper-1 names the language it heard and no probability: none is made up (the guess carries 0.0,
            # "unknown", and no alternatives).
            return TranscriptPart("", language, part.duration, [], request_id=request_id)
        if request.operation == "translate":
            language = "en"
        words = [Word(float(w.start), float(w.end), str(w.word).strip()) for w in (getattr(response, "words", None) or [])]
        raw_segments = getattr(response, "segments", None) or []
        segments = []
        for raw in raw_segments:
            start, end = float(raw.start), float(raw.end)
            inside = [w for w in words if start <= w.start < end]
            segments.append(Segment(start, min(end, part.duration), str(raw.text).strip(), inside))
        if not segments and text:
            segments = [Segment(0.0, part.duration, text, words)]
        return TranscriptPart(text, language or request.language, part.duration, segments, request_id=request_id)

    def transcribe(self, model: ModelInfo, request: TranscribeRequest, part: AudioPart, ctx: CallContext) -> TranscriptPart:
        return drive(self._transcribe(model, request, part, ctx), self._io, ctx)

    async def atranscribe(self, model: ModelInfo, request: TranscribeRequest, part: AudioPart, ctx: CallContext) -> TranscriptPart:
        return await adrive(self._transcribe(model, request, part, ctx), self._io, ctx)

    def _transcribe(self, model: ModelInfo, request: TranscribeRequest, part: AudioPart, ctx: CallContext) -> Flow[TranscriptPart]:
        args = self._transcription_args(model, request, part, ctx)
        try:
            if request.operation == "translate":
                response = yield Call("audio.translations.create", args, undeprecated=True)
            else:
                response = yield Call("audio.transcriptions.create", args)
            if not isinstance(getattr(response, "text", None), str):
                raise ValueError(f"a {type(response).__name__} without text")
            if request.operation == "detect_language" and self._language(response) is None:
                raise ValueError("no language in a verbose_json answer")
        except openai.OpenAIError as exc:
            _raise(map_error(exc, (self._key,)), exc)
        except (ValueError, RecursionError) as exc:  # a 200 that is not a transcript: the audio was billed
            lost = TranscriptPart("", None, part.duration, [])
            raise mark_spent(_malformed(f"its transcript is not what the API documents ({exc})", "the transcript"),
                             f"{ctx.idempotency_key}#{ctx.attempt}", lost) from exc  # fmt: skip
        return self._transcript(response, request, part)

    def _speech_args(self, model: ModelInfo, request: SynthesizeRequest, text: str, ctx: CallContext, final: bool) -> dict[str, Any]:
        args: dict[str, Any] = {
            "model": model.name,
            "voice": request.voice or model.default_voice,
            "input": text,
            "response_format": request.format if final else "pcm",
            "speed": request.speed,
        }
        return _with_call_options(args, request, ctx)

    @staticmethod
    def _speech(response: Any, fmt: str) -> SpeechPart:
        data: bytes = response.content
        kind = response.response.headers.get("content-type", "") if hasattr(response, "response") else ""
        if "html" in kind or "json" in kind:  # a proxy's page, an error in a 200: not audio
            raise ValueError(f"a {kind.split(';')[0]} answer")
        request_id = response.response.headers.get("x-request-id") if hasattr(response, "response") else None
        if fmt == "wav":
            audio = Audio.from_bytes(data)
        elif fmt == "pcm":
            audio = Audio(data, "audio/pcm", OPENAI_PCM_RATE, len(data) / 2 / OPENAI_PCM_RATE, 1)
        else:
            from .._audio import probe

            audio = probe(data, _FORMAT_TYPES[fmt])
        return SpeechPart(audio, request_id=request_id)

    def synthesize(self, model: ModelInfo, request: SynthesizeRequest, text: str, ctx: CallContext, *, final: bool) -> SpeechPart:
        return drive(self._synthesize(model, request, text, ctx, final), self._io, ctx)

    def stream_synthesize(
        self, model: ModelInfo, request: SynthesizeRequest, text: str, ctx: CallContext
    ) -> Iterator[tuple[bytes, int]]:
        """OpenAI's streamed speech: 16-bit mono PCM at 24 kHz, as the answer's body arrives."""
        args = self._speech_args(model, request, text, ctx, final=False)  # raw PCM: the SDK encodes what was asked
        try:
            with self.client.audio.speech.with_streaming_response.create(**args) as response:
                kind = response.headers.get("content-type", "")
                if "html" in kind or "json" in kind:  # a proxy's page, an error in a 200: not audio
                    raise _malformed(f"its answer is a {kind.split(';')[0]}, not audio", "the speech")
                odd = b""
                for data in response.iter_bytes():  # as each piece arrives: the first audio as soon as can be
                    data, odd = odd + data, b""
                    if len(data) % 2:  # a sample cut in two between reads
                        data, odd = data[:-1], data[-1:]
                    if data:
                        yield data, OPENAI_PCM_RATE
        except openai.OpenAIError as exc:
            _raise(map_error(exc, (self._key,)), exc)

    async def asynthesize(
        self, model: ModelInfo, request: SynthesizeRequest, text: str, ctx: CallContext, *, final: bool
    ) -> SpeechPart:
        return await adrive(self._synthesize(model, request, text, ctx, final), self._io, ctx)

    def _synthesize(
        self, model: ModelInfo, request: SynthesizeRequest, text: str, ctx: CallContext, final: bool
    ) -> Flow[SpeechPart]:
        args = self._speech_args(model, request, text, ctx, final)
        try:
            response = yield Call("audio.speech.create", args)
            return self._speech(response, args["response_format"])
        except openai.OpenAIError as exc:
            _raise(map_error(exc, (self._key,)), exc)
        except (ValueError, RecursionError, GenAIError) as exc:  # a 200 that is not audio: it was billed
            lost = SpeechPart(Audio(b"", "audio/pcm", OPENAI_PCM_RATE, 0.0, 1))
            raise mark_spent(_malformed(f"its answer is not the audio asked for ({exc})", "the speech"),
                             f"{ctx.idempotency_key}#{ctx.attempt}", lost) from exc  # fmt: skip

    # -- URL results: fetched at once, with a size cap -----------------------------------------------------

    # -- moderation (the policy's second opinion) -----------------------------------------------------------

    @staticmethod
    def _moderation_input(model: str, inputs: list[dict[str, Any]]) -> Any:
        if len(inputs) == 1 and inputs[0].get("type") == "text":
            return inputs[0]["text"]  # every moderation model takes a plain string; only omni-* take parts
        return inputs

    @staticmethod
    def _moderation_scores(response: Any) -> list[dict[str, float]]:
        results = getattr(response, "results", None)
        if not isinstance(results, list) or not results:
            raise ProviderError("OpenAI's moderation answer has no results", provider="openai", retryable=True)
        scores = []
        for result in results:
            raw = result.category_scores.model_dump(by_alias=True) if result.category_scores is not None else {}
            scores.append({str(k): float(v) for k, v in raw.items() if isinstance(v, int | float)})
        return scores

    def moderate(self, model: str, inputs: list[dict[str, Any]], timeout: float | None) -> list[dict[str, float]]:
        """OpenAI's category scores for each input (text or image parts)."""
        return drive(self._moderate(model, inputs, timeout), self._io, None)

    async def amoderate(self, model: str, inputs: list[dict[str, Any]], timeout: float | None) -> list[dict[str, float]]:
        return await adrive(self._moderate(model, inputs, timeout), self._io, None)

    def _moderate(self, model: str, inputs: list[dict[str, Any]], timeout: float | None) -> Flow[list[dict[str, float]]]:
        try:
            response = yield Call("moderations.create",
                                  {"model": model, "input": self._moderation_input(model, inputs), "timeout": timeout})  # fmt: skip
        except openai.OpenAIError as exc:
            _raise(map_error(exc, (self._key,)), exc)
        return self._moderation_scores(response)

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
        if self._downloader is not None:
            self._downloader.close()

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.close()
        if self._adownloader is not None:
            await self._adownloader.aclose()
        self.close()
