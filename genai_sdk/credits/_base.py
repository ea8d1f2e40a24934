"""The ledger interface every backend implements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from .._requests import LedgerEntry


@dataclass(frozen=True)
class Reservation:
    id: str
    account: str
    credits: Decimal
    usd: Decimal | None
    request_id: str
    model: str
    created: datetime


@dataclass(frozen=True)
class Budget:
    period: str  # "day" | "month"
    credits: Decimal | None = None
    usd: Decimal | None = None


class Ledger(Protocol):
    def reserve(self, account: str, credits: Decimal, usd: Decimal | None, request_id: str, model: str) -> Reservation:
        """Set credits aside atomically, or raise BudgetExceededError. Nothing is charged yet."""

    def commit(
        self, reservation: Reservation, credits: Decimal, usd: Decimal | None, *, kind: str = "charge", reason: str = ""
    ) -> LedgerEntry:
        """Charge the actual cost and drop the reservation. Idempotent on the reservation's request id and ``kind``:
        ``charge`` for what the caller got, ``spent`` for work a backend billed that the caller did not get (an
        unusable answer, a result file that could not be downloaded). Both count against budgets and the balance."""

    def release(self, reservation: Reservation) -> None:
        """Drop the reservation without charging. Idempotent."""

    def balance(self, account: str) -> Decimal: ...

    def grant(
        self, account: str, credits: Decimal, reason: str, expires: datetime | None, *, key: str | None = None,
        usd: Decimal | None = None,
    ) -> LedgerEntry:  # fmt: skip
        """Add credits. A grant with a ``key`` is made once: granting the same key again changes nothing."""

    def record(self, account: str, kind: str, reason: str, request_id: str, model: str | None) -> LedgerEntry:
        """Add a line of history that moves no credits (a refusal by the content policy). Idempotent on
        (kind, request_id)."""

    def set_budget(self, account: str, budget: Budget) -> None: ...

    def budgets(self, account: str) -> list[Budget]:
        """The account's budgets, a day's before a month's."""

    def history(self, account: str) -> list[LedgerEntry]: ...

    def reserved(self, account: str) -> Decimal: ...

    def accounts(self) -> list[str]: ...

    def close(self) -> None: ...


def check_commit_kind(kind: str) -> None:
    if kind not in ("charge", "spent"):
        raise ValueError(f"a commit is a 'charge' or 'spent', not {kind!r}")
