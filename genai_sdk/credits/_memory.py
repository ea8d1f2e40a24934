"""An in-process ledger: exact and thread-safe, but forgotten when the process ends."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from .._requests import LedgerEntry
from ._base import Budget, Reservation, check_commit_kind
from ._rules import Usage, check_grant, check_reserve, draw, utcnow


def period_key(moment: datetime, period: str) -> tuple[str, int, int, int]:
    """Which day or month ``moment`` falls in (cheaper to compute than the period's start)."""
    return (period, moment.year, moment.month, moment.day if period == "day" else 0)


_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass
class _Lot:
    """What is left of one grant; charges draw on the lots that expire first."""

    remaining: Decimal
    expires: datetime | None


@dataclass
class _Account:
    lots: list[_Lot] = field(default_factory=list)
    debt: Decimal = Decimal(0)  # charged beyond the lots (an actual cost above its estimate)
    has_grants: bool = False
    reservations: dict[str, Reservation] = field(default_factory=dict)
    # Running sums over the reservations, so that checks cost the same at any concurrency.
    reserved_credits: Decimal = Decimal(0)
    reserved_usd: Decimal = Decimal(0)
    reserved_unpriced: int = 0
    entries: list[LedgerEntry] = field(default_factory=list)
    committed: dict[str, LedgerEntry] = field(default_factory=dict)
    budgets: dict[str, Budget] = field(default_factory=dict)
    # Charges per (period, period start): budget checks stay O(1) however long the history grows.
    spent: dict[tuple[str, int, int, int], Usage] = field(default_factory=dict)


class MemoryLedger:
    blocking = False  # operations take microseconds: async callers need no worker thread
    def __init__(self, clock: Callable[[], datetime] = utcnow) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._accounts: dict[str, _Account] = {}
        self._ids = itertools.count(1)
        self._reservation_ids = itertools.count(1)
        self._grant_keys: dict[str, LedgerEntry] = {}

    def _account(self, name: str) -> _Account:
        return self._accounts.setdefault(name, _Account())

    def _expire(self, account: str, state: _Account, now: datetime) -> None:
        # Lots are kept in expiry order, so expired ones are at the front.
        while state.lots and state.lots[0].expires is not None and state.lots[0].expires <= now:
            lot = state.lots.pop(0)
            entry = LedgerEntry(next(self._ids), account, "expiry", -lot.remaining, None, now, "grant expired")
            state.entries.append(entry)

    @staticmethod
    def _hold(state: _Account, reservation: Reservation, sign: int = 1) -> None:
        """Add a reservation to the running sums (``sign=-1``: take it off)."""
        state.reserved_credits += sign * reservation.credits
        if reservation.usd is None:
            state.reserved_unpriced += sign
        else:
            state.reserved_usd += sign * reservation.usd

    def _drop(self, state: _Account, reservation: Reservation) -> None:
        if state.reservations.pop(reservation.id, None) is not None:  # else already committed or released
            self._hold(state, reservation, -1)

    @staticmethod
    def _balance(state: _Account) -> Decimal:
        return sum((lot.remaining for lot in state.lots), Decimal(0)) - state.debt

    def _usage(self, state: _Account, period: str, now: datetime) -> Usage:
        spent = state.spent.get(period_key(now, period), Usage())
        return Usage(
            spent.credits + state.reserved_credits,
            spent.usd + state.reserved_usd,
            spent.unpriced or state.reserved_unpriced > 0,
        )

    def reserve(self, account: str, credits: Decimal, usd: Decimal | None, request_id: str, model: str) -> Reservation:
        now = self._clock()
        with self._lock:
            state = self._account(account)
            self._expire(account, state, now)
            check_reserve(
                account, credits, usd, budgets=state.budgets.values(), usage=lambda p: self._usage(state, p, now),
                available=self._balance(state) - state.reserved_credits if state.has_grants else None,
            )  # fmt: skip
            reservation = Reservation(f"r{next(self._reservation_ids)}", account, credits, usd, request_id, model, now)
            state.reservations[reservation.id] = reservation
            self._hold(state, reservation)
            return reservation

    def commit(
        self, reservation: Reservation, credits: Decimal, usd: Decimal | None, *, kind: str = "charge", reason: str = ""
    ) -> LedgerEntry:
        check_commit_kind(kind)
        now = self._clock()
        account, request_id = reservation.account, reservation.request_id
        with self._lock:
            state = self._account(account)
            if (done := state.committed.get(f"{kind} {request_id}")) is not None:
                return done
            self._drop(state, reservation)
            self._expire(account, state, now)
            if state.has_grants:
                self._draw(state, credits)
            else:  # unlimited: recorded, and owed should a grant come
                state.debt += credits
            entry = LedgerEntry(
                next(self._ids), account, kind, -credits, usd, now, reason, request_id, reservation.model
            )
            state.entries.append(entry)
            state.committed[f"{kind} {request_id}"] = entry
            for period in ("day", "month"):
                key = period_key(now, period)
                if key not in state.spent:  # a new period: the past ones are dropped
                    state.spent = {k: v for k, v in state.spent.items() if k[0] != period}
                old = state.spent.get(key, Usage())
                usd_total = old.usd if usd is None else old.usd + usd
                state.spent[key] = Usage(old.credits + credits, usd_total, old.unpriced or usd is None)
            return entry

    @staticmethod
    def _draw(state: _Account, credits: Decimal) -> None:
        """Take credits from the lots that expire first; what they cannot cover becomes debt."""
        changed, owed = draw(list(enumerate(lot.remaining for lot in state.lots)), credits)
        for index, remaining in changed:
            state.lots[index].remaining = remaining
        state.lots = [lot for lot in state.lots if lot.remaining > 0]
        state.debt += owed

    def release(self, reservation: Reservation) -> None:
        with self._lock:
            self._drop(self._account(reservation.account), reservation)

    def balance(self, account: str) -> Decimal:
        with self._lock:
            state = self._account(account)
            self._expire(account, state, self._clock())
            return self._balance(state)

    def reserved(self, account: str) -> Decimal:
        with self._lock:
            return self._account(account).reserved_credits

    def grant(
        self, account: str, credits: Decimal, reason: str, expires: datetime | None, *, key: str | None = None,
        usd: Decimal | None = None,
    ) -> LedgerEntry:  # fmt: skip
        check_grant(credits)
        now = self._clock()
        with self._lock:
            state = self._account(account)
            if key is not None and key in self._grant_keys:
                return self._grant_keys[key]
            state.has_grants = True
            repaid = min(state.debt, credits)
            state.debt -= repaid
            if credits - repaid > 0:
                state.lots.append(_Lot(credits - repaid, expires))
                state.lots.sort(key=lambda lot: lot.expires or _NEVER)
            entry = LedgerEntry(next(self._ids), account, "grant", credits, usd, now, reason, key, expires=expires)
            state.entries.append(entry)
            if key is not None:
                self._grant_keys[key] = entry
            return entry

    def record(self, account: str, kind: str, reason: str, request_id: str, model: str | None) -> LedgerEntry:
        with self._lock:
            state = self._account(account)
            for entry in state.entries:
                if entry.kind == kind and entry.request_id == request_id:
                    return entry
            now = self._clock()
            entry = LedgerEntry(next(self._ids), account, kind, Decimal(0), Decimal(0), now, reason, request_id, model)
            state.entries.append(entry)
            return entry

    def set_budget(self, account: str, budget: Budget) -> None:
        with self._lock:
            state = self._account(account)
            if budget.credits is None and budget.usd is None:
                state.budgets.pop(budget.period, None)
            else:
                state.budgets[budget.period] = budget

    def budgets(self, account: str) -> list[Budget]:
        with self._lock:
            found = self._account(account).budgets
            return [found[p] for p in ("day", "month") if p in found]

    def history(self, account: str) -> list[LedgerEntry]:
        with self._lock:
            state = self._account(account)
            self._expire(account, state, self._clock())
            return list(state.entries)

    def accounts(self) -> list[str]:
        with self._lock:
            return sorted(self._accounts)

    def close(self) -> None:
        pass
