"""The fault suite: many requests against an emulator that spoils 30% of its answers with every kind of fault it
knows. Every request must end in a success whose images decode or in a typed error, within its timeout (plus
0.5 s); the ledger's charges must equal the successes, nothing may stay reserved, and every generation the backend
made (and would bill) must be in the ledger, as a charge or as spent."""

from __future__ import annotations

import asyncio
import gc
import random
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

import pytest

import genai_sdk as genai
from genai_sdk.testing import CHAOS_OPENAI_IMAGES, CHAOS_REPLICATE, Emulator

from .conftest import fast

RATE = 0.3
TIMEOUT = 2.0
SLACK = 0.5


@pytest.fixture(autouse=True)
def _fair_turns() -> Iterator[None]:
    """The emulator runs in this process: dozens of its threads (trickling answers, drawing pictures) take turns at
    the interpreter lock with the SDK's event loop or threads. Shorter turns keep a deadline from being noticed late
    merely because the emulator's threads held the lock, as they would not from another process."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    # Late in a long test run the process holds millions of objects (models, tensors, hypothesis' data): a full
    # garbage collection over them pauses every thread for a good part of a second. Frozen, they are not scanned.
    gc.freeze()
    yield
    gc.unfreeze()
    sys.setswitchinterval(before)


@dataclass
class Outcome:
    elapsed: float
    result: genai.ImageResult | None = None
    error: BaseException | None = None


def _check(outcomes: list[Outcome], asked: list[int]) -> tuple[int, Decimal]:
    """Each request's own promises; returns the successes and what they cost."""
    successes, cost = 0, Decimal(0)
    for outcome, n in zip(outcomes, asked, strict=True):
        assert outcome.elapsed <= TIMEOUT + SLACK, f"a call outlived its timeout by {outcome.elapsed - TIMEOUT:.2f} s"
        if outcome.result is None:
            assert isinstance(outcome.error, genai.GenAIError), repr(outcome.error)
            continue
        assert len(outcome.result.images) == n
        for image in outcome.result.images:
            image.to_pil().load()
        successes += 1
        cost += outcome.result.cost.credits
    return successes, cost


def _books_agree(history: list[genai.LedgerEntry], successes: int, cost: Decimal, billable: Decimal) -> None:
    """The charges are the successes and their costs; what the ledger holds (charges and spent lines) covers every
    image the backend made. Compared in credits: a call whose attempts lost two generations has one spent line."""
    charges = [e for e in history if e.kind == "charge"]
    recorded = -sum(e.credits for e in history if e.kind in ("charge", "spent"))
    assert len(charges) == successes and -sum(e.credits for e in charges) == cost
    assert recorded >= billable, f"the backend made {billable} credits' worth, the ledger holds {recorded}"


def _openai_billable(emulator: Emulator) -> Decimal:
    """What the images the emulator made cost: requests answered 200 (spoilt or not), or lost after they were made,
    at the price of a 256x256 dall-e-2 image each."""
    per_image = genai.Client(ledger="memory://").images.estimate("x", model="openai:dall-e-2", size="256x256").credits
    made = sum(int(r.json.get("n", 1)) for r in emulator.calls("images.generate") if r.status == 200 and r.fault != "no_images")
    return made * per_image


def _draws(count: int, seed: int) -> list[tuple[int, dict[str, dict[str, str]]]]:
    draw = random.Random(seed)
    return [(draw.choice((1, 1, 2)), {"openai": {"response_format": "url"}} if draw.random() < 0.5 else {}) for _ in range(count)]


def _one(client: genai.Client, n: int, options: dict[str, dict[str, str]], model: str = "openai:dall-e-2") -> Outcome:
    started = time.monotonic()
    try:
        result = client.images.generate("a lighthouse at dusk", n=n, size="256x256", model=model, timeout=TIMEOUT,
                                        provider_options=options)  # fmt: skip
    except BaseException as error:  # noqa: BLE001 - anything else than a typed error fails the check
        return Outcome(time.monotonic() - started, error=error)
    return Outcome(time.monotonic() - started, result=result)


def test_a_thousand_requests_from_threads_through_thirty_percent_faults(genai_emulator: Emulator) -> None:
    client = fast(genai.Client(image="openai:dall-e-2", ledger="memory://", policy="off"))
    genai_emulator.chaos(RATE, CHAOS_OPENAI_IMAGES, seed=11)
    draws = _draws(1000, seed=12)
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(lambda d: _one(client, *d), draws))
    genai_emulator.chaos(0, {})
    successes, cost = _check(outcomes, [n for n, _ in draws])
    assert 500 < successes < 1000, successes  # faults happened, and most calls got through them
    _books_agree(client.credits.history(), successes, cost, _openai_billable(genai_emulator))
    assert client.credits.reserved() == 0


def test_a_thousand_async_requests_at_concurrency_32_through_thirty_percent_faults(genai_emulator: Emulator) -> None:
    draws = _draws(1000, seed=22)

    async def run() -> tuple[list[Outcome], genai.AsyncClient]:
        client = fast(genai.AsyncClient(image="openai:dall-e-2", ledger="memory://", policy="off", circuit_breaker_failures=0))
        gate = asyncio.Semaphore(32)

        async def one(n: int, options: dict[str, dict[str, str]]) -> Outcome:
            async with gate:
                started = time.monotonic()
                try:
                    result = await client.images.generate("a lighthouse at dusk", n=n, size="256x256", timeout=TIMEOUT,
                                                          provider_options=options)  # fmt: skip
                except BaseException as error:  # noqa: BLE001
                    return Outcome(time.monotonic() - started, error=error)
                return Outcome(time.monotonic() - started, result=result)

        outcomes = await asyncio.gather(*(one(n, options) for n, options in draws))
        return outcomes, client

    genai_emulator.chaos(RATE, CHAOS_OPENAI_IMAGES, seed=21)
    outcomes, aclient = asyncio.run(run())
    genai_emulator.chaos(0, {})
    successes, cost = _check(outcomes, [n for n, _ in draws])
    assert 500 < successes < 1000, successes
    # The async client's ledger, read through a sync client on the same in-memory ledger is not possible: read it
    # with the async client in a fresh loop.

    async def read() -> tuple[list[genai.LedgerEntry], Decimal]:
        return await aclient.credits.history(), await aclient.credits.reserved()

    history, reserved = asyncio.run(read())
    _books_agree(history, successes, cost, _openai_billable(genai_emulator))
    assert reserved == 0


def test_three_hundred_replicate_requests_through_thirty_percent_faults(genai_emulator: Emulator) -> None:
    # The circuit breaker off: a backend failing on 30% of its requests, many calls in flight, can fail several calls
    # in a row; this test counts what every single call does with its faults, so none may be refused up front.
    client = fast(genai.Client(ledger="memory://", policy="off", circuit_breaker_failures=0))
    genai_emulator.replicate.max_wait = 0  # creates answer at once: every call polls
    genai_emulator.replicate.job_seconds = 0.05
    genai_emulator.chaos(RATE, CHAOS_REPLICATE, seed=31)
    draws = [(random.Random(32 + i).choice((1, 2)), None) for i in range(300)]
    model = "replicate:black-forest-labs/flux-schnell"
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(lambda d: _one(client, d[0], {}, model), draws))
    genai_emulator.chaos(0, {})
    successes, cost = _check(outcomes, [n for n, _ in draws])
    assert 150 < successes < 300, successes
    # No prediction is left running, and every one that succeeded (and is billed) is in the ledger: delivered and
    # charged, or recorded as spent.
    counts = genai_emulator.replicate.status_counts()
    assert counts.get("starting", 0) + counts.get("processing", 0) == 0, counts
    history = client.credits.history()
    assert len([e for e in history if e.kind == "charge"]) == successes and client.credits.reserved() == 0
    delivered = {pid for o in outcomes if o.result for rid in o.result.request_ids for pid in rid.split(",")}
    lost = [p for pid, p in genai_emulator.replicate.predictions.items() if p.body["status"] == "succeeded" and pid not in delivered]
    # A call may lose more than one prediction (one canceled as it finished, then its retry's): its one spent line
    # carries them all, so the spending is compared in credits.
    per_image = client.images.estimate("a lighthouse at dusk", model=model).credits
    lost_credits = sum(int(p.body["input"].get("num_outputs") or 1) for p in lost) * per_image
    spent_credits = -sum(e.credits for e in history if e.kind == "spent")
    assert spent_credits >= lost_credits, (len(lost), spent_credits, lost_credits)
