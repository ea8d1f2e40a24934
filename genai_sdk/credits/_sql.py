"""Durable ledgers on SQL: SQLite (the default; WAL, BEGIN IMMEDIATE) and PostgreSQL (psycopg 3; advisory locks).

Amounts are stored as integers (credits in 1/10,000, dollars in 1/1,000,000,000), so sums are exact in SQL.
Times are integer microseconds since the epoch (UTC). Every operation on an account runs in one transaction that
holds that account's lock, so reservations never overspend, whatever the number of threads, processes or hosts.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

from .._errors import ConfigError
from .._requests import LedgerEntry
from ._base import Budget, Reservation, check_commit_kind
from ._rules import Usage, check_grant, check_reserve, draw, period_start, utcnow

CREDIT_SCALE = 10_000
USD_SCALE = 1_000_000_000


def _credits_in(value: Decimal) -> int:
    return int((value * CREDIT_SCALE).to_integral_value(rounding=ROUND_CEILING))


def _usd_in(value: Decimal | None) -> int | None:
    return None if value is None else int((value * USD_SCALE).to_integral_value(rounding=ROUND_CEILING))


def _credits_out(value: int | None) -> Decimal:
    return Decimal(int(value or 0)) / CREDIT_SCALE


def _usd_out(value: int | None) -> Decimal | None:
    return None if value is None else Decimal(int(value)) / USD_SCALE


def _time_in(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _time_out(micros: int | None) -> datetime | None:
    return None if micros is None else datetime.fromtimestamp(micros / 1_000_000, UTC)


# Versioned migrations: each list runs once, in order, recorded in genai_schema. {id} is the dialect's key column.
MIGRATIONS: list[list[str]] = [
    [
        "CREATE TABLE genai_accounts (name TEXT PRIMARY KEY, has_grants INTEGER NOT NULL DEFAULT 0, debt BIGINT NOT NULL DEFAULT 0)",
        "CREATE TABLE genai_lots (id {id}, account TEXT NOT NULL, remaining BIGINT NOT NULL, expires BIGINT)",
        "CREATE INDEX genai_lots_account ON genai_lots (account)",
        "CREATE TABLE genai_entries (id {id}, account TEXT NOT NULL, kind TEXT NOT NULL, credits BIGINT NOT NULL, "
        "usd BIGINT, created BIGINT NOT NULL, reason TEXT NOT NULL DEFAULT '', request_id TEXT, model TEXT, expires BIGINT)",
        "CREATE INDEX genai_entries_account ON genai_entries (account, created)",
        # One charge per request, one grant per key: a retried commit or a repeated monthly grant changes nothing.
        "CREATE UNIQUE INDEX genai_entries_once ON genai_entries (kind, request_id) WHERE request_id IS NOT NULL",
        "CREATE TABLE genai_reservations (id TEXT PRIMARY KEY, account TEXT NOT NULL, credits BIGINT NOT NULL, usd BIGINT, "
        "request_id TEXT NOT NULL, model TEXT NOT NULL, created BIGINT NOT NULL, expires BIGINT NOT NULL)",
        "CREATE INDEX genai_reservations_account ON genai_reservations (account, expires)",
        "CREATE TABLE genai_budgets (account TEXT NOT NULL, period TEXT NOT NULL, credits BIGINT, usd BIGINT, "
        "PRIMARY KEY (account, period))",
    ],
    [
        # An unlimited account's spending is owed, so that a first grant is drawn on by it and the history still
        # adds up to the balance (before version 2 the first grant forgave it).
        "UPDATE genai_accounts SET debt = -(SELECT COALESCE(SUM(e.credits), 0) FROM genai_entries e "
        "WHERE e.account = genai_accounts.name AND e.kind = 'charge') WHERE has_grants = 0",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
_ENTRY_COLUMNS = "id, account, kind, credits, usd, created, reason, request_id, model, expires"
_SELECT_ENTRIES = f"SELECT {_ENTRY_COLUMNS} FROM genai_entries WHERE"


class SQLLedger:
    """The ledger on a SQL database. Subclasses connect and lock; the rules and the SQL are shared."""

    id_column = "INTEGER PRIMARY KEY"
    placeholder = "?"

    def __init__(self, clock: Callable[[], datetime] = utcnow, reservation_ttl: float = 3600.0) -> None:
        self._clock = clock
        self._ttl = timedelta(seconds=reservation_ttl)
        from .._sidecar import ConnectionPool

        self._pool = ConnectionPool(self._connect)  # one connection a transaction, kept for the next one
        with self._transaction() as tx:
            self._migrate(tx)

    # -- connection and transaction plumbing (per dialect) ------------------------------------------------------

    def _connect(self) -> Any:
        raise NotImplementedError

    @contextmanager
    def _begin(self, connection: Any, durable: bool) -> Iterator[None]:
        """One transaction. ``durable=False`` may skip the flush to disk: for reservations, which a lost machine
        loses along with the calls that held them, so nothing that was charged or granted can be lost that way."""
        raise NotImplementedError
        yield  # pragma: no cover

    def _lock_account(self, tx: _Tx, account: str) -> None:
        """Serialize operations on one account (SQLite's BEGIN IMMEDIATE already serializes everything)."""

    @contextmanager
    def _transaction(self, account: str | None = None, *, durable: bool = True) -> Iterator[_Tx]:
        with self._pool.connection() as connection, self._begin(connection, durable):
            tx = _Tx(connection, self.placeholder)
            if account is not None:
                self._lock_account(tx, account)
            yield tx

    def _migrate(self, tx: _Tx) -> None:
        tx.execute("CREATE TABLE IF NOT EXISTS genai_schema (version INTEGER NOT NULL)")
        current = tx.value("SELECT MAX(version) FROM genai_schema")
        if current > SCHEMA_VERSION:
            raise ConfigError(
                f"the ledger's schema is version {current}, newer than this genai-sdk knows ({SCHEMA_VERSION}): upgrade genai-sdk"
            )
        for version, statements in enumerate(MIGRATIONS, start=1):
            if version > current:
                for statement in statements:
                    tx.execute(statement.replace("{id}", self.id_column))
                tx.execute("INSERT INTO genai_schema (version) VALUES (?)", (version,))

    def schema_version(self) -> int:
        with self._transaction() as tx:
            return tx.value("SELECT MAX(version) FROM genai_schema")

    # -- helpers inside a transaction ---------------------------------------------------------------------------

    def _ensure_account(self, tx: _Tx, account: str) -> tuple[bool, int]:
        row = tx.one("SELECT has_grants, debt FROM genai_accounts WHERE name = ?", (account,))
        if row is None:
            tx.execute("INSERT INTO genai_accounts (name) VALUES (?)", (account,))
            return False, 0
        return bool(row[0]), int(row[1])

    def _expire(self, tx: _Tx, account: str, now: datetime) -> None:
        micros = _time_in(now)
        expired = "FROM genai_lots WHERE account = ? AND expires <= ?"
        for (remaining,) in tx.all(f"SELECT remaining {expired}", (account, micros)):
            if remaining > 0:
                self._add_entry(tx, account, "expiry", -int(remaining), None, now, "grant expired")
        tx.execute(f"DELETE {expired}", (account, micros))
        # A reservation held by a process that died (or never committed) gives its credits back when it expires.
        tx.execute("DELETE FROM genai_reservations WHERE account = ? AND expires <= ?", (account, micros))

    def _usage(self, tx: _Tx, account: str, period: str, now: datetime) -> Usage:
        """Charged since the period began, plus what reservations hold now."""
        row = tx.one(
            "SELECT COALESCE(SUM(c), 0), COALESCE(SUM(u), 0), COUNT(*) - COUNT(u) FROM (SELECT -credits AS c, usd AS u "
            "FROM genai_entries WHERE account = ? AND kind IN ('charge', 'spent') AND created >= ? "
            "UNION ALL SELECT credits, usd FROM genai_reservations WHERE account = ?) AS spent",
            (account, _time_in(period_start(now, period)), account),
        )
        assert row is not None
        return Usage(_credits_out(int(row[0])), _usd_out(int(row[1])) or Decimal(0), int(row[2]) > 0)

    _LOTS = "SELECT SUM(remaining) FROM genai_lots WHERE account = ?"
    _HELD = "SELECT SUM(credits) FROM genai_reservations WHERE account = ?"

    def _available(self, tx: _Tx, account: str, debt: int) -> Decimal:
        return _credits_out(tx.value(self._LOTS, (account,)) - debt - tx.value(self._HELD, (account,)))

    def _budgets(self, tx: _Tx, account: str) -> list[Budget]:
        return [
            Budget(period, None if credits is None else _credits_out(credits), _usd_out(usd))
            for period, credits, usd in tx.all("SELECT period, credits, usd FROM genai_budgets WHERE account = ?", (account,))
        ]

    @staticmethod
    def _entry(row: Sequence[Any]) -> LedgerEntry:
        entry_id, account, kind, credits, usd, created, reason, request_id, model, expires = row
        return LedgerEntry(
            int(entry_id), account, kind, _credits_out(credits), _usd_out(usd), _time_out(created) or datetime.now(UTC),
            reason or "", request_id, model, _time_out(expires),
        )

    def _find(self, tx: _Tx, kind: str, request_id: str) -> LedgerEntry | None:
        """The entry already made for (kind, request_id): charges, records and keyed grants are made once."""
        row = tx.one(f"{_SELECT_ENTRIES} kind = ? AND request_id = ?", (kind, request_id))
        return None if row is None else self._entry(row)

    def _add_entry(
        self, tx: _Tx, account: str, kind: str, credits: int, usd: Decimal | None, now: datetime, reason: str,
        request_id: str | None = None, model: str | None = None, expires: int | None = None,
    ) -> LedgerEntry:  # fmt: skip
        row = tx.one(
            "INSERT INTO genai_entries (account, kind, credits, usd, created, reason, request_id, model, expires) "
            f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {_ENTRY_COLUMNS}",
            (account, kind, credits, _usd_in(usd), _time_in(now), reason, request_id, model, expires),
        )
        assert row is not None
        return self._entry(row)

    # -- the ledger interface -------------------------------------------------------------------------------------

    def reserve(self, account: str, credits: Decimal, usd: Decimal | None, request_id: str, model: str) -> Reservation:
        now = self._clock()
        with self._transaction(account, durable=False) as tx:
            has_grants, debt = self._ensure_account(tx, account)
            self._expire(tx, account, now)
            check_reserve(
                account, credits, usd, available=self._available(tx, account, debt) if has_grants else None,
                budgets=self._budgets(tx, account), usage=lambda period: self._usage(tx, account, period, now),
            )  # fmt: skip
            reservation = Reservation(uuid.uuid4().hex, account, credits, usd, request_id, model, now)
            tx.execute(
                "INSERT INTO genai_reservations (id, account, credits, usd, request_id, model, created, expires) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (reservation.id, account, _credits_in(credits), _usd_in(usd), request_id, model, _time_in(now),
                 _time_in(now + self._ttl)),
            )
            return reservation

    def commit(
        self, reservation: Reservation, credits: Decimal, usd: Decimal | None, *, kind: str = "charge", reason: str = ""
    ) -> LedgerEntry:
        check_commit_kind(kind)
        now = self._clock()
        account, request_id = reservation.account, reservation.request_id
        with self._transaction(account) as tx:
            if (done := self._find(tx, kind, request_id)) is not None:
                return done
            has_grants, _ = self._ensure_account(tx, account)
            tx.execute("DELETE FROM genai_reservations WHERE id = ?", (reservation.id,))
            self._expire(tx, account, now)
            amount = _credits_in(credits)
            owed = Decimal(amount)
            if has_grants:  # else unlimited: recorded, and owed should a grant come
                lots = tx.all(
                    "SELECT id, remaining FROM genai_lots WHERE account = ? "
                    "ORDER BY CASE WHEN expires IS NULL THEN 1 ELSE 0 END, expires, id",
                    (account,),
                )
                changed, owed = draw([(lot_id, Decimal(remaining)) for lot_id, remaining in lots], owed)
                for lot_id, remaining in changed:
                    tx.execute("UPDATE genai_lots SET remaining = ? WHERE id = ?", (int(remaining), lot_id))
                tx.execute("DELETE FROM genai_lots WHERE account = ? AND remaining <= 0", (account,))
            if owed:
                tx.execute("UPDATE genai_accounts SET debt = debt + ? WHERE name = ?", (int(owed), account))
            return self._add_entry(tx, account, kind, -amount, usd, now, reason, request_id, reservation.model)

    def release(self, reservation: Reservation) -> None:
        with self._transaction(reservation.account, durable=False) as tx:
            tx.execute("DELETE FROM genai_reservations WHERE id = ?", (reservation.id,))

    def balance(self, account: str) -> Decimal:
        with self._transaction(account) as tx:
            _, debt = self._ensure_account(tx, account)
            self._expire(tx, account, self._clock())
            return _credits_out(tx.value(self._LOTS, (account,)) - debt)

    def reserved(self, account: str) -> Decimal:
        with self._transaction(account) as tx:
            self._expire(tx, account, self._clock())
            return _credits_out(tx.value(self._HELD, (account,)))

    def grant(
        self, account: str, credits: Decimal, reason: str, expires: datetime | None, *, key: str | None = None,
        usd: Decimal | None = None,
    ) -> LedgerEntry:  # fmt: skip
        check_grant(credits)
        now = self._clock()
        with self._transaction(account) as tx:
            if key is not None and (done := self._find(tx, "grant", key)) is not None:
                return done
            _, debt = self._ensure_account(tx, account)
            amount = _credits_in(credits)
            until = None if expires is None else _time_in(expires)
            repaid = min(debt, amount)
            tx.execute("UPDATE genai_accounts SET has_grants = 1, debt = debt - ? WHERE name = ?", (repaid, account))
            if amount - repaid > 0:
                tx.execute(
                    "INSERT INTO genai_lots (account, remaining, expires) VALUES (?, ?, ?)",
                    (account, amount - repaid, until),
                )
            return self._add_entry(tx, account, "grant", amount, usd, now, reason, key, expires=until)

    def record(self, account: str, kind: str, reason: str, request_id: str, model: str | None) -> LedgerEntry:
        with self._transaction(account) as tx:
            if (done := self._find(tx, kind, request_id)) is not None:
                return done
            self._ensure_account(tx, account)
            return self._add_entry(tx, account, kind, 0, Decimal(0), self._clock(), reason, request_id, model)

    def set_budget(self, account: str, budget: Budget) -> None:
        with self._transaction(account) as tx:
            self._ensure_account(tx, account)
            tx.execute("DELETE FROM genai_budgets WHERE account = ? AND period = ?", (account, budget.period))
            if budget.credits is not None or budget.usd is not None:
                credits = None if budget.credits is None else _credits_in(budget.credits)
                tx.execute(
                    "INSERT INTO genai_budgets (account, period, credits, usd) VALUES (?, ?, ?, ?)",
                    (account, budget.period, credits, _usd_in(budget.usd)),
                )

    def budgets(self, account: str) -> list[Budget]:
        with self._transaction(account, durable=False) as tx:
            found = {b.period: b for b in self._budgets(tx, account)}
            return [found[p] for p in ("day", "month") if p in found]

    def history(self, account: str) -> list[LedgerEntry]:
        with self._transaction(account) as tx:
            self._ensure_account(tx, account)
            self._expire(tx, account, self._clock())
            return [self._entry(row) for row in tx.all(f"{_SELECT_ENTRIES} account = ? ORDER BY id", (account,))]

    def accounts(self) -> list[str]:
        with self._transaction() as tx:
            return [name for (name,) in tx.all("SELECT name FROM genai_accounts ORDER BY name")]

    def close(self) -> None:
        self._pool.close()


class _Tx:
    """A cursor-like wrapper that speaks '?' placeholders on every dialect."""

    def __init__(self, connection: Any, placeholder: str) -> None:
        self._connection = connection
        self._placeholder = placeholder

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._connection.execute(sql.replace("?", self._placeholder), tuple(params))

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(self.execute(sql, params).fetchall())

    def value(self, sql: str, params: Sequence[Any] = ()) -> int:
        """The integer a one-value aggregate gives, NULL (no rows) as 0."""
        row = self.one(sql, params)
        assert row is not None
        return int(row[0] or 0)


class SQLiteLedger(SQLLedger):
    def __init__(
        self, path: str | os.PathLike[str], clock: Callable[[], datetime] = utcnow, reservation_ttl: float = 3600.0,
        *, synchronous: str = "full",
    ) -> None:  # fmt: skip
        self.path = Path(path).expanduser()
        self.synchronous = synchronous
        self._writer = threading.Lock()
        try:
            if not self.path.parent.exists():  # a folder of its own: credits and history are nobody else's business
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise ConfigError(f"cannot create the ledger {self.path}: {exc}") from exc
        super().__init__(clock, reservation_ttl)

    def _connect(self) -> Any:
        import sqlite3

        try:
            connection = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
            wal(connection)
            # FULL: a committed charge survives a power cut. NORMAL: it survives a crash of the process (not of the
            # machine), at a quarter of the cost.
            connection.execute(f"PRAGMA synchronous={'NORMAL' if self.synchronous == 'normal' else 'FULL'}")
            connection.execute("PRAGMA busy_timeout=60000")
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the SQLite ledger at {self.path}: {exc}") from exc
        return connection

    @contextmanager
    def _begin(self, connection: Any, durable: bool) -> Iterator[None]:
        # Threads of one process queue on this lock rather than on SQLite's, whose busy handler sleeps and polls.
        with self._writer:
            if self.synchronous == "full":
                # In WAL mode a later FULL commit flushes the earlier NORMAL ones too, so order is kept.
                connection.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            connection.execute("BEGIN IMMEDIATE")  # take the write lock now: check-then-write is atomic across processes
            try:
                yield
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def __repr__(self) -> str:
        return f"SQLiteLedger({str(self.path)!r})"


def wal(connection: Any) -> None:
    """Write-ahead logging. Switching a new file to it takes a lock that SQLite's busy handler does not wait for:
    processes opening one new ledger at the same moment wait here for each other instead."""
    import sqlite3

    for _ in range(100):
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            time.sleep(0.05)
    connection.execute("PRAGMA journal_mode=WAL")  # the last try: its error, if any, is the caller's


class PostgresLedger(SQLLedger):
    id_column = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
    placeholder = "%s"

    def __init__(self, url: str, clock: Callable[[], datetime] = utcnow, reservation_ttl: float = 3600.0) -> None:
        self.url = url
        try:
            import psycopg  # noqa: F401
        except ModuleNotFoundError:
            raise ConfigError("the PostgreSQL ledger needs psycopg 3: pip install 'genai-sdk[postgres]'") from None
        super().__init__(clock, reservation_ttl)

    def _connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(self.url, autocommit=True)
        except psycopg.Error as exc:
            raise ConfigError(f"cannot connect to the PostgreSQL ledger: {str(exc).splitlines()[0]}") from exc

    @contextmanager
    def _begin(self, connection: Any, durable: bool) -> Iterator[None]:
        with connection.transaction():
            if not durable:
                connection.execute("SET LOCAL synchronous_commit = off")
            yield

    def _lock_account(self, tx: _Tx, account: str) -> None:
        tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (f"genai:{account}",))

    def _migrate(self, tx: _Tx) -> None:
        tx.execute("SELECT pg_advisory_xact_lock(hashtext('genai:schema'))")
        super()._migrate(tx)

    def __repr__(self) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        return f"PostgresLedger({parts.hostname}:{parts.port}{parts.path})"  # never the password
