"""Backend calls written once for sync and async callers, and the core's waiting on long jobs.

A hosted provider writes each operation as a generator (a *flow*) that yields what it needs done, a call to its API
(:class:`Http`), a call of its client library (:class:`Call`), a pause (:class:`Sleep`) or a result file's download
(:class:`Fetch`), and receives the answer (or has the error thrown in). :func:`drive` runs a flow with blocking I/O,
:func:`adrive` on the event loop, so an async caller never waits in a worker thread (and any number of calls can be
followed at once). The provider supplies the I/O (:class:`JsonApi` for a JSON API over httpx; OpenAI's provider wraps
the ``openai`` package's two clients). Local backends, which compute, run their sync code in a worker thread.

A job that runs for minutes (a Replicate prediction, a Veo operation) is a :class:`LongJob` (start, poll, cancel) that
:func:`follow` waits on: the polling pace, the call's deadline, a caller who gives up (Ctrl-C, a cancelled task,
``on_progress`` raising), polls that fail and heal, and canceling the job on every way out but success are handled
here once, not by each provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from ._errors import GenAIError, ProviderError, ProviderUnavailableError
from ._http import AddressGuard, afetch, deadline, fetch, transport

if TYPE_CHECKING:
    from .providers.base import CallContext

T = TypeVar("T")
S = TypeVar("S")

MAX_POLL_FAILURES = 5  # polls in a row that may fail (and be tried again) before a long job is given up


@dataclass(frozen=True)
class Http:
    """A call to the provider's API (``path`` is relative to its base URL, or a full URL on the API's host); the
    flow receives the decoded JSON answer, or the SDK's error is thrown in. An ``unbounded`` call (a cancel) runs
    even after the call's deadline has passed (it is why the job is canceled), under its own ``timeout``."""

    method: str
    path: str
    timeout: float | None
    json: Any = None
    files: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    unbounded: bool = False


@dataclass(frozen=True)
class Call:
    """A call of the client library's method ``path`` ("images.edit"), on its blocking or async client; the flow
    receives what it returns, or has the library's own exception thrown in (the provider maps it). ``undeprecated``:
    call it without the library's deprecation wrapper (a model the catalog still lists)."""

    path: str
    kwargs: Mapping[str, Any]
    undeprecated: bool = False


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Fetch:
    """A download of a result file; the flow receives its bytes. ``authorized`` sends the API's credentials (for
    files served by the API itself; never to a host a redirect leads to)."""

    url: str
    timeout: float
    authorized: bool = False


Step = Http | Call | Sleep | Fetch
Flow = Generator[Step, Any, T]


class Abandoned(Exception):
    """Thrown into a flow whose caller gave up, so that it stops its backend work on the way out."""


class Io(Protocol):
    """What the drivers need from a provider: its API calls and downloads, blocking and async."""

    def send(self, step: Http) -> Any: ...
    def call(self, step: Call) -> Any: ...
    def download(self, step: Fetch) -> bytes: ...
    async def asend(self, step: Http) -> Any: ...
    async def acall(self, step: Call) -> Any: ...
    async def adownload(self, step: Fetch) -> bytes: ...


def drive(flow: Flow[T], io: Io, ctx: CallContext | None) -> T:
    """Run a flow with blocking I/O. Ctrl-C stops the backend's work (the flow is told it was abandoned) before the
    interrupt goes on; a second Ctrl-C gives up at once."""
    answer: Any = None
    error: BaseException | None = None
    interrupted: KeyboardInterrupt | None = None
    abandoned = Abandoned()
    from .providers.base import Cancelled

    while True:
        try:
            step = flow.send(answer) if error is None else flow.throw(error)
        except StopIteration as stop:
            return cast(T, stop.value)
        except (Cancelled, Abandoned) as stopped:
            if interrupted is not None:
                raise _carrying(interrupted, stopped) from None
            raise
        answer, error = None, None
        try:
            if isinstance(step, Http):
                with _unbounded(step):
                    answer = io.send(step)
            elif isinstance(step, Call):
                answer = io.call(step)
            elif isinstance(step, Sleep):
                if ctx is not None and ctx.cancelled is not None:
                    ctx.cancelled.wait(step.seconds)
                else:
                    time.sleep(step.seconds)
            else:
                answer = io.download(step)
        except Exception as exc:  # the SDK's error, or a client library's, for the flow to handle
            error = exc
        except KeyboardInterrupt as exc:
            if interrupted is not None:  # interrupted again while stopping: give up at once
                raise _carrying(exc, abandoned) from None
            interrupted, error = exc, abandoned


async def adrive(flow: Flow[T], io: Io, ctx: CallContext | None) -> T:
    """As :func:`drive`, on the event loop. A cancelled task stops its backend work before it ends."""
    answer: Any = None
    error: BaseException | None = None
    cancelled: asyncio.CancelledError | None = None
    abandoned = Abandoned()
    from .providers.base import Cancelled

    while True:
        try:
            step = flow.send(answer) if error is None else flow.throw(error)
        except StopIteration as stop:
            return cast(T, stop.value)
        except (Cancelled, Abandoned) as stopped:
            if cancelled is not None:
                raise _carrying(cancelled, stopped) from None
            raise
        answer, error = None, None
        try:
            if isinstance(step, Http):
                with _unbounded(step):
                    answer = await io.asend(step)
            elif isinstance(step, Call):
                answer = await io.acall(step)
            elif isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
            else:
                answer = await io.adownload(step)
        except Exception as exc:
            error = exc
        except asyncio.CancelledError as exc:
            if cancelled is not None:  # cancelled again while stopping: give up at once
                raise _carrying(exc, abandoned) from None
            cancelled, error = exc, abandoned


E = TypeVar("E", bound=BaseException)


def _carrying(interrupt: E, stopped: BaseException) -> E:
    """The caller's interrupt (Ctrl-C, a cancelled task), raised in place of the flow's own error, with the work the
    flow marked as spent (a job that could not be stopped runs on and is billed): the pipeline records it."""
    from .providers.base import SPENT

    found = getattr(stopped, SPENT, None)
    if found is not None:
        setattr(interrupt, SPENT, found)
    return interrupt


def _unbounded(step: Http) -> contextlib.AbstractContextManager[None]:
    return deadline(time.monotonic() + (step.timeout or 10.0)) if step.unbounded else contextlib.nullcontext()


# -- long jobs ----------------------------------------------------------------------------------------------------


class LongJob(Protocol[S]):
    """A job a backend runs for a while, as the core follows it. ``S`` is the job's state as the backend reports it."""

    provider: str
    first_pause: float  # seconds before the first poll
    max_pause: float  # the pause between polls grows by half each time up to this
    cancellable: bool  # whether the backend can stop the job (if not, a job given up runs on and is billed)

    def label(self, state: S) -> str: ...  # how messages name the job: "prediction abc123"
    def request_id(self, state: S) -> str | None: ...  # the backend's id of the job, for errors' request_id
    def start(self) -> Flow[S]: ...  # create the job (or find the one this call created before): its first state
    def finished(self, state: S) -> bool: ...
    def poll(self, state: S) -> Flow[S]: ...  # its state now; a retryable ProviderError is a failed poll, tried again
    def progress(self, state: S) -> tuple[float, float, str] | None: ...  # (done, total, message) for on_progress
    def cancel(self, state: S) -> Flow[S | None]: ...  # stop it: its state after (it may have finished first), or None

    def given_up(self, state: S, final: S | None, error: BaseException) -> None:
        """The call ends without the job's result (``state`` its last known state, ``final`` after the cancel, None if
        unknown). A job that finished all the same, or cannot be stopped, is billed: mark ``error`` spent
        (``providers.base.mark_spent``). When the caller gave up, ``error`` is its ``Abandoned``, marked before the
        cancel too, in case a second interrupt ends it."""


def follow(job: LongJob[S], ctx: CallContext) -> Flow[S]:
    """Start a long job and wait for it to finish; its final state. Once it exists, the job is canceled on every way
    out but success: the call's deadline, a caller who gave up, polls that keep failing, any error."""
    from .providers.base import Cancelled

    began = time.monotonic()
    end = began + ctx.timeout if ctx.timeout is not None else None
    state = yield from job.start()
    handle = getattr(job, "handle", None)
    if ctx.on_job is not None and handle is not None:  # recorded before waiting: another process may collect it
        ctx.on_job(job.request_id(state) or "", handle(state))
    pause = job.first_pause
    failures = 0
    try:
        while not job.finished(state):
            if ctx.progress is not None:  # the job's own progress, else the seconds waited (of the timeout, if any)
                report = job.progress(state)
                ctx.progress(*(report or (time.monotonic() - began, ctx.timeout or 0.0, f"waiting for {job.label(state)}")))
            if ctx.cancelled is not None and ctx.cancelled.is_set():
                raise Abandoned
            if end is not None and time.monotonic() >= end:
                raise ProviderUnavailableError(
                    f"{job.label(state)} did not finish within the call's timeout; it {_fate(job)} (raise timeout=)",
                    provider=job.provider, request_id=job.request_id(state), retryable=False,
                )  # fmt: skip
            if pause:
                yield Sleep(pause if end is None else max(0.0, min(pause, end - time.monotonic())))
            pause = min(max(pause, job.first_pause or 0.25) * 1.5, job.max_pause)
            try:
                state = yield from job.poll(state)
                failures = 0
            except ProviderError as error:
                failures += 1
                if not error.retryable or failures > MAX_POLL_FAILURES:
                    raise
    except Abandoned as abandoned:
        job.given_up(state, None, abandoned)  # what stands if a second interrupt ends the cancel
        final = yield from job.cancel(state)
        stopped = Cancelled(f"the call was cancelled; {job.label(state)} {_fate(job)}", provider=job.provider,
                            request_id=job.request_id(state))  # fmt: skip
        job.given_up(state, final, stopped)
        raise stopped from None
    except GeneratorExit:  # the flow was dropped unfinished: nothing can be sent any more
        raise
    except BaseException as error:
        final = yield from job.cancel(state)
        job.given_up(state, final, error)
        raise
    return state


_UNSENT = "_genai_unsent"


def never_sent(error: BaseException) -> bool:
    """Whether a failed API call is known not to have reached the backend (no connection could be made): only
    then is a request that starts paid work safe to send again after its answer was lost."""
    return bool(getattr(error, _UNSENT, False))


def _fate(job: LongJob[Any]) -> str:
    if job.cancellable:
        return "was canceled"
    return f"could not be canceled ({job.provider} has no way to): it runs on, and is counted as spent"


# -- a JSON API over httpx ----------------------------------------------------------------------------------------


class JsonApi:
    """The :class:`Io` of a JSON API over httpx: API calls with the credentials, under the call's deadline and an
    answer cap; result files through ``_http.fetch`` (public addresses only, redirects checked), without the
    credentials unless a step asks for them. The async clients are made on the first async call, in its loop.

    ``error(response)`` maps an answer of 400 or more to the SDK's error; ``decode(response)`` reads a good answer
    (JSON by default); ``unreachable(exc)`` maps a transport failure."""

    def __init__(
        self, *, provider: str, base_url: str, headers: Mapping[str, str], timeout: float, answer_cap: int,
        download_cap: int, guard: AddressGuard, error: Callable[[Any], GenAIError],
        decode: Callable[[Any], Any] | None = None, unreachable: Callable[[Exception], GenAIError] | None = None,
    ) -> None:  # fmt: skip
        import httpx

        self.provider = provider
        self.base_url = base_url
        self._httpx = httpx
        self._headers = dict(headers)
        self._timeout = httpx.Timeout(timeout, connect=10.0)
        self._caps = (answer_cap, download_cap)
        self.guard = guard
        self._error = error
        self._decode = decode or self.json
        self._unreachable = unreachable or self._default_unreachable
        self._http, self._files, self._signed = self._clients(False)
        self._async: tuple[Any, Any, Any] | None = None

    def _clients(self, asynchronous: bool) -> tuple[Any, Any, Any]:
        """The API's client; the result files' (which may live on other hosts: public addresses only) without the
        credentials, and with them."""
        make = self._httpx.AsyncClient if asynchronous else self._httpx.Client
        (answer_cap, download_cap), guard = self._caps, self.guard
        user_agent = {"User-Agent": self._headers.get("User-Agent", "genai-sdk")}
        return (
            make(headers=self._headers, timeout=self._timeout, transport=self._transport(asynchronous, answer_cap)),
            make(headers=user_agent, transport=self._transport(asynchronous, download_cap, guard)),
            make(headers=self._headers, transport=self._transport(asynchronous, download_cap, guard)),
        )

    def _transport(self, asynchronous: bool, cap: int, guard: AddressGuard | None = None) -> Any:
        return transport(self._httpx, asynchronous=asynchronous, limit=cap, provider=self.provider, guard=guard)

    def _aclients(self) -> tuple[Any, Any, Any]:
        if self._async is None:
            self._async = self._clients(True)
        return self._async

    def url(self, path: str) -> str:
        """A path under the API's base URL; a full URL only on the API's own origin (the credentials go with it)."""
        if "://" not in path:
            return self.base_url + path
        if not self._same_origin(path):
            raise ProviderError(f"{self.provider} answered with a URL on another host ({path[:200]}): it was not "
                                "followed, as the API's key would go with it", provider=self.provider, retryable=False)  # fmt: skip
        return path

    def send(self, step: Http) -> Any:
        with self._reaching():
            response = self._http.request(step.method, self.url(step.path), json=step.json, files=step.files,
                                          headers=step.headers, timeout=step.timeout)  # fmt: skip
        return self.answer(response)

    async def asend(self, step: Http) -> Any:
        with self._reaching():
            response = await self._aclients()[0].request(
                step.method, self.url(step.path), json=step.json, files=step.files, headers=step.headers,
                timeout=step.timeout,
            )  # fmt: skip
        return self.answer(response)

    def call(self, step: Call) -> Any:
        raise TypeError(f"{self.provider}'s JSON API has no client library to call ({step.path})")

    async def acall(self, step: Call) -> Any:
        raise TypeError(f"{self.provider}'s JSON API has no client library to call ({step.path})")

    def download(self, step: Fetch) -> bytes:
        signed = self._signed if step.authorized and self._same_origin(step.url) else None
        return fetch(self._httpx, self._files, step.url, self.guard, provider=self.provider, timeout=step.timeout,
                     signed=signed)  # fmt: skip

    async def adownload(self, step: Fetch) -> bytes:
        _, files, signed = self._aclients()
        first = signed if step.authorized and self._same_origin(step.url) else None
        return await afetch(self._httpx, files, step.url, self.guard, provider=self.provider, timeout=step.timeout,
                            signed=first)  # fmt: skip

    def _same_origin(self, url: str) -> bool:
        """Credentials go only to the API's own origin, and only on the first request (never on a redirect)."""
        from urllib.parse import urlsplit

        a, b = urlsplit(url), urlsplit(self.base_url)
        return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)

    def answer(self, response: Any) -> Any:
        if response.status_code >= 400:
            raise self._error(response)
        return self._decode(response)

    def json(self, response: Any) -> Any:
        """A good answer's JSON (None when empty); one that is not JSON (a proxy's page, a cut-off body) is a
        retryable ``ProviderError``."""
        if not response.content:
            return None
        try:
            return response.json()
        except (ValueError, RecursionError) as exc:
            kind = "an HTML page" if "html" in response.headers.get("content-type", "") else "not JSON"
            raise ProviderError(f"{self.provider} answered {response.status_code}, but its answer is {kind}",
                                provider=self.provider, status=response.status_code, retryable=True) from exc

    @contextlib.contextmanager
    def _reaching(self) -> Iterator[None]:
        try:
            yield
        except self._httpx.HTTPError as exc:
            mapped = self._unreachable(exc)
            if isinstance(exc, self._httpx.ConnectError | self._httpx.ConnectTimeout):
                setattr(mapped, _UNSENT, True)  # no connection was made: the request never left
            raise mapped from exc

    def _default_unreachable(self, exc: Exception) -> GenAIError:
        if isinstance(exc, self._httpx.TimeoutException):
            return ProviderUnavailableError(f"{self.provider} did not answer in time", provider=self.provider,
                                            retryable=True)  # fmt: skip
        return ProviderUnavailableError(f"could not reach {self.provider}: {exc}", provider=self.provider, retryable=True)

    def close(self) -> None:
        for client in (self._http, self._files, self._signed):
            client.close()

    async def aclose(self) -> None:
        if self._async is not None:
            clients, self._async = self._async, None
            for client in clients:
                await client.aclose()
        self.close()


__all__ = [
    "Abandoned", "Call", "Fetch", "Flow", "Http", "Io", "JsonApi", "LongJob", "Sleep", "adrive", "drive", "follow", "never_sent",
]  # fmt: skip
