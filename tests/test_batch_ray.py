"""`genai_sdk.batch.ray`: a job on a local Ray instance bound to 127.0.0.1, against the emulator, with one SQLite
ledger, the cluster's rate limit and budget breaker. Every test has a deadline: Ray fails by hanging."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # read when Ray is imported: loopback only
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ray = pytest.importorskip("ray", reason="the Ray runner needs the 'ray' extra: pip install 'genai-sdk[ray]'")

import genai_sdk as genai  # noqa: E402
from genai_sdk.batch import Item  # noqa: E402
from genai_sdk.batch.ray import check_ledger, run_dataset  # noqa: E402
from genai_sdk.testing import Emulator  # noqa: E402

DEADLINE = 180  # seconds any one test may take


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    addresses = {node["NodeManagerAddress"] for node in ray.nodes()}
    try:
        assert addresses == {"127.0.0.1"}, f"Ray bound {addresses}, not only the loopback address"
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(autouse=True)
def _deadline() -> Iterator[None]:
    def expired(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"the test ran past {DEADLINE} s (Ray hangs rather than fails)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(DEADLINE)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, genai_emulator: Emulator) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("GENAI_LEDGER", url)  # the workers' ledger: through their environment, never an argument
    return url


def _most_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max((sum(1 for t in times[i:] if t < start + window) for i, start in enumerate(times)), default=0)


def test_a_job_on_ray_keeps_the_ledger_exact_and_reruns_skip(
    local_ray: Any, ledger: str, genai_emulator: Emulator, tmp_path: Path
) -> None:
    items = [Item(f"p{i}", f"a ceramic bowl number {i}") for i in range(6)] + [Item("bad", "a nude statue")]
    summary = run_dataset(items, task="image", model="openai:dall-e-2", out=tmp_path / "out", job_id="bowls",
                          workers=2, settings={"size": "256x256"})  # fmt: skip
    assert summary.counts == {"ok": 6, "refused": 1}
    assert [row.id for row in summary.rows] == [item.id for item in items]  # in input order
    client = genai.Client(ledger=ledger)
    charges = [e for e in client.credits.history() if e.kind == "charge"]
    calls = genai_emulator.calls("images.generate")
    assert len(charges) == len(calls) == 6 and client.credits.reserved() == 0  # charges = outputs = backend calls
    assert "a nude statue" not in {call.json["prompt"] for call in calls}  # refused before it was sent
    assert -sum(e.credits for e in charges) == summary.credits
    assert all(Path(path).is_file() for row in summary.rows for path in row.outputs)
    again = run_dataset(items, task="image", model="openai:dall-e-2", out=tmp_path / "out", job_id="bowls",
                        workers=2, settings={"size": "256x256"})  # fmt: skip
    assert again.counts == {"skipped": 6, "refused": 1} and len(genai_emulator.calls("images.generate")) == 6


def test_one_rate_limit_for_every_worker(local_ray: Any, ledger: str, genai_emulator: Emulator, tmp_path: Path) -> None:
    items = [Item(f"p{i}", f"a glass jar number {i}") for i in range(8)]
    summary = run_dataset(items, task="image", model="openai:dall-e-2", out=tmp_path, job_id="jars", workers=2,
                          batch_size=1, rate_limit={"openai": {"requests": 2, "per": 2.0}})  # fmt: skip
    assert summary.counts == {"ok": 8}
    arrivals = [call.received for call in genai_emulator.calls("images.generate")]
    # Slots are taken as a request leaves and it arrives a little later: the window checked leaves that slack.
    assert _most_in_window(arrivals, 1.5) <= 2  # two workers, one limit: never twice it


def test_the_budget_breaker_stops_the_job(local_ray: Any, ledger: str, genai_emulator: Emulator, tmp_path: Path) -> None:
    genai.Client(ledger=ledger).credits.grant(5)  # three pictures at 1.6 credits
    items = [Item(f"p{i}", f"a tin can number {i}") for i in range(30)]
    summary = run_dataset(items, task="image", model="openai:dall-e-2", out=tmp_path, job_id="cans", workers=1,
                          batch_size=1, settings={"size": "256x256"}, budget_breaker=2)  # fmt: skip
    assert summary.counts.get("ok") == 3 and summary.stopped is not None and len(summary.rows) < 30
    assert len(genai_emulator.calls("images.generate")) == 3


def test_speech_on_ray_with_the_bundled_voice(local_ray: Any, ledger: str, tmp_path: Path) -> None:
    pytest.importorskip("piper", reason="local speech needs the 'local' extra")
    summary = run_dataset([Item("a", "One."), Item("b", "Two.")], task="synthesize", out=tmp_path, job_id="voice",
                          workers=1)  # fmt: skip
    assert summary.counts == {"ok": 2}
    assert genai.Audio.from_path(summary.rows[0].outputs[0]).duration


def test_one_ledger_for_the_cluster_is_checked() -> None:
    check_ledger("sqlite:///x.db", 1)
    check_ledger("postgresql://db/ledger", 3)
    with pytest.raises(genai.ConfigError, match="SQLite ledger is a file on one machine"):
        check_ledger("sqlite:///x.db", 2)
    with pytest.raises(genai.ConfigError, match="memory:// ledger would give every Ray worker"):
        check_ledger("memory://", 1)


def test_secrets_never_travel_as_constructor_arguments(tmp_path: Path) -> None:
    with pytest.raises(genai.ConfigError, match="set GENAI_LEDGER"):
        run_dataset([Item("a", "x")], task="image", out=tmp_path, job_id="j",
                    client_settings={"ledger": "postgresql://user:secret@db/ledger"})  # fmt: skip


def test_an_actor_killed_mid_job_is_replaced_and_nothing_is_charged_twice(
    local_ray: Any, ledger: str, genai_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first call to reach the backend-call stage kills its actor (os._exit: no clean-up). Ray starts another and
    retries the batch: items already written are skipped, the one that died is made again; each output is charged
    once, and the dead call's reservation comes back after the workers' short time-to-live."""
    monkeypatch.setenv("GENAI_RESERVATION_TTL", "2")
    marker = tmp_path / "killed-once"

    def die_once(progress: genai.Progress) -> None:
        if progress.stage == "started" and not marker.exists():
            marker.write_text("x")
            os._exit(1)

    items = [Item(f"p{i}", f"a wooden spoon number {i}") for i in range(6)]
    summary = run_dataset(items, task="image", model="openai:dall-e-2", out=tmp_path / "out", job_id="spoons",
                          workers=1, batch_size=2, settings={"size": "256x256", "on_progress": die_once})  # fmt: skip
    assert marker.exists() and summary.counts == {"ok": 6}
    [lost] = [row for row in summary.rows if row.note]  # the item whose actor died says what cannot be known
    assert "stopped while this item's call was in flight" in str(lost.note)
    client = genai.Client(ledger=ledger)
    charges = [e for e in client.credits.history() if e.kind == "charge"]
    assert len(charges) == len(genai_emulator.calls("images.generate")) == 6  # the killed call was never sent
    import time

    time.sleep(2.5)  # the dead call's reservation expires
    assert client.credits.reserved() == 0


def test_async_workers_keep_several_calls_in_flight_an_actor(
    local_ray: Any, ledger: str, genai_emulator: Emulator, tmp_path: Path
) -> None:
    genai_emulator.latency = 0.3
    items = [Item(f"p{i}", f"a paper kite number {i}") for i in range(8)] + [Item("bad", "a nude statue")]
    summary = run_dataset(items, task="image", model="openai:dall-e-2", out=tmp_path, job_id="kites", workers=1,
                          calls_per_worker=4, batch_size=3, settings={"size": "256x256"})  # fmt: skip
    assert summary.counts == {"ok": 8, "refused": 1}
    assert 2 <= genai_emulator.peak_in_flight("images.generate") <= 4  # one actor, several calls, never past the bound
    client = genai.Client(ledger=ledger)
    charges = [e for e in client.credits.history() if e.kind == "charge"]
    assert len(charges) == len(genai_emulator.calls("images.generate")) == 8 and client.credits.reserved() == 0
    assert -sum(e.credits for e in charges) == summary.credits
    assert all(genai.Image.from_path(path).size == (256, 256) for row in summary.rows for path in row.outputs)
    with pytest.raises(genai.InvalidRequestError, match="calls_per_worker=0"):
        run_dataset(items, task="image", out=tmp_path, job_id="kites", calls_per_worker=0)
