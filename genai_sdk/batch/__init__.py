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
import logging
import os
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import InvalidRequestError

if TYPE_CHECKING:
    from .._client import AsyncClient, Client

TASKS = ("image", "video", "transcribe", "synthesize")
STATUSES = ("ok", "skipped", "refused", "over_budget", "invalid", "failed")
DONE = "provenance.json"  # written last: an item's folder with it holds a finished output
STAGED = "staged.json"  # outputs saved, the charge they are owed not yet known to be made
ATTEMPT = "attempt.json"  # a call in flight, and the tag of its request ids
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
log = logging.getLogger("genai_sdk")


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
    note: str | None = None  # what a run found of an earlier one (outputs recovered, a call it lost)

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


def _method(client: Client | AsyncClient, task: str) -> Callable[..., Any]:
    if task == "image":
        return client.images.generate
    if task == "video":
        return client.videos.generate
    return client.speech.transcribe if task == "transcribe" else client.speech.synthesize


def _stage(task: str, result: Any, cost: Any, reservation: Any, folder: Path, item: Item, job_id: str) -> dict[str, Any]:
    """The item's outputs, each written atomically, then ``staged.json``: what was made, and the charge it is owed
    (written before the ledger's charge, so that a run killed between the two leaves what was paid for, and the
    charge that settles it, for the next run)."""
    from .._media import atomic_write

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
    usd = None if cost.usd is None else str(cost.usd)
    facts = {
        "job_id": job_id, "item_id": item.id, "task": task, "model": result.model,
        "cost": {"credits": str(cost.credits), "usd": usd}, "request_ids": list(getattr(result, "request_ids", [])),
        "warnings": list(result.warnings), "outputs": names,
        "charge": {"reservation": reservation.id, "account": reservation.account, "request_id": reservation.request_id,
                   "model": reservation.model, "credits": str(cost.credits), "usd": usd},
    }  # fmt: skip
    atomic_write(folder / STAGED, lambda h: h.write(json.dumps(facts, indent=1).encode("utf-8")))
    return facts


def _finish(folder: Path, facts: dict[str, Any]) -> list[str]:
    """The item's provenance, written last: the mark that it is done. The staging files go."""
    from .._media import atomic_write

    atomic_write(folder / DONE, lambda h: h.write(json.dumps({**facts, "finished": time.time()}, indent=1).encode("utf-8")))
    for name in (STAGED, ATTEMPT):
        (folder / name).unlink(missing_ok=True)
    return [str(folder / name) for name in facts["outputs"]]


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
    step = _Step(client, task, item, out, job_id, model, settings)
    try:
        done = step.before()
        if done is not None:
            return done
        with step.calling():
            try:
                result = _method(client, task)(item.input, **step.kwargs)
            except Exception as error:  # noqa: BLE001 - an item's failure is its row, never the job's
                return step.failed(error)
        return step.after(result)
    except Exception as error:  # noqa: BLE001 - whatever it was, it is this item's row, never the job's end
        return step.broken(error)


async def aprocess_item(
    client: AsyncClient, task: str, item: Item, *, out: str | os.PathLike[str], job_id: str, model: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Row:  # fmt: skip
    """:func:`process_item` with an :class:`~genai_sdk.AsyncClient` (its files are written off the event loop)."""
    import asyncio

    step = _Step(client, task, item, out, job_id, model, settings)
    try:
        done = await asyncio.to_thread(step.before)
        if done is not None:
            return done
        with step.calling():
            try:
                result = await _method(client, task)(item.input, **step.kwargs)
            except Exception as error:  # noqa: BLE001 - an item's failure is its row, never the job's
                return step.failed(error)
        return await asyncio.to_thread(step.after, result)
    except Exception as error:  # noqa: BLE001 - whatever it was, it is this item's row, never the job's end
        return step.broken(error)


class _Step:
    """One item's way through a run: skip or recover what an earlier run left, call, save before the charge."""

    def __init__(self, client: Client | AsyncClient, task: str, item: Item, out: str | os.PathLike[str], job_id: str,
                 model: str | None, settings: Mapping[str, Any] | None) -> None:  # fmt: skip
        self.pipeline, self.task, self.item, self.job_id, self.model = client._pipeline, task, item, job_id, model
        self.kwargs = {**(settings or {}), **item.options}
        if model is not None:
            self.kwargs.setdefault("model", model)
        if task == "transcribe":  # its subtitles are split at the words' own times
            self.kwargs.setdefault("word_timestamps", True)
        self.account = str(self.kwargs.get("account") or self.pipeline.settings.account)
        self.folder = item_folder(out, job_id, item.id)
        self.started = time.monotonic()
        self.tag = ""
        self.notes: list[str] = []
        self.staged: dict[str, Any] = {}

    def row(self, status: str, model: str | None = None, credits: Decimal = Decimal(0), usd: Decimal | None = Decimal(0),
            outputs: list[str] | None = None, error: BaseException | str | None = None, error_type: str | None = None,
            ) -> Row:  # fmt: skip
        if isinstance(error, BaseException):
            error_type = type(error).__name__
        return Row(self.item.id, status, model or self.model, credits, usd, outputs or [],
                   None if error is None else str(error), error_type, time.monotonic() - self.started,
                   "; ".join(self.notes) or None)  # fmt: skip

    def before(self) -> Row | None:
        outputs = _finished(self.folder)
        if outputs is not None:
            facts = json.loads((self.folder / DONE).read_text(encoding="utf-8"))
            return Row(self.item.id, "skipped", str(facts.get("model") or "") or None, Decimal(0), Decimal(0), outputs)
        try:  # the folder first: an output that could not be saved must not be paid for
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            return self.row("invalid", error=f"cannot make the item's folder {self.folder}: {error}",
                            error_type=type(error).__name__)  # fmt: skip
        earlier = _read(self.folder / ATTEMPT)
        if earlier is not None:
            busy = self._in_progress(earlier)
            if busy is not None:
                return busy
            done = self._recover(earlier)
            if done is not None:
                return done
        self.tag = os.urandom(6).hex() + "-"
        attempt = {"tag": self.tag, "started": time.time(), "host": socket.gethostname(), "pid": os.getpid()}
        try:  # exclusively: of two runs that reach this item at once, one makes it
            handle = os.open(self.folder / ATTEMPT, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return self._in_progress(_read(self.folder / ATTEMPT) or {}, always=True)
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(attempt, file)
        return None

    def _in_progress(self, attempt: Mapping[str, Any], always: bool = False) -> Row | None:
        """A row for an item another run is making now (its process alive, or its call's time not yet over)."""
        host, pid, started = attempt.get("host"), attempt.get("pid"), attempt.get("started")
        if not always:
            if attempt.get("ended"):
                return None  # its run is over (its charge failed): settled below
            if host == socket.gethostname() and isinstance(pid, int):
                if pid != os.getpid() and not _alive(pid):
                    return None  # its process is gone: what it left is settled below
            elif not isinstance(started, int | float) or time.time() - started > (self.pipeline.settings.timeout or 3600) + 60:
                return None  # on another machine, and its call's time is long over
        self.notes.append(f"another run is making this item now ({host}, process {pid}): run the job again once it ends")
        return self.row("failed", error="in progress in another run", error_type="InProgress")

    def _stage(self, result: Any, cost: Any, reservation: Any) -> None:
        try:
            self.staged["facts"] = _stage(self.task, result, cost, reservation, self.folder, self.item, self.job_id)
        except Exception as error:  # noqa: BLE001 - the call is charged all the same; its row says what was lost
            self.staged["error"] = error

    @contextmanager
    def calling(self) -> Iterator[None]:
        """The call's request ids carry the attempt's tag, and its outputs are saved before its charge."""
        from .._batch import REQUEST_TAG, STAGE

        tag, stage = REQUEST_TAG.set(self.tag), STAGE.set(self._stage)
        try:
            yield
        except BaseException:
            self._ended()
            raise
        finally:
            REQUEST_TAG.reset(tag)
            STAGE.reset(stage)
            if "facts" not in self.staged:  # the call ended here: nothing for a later run to find
                (self.folder / ATTEMPT).unlink(missing_ok=True)

    def failed(self, error: BaseException) -> Row:
        if "facts" in self.staged:  # made and saved, but its charge failed: the next run settles it
            self._ended()
            self.notes.append("its outputs are saved and its charge is pending: run the job again to settle it")
        return self.row(_status(error), error=error)

    def _ended(self) -> None:
        """The call is over without being marked done, its outputs saved: the next run, in this process too, settles
        it (an attempt not marked ended is taken for one in progress while its process lives)."""
        if "facts" not in self.staged:
            return
        from .._media import atomic_write

        attempt = {"tag": self.tag, "ended": time.time(), "host": socket.gethostname(), "pid": os.getpid()}
        try:
            atomic_write(self.folder / ATTEMPT, lambda h: h.write(json.dumps(attempt).encode("utf-8")))
        except OSError as exc:
            log.warning("could not mark item %s's call as ended: %s", self.item.id, exc)

    def broken(self, error: BaseException) -> Row:
        return self.row("failed", error=f"{type(error).__name__}: {error}", error_type=type(error).__name__)

    def after(self, result: Any) -> Row:
        cost = result.cost
        if "facts" not in self.staged and "error" not in self.staged:  # every call is staged before its charge
            self.staged["error"] = RuntimeError("the call returned without saving its outputs first")
        error = self.staged.get("error")
        if error is None:
            try:
                return self.row("ok", result.model, cost.credits, cost.usd, _finish(self.folder, self.staged["facts"]))
            except OSError as failure:
                error = failure
        return self.row("failed", result.model, cost.credits, cost.usd,
                        error=f"made and charged, but its output could not be saved: {error}",
                        error_type=type(error).__name__)  # fmt: skip

    def _recover(self, attempt: Mapping[str, Any]) -> Row | None:
        """What an earlier run of this item left when it was stopped (a killed worker, a lost node): outputs saved
        but not marked done (charged now, once), or a backend job still running (collected and charged once);
        otherwise the row says that the earlier call's spend, if any, is not in the ledger."""
        tag = attempt.get("tag")
        if not isinstance(tag, str) or not _TAG.fullmatch(tag):
            (self.folder / ATTEMPT).unlink(missing_ok=True)
            return None  # not a mark this code writes: nothing can be settled from it
        staged = _read(self.folder / STAGED)
        if staged is not None:
            return self._settle(staged, tag)
        running = [job for job in self.pipeline.jobs.list("running", self.account) if job.request_id.startswith(tag)]
        if running:
            return self._collect(running[0].id)
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(attempt.get("started") or 0)))
        self.notes.append(
            f"an earlier run stopped while this item's call was in flight (started {when} on {attempt.get('host')}); "
            "its backend cannot be asked whether it finished, so any spend for that call is not in the ledger"
        )
        (self.folder / ATTEMPT).unlink(missing_ok=True)
        return None

    def _collect(self, job_id: str) -> Row | None:
        from .._batch import STAGE
        from .._errors import ContentPolicyError, GenerationFailedError

        token = STAGE.set(self._stage)
        try:
            result = self.pipeline.resume_job(job_id)
        except (GenerationFailedError, ContentPolicyError) as error:  # it ended without output: made again
            self.notes.append(f"an earlier run's backend job {job_id} ended without output ({error}); made again")
            (self.folder / ATTEMPT).unlink(missing_ok=True)
            return None
        except Exception as error:  # noqa: BLE001 - still running, or unreachable: the mark stays for the next run
            self.notes.append(f"an earlier run's backend job {job_id} is still running and could not be collected "
                              "now: run the job again to collect it")  # fmt: skip
            return self.row("failed", error=error)
        finally:
            STAGE.reset(token)
        self.notes.append(f"collected from backend job {job_id}, which an earlier run left running")
        return self.after(result)

    def _settle(self, staged: Mapping[str, Any], tag: str) -> Row | None:
        """Outputs an earlier run saved before its charge: charged now, once (the ledger keeps one charge a request
        id, so a charge that was made stands), and marked done; made again if its files are gone."""
        from ..credits import Reservation
        from ..credits._rules import utcnow

        charge = _charge(staged, tag, self.account, self.job_id, self.item.id)
        if charge is None:  # not what this code writes for this item: set aside, and made again
            (self.folder / STAGED).replace(self.folder / f"{STAGED}.rejected")
            (self.folder / ATTEMPT).unlink(missing_ok=True)
            self.notes.append(f"an earlier run's {STAGED} does not describe a charge of this item: set aside as "
                              f"{STAGED}.rejected, and the item made again")  # fmt: skip
            return None
        reservation_id, request_id, model, credits, usd = charge
        reservation = Reservation(reservation_id, self.account, credits, usd, request_id, model, utcnow())
        self.pipeline.ledger.commit(reservation, credits, usd)
        names = staged["outputs"]
        if not all((self.folder / name).is_file() for name in names):
            for name in (STAGED, ATTEMPT):
                (self.folder / name).unlink(missing_ok=True)
            self.notes.append(f"an earlier run made and was charged {credits} credits for this item, but its saved "
                              "outputs are gone: made again")  # fmt: skip
            return None
        self.notes.append("saved by an earlier run that stopped before marking it done; charged once")
        return self.row("ok", str(staged.get("model")), credits, usd, _finish(self.folder, dict(staged)))


_TAG = re.compile(r"[0-9a-f]{12}-")
_OUTPUT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _charge(staged: Mapping[str, Any], tag: str, account: str, job_id: str, item_id: str
            ) -> tuple[str, str, str, Decimal, Decimal | None] | None:  # fmt: skip
    """The charge a staging file claims, if it is one this item's call could have written: this job and item, the
    account the item is charged to, a request id of the attempt's tag, amounts finite and not negative, and outputs
    named inside the item's folder."""
    from decimal import InvalidOperation

    charge, names = staged.get("charge"), staged.get("outputs")
    if not isinstance(charge, dict) or not isinstance(names, list) or not names:
        return None
    if not all(isinstance(n, str) and _OUTPUT.fullmatch(n) and n not in (DONE, STAGED, ATTEMPT) for n in names):
        return None
    if staged.get("job_id") != job_id or staged.get("item_id") != item_id or charge.get("account") != account:
        return None
    request_id, reservation, model = charge.get("request_id"), charge.get("reservation"), charge.get("model")
    if not (isinstance(request_id, str) and request_id.startswith(tag) and isinstance(reservation, str)
            and isinstance(model, str)):  # fmt: skip
        return None
    try:
        credits = Decimal(str(charge.get("credits")))
        usd = None if charge.get("usd") is None else Decimal(str(charge["usd"]))
    except (InvalidOperation, ValueError):
        return None
    if not credits.is_finite() or credits < 0 or (usd is not None and (not usd.is_finite() or usd < 0)):
        return None
    return reservation, request_id, model, credits, usd


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _finished(folder: Path) -> list[str] | None:
    """The outputs of a finished item (its mark readable and sound, its files there), or None."""
    facts = _read(folder / DONE)
    names = facts.get("outputs") if facts is not None else None
    if not isinstance(names, list) or not all(isinstance(n, str) and (folder / n).is_file() for n in names):
        return None  # a mark that does not describe what is there: made again
    return [str(folder / name) for name in names]


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
                    log.warning("on_row raised %s: %s", type(exc).__name__, exc)

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
    "aprocess_item", "process_item", "run_items", "write_manifest",
]  # fmt: skip
