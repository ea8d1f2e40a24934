"""The emulator's HTTP server on loopback: lifecycle, faults, records and result files, and one routing table made of
the routes of every API module (``_api_<name>.py`` in this package, found without a list, each exposing ``API``).

    with Emulator() as emulator:
        emulator.fail("images.generate", "rate_limit", times=2, retry_after=1)
        client = genai.Client(image="openai:dall-e-2")   # after emulator.install() or with its env()
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import pkgutil
import random
import re
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from ._answer_faults import ANSWER_FAULTS, DELIVERY_FAULTS, DELIVERY_HEADER, delivered, send, spoil
from ._wire import Answer, Api, Fault, Host, RecordedRequest, Refusal, _ApiError, _fault_response, _parse_multipart

if TYPE_CHECKING:  # for annotations only: the server finds its API modules, it imports none by name
    from ._api_openai import OpenAIApi
    from ._api_replicate import ReplicateApi

DEFAULT_KEY = "sk-emulator-0000000000000000"
DEFAULT_BLOCKED = ("forbidden", "blockedword")
# gpt-image models refuse prompts with these at the output stage: the picture was made, then withheld.
DEFAULT_OUTPUT_BLOCKED = ("blockedpicture",)
FAULTS = (
    "rate_limit", "quota", "server_error", "unavailable", "slow", "drop", "conflict", "bad_request", "unauthorized",
    *ANSWER_FAULTS, *DELIVERY_FAULTS,
)  # fmt: skip
FILES = "files.get"  # the operation name of result-file downloads, for faults

_PACKAGE = __name__.rpartition(".")[0]
_CLOSE = -1  # the status of an answer that closes the connection without one (a "drop" fault)
_FILE_TYPES = {"png": "image/png", "webp": "image/webp", "jpg": "image/jpeg", "mp4": "video/mp4"}


@functools.cache
def _api_classes() -> tuple[Callable[[Host], Api], ...]:
    """The ``API`` of every module ``_api_<name>`` of this package, in the order of their names."""
    package = importlib.import_module(_PACKAGE)
    names = sorted(found.name for found in pkgutil.iter_modules(package.__path__) if found.name.startswith("_api_"))
    classes: list[Callable[[Host], Api]] = [importlib.import_module(f"{_PACKAGE}.{name}").API for name in names]
    return tuple(classes)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stopping never waits for an answer held back by a "slow" fault
    request_queue_size = 512  # bursts of concurrent clients must not overflow the listen backlog

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # a client that hung up (as the SDK does on a trickle or an oversized body): not the emulator's fault
        super().handle_error(request, client_address)


class Emulator:
    """The emulated APIs on 127.0.0.1, answering with valid, deterministic media. Each API is an attribute named
    after it (``emulator.replicate``) and ``emulator.api(name)``."""

    # Set in __init__ with every other API found; annotated here so that callers get their types.
    openai: OpenAIApi
    replicate: ReplicateApi

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = DEFAULT_KEY,
        any_key: bool = False,
        blocked_words: tuple[str, ...] = DEFAULT_BLOCKED,
        output_blocked_words: tuple[str, ...] = DEFAULT_OUTPUT_BLOCKED,
        max_records: int = 10_000,
        latency: float = 0.0,
    ) -> None:
        # The key clients are given (env()); with any_key=True (or api_key=None) every non-empty key is accepted, as
        # test suites written for another server need (openai-python's own tests send "My API Key").
        self.api_key = api_key
        self.any_key = any_key or api_key is None
        self.latency = latency  # seconds every API answer waits (a backend's own time), 0 by default
        self.blocked_words = tuple(w.lower() for w in blocked_words)
        self.output_blocked_words = tuple(w.lower() for w in output_blocked_words)
        self.requests: deque[RecordedRequest] = deque(maxlen=max_records)
        self._faults: dict[str, deque[Fault]] = {}
        self._chaos: tuple[float, dict[str, list[Fault]], random.Random] | None = None
        self._files: dict[str, bytes] = {}
        self._in_flight: dict[str, int] = {}
        self._limits: dict[str, tuple[int, float, deque[float]]] = {}  # operation -> (requests, per, arrivals)
        self._peak: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = _Server((host, port), _make_handler(self))
        self._thread: threading.Thread | None = None
        self._apis: dict[str, Api] = {}
        self._routes: list[tuple[str, re.Pattern[str], str, Api]] = []  # method, path, operation, API
        for make in _api_classes():
            api = make(self)
            if hasattr(type(self), api.name) or api.name in vars(self):
                raise RuntimeError(f"the emulator's attribute {api.name!r} cannot be the name of an API")
            setattr(self, api.name, api)
            self._apis[api.name] = api
            self._routes += [(method, re.compile(path), operation, api) for method, path, operation in api.routes]

    def api(self, name: str) -> Api:
        """The emulated API called ``name`` ("openai", "replicate", ...)."""
        if name not in self._apis:
            raise ValueError(f"no emulated API {name!r}; known: {', '.join(self._apis)}")
        return self._apis[name]

    # -- lifecycle ------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    def env(self) -> dict[str, str]:
        """Environment variables that point the SDK (and the APIs' own clients) at this emulator. They also give
        clients an in-memory ledger (``GENAI_LEDGER``), so that emulated calls are never charged to the user's real
        ledger; ``Client(ledger=...)`` still chooses another."""
        variables: dict[str, str] = {}
        for api in self._apis.values():
            variables.update(api.env())
        return {**variables, "GENAI_LEDGER": "memory://"}

    def start(self) -> Emulator:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="genai-emulator", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @contextmanager
    def installed(self) -> Iterator[Emulator]:
        """Point the APIs' variables (see env()) at the emulator for the duration of a block."""
        saved = {k: os.environ.get(k) for k in self.env()}
        os.environ.update(self.env())
        try:
            yield self
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    # -- OpenAI's moderations ---------------------------------------------------------------------------------

    def moderate(self, word: str, scores: Mapping[str, float]) -> None:
        """Make /v1/moderations score texts containing ``word`` so (OpenAI category -> 0..1)."""
        self.openai.moderate(word, scores)

    def moderate_images(self, scores: Mapping[str, float]) -> None:
        """Make /v1/moderations score every image input so."""
        self.openai.moderate_images(scores)

    # -- faults and records -----------------------------------------------------------------------------------

    def fail(self, operation: str, kind: str, times: int = 1, **details: Any) -> None:
        """Make the next ``times`` calls of ``operation`` (or "*") fail: see FAULTS for the kinds. With
        ``when="text"`` only requests whose body holds that text meet it (one item of a batch, say)."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULTS)}")
        known = [*dict.fromkeys(operation for _, _, operation, _ in self._routes), FILES]
        if operation != "*" and operation not in known:
            raise ValueError(f"unknown operation {operation!r}; known: {', '.join(known)}")
        with self._lock:
            self._faults.setdefault(operation, deque()).append(Fault(kind, times, **details))

    def chaos(self, rate: float, faults: Mapping[str, list[Any]], *, seed: int | None = None) -> None:
        """From now on, each request of an operation in ``faults`` meets one of its faults (drawn at random) with
        probability ``rate``: ``emulator.chaos(0.3, {"images.generate": ["server_error", {"kind": "trickle",
        "delay": 0.05}]}, seed=1)``. ``CHAOS_OPENAI_IMAGES`` and ``CHAOS_REPLICATE`` (in ``genai_sdk.testing``)
        hold every fault of an image call. Faults queued with :meth:`fail` come first. ``rate=0`` turns it off."""
        plan: dict[str, list[Fault]] = {}
        for operation, kinds in faults.items():
            plan[operation] = []
            for kind in kinds:
                fault = kind if isinstance(kind, Fault) else Fault(**kind) if isinstance(kind, Mapping) else Fault(str(kind))
                if fault.kind not in FAULTS:
                    raise ValueError(f"unknown fault {fault.kind!r}; known: {', '.join(FAULTS)}")
                plan[operation].append(fault)
        with self._lock:
            self._chaos = (rate, plan, random.Random(seed)) if rate > 0 else None

    def clear(self) -> None:
        with self._lock:
            self._chaos = None
            self._faults.clear()
            self.requests.clear()
            self._peak.clear()
            self._limits.clear()

    def rate_limit(self, operation: str, requests: int, per: float = 60.0) -> None:
        """Answer 429 (with Retry-After) to requests of ``operation`` beyond ``requests`` in any ``per`` seconds, as a
        provider's own limit does; ``requests=0`` removes the limit."""
        with self._lock:
            if requests <= 0:
                self._limits.pop(operation, None)
            else:
                self._limits[operation] = (requests, per, deque())

    def _over_limit(self, operation: str) -> Fault | None:
        with self._lock:
            limit = self._limits.get(operation)
            if limit is None:
                return None
            requests, per, arrivals = limit
            now = time.monotonic()
            while arrivals and arrivals[0] <= now - per:
                arrivals.popleft()
            if len(arrivals) >= requests:
                wait = max(arrivals[0] + per - now, 0.001)
                return Fault("rate_limit", retry_after=round(wait, 3), retry_after_ms=round(wait * 1000))
            arrivals.append(now)
            return None

    def peak_in_flight(self, operation: str) -> int:
        """The most requests of ``operation`` the emulator was answering at once."""
        with self._lock:
            return self._peak.get(operation, 0)

    def calls(self, operation: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if operation is None or r.operation == operation]

    def _take_fault(self, operation: str, raw: bytes = b"") -> Fault | None:
        with self._lock:
            for key in (operation, "*"):
                queue = self._faults.get(key)
                fault = next((f for f in queue or () if f.when is None or f.when.encode() in raw), None)
                if fault is not None and queue is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        queue.remove(fault)
                    return fault
            if self._chaos is not None:
                rate, plan, draw = self._chaos
                choices = plan.get(operation)
                if choices and draw.random() < rate:
                    return replace(draw.choice(choices), times=1)
        return None

    def _store_file(self, data: bytes, suffix: str) -> str:
        name = f"{uuid.uuid4().hex}{suffix}"
        with self._lock:
            self._files[name] = data
        return f"{self.url}/files/{name}"

    # -- answering ------------------------------------------------------------------------------------------

    def _respond(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Answer:
        """The answer to one request (status _CLOSE: none); every request but a download of a file is recorded."""
        path, _, query = target.partition("?")
        if method == "GET" and path.startswith("/files/"):
            return self._download(path[len("/files/") :])
        found = self._route(method, path)
        record = RecordedRequest(method, path, found[0] if found else None, headers)
        if found is None:
            answer = _ApiError(404, f"Invalid URL ({method} {path})", "invalid_request_error").answer()
        else:
            operation, api, params = found
            with self._lock:
                self._in_flight[operation] = self._in_flight.get(operation, 0) + 1
                self._peak[operation] = max(self._peak.get(operation, 0), self._in_flight[operation])
            try:
                answer = self._answer(api, operation, {**dict(parse_qsl(query)), **params}, record, raw)
            finally:
                with self._lock:
                    self._in_flight[operation] -= 1
        record.status = answer[0]
        with self._lock:
            self.requests.append(record)
        return answer

    def _route(self, method: str, path: str) -> tuple[str, Api, dict[str, str]] | None:
        """The operation at ``path``, the API that serves it, and the named groups of its path."""
        for verb, pattern, operation, api in self._routes:
            match = pattern.match(path)
            if verb == method and match is not None:
                return operation, api, match.groupdict()
        return None

    def _answer(self, api: Api, operation: str, params: dict[str, str], record: RecordedRequest, raw: bytes) -> Answer:
        """Read the body, let the API authorize the request, apply the operation's fault, and let the API answer."""
        content_type = record.headers.get("content-type", "")
        try:
            if content_type.startswith("multipart/form-data"):
                record.form, record.multi, record.files = _parse_multipart(content_type, raw)
            elif raw:
                record.json = json.loads(raw)
        except ValueError:
            unreadable = api.unreadable()
            if unreadable is not None:
                return unreadable
        refused = api.authorize(record)
        if refused is not None:
            return refused
        if self.latency:
            time.sleep(self.latency)
        fault = self._take_fault(operation, raw) or self._over_limit(operation)
        record.fault = fault.kind if fault is not None else None
        if fault is not None:
            if fault.kind == "drop":
                return _CLOSE, {}, b""
            if fault.kind == "slow":
                time.sleep(fault.delay)
            elif fault.kind not in ANSWER_FAULTS and fault.kind not in DELIVERY_FAULTS:
                return api.fault_answer(fault)
        try:
            answer = api.answer(operation, params, record)
        except Refusal as refusal:
            return refusal.answer()
        if fault is not None and fault.kind in DELIVERY_FAULTS:  # the work is done; its answer goes astray
            return delivered(fault.kind, answer, fault.delay, fault.size)
        if fault is not None and fault.kind in ANSWER_FAULTS:  # the real answer, spoilt (the work was done all the same)
            return spoil(fault.kind, *answer)
        return answer

    def _download(self, name: str) -> Answer:
        """A result file, served without a key, as the APIs' file hosts serve them (with the faults of ``files.get``)."""
        with self._lock:
            data = self._files.get(name)
        if data is None:
            return _ApiError(404, "not found", "invalid_request_error").answer()
        answer: Answer = (200, {"Content-Type": _FILE_TYPES.get(name.rsplit(".", 1)[-1], "application/octet-stream")}, data)
        fault = self._take_fault(FILES)
        if fault is not None and fault.kind in DELIVERY_FAULTS:
            return delivered(fault.kind, answer, fault.delay, fault.size)
        if fault is not None and fault.kind == "drop":
            return delivered("lost_answer", answer, 0.0, None)
        if fault is not None and fault.kind == "html":
            return 200, {"Content-Type": "text/html"}, b"<html><body>Sign in to continue</body></html>"
        if fault is not None and fault.kind in ("server_error", "unavailable", "rate_limit"):
            return _fault_response(fault)
        return answer


def _make_handler(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "genai-emulator/1"
        wbufsize = 1 << 16  # status, headers and body leave in one write (flushed after each request)

        def setup(self) -> None:
            super().setup()
            # Without this, Nagle's algorithm and the peer's delayed ACK add ~40 ms to small answers.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the default stderr log
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, answer_headers, body = emulator._respond(self.command, self.path, headers, raw)
            if status == _CLOSE:
                self.close_connection = True
                self.wfile.flush()
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            request_id = f"req_{uuid.uuid4().hex[:24]}"
            if DELIVERY_HEADER in answer_headers:
                send(self, status, {**answer_headers, "x-request-id": request_id}, body)
                return
            self.send_response(status)
            for key, value in answer_headers.items():
                self.send_header(key, value)
            self.send_header("x-request-id", request_id)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler
