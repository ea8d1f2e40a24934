"""Fallbacks and the circuit breaker.

A model setting (or ``model=``) may name several models. Each is a *hop*: validated, priced and reserved on its own,
and tried in order. The next hop is tried only after a hop was unavailable or rate-limited (after its own retries),
or could not take the request at all (a setting it cannot honour, a missing key or extra, a circuit that is open);
never after a content-policy refusal, a request the backend called invalid, a budget refusal, an authentication
failure or a job that ran and failed. The result says which model served it (``result.model``) and which failed
before it (``result.failed_models``, with a warning each).

The breaker keeps, per model, whether its recent calls ended unavailable or rate-limited after their retries. When the
last ``circuit_breaker_failures`` of them failed (and at least 80% of the recent ones), nothing is sent to that model
for ``circuit_breaker_cooldown`` seconds; then one call is let through to try it, and a success closes the circuit.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from ._errors import ConfigError, GenAIError, InvalidRequestError, ProviderUnavailableError, RateLimitError
from ._requests import Request

log = logging.getLogger("genai_sdk")

# Raised before anything is reserved or sent: the hop cannot take the request, the next one may.
SKIPPED = (ConfigError, InvalidRequestError, ProviderUnavailableError)
# Raised by a hop's call after its retries: the backend is not serving now, the next one may.
FAILED_OVER = (ProviderUnavailableError, RateLimitError)


def for_model(request: Request, model_id: str) -> Request:
    """The request as one hop sends it: the same settings, that model."""
    return dataclasses.replace(request, options=dataclasses.replace(request.options, model=model_id))


def served(result: object, failures: list[tuple[str, GenAIError]]) -> None:
    """Say on the result which models failed before the one that served it."""
    if not failures:
        return
    failed = getattr(result, "failed_models", None)
    warnings = getattr(result, "warnings", None)
    if isinstance(failed, list):
        failed.extend(model for model, _ in failures)
    if isinstance(warnings, list):
        warnings.extend(f"{model} was not used ({type(error).__name__}: {error}); fell back" for model, error in failures)


def exhausted(failures: list[tuple[str, GenAIError]]) -> GenAIError:
    """Every hop failed: the last error, with a note naming what happened to the others."""
    _, last = failures[-1]
    if len(failures) > 1:
        last.add_note(
            "every fallback failed: " + "; ".join(f"{m}: {type(e).__name__}: {e}" for m, e in failures[:-1])
        )
    return last


class CircuitBreaker:
    """Per model: the outcomes of its recent calls, and until when its circuit is open. Shared by every call of a
    client. The circuit opens when the last ``failures`` calls all failed and at least 80% of the recent ones did:
    a backend that is down, not one that fails now and then under load."""

    RATE = 0.8

    def __init__(self, failures: int, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = failures
        self.cooldown = cooldown
        self.clock = clock
        self._lock = threading.Lock()
        self._recent: dict[str, deque[bool]] = {}  # True: a failed call
        self._open_until: dict[str, float] = {}  # models whose circuit is open (or being tried after its cool-down)

    def check(self, model_id: str, provider: str) -> None:
        """Raise ProviderUnavailableError while the model's circuit is open; after the cool-down let one call through
        to try it (the others stay away until it answers)."""
        if self.threshold <= 0 or model_id not in self._open_until:
            return
        with self._lock:
            until = self._open_until.get(model_id)
            if until is None:
                return
            now = self.clock()
            if now >= until:
                self._open_until[model_id] = now + self.cooldown  # this call tries it; the rest stay away meanwhile
                log.info("circuit breaker: trying %s again after its cool-down", model_id)
                return
        raise ProviderUnavailableError(
            f"{model_id} failed its last {self.threshold} calls, so nothing is sent to it for another "
            f"{until - now:.0f} s (circuit breaker): try again later, or configure a fallback model",
            provider=provider, retryable=False,
        )  # fmt: skip

    def failed(self, model_id: str) -> None:
        if self.threshold <= 0:
            return
        with self._lock:
            recent = self._recent.setdefault(model_id, deque(maxlen=max(2 * self.threshold, 10)))
            recent.append(True)
            tail = list(recent)[-self.threshold :]
            tripped = len(tail) == self.threshold and all(tail) and sum(recent) >= self.RATE * len(recent)
            opened = tripped and model_id not in self._open_until
            if tripped:
                self._open_until[model_id] = self.clock() + self.cooldown
        if opened:
            log.warning("circuit breaker: %s failed its last %d calls; not sending to it for %.0f s",
                        model_id, self.threshold, self.cooldown)  # fmt: skip

    def succeeded(self, model_id: str) -> None:
        if self.threshold <= 0:
            return
        with self._lock:
            self._recent.setdefault(model_id, deque(maxlen=max(2 * self.threshold, 10))).append(False)
            if self._open_until.pop(model_id, None) is not None:  # the call that tried it answered: closed again
                self._recent[model_id].clear()
