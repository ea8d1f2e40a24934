"""Credits: the ledger, budgets, grants and prices."""

from __future__ import annotations

from .._errors import ConfigError
from ._base import Budget, Ledger, Reservation
from ._memory import MemoryLedger


def open_ledger(url: str) -> Ledger:
    """Open the ledger a URL names: ``memory://`` (this release); SQLite and PostgreSQL come with the durable ledger."""
    scheme = url.split(":", 1)[0].lower()
    if url.startswith("memory://"):
        return MemoryLedger()
    if scheme in ("sqlite", "postgresql", "postgres"):
        raise ConfigError(
            f"ledger {url!r}: the {scheme} ledger is not part of this release yet; use ledger='memory://'"
        )
    raise ConfigError(f"unknown ledger URL {url!r}: use memory://, sqlite:///path or postgresql://...")


__all__ = ["Budget", "Ledger", "MemoryLedger", "Reservation", "open_ledger"]
