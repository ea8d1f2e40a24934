"""Datasets of work: items with stable ids, each run through the one request path and written to a folder of its own,
with a status row per item and a manifest per job. No engine is imported here: :func:`run_items` runs a job in this
process (a bounded thread pool), and ``genai_sdk.batch.ray`` runs the same per-item code on a Ray cluster.

    from genai_sdk.batch import Item, run_items

    items = [Item(f"sku-{n}", prompt) for n, prompt in enumerate(prompts)]
    summary = run_items(items, task="image", model="openai:gpt-image-1.5", out="catalogue", job_id="spring")
    summary.counts        # {"ok": 98, "refused": 1, "failed": 1}
    summary.credits, summary.usd, summary.manifest

An item never raises: each ends as a :class:`Row` with a status (``ok``, ``skipped``, ``refused``, ``over_budget``,
``invalid``, ``failed``), its cost, its output files and its error. An item whose folder already holds a finished
output (its ``provenance.json``, written last) is ``skipped``: re-running a job with the same ``job_id`` and ``out``
pays for nothing twice.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import InvalidRequestError

if TYPE_CHECKING:
    from .._client import Client

TASKS = ("image", "video", "transcribe", "synthesize")
STATUSES = ("ok", "skipped", "refused", "over_budget", "invalid", "failed")
DONE = "provenance.json"  # written last: an item's folder with it holds a finished output
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class Item:
    """One unit of work: ``id`` (stable across runs, used as its folder's name: letters, digits, ``.``, ``_``,
    ``-``), ``input`` (the prompt, the audio file, the text to speak) and settings for this item alone."""

    id: str
    input: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    """What became of one item."""

    id: str
    status: str
    model: str | None = None
    credits: Decimal = Decimal(0)
    usd: Decimal | None = Decimal(0)  # None: the cost is unpriced
    outputs: list[str] = field(default_factory=list)
    error: str | None = None
    error_type: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["credits"] = str(self.credits)
        data["usd"] = None if self.usd is None else str(self.usd)
        return data


@dataclass(frozen=True)
class Summary:
    """A job's outcome: rows by status, what it cost, where its manifest is."""

    job_id: str
    counts: dict[str, int]
    credits: Decimal
    usd: Decimal | None
    manifest: Path
    rows: list[Row]
    stopped: str | None = None  # why the job stopped before every item was tried (the budget breaker)


def item_folder(out: str | os.PathLike[str], job_id: str, item_id: str) -> Path:
    return Path(out) / job_id / "items" / item_id


def check_items(items: Iterable[Item | Mapping[str, Any]]) -> list[Item]:
    """Items as :class:`Item` (mappings with ``id`` and ``input`` accepted), ids valid and unique."""
    checked: list[Item] = []
    seen: set[str] = set()
    for raw in items:
        item = raw if isinstance(raw, Item) else _item(raw)
        if not isinstance(item.id, str) or not _ID.fullmatch(item.id) or item.id in (".", ".."):
            raise InvalidRequestError(
                f"item id {item.id!r}: use 1 to 128 letters, digits, '.', '_' or '-' (it names the item's folder)"
            )
        if item.id.casefold() in seen:  # folders of ids that differ only in case are one folder on some systems
            raise InvalidRequestError(f"item id {item.id!r} appears twice (ignoring case): ids must be unique in a job")
        if not isinstance(item.input, str) or not item.input:
            raise InvalidRequestError(f"item {item.id}: input must be a non-empty string (a prompt, a file, a text)")
        seen.add(item.id.casefold())
        checked.append(item)
    return checked


def _item(raw: object) -> Item:
    if not isinstance(raw, Mapping) or "id" not in raw or "input" not in raw:
        raise InvalidRequestError(f"an item is a genai_sdk.batch.Item or a mapping with 'id' and 'input', not {raw!r:.80}")
    options = {k: v for k, v in raw.items() if k not in ("id", "input")}
    return Item(str(raw["id"]), raw["input"], options)


def _call(client: Client, task: str, item: Item, model: str | None, settings: Mapping[str, Any]) -> Any:
    kwargs = {**settings, **item.options}
    if model is not None:
        kwargs.setdefault("model", model)
    if task == "image":
        return client.images.generate(item.input, **kwargs)
    if task == "video":
        return client.videos.generate(item.input, **kwargs)
    if task == "transcribe":
        return client.speech.transcribe(item.input, **kwargs)
    return client.speech.synthesize(item.input, **kwargs)


def _write(task: str, result: Any, folder: Path, item: Item, job_id: str) -> list[str]:
    """The item's outputs, each written atomically, and its provenance last (the mark that the item is done)."""
    from .._media import atomic_write

    folder.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    if task == "image":
        for j, image in enumerate(result.images):
            extension = {"image/jpeg": ".jpg", "image/webp": ".webp"}.get(image.media_type, ".png")
            image.save(folder / f"image-{j}{extension}")
            names.append(f"image-{j}{extension}")
    elif task == "video":
        result.video.save(folder / "video.mp4")
        names.append("video.mp4")
    elif task == "transcribe":
        atomic_write(folder / "transcript.json", lambda h: h.write(result.to_json().encode("utf-8")))
        atomic_write(folder / "transcript.srt", lambda h: h.write(result.to_srt().encode("utf-8")))
        names += ["transcript.json", "transcript.srt"]
    else:
        extension = {"audio/mpeg": ".mp3", "audio/flac": ".flac", "audio/ogg": ".ogg"}.get(result.audio.media_type, ".wav")
        result.audio.save(folder / f"speech{extension}")
        names.append(f"speech{extension}")
    facts = {
        "job_id": job_id, "item_id": item.id, "task": task, "model": result.model,
        "cost": {"credits": str(result.cost.credits), "usd": None if result.cost.usd is None else str(result.cost.usd)},
        "request_ids": list(getattr(result, "request_ids", [])), "warnings": list(result.warnings), "outputs": names,
        "finished": time.time(),
    }  # fmt: skip
    atomic_write(folder / DONE, lambda h: h.write(json.dumps(facts, indent=1).encode("utf-8")))
    return [str(folder / name) for name in names]


def _status(error: BaseException) -> str:
    """A row's status for the error its call ended with (the same words as ``CallEvent.outcome``)."""
    from .._observe import outcome_of

    outcome = outcome_of(error)
    return "failed" if outcome in ("error", "cancelled") else outcome


def process_item(
    client: Client, task: str, item: Item, *, out: str | os.PathLike[str], job_id: str, model: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Row:  # fmt: skip
    """One item through the one request path: skipped if its output is already there, else called, its outputs
    written atomically under its folder. Never raises (but for Ctrl-C): every failure is the row's status."""
    started = time.monotonic()
    try:
        return _process(client, task, item, out, job_id, model, settings or {}, started)
    except Exception as error:  # noqa: BLE001 - whatever it was, it is this item's row, never the job's end
        return Row(item.id, "failed", model, error=f"{type(error).__name__}: {error}", error_type=type(error).__name__,
                   seconds=time.monotonic() - started)  # fmt: skip


def _finished(folder: Path) -> list[str] | None:
    """The outputs of a finished item (its mark readable and sound, its files there), or None."""
    try:
        facts = json.loads((folder / DONE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    names = facts.get("outputs") if isinstance(facts, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) and (folder / n).is_file() for n in names):
        return None  # a mark that does not describe what is there: made again
    return [str(folder / name) for name in names]


def _process(client: Client, task: str, item: Item, out: str | os.PathLike[str], job_id: str, model: str | None,
             settings: Mapping[str, Any], started: float) -> Row:  # fmt: skip
    folder = item_folder(out, job_id, item.id)
    outputs = _finished(folder)
    if outputs is not None:
        facts = json.loads((folder / DONE).read_text(encoding="utf-8"))
        return Row(item.id, "skipped", str(facts.get("model") or "") or None, Decimal(0), Decimal(0), outputs)
    try:  # the folder first: an output that could not be saved must not be paid for
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return Row(item.id, "invalid", model, error=f"cannot make the item's folder {folder}: {error}",
                   error_type=type(error).__name__, seconds=time.monotonic() - started)  # fmt: skip
    try:
        result = _call(client, task, item, model, settings)
    except Exception as error:  # noqa: BLE001 - an item's failure is its row, never the job's
        return Row(item.id, _status(error), model, error=str(error), error_type=type(error).__name__,
                   seconds=time.monotonic() - started)  # fmt: skip
    cost = result.cost
    try:
        written = _write(task, result, folder, item, job_id)
    except Exception as error:  # noqa: BLE001 - made and charged, not saved: the row says so, with what it cost
        return Row(item.id, "failed", result.model, cost.credits, cost.usd,
                   error=f"made and charged, but its output could not be saved: {error}",
                   error_type=type(error).__name__, seconds=time.monotonic() - started)  # fmt: skip
    return Row(item.id, "ok", result.model, cost.credits, cost.usd, written, seconds=time.monotonic() - started)


class BudgetBreaker:
    """Stops a job once its budget is spent: after ``limit`` items in a row refused for the budget, no new item is
    tried (the rest of a dataset would only add over_budget rows). A later run resumes where it stopped."""

    def __init__(self, limit: int = 3) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._streak = 0
        self.tripped: str | None = None

    def allow(self) -> bool:
        return self.tripped is None

    def record(self, row: Row) -> None:
        with self._lock:
            if row.status == "over_budget":
                self._streak += 1
                if self._streak >= self.limit and self.tripped is None:
                    self.tripped = f"the budget is spent ({self._streak} items in a row refused for it): {row.error}"
            elif row.status != "skipped":
                self._streak = 0


def summarize(job_id: str, rows: list[Row], manifest: Path, stopped: str | None = None) -> Summary:
    counts = dict(Counter(row.status for row in rows))
    credits = sum((row.credits for row in rows), Decimal(0))
    usd: Decimal | None = Decimal(0)
    for row in rows:
        usd = None if usd is None or row.usd is None else usd + row.usd
    return Summary(job_id, counts, credits, usd, manifest, rows, stopped)


def write_manifest(out: str | os.PathLike[str], job_id: str, task: str, model: str | None, rows: list[Row],
                   stopped: str | None) -> Path:  # fmt: skip
    """``<out>/<job_id>/manifest.json``: the job's rows (this run's, skipped items included) and totals."""
    from .._media import atomic_write

    folder = Path(out) / job_id
    folder.mkdir(parents=True, exist_ok=True)
    summary = summarize(job_id, rows, folder / "manifest.json", stopped)
    document = {
        "job_id": job_id, "task": task, "model": model, "finished": time.time(), "counts": summary.counts,
        "credits": str(summary.credits), "usd": None if summary.usd is None else str(summary.usd), "stopped": stopped,
        "rows": [row.to_dict() for row in rows],
    }  # fmt: skip
    return atomic_write(folder / "manifest.json", lambda h: h.write(json.dumps(document, indent=1).encode("utf-8")))


def check_whole(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequestError(f"{name}={value!r}: give a whole number of at least 1")
    return value


def check_job(task: str, job_id: str) -> None:
    if task not in TASKS:
        raise InvalidRequestError(f"task={task!r}: use one of {', '.join(TASKS)}")
    if not isinstance(job_id, str) or not _ID.fullmatch(job_id):
        raise InvalidRequestError(f"job_id={job_id!r}: use 1 to 128 letters, digits, '.', '_' or '-' (it names a folder)")


def run_items(
    items: Iterable[Item | Mapping[str, Any]],
    *,
    task: str,
    out: str | os.PathLike[str],
    job_id: str,
    model: str | None = None,
    client: Client | None = None,
    concurrency: int = 8,
    settings: Mapping[str, Any] | None = None,
    budget_breaker: int = 3,
    on_row: Callable[[Row], None] | None = None,
) -> Summary:
    """Run a job in this process: every item through :func:`process_item`, ``concurrency`` at a time, with a
    :class:`BudgetBreaker`; writes ``<out>/<job_id>/manifest.json`` and returns the :class:`Summary`. ``client``
    defaults to ``genai_sdk.Client()`` (configured as usual), closed at the end when it was made here."""
    from .._batch import ITEM_CANCEL, Switch, check_concurrency

    check_job(task, job_id)
    workers = check_concurrency(concurrency)
    check_whole(budget_breaker, "budget_breaker")
    work = check_items(items)
    own = client is None
    if client is None:
        from .._client import Client

        client = Client()
    breaker = BudgetBreaker(budget_breaker)
    rows: list[Row | None] = [None] * len(work)
    lock = threading.Lock()
    queue = iter(enumerate(work))
    stop = threading.Event()
    switches: set[Switch] = set()

    def worker() -> None:
        assert client is not None
        while breaker.allow() and not stop.is_set():
            switch = Switch()
            with lock:
                index, item = next(queue, (-1, None))
                if item is None or stop.is_set():
                    return
                switches.add(switch)
            ITEM_CANCEL.set(switch)  # Ctrl-C stops the item's call at its next check, as for a single call
            try:
                row = process_item(client, task, item, out=out, job_id=job_id, model=model, settings=settings)
            except KeyboardInterrupt:  # its call was stopped: the item is not done, and a re-run makes it
                return
            finally:
                ITEM_CANCEL.set(None)
                with lock:
                    switches.discard(switch)
            rows[index] = row
            breaker.record(row)
            if on_row is not None:
                try:
                    on_row(row)
                except Exception as exc:  # noqa: BLE001 - a broken report must not lose rows paid for
                    import logging

                    logging.getLogger("genai_sdk").warning("on_row raised %s: %s", type(exc).__name__, exc)

    threads = [threading.Thread(target=worker, name=f"genai-job-{i}", daemon=True) for i in range(min(workers, len(work)) or 1)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.1)  # wakes for Ctrl-C
    except BaseException:  # Ctrl-C: no new item starts, those in flight stop; the manifest says what was done
        with lock:
            stop.set()
            for switch in switches:
                switch.flip()
        for thread in threads:
            thread.join()
        raise
    finally:
        finished = [row for row in rows if row is not None]
        write_manifest(out, job_id, task, model, finished, breaker.tripped)
        if own:
            client.close()
    return summarize(job_id, finished, Path(out) / job_id / "manifest.json", breaker.tripped)


__all__ = [
    "DONE", "STATUSES", "TASKS", "BudgetBreaker", "Item", "Row", "Summary", "check_items", "item_folder",
    "process_item", "run_items", "write_manifest",
]  # fmt: skip
