"""pytest fixtures, registered automatically when genai-sdk is installed (entry point ``pytest11``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._server import Emulator


@pytest.fixture
def genai_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """A running emulator, with OPENAI_BASE_URL and OPENAI_API_KEY pointing at it for the test."""
    from ._server import Emulator

    with Emulator() as emulator:
        for key, value in emulator.env().items():
            monkeypatch.setenv(key, value)
        yield emulator
