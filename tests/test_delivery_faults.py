"""Answers that arrive wrong: trickled, oversized, lost, pointing at private addresses, or downloads that fail.
The call's timeout is a deadline, result URLs are fetched from public addresses only, a failed download is
downloaded again (never generated again), and work a backend billed but the caller did not get is recorded."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import genai_sdk as genai
from genai_sdk._http import AddressGuard, fetch, transport
from genai_sdk.testing import Emulator

from .conftest import fast

URL: dict[str, dict[str, object]] = {"openai": {"response_format": "url"}}
NONE: dict[str, dict[str, object]] = {}  # no provider options
FLUX = "replicate:black-forest-labs/flux-schnell"


def _client(model: str = "openai:dall-e-2", **settings: Any) -> genai.Client:
    c = fast(genai.Client(image=model, ledger="memory://", policy="off", **settings))
    return c


def _spent(client: genai.Client) -> list[genai.LedgerEntry]:
    return [e for e in client.credits.history() if e.kind == "spent"]


# -- the timeout is a deadline ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("operation", "options"), [("images.generate", NONE), ("files.get", URL)])
def test_a_trickled_answer_ends_at_the_deadline(genai_emulator: Emulator, operation: str, options: dict[str, dict[str, object]]) -> None:
    client = _client()
    genai_emulator.fail(operation, "trickle", delay=0.2, times=5)  # 16 bytes every 0.2 s: minutes for an answer
    started = time.monotonic()
    with pytest.raises(genai.ProviderUnavailableError, match="timeout"):
        client.images.generate("a cat", size="256x256", timeout=1.5, provider_options=options)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5 + 0.5, f"the call outlived its timeout by {elapsed - 1.5:.2f} s"
    assert client.credits.reserved() == 0
    # The answer was a 200: the image was made and billed; the caller got nothing, so it is recorded as spent.
    assert len(_spent(client)) == 1 and len(genai_emulator.calls("images.generate")) == 1


def test_a_trickled_answer_ends_at_the_deadline_async(genai_emulator: Emulator) -> None:
    async def run() -> float:
        async with genai.AsyncClient(image="openai:dall-e-2", ledger="memory://", policy="off") as client:
            genai_emulator.fail("images.generate", "trickle", delay=0.2, times=2)
            genai_emulator.fail("files.get", "trickle", delay=0.2, times=2)
            worst = 0.0
            for options in (NONE, URL):
                started = time.monotonic()
                with pytest.raises(genai.ProviderUnavailableError):
                    await client.images.generate("a cat", size="256x256", timeout=1.2, provider_options=options)
                worst = max(worst, time.monotonic() - started - 1.2)
            assert await client.credits.reserved() == 0
            return worst

    assert asyncio.run(run()) < 0.5


def test_a_trickled_replicate_poll_ends_at_the_deadline_and_cancels(genai_emulator: Emulator) -> None:
    client = _client(FLUX)
    genai_emulator.replicate.max_wait = 0  # the create answers at once, so the SDK polls
    genai_emulator.replicate.job_seconds = 0.5
    genai_emulator.fail("replicate.predictions.get", "trickle", delay=0.2, times=50)
    started = time.monotonic()
    with pytest.raises(genai.ProviderUnavailableError):
        client.images.generate("a cat", timeout=1.5)
    assert time.monotonic() - started < 2.0
    # The prediction exists and the caller gave up on it: it is canceled, not left running.
    assert len(genai_emulator.calls("replicate.predictions.cancel")) == 1
    assert client.credits.reserved() == 0


# -- answers are read under a cap -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["huge_body", "huge_declared"])
def test_an_oversized_answer_is_refused_while_read(genai_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    from genai_sdk.providers import openai as provider

    monkeypatch.setattr(provider, "MAX_ANSWER_BYTES", 2_000_000)
    client = _client()
    genai_emulator.fail("images.generate", kind, size=50_000_000)
    with pytest.raises(genai.ProviderError, match="cap of 2,000,000 bytes") as info:
        client.images.generate("a cat", size="256x256")
    assert not info.value.retryable
    assert client.credits.reserved() == 0 and len(_spent(client)) == 1


def test_an_oversized_replicate_answer_is_refused(genai_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from genai_sdk.providers import replicate as provider

    monkeypatch.setattr(provider, "MAX_ANSWER_BYTES", 1_000_000)
    client = _client(FLUX)
    genai_emulator.fail("replicate.models.get", "huge_body", size=20_000_000)
    with pytest.raises(genai.ProviderError, match="cap of 1,000,000 bytes"):
        client.images.generate("a cat")
    assert genai_emulator.calls("replicate.predictions.create") == []


# -- result URLs from public addresses only ----------------------------------------------------------------------


@pytest.mark.parametrize(("model", "operation", "options"), [
    ("openai:dall-e-2", "images.generate", URL), (FLUX, "replicate.predictions.create", NONE),
])  # fmt: skip
def test_a_result_url_at_a_private_address_is_not_fetched(
    genai_emulator: Emulator, model: str, operation: str, options: dict[str, dict[str, object]]
) -> None:
    client = _client(model)
    genai_emulator.fail(operation, "private_url")
    with pytest.raises(genai.ProviderError, match=r"169\.254\.169\.254 is a link-local address") as info:
        client.images.generate("a cat", provider_options=options)
    assert not info.value.retryable
    assert len(genai_emulator.calls(operation)) == 1
    assert client.credits.reserved() == 0 and len(_spent(client)) == 1


def test_a_redirect_to_a_private_address_is_not_followed(genai_emulator: Emulator) -> None:
    client = _client()
    genai_emulator.fail("files.get", "redirect_private")
    with pytest.raises(genai.ProviderError, match=r"10\.0\.0\.1 is a private address"):
        client.images.generate("a cat", size="256x256", provider_options=URL)
    assert len(genai_emulator.calls("images.generate")) == 1


def test_the_address_rules() -> None:
    public = AddressGuard.for_base_url("https://api.openai.com/v1")
    for url, why in [
        ("http://example.com/a.png", "https only"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://10.1.2.3/a.png", "private"),
        ("https://192.168.1.1/a.png", "private"),
        ("https://[::1]/a.png", "loopback"),
        ("https://[::ffff:10.0.0.1]/a.png", "private"),
        ("https://224.0.0.1/a.png", "multicast"),
        ("https://0.0.0.0/a.png", "unspecified"),
        ("https://localhost/a.png", "loopback"),
        ("file:///etc/passwd", "not an http"),
    ]:
        with pytest.raises(genai.ProviderError, match=why):
            public.check_url(url, "openai")
    public.check_url("https://8.8.8.8/a.png", "openai")  # a public address is fine
    with pytest.raises(genai.ProviderError, match="localhost resolves to 127.0.0.1, a loopback address"):
        public.vet("localhost", 443, "openai")  # a name is checked by what it resolves to
    emulated = AddressGuard.for_base_url("http://127.0.0.1:8080")
    emulated.check_url("http://127.0.0.1:9/a.png", "openai")  # loopback, over http, only for a loopback base URL
    with pytest.raises(genai.ProviderError, match="private"):
        emulated.check_url("http://10.0.0.1/a.png", "openai")
    mirror = AddressGuard.for_base_url("https://api.openai.com", ["10.1.0.0/16", "*.corp.example", "localhost"])
    mirror.check_url("http://10.1.2.3/a.png", "openai")
    mirror.check_url("https://images.corp.example/a.png", "openai")
    assert mirror.vet("localhost", 443, "openai") == "localhost"
    with pytest.raises(genai.ProviderError, match="private"):
        mirror.check_url("https://10.2.0.1/a.png", "openai")


def test_trusted_hosts_let_a_private_mirror_through(genai_emulator: Emulator) -> None:
    import httpx

    data = b"\x89PNG-not-really"
    url = genai_emulator._store_file(data, ".png")
    public = AddressGuard.for_base_url("https://api.replicate.com")
    with httpx.Client(transport=transport(httpx, asynchronous=False, limit=1000, provider="replicate", guard=public)) as http:
        with pytest.raises(genai.ProviderError, match="127.0.0.1 is a loopback address"):
            fetch(httpx, http, url, public, provider="replicate", timeout=5)
        with pytest.raises(genai.ProviderError, match="https only"):
            fetch(httpx, http, url.replace("127.0.0.1", "localhost.example"), public, provider="replicate", timeout=5)
    # A name is checked after it is resolved, when connecting: whatever the URL says, loopback is refused.
    named = AddressGuard.for_base_url("https://api.replicate.com", ["localhost.example"])
    local = url.replace("127.0.0.1", "localhost")
    with httpx.Client(transport=transport(httpx, asynchronous=False, limit=1000, provider="replicate", guard=public)) as http:
        with pytest.raises(genai.ProviderError, match="localhost is a loopback address"):
            fetch(httpx, http, local, public, provider="replicate", timeout=5)
    assert named.trusts_name("LocalHost.Example.")
    trusted = AddressGuard.for_base_url("https://api.replicate.com", ["127.0.0.1"])
    with httpx.Client(transport=transport(httpx, asynchronous=False, limit=1000, provider="replicate", guard=trusted)) as http:
        assert fetch(httpx, http, url, trusted, provider="replicate", timeout=5) == data
    with pytest.raises(genai.ConfigError, match="trusted_hosts entry"):
        genai.Client(trusted_hosts="bad host!")
    assert genai.Client(trusted_hosts="mirror.local, 10.0.0.0/8").settings.trusted_hosts == ("mirror.local", "10.0.0.0/8")


# -- a failed download is downloaded again, never generated again ----------------------------------------------


def test_a_download_that_fails_once_is_downloaded_again(genai_emulator: Emulator) -> None:
    client = _client()
    genai_emulator.fail("files.get", "server_error")
    result = client.images.generate("a cat", size="256x256", provider_options=URL)
    assert len(result.images) == 1
    assert len(genai_emulator.calls("images.generate")) == 1  # one generation, paid once
    assert [e.kind for e in client.credits.history()] == ["charge"]


@pytest.mark.parametrize("kind", ["not_found", "lost_answer", "html"])
def test_a_download_that_cannot_succeed_is_spent_not_regenerated(genai_emulator: Emulator, kind: str) -> None:
    client = _client()
    client.credits.grant(100)
    genai_emulator.fail("files.get", kind, times=10)
    with pytest.raises(genai.ProviderError) as info:
        client.images.generate("a cat", size="256x256", provider_options=URL)
    assert not info.value.retryable
    assert len(genai_emulator.calls("images.generate")) == 1
    [entry] = _spent(client)
    assert entry.credits == -client.images.estimate("a cat", size="256x256").credits
    assert client.credits.balance() == 100 + entry.credits and client.credits.reserved() == 0


def test_a_replicate_download_that_fails_follows_the_same_prediction(genai_emulator: Emulator) -> None:
    client = _client(FLUX)
    genai_emulator.fail("files.get", "server_error", times=3)  # more than one attempt's downloads can absorb
    result = client.images.generate("a cat")
    assert len(result.images) == 1
    assert len(genai_emulator.calls("replicate.predictions.create")) == 1  # never run twice
    assert [e.kind for e in client.credits.history()] == ["charge"]


def test_a_replicate_download_that_never_succeeds_is_spent(genai_emulator: Emulator) -> None:
    client = _client(FLUX)
    genai_emulator.fail("files.get", "not_found", times=50)
    with pytest.raises(genai.ProviderError):
        client.images.generate("a cat")
    assert len(genai_emulator.calls("replicate.predictions.create")) == 1
    assert len(_spent(client)) == 1 and client.credits.reserved() == 0


def test_failed_polls_cancel_the_prediction(genai_emulator: Emulator) -> None:
    client = _client(FLUX, max_retries=0)
    genai_emulator.replicate.max_wait = 0
    genai_emulator.replicate.job_seconds = 5
    genai_emulator.fail("replicate.predictions.get", "bad_request", times=50)  # a poll that cannot succeed
    with pytest.raises(genai.GenAIError):
        client.images.generate("a cat", timeout=20)
    [cancel] = genai_emulator.calls("replicate.predictions.cancel")
    assert genai_emulator.replicate.status_counts().get("canceled") == 1, cancel


def test_polls_that_fail_now_and_then_are_tried_again(genai_emulator: Emulator) -> None:
    client = _client(FLUX, max_retries=0)
    genai_emulator.replicate.max_wait = 0
    genai_emulator.replicate.job_seconds = 0.6
    genai_emulator.fail("replicate.predictions.get", "server_error", times=2)
    assert len(client.images.generate("a cat").images) == 1
    assert len(genai_emulator.calls("replicate.predictions.create")) == 1
    assert genai_emulator.calls("replicate.predictions.cancel") == []


# -- Ctrl-C in synchronous code cancels what it started ---------------------------------------------------------


@pytest.mark.parametrize("wait", [None, 0])  # blocked in the create ("Prefer: wait"), or polling
def test_ctrl_c_cancels_the_replicate_prediction(genai_emulator: Emulator, wait: float | None) -> None:
    import os
    import signal
    import threading

    client = _client(FLUX)
    genai_emulator.replicate.job_seconds = 5
    genai_emulator.replicate.max_wait = wait
    timer = threading.Timer(0.6, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            client.images.generate("a cat", timeout=30)
    finally:
        timer.cancel()
    assert len(genai_emulator.replicate.predictions) == 1  # (a create still waiting is recorded when it answers)
    assert len(genai_emulator.calls("replicate.predictions.cancel")) == 1
    assert genai_emulator.replicate.status_counts() == {"canceled": 1}
    assert client.credits.reserved() == 0 and client.credits.history() == []


def test_twins_whose_create_answer_is_lost_each_find_their_own(genai_emulator: Emulator) -> None:
    """Two calls with the same inputs at once, one of whose create answers is lost: the lookup waits for the
    other's create, so each follows its own prediction (none is delivered twice, none is left unrecorded)."""
    client = _client(FLUX)
    genai_emulator.replicate.job_seconds = 0.4  # both creates wait ("Prefer: wait") side by side
    genai_emulator.fail("replicate.predictions.create", "lost_answer")
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: client.images.generate("a cat"), range(2)))
    ids = [r.request_ids[0] for r in results]
    assert len(set(ids)) == 2 and set(ids) == set(genai_emulator.replicate.predictions)
    assert [e.kind for e in client.credits.history()] == ["charge", "charge"]


def test_a_transport_failure_keeps_its_cause(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    import httpx

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_test_token_0000")
    monkeypatch.setenv("REPLICATE_BASE_URL", f"http://127.0.0.1:{port}")
    client = _client(FLUX, max_retries=0)
    with pytest.raises(genai.ProviderUnavailableError, match="could not reach Replicate") as info:
        client.images.generate("a cat", timeout=5)
    assert isinstance(info.value.__cause__, httpx.ConnectError)  # the TLS, proxy or socket failure, as it was
    assert "r8_test_token" not in str(info.value)


def test_an_openai_transport_failure_keeps_its_cause(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    import openai

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-000000")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    client = _client(max_retries=0)
    with pytest.raises(genai.ProviderUnavailableError, match="could not reach OpenAI") as info:
        client.images.generate("a cat", size="256x256", timeout=5)
    assert isinstance(info.value.__cause__, openai.APIConnectionError)
    assert "sk-test-key" not in str(info.value)


def test_a_lost_create_answer_never_takes_an_earlier_twin(genai_emulator: Emulator) -> None:
    """A call with the same inputs made a moment before (and already delivered) is not taken for this one's."""
    client = _client(FLUX)
    first = client.images.generate("a cat").request_ids[0]
    genai_emulator.fail("replicate.predictions.create", "lost_answer")
    second = client.images.generate("a cat").request_ids[0]
    assert second != first and set(genai_emulator.replicate.predictions) == {first, second}
