"""The one place that sleeps and retries (tenacity underneath).

Retried: errors the provider marked ``retryable`` (408, 409, 429 other than quota exhaustion, 5xx, timeouts and
dropped connections). Never retried: other 4xx, content-policy refusals, authentication errors, exhausted quota.
``Retry-After`` and ``retry-after-ms`` are honoured; otherwise capped exponential backoff with jitter. One overall
deadline bounds every attempt and every wait.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, TypeVar

from ._errors import ProviderError, ProviderUnavailableError
from ._http import deadline as http_deadline

if TYPE_CHECKING:
    from tenacity import RetryCallState

T = TypeVar("T")


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait according to ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
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
        self._end = None if timeout is None else time.monotonic() + timeout

    @property
    def end(self) -> float | None:
        """When the call must be over, as a ``time.monotonic()`` value."""
        return self._end

    def remaining(self) -> float | None:
        return None if self._end is None else self._end - time.monotonic()

    def expired_error(self, provider: str | None) -> ProviderUnavailableError:
        return ProviderUnavailableError(
            f"no answer within the overall timeout of {self.timeout:g} s (all attempts together); "
            "raise `timeout` if the backend is slow",
            provider=provider,
            retryable=False,
        )


RetryHook = Callable[[int, float, BaseException], None]


def _tenacity_kwargs(policy: RetryPolicy, deadline: Deadline, on_retry: RetryHook | None) -> dict[str, object]:
    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return policy.delay(state.attempt_number, error)

    def stop(state: RetryCallState) -> bool:
        if state.attempt_number > policy.max_retries:
            return True
        error = state.outcome.exception() if state.outcome else None
        if getattr(error, "retry_after", None) is not None and state.upcoming_sleep > policy.max_retry_after:
            return True
        left = deadline.remaining()
        return left is not None and state.upcoming_sleep >= left

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            error = state.outcome.exception()
            if error is not None:
                on_retry(state.attempt_number, state.upcoming_sleep, error)

    def retry(state: RetryCallState) -> bool:
        return state.outcome is not None and should_retry(state.outcome.exception())

    return {"wait": wait, "stop": stop, "retry": retry, "before_sleep": before_sleep, "reraise": True}


def _attempt(deadline: Deadline, number: int, provider: str | None) -> Attempt:
    left = deadline.remaining()
    if left is not None and left <= 0:
        raise deadline.expired_error(provider)
    return Attempt(number, left)


# The first attempt runs bare: most calls succeed at once, and building tenacity's machinery costs more than
# the rest of the pipeline. Only after a retryable failure does tenacity take over, first replaying that
# failure so that its wait and stop rules see it like any other.


def _first_failure(error: BaseException, policy: RetryPolicy) -> bool:
    """Whether a failed first attempt should go on to tenacity's loop."""
    return should_retry(error) and policy.max_retries > 0


def call_with_retry(
    fn: Callable[[Attempt], T],
    policy: RetryPolicy,
    deadline: Deadline,
    *,
    provider: str | None = None,
    on_retry: RetryHook | None = None,
) -> T:
    with http_deadline(deadline.end):  # every read and download of every attempt ends by the deadline
        return _call_with_retry(fn, policy, deadline, provider, on_retry)


def _call_with_retry(
    fn: Callable[[Attempt], T], policy: RetryPolicy, deadline: Deadline, provider: str | None, on_retry: RetryHook | None
) -> T:
    try:
        return fn(_attempt(deadline, 1, provider))
    except ProviderError as error:
        if not _first_failure(error, policy):
            _check_deadline(error, deadline, provider)
            raise
        first = error

    from tenacity import Retrying

    retrying = Retrying(sleep=policy.sleep, **_tenacity_kwargs(policy, deadline, on_retry))
    number = 0

    def one_attempt() -> T:
        nonlocal number
        number += 1
        if number == 1:
            raise first
        return fn(_attempt(deadline, number, provider))

    try:
        result: T = retrying(one_attempt)
    except ProviderError as error:
        _check_deadline(error, deadline, provider)
        raise
    return result


def _check_deadline(error: ProviderError, deadline: Deadline, provider: str | None) -> None:
    """A timeout that came from the call's deadline says so, whatever layer noticed it."""
    left = deadline.remaining()
    if left is not None and left <= 0 and isinstance(error, ProviderUnavailableError) and error.retryable:
        raise deadline.expired_error(provider) from error


async def acall_with_retry(
    fn: Callable[[Attempt], Awaitable[T]],
    policy: RetryPolicy,
    deadline: Deadline,
    *,
    provider: str | None = None,
    on_retry: RetryHook | None = None,
) -> T:
    with http_deadline(deadline.end):
        return await _acall_with_retry(fn, policy, deadline, provider, on_retry)


async def _acall_with_retry(
    fn: Callable[[Attempt], Awaitable[T]],
    policy: RetryPolicy,
    deadline: Deadline,
    provider: str | None,
    on_retry: RetryHook | None,
) -> T:
    try:
        return await fn(_attempt(deadline, 1, provider))
    except ProviderError as error:
        if not _first_failure(error, policy):
            _check_deadline(error, deadline, provider)
            raise
        first = error

    from tenacity import AsyncRetrying

    retrying = AsyncRetrying(sleep=policy.async_sleep, **_tenacity_kwargs(policy, deadline, on_retry))
    number = 0

    async def one_attempt() -> T:
        nonlocal number
        number += 1
        if number == 1:
            raise first
        return await fn(_attempt(deadline, number, provider))

    try:
        result: T = await retrying(one_attempt)
    except ProviderError as error:
        _check_deadline(error, deadline, provider)
        raise
    return result
