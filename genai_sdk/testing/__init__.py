"""Testing helpers: an emulator of the hosted APIs, over real HTTP on loopback, with fault injection.

Loaded on first use, so that the pytest plugin this package registers costs nothing in test runs that do not use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._answer_faults import CHAOS_OPENAI_IMAGES, CHAOS_REPLICATE
    from ._api_openai import ROUTES
    from ._api_replicate import EmulatedModel
    from ._fake import FakeCall, FakeProvider
    from ._server import DEFAULT_BLOCKED, DEFAULT_KEY, FAULTS, Emulator
    from ._wire import Fault, RecordedRequest

__all__ = [
    "CHAOS_OPENAI_IMAGES", "CHAOS_REPLICATE", "DEFAULT_BLOCKED", "DEFAULT_KEY", "FAULTS", "ROUTES", "EmulatedModel",
    "Emulator", "FakeCall", "FakeProvider", "Fault", "RecordedRequest",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    if name == "EmulatedModel":
        from ._api_replicate import EmulatedModel

        return EmulatedModel
    if name == "ROUTES":
        from ._api_openai import ROUTES

        return ROUTES
    if name in ("Fault", "RecordedRequest"):
        from . import _wire

        return getattr(_wire, name)
    if name in ("FakeProvider", "FakeCall"):
        from . import _fake

        return getattr(_fake, name)
    if name.startswith("CHAOS_"):
        from . import _answer_faults

        return getattr(_answer_faults, name)
    if name in __all__:
        from . import _server

        return getattr(_server, name)
    raise AttributeError(f"module 'genai_sdk.testing' has no attribute {name!r}")
