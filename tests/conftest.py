from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

import genai_sdk as genai

REPO = Path(__file__).resolve().parent.parent
POSTGRES_ENV = "GENAI_TEST_POSTGRES_URL"


def pytest_configure(config: pytest.Config) -> None:
    """Before any fixture runs, module-scoped ones included: no test may touch the user's own data folder."""
    import tempfile

    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="genai-test-data-")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No stray genai.toml, GENAI_* variable, real key or user ledger may leak into a test."""
    from genai_sdk.providers._specs import environment_variables

    providers = set(environment_variables())  # every backend's keys and base URLs, from the providers' table
    for key in list(os.environ):
        if (key.startswith("GENAI_") and key != POSTGRES_ENV) or key in providers:
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))  # the default SQLite ledger lands here
    yield


_AnyClient = TypeVar("_AnyClient", genai.Client, genai.AsyncClient)


def fast(client: _AnyClient) -> _AnyClient:
    """Keep backoff waits short in tests; Retry-After from the server is still honoured as sent."""
    client.retry_policy.initial_delay = 0.01
    client.retry_policy.max_delay = 0.05
    return client


@pytest.fixture
def client(genai_emulator: object) -> Iterator[genai.Client]:
    c = fast(genai.Client(image="openai:dall-e-2", max_retries=2))
    yield c
    c.close()


def _postgres_admin_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"no PostgreSQL server: set {POSTGRES_ENV} (.ci/run starts a throwaway one and sets it)")
    try:
        import psycopg
    except ModuleNotFoundError:
        pytest.skip("psycopg is not installed: pip install -e '.[postgres]'")
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.Error as exc:
        pytest.skip(f"the PostgreSQL server at {POSTGRES_ENV} is not reachable: {str(exc).splitlines()[0]}")
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty database on the test server, dropped afterwards."""
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    admin = _postgres_admin_url()
    import psycopg

    name = f"genai_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def ledger_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite://{tmp_path_factory.mktemp('ledger') / 'ledger.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
