"""Testing helpers: an emulator of the hosted APIs, over real HTTP on loopback, with fault injection."""

from ._emulator import DEFAULT_BLOCKED, DEFAULT_KEY, FAULTS, ROUTES, Emulator, Fault, RecordedRequest

__all__ = ["DEFAULT_BLOCKED", "DEFAULT_KEY", "FAULTS", "ROUTES", "Emulator", "Fault", "RecordedRequest"]
