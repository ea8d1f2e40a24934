"""The ledger's rules, shared by every backend: what a reservation may take, and how a charge draws on grants."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from .._errors import BudgetExceededError, InvalidRequestError
from ._base import Budget

K = TypeVar("K", bound=Hashable)


def utcnow() -> datetime:
    return datetime.now(UTC)


def period_start(moment: datetime, period: str) -> datetime:
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return start if period == "day" else start.replace(day=1)


def next_period(moment: datetime, period: str) -> datetime:
    """The start of the day or month after the one ``moment`` is in."""
    start = period_start(moment, period)
    if period == "day":
        return start + timedelta(days=1)
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


@dataclass(frozen=True)
class Usage:
    """Spending in a period, reservations included."""

    credits: Decimal = Decimal(0)
    usd: Decimal = Decimal(0)
    unpriced: bool = False


def check_reserve(
    account: str, credits: Decimal, usd: Decimal | None, *, available: Decimal | None, budgets: Iterable[Budget],
    usage: Callable[[str], Usage],
) -> None:  # fmt: skip
    """Raise BudgetExceededError if reserving ``credits`` (and ``usd``) would overspend the balance or a budget.

    ``available`` is the balance left after other calls' reservations (None: the account is unlimited);
    ``usage(period)`` is what was spent in the current day or month, other calls' reservations included."""
    if available is not None and credits > available:
        raise BudgetExceededError(
            f"account {account!r} has {available} credits left (after other calls' reservations); this call needs {credits}",
            account=account,
            needed=credits,
            available=available,
        )
    for budget in budgets:
        spent = usage(budget.period)
        if budget.credits is not None and spent.credits + credits > budget.credits:
            raise BudgetExceededError(
                f"account {account!r} would spend {spent.credits + credits} credits this {budget.period}, "
                f"over its budget of {budget.credits}",
                account=account,
                needed=credits,
                available=budget.credits - spent.credits,
            )
        if budget.usd is not None:
            # Spending whose USD price was unknown (a backend billed by time, say) cannot count in USD: the budget
            # holds the priced spending, and refuses only a call that is itself unpriced.
            if usd is None:
                raise BudgetExceededError(
                    f"account {account!r} has a USD budget, and this call's price in USD is unknown, "
                    "so it cannot be held to it: set a credit budget instead, or configure a price",
                    account=account,
                )
            if spent.usd + usd > budget.usd:
                raise BudgetExceededError(
                    f"account {account!r} would spend ${spent.usd + usd} this {budget.period}, "
                    f"over its budget of ${budget.usd}",
                    account=account,
                    needed=usd,
                    available=budget.usd - spent.usd,
                )


def check_grant(credits: Decimal) -> None:
    if credits <= 0:
        raise InvalidRequestError(f"a grant must be positive, not {credits}")


def draw(lots: Sequence[tuple[K, Decimal]], credits: Decimal) -> tuple[list[tuple[K, Decimal]], Decimal]:
    """Take ``credits`` from lots given in the order they should be spent (soonest expiry first).

    Returns the lots whose remainder changed, with their new remainder, and what no lot could cover (debt)."""
    owed = credits
    changed: list[tuple[K, Decimal]] = []
    for key, remaining in lots:
        if owed <= 0:
            break
        take = min(remaining, owed)
        changed.append((key, remaining - take))
        owed -= take
    return changed, max(owed, Decimal(0))
