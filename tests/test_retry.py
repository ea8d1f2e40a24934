"""Retries happen in one place, honour Retry-After, never retry what cannot succeed, and respect one deadline."""

import time
from email.utils import formatdate

import pytest

import genai_sdk as genai
from genai_sdk._retry import RetryPolicy, parse_retry_after, should_retry
from genai_sdk.testing import Emulator

from .conftest import fast


def _retry_delays(progress: list[genai.Progress]) -> list[float]:
    return [float(p.message.rsplit("retrying in ", 1)[1].split()[0]) for p in progress if p.stage == "retrying"]


def test_retry_after_seconds_is_honoured(client: genai.Client, genai_emulator: Emulator) -> None:
    genai_emulator.fail("images.generate", "rate_limit", times=1, retry_after=1)
    seen: list[genai.Progress] = []
    started = time.monotonic()
    client.images.generate("a couch", size="256x256", on_progress=seen.append)
    assert time.monotonic() - started >= 1.0
    assert _retry_delays(seen) == [1.0]
    assert len(genai_emulator.calls()) == 2


def test_retry_after_ms_wins_over_retry_after(client: genai.Client, genai_emulator: Emulator) -> None:
    genai_emulator.fail("images.generate", "rate_limit", times=1, retry_after=30, retry_after_ms=150)
    seen: list[genai.Progress] = []
    client.images.generate("a couch", size="256x256", on_progress=seen.append)
    assert _retry_delays(seen) == [0.15]


def test_retry_after_http_date(client: genai.Client, genai_emulator: Emulator) -> None:
    genai_emulator.fail("images.generate", "rate_limit", times=1, retry_after=2, retry_after_date=True)
    seen: list[genai.Progress] = []
    started = time.monotonic()
    client.images.generate("a couch", size="256x256", on_progress=seen.append)
    (delay,) = _retry_delays(seen)
    assert 0.0 < delay <= 2.0  # an HTTP date has one-second resolution
    assert time.monotonic() - started >= delay


@pytest.mark.parametrize(
    ("fault", "error", "retryable"),
    [
        ("bad_request", genai.ProviderError, False),
        ("unauthorized", genai.AuthenticationError, False),
        ("quota", genai.RateLimitError, False),
    ],
)
def test_no_retry_for_errors_that_cannot_succeed(
    client: genai.Client, genai_emulator: Emulator, fault: str, error: type[genai.ProviderError], retryable: bool
) -> None:
    genai_emulator.fail("images.generate", fault, times=5)
    with pytest.raises(error) as info:
        client.images.generate("a couch", size="256x256")
    assert info.value.retryable is retryable
    assert len(genai_emulator.calls()) == 1


@pytest.mark.parametrize("fault", ["rate_limit", "server_error", "unavailable", "conflict", "drop"])
def test_transient_failures_are_retried(client: genai.Client, genai_emulator: Emulator, fault: str) -> None:
    genai_emulator.fail("images.generate", fault, times=2)
    result = client.images.generate("a couch", size="256x256")
    assert len(result.images) == 1
    assert len(genai_emulator.calls()) == 3


def test_rate_limit_after_retries(client: genai.Client, genai_emulator: Emulator) -> None:
    genai_emulator.fail("images.generate", "rate_limit", times=10, retry_after_ms=10)
    with pytest.raises(genai.RateLimitError) as info:
        client.images.generate("a couch", size="256x256")
    assert info.value.status == 429 and info.value.retryable
    assert len(genai_emulator.calls()) == 3


def test_deadline_bounds_all_attempts(genai_emulator: Emulator) -> None:
    client = fast(genai.Client(image="openai:dall-e-2", max_retries=5))
    genai_emulator.fail("images.generate", "slow", times=10, delay=2.0)
    started = time.monotonic()
    with pytest.raises(genai.ProviderUnavailableError):
        client.images.generate("a couch", size="256x256", timeout=0.8)
    elapsed = time.monotonic() - started
    assert elapsed < 1.9, f"the 0.8 s deadline was not respected ({elapsed:.2f} s)"
    # The request went out and its answer never came: OpenAI may have made (and billed) the picture, so the attempt
    # is recorded as spent, never as a charge for a result.
    assert [e.kind for e in client.credits.history()] == ["spent"] and client.credits.reserved() == 0


def test_retry_after_beyond_the_deadline_is_not_waited_for(genai_emulator: Emulator) -> None:
    client = fast(genai.Client(image="openai:dall-e-2"))
    genai_emulator.fail("images.generate", "rate_limit", times=1, retry_after=30)
    started = time.monotonic()
    with pytest.raises(genai.RateLimitError):
        client.images.generate("a couch", size="256x256", timeout=5)
    assert time.monotonic() - started < 4
    assert len(genai_emulator.calls()) == 1


def test_max_retries_zero_means_one_try(genai_emulator: Emulator) -> None:
    client = genai.Client(image="openai:dall-e-2", max_retries=0)
    genai_emulator.fail("images.generate", "server_error", times=1)
    with pytest.raises(genai.ProviderUnavailableError):
        client.images.generate("a couch", size="256x256")
    assert len(genai_emulator.calls()) == 1


def test_parse_retry_after() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "3"}) == 0.25
    assert parse_retry_after({"Retry-After": formatdate(1000.0 + 7, usegmt=True)}, now=1000.0) == 7.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({"Retry-After": "-4"}) == 0.0
    assert parse_retry_after({}) is None and parse_retry_after(None) is None


def test_backoff_is_capped_exponential_with_jitter() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=4.0, jitter=0.25)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        delays = [policy.delay(attempt, None) for _ in range(200)]
        assert all(0.75 * ceiling <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1


def test_should_retry_only_retryable_provider_errors() -> None:
    assert should_retry(genai.ProviderUnavailableError("x"))
    assert should_retry(genai.RateLimitError("x"))
    assert not should_retry(genai.RateLimitError("x", retryable=False))
    assert not should_retry(genai.AuthenticationError("x"))
    assert not should_retry(genai.ContentPolicyError("x"))
    assert not should_retry(ValueError("x"))
