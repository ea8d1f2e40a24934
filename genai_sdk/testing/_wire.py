"""What the emulator's APIs share on the wire: the faults a request can meet, the record of a request, the OpenAI
error body, multipart parsing. Each API module (OpenAI's in ``_emulator``, Replicate's in ``_replicate_emulator``)
imports these; none imports another API module."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any


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


class _ApiError(Exception):
    def __init__(
        self, status: int, message: str, kind: str, code: str | None = None, param: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.kind, self.code, self.param, self.details = status, kind, code, param, details


def _error_body(error: _ApiError) -> bytes:
    body: dict[str, Any] = {"message": str(error), "type": error.kind, "param": error.param, "code": error.code}
    if error.details is not None:
        body["moderation_details"] = error.details
    return json.dumps({"error": body}).encode()


def _fault_response(fault: Fault) -> tuple[int, dict[str, str], bytes]:
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
