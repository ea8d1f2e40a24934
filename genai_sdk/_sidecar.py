"""Tables of the SDK's own beside the ledger's, in the ledger's database (SQLite or PostgreSQL): rate-limit slots and
long jobs. One connection per thread; a transaction may hold a named lock (SQLite locks the whole file for a write
transaction; PostgreSQL takes an advisory lock on the name), so that processes sharing the database agree."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


class SideDb:
    def __init__(self, url: str, schema: Sequence[str]) -> None:
        self.url = url
        self.postgres = not url.lower().startswith("sqlite")
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()
        with self.transaction() as tx:
            for statement in schema:
                tx.execute(statement)

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            if self.postgres:
                import psycopg

                connection = psycopg.connect(self.url, autocommit=True)
            else:
                import sqlite3

                from .credits import sqlite_path

                connection = sqlite3.connect(sqlite_path(self.url), timeout=60.0, isolation_level=None, check_same_thread=False)
                connection.execute("PRAGMA journal_mode=WAL")
            self._local.connection = connection
            with self._lock:
                self._all.append(connection)
        return connection

    @contextmanager
    def transaction(self, lock: str = "") -> Iterator[_Tx]:
        connection = self._connection()
        connection.execute("BEGIN" if self.postgres else "BEGIN IMMEDIATE")
        try:
            if self.postgres and lock:
                connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("genai:" + lock,))
            yield _Tx(connection, self.postgres)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            connections, self._all = self._all, []
        for connection in connections:
            try:
                connection.close()
            except Exception:  # noqa: BLE001, S110 - closing what another thread may hold: best effort
                pass
        self._local = threading.local()


class _Tx:
    def __init__(self, connection: Any, postgres: bool) -> None:
        self.connection = connection
        self.postgres = postgres

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.connection.execute(sql.replace("?", "%s") if self.postgres else sql, tuple(params))
