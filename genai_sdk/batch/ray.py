"""A ``genai_sdk.batch`` job on a Ray cluster (the ``ray`` extra): the same per-item code, in callable classes for
``Dataset.map_batches`` (one client per actor for its lifetime), with one ledger, one rate limit and one budget
breaker for the whole cluster.

    import ray
    from genai_sdk.batch.ray import ImageGenerator, run_dataset

    summary = run_dataset(items, task="image", model="openai:gpt-image-1.5", out="/shared/shots", job_id="spring",
                          workers=8, rate_limit={"openai": {"rpm": 500}})

    # or in a pipeline of your own:
    ds = ray.data.from_items(rows).map_batches(
        ImageGenerator, fn_constructor_kwargs={"model": "openai:gpt-image-1.5", "out": "/shared/shots",
        "job_id": "spring"}, compute=ray.data.ActorPoolStrategy(size=8), num_cpus=0.25)

Secrets never travel in constructor arguments (Ray keeps those in its object store): keys, base URLs and the ledger's
URL reach the workers through their environment, which :func:`run_dataset` sets for the job (``runtime_env``, kept
in Ray's control store: on a shared cluster, set them on the nodes and pass ``forward_env=False``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from .._errors import ConfigError, GenAIError, InvalidRequestError
from .._limits import MemorySlots, RateLimit, RateLimiter, parse_rate_limits
from . import (
    DONE,
    BudgetBreaker,
    Item,
    Row,
    Summary,
    aprocess_item,
    check_items,
    check_job,
    check_whole,
    item_folder,
    process_item,
    summarize,
    write_manifest,
)

WORKER_TTL_SLACK = 10.0  # seconds a worker's reservation outlives its call's timeout
log = logging.getLogger("genai_sdk")
COLUMNS = ("id", "status", "model", "credits", "usd", "outputs", "error", "error_type", "seconds", "note")
# Settings that may hold a password or a key (a ledger's URL, provider objects, a config file's path to them):
# never constructor arguments, which Ray keeps in its object store.
_SECRET_SETTINGS = ("ledger", "providers", "config", "profile")


def _ray() -> Any:
    try:
        import ray
    except ModuleNotFoundError:
        raise ConfigError("running a job on Ray needs the 'ray' extra: pip install 'genai-sdk[ray]'") from None
    return ray


# -- cluster-wide state: named actors -------------------------------------------------------------------------


class _SlotKeeper:
    """The rate-limit slots of every worker of a job (a named Ray actor): one limit for the cluster."""

    def __init__(self) -> None:
        self.slots = MemorySlots()

    def take(self, limit: RateLimit, token: str) -> float:
        return self.slots.take(limit, token, time.time)

    def undo(self, limit: RateLimit, token: str) -> None:
        self.slots.undo(limit, token)

    def release(self, limit: RateLimit, token: str) -> None:
        self.slots.release(limit, token, time.time())


class RaySlots:
    """The limiter's slots, kept by the job's :class:`_SlotKeeper` actor (found by name from any node)."""

    def __init__(self, actor_name: str, namespace: str | None = None) -> None:
        ray = _ray()
        self._ray = ray
        self._actor = ray.get_actor(actor_name, namespace=namespace)

    def take(self, limit: RateLimit, token: str, clock: Any) -> float:
        return float(self._ray.get(self._actor.take.remote(limit, token)))

    def undo(self, limit: RateLimit, token: str) -> None:
        self._ray.get(self._actor.undo.remote(limit, token))

    def release(self, limit: RateLimit, token: str, now: float) -> None:
        self._ray.get(self._actor.release.remote(limit, token))

    def close(self) -> None:
        pass


class _BreakerKeeper:
    """The job's budget breaker (a named Ray actor): once the budget is spent anywhere, no worker starts an item."""

    def __init__(self, limit: int) -> None:
        self.breaker = BudgetBreaker(limit)

    def record(self, row: Row) -> str | None:
        self.breaker.record(row)
        return self.breaker.tripped

    def tripped(self) -> str | None:
        return self.breaker.tripped


# -- the callable classes -------------------------------------------------------------------------------------


class _Worker:
    task = "image"

    def __init__(
        self, *, model: str | None = None, out: str, job_id: str, settings: Mapping[str, Any] | None = None,
        client_settings: Mapping[str, Any] | None = None, rate_limit: Mapping[str, Any] | None = None,
        slots_actor: str | None = None, breaker_actor: str | None = None,
    ) -> None:  # fmt: skip
        check_job(self.task, job_id)
        _check_client_settings(client_settings)
        self.model, self.out, self.job_id, self.settings = model, out, job_id, dict(settings or {})
        self.client = self._client(_worker_settings(client_settings))
        if rate_limit and slots_actor:  # one limit for the cluster: the slots are the job's actor's
            limits = parse_rate_limits(dict(rate_limit), "rate_limit")
            self.client._pipeline.limiter = RateLimiter(limits, RaySlots(slots_actor))
        self.breaker = _ray().get_actor(breaker_actor) if breaker_actor else None

    def _client(self, settings: dict[str, Any]) -> Any:
        from .._client import Client

        return Client(**settings)

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, list[Any]]:
        ray = _ray()
        rows: list[Row] = []
        for item in _items(batch, self.model):
            if self.breaker is not None and _tripped(ray.get, self.breaker):
                break  # the budget is spent: the rest of the batch is not tried (a later run carries on)
            row = item if isinstance(item, Row) else process_item(
                self.client, self.task, item, out=self.out, job_id=self.job_id, model=self.model, settings=self.settings
            )  # fmt: skip
            if self.breaker is not None:
                _record(ray.get, self.breaker, row)
            rows.append(row)
        return _columns(rows)

    def __del__(self) -> None:
        client = getattr(self, "client", None)
        if client is not None and hasattr(client, "close"):
            try:
                client.close()
            except Exception:  # noqa: BLE001, S110 - an actor going away: best effort
                pass


class _AsyncWorker(_Worker):
    """The async form: one :class:`~genai_sdk.AsyncClient` an actor, ``concurrency`` calls in flight at once
    (hosted backends: one actor keeps many requests going without a process for each)."""

    def __init__(self, *, concurrency: int = 8, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.concurrency = check_whole(concurrency, "concurrency")
        self._gate: Any = None

    def _client(self, settings: dict[str, Any]) -> Any:
        from .._client import AsyncClient

        return AsyncClient(**settings)

    async def __call__(self, batch: Mapping[str, Any]) -> dict[str, list[Any]]:  # type: ignore[override]
        import asyncio

        if self._gate is None:  # made on the actor's event loop; shared by the batches it runs at once
            self._gate = asyncio.Semaphore(self.concurrency)

        async def one(item: Item | Row) -> Row | None:
            async with self._gate:
                if self.breaker is not None and await _atripped(self.breaker):
                    return None  # the budget is spent: not tried (a later run carries on)
                row = item if isinstance(item, Row) else await aprocess_item(
                    self.client, self.task, item, out=self.out, job_id=self.job_id, model=self.model,
                    settings=self.settings,
                )  # fmt: skip
                if self.breaker is not None:
                    try:
                        await self.breaker.record.remote(row)
                    except Exception as exc:  # noqa: BLE001 - the breaker's actor lost: the rows go on regardless
                        log.warning("the job's budget breaker could not be told of item %s: %s", row.id, exc)
                return row

        rows = await asyncio.gather(*(one(item) for item in _items(batch, self.model)))
        return _columns([row for row in rows if row is not None])


def _items(batch: Mapping[str, Any], model: str | None) -> list[Item | Row]:
    """A batch's items; one whose options cannot be read is already its ``invalid`` row."""
    items: list[Item | Row] = []
    for item_id, value, options in zip(batch["id"], batch["input"], batch["options"], strict=True):
        try:
            items.append(Item(str(item_id), str(value), json.loads(str(options)) if options else {}))
        except (ValueError, TypeError) as error:
            items.append(Row(str(item_id), "invalid", model, error=f"unreadable options: {error}", error_type="ValueError"))
    return items


def _columns(rows: list[Row]) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for row in rows:
        for name, cell in _cells(row).items():
            columns[name].append(cell)
    return columns


def _tripped(get: Any, breaker: Any) -> bool:
    try:
        return bool(get(breaker.tripped.remote()))
    except Exception as exc:  # noqa: BLE001 - without its breaker the job runs on, item by item
        log.warning("the job's budget breaker cannot be reached: %s", exc)
        return False


async def _atripped(breaker: Any) -> bool:
    try:
        return bool(await breaker.tripped.remote())
    except Exception as exc:  # noqa: BLE001 - without its breaker the job runs on, item by item
        log.warning("the job's budget breaker cannot be reached: %s", exc)
        return False


def _record(get: Any, breaker: Any, row: Row) -> None:
    try:
        get(breaker.record.remote(row))
    except Exception as exc:  # noqa: BLE001 - the breaker's actor lost: the rows go on regardless
        log.warning("the job's budget breaker could not be told of item %s: %s", row.id, exc)


class ImageGenerator(_Worker):
    """``map_batches`` class: one picture (or ``n``) per row, written to the row's folder."""

    task = "image"


class VideoGenerator(_Worker):
    task = "video"


class Transcriber(_Worker):
    task = "transcribe"


class Synthesizer(_Worker):
    task = "synthesize"


class AsyncImageGenerator(_AsyncWorker):
    """``map_batches`` class with an async ``__call__``: ``concurrency`` pictures in flight an actor."""

    task = "image"


class AsyncVideoGenerator(_AsyncWorker):
    task = "video"


class AsyncTranscriber(_AsyncWorker):
    task = "transcribe"


class AsyncSynthesizer(_AsyncWorker):
    task = "synthesize"


WORKERS = {"image": ImageGenerator, "video": VideoGenerator, "transcribe": Transcriber, "synthesize": Synthesizer}
ASYNC_WORKERS = {"image": AsyncImageGenerator, "video": AsyncVideoGenerator, "transcribe": AsyncTranscriber,
                 "synthesize": AsyncSynthesizer}  # fmt: skip


def _worker_settings(client_settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """A worker's client settings: a reservation outlives its call by seconds, not the minute a lone client allows,
    so that the credits of a worker that dies (a lost node, a killed actor) come back soon."""
    from .._config import KEYS, resolve_settings

    chosen = dict(client_settings or {})
    settings = resolve_settings(**{key: value for key, value in chosen.items() if key in KEYS})
    if settings.reservation_ttl is None:
        chosen["reservation_ttl"] = (settings.timeout or 600.0) + WORKER_TTL_SLACK
    return chosen


def _check_client_settings(client_settings: Mapping[str, Any] | None) -> None:
    secret = sorted(set(client_settings or {}) & set(_SECRET_SETTINGS))
    if secret:
        raise ConfigError(
            f"client_settings holds {', '.join(secret)}: it may hold a password, and constructor arguments are kept "
            "in Ray's object store; set GENAI_LEDGER in this process's environment instead (it reaches the workers "
            "through the job's runtime_env)"
        )


def _cells(row: Row) -> dict[str, Any]:
    return {
        "id": row.id, "status": row.status, "model": row.model or "", "credits": str(row.credits),
        "usd": "" if row.usd is None else str(row.usd), "outputs": json.dumps(row.outputs), "error": row.error or "",
        "error_type": row.error_type or "", "seconds": row.seconds, "note": row.note or "",
    }  # fmt: skip


def _row(cells: Mapping[str, Any]) -> Row:
    return Row(
        str(cells["id"]), str(cells["status"]), str(cells["model"]) or None, Decimal(str(cells["credits"])),
        Decimal(str(cells["usd"])) if cells["usd"] else None, json.loads(str(cells["outputs"])),
        str(cells["error"]) or None, str(cells["error_type"]) or None, float(cells["seconds"]), str(cells["note"]) or None,
    )  # fmt: skip


# -- running a job --------------------------------------------------------------------------------------------


def _environment() -> dict[str, str]:
    """What the workers need from this process's environment: the backends' keys and base URLs, GENAI_* settings."""
    from ..providers._specs import environment_variables

    names = set(environment_variables())
    return {k: v for k, v in os.environ.items() if k in names or k.startswith("GENAI_")}


def _connect(address: str | None, num_cpus: int | None) -> Any:
    """This process's Ray: the one already started, the cluster at ``address`` (never one found by surprise), or a
    local one on loopback only, with usage statistics off (nothing leaves the machine)."""
    import sys

    if address is None and "ray" not in sys.modules:  # read by Ray when it is imported
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a local Ray binds 127.0.0.1, not the LAN
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray = _ray()
    if ray.is_initialized():
        return ray
    if address is None:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                 log_to_driver=False)  # fmt: skip
    else:
        ray.init(address=address, log_to_driver=False)
    return ray


def check_ledger(url: str, nodes: int) -> None:
    """One ledger for the cluster: PostgreSQL; SQLite only on one host; never memory:// (one per worker)."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        raise ConfigError(
            "a memory:// ledger would give every Ray worker a ledger of its own, and no budget could hold: use "
            "sqlite:///path on one machine, or postgresql://... for a cluster"
        )
    if scheme == "sqlite" and nodes > 1:
        raise ConfigError(
            f"an SQLite ledger is a file on one machine, and this cluster has {nodes} nodes: their workers could not "
            "share it (and a shared network folder corrupts SQLite); use postgresql://... for a multi-node run"
        )


def run_dataset(
    source: Iterable[Item | Mapping[str, Any]],
    *,
    task: str,
    out: str | os.PathLike[str],
    job_id: str,
    model: str | None = None,
    workers: int = 2,
    cpus_per_worker: float = 0.25,
    gpus_per_worker: float = 0,
    batch_size: int = 4,
    rate_limit: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    client_settings: Mapping[str, Any] | None = None,
    resume: bool = True,
    budget_breaker: int = 3,
    calls_per_worker: int = 1,
    address: str | None = None,
    num_cpus: int | None = None,
    forward_env: bool = True,
) -> Summary:
    """Run a job on Ray Data: ``workers`` actors, each with ``cpus_per_worker`` CPUs (a fraction by default: actors
    that hold every CPU leave none for Ray Data's own tasks, and the job hangs) and ``gpus_per_worker`` GPUs. Returns
    the :class:`~genai_sdk.batch.Summary` and writes ``<out>/<job_id>/manifest.json``.

    ``address``: a cluster to join (``"auto"``, ``"ray://head:10001"``); by default, a Ray already started in this
    process, or a local one on loopback, never a cluster found by surprise. ``rate_limit``: limits shared by every
    worker (``{"openai": {"rpm": 500}}``). ``resume=False`` refuses a job folder that already holds finished items.

    ``calls_per_worker`` above 1 runs the async classes (:class:`AsyncImageGenerator` and the rest): each actor
    keeps that many calls in flight with one :class:`~genai_sdk.AsyncClient`, which suits hosted backends (many
    requests, little CPU) better than an actor a request.

    ``forward_env`` (default True) gives the workers this process's backend keys, base URLs and ``GENAI_*`` settings
    (the ledger's URL included) as the job's ``runtime_env``: never constructor arguments, but Ray keeps a job's
    runtime_env in its control store, where whoever administers the cluster can read it. On a shared cluster, set
    the variables on the nodes themselves and pass ``forward_env=False``."""
    check_job(task, job_id)
    check_whole(workers, "workers")
    check_whole(batch_size, "batch_size")
    check_whole(budget_breaker, "budget_breaker")
    check_whole(calls_per_worker, "calls_per_worker")
    for name, amount in (("cpus_per_worker", cpus_per_worker), ("gpus_per_worker", gpus_per_worker)):
        if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0 or amount != amount:
            raise InvalidRequestError(f"{name}={amount!r}: give a number of CPUs or GPUs, 0 or more")
    if cpus_per_worker <= 0:
        raise InvalidRequestError("cpus_per_worker must be above 0: an actor with no CPU is never scheduled")
    items = check_items(source)
    folders = [item_folder(out, job_id, item.id) / DONE for item in items]
    if not resume and any(folder.is_file() for folder in folders):
        raise InvalidRequestError(f"job {job_id!r} in {out} already has finished items: pass resume=True, or a new job_id")
    if rate_limit:
        parse_rate_limits(dict(rate_limit), "rate_limit")  # checked here, before any actor starts
    _check_client_settings(client_settings)
    ray = _connect(address, num_cpus)
    from .._config import resolve_settings
    from ..credits import default_ledger_url

    ledger = resolve_settings().ledger or default_ledger_url()  # as this process sees it: the workers see the same
    check_ledger(ledger, len([n for n in ray.nodes() if n.get("Alive")]))
    environment = {**_environment(), "GENAI_LEDGER": ledger} if forward_env else {}
    Path(out).mkdir(parents=True, exist_ok=True)
    suffix = f"{job_id}-{os.getpid()}-{time.time_ns()}"
    breaker = ray.remote(_BreakerKeeper).options(name=f"genai-breaker-{suffix}").remote(budget_breaker)
    keeper = ray.remote(_SlotKeeper).options(name=f"genai-slots-{suffix}").remote() if rate_limit else None
    try:
        dataset = ray.data.from_items(
            [{"id": i.id, "input": i.input, "options": json.dumps(dict(i.options))} for i in items]
        ).map_batches(
            (ASYNC_WORKERS if calls_per_worker > 1 else WORKERS)[task], batch_size=batch_size, num_cpus=cpus_per_worker,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_gpus=gpus_per_worker or None, batch_format="default",
            runtime_env={"env_vars": environment},  # keys and the ledger's URL: never constructor arguments
            fn_constructor_kwargs={
                "model": model, "out": str(Path(out).resolve()), "job_id": job_id, "settings": dict(settings or {}),
                "client_settings": dict(client_settings or {}), "rate_limit": dict(rate_limit or {}) or None,
                "slots_actor": f"genai-slots-{suffix}" if keeper is not None else None,
                "breaker_actor": f"genai-breaker-{suffix}",
                **({"concurrency": calls_per_worker} if calls_per_worker > 1 else {}),
            },
        )  # fmt: skip
        try:
            rows = [_row(cells) for cells in dataset.take_all()]
        except Exception as exc:  # a worker that could not start (its client's settings), a lost cluster
            raise GenAIError(
                f"the Ray job {job_id!r} failed ({type(exc).__name__}: {str(exc).splitlines()[0][:300]}); items "
                "finished before it are in their folders, and a re-run with the same job_id skips them"
            ) from exc
        stopped = ray.get(breaker.tripped.remote())
    finally:
        ray.kill(breaker)
        if keeper is not None:
            ray.kill(keeper)
    order = {item.id: index for index, item in enumerate(items)}
    rows.sort(key=lambda row: order.get(row.id, len(order)))
    manifest = write_manifest(out, job_id, task, model, rows, stopped)
    return summarize(job_id, rows, manifest, stopped)


__all__ = [
    "AsyncImageGenerator", "AsyncSynthesizer", "AsyncTranscriber", "AsyncVideoGenerator", "ImageGenerator", "RaySlots", "Synthesizer", "Transcriber", "VideoGenerator", "check_ledger", "run_dataset",
]  # fmt: skip
