"""The one place that sleeps and retries: a plain loop, as openai-python's own client has (decide whether to retry,
how long to wait, then wait), in about forty lines that read top to bottom.

Retried: errors the provider marked ``retryable`` (408, 409, 429 other than quota exhaustion, 5xx, timeouts and
dropped connections). Never retried: other 4xx, content-policy refusals, authentication errors, exhausted quota.
``Retry-After`` and ``retry-after-ms`` are honoured; otherwise capped exponential backoff with jitter. One overall
deadline bounds every attempt and every wait.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TypeVar

from ._errors import ProviderError, ProviderUnavailableError
from ._http import deadline as http_deadline

T = TypeVar("T")
log = logging.getLogger("genai_sdk")


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait according to ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    if millis := lowered.get("retry-after-ms"):
        with contextlib.suppress(ValueError):
            return max(0.0, float(millis) / 1000)
    if not (value := lowered.get("retry-after")):
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


async def _asyncio_sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


@dataclass(frozen=True)
class Attempt:
    number: int  # 1 for the first try
    timeout: float | None  # seconds left under the overall deadline, for this attempt


@dataclass
class RetryPolicy:
    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0  # a longer Retry-After is not waited for: the error is raised at once
    jitter: float = 0.25
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    async_sleep: Callable[[float], Awaitable[None]] = field(default=_asyncio_sleep, repr=False)

    def delay(self, attempt: int, error: BaseException | None) -> float:
        """Seconds to wait after failed attempt number ``attempt``."""
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, (int, float)):
            return float(retry_after)
        backoff: float = min(self.max_delay, self.initial_delay * 2 ** (attempt - 1))
        return float(backoff * (1 - self.jitter * random.random()))


def should_retry(error: BaseException | None) -> bool:
    return isinstance(error, ProviderError) and error.retryable


class Deadline:
    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self.end = None if timeout is None else time.monotonic() + timeout  # when the call must be over (monotonic)

    def remaining(self) -> float | None:
        return None if self.end is None else self.end - time.monotonic()

    def expired_error(self, provider: str | None) -> ProviderUnavailableError:
        return ProviderUnavailableError(
            f"no answer within the overall timeout of {self.timeout:g} s (all attempts together); "
            "raise `timeout` if the backend is slow", provider=provider, retryable=False,
        )  # fmt: skip


RetryHook = Callable[[int, float, BaseException], None]


def _attempt(deadline: Deadline, number: int, provider: str | None) -> Attempt:
    left = deadline.remaining()
    if left is not None and left <= 0:
        raise deadline.expired_error(provider)
    log.debug("%s: attempt %d, %s s left", provider, number, left)
    return Attempt(number, left)


def _next_wait(error: ProviderError, number: int, policy: RetryPolicy, deadline: Deadline) -> float | None:
    """Seconds to wait before attempt ``number + 1``, or None to give up: the error is not worth retrying, the
    retries are spent, the server asked for a longer wait than the policy accepts, or the deadline comes first."""
    if not should_retry(error) or number > policy.max_retries:
        return None
    wait = policy.delay(number, error)
    if error.retry_after is not None and wait > policy.max_retry_after:
        return None
    left = deadline.remaining()
    return None if left is not None and wait >= left else wait


def _after_failure(
    error: ProviderError, number: int, policy: RetryPolicy, deadline: Deadline, provider: str | None,
    on_retry: RetryHook | None,
) -> float:
    """The wait before the next attempt, told to the log and ``on_retry``; or the error raised, to give up. A timeout
    that came from the call's deadline is raised as such, whatever layer noticed it."""
    wait = _next_wait(error, number, policy, deadline)
    if wait is None:
        left = deadline.remaining()
        if left is not None and left <= 0 and isinstance(error, ProviderUnavailableError) and error.retryable:
            log.info("%s: attempt %d ran into the call's deadline", provider, number)
            raise deadline.expired_error(provider) from error
        if number > 1 or should_retry(error):
            log.info("%s: giving up after attempt %d: %s", provider, number, error)
        raise error
    log.info("%s: attempt %d failed (%s); retrying in %.2f s", provider, number, error, wait)
    if on_retry is not None:
        on_retry(number, wait, error)
    return wait


def call_with_retry(
    fn: Callable[[Attempt], T], policy: RetryPolicy, deadline: Deadline, *, provider: str | None = None,
    on_retry: RetryHook | None = None,
) -> T:  # fmt: skip
    """Call ``fn`` until it succeeds, its error is not worth retrying, the retries are spent, or the deadline passes.
    Every read and download of every attempt ends by the deadline."""
    with http_deadline(deadline.end):
        number = 1
        while True:
            attempt = _attempt(deadline, number, provider)
            try:
                return fn(attempt)
            except ProviderError as error:
                wait = _after_failure(error, number, policy, deadline, provider, on_retry)
            policy.sleep(wait)
            number += 1


async def acall_with_retry(
    fn: Callable[[Attempt], Awaitable[T]], policy: RetryPolicy, deadline: Deadline, *, provider: str | None = None,
    on_retry: RetryHook | None = None,
) -> T:  # fmt: skip
    """As :func:`call_with_retry`, waiting on the event loop."""
    with http_deadline(deadline.end):
        number = 1
        while True:
            attempt = _attempt(deadline, number, provider)
            try:
                return await fn(attempt)
            except ProviderError as error:
                wait = _after_failure(error, number, policy, deadline, provider, on_retry)
            await policy.async_sleep(wait)
            number += 1
