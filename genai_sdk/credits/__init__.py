"""Credits: the ledger, budgets, grants, prices and credit plans."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs

from .._errors import ConfigError
from ._base import Budget, Ledger, Reservation
from ._memory import MemoryLedger
from ._rules import utcnow


def user_data_dir() -> Path:
    """Where the SDK keeps its data by default (the XDG data folder, Application Support, or %APPDATA%)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "genai"


def default_ledger_url() -> str:
    return f"sqlite://{(user_data_dir() / 'ledger.db').as_posix()}"


def sqlite_path(url: str) -> Path:
    """``sqlite:///abs/path.db`` (absolute), ``sqlite:relative.db`` or ``sqlite://~/x.db``; a query is not part of it."""
    rest = url[len("sqlite:") :].split("?", 1)[0].removeprefix("//")
    if not rest or rest in ("/", "."):
        raise ConfigError(f"ledger {url!r} names no file: write sqlite:///path/to/ledger.db")
    return Path(rest).expanduser()


def open_ledger(url: str | None, clock: Callable[[], datetime] = utcnow, reservation_ttl: float = 3600.0) -> Ledger:
    """The ledger a URL names: ``sqlite:///path`` (default: in the user's data folder), ``postgresql://...``,
    or ``memory://`` (exact, but forgotten when the process ends)."""
    url = url or default_ledger_url()
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        return MemoryLedger(clock)
    if scheme == "sqlite":
        from ._sql import SQLiteLedger

        synchronous = parse_qs(url.partition("?")[2]).get("synchronous", ["full"])[0].lower()
        if synchronous not in ("full", "normal"):
            raise ConfigError(f"ledger {url!r}: synchronous must be 'full' (the default) or 'normal'")
        return SQLiteLedger(sqlite_path(url), clock, reservation_ttl, synchronous=synchronous)
    if scheme in ("postgresql", "postgres"):
        from ._sql import PostgresLedger

        return PostgresLedger(url, clock, reservation_ttl)
    raise ConfigError(f"unknown ledger URL {url!r}: use sqlite:///path, postgresql://... or memory://")


__all__ = ["Budget", "Ledger", "MemoryLedger", "Reservation", "default_ledger_url", "open_ledger", "user_data_dir"]
