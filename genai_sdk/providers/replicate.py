"""Replicate predictions over its HTTP API, for images and video.

A prediction is created once per backend call and then followed to its end. The provider remembers which prediction
each call's idempotency key started, so an attempt that the pipeline retries after a failed download follows (and
downloads) the same prediction instead of starting (and paying for) another. Polls that fail are tried again within
the call (five in a row); past that, the prediction is canceled like on every other way out but success. Waiting on
a running prediction is not a retry: it is part of the one call, and it stops at once when the caller cancels.

Each operation is written once, as a flow (``genai_sdk._flow``) that the core runs for sync and async callers, and a
prediction is a long job the core follows (polls, deadline, cancel on Ctrl-C or a cancelled task).
"""

from __future__ import annotations

import base64
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote, unquote_to_bytes

from .._catalog import IMAGE_OPERATIONS, ModelInfo, PriceTable, size_rule
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
from .._flow import Abandoned, Fetch, Flow, Http, JsonApi, Sleep, adrive, drive, follow
from .._http import AddressGuard, time_left
from .._media import Image, Video
from .._requests import ImageRequest, Request, VideoRequest
from .._retry import parse_retry_after
from ._replicate_inputs import (
    InputSchema,
    Upload,
    count_input,
    image_input,
    parse_schema,
    schema_operations,
    video_input,
)
from .base import CallContext, ImageBatch, VideoOutcome, backend_image, mark_spent, status_error, video_from_bytes

DEFAULT_BASE_URL = "https://api.replicate.com"
MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024
MAX_ANSWER_BYTES = 128 * 1024 * 1024  # an API answer (outputs as data URLs included)
_FOLLOWED = 4096  # predictions remembered per provider, so that a retried call follows its own instead of paying again
MAX_WAIT = 60  # seconds a create may block with "Prefer: wait"
_MODEL = re.compile(
    r"^(?P<deployment>deployments/)?(?P<owner>[a-z0-9][a-z0-9_.-]*)/(?P<name>[a-z0-9][a-z0-9_.-]*)(?::(?P<version>[0-9a-f]{64}))?$"
)
_TERMINAL = ("succeeded", "failed", "canceled", "aborted")
_POLICY_WORDS = ("nsfw", "safety", "sensitive", "content policy", "flagged", "moderation")
_PERCENT = re.compile(r"(\d{1,3})%\|")
TRANSFORMS = frozenset({"images.upscale", "images.sketch"})


T = TypeVar("T")


@dataclass(frozen=True)
class ModelRef:
    """What a ``replicate:`` name points at: a model (its latest version), a pinned version, or a deployment."""

    owner: str
    name: str
    version: str | None = None
    deployment: bool = False

    def create_path(self) -> str:
        if self.deployment:
            return f"/deployments/{self.owner}/{self.name}/predictions"
        return "/predictions" if self.version else f"/models/{self.owner}/{self.name}/predictions"


def parse_model(name: str) -> ModelRef:
    match = _MODEL.match(name)
    if match is None:
        raise ConfigError(
            f"malformed Replicate model {name!r}: write 'replicate:owner/name', 'replicate:owner/name:<64-hex version>' "
            "or 'replicate:deployments/owner/name'"
        )
    if match.group("deployment") and match.group("version"):
        raise ConfigError(f"{name!r}: a deployment runs the version of its current release; drop ':{match.group('version')}'")
    return ModelRef(match.group("owner"), match.group("name"), match.group("version"), bool(match.group("deployment")))


class ReplicateProvider:
    name = "replicate"

    def __init__(self, settings: Settings, environ: Mapping[str, str]) -> None:
        import httpx  # noqa: F401  (fail first, with the extra's name, when it is missing)

        token = environ.get("REPLICATE_API_TOKEN", "").strip()
        if not token:
            raise ConfigError("replicate models need REPLICATE_API_TOKEN: set it to a token from replicate.com/account/api-tokens")
        base = environ.get("REPLICATE_BASE_URL", DEFAULT_BASE_URL).strip().rstrip("/")
        self._api = (base[:-3] if base.endswith("/v1") else base) + "/v1"
        self._token = token
        self._settings = settings
        from .. import __version__

        self._headers = {"Authorization": f"Bearer {token}", "User-Agent": f"genai-sdk/{__version__}"}
        self._io = JsonApi(
            provider="replicate", base_url=self._api, headers=self._headers, timeout=settings.timeout or 600.0,
            answer_cap=MAX_ANSWER_BYTES, download_cap=MAX_DOWNLOAD_BYTES,
            guard=AddressGuard.for_base_url(base, settings.trusted_hosts), error=self._error, decode=self._decode,
            unreachable=_unreachable,
        )  # fmt: skip
        self._lock = threading.Lock()
        self._schemas: dict[str, InputSchema] = {}
        # idempotency key -> prediction id, until the call that made it has its outputs: a retried attempt follows
        # (and downloads) the same prediction instead of paying for another.
        self._started: OrderedDict[str, str] = OrderedDict()
        self._creating: dict[str, int] = {}  # creates in flight, by model and body: twins wait for each other
        # Every prediction a call of this provider followed, kept after the call ends: a lookup after a lost create
        # answer must never take one of these (a twin's, already delivered) for its own.
        self._seen: OrderedDict[str, None] = OrderedDict()

    # -- catalog -------------------------------------------------------------------------------------------------

    def describe(self, model_name: str) -> ModelInfo | None:
        """A model outside the catalog: it may be asked for anything until its schema is read; after that, to upscale
        or sketch only if its schema shows it can (an image input with an upscale factor; a control image and a
        prompt), so that a later call is refused before anything is reserved."""
        parse_model(model_name)
        with self._lock:
            schema = self._schemas.get(model_name)
        transforms = TRANSFORMS if schema is None else schema_operations(f"replicate:{model_name}", schema)
        return ModelInfo(
            provider="replicate",
            name=model_name,
            operations=IMAGE_OPERATIONS | {"videos.generate"} | transforms,
            size_rule=size_rule("replicate", "replicate"),
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
        if isinstance(request, ImageRequest) and request.operation in ("upscale", "sketch"):
            with self._lock:
                schema = self._schemas.get(model.name)
            if schema is not None:  # read by an earlier call: refuse now, before anything is reserved
                _from_schema(image_input, model.id, request, request.n, schema)
        return []

    # -- images and video ----------------------------------------------------------------------------------------

    def images(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> ImageBatch:
        return drive(self._images(model, request, n, ctx), self._io, ctx)

    async def aimages(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> ImageBatch:
        return await adrive(self._images(model, request, n, ctx), self._io, ctx)

    def video(self, model: ModelInfo, request: VideoRequest, ctx: CallContext) -> VideoOutcome:
        return drive(self._video(model, request, ctx), self._io, ctx)

    async def avideo(self, model: ModelInfo, request: VideoRequest, ctx: CallContext) -> VideoOutcome:
        return await adrive(self._video(model, request, ctx), self._io, ctx)

    def _images(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> Flow[ImageBatch]:
        schema = yield from self._schema(model.name, ctx)
        inputs, per_prediction, warnings = _from_schema(image_input, model.id, request, n, schema)
        yield from self._upload(inputs, ctx)
        images: list[Image] = []
        seconds = 0.0
        ids: list[str] = []
        while len(images) < n:
            counted, count = count_input(schema, min(per_prediction, n - len(images)))
            inputs.update(counted)
            key = f"{ctx.idempotency_key}/{len(ids)}"
            prediction = yield from self._predict(model.name, inputs, ctx, key, _lost_images(count))
            ids.append(str(prediction["id"]))
            seconds += _predict_time(prediction)
            if "_genai_warning" in prediction:
                warnings.append(str(prediction["_genai_warning"]))
            try:
                for url in _outputs(prediction, model.id)[:count]:
                    images.append(backend_image((yield from self._output(url, ctx)), "replicate", f"the output {url}"))
            except (GenAIError, Abandoned) as error:  # the prediction ran and is billed: a retry downloads it again
                mark_spent(error, str(prediction["id"]), _lost_images(count)(prediction))
                raise
        self._forget(ctx.idempotency_key)
        return ImageBatch(images, request_id=ids[0] if len(ids) == 1 else ",".join(ids), warnings=warnings,
                          seed=request.seed, compute_seconds=seconds)

    def _video(self, model: ModelInfo, request: VideoRequest, ctx: CallContext) -> Flow[VideoOutcome]:
        schema = yield from self._schema(model.name, ctx)
        inputs, warnings = _from_schema(video_input, model.id, request, schema)
        yield from self._upload(inputs, ctx)
        prediction = yield from self._predict(model.name, inputs, ctx, f"{ctx.idempotency_key}/0", _lost_video)
        try:
            video = video_from_bytes((yield from self._output(_outputs(prediction, model.id)[0], ctx)), "replicate")
        except (GenAIError, Abandoned) as error:
            mark_spent(error, str(prediction["id"]), _lost_video(prediction))
            raise
        self._forget(ctx.idempotency_key)
        return VideoOutcome(video, request_id=str(prediction["id"]), seed=request.seed,
                            compute_seconds=_predict_time(prediction), warnings=warnings)

    # -- jobs of a process that died (``client.jobs``) ---------------------------------------------------------------

    def resume(self, model: ModelInfo, kind: str, handle: Mapping[str, Any], ctx: CallContext) -> ImageBatch | VideoOutcome:
        """Follow a prediction a call started (its process gone) to its end, and collect its outputs."""
        return drive(self._resumed(model, kind, str(handle.get("prediction") or ""), ctx), self._io, ctx)

    def _resumed(self, model: ModelInfo, kind: str, prediction_id: str, ctx: CallContext) -> Flow[ImageBatch | VideoOutcome]:
        if not prediction_id:
            raise InvalidRequestError("the job's record names no Replicate prediction")
        job = _Resumed(self, model.name, {}, ctx, prediction_id, None)
        prediction = _finished_or_raise((yield from follow(job, ctx)), self._token)
        urls = _outputs(prediction, model.id)
        if kind == "videos":
            video = video_from_bytes((yield from self._output(urls[0], ctx)), "replicate")
            return VideoOutcome(video, request_id=prediction_id, compute_seconds=_predict_time(prediction))
        images = []
        for url in urls:
            images.append(backend_image((yield from self._output(url, ctx)), "replicate", f"the output {url}"))
        return ImageBatch(images, request_id=prediction_id, compute_seconds=_predict_time(prediction))

    def cancel_job(self, model: ModelInfo, handle: Mapping[str, Any]) -> str | None:
        """Cancel a recorded prediction: its status after (it may have finished first), or None if unknown."""
        final = drive(self._cancel(str(handle.get("prediction") or "")), self._io, None)
        return None if final is None else str(final.get("status"))

    def _follow(self, key: str, prediction_id: str) -> None:
        with self._lock:
            self._started[key] = prediction_id
            self._seen[prediction_id] = None
            while len(self._started) > _FOLLOWED:
                self._started.popitem(last=False)
            while len(self._seen) > _FOLLOWED:
                self._seen.popitem(last=False)

    def _forget(self, call_key: str) -> None:
        """The call has its outputs: its predictions need not be followed any more."""
        with self._lock:
            for key in [k for k in self._started if k.startswith(call_key + "/")]:
                del self._started[key]

    # -- the steps every operation is made of ----------------------------------------------------------------------

    def _schema(self, model_name: str, ctx: CallContext) -> Flow[InputSchema]:
        with self._lock:
            schema = self._schemas.get(model_name)
        if schema is not None:
            return schema
        ref = parse_model(model_name)
        model, version = f"{ref.owner}/{ref.name}", ref.version
        if ref.deployment:  # its current release names the model and version it runs
            body = yield Http("GET", f"/deployments/{ref.owner}/{ref.name}", ctx.timeout)
            release = body.get("current_release") if isinstance(body, dict) else None
            release = release if isinstance(release, dict) else {}
            model, version = str(release.get("model") or ""), str(release.get("version") or "")
        if ref.deployment and not (model and version):
            document = None
        elif version:
            body = yield Http("GET", f"/models/{model}/versions/{version}", ctx.timeout)
            document = body.get("openapi_schema") if isinstance(body, dict) else None
        else:
            body = yield Http("GET", f"/models/{model}", ctx.timeout)
            latest = body.get("latest_version") if isinstance(body, dict) else None
            document = latest.get("openapi_schema") if isinstance(latest, dict) else None
        schema = parse_schema(document)
        with self._lock:
            self._schemas[model_name] = schema
        return schema

    def _upload(self, inputs: dict[str, Any], ctx: CallContext) -> Flow[None]:
        """Send the files too large for data URLs through the files API, as Replicate advises, and use their URLs."""
        for name, value in list(inputs.items()):
            if isinstance(value, Upload):
                extension = value.media_type.rsplit("/", 1)[-1]
                body = yield Http("POST", "/files", ctx.timeout,
                                   files={"content": (f"input.{extension}", value.data, value.media_type)})
                inputs[name] = str(body["urls"]["get"])

    def _predict(
        self, model_name: str, inputs: dict[str, Any], ctx: CallContext, key: str, lost: Any
    ) -> Flow[dict[str, Any]]:
        """Create a prediction (or find the one this call created before) and have the core follow it to its end."""
        began = time.monotonic()
        prediction = yield from follow(_Prediction(self, model_name, inputs, ctx, key, lost), ctx)
        if prediction.get("status") != "succeeded":  # failed or canceled: a retry must make a new one
            self._forget_prediction(key)
        return _believable_time(_finished_or_raise(prediction, self._token), time.monotonic() - began)

    def _forget_prediction(self, key: str) -> None:
        with self._lock:
            self._started.pop(key, None)

    def _create(
        self, model_name: str, inputs: dict[str, Any], ctx: CallContext, key: str, lost: Any
    ) -> Flow[dict[str, Any]]:
        """Create a prediction. When its answer is lost (a dropped connection, a cut-off or unreadable body, a 5xx
        from a proxy), the prediction may exist all the same: Replicate has no idempotency keys, so the SDK lists
        the predictions made since just before the create and takes the one with this model and these inputs that
        no other call follows. Only when there is none is it created again (by the retry); when the list cannot be
        read, the error is final, and the prediction, if it exists, ends by itself at its ``Cancel-After``."""
        ref = parse_model(model_name)
        wait = MAX_WAIT if ctx.timeout is None else max(1, min(MAX_WAIT, int(ctx.timeout) - 5))
        headers = {"Prefer": f"wait={wait}"}
        if ctx.timeout is not None:  # a prediction left behind by a crashed caller ends on its own
            headers["Cancel-After"] = f"{max(5, int(ctx.timeout) + 60)}s"
        timeout = None if ctx.timeout is None else ctx.timeout + 5
        body = {"input": inputs} if ref.deployment or not ref.version else {"version": ref.version, "input": inputs}
        since = datetime.now(UTC) - timedelta(seconds=10)  # clocks differ a little
        twins = _fingerprint(model_name, body)
        with self._lock:
            self._creating[twins] = self._creating.get(twins, 0) + 1
        try:
            try:
                prediction = _prediction((yield Http("POST", ref.create_path(), timeout, json=body, headers=headers)),
                                         created=True)  # fmt: skip
                self._follow(key, str(prediction["id"]))  # known as this call's before twins look for theirs
            finally:
                with self._lock:
                    self._creating[twins] -= 1
                    if not self._creating[twins]:
                        del self._creating[twins]
            return prediction
        except (ProviderError, Abandoned) as error:
            status = getattr(error, "status", None)
            if status is not None and 400 <= status < 500:
                raise  # refused (422, 429, ...): nothing was created
            try:
                found = yield from self._find_created(ref, inputs, since, ctx, key, twins)
            except GenAIError:
                if isinstance(error, ProviderError):
                    error.retryable = False
                    error.message = str(error) + (
                        "; the prediction may have been created, and it could not be looked up, so it was not created "
                        "again (if it runs, it ends by itself within the call's timeout plus a minute)"
                    )
                    error.args = (error.message,)
                    mark_spent(error, f"{key}?", lost({}))  # it may run and be billed: budgets count it
                raise error from None
            if isinstance(error, Abandoned):
                final = None if found is None else (yield from self._cancel(str(found["id"])))
                if final is not None and final.get("status") == "succeeded":  # it finished first: billed
                    mark_spent(error, str(final["id"]), lost(final))
                raise
            if found is None:
                if status is None or status >= 500:
                    error.retryable = True  # it was not made: making it is safe
                raise
            return found

    def _find_created(
        self, ref: ModelRef, inputs: dict[str, Any], since: datetime, ctx: CallContext, key: str, twins: str
    ) -> Flow[dict[str, Any] | None]:
        """The prediction this call created, among those listed since just before its create: the oldest with this
        model and these inputs that no call of this process follows. Calls here with the same inputs whose creates
        are still in flight are waited for first (they will know their own), and the choice is claimed under the
        lock, so that two calls never take the same prediction. (Identical twins made by another process at the
        same moment cannot be told apart: one of them may be taken for the other.)"""
        while True:
            with self._lock:
                busy = twins in self._creating
            if not busy:
                break
            left = time_left()
            if left is not None and left <= 0:
                raise ProviderUnavailableError("no time left to look the prediction up", provider="replicate")
            yield Sleep(0.05 if left is None else min(0.05, left))
        after = quote(since.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        page = yield Http("GET", f"/predictions?created_after={after}", min(ctx.timeout or 30.0, 30.0))
        results = page.get("results") if isinstance(page, dict) else None
        if not isinstance(results, list):
            raise ProviderError("Replicate's list of predictions is not what the API documents", provider="replicate")
        model = f"{ref.owner}/{ref.name}"
        with self._lock:
            followed = set(self._started.values()) | set(self._seen)
            for item in reversed(results):  # oldest first: twins are claimed in the order they were made
                if not isinstance(item, dict) or not isinstance(item.get("id"), str) or item["id"] in followed:
                    continue
                if item.get("input") != inputs or item.get("source", "api") != "api":
                    continue
                if not ref.deployment and item.get("model") not in (None, model):
                    continue
                if ref.version and item.get("version") not in (None, ref.version):
                    continue
                found = _prediction(item)
                self._started[key] = str(found["id"])  # claimed
                self._seen[str(found["id"])] = None
                return found
        return None

    def _output(self, url: str, ctx: CallContext) -> Flow[bytes]:
        """An output file's bytes: inline when Replicate answered with a data URL, else downloaded."""
        if url.startswith("data:"):
            header, _, payload = url.partition(",")
            try:
                return base64.b64decode(payload, validate=True) if header.endswith(";base64") else unquote_to_bytes(payload)
            except ValueError:
                raise GenerationFailedError("Replicate returned an output data URL that does not decode",
                                            provider="replicate") from None
        data: bytes = yield Fetch(url, ctx.timeout or 120.0)
        return data

    def _cancel(self, prediction_id: str) -> Flow[dict[str, Any] | None]:
        """Cancel a prediction; its state after the cancel (it may have finished first), or None if unknown."""
        try:
            answer = yield Http("POST", f"/predictions/{prediction_id}/cancel", 10.0, unbounded=True)
        except GenAIError:
            return None  # the prediction may have just ended; Cancel-After ends it otherwise
        return answer if isinstance(answer, dict) else None

    def _decode(self, response: Any) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except (ValueError, RecursionError) as exc:  # a 200 that is not JSON: a proxy's page, a cut-off body
            kind = "an HTML page" if "html" in response.headers.get("content-type", "") else "not JSON"
            # Retried, unless it answered a create: the prediction may exist, and a second would be paid for too.
            created = response.request.method == "POST" and response.request.url.path.endswith("/predictions")
            raise ProviderError(
                f"Replicate answered {response.status_code}, but its answer is {kind}"
                + ("; the prediction may have been created, so it was not created again" if created else ""),
                provider="replicate", status=response.status_code, retryable=not created,
            ) from exc

    def _error(self, response: Any) -> GenAIError:
        status = response.status_code
        try:
            body = response.json()
        except (ValueError, RecursionError):
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
        return status_error(status, message, response.headers, common,
                            "check the model name (owner/name, owner/name:version or deployments/owner/name)")  # fmt: skip

    def close(self) -> None:
        self._io.close()

    async def aclose(self) -> None:
        await self._io.aclose()


@dataclass
class _Prediction:
    """A Replicate prediction as a long job the core follows (``_flow.follow``)."""

    owner: ReplicateProvider
    model_name: str
    inputs: dict[str, Any]
    ctx: CallContext
    key: str  # the backend call's key: a retried attempt finds the prediction it started
    lost: Any  # the outcome that stands for a billed prediction whose outputs the caller will not get
    provider: str = "replicate"
    first_pause: float = 0.25
    max_pause: float = 5.0
    cancellable: bool = True

    def label(self, state: dict[str, Any]) -> str:
        return f"prediction {state.get('id')}"

    def request_id(self, state: dict[str, Any]) -> str | None:
        return str(state.get("id"))

    def start(self) -> Flow[dict[str, Any]]:
        with self.owner._lock:
            prediction_id = self.owner._started.get(self.key)
        if prediction_id is not None:  # an earlier attempt made it: follow it at once
            self.first_pause = 0.0
            return {"id": prediction_id, "status": "unknown"}
        prediction = yield from self.owner._create(self.model_name, self.inputs, self.ctx, self.key, self.lost)
        self.owner._follow(self.key, str(prediction["id"]))
        return prediction

    def finished(self, state: dict[str, Any]) -> bool:
        return state.get("status") in _TERMINAL

    def poll(self, state: dict[str, Any]) -> Flow[dict[str, Any]]:
        return _prediction((yield Http("GET", f"/predictions/{state['id']}", self.ctx.timeout)))

    def progress(self, state: dict[str, Any]) -> tuple[float, float, str] | None:
        percents = _PERCENT.findall(str(state.get("logs") or "")) if state.get("status") != "unknown" else []
        return (float(percents[-1]), 100.0, str(state.get("status"))) if percents else None

    def cancel(self, state: dict[str, Any]) -> Flow[dict[str, Any] | None]:
        return (yield from self.owner._cancel(str(state["id"])))

    def given_up(self, state: dict[str, Any], final: dict[str, Any] | None, error: BaseException) -> None:
        self.owner._forget_prediction(self.key)
        if final is not None and final.get("status") == "succeeded":
            mark_spent(error, str(final.get("id")), self.lost(final))  # it finished first: billed all the same

    def handle(self, state: dict[str, Any]) -> dict[str, Any]:
        """What finds the prediction again from another process (``client.jobs.resume``)."""
        return {"prediction": str(state.get("id"))}


class _Resumed(_Prediction):
    """A prediction started by a call whose process is gone (``key`` is its id): followed from its state now."""

    def start(self) -> Flow[dict[str, Any]]:
        return (yield from self.poll({"id": self.key}))

    def cancel(self, state: dict[str, Any]) -> Flow[dict[str, Any] | None]:
        """A resume that gives up (its timeout, an interrupt) leaves the job running: it can be resumed again."""
        return None
        yield  # a flow, that never sends anything

    def given_up(self, state: dict[str, Any], final: dict[str, Any] | None, error: BaseException) -> None:
        pass  # the job's record says what became of it


def _unreachable(exc: Exception) -> GenAIError:
    """Transport failures as the SDK's retryable error."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return ProviderUnavailableError("Replicate did not answer in time", provider="replicate", retryable=True)
    return ProviderUnavailableError(f"could not reach Replicate: {exc}", provider="replicate", retryable=True)


def _prediction(body: object, *, created: bool = False) -> dict[str, Any]:
    """A prediction object as the API documents it (an id and a status), or the backend's error. An answer to a
    create without an id is not retried: the prediction may exist, and a second one would be paid for too."""
    if isinstance(body, dict) and isinstance(body.get("id"), str) and body["id"] and isinstance(body.get("status"), str):
        return body
    what = "an object without an id and a status" if isinstance(body, dict) else f"{type(body).__name__}, not a prediction"
    raise ProviderError(
        f"Replicate answered with {what}" + (": the prediction may have been created; it was not created again" if created else ""),
        provider="replicate", retryable=not created,
    )  # fmt: skip


def _finished_or_raise(prediction: dict[str, Any], token: str) -> dict[str, Any]:
    """A succeeded prediction as it is; a failed or canceled one as the SDK's error for it."""
    status, pid = prediction.get("status"), str(prediction.get("id"))
    if status == "succeeded":
        return prediction
    error = redact(str(prediction.get("error") or f"the prediction was {status}"), (token,))
    lowered = error.lower()
    if any(word in lowered for word in _POLICY_WORDS):
        # Models' safety checkers run on what was made ("NSFW content detected in one or more images"); some check
        # the prompt first ("the prompt was flagged as sensitive").
        flagged_input = re.search(r"\b(prompt|input)\b[^.]*\b(flagged|rejected|blocked|refused|sensitive|violat)", lowered)
        stage = "prompt" if flagged_input and "output" not in lowered else "output"
        categories = ["sexual"] if "nsfw" in lowered or "nud" in lowered else ["provider_filter"]
        raise ContentPolicyError(f"Replicate refused: {error} (prediction {pid})", stage=stage, source="provider",
                                 categories=categories, request_id=pid)
    code = re.match(r"^(E\d{4})\b", error)
    raise GenerationFailedError(f"the prediction {status}: {error} (prediction {pid})", provider="replicate",
                                request_id=pid, code=code.group(1) if code else None)


def _outputs(prediction: Mapping[str, Any], model_id: str) -> list[str]:
    """The output URLs of a succeeded prediction; none is an error, never an empty result."""
    output = prediction.get("output")
    urls: list[str] = []
    if isinstance(output, str):
        urls = [output]
    elif isinstance(output, list):
        urls = [item for item in output if isinstance(item, str)]
    elif isinstance(output, dict):  # some models name their files: {"video": url, ...}
        urls = [item for item in output.values() if isinstance(item, str)]
    if not urls:
        raise GenerationFailedError(f"{model_id} finished without output (prediction {prediction['id']})",
                                    provider="replicate", request_id=str(prediction["id"]))
    return urls


def _from_schema(build: Any, model_id: str, *args: Any) -> Any:
    """A model's inputs, built from its published schema; a schema whose values make no sense (an aspect ratio of
    "1:0", a maximum of Infinity) is the backend's fault, said as such."""
    try:
        return build(model_id, *args)
    except (ArithmeticError, ValueError, TypeError, AttributeError) as exc:
        raise ProviderError(f"{model_id}'s input schema holds values that cannot be used ({type(exc).__name__}: {exc})",
                            provider="replicate") from None


def _fingerprint(model_name: str, body: Mapping[str, Any]) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps([model_name, body], sort_keys=True, default=str).encode()).hexdigest()


def _lost_images(count: int) -> Any:
    def lost(prediction: Mapping[str, Any]) -> ImageBatch:
        return ImageBatch([], billed=count, compute_seconds=_predict_time(prediction))

    return lost


def _lost_video(prediction: Mapping[str, Any]) -> VideoOutcome:
    return VideoOutcome(Video(b"", "video/mp4"), request_id=str(prediction.get("id")), compute_seconds=_predict_time(prediction))


def _predict_time(prediction: Mapping[str, Any]) -> float:
    metrics = prediction.get("metrics")
    value = metrics.get("predict_time") if isinstance(metrics, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _believable_time(prediction: dict[str, Any], waited: float) -> dict[str, Any]:
    """The prediction, with a GPU time the charge can rest on: Replicate's figure when it is a finite number from 0
    to the time the SDK waited for it (plus a minute of slack for clocks); else (NaN, a negative time, 1e20) the time
    the SDK waited, the most it can have run while followed, and a warning."""
    metrics = prediction.get("metrics")
    value = metrics.get("predict_time") if isinstance(metrics, dict) else None
    if value is None:
        return prediction
    number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    if math.isfinite(number) and 0 <= number <= waited + 60:
        return prediction
    fixed = dict(prediction)
    fixed["metrics"] = {**(metrics if isinstance(metrics, dict) else {}), "predict_time": round(waited, 3)}
    fixed["_genai_warning"] = (
        f"Replicate reported a predict_time of {value!r} for prediction {prediction.get('id')}: "
        f"charged for the {waited:.3g} s the SDK waited for it instead"
    )
    return fixed


__all__ = ["ModelRef", "ReplicateProvider", "parse_model"]
