"""Credit plans: how calls are priced in credits, and what an account is given.

- ``usd`` (the default): a call costs its USD price times ``credits_per_usd``; accounts get what is granted.
- ``dalle``: the DALL-E scheme. Each prompt (one call, whatever ``n``) costs one credit; an account gets 50 free
  credits in its first month and 15 in each later month, each lot expiring at the month's end; 115 credits can be
  bought for 15 USD.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from .._errors import ConfigError, InvalidRequestError
from .._requests import Cost, LedgerEntry
from ._base import Ledger
from ._rules import next_period


class Plan(Protocol):
    name: str

    def price(self, cost: Cost) -> Cost:
        """The cost in this plan's credits (USD unchanged)."""

    def prepare(self, ledger: Ledger, account: str, now: datetime) -> None:
        """Give the account what the plan gives it by ``now`` (idempotent)."""

    def buy(self, ledger: Ledger, account: str, packs: int) -> LedgerEntry: ...


class UsdPlan:
    name = "usd"

    def price(self, cost: Cost) -> Cost:
        return cost

    def prepare(self, ledger: Ledger, account: str, now: datetime) -> None:
        pass

    def buy(self, ledger: Ledger, account: str, packs: int) -> LedgerEntry:
        raise InvalidRequestError("the 'usd' plan sells no packs of credits: record a purchase with credits.grant(...)")


class DallePlan:
    name = "dalle"
    CREDITS_PER_PROMPT = Decimal(1)
    FIRST_MONTH = Decimal(50)
    LATER_MONTHS = Decimal(15)
    PACK_CREDITS = Decimal(115)
    PACK_USD = Decimal(15)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: set[tuple[str, str]] = set()  # (account, month) already prepared by this process

    def price(self, cost: Cost) -> Cost:
        return Cost(self.CREDITS_PER_PROMPT, cost.usd, cost.estimated)

    def prepare(self, ledger: Ledger, account: str, now: datetime) -> None:
        month = f"{now.year:04d}-{now.month:02d}"
        with self._lock:
            if (account, month) in self._done:
                return
        end = next_period(now, "month") - timedelta(microseconds=1)
        first = f"DALL-E plan: free credits for the first month ({month})"
        welcome = ledger.grant(account, self.FIRST_MONTH, first, end, key=f"dalle:{account}:first")
        if (welcome.created.year, welcome.created.month) != (now.year, now.month):
            later = f"DALL-E plan: free credits for {month}"
            ledger.grant(account, self.LATER_MONTHS, later, end, key=f"dalle:{account}:{month}")
        with self._lock:
            self._done.add((account, month))

    def buy(self, ledger: Ledger, account: str, packs: int) -> LedgerEntry:
        if isinstance(packs, bool) or not isinstance(packs, int) or packs < 1:
            raise InvalidRequestError(f"packs={packs!r}: buy at least one pack")
        usd = self.PACK_USD * packs
        reason = f"purchase: {packs} x {self.PACK_CREDITS} credits for {usd} USD"
        return ledger.grant(account, self.PACK_CREDITS * packs, reason, None, usd=usd)


def plan_named(name: str) -> Plan:
    if name not in ("usd", "dalle"):
        raise ConfigError(f"unknown credit plan {name!r}: use 'usd' or 'dalle'")
    return UsdPlan() if name == "usd" else DallePlan()
