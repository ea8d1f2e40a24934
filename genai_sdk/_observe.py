"""What a call reports when it ends: a ``CallEvent`` to the client's ``on_call_end`` hook, and an OpenTelemetry span
(the ``otel`` extra, ``Client(otel=True)``) with the GenAI semantic conventions' attributes where they fit.

Nothing here runs when neither is asked for: the pipeline checks once and takes its plain path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from ._errors import (
    BudgetExceededError,
    ConfigError,
    ContentPolicyError,
    GenAIError,
    InvalidRequestError,
)
from ._requests import Cost, Request

log = logging.getLogger("genai_sdk")


@dataclass(frozen=True)
class CallEvent:
    """One call, as it ended. ``outcome``: "ok", "refused" (content policy), "over_budget", "invalid" (refused before
    sending: a bad setting, a missing key), "cancelled", or "error" (the backend failed, after retries)."""

    operation: str  # "images.generate", "speech.transcribe", ...
    model: str | None  # the model that served the call (or the last one tried)
    outcome: str
    latency: float  # seconds, from the call to its end
    attempts: int  # backend calls made, retries included (0: nothing was sent)
    cost: Cost | None = None  # None when the call was not charged
    warnings: list[str] = field(default_factory=list)
    error: BaseException | None = None
    account: str = ""
    request_ids: list[str] = field(default_factory=list)
    failed_models: list[str] = field(default_factory=list)  # fallbacks that failed before ``model``


class Attempts:
    """Backend calls made by one call (its parts may run in several threads)."""

    __slots__ = ("count", "lock", "model")

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()
        self.model: str | None = None

    def add(self, model: str) -> None:
        with self.lock:
            self.count += 1
            self.model = model


# The attempt counter of the call being made (read once by the pipeline, in the calling thread or task).
CURRENT: ContextVar[Attempts | None] = ContextVar("genai_attempts", default=None)


def outcome_of(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    if isinstance(error, ContentPolicyError):
        return "refused"
    if isinstance(error, BudgetExceededError):
        return "over_budget"
    if isinstance(error, InvalidRequestError | ConfigError):
        return "invalid"
    import asyncio

    if isinstance(error, KeyboardInterrupt | asyncio.CancelledError):
        return "cancelled"
    return "error"


class Observer:
    """The client's hook and tracer, called around every call."""

    def __init__(self, on_call_end: Callable[[CallEvent], None] | None, otel: bool, account: str) -> None:
        self.on_call_end = on_call_end
        self.account = account
        self.tracer: Any = None
        if otel:
            try:
                from opentelemetry import trace
            except ModuleNotFoundError:
                raise ConfigError(
                    "otel=True needs OpenTelemetry: pip install 'genai-sdk[otel]' (or set otel = false)"
                ) from None
            from . import __version__

            self.tracer = trace.get_tracer("genai_sdk", __version__)

    @contextmanager
    def watch(self, request: Request, first_model: str) -> Iterator[Callable[[object], None]]:
        """Around one call: yields a function to hand the result to; reports the event and ends the span after."""
        attempts = Attempts()
        token = CURRENT.set(attempts)
        started = time.perf_counter()
        operation = f"{_FAMILY[request.modality]}.{request.operation}"
        span = self._start_span(operation, first_model, request)
        outcome: list[object] = []
        error: BaseException | None = None
        try:
            if span is not None:
                from opentelemetry import trace

                with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                    yield outcome.append
            else:
                yield outcome.append
        except BaseException as exc:
            error = exc
            raise
        finally:
            CURRENT.reset(token)
            event = self._event(request, operation, first_model, outcome[0] if outcome else None, error, attempts, started)
            if span is not None:
                _end_span(span, event)
            if self.on_call_end is not None:
                try:
                    self.on_call_end(event)
                except Exception as exc:  # noqa: BLE001 - a broken hook must not turn a call into a failure
                    log.warning("on_call_end raised %s: %s", type(exc).__name__, exc)

    def _start_span(self, operation: str, model: str, request: Request) -> Any:
        if self.tracer is None:
            return None
        from opentelemetry.trace import SpanKind

        provider = model.partition(":")[0]
        attributes = {
            "gen_ai.system": provider,
            "gen_ai.provider.name": provider,
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": model,
        }
        return self.tracer.start_span(f"{operation} {model}", kind=SpanKind.CLIENT, attributes=attributes)

    def _event(
        self, request: Request, operation: str, first_model: str, result: object, error: BaseException | None,
        attempts: Attempts, started: float,
    ) -> CallEvent:  # fmt: skip
        cost = getattr(result, "cost", None)
        return CallEvent(
            operation=operation,
            model=getattr(result, "model", None) or attempts.model or first_model,
            outcome=outcome_of(error),
            latency=time.perf_counter() - started,
            attempts=attempts.count,
            cost=cost if isinstance(cost, Cost) else None,
            warnings=list(getattr(result, "warnings", ())),
            error=error,
            account=request.options.account or self.account,
            request_ids=list(getattr(result, "request_ids", ())),
            failed_models=list(getattr(result, "failed_models", ())),
        )


_FAMILY = {"images": "images", "videos": "videos", "speech_to_text": "speech", "text_to_speech": "speech", "image_scoring": "images"}


def _end_span(span: Any, event: CallEvent) -> None:
    from opentelemetry.trace import Status, StatusCode

    if event.model:
        span.set_attribute("gen_ai.response.model", event.model)
    span.set_attribute("genai_sdk.outcome", event.outcome)
    span.set_attribute("genai_sdk.attempts", event.attempts)
    if event.cost is not None:
        span.set_attribute("genai_sdk.cost.credits", float(event.cost.credits))
        if event.cost.usd is not None:
            span.set_attribute("genai_sdk.cost.usd", float(event.cost.usd))
    if event.failed_models:
        span.set_attribute("genai_sdk.failed_models", event.failed_models)
    if event.warnings:
        span.set_attribute("genai_sdk.warnings", event.warnings)
    if event.error is not None:
        span.set_attribute("error.type", type(event.error).__name__)
        if isinstance(event.error, GenAIError):
            span.record_exception(event.error)
        span.set_status(Status(StatusCode.ERROR, type(event.error).__name__))
    span.end()
