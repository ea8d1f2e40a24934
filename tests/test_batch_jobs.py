"""The engine-neutral batch core (`genai_sdk.batch`): items with stable ids through the one request path, outputs
written atomically per item, a status row per item, a manifest per job, re-runs that skip, a budget breaker."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

import genai_sdk as genai
from genai_sdk.batch import DONE, Item, Row, run_items
from genai_sdk.testing import Emulator


def _client(**settings: object) -> genai.Client:
    return genai.Client(ledger="memory://", max_retries=0, **settings)  # type: ignore[arg-type]


def test_a_job_writes_each_item_and_a_manifest_and_every_item_ends_as_a_row(
    genai_emulator: Emulator, tmp_path: Path
) -> None:
    client = _client()
    genai_emulator.fail("images.generate", "server_error", times=5, when="cracked")
    items = [
        Item("kettle", "a red kettle"),
        Item("mug", "a blue mug", {"n": 2}),
        Item("vase", "a cracked vase"),  # the backend fails it
        Item("lamp", "a nude statue"),  # the content policy refuses it before anything is sent
        Item("chair", "a black chair", {"size": "7x7"}),  # not a size the model makes
    ]
    summary = run_items(items, task="image", model="openai:dall-e-2", out=tmp_path / "out", job_id="spring",
                        client=client, settings={"size": "256x256"}, concurrency=3)  # fmt: skip
    status = {row.id: row.status for row in summary.rows}
    assert status == {"kettle": "ok", "mug": "ok", "vase": "failed", "lamp": "refused", "chair": "invalid"}
    assert summary.counts == {"ok": 2, "failed": 1, "refused": 1, "invalid": 1}
    mug = tmp_path / "out" / "spring" / "items" / "mug"
    assert sorted(p.name for p in mug.iterdir()) == sorted([DONE, "image-0.png", "image-1.png"])
    facts = json.loads((mug / DONE).read_text())
    assert facts["model"] == "openai:dall-e-2" and facts["cost"]["usd"] == "0.032" and facts["item_id"] == "mug"
    assert not (tmp_path / "out" / "spring" / "items" / "vase" / DONE).exists()
    sent = sorted(call.json["prompt"] for call in genai_emulator.calls("images.generate"))
    assert "a nude statue" not in sent and "a black chair" not in sent
    charges = [e for e in client.credits.history() if e.kind == "charge"]
    assert len(charges) == 2 and summary.credits == -sum(e.credits for e in charges) == Decimal("4.8")
    assert client.credits.reserved() == 0
    manifest = json.loads(summary.manifest.read_text())
    assert manifest["counts"] == summary.counts and {r["id"] for r in manifest["rows"]} == set(status)


def test_a_rerun_skips_what_is_done_and_pays_nothing_twice(genai_emulator: Emulator, tmp_path: Path) -> None:
    client = _client()
    items = [Item(f"p{i}", f"a teapot number {i}") for i in range(4)]
    first = run_items(items, task="image", model="openai:dall-e-2", out=tmp_path, job_id="j", client=client)
    assert first.counts == {"ok": 4}
    again = run_items([*items, Item("p4", "a fifth teapot")], task="image", model="openai:dall-e-2", out=tmp_path,
                      job_id="j", client=client)  # fmt: skip
    assert again.counts == {"skipped": 4, "ok": 1} and again.credits == first.credits / 4
    assert len(genai_emulator.calls("images.generate")) == 5
    assert len([e for e in client.credits.history() if e.kind == "charge"]) == 5


def test_the_budget_breaker_stops_the_job_instead_of_refusing_every_item(genai_emulator: Emulator, tmp_path: Path) -> None:
    client = _client()
    client.credits.grant(5)  # three pictures at 1.6 credits
    items = [Item(f"p{i}", f"a cup number {i}") for i in range(40)]
    summary = run_items(items, task="image", model="openai:dall-e-2", out=tmp_path, job_id="j", client=client,
                        settings={"size": "256x256"}, concurrency=1, budget_breaker=3)  # fmt: skip
    assert summary.counts == {"ok": 3, "over_budget": 3} and summary.stopped is not None
    assert "budget is spent" in summary.stopped and len(summary.rows) == 6
    assert json.loads(summary.manifest.read_text())["stopped"] == summary.stopped
    client.credits.grant(100)  # topped up: a re-run carries on where it stopped
    rest = run_items(items, task="image", model="openai:dall-e-2", out=tmp_path, job_id="j", client=client,
                     settings={"size": "256x256"}, concurrency=4)  # fmt: skip
    assert rest.counts == {"skipped": 3, "ok": 37} and rest.stopped is None


def test_speech_tasks_with_the_bundled_models(tmp_path: Path) -> None:
    pytest.importorskip("piper", reason="local speech needs the 'local' extra")
    client = genai.Client(ledger="memory://")
    spoken = run_items([Item("hello", "Hello from the batch."), Item("bye", "Goodbye for now.")], task="synthesize",
                       out=tmp_path, job_id="speech", client=client)  # fmt: skip
    assert spoken.counts == {"ok": 2}
    wav = tmp_path / "speech" / "items" / "hello" / "speech.wav"
    assert genai.Audio.from_path(wav).duration
    heard = run_items([{"id": "hello", "input": str(wav)}, {"id": "missing", "input": str(tmp_path / "nope.wav")}],
                      task="transcribe", out=tmp_path, job_id="heard", client=client)  # fmt: skip
    rows: dict[str, Row] = {row.id: row for row in heard.rows}
    assert rows["hello"].status == "ok" and rows["missing"].status == "invalid"
    transcript = json.loads((tmp_path / "heard" / "items" / "hello" / "transcript.json").read_text())
    assert "batch" in transcript["text"].lower()


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([Item("../up", "x")], "item id '../up'"),
        ([Item("a", "x"), Item("a", "y")], "appears twice"),
        ([{"id": "a"}], "mapping with 'id' and 'input'"),
        ([Item("a", "")], "non-empty string"),
    ],
)
def test_bad_items_are_refused_before_anything_runs(items: list[object], message: str, tmp_path: Path) -> None:
    with pytest.raises(genai.InvalidRequestError, match=message):
        run_items(items, task="image", out=tmp_path, job_id="j", client=_client())  # type: ignore[arg-type]
    with pytest.raises(genai.InvalidRequestError, match="task='paint'"):
        run_items([], task="paint", out=tmp_path, job_id="j", client=_client())


def test_an_item_that_cannot_be_saved_is_not_paid_for_or_says_what_it_cost(
    genai_emulator: Emulator, tmp_path: Path
) -> None:
    client = _client()
    (tmp_path / "j" / "items").mkdir(parents=True)
    (tmp_path / "j" / "items" / "blocked").write_text("a file where the item's folder would be")
    summary = run_items([Item("blocked", "a green bowl")], task="image", model="openai:dall-e-2", out=tmp_path,
                        job_id="j", client=client)  # fmt: skip
    assert summary.rows[0].status == "invalid" and "cannot make the item's folder" in (summary.rows[0].error or "")
    assert genai_emulator.calls("images.generate") == [] and client.credits.history() == []


def test_a_mark_that_does_not_describe_the_folder_is_made_again(genai_emulator: Emulator, tmp_path: Path) -> None:
    client = _client()
    for bad in ("null", '{"outputs": 5}', '{"outputs": ["image-0.png"]}', "not json"):
        folder = tmp_path / "j" / "items" / "a"
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        (folder / DONE).write_text(bad)
        summary = run_items([Item("a", "a red bowl"), Item("b", "a blue bowl")], task="image",
                            model="openai:dall-e-2", out=tmp_path, job_id="j", client=client)  # fmt: skip
        assert {row.id: row.status for row in summary.rows}["a"] == "ok", bad  # made again, and the job went on
    assert len(summary.rows) == 2


def test_ids_that_differ_only_in_case_and_bad_tuning_are_refused(tmp_path: Path) -> None:
    with pytest.raises(genai.InvalidRequestError, match="ignoring case"):
        run_items([Item("A", "x"), Item("a", "y")], task="image", out=tmp_path, job_id="j", client=_client())
    with pytest.raises(genai.InvalidRequestError, match="budget_breaker=None"):
        run_items([Item("a", "x")], task="image", out=tmp_path, job_id="j", client=_client(),
                  budget_breaker=None)  # type: ignore[arg-type]  # fmt: skip


def test_an_output_that_cannot_be_written_after_the_call_reports_its_cost(
    genai_emulator: Emulator, tmp_path: Path
) -> None:
    client = _client()
    (tmp_path / "j" / "items" / "a" / "image-0.png").mkdir(parents=True)  # a folder where the picture would go
    [row] = run_items([Item("a", "a grey bowl")], task="image", model="openai:dall-e-2", out=tmp_path, job_id="j",
                      client=client, settings={"size": "256x256"}).rows  # fmt: skip
    assert row.status == "failed" and "made and charged, but its output could not be saved" in (row.error or "")
    assert row.credits == Decimal("1.6") and -client.credits.history()[0].credits == row.credits  # nothing hidden
