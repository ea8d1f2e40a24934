"""The OpenAI API of the emulator: images (generations, edits, variations), audio (speech, transcriptions,
translations) and moderations, checked and answered the way OpenAI does; reach it as ``emulator.openai``."""

from __future__ import annotations

import base64
import io
import itertools
import json
import re
import threading
import time
import wave
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._media_maker import make_image, make_speech_wav, spoken_text, wav_duration
from ._wire import Answer, Api, Fault, Host, RecordedRequest, Route, _ApiError, _fault_response, blocked

ROUTES = {
    "/v1/images/generations": "images.generate",
    "/v1/images/edits": "images.edit",
    "/v1/images/variations": "images.variations",
    "/v1/audio/speech": "audio.speech",
    "/v1/audio/transcriptions": "audio.transcriptions",
    "/v1/audio/translations": "audio.translations",
    "/v1/moderations": "moderations",
}
MODERATION_CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent", "self-harm",
    "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence", "violence/graphic",
)  # fmt: skip

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


def _safety_refusal(stage: str, categories: list[str]) -> _ApiError:
    """gpt-image models' refusal: ``moderation_blocked`` with the stage (input or output) and coarse categories."""
    return _ApiError(
        400, "Your request was rejected by the safety system.", "image_generation_user_error", "moderation_blocked",
        details={"moderation_stage": stage, "categories": categories},
    )  # fmt: skip


class OpenAIApi:
    """OpenAI's endpoints under ``/v1``, with a bearer key; errors in OpenAI's ``{"error": {...}}`` body."""

    name = "openai"
    routes: list[Route] = [("POST", f"^{re.escape(path)}$", operation) for path, operation in ROUTES.items()]

    def __init__(self, host: Host) -> None:
        self._host = host
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._moderation_rules: list[tuple[str, dict[str, float]]] = []
        self._image_moderation: dict[str, float] = {}
        self._operations: dict[str, Callable[[RecordedRequest], Answer]] = {
            "images.generate": self._images_generate, "images.edit": self._images_edit,
            "images.variations": self._images_variations, "audio.speech": self._audio_speech,
            "audio.transcriptions": lambda record: self._transcript(record, translate=False),
            "audio.translations": lambda record: self._transcript(record, translate=True),
            "moderations": self._moderations,
        }  # fmt: skip

    def env(self) -> dict[str, str]:
        return {"OPENAI_BASE_URL": f"{self._host.url}/v1", "OPENAI_API_KEY": self._host.api_key or "sk-any"}

    def moderate(self, word: str, scores: Mapping[str, float]) -> None:
        """Make /v1/moderations score texts containing ``word`` so (OpenAI category -> 0..1)."""
        unknown = set(scores) - set(MODERATION_CATEGORIES)
        if unknown:
            raise ValueError(f"unknown moderation categories {sorted(unknown)}; known: {', '.join(MODERATION_CATEGORIES)}")
        with self._lock:
            self._moderation_rules.append((word.lower(), dict(scores)))

    def moderate_images(self, scores: Mapping[str, float]) -> None:
        """Make /v1/moderations score every image input so."""
        with self._lock:
            self._image_moderation = dict(scores)

    # -- what the server asks ---------------------------------------------------------------------------------

    def unreadable(self) -> Answer:
        return _ApiError(400, "We could not parse the JSON body of your request.", "invalid_request_error").answer()

    def authorize(self, record: RecordedRequest) -> Answer | None:
        auth = record.headers.get("authorization", "")
        if auth.startswith("Bearer ") and (self._host.api_key is None or auth[7:] == self._host.api_key):
            return None
        message = "Incorrect API key provided. You can find your API key in your account settings."
        return _ApiError(401, message, "invalid_request_error", "invalid_api_key").answer()

    def fault_answer(self, fault: Fault) -> Answer:
        return _fault_response(fault)

    def answer(self, operation: str, params: dict[str, str], record: RecordedRequest) -> Answer:
        return self._operations[operation](record)

    # -- images -----------------------------------------------------------------------------------------------

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
            if blocked(prompt, self._host.blocked_words):
                if model.startswith("dall-e"):
                    raise _ApiError(
                        400,
                        "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.",
                        "invalid_request_error",
                        "content_policy_violation",
                    )
                raise _safety_refusal("input", ["violence"])
            if blocked(prompt, self._host.output_blocked_words) and not model.startswith("dall-e"):
                raise _safety_refusal("output", ["sexual"])  # made, then withheld
        if not rules.url_default and params.get("response_format") not in (None, "b64_json"):
            raise _ApiError(400, f"response_format is not supported for {model}", "invalid_request_error", None, "response_format")
        return model, rules, n, size

    def _images_response(self, operation: str, params: Mapping[str, Any], seed_text: str) -> Answer:
        model, rules, n, size = self._image_params(params, operation)
        pixels = "1024x1024" if size == "auto" else size
        width, height = (int(v) for v in pixels.split("x"))
        fmt = str(params.get("output_format") or "png") if not model.startswith("dall-e") else "png"
        url = params.get("response_format") == "url" or (rules.url_default and params.get("response_format") is None)
        data = []
        for index in range(n):
            picture = make_image(seed_text, width, height, index, None, fmt)
            if url:
                data.append({"url": self._host._store_file(picture, "." + fmt)})
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

    def _images_generate(self, record: RecordedRequest) -> Answer:
        params = record.json if isinstance(record.json, dict) else {}
        return self._images_response("images.generate", params, str(params.get("prompt", "")))

    def _images_edit(self, record: RecordedRequest) -> Answer:
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

    def _images_variations(self, record: RecordedRequest) -> Answer:
        images = record.files.get("image", [])
        if not images:
            raise _ApiError(400, "image is required", "invalid_request_error", None, "image")
        return self._images_response("images.variations", dict(record.form), "variation|" + str(len(images[0])))

    # -- audio --------------------------------------------------------------------------------------------------

    def _audio_speech(self, record: RecordedRequest) -> Answer:
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

    def _transcript(self, record: RecordedRequest, translate: bool) -> Answer:
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

    # -- moderations: scores per category, settable per word and for images ---------------------------------------

    def _moderation_scores(self, part: Any) -> dict[str, float]:
        scores = dict.fromkeys(MODERATION_CATEGORIES, 0.001)
        if isinstance(part, dict) and part.get("type") == "image_url":
            scores.update(self._image_moderation)
            return scores
        text = part if isinstance(part, str) else str(part.get("text", "")) if isinstance(part, dict) else ""
        if blocked(text, self._host.blocked_words):
            scores["violence"] = 0.97
        for word, extra in self._moderation_rules:
            if word in text.lower():
                scores.update(extra)
        return scores

    def _moderations(self, record: RecordedRequest) -> Answer:
        params = record.json if isinstance(record.json, dict) else {}
        inputs = params.get("input", "")
        parts = [inputs] if isinstance(inputs, str) else list(inputs) if isinstance(inputs, list) else []
        if not parts:
            raise _ApiError(400, "input is required", "invalid_request_error", None, "input")
        model = str(params.get("model") or "omni-moderation-latest")
        if any(isinstance(p, dict) and p.get("type") == "image_url" for p in parts) and not model.startswith("omni"):
            raise _ApiError(400, f"{model} does not accept images", "invalid_request_error", None, "input")
        # Several strings are several inputs, one result each; several parts (text and images) are one input.
        texts = [[p] for p in parts] if all(isinstance(p, str) for p in parts) else [parts]
        results = []
        for group in texts:
            scores: dict[str, float] = {}
            for part in group:
                for category, value in self._moderation_scores(part).items():
                    scores[category] = max(scores.get(category, 0.0), value)
            results.append({
                "flagged": any(v >= 0.5 for v in scores.values()),
                "categories": {c: v >= 0.5 for c, v in scores.items()},
                "category_scores": scores,
                "category_applied_input_types": {c: ["text"] for c in scores},
            })
        body = {"id": f"modr-{next(self._ids)}", "model": model, "results": results}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


API: Callable[[Host], Api] = OpenAIApi
