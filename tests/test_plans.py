"""Credit plans, walked through the months with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

import genai_sdk as genai
from genai_sdk.testing import Emulator


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _client(ledger_url: str, clock: Clock) -> genai.Client:
    return genai.Client(image="openai:dall-e-2", plan="dalle", ledger=ledger_url, clock=clock)


def test_the_dalle_plan_month_by_month(ledger_url: str, genai_emulator: Emulator) -> None:
    clock = Clock(datetime(2026, 3, 10, 9, tzinfo=UTC))
    client = _client(ledger_url, clock)

    # First month: 50 free credits, one credit a prompt whatever n is, USD still reported.
    assert client.credits.balance() == 50
    result = client.images.generate("an avocado couch", n=4, size="512x512")
    assert result.cost.credits == 1 and result.cost.usd == Decimal("0.072")
    assert client.images.estimate("a couch", n=4, size="1024x1024").credits == 1
    for _ in range(2):
        client.images.generate("a couch", size="256x256")
    assert client.credits.balance() == 47

    # Second month: the 47 left expire at the month's end; 15 new free credits arrive.
    clock.now = datetime(2026, 4, 2, tzinfo=UTC)
    assert client.credits.balance() == 15
    expiry = [e for e in client.credits.history() if e.kind == "expiry"]
    assert [e.credits for e in expiry] == [Decimal(-47)]

    # Buying: 115 credits for 15 USD; free credits are spent first, since they expire first.
    bought = client.credits.buy()
    assert bought.credits == 115 and bought.usd == Decimal(15)
    assert client.credits.balance() == 130
    for _ in range(16):
        client.images.generate("a couch", size="256x256")
    assert client.credits.balance() == 114

    # Third month: nothing free was left to expire, 15 more arrive; the purchase stays.
    clock.now = datetime(2026, 5, 31, 23, 59, tzinfo=UTC)
    assert client.credits.balance() == 129
    clock.now = datetime(2026, 6, 1, tzinfo=UTC)
    assert client.credits.balance() == 129  # May's 15 expired, June's 15 arrived
    grants = [e for e in client.credits.history() if e.kind == "grant"]
    assert [g.credits for g in grants] == [50, 15, 115, 15, 15]
    assert sum((e.credits for e in client.credits.history()), Decimal(0)) == client.credits.balance()


def test_the_dalle_plan_refuses_when_credits_run_out(genai_emulator: Emulator, tmp_path: object) -> None:
    clock = Clock(datetime(2026, 7, 1, tzinfo=UTC))
    client = _client("memory://", clock)
    client.credits.set_budget(credits=2, period="day")
    client.images.generate("a couch", size="256x256")
    client.images.generate("a couch", size="256x256")
    with pytest.raises(genai.BudgetExceededError):
        client.images.generate("a couch", size="256x256")
    assert len(genai_emulator.calls()) == 2


def test_each_process_and_client_grants_the_month_once(tmp_path: object, genai_emulator: Emulator) -> None:
    import os

    url = f"sqlite://{os.environ['XDG_DATA_HOME']}/plans.db"
    clock = Clock(datetime(2026, 8, 5, tzinfo=UTC))
    for _ in range(3):
        assert _client(url, clock).credits.balance() == 50
    clock.now = datetime(2026, 9, 5, tzinfo=UTC)
    for _ in range(3):
        assert _client(url, clock).credits.balance() == 15


def test_plan_errors() -> None:
    with pytest.raises(genai.ConfigError, match="unknown credit plan 'gold'"):
        genai.Client(plan="gold")
    with pytest.raises(genai.InvalidRequestError, match="sells no packs"):
        genai.Client(ledger="memory://").credits.buy()
    with pytest.raises(genai.InvalidRequestError, match="buy at least one pack"):
        genai.Client(ledger="memory://", plan="dalle").credits.buy(0)
