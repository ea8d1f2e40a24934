"""The in-process fake provider and the client's test seams: provider objects and ledger objects passed in, no
server, no patching of the SDK's insides."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import pytest

import genai_sdk as genai
from genai_sdk.credits._memory import MemoryLedger
from genai_sdk.testing import FakeProvider

from .conftest import fast


def _client(fake: FakeProvider, **settings: object) -> genai.Client:
    client = fast(genai.Client(image="fake:painter", ledger="memory://", policy="off", providers={"fake": fake}, **settings))  # type: ignore[arg-type]  # settings of several types
    assert isinstance(client, genai.Client)
    return client


def test_an_unscripted_call_makes_what_was_asked_and_is_charged() -> None:
    fake = FakeProvider()
    client = _client(fake)
    result = client.images.generate("a cat", n=3, size="96x64")
    assert [image.size for image in result.images] == [(96, 64)] * 3
    assert result.cost.usd == Decimal("0.03") and client.credits.history()[0].credits == -3
    [call] = fake.calls
    assert (call.operation, call.n, call.attempt, call.request.prompt) == ("images.generate", 3, 1, "a cat")


def test_scripted_errors_go_through_the_real_retry_and_accounting() -> None:
    fake = FakeProvider().script(
        genai.RateLimitError("slow down", provider="fake", retryable=True),
        genai.ProviderUnavailableError("a hiccup", provider="fake", retryable=True),
        1,
    )
    client = _client(fake)
    result = client.images.generate("a cat")
    assert len(result.images) == 1 and [c.attempt for c in fake.calls] == [1, 2, 3]
    assert len({c.idempotency_key for c in fake.calls}) == 1  # one backend call, three attempts
    fake.script(genai.AuthenticationError("no", provider="fake"))
    with pytest.raises(genai.AuthenticationError):
        client.images.generate("a cat")
    assert [e.kind for e in client.credits.history()] == ["charge"] and client.credits.reserved() == 0


def test_a_scripted_function_sees_the_request() -> None:
    fake = FakeProvider().script(lambda request, n: [FakeProvider._picture(request, 0)] * n)
    result = _client(fake).images.generate("a cat", n=2, size="32x32")
    assert len(result.images) == 2 and result.images[0].size == (32, 32)


def test_the_fake_works_async_and_is_cancelled_cleanly() -> None:
    async def run() -> None:
        fake = FakeProvider(delay=5.0)
        async with genai.AsyncClient(image="fake:painter", ledger="memory://", policy="off", providers={"fake": fake}) as client:
            task = asyncio.create_task(client.images.generate("a cat"))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await client.credits.reserved() == 0 and await client.credits.history() == []

    asyncio.run(run())


def test_a_ledger_object_is_used_as_it_is() -> None:
    ledger = MemoryLedger()
    fake = FakeProvider()
    client = genai.Client(image="fake:painter", ledger=ledger, policy="off", providers={"fake": fake})
    client.credits.grant(10)
    client.images.generate("a cat")
    assert ledger.balance("default") == 9  # the same object: what the client did is in it
    with pytest.raises(genai.ConfigError, match="is not a ledger"):
        genai.Client(ledger=object())  # type: ignore[arg-type]  # a wrong type on purpose: it must be refused
    with pytest.raises(genai.ConfigError, match="providers="):
        genai.Client(providers={1: fake})  # type: ignore[dict-item]  # a wrong type on purpose


def test_retries_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeProvider().script(genai.ProviderUnavailableError("a hiccup (503)", provider="fake", retryable=True))
    client = _client(fake, max_retries=1)
    with caplog.at_level(logging.DEBUG, logger="genai_sdk"):
        client.images.generate("a cat")
    messages = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "genai_sdk"]
    assert ("INFO", "fake: attempt 1 failed (a hiccup (503)); retrying in " + messages[1][1].rsplit(" in ", 1)[1]) in messages
    assert [level for level, m in messages if "attempt" in m and "s left" in m] == ["DEBUG", "DEBUG"]
    caplog.clear()
    fake.script(*[genai.ProviderUnavailableError("down", provider="fake", retryable=True)] * 2)
    with caplog.at_level(logging.INFO, logger="genai_sdk"), pytest.raises(genai.ProviderUnavailableError):
        client.images.generate("a cat")
    assert any(r.getMessage() == "fake: giving up after attempt 2: down" for r in caplog.records)


def test_async_credits_keep_a_blocking_ledger_off_the_event_loop() -> None:
    import threading

    class Spy(MemoryLedger):
        blocking = True  # as SQLite and PostgreSQL ledgers are
        threads: set[int] = set()

        def balance(self, account: str) -> Decimal:
            self.threads.add(threading.get_ident())
            return super().balance(account)

        def history(self, account: str) -> list[genai.LedgerEntry]:
            self.threads.add(threading.get_ident())
            return super().history(account)

    async def run() -> int:
        async with genai.AsyncClient(ledger=Spy(), policy="off") as client:
            await client.credits.grant(5)
            assert await client.credits.balance() == 5 and len(await client.credits.history()) == 1
        return threading.get_ident()

    loop_thread = asyncio.run(run())
    assert Spy.threads and loop_thread not in Spy.threads


def test_a_calls_warnings_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeProvider().script(1)
    client = _client(fake)
    with caplog.at_level(logging.WARNING, logger="genai_sdk"):
        result = client.images.generate("a cat", n=2)  # one picture made of two asked for: a warning
    [record] = [r for r in caplog.records if r.name == "genai_sdk"]
    assert result.warnings and all(w in record.getMessage() for w in result.warnings)


@pytest.mark.parametrize("asynchronous", [False, True])
def test_on_progress_raising_after_the_charge_is_in_the_history(asynchronous: bool) -> None:
    """The call was charged when on_progress raised at "done": the caller got nothing, and the history says so."""

    def stop_at_done(progress: genai.Progress) -> None:
        if progress.stage == "done":
            raise KeyError("the application's own error")

    fake = FakeProvider()
    if asynchronous:

        async def run() -> list[str]:
            async with genai.AsyncClient(image="fake:painter", ledger="memory://", policy="off", providers={"fake": fake}) as client:
                with pytest.raises(KeyError):
                    await client.images.generate("a cat", on_progress=stop_at_done)
                return [e.kind for e in await client.credits.history()]

        kinds = asyncio.run(run())
    else:
        client = _client(fake)
        with pytest.raises(KeyError):
            client.images.generate("a cat", on_progress=stop_at_done)
        kinds = [e.kind for e in client.credits.history()]
    assert kinds == ["charge", "cancelled"]
