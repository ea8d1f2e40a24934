"""Long backend jobs that survive the process that started them.

When a long job starts (a Replicate prediction), the call records it beside the ledger before waiting: the backend's
id, the model, what was asked (to price and check what it makes), and the call's reservation. The record says
``running`` until the call ends: ``done`` once charged, ``failed`` or ``cancelled`` otherwise. A process that dies
while it waits leaves it ``running``; ``client.jobs.resume(id)`` then follows the job to its end from any process that
shares the ledger, collects its output, and charges it exactly once (settling the dead call's reservation), and
``client.jobs.cancel(id)`` stops it and gives the reservation back.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from ._errors import InvalidRequestError, UnsupportedError
from ._requests import CallOptions, ImageRequest, Request, VideoRequest
from ._sidecar import SideDb

STATUSES = ("running", "done", "failed", "cancelled")


@dataclass(frozen=True)
class Job:
    """A long backend job as recorded: ``id`` (the backend's, e.g. a Replicate prediction id), ``status`` (running,
    done, failed, cancelled), the ``model`` and ``operation``, the call's ``request_id``, ``account`` and reserved
    ``credits``, and when it was ``created`` and last ``updated`` (seconds since the epoch)."""

    id: str
    model: str
    operation: str
    status: str
    account: str
    request_id: str
    credits: Decimal
    usd: Decimal | None
    created: float
    updated: float
    note: str = ""
    handle: Mapping[str, Any] = field(default_factory=dict)  # what the provider needs to find the job again
    request: Mapping[str, Any] = field(default_factory=dict)  # what was asked: prompt and settings
    reservation: str = ""  # the id of the call's reservation


class MemoryJobs:
    """Jobs of one client (a ``memory://`` ledger or a ledger object): forgotten with the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}

    def add(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.id] = job

    def update(self, job_id: str, status: str, note: str = "", *, only_if: str | None = None) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or (only_if is not None and job.status != only_if):
                return False
            self._jobs[job_id] = replace(job, status=status, note=note or job.note, updated=time.time())
            return True

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(self, status: str | None, account: str | None) -> list[Job]:
        with self._lock:
            jobs = list(self._jobs.values())
        return [j for j in jobs if (status is None or j.status == status) and (account is None or j.account == account)]

    def close(self) -> None:
        pass


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS genai_jobs (id TEXT PRIMARY KEY, model TEXT NOT NULL, operation TEXT NOT NULL, "
    "status TEXT NOT NULL, account TEXT NOT NULL, request_id TEXT NOT NULL, credits TEXT NOT NULL, usd TEXT, "
    "created DOUBLE PRECISION NOT NULL, updated DOUBLE PRECISION NOT NULL, note TEXT NOT NULL, handle TEXT NOT NULL, "
    "request TEXT NOT NULL, reservation TEXT NOT NULL)",
)
_COLUMNS = "id, model, operation, status, account, request_id, credits, usd, created, updated, note, handle, request, reservation"


class SqlJobs:
    """Jobs in the ledger's database, seen by every process that shares it."""

    def __init__(self, url: str) -> None:
        self.db = SideDb(url, _SCHEMA)

    def add(self, job: Job) -> None:
        with self.db.transaction("jobs") as tx:
            tx.execute(
                f"INSERT INTO genai_jobs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING",
                (job.id, job.model, job.operation, job.status, job.account, job.request_id, str(job.credits),
                 None if job.usd is None else str(job.usd), job.created, job.updated, job.note,
                 json.dumps(dict(job.handle)), json.dumps(dict(job.request)), job.reservation),
            )  # fmt: skip

    def update(self, job_id: str, status: str, note: str = "", *, only_if: str | None = None) -> bool:
        with self.db.transaction("jobs") as tx:
            sql = "UPDATE genai_jobs SET status = ?, note = CASE WHEN ? = '' THEN note ELSE ? END, updated = ? WHERE id = ?"
            params: list[Any] = [status, note, note, time.time(), job_id]
            if only_if is not None:
                sql += " AND status = ?"
                params.append(only_if)
            return bool(tx.execute(sql, params).rowcount)

    def get(self, job_id: str) -> Job | None:
        with self.db.transaction() as tx:
            row = tx.execute(f"SELECT {_COLUMNS} FROM genai_jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def list(self, status: str | None, account: str | None) -> list[Job]:
        sql, params = f"SELECT {_COLUMNS} FROM genai_jobs WHERE 1 = 1", list[str]()
        if status is not None:
            sql, params = sql + " AND status = ?", [*params, status]
        if account is not None:
            sql, params = sql + " AND account = ?", [*params, account]
        with self.db.transaction() as tx:
            rows = tx.execute(sql + " ORDER BY created", params).fetchall()
        return [_job(row) for row in rows]

    def close(self) -> None:
        self.db.close()


def _job(row: Any) -> Job:
    (job_id, model, operation, status, account, request_id, credits, usd, created, updated, note, handle, request,
     reservation) = row  # fmt: skip
    return Job(job_id, model, operation, status, account, request_id, Decimal(credits), None if usd is None else Decimal(usd),
               float(created), float(updated), note, json.loads(handle), json.loads(request), reservation)  # fmt: skip


JobStore = MemoryJobs | SqlJobs


def job_store(ledger_url: str | None) -> JobStore:
    """Where a client records its jobs: the ledger's database (``ledger_url``), or memory (None, ``memory://``)."""
    if ledger_url is None or ledger_url.lower().startswith("memory"):
        return MemoryJobs()
    return SqlJobs(ledger_url)


def check_status(status: str | None) -> str | None:
    if status is not None and status not in STATUSES:
        raise InvalidRequestError(f"status={status!r}: use one of {', '.join(STATUSES)} (or None for all)")
    return status


def request_facts(request: Request) -> dict[str, Any]:
    """What a job's record keeps of its request: enough to price and check what the job makes (never input media)."""
    names = ("operation", "prompt", "n", "size", "quality", "style", "seed", "negative_prompt", "steps", "guidance",
             "seconds", "fps")  # fmt: skip
    return {name: getattr(request, name) for name in names if isinstance(getattr(request, name, None), str | int | float)}


def rebuilt(job: Job, count: int) -> ImageRequest | VideoRequest:
    """The request of a recorded job, as its plan is built again to price and check the output (``count`` pictures:
    those this job made)."""
    facts = dict(job.request)
    options = CallOptions(model=job.model, account=job.account)
    if job.operation == "videos.generate":
        return VideoRequest(str(facts.pop("prompt", "")), options, **{k: v for k, v in facts.items() if k != "operation"})
    if job.operation != "images.generate":
        raise UnsupportedError(
            f"job {job.id} is a {job.operation} call: only generations (images.generate, videos.generate) can be "
            "resumed, as their inputs are not recorded; cancel it with client.jobs.cancel(id)"
        )
    facts.pop("operation", None)
    facts["n"] = count
    return ImageRequest("generate", str(facts.pop("prompt", "")), options, **facts)
