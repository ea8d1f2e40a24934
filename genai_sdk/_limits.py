"""Client-side rate limits: requests per window and requests in flight, per provider and per model.

    [rate_limits]
    openai = { rpm = 50, concurrent = 4 }
    "openai:gpt-image-1.5" = { requests = 5, per = 10 }

A slot is taken before every backend attempt, retries included, and a call waits for one instead of collecting 429s;
a wait longer than the call's time left raises ``RateLimitError`` (not retried; a fallback model may serve). The slots
live where the ledger lives: in memory for one client, or in the ledger's SQLite or PostgreSQL database, so that every
process sharing the ledger shares the limits. Slots held by a process that died free themselves after the ledger's
reservation time-to-live.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ._errors import ConfigError, RateLimitError

CLIENT_SIDE = "_genai_client_side"  # marks the RateLimitError of a slot that could not be had in time
POLL = 0.05  # seconds between looks at a full concurrency limit
# A window is counted a little longer than configured: a request reaches the backend a few milliseconds after its slot
# is taken, and not always the same few, so slots spaced by exactly the window could land inside one window there.
MARGIN = 0.03


@dataclass(frozen=True)
class RateLimit:
    """``requests`` per ``per`` seconds (None: no such limit) and at most ``concurrent`` in flight, for ``key`` (a
    provider name or a model id)."""

    key: str
    requests: int | None = None
    per: float = 60.0
    concurrent: int | None = None

    @property
    def window(self) -> float:
        return self.per * (1 + MARGIN)


def parse_rate_limits(value: object, origin: str) -> tuple[RateLimit, ...]:
    """``{"openai": {"rpm": 50, "concurrent": 4}, "openai:dall-e-3": {"requests": 5, "per": 10}}`` (a JSON object
    in the environment)."""
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            raise ConfigError(f"{origin}: rate_limits must be a JSON object, for example "
                              '{"openai": {"rpm": 50, "concurrent": 4}}') from None  # fmt: skip
    if not isinstance(value, Mapping):
        raise ConfigError(f"{origin}: rate_limits maps a provider or model to its limits, not {value!r}")
    limits = []
    for key, table in value.items():
        where = f"{origin}: rate_limits[{key!r}]"
        if not isinstance(key, str) or not key or not isinstance(table, Mapping):
            raise ConfigError(f"{where} must be a table such as {{ rpm = 50, concurrent = 4 }}")
        unknown = set(table) - {"rpm", "requests", "per", "concurrent"}
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}; use rpm, requests, per, concurrent")
        if "rpm" in table and "requests" in table:
            raise ConfigError(f"{where}: give rpm or requests (with per), not both")
        requests = _whole(table.get("rpm", table.get("requests")), where)
        concurrent = _whole(table.get("concurrent"), where)
        per = table.get("per", 60.0)
        if "rpm" in table and "per" in table:
            raise ConfigError(f"{where}: rpm is per minute; use requests with per for another window")
        if isinstance(per, bool) or not isinstance(per, int | float) or not math.isfinite(per) or not 0 < per <= 86400:
            raise ConfigError(f"{where}: per must be seconds above 0 and at most a day, not {per!r}")
        if requests is None and concurrent is None:
            raise ConfigError(f"{where} sets no limit: give rpm (or requests and per) and/or concurrent")
        limits.append(RateLimit(key, requests, float(per), concurrent))
    return tuple(limits)


def _whole(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: limits are whole numbers of at least 1, not {value!r}")
    return value


class Slots(Protocol):
    """Where slots are counted. ``take`` returns 0 and records the slot, or the seconds to wait before asking again."""

    def take(self, limit: RateLimit, token: str, clock: Callable[[], float]) -> float: ...
    def undo(self, limit: RateLimit, token: str) -> None: ...
    def release(self, limit: RateLimit, token: str, now: float) -> None: ...
    def close(self) -> None: ...


class MemorySlots:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._window: dict[str, deque[tuple[float, str]]] = {}
        self._busy: dict[str, set[str]] = {}

    def take(self, limit: RateLimit, token: str, clock: Callable[[], float]) -> float:
        with self._lock:
            now = clock()  # under the lock: a slot that waited for it is not counted at an earlier time
            window = self._window.setdefault(limit.key, deque())
            busy = self._busy.setdefault(limit.key, set())
            while window and window[0][0] <= now - limit.window:
                window.popleft()
            if limit.requests is not None and len(window) >= limit.requests:
                return max(window[0][0] + limit.window - now, 0.001)
            if limit.concurrent is not None and len(busy) >= limit.concurrent:
                return POLL
            window.append((now, token))
            busy.add(token)
            return 0.0

    def undo(self, limit: RateLimit, token: str) -> None:
        with self._lock:
            window = self._window.get(limit.key, deque())
            self._window[limit.key] = deque(entry for entry in window if entry[1] != token)
            self._busy.get(limit.key, set()).discard(token)

    def release(self, limit: RateLimit, token: str, now: float) -> None:
        with self._lock:
            self._busy.get(limit.key, set()).discard(token)

    def close(self) -> None:
        pass


class SqlSlots:
    """Slots in the ledger's database: one row a slot (key, token, taken, done), counted in a transaction that holds
    the key's lock, so that processes sharing the database share the limits."""

    def __init__(self, url: str, lease: float) -> None:
        from ._sidecar import SideDb

        self.lease = lease  # a slot never released (its process died) stops counting after this many seconds
        self.db = SideDb(url, (
            "CREATE TABLE IF NOT EXISTS genai_rate_slots (key TEXT NOT NULL, token TEXT PRIMARY KEY, "
            "taken DOUBLE PRECISION NOT NULL, done DOUBLE PRECISION)",
        ))  # fmt: skip

    def take(self, limit: RateLimit, token: str, clock: Callable[[], float]) -> float:
        with self.db.transaction("rate:" + limit.key) as tx:
            now = clock()  # inside the transaction, which holds the lock: never a time from before the wait for it
            tx.execute(
                "DELETE FROM genai_rate_slots WHERE key = ? AND taken < ? AND (done IS NOT NULL OR taken < ?)",
                (limit.key, now - limit.window, now - self.lease),
            )
            if limit.requests is not None:
                count, oldest = tx.execute(
                    "SELECT count(*), min(taken) FROM genai_rate_slots WHERE key = ? AND taken > ?",
                    (limit.key, now - limit.window),
                ).fetchone()
                if count >= limit.requests:
                    return max(float(oldest) + limit.window - now, 0.001)
            if limit.concurrent is not None:
                (busy,) = tx.execute(
                    "SELECT count(*) FROM genai_rate_slots WHERE key = ? AND done IS NULL AND taken > ?",
                    (limit.key, now - self.lease),
                ).fetchone()
                if busy >= limit.concurrent:
                    return POLL
            tx.execute("INSERT INTO genai_rate_slots (key, token, taken) VALUES (?, ?, ?)", (limit.key, token, now))
        return 0.0

    def undo(self, limit: RateLimit, token: str) -> None:
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM genai_rate_slots WHERE token = ?", (token,))

    def release(self, limit: RateLimit, token: str, now: float) -> None:
        with self.db.transaction() as tx:
            tx.execute("UPDATE genai_rate_slots SET done = ? WHERE token = ?", (now, token))

    def close(self) -> None:
        self.db.close()


Taken = list[tuple[RateLimit, str]]


class RateLimiter:
    """The limits that apply to a model (its provider's and its own), taken together before each attempt."""

    def __init__(self, limits: tuple[RateLimit, ...], slots: Slots, clock: Callable[[], float] = time.time) -> None:
        self.limits = limits
        self.slots = slots
        self.clock = clock
        self.blocking = isinstance(slots, SqlSlots)

    def rules(self, model_id: str) -> list[RateLimit]:
        provider = model_id.partition(":")[0]
        return [limit for limit in self.limits if limit.key in (provider, model_id)]

    def try_take(self, rules: list[RateLimit]) -> tuple[float, Taken]:
        """0 and the slots, or the seconds to wait (nothing held)."""
        taken: Taken = []
        for limit in rules:
            token = os.urandom(12).hex()
            wait = self.slots.take(limit, token, self.clock)
            if wait > 0:
                for held, held_token in taken:
                    self.slots.undo(held, held_token)
                return wait, []
            taken.append((limit, token))
        return 0.0, taken

    def release(self, taken: Taken) -> None:
        now = self.clock()
        for limit, token in taken:
            self.slots.release(limit, token, now)

    def too_long(self, model_id: str, wait: float, remaining: float | None) -> None:
        if remaining is not None and wait > remaining:
            left = f"the {remaining:.1f} s the call has left" if remaining > 0 else "the call's deadline, which has passed"
            error = RateLimitError(
                f"the client-side rate limit of {model_id} has no free slot for {wait:.1f} s, longer than {left}: "
                "raise the timeout, or the limit if the backend allows",
                provider=model_id.partition(":")[0], retryable=False,
            )  # fmt: skip
            setattr(error, CLIENT_SIDE, True)  # noqa: B010 - the backend never saw it: not the breaker's business
            raise error

    def acquire(self, model_id: str, remaining: Callable[[], float | None]) -> Taken:
        rules = self.rules(model_id)
        while rules:
            wait, taken = self.try_take(rules)
            if not wait:
                return taken
            self.too_long(model_id, wait, remaining())
            time.sleep(min(wait, 1.0))
        return []

    async def aacquire(self, model_id: str, remaining: Callable[[], float | None]) -> Taken:
        import asyncio

        rules = self.rules(model_id)
        while rules:
            if self.blocking:
                wait, taken = await self._athread_take(rules)
            else:
                wait, taken = self.try_take(rules)
            if not wait:
                return taken
            self.too_long(model_id, wait, remaining())
            await asyncio.sleep(min(wait, 1.0))
        return []

    async def _athread_take(self, rules: list[RateLimit]) -> tuple[float, Taken]:
        """``try_take`` in a worker thread; a caller cancelled meanwhile gives back what the thread took."""
        import asyncio

        pending = asyncio.ensure_future(asyncio.to_thread(self.try_take, rules))
        try:
            return await asyncio.shield(pending)
        except asyncio.CancelledError:
            pending.add_done_callback(self._give_back)
            raise

    def _give_back(self, done: Any) -> None:
        if not done.cancelled() and done.exception() is None and done.result()[1]:
            threading.Thread(target=self.release, args=(done.result()[1],), daemon=True).start()

    async def arelease(self, taken: Taken) -> None:
        import asyncio

        if taken and self.blocking:
            await asyncio.to_thread(self.release, taken)
        else:
            self.release(taken)


def rate_limiter(limits: tuple[RateLimit, ...], ledger_url: str | None, lease: float) -> RateLimiter | None:
    """The limiter for a client: its slots in the ledger's database (``ledger_url``), or in memory (None, or a
    ``memory://`` ledger)."""
    if not limits:
        return None
    if ledger_url is None or ledger_url.lower().startswith("memory"):
        return RateLimiter(limits, MemorySlots())
    return RateLimiter(limits, SqlSlots(ledger_url, lease))
