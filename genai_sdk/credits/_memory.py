"""An in-process ledger: exact and thread-safe, but forgotten when the process ends."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from .._errors import BudgetExceededError, InvalidRequestError
from .._requests import LedgerEntry
from ._base import Budget, Reservation


def utcnow() -> datetime:
    return datetime.now(UTC)


def period_start(moment: datetime, period: str) -> datetime:
    if period == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


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
    spent: dict[tuple[str, int, int, int], _Spent] = field(default_factory=dict)


@dataclass
class _Spent:
    credits: Decimal = Decimal(0)
    usd: Decimal = Decimal(0)
    unpriced: bool = False


class MemoryLedger:
    def __init__(self, clock: Callable[[], datetime] = utcnow) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._accounts: dict[str, _Account] = {}
        self._ids = itertools.count(1)
        self._reservation_ids = itertools.count(1)

    def _account(self, name: str) -> _Account:
        return self._accounts.setdefault(name, _Account())

    def _expire(self, account: str, state: _Account, now: datetime) -> None:
        # Lots are kept in expiry order, so expired ones are at the front.
        while state.lots and state.lots[0].expires is not None and state.lots[0].expires <= now:
            lot = state.lots.pop(0)
            state.entries.append(
                LedgerEntry(next(self._ids), account, "expiry", -lot.remaining, None, now, "grant expired")
            )

    @staticmethod
    def _hold(state: _Account, reservation: Reservation) -> None:
        state.reservations[reservation.id] = reservation
        state.reserved_credits += reservation.credits
        if reservation.usd is None:
            state.reserved_unpriced += 1
        else:
            state.reserved_usd += reservation.usd

    @staticmethod
    def _drop(state: _Account, reservation: Reservation) -> None:
        if state.reservations.pop(reservation.id, None) is None:
            return  # already committed or released
        state.reserved_credits -= reservation.credits
        if reservation.usd is None:
            state.reserved_unpriced -= 1
        else:
            state.reserved_usd -= reservation.usd

    def _available(self, state: _Account) -> Decimal:
        return sum((lot.remaining for lot in state.lots), Decimal(0)) - state.debt - state.reserved_credits

    def _spent_in(self, state: _Account, period: str, now: datetime) -> tuple[Decimal, Decimal, bool]:
        spent = state.spent.get(period_key(now, period)) or _Spent()
        return (
            spent.credits + state.reserved_credits,
            spent.usd + state.reserved_usd,
            spent.unpriced or state.reserved_unpriced > 0,
        )

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
            reservation = Reservation(f"r{next(self._reservation_ids)}", account, credits, usd, request_id, model, now)
            self._hold(state, reservation)
            return reservation

    def _check_budget(
        self, account: str, state: _Account, budget: Budget, now: datetime, credits: Decimal, usd: Decimal | None
    ) -> None:
        spent_credits, spent_usd, unpriced = self._spent_in(state, budget.period, now)
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
            self._drop(state, reservation)
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
            for period in ("day", "month"):
                key = period_key(now, period)
                if key not in state.spent:
                    state.spent = {k: v for k, v in state.spent.items() if k[0] != period}  # past periods
                    state.spent[key] = _Spent()
                totals = state.spent[key]
                totals.credits += credits
                if usd is None:
                    totals.unpriced = True
                else:
                    totals.usd += usd
            return entry

    @staticmethod
    def _draw(state: _Account, credits: Decimal) -> None:
        """Take credits from the lots that expire first; what they cannot cover becomes debt."""
        owed = credits
        while owed > 0 and state.lots:
            lot = state.lots[0]
            take = min(lot.remaining, owed)
            lot.remaining -= take
            owed -= take
            if lot.remaining <= 0:
                state.lots.pop(0)
        state.debt += owed

    def release(self, reservation: Reservation) -> None:
        with self._lock:
            self._drop(self._account(reservation.account), reservation)

    def balance(self, account: str) -> Decimal:
        with self._lock:
            state = self._account(account)
            self._expire(account, state, self._clock())
            if not state.has_grants:
                return -sum((-e.credits for e in state.entries if e.kind == "charge"), Decimal(0))
            return sum((lot.remaining for lot in state.lots), Decimal(0)) - state.debt

    def reserved(self, account: str) -> Decimal:
        with self._lock:
            return self._account(account).reserved_credits

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
                state.lots.sort(key=lambda lot: lot.expires or _NEVER)
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
