"""A real HTTP server on loopback that speaks the OpenAI and Replicate endpoints the SDK uses, with fault injection.

    with Emulator() as emulator:
        emulator.fail("images.generate", "rate_limit", times=2, retry_after=1)
        client = genai.Client(image="openai:dall-e-2")   # after emulator.install() or with its env()
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import random
import re
import socket
import threading
import time
import uuid
import wave
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ._answer_faults import ANSWER_FAULTS, DELIVERY_FAULTS, DELIVERY_HEADER, delivered, send, spoil
from ._media_maker import make_image, make_speech_wav, spoken_text, wav_duration
from ._moderation_emulator import ModerationEndpoint
from ._replicate_emulator import OPERATIONS as REPLICATE_OPERATIONS
from ._replicate_emulator import ReplicateEmulator, serve_replicate
from ._wire import Fault, RecordedRequest, _ApiError, _error_body, _fault_response, _parse_multipart

DEFAULT_KEY = "sk-emulator-0000000000000000"
DEFAULT_BLOCKED = ("forbidden", "blockedword")
# gpt-image models refuse prompts with these at the output stage: the picture was made, then withheld.
DEFAULT_OUTPUT_BLOCKED = ("blockedpicture",)

ROUTES = {
    "/v1/images/generations": "images.generate",
    "/v1/images/edits": "images.edit",
    "/v1/images/variations": "images.variations",
    "/v1/audio/speech": "audio.speech",
    "/v1/audio/transcriptions": "audio.transcriptions",
    "/v1/audio/translations": "audio.translations",
    "/v1/moderations": "moderations",
}
FAULTS = (
    "rate_limit", "quota", "server_error", "unavailable", "slow", "drop", "conflict", "bad_request", "unauthorized",
    *ANSWER_FAULTS, *DELIVERY_FAULTS,
)  # fmt: skip
FILES = "files.get"  # the operation name of result-file downloads, for faults

_SQUARE = ("256x256", "512x512", "1024x1024")
_GPT_SIZES = ("1024x1024", "1536x1024", "1024x1536", "auto")


@dataclass(frozen=True)
class _ModelRules:
    sizes: tuple[str, ...] | None  # None: any WxH with edges divisible by 16
    max_n: int
    max_prompt: int
    qualities: tuple[str, ...]
    url_default: bool
    edit: bool
    variations: bool
    styles: tuple[str, ...] = ()


_RULES = {
    "dall-e-2": _ModelRules(_SQUARE, 10, 1000, ("standard", "auto"), True, True, True),
    "dall-e-3": _ModelRules(("1024x1024", "1792x1024", "1024x1792"), 1, 4000, ("standard", "hd", "auto"), True, False, False, ("vivid", "natural")),
}
_GPT = _ModelRules(_GPT_SIZES, 10, 32000, ("low", "medium", "high", "auto"), False, True, False)
_GPT2 = _ModelRules(None, 10, 32000, ("low", "medium", "high", "auto"), False, True, False)


def _rules(model: str) -> _ModelRules:
    if model in _RULES:
        return _RULES[model]
    if model.startswith("gpt-image-2"):
        return _GPT2
    return _GPT  # gpt-image-* and any model the emulator does not know: the current GPT image rules


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stopping never waits for an answer held back by a "slow" fault
    request_queue_size = 512  # bursts of concurrent clients must not overflow the listen backlog

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # a client that hung up (as the SDK does on a trickle or an oversized body): not the emulator's fault
        super().handle_error(request, client_address)


class Emulator(ModerationEndpoint):
    """The OpenAI and Replicate APIs on 127.0.0.1, answering with valid, deterministic media."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = DEFAULT_KEY,
        blocked_words: tuple[str, ...] = DEFAULT_BLOCKED,
        output_blocked_words: tuple[str, ...] = DEFAULT_OUTPUT_BLOCKED,
        max_records: int = 10_000,
    ) -> None:
        self.api_key = api_key
        self.blocked_words = tuple(w.lower() for w in blocked_words)
        self.output_blocked_words = tuple(w.lower() for w in output_blocked_words)
        self._moderation_rules: list[tuple[str, dict[str, float]]] = []
        self._image_moderation: dict[str, float] = {}
        self.requests: deque[RecordedRequest] = deque(maxlen=max_records)
        self._faults: dict[str, deque[Fault]] = {}
        self._chaos: tuple[float, dict[str, list[Fault]], random.Random] | None = None
        self._files: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server = _Server((host, port), _make_handler(self))
        self.replicate = ReplicateEmulator(self)
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    def env(self) -> dict[str, str]:
        """Environment variables that point the SDK (and the raw openai client) at this emulator. They also give
        clients an in-memory ledger (``GENAI_LEDGER``), so that emulated calls are never charged to the user's real
        ledger; ``Client(ledger=...)`` still chooses another."""
        key = self.api_key or "sk-any"
        return {"OPENAI_BASE_URL": self.openai_base_url, "OPENAI_API_KEY": key,
                "REPLICATE_BASE_URL": self.url, "REPLICATE_API_TOKEN": key, "GENAI_LEDGER": "memory://"}

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
        """Point the OpenAI and Replicate variables (see env()) at the emulator for the duration of a block."""
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

    # -- faults and records -----------------------------------------------------------------------------------

    def fail(self, operation: str, kind: str, times: int = 1, **details: Any) -> None:
        """Make the next ``times`` calls of ``operation`` (or "*") fail: see FAULTS for the kinds."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULTS)}")
        known = [*ROUTES.values(), *REPLICATE_OPERATIONS, FILES]
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

    def calls(self, operation: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if operation is None or r.operation == operation]

    def _take_fault(self, operation: str) -> Fault | None:
        with self._lock:
            for key in (operation, "*"):
                queue = self._faults.get(key)
                if queue:
                    fault = queue[0]
                    fault.times -= 1
                    if fault.times <= 0:
                        queue.popleft()
                    return fault
            if self._chaos is not None:
                rate, plan, draw = self._chaos
                choices = plan.get(operation)
                if choices and draw.random() < rate:
                    return replace(draw.choice(choices), times=1)
        return None

    def _record(self, record: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(record)

    def _store_file(self, data: bytes, suffix: str) -> str:
        name = f"{uuid.uuid4().hex}{suffix}"
        with self._lock:
            self._files[name] = data
        return f"{self.url}/files/{name}"

    def _file(self, name: str) -> bytes | None:
        with self._lock:
            return self._files.get(name)

    def _blocked(self, text: str, words: tuple[str, ...] | None = None) -> bool:
        lowered = text.lower()
        return any(re.search(rf"\b{re.escape(word)}\b", lowered) for word in (words or self.blocked_words))

    def _api_error(self, status: int, message: str, kind: str, code: str | None, param: str | None) -> Exception:
        return _ApiError(status, message, kind, code, param)

    # -- endpoints ------------------------------------------------------------------------------------------

    def handle(self, operation: str, record: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        handler = getattr(self, "_op_" + operation.replace(".", "_"))
        result: tuple[int, dict[str, str], bytes] = handler(record)
        return result

    def _image_params(self, params: Mapping[str, Any], operation: str) -> tuple[str, _ModelRules, int, str]:
        default_model = "gpt-image-1.5" if operation == "images.edit" else "dall-e-2"
        model = str(params.get("model") or default_model)
        rules = _rules(model)
        if operation == "images.edit" and not rules.edit or operation == "images.variations" and not rules.variations:
            raise _ApiError(400, f"{model} does not support {operation}", "invalid_request_error", "unsupported_model", "model")
        n = int(params.get("n") or 1)
        if not 1 <= n <= rules.max_n:
            raise _ApiError(400, f"n must be between 1 and {rules.max_n} for {model}", "invalid_request_error", None, "n")
        size = str(params.get("size") or ("auto" if rules.sizes is None or "auto" in (rules.sizes or ()) else "1024x1024"))
        if rules.sizes is not None and size not in rules.sizes:
            raise _ApiError(400, f"Invalid size {size!r} for {model}: supported {', '.join(rules.sizes)}", "invalid_request_error", None, "size")
        if rules.sizes is None and size != "auto":
            match = re.match(r"^(\d+)x(\d+)$", size)
            if not match or int(match.group(1)) % 16 or int(match.group(2)) % 16:
                raise _ApiError(400, f"Invalid size {size!r}", "invalid_request_error", None, "size")
        quality = params.get("quality")
        if quality is not None and quality not in rules.qualities:
            raise _ApiError(400, f"Invalid quality {quality!r} for {model}", "invalid_request_error", None, "quality")
        style = params.get("style")
        if style is not None and style not in rules.styles:
            raise _ApiError(400, f"style is not supported for {model}", "invalid_request_error", None, "style")
        prompt = params.get("prompt")
        if operation != "images.variations":
            if not isinstance(prompt, str) or not prompt:
                raise _ApiError(400, "prompt is required", "invalid_request_error", None, "prompt")
            if len(prompt) > rules.max_prompt:
                raise _ApiError(400, f"prompt is longer than {rules.max_prompt} characters", "invalid_request_error", None, "prompt")
            if self._blocked(prompt):
                if model.startswith("dall-e"):
                    raise _ApiError(
                        400,
                        "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.",
                        "invalid_request_error",
                        "content_policy_violation",
                    )
                raise _safety_refusal("input", ["violence"])
            if self._blocked(prompt, self.output_blocked_words) and not model.startswith("dall-e"):
                raise _safety_refusal("output", ["sexual"])  # made, then withheld
        if not rules.url_default and params.get("response_format") not in (None, "b64_json"):
            raise _ApiError(400, f"response_format is not supported for {model}", "invalid_request_error", None, "response_format")
        return model, rules, n, size

    def _images_response(self, operation: str, params: Mapping[str, Any], seed_text: str) -> tuple[int, dict[str, str], bytes]:
        model, rules, n, size = self._image_params(params, operation)
        pixels = "1024x1024" if size == "auto" else size
        width, height = (int(v) for v in pixels.split("x"))
        fmt = str(params.get("output_format") or "png") if not model.startswith("dall-e") else "png"
        url = params.get("response_format") == "url" or (rules.url_default and params.get("response_format") is None)
        data = []
        for index in range(n):
            picture = make_image(seed_text, width, height, index, None, fmt)
            if url:
                data.append({"url": self._store_file(picture, "." + fmt)})
            else:
                data.append({"b64_json": base64.b64encode(picture).decode("ascii")})
            if model == "dall-e-3":
                data[-1]["revised_prompt"] = str(params.get("prompt"))
        body: dict[str, Any] = {"created": int(time.time()), "data": data}
        if not rules.url_default:
            quality = params.get("quality") or "auto"
            body.update(
                background="opaque",
                output_format=fmt,
                size=pixels,
                quality="medium" if quality == "auto" else quality,
                usage={
                    "input_tokens": 10 + len(str(params.get("prompt", ""))) // 4,
                    "output_tokens": 1056 * n,
                    "total_tokens": 10 + len(str(params.get("prompt", ""))) // 4 + 1056 * n,
                    "input_tokens_details": {"text_tokens": 10, "image_tokens": 0},
                },
            )
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def _op_images_generate(self, record: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        params = record.json if isinstance(record.json, dict) else {}
        return self._images_response("images.generate", params, str(params.get("prompt", "")))

    def _op_images_edit(self, record: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        images = record.files.get("image", []) + record.files.get("image[]", [])
        if not images:
            raise _ApiError(400, "image is required", "invalid_request_error", None, "image")
        model = record.form.get("model") or "gpt-image-1.5"
        if model == "dall-e-2" and len(images) > 1:
            raise _ApiError(400, "dall-e-2 edits take one image", "invalid_request_error", None, "image")
        if model == "dall-e-2" and images[0][:8] != b"\x89PNG\r\n\x1a\n":
            raise _ApiError(400, "Invalid input image - format must be in ['RGBA', 'LA', 'L'], got RGB.", "invalid_request_error", None, "image")
        seed_text = record.form.get("prompt", "") + "|" + str(len(images)) + "|" + str(sum(len(i) for i in images) % 9973)
        return self._images_response("images.edit", dict(record.form), seed_text)

    def _op_images_variations(self, record: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        images = record.files.get("image", [])
        if not images:
            raise _ApiError(400, "image is required", "invalid_request_error", None, "image")
        return self._images_response("images.variations", dict(record.form), "variation|" + str(len(images[0])))

    def _op_audio_speech(self, record: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        params = record.json if isinstance(record.json, dict) else {}
        text = params.get("input")
        if not isinstance(text, str) or not text:
            raise _ApiError(400, "input is required", "invalid_request_error", None, "input")
        if len(text) > 4096:
            raise _ApiError(400, "input is longer than 4096 characters", "invalid_request_error", None, "input")
        fmt = params.get("response_format") or "mp3"
        wav = make_speech_wav(text, speed=float(params.get("speed") or 1.0))
        if fmt == "wav":
            return 200, {"Content-Type": "audio/wav"}, wav
        with wave.open(io.BytesIO(wav)) as reader:
            pcm = reader.readframes(reader.getnframes())
        if fmt == "pcm":
            return 200, {"Content-Type": "audio/pcm"}, pcm
        if fmt not in ("mp3", "opus", "aac", "flac"):
            raise _ApiError(400, f"Invalid response_format {fmt!r}", "invalid_request_error", None, "response_format")
        try:
            from .._audio import encode
        except ImportError:  # pragma: no cover - PyAV comes with the openai extra
            raise _ApiError(400, f"the emulator needs PyAV to produce {fmt}", "invalid_request_error", None, "response_format") from None
        encoded = encode(pcm, 24000, fmt)
        return 200, {"Content-Type": encoded.media_type}, encoded.data

    def _op_audio_transcriptions(self, record: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        return self._transcript(record, translate=False)

    def _op_audio_translations(self, record: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        return self._transcript(record, translate=True)

    def _transcript(self, record: RecordedRequest, translate: bool) -> tuple[int, dict[str, str], bytes]:
        files = record.files.get("file", [])
        if not files or not files[0]:
            raise _ApiError(400, "file is required", "invalid_request_error", None, "file")
        audio = files[0]
        duration = wav_duration(audio)
        text = spoken_text(audio)
        if duration is None:
            raise _ApiError(400, "Invalid file format. Supported formats: wav (emulator)", "invalid_request_error", None, "file")
        if text is None:
            text = f"emulated transcript of {duration:.1f} seconds of audio"
        fmt = record.form.get("response_format") or "json"
        language = "english" if translate else (record.form.get("language") or "en")
        if fmt == "text":
            return 200, {"Content-Type": "text/plain"}, text.encode()
        if fmt in ("srt", "vtt"):
            stamp = "00:00:00,000" if fmt == "srt" else "00:00:00.000"
            end = f"00:00:{min(duration, 59.999):06.3f}".replace(".", "," if fmt == "srt" else ".")
            head = "1\n" if fmt == "srt" else "WEBVTT\n\n"
            return 200, {"Content-Type": "text/plain"}, f"{head}{stamp} --> {end}\n{text}\n".encode()
        if fmt == "verbose_json":
            body: dict[str, Any] = {
                "task": "translate" if translate else "transcribe",
                "language": language,
                "duration": duration,
                "text": text,
                "segments": [{
                    "id": 0, "seek": 0, "start": 0.0, "end": duration, "text": text, "tokens": [1],
                    "temperature": 0.0, "avg_logprob": -0.2, "compression_ratio": 1.0, "no_speech_prob": 0.01,
                }],
            }
            if "word" in record.multi.get("timestamp_granularities[]", []):
                words = text.split()
                step = duration / max(1, len(words))
                body["words"] = [
                    {"word": w, "start": round(i * step, 3), "end": round((i + 1) * step, 3)} for i, w in enumerate(words)
                ]
        else:
            body = {"text": text}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


_FILE_TYPES = {"png": "image/png", "webp": "image/webp", "jpg": "image/jpeg", "mp4": "video/mp4"}


def _safety_refusal(stage: str, categories: list[str]) -> _ApiError:
    """gpt-image models' refusal: ``moderation_blocked`` with the stage (input or output) and coarse categories."""
    return _ApiError(
        400, "Your request was rejected by the safety system.", "image_generation_user_error", "moderation_blocked",
        details={"moderation_stage": stage, "categories": categories},
    )  # fmt: skip


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

        def _send(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
            if DELIVERY_HEADER in headers:
                send(self, status, {**headers, "x-request-id": f"req_{uuid.uuid4().hex[:24]}"}, body)
                return
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("x-request-id", f"req_{uuid.uuid4().hex[:24]}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            if self.path.startswith("/v1/"):
                self._replicate("GET", self.path, b"")
                return
            if self.path.startswith("/files/"):
                data = emulator._file(self.path[len("/files/") :])
                if data is not None:
                    kind = _FILE_TYPES.get(self.path.rsplit(".", 1)[-1], "application/octet-stream")
                    answer: tuple[int, dict[str, str], bytes] = (200, {"Content-Type": kind}, data)
                    fault = emulator._take_fault(FILES)
                    if fault is not None and fault.kind in DELIVERY_FAULTS:
                        answer = delivered(fault.kind, answer, fault.delay, fault.size)
                    elif fault is not None and fault.kind == "drop":
                        answer = delivered("lost_answer", answer, 0.0, None)
                    elif fault is not None and fault.kind == "html":
                        answer = (200, {"Content-Type": "text/html"}, b"<html><body>Sign in to continue</body></html>")
                    elif fault is not None and fault.kind in ("server_error", "unavailable", "rate_limit"):
                        answer = _fault_response(fault)
                    self._send(*answer)
                    return
            self._send(404, {"Content-Type": "application/json"}, _error_body(_ApiError(404, "not found", "invalid_request_error")))

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            if ReplicateEmulator.route("POST", path) is not None:
                self._replicate("POST", path, raw)
                return
            operation = ROUTES.get(path)
            record = RecordedRequest("POST", path, operation, {k.lower(): v for k, v in self.headers.items()})
            content_type = self.headers.get("Content-Type", "")
            try:
                if content_type.startswith("multipart/form-data"):
                    record.form, record.multi, record.files = _parse_multipart(content_type, raw)
                elif raw:
                    record.json = json.loads(raw)
            except ValueError:
                record.status = 400
                emulator._record(record)
                self._send(400, {"Content-Type": "application/json"}, _error_body(_ApiError(400, "We could not parse the JSON body of your request.", "invalid_request_error")))
                return
            if operation is None:
                record.status = 404
                emulator._record(record)
                self._send(404, {"Content-Type": "application/json"}, _error_body(_ApiError(404, f"Invalid URL (POST {path})", "invalid_request_error")))
                return
            status, headers, body = self._answer(operation, record)
            record.status = status
            emulator._record(record)
            if status == -1:
                self.close_connection = True
                self.wfile.flush()
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            self._send(status, headers, body)

        def _replicate(self, method: str, path: str, raw: bytes) -> None:
            status, headers, body = serve_replicate(emulator, method, path, {k.lower(): v for k, v in self.headers.items()}, raw)
            if status == -1:  # a "drop" fault: the connection closes without an answer
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._send(status, headers, body)

        def _answer(self, operation: str, record: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
            auth = record.headers.get("authorization", "")
            if not auth.startswith("Bearer ") or (emulator.api_key is not None and auth[7:] != emulator.api_key):
                return 401, {"Content-Type": "application/json"}, _error_body(
                    _ApiError(401, "Incorrect API key provided. You can find your API key in your account settings.", "invalid_request_error", "invalid_api_key")
                )
            fault = emulator._take_fault(operation)
            record.fault = fault.kind if fault is not None else None
            if fault is not None:
                if fault.kind == "drop":
                    return -1, {}, b""
                if fault.kind == "slow":
                    time.sleep(fault.delay)
                elif fault.kind not in ANSWER_FAULTS and fault.kind not in DELIVERY_FAULTS:
                    return _fault_response(fault)
            try:
                answer = emulator.handle(operation, record)
            except _ApiError as error:
                return error.status, {"Content-Type": "application/json"}, _error_body(error)
            if fault is not None and fault.kind in DELIVERY_FAULTS:
                return delivered(fault.kind, answer, fault.delay, fault.size)
            return spoil(fault.kind, *answer) if fault is not None and fault.kind in ANSWER_FAULTS else answer

    return Handler
