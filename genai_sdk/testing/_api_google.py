"""Google's Gemini API in the emulator: Imagen (``:predict``) and Veo (``:predictLongRunning``, operations polled
with ``GET``, videos downloaded with the key and redirected to a file served without it). Reach it as
``emulator.api("google")``.

Operations finish on their ``polls_to_finish``-th poll. Errors have the Gemini API's shape,
``{"error": {"code", "message", "status", "details"}}``; a 429 says how long to wait in a ``RetryInfo`` detail, with
no ``Retry-After`` header, as Google answers.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._media_maker import make_image, make_video
from ._wire import Answer, Api, Fault, Host, RecordedRequest, Refusal, Route, blocked

_MODEL = r"(?P<model>[a-z0-9.\-]+)"
ROUTES: list[Route] = [
    ("POST", rf"^/v1beta/models/{_MODEL}:predict$", "google.predict"),
    ("POST", rf"^/v1beta/models/{_MODEL}:predictLongRunning$", "google.predict_long_running"),
    ("GET", rf"^/v1beta/models/{_MODEL}/operations/(?P<id>[a-z0-9]+)$", "google.operations.get"),
    ("GET", r"^/v1beta/files/(?P<id>[a-z0-9]+):download$", "google.files.download"),
]
# Imagen models: whether they make 2K pictures. Veo models: the lengths they make, and whether 1080p is landscape only.
IMAGEN = {"imagen-4.0-generate-001": True, "imagen-4.0-fast-generate-001": False, "imagen-4.0-ultra-generate-001": True}
VEO = {
    "veo-3.0-generate-001": ((8,), True), "veo-3.0-fast-generate-001": ((8,), True),
    "veo-3.1-generate-001": ((4, 6, 8), False), "veo-3.1-fast-generate-001": ((4, 6, 8), False),
}  # fmt: skip
PIXELS = {
    ("1:1", "1K"): (1024, 1024), ("3:4", "1K"): (896, 1280), ("4:3", "1K"): (1280, 896), ("9:16", "1K"): (768, 1408),
    ("16:9", "1K"): (1408, 768), ("1:1", "2K"): (2048, 2048), ("3:4", "2K"): (1792, 2560), ("4:3", "2K"): (2560, 1792),
    ("9:16", "2K"): (1536, 2816), ("16:9", "2K"): (2816, 1536),
}  # fmt: skip
RAI_REASON = "The image you want to generate may violate Google's Responsible AI practices (filtered by the emulator)."
VIDEO_FPS = 3  # the emulator's videos have the right length but few, small frames: cheap to make and to check
_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED",
           500: "INTERNAL", 503: "UNAVAILABLE"}  # fmt: skip


class GoogleError(Refusal):
    def __init__(self, status: int, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.details = status, details or []

    def answer(self) -> Answer:
        return _error(self.status, str(self), self.details)


def _error(status: int, message: str, details: list[dict[str, Any]] | None = None) -> Answer:
    body = {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN"), "details": details or []}}
    return status, {"Content-Type": "application/json; charset=UTF-8"}, json.dumps(body).encode()


def _ok(body: Any) -> Answer:
    return 200, {"Content-Type": "application/json; charset=UTF-8"}, json.dumps(body).encode()


@dataclass
class Operation:
    name: str
    model: str
    body: dict[str, Any]
    polls_left: int
    failure: str | None = None
    filtered: bool = False
    response: dict[str, Any] | None = None  # once done
    polls: int = field(default=0)


class GoogleApi:
    """Imagen and Veo under ``/v1beta``, with the key in ``x-goog-api-key``."""

    name = "google"
    routes = ROUTES

    def __init__(self, host: Host) -> None:
        self._host = host
        self._lock = threading.Lock()
        self.operations: dict[str, Operation] = {}  # by operation id
        self.polls_to_finish = 1  # an operation is done on this poll
        self._failures: list[str] = []
        self._withheld: list[int] = []  # pictures to withhold from the next Imagen answers
        self._videos: dict[str, bytes] = {}

    def fail_next_operation(self, message: str = "Video generation failed (injected).", times: int = 1) -> None:
        """Make the next operations finish with an error instead of a video."""
        with self._lock:
            self._failures.extend([message] * times)

    def withhold_next_pictures(self, count: int) -> None:
        """Make the next Imagen answer withhold ``count`` of its pictures, as Google's safety filters do."""
        with self._lock:
            self._withheld.append(count)

    # -- what the server asks ---------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        key = self._host.api_key or "any-key"  # both names: GOOGLE_API_KEY wins over GEMINI_API_KEY in the SDKs
        return {"GOOGLE_GEMINI_BASE_URL": self._host.url, "GEMINI_API_KEY": key, "GOOGLE_API_KEY": key}

    def unreadable(self) -> Answer:
        return _error(400, "Invalid JSON payload received.")

    def authorize(self, record: RecordedRequest) -> Answer | None:
        key = record.headers.get("x-goog-api-key", "")
        if not key:
            return _error(403, "Method doesn't allow unregistered callers (callers without established identity). "
                               "Please use API Key or other form of API consumer identity to call this API.")  # fmt: skip
        if self._host.api_key is not None and key != self._host.api_key:
            return _error(400, "API key not valid. Please pass a valid API key.",
                          [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                            "domain": "googleapis.com"}])  # fmt: skip
        return None

    def fault_answer(self, fault: Fault) -> Answer:
        if fault.kind in ("rate_limit", "quota"):
            delay = fault.retry_after if fault.retry_after is not None else 1.0
            return _error(429, f"Resource has been exhausted (e.g. check quota). Please retry in {delay:g}s.",
                          [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{delay:g}s"}])  # fmt: skip
        status, message = {
            "server_error": (500, "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"),
            "unavailable": (503, "The model is overloaded. Please try again later."),
            "conflict": (409, "The operation was aborted (injected)."),
            "bad_request": (400, "Request contains an invalid argument (injected)."),
            "unauthorized": (403, "The caller does not have permission (injected)."),
        }[fault.kind]  # fmt: skip
        return _error(fault.status or status, message)

    def answer(self, operation: str, params: dict[str, str], record: RecordedRequest) -> Answer:
        if operation == "google.predict":
            return self._predict(params["model"], record)
        if operation == "google.predict_long_running":
            return self._start(params["model"], record)
        if operation == "google.files.download":
            with self._lock:
                video = self._videos.get(params["id"])
            if video is None:
                return _error(404, "File not found.")
            return 302, {"Location": self._host._store_file(video, ".mp4"), "Content-Length": "0"}, b""
        with self._lock:
            found = self.operations.get(params["id"])
        if found is None or found.model != params["model"]:
            return _error(404, "Operation not found.")
        return _ok(self._poll(found))

    def _instance(self, record: RecordedRequest) -> tuple[str, dict[str, Any]]:
        return _instance(record, self._host.blocked_words)

    # -- Imagen -----------------------------------------------------------------------------------------------

    def _predict(self, model: str, record: RecordedRequest) -> Answer:
        if model not in IMAGEN:
            return _error(404, f"models/{model} is not found for API version v1beta, or is not supported for predict. "
                               "Call ListModels to see the list of available models and their supported methods.")  # fmt: skip
        prompt, parameters = self._instance(record)
        count = parameters.get("sampleCount", 4)
        if not isinstance(count, int) or not 1 <= count <= 4:
            raise GoogleError(400, "sampleCount must be between 1 and 4.")
        size = str(parameters.get("sampleImageSize", "1K")).upper()
        if size not in ("1K", "2K") or (size == "2K" and not IMAGEN[model]):
            raise GoogleError(400, f"sampleImageSize {size} is not supported by {model}.")
        aspect = str(parameters.get("aspectRatio", "1:1"))
        if (aspect, size) not in PIXELS:
            raise GoogleError(400, f"aspectRatio {aspect} is not supported.")
        _check_person(parameters)
        mime = str((parameters.get("outputOptions") or {}).get("mimeType", "image/png"))
        if mime not in ("image/png", "image/jpeg"):
            raise GoogleError(400, f"outputOptions.mimeType {mime} is not supported.")
        width, height = PIXELS[aspect, size]
        with self._lock:
            withheld = self._withheld.pop(0) if self._withheld else 0
        if blocked(prompt, self._host.output_blocked_words):
            withheld = count
        predictions: list[dict[str, Any]] = []
        for index in range(count):
            if index >= count - withheld:
                if parameters.get("includeRaiReason"):
                    predictions.append({"raiFilteredReason": RAI_REASON})
                continue
            picture = make_image(prompt, width, height, index, None, "jpeg" if mime == "image/jpeg" else "png")
            predictions.append({"bytesBase64Encoded": base64.b64encode(picture).decode(), "mimeType": mime})
        return _ok({"predictions": predictions} if predictions else {})

    # -- Veo --------------------------------------------------------------------------------------------------

    def _start(self, model: str, record: RecordedRequest) -> Answer:
        if model not in VEO:
            return _error(404, f"models/{model} is not found for API version v1beta, or is not supported for "
                               "predictLongRunning.")  # fmt: skip
        _, parameters = self._instance(record)
        lengths, landscape_1080 = VEO[model]
        seconds = parameters.get("durationSeconds", 8)
        if seconds not in lengths:
            raise GoogleError(400, f"durationSeconds {seconds} is not supported by {model}: use {lengths}.")
        aspect, resolution = parameters.get("aspectRatio", "16:9"), parameters.get("resolution", "720p")
        if aspect not in ("16:9", "9:16") or resolution not in ("720p", "1080p"):
            raise GoogleError(400, f"aspectRatio {aspect} with resolution {resolution} is not supported.")
        if landscape_1080 and resolution == "1080p" and aspect != "16:9":
            raise GoogleError(400, f"{model} makes 1080p videos in 16:9 only.")
        _check_person(parameters)
        name = f"models/{model}/operations/{uuid.uuid4().hex[:12]}"
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
            self.operations[name.rsplit("/", 1)[1]] = Operation(name, model, record.json, self.polls_to_finish, failure)
        return _ok({"name": name})

    def _poll(self, op: Operation) -> dict[str, Any]:
        with self._lock:
            op.polls += 1
            op.polls_left -= 1
            if op.polls_left > 0 or op.response is not None:
                return {"name": op.name} if op.response is None else op.response
        prompt = str(op.body["instances"][0].get("prompt", ""))
        if op.failure is not None:
            response = {"name": op.name, "done": True, "error": {"code": 13, "message": op.failure}}
        elif blocked(prompt, self._host.output_blocked_words):
            response = {"name": op.name, "done": True, "response": {
                "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
                "generateVideoResponse": {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [
                    "Your video could not be generated because it may violate our policies (emulator). "
                    "You have not been charged for this attempt."]}}}  # fmt: skip
        else:
            parameters = op.body.get("parameters") or {}
            seconds = int(parameters.get("durationSeconds", 8))
            portrait = parameters.get("aspectRatio") == "9:16"
            video = make_video(prompt, 36 if portrait else 64, 64 if portrait else 36, seconds * VIDEO_FPS, VIDEO_FPS)
            file_id = uuid.uuid4().hex[:12]
            with self._lock:
                self._videos[file_id] = video
            uri = f"{self._host.url}/v1beta/files/{file_id}:download?alt=media"
            response = {"name": op.name, "done": True, "response": {
                "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
                "generateVideoResponse": {"generatedSamples": [{"video": {"uri": uri}}]}}}  # fmt: skip
        with self._lock:
            op.response = response
        return response


def _instance(record: RecordedRequest, refused: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    body = record.json
    instances = body.get("instances") if isinstance(body, dict) else None
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
        raise GoogleError(400, "instances must hold one instance.")
    prompt = instances[0].get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise GoogleError(400, "The prompt is empty.")
    if blocked(prompt, refused):
        raise GoogleError(400, "The prompt could not be submitted. This prompt contains sensitive words that violate "
                               "Google's Responsible AI practices. Try rephrasing the prompt.")  # fmt: skip
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise GoogleError(400, "parameters must be an object.")
    return prompt, parameters


def _check_person(parameters: dict[str, Any]) -> None:
    person = parameters.get("personGeneration", "allow_adult")
    if person not in ("dont_allow", "allow_adult", "allow_all"):
        raise GoogleError(400, f"personGeneration {person} is not supported.")


API: Callable[[Host], Api] = GoogleApi
