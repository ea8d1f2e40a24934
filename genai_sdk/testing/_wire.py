"""What the emulator's server and its API modules share: the faults a request can meet, the record of a request,
errors and the OpenAI error body, multipart parsing, and the two interfaces between them: :class:`Host` (what an
API module may use of the server) and :class:`Api` (what the server asks of an API module). It imports neither the
server nor any API module."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Protocol

Answer = tuple[int, dict[str, str], bytes]  # status, headers, body
Route = tuple[str, str, str]  # method, path regex (its named groups are the operation's parameters), operation


@dataclass
class Fault:
    kind: str
    times: int = 1
    retry_after: float | None = None
    retry_after_ms: float | None = None
    retry_after_date: bool = False
    delay: float = 0.0
    status: int | None = None
    size: int | None = None  # bytes of a huge_body or huge_declared answer
    when: str | None = None  # only requests whose body holds this text (a word of one prompt) meet the fault


@dataclass
class RecordedRequest:
    method: str
    path: str
    operation: str | None
    headers: dict[str, str]
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    multi: dict[str, list[str]] = field(default_factory=dict)  # every value of a repeated form field
    files: dict[str, list[bytes]] = field(default_factory=dict)
    status: int | None = None
    fault: str | None = None  # the fault this request met, if any
    received: float = field(default_factory=time.time)  # when it arrived (time.time())


class Host(Protocol):
    """What an API module may use of the server that hosts it: the settings given to the emulator, its address,
    and its store of result files (served without a key at the URL :meth:`_store_file` returns)."""

    api_key: str | None  # the key clients are given (None: "sk-any")
    any_key: bool  # True: any non-empty key is accepted, not only api_key
    blocked_words: tuple[str, ...]  # prompts with one of these are refused (each API in its own way)
    output_blocked_words: tuple[str, ...]  # prompts refused at the output stage, by the APIs that have one

    @property
    def url(self) -> str: ...

    def _store_file(self, data: bytes, suffix: str) -> str: ...


class Api(Protocol):
    """What the server asks of an API module. A module ``_api_<name>.py`` in ``genai_sdk.testing`` exposes its class
    as ``API``; the server finds it there, builds it with itself as the :class:`Host`, serves its routes and makes it
    reachable as ``emulator.<name>`` and ``emulator.api("<name>")``."""

    @property
    def name(self) -> str:
        """"openai": the emulator's attribute for this API (``emulator.openai``), and ``emulator.api("openai")``."""
        ...

    @property
    def routes(self) -> Sequence[Route]: ...

    def env(self) -> dict[str, str]:
        """The environment variables that point a client of this API at the emulator."""
        ...

    def unreadable(self) -> Answer | None:
        """The answer to a body that is neither JSON nor multipart, or None to go on without it."""
        ...

    def authorize(self, record: RecordedRequest) -> Answer | None:
        """None when the request may go on, else the answer that refuses it (checked before any fault)."""
        ...

    def fault_answer(self, fault: Fault) -> Answer:
        """The answer to an injected error fault (rate_limit, server_error, ...), in this API's error shape."""
        ...

    def answer(self, operation: str, params: dict[str, str], record: RecordedRequest) -> Answer:
        """The real answer to a request of ``operation`` (``params``: the route's named groups over the query).
        An answer fault or delivery fault may spoil it; raise :class:`Refusal` for an error sent as it is."""
        ...


class Refusal(Exception):
    """An error answer raised by an API module: the server sends it as it is, past any answer or delivery fault."""

    def answer(self) -> Answer:
        raise NotImplementedError


class _ApiError(Refusal):
    """An OpenAI error: its status and the fields of its ``{"error": ...}`` body."""

    def __init__(
        self, status: int, message: str, kind: str, code: str | None = None, param: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.kind, self.code, self.param, self.details = status, kind, code, param, details

    def answer(self) -> Answer:
        return self.status, {"Content-Type": "application/json"}, _error_body(self)


def _error_body(error: _ApiError) -> bytes:
    body: dict[str, Any] = {"message": str(error), "type": error.kind, "param": error.param, "code": error.code}
    if error.details is not None:
        body["moderation_details"] = error.details
    return json.dumps({"error": body}).encode()


def _fault_response(fault: Fault) -> Answer:
    headers = {"Content-Type": "application/json"}
    if fault.kind in ("rate_limit", "quota"):
        if fault.retry_after is not None:
            if fault.retry_after_date:
                from email.utils import formatdate

                headers["Retry-After"] = formatdate(time.time() + fault.retry_after, usegmt=True)
            else:
                headers["Retry-After"] = f"{fault.retry_after:g}"
        if fault.retry_after_ms is not None:
            headers["retry-after-ms"] = f"{fault.retry_after_ms:g}"
        if fault.kind == "quota":
            error = _ApiError(429, "You exceeded your current quota, please check your plan and billing details.", "insufficient_quota", "insufficient_quota")
        else:
            error = _ApiError(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded")
        return 429, headers, _error_body(error)
    status, message, kind = {
        "server_error": (500, "The server had an error while processing your request.", "server_error"),
        "unavailable": (503, "The engine is currently overloaded, please try again later.", "server_error"),
        "conflict": (409, "Conflict with a concurrent request.", "invalid_request_error"),
        "bad_request": (400, "Invalid request (injected fault).", "invalid_request_error"),
        "unauthorized": (401, "Incorrect API key provided.", "invalid_request_error"),
    }[fault.kind]
    return fault.status or status, headers, _error_body(_ApiError(status, message, kind, "invalid_api_key" if status == 401 else None))


def blocked(text: str, words: tuple[str, ...]) -> bool:
    """Whether ``text`` holds one of ``words`` (lower case) as a whole word."""
    lowered = text.lower()
    return any(re.search(rf"\b{re.escape(word)}\b", lowered) for word in words)


def key_accepted(host: Host, key: str) -> bool:
    """Whether ``key`` (from a request's Authorization header) is one the emulator accepts."""
    return bool(key) and (host.any_key or key == host.api_key)


def sse(events: Sequence[dict[str, Any]]) -> Answer:
    """A 200 ``text/event-stream`` answer: each event as ``event: <type>`` and ``data: <json>``, as OpenAI streams."""
    body = b"".join(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode() for event in events)
    return 200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}, body


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, list[str]], dict[str, list[bytes]]]:
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    form: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    files: dict[str, list[bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        if part.get_filename() is not None:
            files.setdefault(name, []).append(payload)
        else:
            form[name] = payload.decode("utf-8")
            multi.setdefault(name, []).append(form[name])
    return form, multi, files
