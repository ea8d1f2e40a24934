"""A dataset job whose process is killed (SIGKILL or os._exit: no clean-up) at each moment of an item's call, then
run again: nothing is paid twice, nothing paid for is lost, and what cannot be known is said."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import genai_sdk as genai
from genai_sdk.batch import Item, aprocess_item, process_item, run_items
from genai_sdk.testing import Emulator

WAN = "replicate:wan-video/wan-2.2-t2v-fast"

# A worker of a job: one item, with a hook that kills the process (os._exit: no clean-up) at a chosen point.
_WORKER = textwrap.dedent(
    """
    import os, sys
    import genai_sdk as genai
    import genai_sdk.batch as batch
    from genai_sdk.credits._sql import SQLLedger

    ledger, out, model, prompt, die_at = sys.argv[1:6]
    def die(*args, **kwargs):
        os._exit(9)
    if die_at == "charge":  # outputs saved, the charge not yet made
        SQLLedger.commit = die
    elif die_at == "mark":  # charged, not yet marked done
        batch._finish = die
    client = genai.Client(ledger=ledger, policy="off", timeout=300)
    settings = {"seconds": 2, "fps": 16} if model.startswith("replicate:") else {"size": "256x256"}
    task = "video" if model.startswith("replicate:") else "image"
    row = batch.process_item(client, task, batch.Item("one", prompt), out=out, job_id="job", model=model,
                             settings=settings)
    print("finished, which the test did not want:", row)
    """
)


def _killed(ledger: str, out: Path, model: str, die_at: str, until: Callable[[], bool] | None = None) -> None:
    """Run the worker until it dies at ``die_at`` (or, with ``until``, kill it once that holds)."""
    worker = subprocess.Popen(
        [sys.executable, "-c", _WORKER, ledger, str(out), model, "a brass lamp on a desk", die_at],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        if until is not None:
            deadline = time.monotonic() + 60
            while not until():
                assert worker.poll() is None, worker.communicate()
                assert time.monotonic() < deadline, "the worker never got there"
                time.sleep(0.05)
            worker.kill()
        out_text, err = worker.communicate(timeout=120)
    finally:
        worker.kill()
    assert worker.returncode == (-9 if until is not None else 9), err.decode()  # killed, or died where it was told


def _charges(client: genai.Client) -> list[genai.LedgerEntry]:
    return [e for e in client.credits.history() if e.kind == "charge"]


@pytest.mark.parametrize("die_at", ["charge", "mark"])
def test_outputs_saved_before_a_crash_are_charged_once_and_not_made_again(
    die_at: str, genai_emulator: Emulator, tmp_path: Path
) -> None:
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    _killed(ledger, tmp_path, "openai:dall-e-2", die_at)
    folder = tmp_path / "job" / "items" / "one"
    assert (folder / "staged.json").is_file() and not (folder / "provenance.json").exists()
    client = genai.Client(ledger=ledger, policy="off")
    assert len(_charges(client)) == (1 if die_at == "mark" else 0)
    row = process_item(client, "image", Item("one", "a brass lamp on a desk"), out=tmp_path, job_id="job",
                       model="openai:dall-e-2", settings={"size": "256x256"})  # fmt: skip
    assert row.status == "ok" and "saved by an earlier run" in (row.note or ""), row
    [charge] = _charges(client)  # one charge, whether the dead run made it or this one did
    assert -charge.credits == row.credits > 0
    assert len(genai_emulator.calls("images.generate")) == 1  # made once
    assert client.credits.reserved() == 0  # the dead call's reservation went with its charge
    assert genai.Image.from_path(row.outputs[0]).size == (256, 256)
    facts = json.loads((folder / "provenance.json").read_text())
    assert facts["outputs"] == ["image-0.png"] and not (folder / "staged.json").exists()
    again = process_item(client, "image", Item("one", "a brass lamp on a desk"), out=tmp_path, job_id="job",
                         model="openai:dall-e-2")  # fmt: skip
    assert again.status == "skipped" and len(_charges(client)) == 1


def test_a_backend_job_left_running_by_a_killed_worker_is_collected_not_made_again(
    genai_emulator: Emulator, tmp_path: Path
) -> None:
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    genai_emulator.replicate.job_seconds, genai_emulator.replicate.max_wait = 2.0, 0
    client = genai.Client(ledger=ledger, policy="off")
    _killed(ledger, tmp_path, WAN, "never", until=lambda: bool(client.jobs.list(status="running")))
    [job] = client.jobs.list(status="running")
    row = process_item(client, "video", Item("one", "a brass lamp on a desk"), out=tmp_path, job_id="job", model=WAN,
                       settings={"seconds": 2, "fps": 16})  # fmt: skip
    assert row.status == "ok" and job.id in (row.note or "")
    assert len(genai_emulator.calls("replicate.predictions.create")) == 1  # collected, not made again
    [charge] = _charges(client)
    assert charge.request_id == job.request_id and -charge.credits == row.credits
    assert client.credits.reserved() == 0 and client.jobs.get(job.id).status == "done"
    assert Path(row.outputs[0]).name == "video.mp4" and Path(row.outputs[0]).read_bytes()[4:8] == b"ftyp"


def test_a_call_lost_with_its_worker_is_made_again_and_the_row_says_so(
    genai_emulator: Emulator, tmp_path: Path
) -> None:
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    genai_emulator.latency = 5.0  # the worker is killed while the backend works
    _killed(ledger, tmp_path, "openai:dall-e-2", "never", until=lambda: genai_emulator.peak_in_flight("images.generate") > 0)
    genai_emulator.latency = 0.0
    client = genai.Client(ledger=ledger, policy="off")
    row = process_item(client, "image", Item("one", "a brass lamp on a desk"), out=tmp_path, job_id="job",
                       model="openai:dall-e-2", settings={"size": "256x256"})  # fmt: skip
    assert row.status == "ok" and "stopped while this item's call was in flight" in (row.note or "")
    assert "not in the ledger" in (row.note or "") and len(_charges(client)) == 1
    manifest = run_items([Item("one", "a brass lamp on a desk")], task="image", model="openai:dall-e-2",
                         out=tmp_path, job_id="job", client=client)  # fmt: skip
    assert manifest.counts == {"skipped": 1}


def test_a_call_that_fails_leaves_no_mark_for_a_later_run(genai_emulator: Emulator, tmp_path: Path) -> None:
    genai_emulator.fail("images.generate", "server_error", times=10)
    client = genai.Client(ledger="memory://", policy="off", max_retries=0)
    item = Item("one", "a brass lamp on a desk")
    first = process_item(client, "image", item, out=tmp_path, job_id="job", model="openai:dall-e-2")
    assert first.status == "failed" and first.note is None
    assert sorted(p.name for p in (tmp_path / "job" / "items" / "one").iterdir()) == []
    genai_emulator.clear()
    second = process_item(client, "image", item, out=tmp_path, job_id="job", model="openai:dall-e-2")
    assert second.status == "ok" and second.note is None  # nothing was in flight when the first run ended


def test_the_async_form_writes_and_charges_like_the_sync_one(genai_emulator: Emulator, tmp_path: Path) -> None:
    async def main() -> list[genai.batch.Row]:
        async with genai.AsyncClient(ledger="memory://") as client:
            items = [Item(f"p{i}", f"a clay pot number {i}") for i in range(4)] + [Item("bad", "a nude statue")]
            rows = await asyncio.gather(*(
                aprocess_item(client, "image", item, out=tmp_path, job_id="pots", model="openai:dall-e-2",
                              settings={"size": "256x256"}) for item in items
            ))  # fmt: skip
            charges = [e for e in await client.credits.history() if e.kind == "charge"]
            assert len(charges) == 4 and -sum(e.credits for e in charges) == sum(r.credits for r in rows)
            assert await client.credits.reserved() == 0
            return list(rows)

    rows = asyncio.run(main())
    assert [row.status for row in rows] == ["ok"] * 4 + ["refused"]
    assert all(genai.Image.from_path(row.outputs[0]).size == (256, 256) for row in rows[:4])
    assert not (tmp_path / "pots" / "items" / "bad" / "attempt.json").exists()
    assert len(genai_emulator.calls("images.generate")) == 4


def _staged_by_a_killed_run(genai_emulator: Emulator, tmp_path: Path) -> tuple[genai.Client, Path]:
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    _killed(ledger, tmp_path, "openai:dall-e-2", "charge")
    return genai.Client(ledger=ledger, policy="off"), tmp_path / "job" / "items" / "one"


def _again(client: genai.Client, tmp_path: Path) -> genai.batch.Row:
    return process_item(client, "image", Item("one", "a brass lamp on a desk"), out=tmp_path, job_id="job",
                        model="openai:dall-e-2", settings={"size": "256x256"})  # fmt: skip


@pytest.mark.parametrize(
    "forged",
    [{"account": "someone-else"}, {"credits": "-5000"}, {"credits": "NaN"}, {"credits": "lots"},
     {"request_id": "f" * 32}],
)  # fmt: skip
def test_a_staging_file_that_is_not_this_items_charge_is_set_aside(
    forged: dict[str, str], genai_emulator: Emulator, tmp_path: Path
) -> None:
    client, folder = _staged_by_a_killed_run(genai_emulator, tmp_path)
    staged = json.loads((folder / "staged.json").read_text())
    staged["charge"].update(forged)
    (folder / "staged.json").write_text(json.dumps(staged))
    row = _again(client, tmp_path)
    assert row.status == "ok" and "set aside" in (row.note or "") and (folder / "staged.json.rejected").is_file()
    [charge] = _charges(client)  # this run's call only: nothing charged from a file
    assert charge.account == "default" and -charge.credits == row.credits > 0
    assert len(genai_emulator.calls("images.generate")) == 2


def test_outputs_a_killed_run_saved_and_someone_deleted_are_charged_and_made_again(
    genai_emulator: Emulator, tmp_path: Path
) -> None:
    client, folder = _staged_by_a_killed_run(genai_emulator, tmp_path)
    (folder / "image-0.png").unlink()
    row = _again(client, tmp_path)
    assert row.status == "ok" and "outputs are gone" in (row.note or "")
    assert len(_charges(client)) == len(genai_emulator.calls("images.generate")) == 2  # both calls, both billed
    assert client.credits.reserved() == 0


def test_two_runs_of_one_item_at_once_make_it_once(genai_emulator: Emulator, tmp_path: Path) -> None:
    genai_emulator.latency = 1.0
    client = genai.Client(ledger="memory://", policy="off")
    item = Item("one", "a brass lamp on a desk")
    with ThreadPoolExecutor(2) as pool:
        rows = list(pool.map(lambda _: process_item(client, "image", item, out=tmp_path, job_id="job",
                                                    model="openai:dall-e-2"), range(2)))  # fmt: skip
    assert sorted(row.status for row in rows) == ["failed", "ok"]
    [busy] = [row for row in rows if row.status == "failed"]
    assert busy.error_type == "InProgress" and "another run is making this item now" in str(busy.note)
    assert len(genai_emulator.calls("images.generate")) == 1 and len(_charges(client)) == 1


def test_a_charge_that_failed_after_the_outputs_were_saved_is_settled_by_the_next_run(
    genai_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = genai.Client(ledger="memory://", policy="off")
    ledger = client._pipeline.ledger
    commit = ledger.commit

    def down(*args: object, **kwargs: object) -> object:
        raise genai.ConfigError("the ledger database is unreachable")

    monkeypatch.setattr(ledger, "commit", down)
    first = _again(client, tmp_path)
    assert first.status != "ok" and "charge is pending" in (first.note or "") and _charges(client) == []
    monkeypatch.setattr(ledger, "commit", commit)
    second = _again(client, tmp_path)  # the same process: the earlier call is over, not in progress
    assert second.status == "ok" and "charged once" in (second.note or "")
    assert len(_charges(client)) == len(genai_emulator.calls("images.generate")) == 1
    assert client.credits.reserved() == 0
