"""An in-process ledger: exact and thread-safe, but forgotten when the process ends."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from .._errors import BudgetExceededError, InvalidRequestError
from .._requests import LedgerEntry
from ._base import Budget, Reservation


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def period_start(moment: datetime, period: str) -> datetime:
    if period == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


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
    entries: list[LedgerEntry] = field(default_factory=list)
    committed: dict[str, LedgerEntry] = field(default_factory=dict)
    budgets: dict[str, Budget] = field(default_factory=dict)


class MemoryLedger:
    def __init__(self, clock: Callable[[], datetime] = utcnow) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._accounts: dict[str, _Account] = {}
        self._ids = itertools.count(1)

    def _account(self, name: str) -> _Account:
        return self._accounts.setdefault(name, _Account())

    def _expire(self, account: str, state: _Account, now: datetime) -> None:
        for lot in state.lots:
            if lot.expires is not None and lot.expires <= now and lot.remaining > 0:
                state.entries.append(
                    LedgerEntry(next(self._ids), account, "expiry", -lot.remaining, None, now, "grant expired")
                )
                lot.remaining = Decimal(0)
        state.lots = [lot for lot in state.lots if lot.remaining > 0]

    def _available(self, state: _Account) -> Decimal:
        reserved = sum((r.credits for r in state.reservations.values()), Decimal(0))
        return sum((lot.remaining for lot in state.lots), Decimal(0)) - state.debt - reserved

    def _spent_since(self, state: _Account, since: datetime) -> tuple[Decimal, Decimal, bool]:
        credits, usd, unpriced = Decimal(0), Decimal(0), False
        for entry in state.entries:
            if entry.kind == "charge" and entry.created >= since:
                credits += -entry.credits
                if entry.usd is None:
                    unpriced = True
                else:
                    usd += entry.usd
        for reservation in state.reservations.values():
            credits += reservation.credits
            if reservation.usd is None:
                unpriced = True
            else:
                usd += reservation.usd
        return credits, usd, unpriced

    def reserve(self, account: str, credits: Decimal, usd: Decimal | None, request_id: str, model: str) -> Reservation:
        now = self._clock()
        with self._lock:
            state = self._account(account)
            self._expire(account, state, now)
            if state.has_grants:
                available = self._available(state)
                if credits > available:
                    raise BudgetExceededError(
                        f"account {account!r} has {available} credits left (after other calls' reservations); "
                        f"this call needs {credits}",
                        account=account,
                        needed=credits,
                        available=available,
                    )
            for budget in state.budgets.values():
                self._check_budget(account, state, budget, now, credits, usd)
            reservation = Reservation(uuid.uuid4().hex, account, credits, usd, request_id, model, now)
            state.reservations[reservation.id] = reservation
            return reservation

    def _check_budget(
        self, account: str, state: _Account, budget: Budget, now: datetime, credits: Decimal, usd: Decimal | None
    ) -> None:
        spent_credits, spent_usd, unpriced = self._spent_since(state, period_start(now, budget.period))
        if budget.credits is not None and spent_credits + credits > budget.credits:
            raise BudgetExceededError(
                f"account {account!r} would spend {spent_credits + credits} credits this {budget.period}, "
                f"over its budget of {budget.credits}",
                account=account,
                needed=credits,
                available=budget.credits - spent_credits,
            )
        if budget.usd is not None:
            if usd is None or unpriced:
                raise BudgetExceededError(
                    f"account {account!r} has a USD budget, and this call's price in USD is unknown, "
                    "so it cannot be held to it: set a credit budget instead, or configure a price",
                    account=account,
                )
            if spent_usd + usd > budget.usd:
                raise BudgetExceededError(
                    f"account {account!r} would spend ${spent_usd + usd} this {budget.period}, "
                    f"over its budget of ${budget.usd}",
                    account=account,
                    needed=usd,
                    available=budget.usd - spent_usd,
                )

    def commit(self, reservation: Reservation, credits: Decimal, usd: Decimal | None) -> LedgerEntry:
        now = self._clock()
        with self._lock:
            state = self._account(reservation.account)
            done = state.committed.get(reservation.request_id)
            if done is not None:
                return done
            state.reservations.pop(reservation.id, None)
            self._expire(reservation.account, state, now)
            if state.has_grants:
                self._draw(state, credits)
            entry = LedgerEntry(
                next(self._ids),
                reservation.account,
                "charge",
                -credits,
                usd,
                now,
                "",
                reservation.request_id,
                reservation.model,
            )
            state.entries.append(entry)
            state.committed[reservation.request_id] = entry
            return entry

    @staticmethod
    def _draw(state: _Account, credits: Decimal) -> None:
        owed = credits
        far_future = datetime.max.replace(tzinfo=timezone.utc)
        for lot in sorted(state.lots, key=lambda lot: lot.expires or far_future):
            take = min(lot.remaining, owed)
            lot.remaining -= take
            owed -= take
            if owed <= 0:
                break
        state.debt += owed
        state.lots = [lot for lot in state.lots if lot.remaining > 0]

    def release(self, reservation: Reservation) -> None:
        with self._lock:
            self._account(reservation.account).reservations.pop(reservation.id, None)

    def balance(self, account: str) -> Decimal:
        with self._lock:
            state = self._account(account)
            self._expire(account, state, self._clock())
            if not state.has_grants:
                return -sum((-e.credits for e in state.entries if e.kind == "charge"), Decimal(0))
            return sum((lot.remaining for lot in state.lots), Decimal(0)) - state.debt

    def reserved(self, account: str) -> Decimal:
        with self._lock:
            return sum((r.credits for r in self._account(account).reservations.values()), Decimal(0))

    def grant(self, account: str, credits: Decimal, reason: str, expires: datetime | None) -> LedgerEntry:
        if credits <= 0:
            raise InvalidRequestError(f"a grant must be positive, not {credits}")
        now = self._clock()
        with self._lock:
            state = self._account(account)
            state.has_grants = True
            repaid = min(state.debt, credits)
            state.debt -= repaid
            if credits - repaid > 0:
                state.lots.append(_Lot(credits - repaid, expires))
            entry = LedgerEntry(next(self._ids), account, "grant", credits, None, now, reason, expires=expires)
            state.entries.append(entry)
            return entry

    def set_budget(self, account: str, budget: Budget) -> None:
        with self._lock:
            state = self._account(account)
            if budget.credits is None and budget.usd is None:
                state.budgets.pop(budget.period, None)
            else:
                state.budgets[budget.period] = budget

    def history(self, account: str) -> list[LedgerEntry]:
        with self._lock:
            state = self._account(account)
            self._expire(account, state, self._clock())
            return list(state.entries)

    def close(self) -> None:
        pass
