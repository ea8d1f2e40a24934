"""Tables of the SDK's own beside the ledger's, in the ledger's database (SQLite or PostgreSQL): rate-limit slots and
long jobs. One connection per thread; a transaction may hold a named lock (SQLite locks the whole file for a write
transaction; PostgreSQL takes an advisory lock on the name), so that processes sharing the database agree."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from ._errors import GenAIError

MAX_IDLE = 8  # connections kept open between transactions; more are closed when handed back


class ConnectionPool:
    """Connections handed out one a transaction and taken back after, so that threads that come and go (a batch's
    pool, a split call's) do not each leave one open. A connection is never shared by two transactions at once, nor
    used in a process other than the one that opened it."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._lock = threading.Lock()
        self._idle: list[tuple[int, Any]] = []

    @contextmanager
    def connection(self) -> Iterator[Any]:
        pid = os.getpid()
        with self._lock:
            while self._idle:
                owner, connection = self._idle.pop()
                if owner == pid:
                    break
            else:
                connection = None
        if connection is None:
            connection = self._connect()
        try:
            yield connection
        except GenAIError:  # the SDK's own answer (a budget refusal): rolled back, and the connection is sound
            self._give_back(pid, connection)
            raise
        except BaseException:
            with suppress(Exception):  # after a database failure it may be broken: not handed out again
                connection.close()
            raise
        self._give_back(pid, connection)

    def _give_back(self, pid: int, connection: Any) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE:
                self._idle.append((pid, connection))
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for _, connection in idle:
            with suppress(Exception):
                connection.close()


class SideDb:
    def __init__(self, url: str, schema: Sequence[str]) -> None:
        self.url = url
        self.postgres = not url.lower().startswith("sqlite")
        self.pool = ConnectionPool(self._connect)
        with self.transaction("schema") as tx:  # PostgreSQL's CREATE ... IF NOT EXISTS races without the lock
            for statement in schema:
                tx.execute(statement)

    def _connect(self) -> Any:
        if self.postgres:
            import psycopg

            return psycopg.connect(self.url, autocommit=True)
        import sqlite3

        from .credits import sqlite_path
        from .credits._sql import wal

        connection = sqlite3.connect(sqlite_path(self.url), timeout=60.0, isolation_level=None, check_same_thread=False)
        wal(connection)
        return connection

    @contextmanager
    def transaction(self, lock: str = "") -> Iterator[_Tx]:
        with self.pool.connection() as connection:
            connection.execute("BEGIN" if self.postgres else "BEGIN IMMEDIATE")
            try:
                if self.postgres and lock:
                    connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("genai:" + lock,))
                yield _Tx(connection, self.postgres)
            except BaseException:
                with suppress(Exception):
                    connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def close(self) -> None:
        self.pool.close()


class _Tx:
    def __init__(self, connection: Any, postgres: bool) -> None:
        self.connection = connection
        self.postgres = postgres

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.connection.execute(sql.replace("?", "%s") if self.postgres else sql, tuple(params))
