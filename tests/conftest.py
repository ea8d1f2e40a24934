from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import genai_sdk as genai

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No stray genai.toml, GENAI_* variable, real key or user ledger may leak into a test."""
    for key in list(os.environ):
        if key.startswith("GENAI_") or key in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))  # the default SQLite ledger lands here
    yield


def fast(client: genai.Client | genai.AsyncClient) -> genai.Client | genai.AsyncClient:
    """Keep backoff waits short in tests; Retry-After from the server is still honoured as sent."""
    client.retry_policy.initial_delay = 0.01
    client.retry_policy.max_delay = 0.05
    return client


@pytest.fixture
def client(genai_emulator: object) -> Iterator[genai.Client]:
    c = fast(genai.Client(image="openai:dall-e-2", max_retries=2))
    assert isinstance(c, genai.Client)
    yield c
    c.close()
