"""The ledger's rules, on every backend: in memory, SQLite and PostgreSQL (a real server, where one is reachable)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

import genai_sdk as genai
from genai_sdk.credits import Budget, Ledger, MemoryLedger, open_ledger


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 15, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(ledger_url: str, clock: Clock) -> Iterator[Ledger]:
    opened = open_ledger(ledger_url, clock, reservation_ttl=60)
    yield opened
    opened.close()


def _sums_to_balance(ledger: Ledger, account: str) -> None:
    assert sum((e.credits for e in ledger.history(account)), Decimal(0)) == ledger.balance(account)


def test_grants_reservations_and_idempotent_commits(ledger: Ledger) -> None:
    ledger.grant("a", Decimal(10), "purchase", None)
    r = ledger.reserve("a", Decimal(4), Decimal("0.04"), "req1", "m")
    assert ledger.reserved("a") == 4 and ledger.balance("a") == 10
    with pytest.raises(genai.BudgetExceededError, match="has 6 credits left"):
        ledger.reserve("a", Decimal(7), None, "req2", "m")
    first = ledger.commit(r, Decimal(3), Decimal("0.03"))
    again = ledger.commit(r, Decimal(3), Decimal("0.03"))  # a second commit of the same request changes nothing
    assert first.id == again.id and first.credits == -3 and first.usd == Decimal("0.03")
    assert ledger.balance("a") == 7 and ledger.reserved("a") == 0
    assert [e.kind for e in ledger.history("a")] == ["grant", "charge"]
    assert ledger.history("a")[1].request_id == "req1" and ledger.history("a")[1].model == "m"
    _sums_to_balance(ledger, "a")


def test_release_returns_credits_and_is_idempotent(ledger: Ledger) -> None:
    ledger.grant("a", Decimal(5), "gift", None)
    r = ledger.reserve("a", Decimal(5), None, "req", "m")
    ledger.release(r)
    ledger.release(r)
    assert ledger.reserved("a") == 0
    ledger.reserve("a", Decimal(5), None, "req2", "m")


def test_unlimited_accounts_record_spending(ledger: Ledger) -> None:
    for i in range(3):
        ledger.commit(ledger.reserve("free", Decimal("1.25"), None, f"r{i}", "m"), Decimal("1.25"), None)
    assert ledger.balance("free") == Decimal("-3.75")
    _sums_to_balance(ledger, "free")


def test_expiring_grants_are_spent_first_and_forfeited_after(ledger: Ledger, clock: Clock) -> None:
    ledger.grant("a", Decimal(10), "bought", None)
    ledger.grant("a", Decimal(5), "monthly", clock.now + timedelta(days=10))
    ledger.commit(ledger.reserve("a", Decimal(3), None, "req", "m"), Decimal(3), None)  # drawn from the expiring grant
    assert ledger.balance("a") == 12
    clock.now += timedelta(days=11)
    assert ledger.balance("a") == 10  # the 2 left of the monthly grant expired
    assert [(e.kind, e.credits) for e in ledger.history("a")][-1] == ("expiry", Decimal(-2))
    _sums_to_balance(ledger, "a")


def test_budget_periods(ledger: Ledger, clock: Clock) -> None:
    ledger.set_budget("a", Budget("day", credits=Decimal(5)))
    ledger.commit(ledger.reserve("a", Decimal(4), None, "r1", "m"), Decimal(4), None)
    with pytest.raises(genai.BudgetExceededError, match="this day"):
        ledger.reserve("a", Decimal(2), None, "r2", "m")
    clock.now += timedelta(days=1)
    held = ledger.reserve("a", Decimal(2), None, "r3", "m")
    with pytest.raises(genai.BudgetExceededError):
        ledger.reserve("a", Decimal(4), None, "r4", "m")  # reservations count against the budget too
    ledger.release(held)
    ledger.set_budget("a", Budget("day"))  # neither limit: the budget is removed
    ledger.reserve("a", Decimal(100), None, "r5", "m")


def test_usd_budgets_refuse_unpriced_calls(ledger: Ledger) -> None:
    ledger.set_budget("a", Budget("month", usd=Decimal("0.10")))
    ledger.commit(ledger.reserve("a", Decimal(1), Decimal("0.06"), "r1", "m"), Decimal(1), Decimal("0.06"))
    with pytest.raises(genai.BudgetExceededError, match=r"over its budget of \$0\.10?$"):
        ledger.reserve("a", Decimal(1), Decimal("0.05"), "r2", "m")
    with pytest.raises(genai.BudgetExceededError, match="price in USD is unknown"):
        ledger.reserve("a", Decimal(1), None, "r3", "m")


def test_actual_above_the_estimate_becomes_debt_repaid_by_the_next_grant(ledger: Ledger) -> None:
    ledger.grant("a", Decimal(2), "x", None)
    ledger.commit(ledger.reserve("a", Decimal(2), None, "r", "m"), Decimal(3), None)
    assert ledger.balance("a") == -1
    ledger.grant("a", Decimal(5), "y", None)
    assert ledger.balance("a") == 4
    _sums_to_balance(ledger, "a")


def test_keyed_grants_are_made_once(ledger: Ledger) -> None:
    first = ledger.grant("a", Decimal(50), "welcome", None, key="welcome:a")
    second = ledger.grant("a", Decimal(50), "welcome", None, key="welcome:a")
    assert first.id == second.id and ledger.balance("a") == 50
    bought = ledger.grant("a", Decimal(115), "purchase", None, usd=Decimal(15))
    assert bought.usd == Decimal(15) and ledger.balance("a") == 165


def test_abandoned_reservations_expire(ledger: Ledger, clock: Clock) -> None:
    ledger.grant("a", Decimal(10), "x", None)
    ledger.reserve("a", Decimal(8), None, "crashed", "m")  # never committed nor released
    with pytest.raises(genai.BudgetExceededError):
        ledger.reserve("a", Decimal(5), None, "next", "m")
    if isinstance(ledger, MemoryLedger):
        return  # an in-memory ledger dies with its process: nothing is ever abandoned
    clock.now += timedelta(seconds=61)
    assert ledger.reserved("a") == 0
    ledger.reserve("a", Decimal(10), None, "after", "m")


def test_amounts_are_exact(ledger: Ledger) -> None:
    for i in range(10):
        ledger.commit(ledger.reserve("a", Decimal("0.0001"), Decimal("0.000000015"), f"r{i}", "m"),
                      Decimal("0.0001"), Decimal("0.000000015"))
    charges = [e for e in ledger.history("a") if e.kind == "charge"]
    assert sum(e.credits for e in charges) == Decimal("-0.001")
    assert sum(e.usd or 0 for e in charges) == Decimal("0.00000015")


@pytest.mark.parametrize("ledger_url", ["sqlite", "postgres"], indirect=True)
def test_sql_schema_is_versioned_and_reopens(ledger_url: str, clock: Clock) -> None:
    from genai_sdk.credits._sql import SCHEMA_VERSION, SQLLedger

    first = open_ledger(ledger_url, clock)
    assert isinstance(first, SQLLedger) and first.schema_version() == SCHEMA_VERSION
    first.grant("kept", Decimal(3), "x", None)
    first.close()
    second = open_ledger(ledger_url, clock)
    assert isinstance(second, SQLLedger) and second.schema_version() == SCHEMA_VERSION
    assert second.balance("kept") == 3 and "kept" in second.accounts()
    second.close()


def test_sqlite_url_forms(tmp_path: object) -> None:
    from pathlib import Path

    from genai_sdk.credits import sqlite_path

    assert sqlite_path("sqlite:///var/lib/app/ledger.db") == Path("/var/lib/app/ledger.db")
    assert sqlite_path("sqlite:ledger.db") == Path("ledger.db")
    assert sqlite_path("sqlite://~/x.db") == Path("~/x.db").expanduser()
    with pytest.raises(genai.ConfigError, match="names no file"):
        sqlite_path("sqlite://")


def test_the_default_ledger_is_sqlite_in_the_user_data_folder(tmp_path: object) -> None:
    import os

    client = genai.Client()
    client.credits.grant(7)
    path = os.path.join(os.environ["XDG_DATA_HOME"], "genai", "ledger.db")
    assert os.path.isfile(path)
    assert genai.Client().credits.balance() == 7  # a second client (or process) sees the same ledger


def test_postgres_errors_are_config_errors() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(genai.ConfigError, match="cannot connect to the PostgreSQL ledger") as info:
        open_ledger("postgresql://nobody:secret-password@127.0.0.1:1/none?connect_timeout=2")
    assert "secret-password" not in str(info.value) and "secret-password" not in repr(info.value)


def test_sqlite_synchronous_setting(tmp_path_factory: pytest.TempPathFactory) -> None:
    from genai_sdk.credits._sql import SQLiteLedger

    folder = tmp_path_factory.mktemp("sync")
    ledger = open_ledger(f"sqlite://{folder}/a.db?synchronous=normal")
    assert isinstance(ledger, SQLiteLedger) and ledger.synchronous == "normal"
    assert ledger._connect().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    default = open_ledger(f"sqlite://{folder}/b.db")
    assert isinstance(default, SQLiteLedger)
    assert default._connect().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert default._connect().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(genai.ConfigError, match="synchronous must be"):
        open_ledger(f"sqlite://{folder}/c.db?synchronous=off")


def test_threads_that_come_and_go_do_not_leave_connections_open(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A ledger's connections are handed out one a transaction and kept for the next: two hundred short-lived
    threads (batches' pools, split calls') leave a few open, not one each (counted as this process's open files)."""
    import os
    import threading

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("counting open files needs /proc")
    ledger = open_ledger(f"sqlite:///{tmp_path_factory.mktemp('fds') / 'a.db'}")
    ledger.balance("alice")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(50):
        threads = [threading.Thread(target=ledger.balance, args=("alice",)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(os.listdir("/proc/self/fd")) - before <= 3 * 8  # a few connections (each a file, its WAL and index)
    ledger.close()
