"""Batches: many calls of one kind with bounded concurrency, results in input order, one result or one typed error
per item. A batch never fails as a whole: an item's failure is that item's answer. Each item takes the one request
path on its own (validation, policy, reservation, retries, exactly-once charge), so a budget holds across the batch:
once reservations reach it, the items after fail with ``BudgetExceededError`` before they are sent.

Cancelling a batch (Ctrl-C in the calling thread, or cancelling the awaiting task) stops the items not started, and
items in flight stop at their next check, as a single call does when it is interrupted: a backend job is cancelled
where the backend can, and work it billed all the same is recorded as spent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextvars import ContextVar
from decimal import Decimal
from typing import Any, Generic, TypeVar

from ._errors import GenAIError, InvalidRequestError
from ._requests import Cost, Progress, ProgressCallback

R = TypeVar("R")
log = logging.getLogger("genai_sdk")

MAX_CONCURRENCY = 256


class BatchResults(list[R | GenAIError], Generic[R]):
    """The answers of a batch in input order: each item's result, or the ``GenAIError`` it ended with."""

    @property
    def succeeded(self) -> list[R]:
        return [item for item in self if not isinstance(item, GenAIError)]

    @property
    def failed(self) -> list[tuple[int, GenAIError]]:
        """(index, error) of every item that failed."""
        return [(i, item) for i, item in enumerate(self) if isinstance(item, GenAIError)]

    @property
    def cost(self) -> Cost:
        """What the items that succeeded cost together (failed items are never charged)."""
        total = Cost(Decimal(0), Decimal(0))
        for item in self.succeeded:
            cost = getattr(item, "cost", None)
            if isinstance(cost, Cost):
                total = total + cost
        return total


class Switch:
    """The cancel switch of one item of a synchronous batch: every call the item makes (each hop of a fallback)
    registers its own cancel event, and flipping the switch sets them all, those registered later included. A call's
    own failure sets only its own event, never the item's others."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[threading.Event] = []
        self.on = False

    def register(self, event: threading.Event) -> threading.Event:
        with self._lock:
            self._events.append(event)
            if self.on:
                event.set()
        return event

    def flip(self) -> None:
        with self._lock:
            self.on = True
            events = list(self._events)
        for event in events:
            event.set()


# The switch of the item of a synchronous batch this thread is running (None outside batches).
ITEM_CANCEL: ContextVar[Switch | None] = ContextVar("genai_item_cancel", default=None)
# A dataset item's call (genai_sdk.batch): its request ids start with the item's attempt tag, so that a later run
# can find the backend jobs it left running; and its outputs are saved by STAGE before the charge, so that a crash
# between the two never loses what was paid for (the later run finds them and charges them once).
REQUEST_TAG: ContextVar[str] = ContextVar("genai_request_tag", default="")
STAGE: ContextVar[Callable[[Any, Any, Any], None] | None] = ContextVar("genai_stage", default=None)
# A streamed transcription (client.speech.transcribe_stream): a local recogniser hands it each segment as it is heard.
SEGMENTS: ContextVar[Callable[[Any], None] | None] = ContextVar("genai_segments", default=None)


def check_concurrency(concurrency: object) -> int:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise InvalidRequestError(f"concurrency={concurrency!r}: give a whole number from 1 to {MAX_CONCURRENCY}")
    return concurrency


def item_arguments(item: object, primary: str, common: Mapping[str, Any]) -> tuple[object, dict[str, Any]]:
    """An item is the call's main argument (a prompt, an audio file) or a mapping of keyword arguments for that item
    alone (``{"prompt": ..., "seed": 3}``) laid over the batch's common ones."""
    if isinstance(item, Mapping):
        settings = {**common, **item}
        if primary not in settings:
            raise InvalidRequestError(f"a batch item given as a mapping needs its {primary!r}: {dict(item)!r}")
        return settings.pop(primary), settings
    return item, dict(common)


def _failure(index: int, error: BaseException) -> GenAIError:
    if isinstance(error, GenAIError):
        return error
    failure = GenAIError(
        f"batch item {index} failed unexpectedly ({type(error).__name__}: {error}); please report this"
    )
    failure.__cause__ = error
    return failure


class _Tracker:
    """Counts finished items and reports the batch's progress: to ``on_progress``, or a bar on a terminal."""

    def __init__(self, label: str, total: int, on_progress: ProgressCallback | None, progress: bool | None) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.lock = threading.Lock()
        self.callback = on_progress
        self.bar: Any = None
        if on_progress is None and progress is not False:
            from ._progress import ProgressBar

            self.bar = ProgressBar(label, force=bool(progress))
            self.callback = self.bar if self.bar.enabled else None

    def finished(self, index: int, answer: object) -> None:
        with self.lock:
            self.done += 1
            self.failed += isinstance(answer, GenAIError)
            done, failed = self.done, self.failed
        if self.callback is not None:
            note = f"item {index} failed: {answer}" if isinstance(answer, GenAIError) else f"item {index} done"
            stage = "done" if done == self.total else "batch"
            try:
                self.callback(Progress(stage, done, self.total, f"{note} ({failed} failed so far)"))
            except Exception as exc:  # noqa: BLE001 - a broken progress display must not lose results paid for
                log.warning("the batch's on_progress raised %s: %s", type(exc).__name__, exc)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Batch(Generic[R]):
    """What the thread and task runners share: the items, their common settings, the answers so far, the progress."""

    def __init__(self, items: Iterable[object], common: Mapping[str, Any], concurrency: object, progress: bool | None,
                 label: str, primary: str) -> None:  # fmt: skip
        self.workers = check_concurrency(concurrency)
        if isinstance(items, str | bytes | bytearray) or isinstance(items, Mapping):
            raise InvalidRequestError(
                f"a batch takes a list of items (prompts, files, texts), not one {type(items).__name__}: "
                "put it in a list"
            )
        try:
            self.items = list(items)
        except TypeError:
            raise InvalidRequestError(f"a batch takes a list of items, not a {type(items).__name__}") from None
        self.primary = primary
        self.shared = {k: v for k, v in common.items() if k != "on_progress"}
        self.tracker = _Tracker(label, len(self.items), common.get("on_progress"), progress)
        self.answers: list[R | GenAIError | None] = [None] * len(self.items)
        self.width = min(self.workers, max(1, len(self.items)))

    def arguments(self, item: object) -> tuple[object, dict[str, Any]]:
        return item_arguments(item, self.primary, self.shared)

    def answered(self, index: int, answer: R | GenAIError) -> None:
        self.answers[index] = answer
        self.tracker.finished(index, answer)

    def results(self) -> BatchResults[R]:
        return BatchResults(answer for answer in self.answers if answer is not None)


def run_batch(
    call: Callable[[object, dict[str, Any]], R],
    items: Iterable[object],
    common: Mapping[str, Any],
    *,
    primary: str,
    concurrency: object,
    progress: bool | None,
    label: str,
) -> BatchResults[R]:
    """Run ``call(value, kwargs)`` for every item in a bounded thread pool."""
    batch: _Batch[R] = _Batch(items, common, concurrency, progress, label, primary)
    stop = threading.Event()
    in_flight: set[Switch] = set()
    lock = threading.Lock()

    def one(index: int, item: object) -> None:
        cancel = Switch()
        with lock:
            if stop.is_set():
                return
            in_flight.add(cancel)
        ITEM_CANCEL.set(cancel)
        try:
            value, kwargs = batch.arguments(item)
            answer: R | GenAIError = call(value, kwargs)
        except Exception as error:  # noqa: BLE001 - an item's failure is its answer
            answer = _failure(index, error)
        finally:
            ITEM_CANCEL.set(None)
            with lock:
                in_flight.discard(cancel)
        batch.answered(index, answer)

    pool = ThreadPoolExecutor(max_workers=batch.width, thread_name_prefix="genai-batch")
    futures: list[Future[None]] = []
    try:
        futures = [pool.submit(one, i, item) for i, item in enumerate(batch.items)]
        wait(futures)
    except BaseException:  # Ctrl-C: nothing new starts, items in flight stop at their next check
        with lock:
            stop.set()
            for cancel in in_flight:
                cancel.flip()
        pool.shutdown(wait=True, cancel_futures=True)
        batch.tracker.close()
        raise
    pool.shutdown(wait=True)
    batch.tracker.close()
    for future in futures:
        future.result()  # a failure of the batch machinery itself, never an item's
    return batch.results()


async def arun_batch(
    call: Callable[[object, dict[str, Any]], Awaitable[R]],
    items: Iterable[object],
    common: Mapping[str, Any],
    *,
    primary: str,
    concurrency: object,
    progress: bool | None,
    label: str,
) -> BatchResults[R]:
    """The same with at most ``concurrency`` tasks; cancelling the awaiting task cancels the items in flight."""
    import asyncio

    batch: _Batch[R] = _Batch(items, common, concurrency, progress, label, primary)
    queue = iter(enumerate(batch.items))

    async def worker() -> None:
        for index, item in queue:  # each worker takes the next item when it is free
            try:
                value, kwargs = batch.arguments(item)
                answer: R | GenAIError = await call(value, kwargs)
            except Exception as error:  # noqa: BLE001 - an item's failure is its answer
                answer = _failure(index, error)
            batch.answered(index, answer)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(batch.width):
                group.create_task(worker())
    finally:
        batch.tracker.close()
    return batch.results()
