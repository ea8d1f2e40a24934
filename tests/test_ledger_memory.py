from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

import genai_sdk as genai
from genai_sdk.credits import Budget, MemoryLedger


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 15, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_grants_charges_and_history() -> None:
    ledger = MemoryLedger()
    ledger.grant("a", Decimal(10), "purchase", None)
    r = ledger.reserve("a", Decimal(4), Decimal("0.04"), "req1", "m")
    assert ledger.reserved("a") == 4 and ledger.balance("a") == 10
    with pytest.raises(genai.BudgetExceededError, match="has 6 credits left"):
        ledger.reserve("a", Decimal(7), None, "req2", "m")
    ledger.commit(r, Decimal(3), Decimal("0.03"))
    ledger.commit(r, Decimal(3), Decimal("0.03"))  # a second commit of the same request changes nothing
    assert ledger.balance("a") == 7 and ledger.reserved("a") == 0
    assert [e.kind for e in ledger.history("a")] == ["grant", "charge"]
    assert sum(e.credits for e in ledger.history("a")) == ledger.balance("a")


def test_release_is_idempotent_and_returns_credits() -> None:
    ledger = MemoryLedger()
    ledger.grant("a", Decimal(5), "gift", None)
    r = ledger.reserve("a", Decimal(5), None, "req", "m")
    ledger.release(r)
    ledger.release(r)
    assert ledger.reserved("a") == 0
    ledger.reserve("a", Decimal(5), None, "req2", "m")


def test_expiring_grants_are_spent_first_and_forfeited_after() -> None:
    clock = Clock()
    ledger = MemoryLedger(clock)
    ledger.grant("a", Decimal(10), "bought", None)
    ledger.grant("a", Decimal(5), "monthly", clock.now + timedelta(days=10))
    r = ledger.reserve("a", Decimal(3), None, "req", "m")
    ledger.commit(r, Decimal(3), None)  # drawn from the expiring grant
    assert ledger.balance("a") == 12
    clock.now += timedelta(days=11)
    assert ledger.balance("a") == 10  # the 2 left of the monthly grant expired
    kinds = [(e.kind, e.credits) for e in ledger.history("a")]
    assert kinds[-1] == ("expiry", Decimal(-2))
    assert sum(e.credits for e in ledger.history("a")) == ledger.balance("a")


def test_budget_periods_reset() -> None:
    clock = Clock()
    ledger = MemoryLedger(clock)
    ledger.set_budget("a", Budget("day", credits=Decimal(5)))
    ledger.commit(ledger.reserve("a", Decimal(4), None, "r1", "m"), Decimal(4), None)
    with pytest.raises(genai.BudgetExceededError, match="this day"):
        ledger.reserve("a", Decimal(2), None, "r2", "m")
    clock.now += timedelta(days=1)
    ledger.reserve("a", Decimal(2), None, "r3", "m")
    ledger.set_budget("a", Budget("day"))  # neither limit: the budget is removed
    ledger.reserve("a", Decimal(100), None, "r4", "m")


def test_actual_above_the_estimate_becomes_debt_repaid_by_the_next_grant() -> None:
    ledger = MemoryLedger()
    ledger.grant("a", Decimal(2), "x", None)
    r = ledger.reserve("a", Decimal(2), None, "r", "m")
    ledger.commit(r, Decimal(3), None)
    assert ledger.balance("a") == -1
    ledger.grant("a", Decimal(5), "y", None)
    assert ledger.balance("a") == 4


def test_client_credit_methods_validate_input() -> None:
    client = genai.Client()
    with pytest.raises(genai.InvalidRequestError, match="period='week'"):
        client.credits.set_budget(credits=5, period="week")
    with pytest.raises(genai.InvalidRequestError, match="must be a number"):
        client.credits.grant("lots")
    with pytest.raises(genai.InvalidRequestError, match="must be positive"):
        client.credits.grant(0)
    entry = client.credits.grant(50, reason="welcome", expires=datetime(2030, 1, 1, tzinfo=UTC))
    assert entry.kind == "grant" and entry.reason == "welcome" and client.credits.balance() == 50
