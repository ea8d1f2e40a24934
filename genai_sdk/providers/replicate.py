"""Replicate predictions over its HTTP API, for images and video.

A prediction is created once per backend call and then followed to its end. The provider remembers which prediction
each call's idempotency key started, so an attempt that the pipeline retries after a failed poll goes on following
the same prediction instead of starting (and paying for) another. Waiting on a running prediction is not a retry:
it is part of the one call, and it stops at once when the caller cancels.
"""

from __future__ import annotations

import asyncio
import base64
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from .._catalog import IMAGE_OPERATIONS, REPLICATE_SIZES, ModelInfo, PriceTable
from .._config import Settings
from .._errors import (
    AuthenticationError,
    ConfigError,
    ContentPolicyError,
    GenerationFailedError,
    InvalidRequestError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitError,
    redact,
)
from .._media import Image, Video
from .._requests import ImageRequest, Request, VideoRequest
from .._retry import parse_retry_after
from ._replicate_inputs import InputSchema, image_input, parse_schema, video_input
from .base import CallContext, Cancelled, ImageBatch, VideoOutcome, read_capped

DEFAULT_BASE_URL = "https://api.replicate.com"
MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024
DATA_URL_LIMIT = 256 * 1024  # Replicate's advice: larger files go up through the files API
MAX_WAIT = 60  # seconds a create may block with "Prefer: wait"
_MODEL = re.compile(r"^(?P<owner>[a-z0-9][a-z0-9_.-]*)/(?P<name>[a-z0-9][a-z0-9_.-]*)(?::(?P<version>[0-9a-f]{64}))?$")
_TERMINAL = ("succeeded", "failed", "canceled", "aborted")
_POLICY_WORDS = ("nsfw", "safety", "sensitive", "content policy", "flagged", "moderation")
_PERCENT = re.compile(r"(\d{1,3})%\|")


def parse_model(name: str) -> tuple[str, str, str | None]:
    match = _MODEL.match(name)
    if match is None:
        raise ConfigError(
            f"malformed Replicate model {name!r}: write 'replicate:owner/name' or 'replicate:owner/name:<64-hex version>'"
        )
    return match.group("owner"), match.group("name"), match.group("version")


class ReplicateProvider:
    name = "replicate"

    def __init__(self, settings: Settings, environ: Mapping[str, str]) -> None:
        import httpx

        token = environ.get("REPLICATE_API_TOKEN", "").strip()
        if not token:
            raise ConfigError("replicate models need REPLICATE_API_TOKEN: set it to a token from replicate.com/account/api-tokens")
        base = environ.get("REPLICATE_BASE_URL", DEFAULT_BASE_URL).strip().rstrip("/")
        self._api = (base[:-3] if base.endswith("/v1") else base) + "/v1"
        self._token = token
        self._settings = settings
        from .. import __version__

        headers = {"Authorization": f"Bearer {token}", "User-Agent": f"genai-sdk/{__version__}"}
        self._http = httpx.Client(headers=headers, timeout=httpx.Timeout(settings.timeout or 600.0, connect=10.0))
        # Output files live on other hosts: they are fetched without the token.
        self._downloads = httpx.Client(follow_redirects=True, headers={"User-Agent": headers["User-Agent"]})
        self._lock = threading.Lock()
        self._schemas: dict[str, InputSchema] = {}
        self._started: dict[str, str] = {}  # idempotency key -> prediction id

    # -- catalog -------------------------------------------------------------------------------------------------

    def describe(self, model_name: str) -> ModelInfo | None:
        parse_model(model_name)
        return ModelInfo(
            provider="replicate",
            name=model_name,
            operations=IMAGE_OPERATIONS | {"videos.generate"},
            size_rule=REPLICATE_SIZES,
            max_n=4,
            max_prompt=None,
            max_input_images=1,
            portable=frozenset({"seed", "negative_prompt", "steps", "guidance"}),
            price=PriceTable("compute_second", {}, "Replicate bills this model by GPU time; its rate is not in the catalog"),
            notes="inputs mapped from the model's published input schema",
        )

    def check(self, model: ModelInfo, request: Request) -> list[str]:
        options = request.options.provider_options.get("replicate", {})
        if not isinstance(options, Mapping):
            raise InvalidRequestError("provider_options['replicate'] must be a dict of the model's inputs")
        parse_model(model.name)
        return []

    # -- images and video ----------------------------------------------------------------------------------------

    def images(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> ImageBatch:
        schema = self._schema(model.name, ctx)
        inputs, per_prediction, warnings = image_input(model.id, request, n, schema, self._file_url, ctx)
        images: list[Image] = []
        seconds = 0.0
        ids: list[str] = []
        index = 0
        while len(images) < n:
            count = min(per_prediction, n - len(images))
            if schema.has("num_outputs"):
                inputs["num_outputs"] = count
            prediction = self._predict(model.name, inputs, ctx, f"{ctx.idempotency_key}/{index}", n)
            index += 1
            ids.append(str(prediction["id"]))
            seconds += _predict_time(prediction)
            urls = _outputs(prediction)
            if not urls:
                raise GenerationFailedError(f"{model.id} finished without output (prediction {prediction['id']})",
                                            provider="replicate", request_id=str(prediction["id"]))
            images.extend(Image.from_bytes(self._download(url, ctx)) for url in urls[:count])
        return ImageBatch(images, request_id=ids[0] if len(ids) == 1 else ",".join(ids), warnings=warnings,
                          seed=request.seed, compute_seconds=seconds)

    async def aimages(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> ImageBatch:
        return await asyncio.to_thread(self.images, model, request, n, ctx)

    def video(self, model: ModelInfo, request: VideoRequest, ctx: CallContext) -> VideoOutcome:
        schema = self._schema(model.name, ctx)
        inputs, warnings = video_input(model.id, request, schema, self._file_url, ctx)
        prediction = self._predict(model.name, inputs, ctx, f"{ctx.idempotency_key}/0", None)
        urls = _outputs(prediction)
        if not urls:
            raise GenerationFailedError(f"{model.id} finished without output (prediction {prediction['id']})",
                                        provider="replicate", request_id=str(prediction["id"]))
        video = video_from_bytes(self._download(urls[0], ctx))
        return VideoOutcome(video, request_id=str(prediction["id"]), seed=request.seed,
                            compute_seconds=_predict_time(prediction), warnings=warnings)

    async def avideo(self, model: ModelInfo, request: VideoRequest, ctx: CallContext) -> VideoOutcome:
        return await asyncio.to_thread(self.video, model, request, ctx)

    # -- the HTTP API ----------------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, ctx: CallContext | None, *, json: Any = None, files: Any = None,
              headers: Mapping[str, str] | None = None, timeout: float | None = None) -> tuple[int, Any]:
        import httpx

        try:
            response = self._http.request(method, self._api + path, json=json, files=files, headers=headers,
                                          timeout=timeout if timeout is not None else (ctx.timeout if ctx else None))
        except httpx.TimeoutException:
            raise ProviderUnavailableError("Replicate did not answer in time", provider="replicate", retryable=True) from None
        except httpx.HTTPError as exc:
            raise ProviderUnavailableError(f"could not reach Replicate: {exc}", provider="replicate", retryable=True) from None
        if response.status_code >= 400:
            raise self._error(response)
        return response.status_code, response.json() if response.content else None

    def _error(self, response: Any) -> ProviderError | InvalidRequestError | ConfigError:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        detail = redact(str(body.get("detail") or body.get("title") or response.text[:300]), (self._token,))
        message = f"Replicate answered {status}: {detail}"
        common: dict[str, Any] = {"provider": "replicate", "status": status}
        if status in (401, 403):
            return AuthenticationError(message + ": check REPLICATE_API_TOKEN", **common)
        if status == 429:
            retry_after = parse_retry_after(response.headers)
            if retry_after is None:
                hint = re.search(r"~(\d+)s", detail)
                retry_after = float(hint.group(1)) if hint else None
            return RateLimitError(message, retryable=True, retry_after=retry_after, **common)
        if status == 402:
            return ProviderError(message + ": add credit to the Replicate account", retryable=False, **common)
        if status >= 500 or status == 408:
            return ProviderUnavailableError(message, retryable=True, retry_after=parse_retry_after(response.headers), **common)
        if status == 404:
            return ConfigError(message + ": check the model name (owner/name, or owner/name:version)")
        if status in (400, 413, 422):
            return InvalidRequestError(message)
        return ProviderError(message, retryable=False, **common)

    def _schema(self, model_name: str, ctx: CallContext) -> InputSchema:
        with self._lock:
            schema = self._schemas.get(model_name)
        if schema is not None:
            return schema
        owner, name, version = parse_model(model_name)
        if version:
            _, body = self._call("GET", f"/models/{owner}/{name}/versions/{version}", ctx)
            document = body.get("openapi_schema") if isinstance(body, dict) else None
        else:
            _, body = self._call("GET", f"/models/{owner}/{name}", ctx)
            latest = body.get("latest_version") if isinstance(body, dict) else None
            document = latest.get("openapi_schema") if isinstance(latest, dict) else None
        schema = parse_schema(document)
        with self._lock:
            self._schemas[model_name] = schema
        return schema

    def _predict(self, model_name: str, inputs: dict[str, Any], ctx: CallContext, key: str, images: int | None) -> dict[str, Any]:
        owner, name, version = parse_model(model_name)
        deadline = time.monotonic() + ctx.timeout if ctx.timeout is not None else None
        with self._lock:
            prediction_id = self._started.get(key)
        if prediction_id is None:
            wait = MAX_WAIT if ctx.timeout is None else max(1, min(MAX_WAIT, int(ctx.timeout) - 5))
            headers = {"Prefer": f"wait={wait}"}
            if ctx.timeout is not None:  # a prediction left behind by a crashed caller ends on its own
                headers["Cancel-After"] = f"{max(5, int(ctx.timeout) + 60)}s"
            if version:
                _, prediction = self._call("POST", "/predictions", ctx, json={"version": version, "input": inputs}, headers=headers,
                                           timeout=None if ctx.timeout is None else ctx.timeout + 5)
            else:
                _, prediction = self._call("POST", f"/models/{owner}/{name}/predictions", ctx, json={"input": inputs},
                                           headers=headers, timeout=None if ctx.timeout is None else ctx.timeout + 5)
            prediction_id = str(prediction["id"])
            with self._lock:
                self._started[key] = prediction_id
        else:
            _, prediction = self._call("GET", f"/predictions/{prediction_id}", ctx)
        interval = 0.25
        while prediction.get("status") not in _TERMINAL:
            self._report(prediction, ctx)
            if ctx.cancelled is not None and ctx.cancelled.is_set():
                self._cancel(prediction_id)
                raise Cancelled(f"the call was cancelled; prediction {prediction_id} was canceled", provider="replicate",
                                request_id=prediction_id)
            if deadline is not None and time.monotonic() >= deadline:
                self._cancel(prediction_id)
                with self._lock:
                    self._started.pop(key, None)
                raise ProviderUnavailableError(
                    f"prediction {prediction_id} did not finish within {ctx.timeout:.3g} s; it was canceled (raise timeout=)",
                    provider="replicate", request_id=prediction_id, retryable=False,
                )
            if ctx.cancelled is not None:
                ctx.cancelled.wait(interval)
            else:
                time.sleep(interval)
            interval = min(interval * 1.5, 5.0)
            _, prediction = self._call("GET", f"/predictions/{prediction_id}", ctx)
        with self._lock:
            self._started.pop(key, None)
        return _finished_or_raise(prediction, self._token)

    def _report(self, prediction: dict[str, Any], ctx: CallContext) -> None:
        if ctx.progress is None:
            return
        percents = _PERCENT.findall(str(prediction.get("logs") or ""))
        if percents:
            ctx.progress(float(percents[-1]), 100.0, str(prediction.get("status")))

    def _cancel(self, prediction_id: str) -> None:
        try:
            self._call("POST", f"/predictions/{prediction_id}/cancel", None, timeout=10.0)
        except (ProviderError, InvalidRequestError, ConfigError):
            pass  # the prediction may have just ended; Cancel-After ends it otherwise

    def _file_url(self, data: bytes, media_type: str, ctx: CallContext) -> str:
        """A data URL for small files; larger ones go up through the files API, as Replicate advises."""
        if len(data) <= DATA_URL_LIMIT:
            return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"
        extension = media_type.rsplit("/", 1)[-1]
        _, body = self._call("POST", "/files", ctx, files={"content": (f"input.{extension}", data, media_type)})
        return str(body["urls"]["get"])

    def _download(self, url: str, ctx: CallContext) -> bytes:
        import httpx

        if url.startswith("data:"):
            return base64.b64decode(url.split(",", 1)[1])
        try:
            with self._downloads.stream("GET", url, timeout=ctx.timeout or 120.0) as response:
                response.raise_for_status()
                return read_capped(response.iter_bytes(), MAX_DOWNLOAD_BYTES, f"the output at {url}", "replicate")
        except httpx.HTTPError as exc:
            raise ProviderUnavailableError(f"could not download the output {url}: {exc}", provider="replicate",
                                           retryable=True) from None

    def close(self) -> None:
        self._http.close()
        self._downloads.close()

    async def aclose(self) -> None:
        self.close()


def _finished_or_raise(prediction: dict[str, Any], token: str) -> dict[str, Any]:
    """A succeeded prediction as it is; a failed or canceled one as the SDK's error for it."""
    status, pid = prediction.get("status"), str(prediction.get("id"))
    if status == "succeeded":
        return prediction
    error = redact(str(prediction.get("error") or f"the prediction was {status}"), (token,))
    if any(word in error.lower() for word in _POLICY_WORDS):
        raise ContentPolicyError(f"Replicate refused: {error} (prediction {pid})", stage="output", source="provider",
                                 categories=["provider_filter"], request_id=pid)
    code = re.match(r"^(E\d{4})\b", error)
    raise GenerationFailedError(f"the prediction {status}: {error} (prediction {pid})", provider="replicate",
                                request_id=pid, code=code.group(1) if code else None)


def _outputs(prediction: Mapping[str, Any]) -> list[str]:
    output = prediction.get("output")
    if isinstance(output, str):
        return [output]
    if isinstance(output, list):
        return [item for item in output if isinstance(item, str)]
    if isinstance(output, dict):  # some models name their files: {"video": url, ...}
        return [item for item in output.values() if isinstance(item, str)]
    return []


def _predict_time(prediction: Mapping[str, Any]) -> float:
    metrics = prediction.get("metrics")
    value = metrics.get("predict_time") if isinstance(metrics, dict) else None
    return float(value) if isinstance(value, (int, float)) else 0.0


def video_from_bytes(data: bytes) -> Video:
    """A Video with the facts PyAV reads from the container (when PyAV is installed)."""
    media_type = "video/webm" if data[:4] == b"\x1a\x45\xdf\xa3" else "video/mp4"
    try:
        import io

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
        raise GenerationFailedError(f"Replicate returned a file that is not a video: {exc}", provider="replicate") from None


__all__ = ["ReplicateProvider", "parse_model", "video_from_bytes"]
