"""`genai_sdk.batch.ray` on a two-node Ray cluster, both nodes on 127.0.0.1: one PostgreSQL ledger and one rate limit
for both, and an SQLite ledger refused, saying why."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import genai_sdk as genai
from genai_sdk.batch import Item
from genai_sdk.batch.ray import run_dataset
from genai_sdk.testing import Emulator

from .test_batch_ray import _deadline, _most_in_window, ray  # noqa: F401 - _deadline: the same per-test deadline


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()
        nodes = [node for node in ray.nodes() if node["Alive"]]
        assert len(nodes) == 2 and {node["NodeManagerAddress"] for node in nodes} == {"127.0.0.1"}, nodes
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_an_sqlite_ledger_is_refused_for_two_nodes(
    two_nodes: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GENAI_LEDGER", f"sqlite:///{tmp_path / 'ledger.db'}")
    with pytest.raises(genai.ConfigError, match="this cluster has 2 nodes"):
        run_dataset([Item("a", "a cat")], task="image", out=tmp_path, job_id="j")


def test_one_postgres_ledger_and_one_rate_limit_for_two_nodes(
    two_nodes: Any, monkeypatch: pytest.MonkeyPatch, genai_emulator: Emulator, postgres_url: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("GENAI_LEDGER", postgres_url)
    items = [Item(f"p{i}", f"a paper lantern number {i}") for i in range(8)] + [Item("no", "a nude statue")]
    # 0.75 CPU an actor: two cannot share a one-CPU node, so each node holds one (and keeps a quarter for Ray Data).
    summary = run_dataset(items, task="image", model="openai:dall-e-2", out=tmp_path, job_id="lanterns", workers=2,
                          cpus_per_worker=0.75, batch_size=1, settings={"size": "256x256"},
                          rate_limit={"openai": {"requests": 2, "per": 2.0}})  # fmt: skip
    assert summary.counts == {"ok": 8, "refused": 1}
    client = genai.Client(ledger=postgres_url)
    charges = [e for e in client.credits.history() if e.kind == "charge"]
    calls = genai_emulator.calls("images.generate")
    assert len(charges) == len(calls) == 8 and client.credits.reserved() == 0
    # Slots are taken as a request leaves; it reaches the emulator up to a few tenths of a second later on a loaded
    # machine, so the window checked is the limit's period less that slack: never more than the limit in it.
    assert _most_in_window([call.received for call in calls], 1.5) <= 2
    client.close()
