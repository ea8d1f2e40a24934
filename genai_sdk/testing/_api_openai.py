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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._media_maker import make_image
from ._openai_audio import speech, transcript
from ._wire import (
    Answer,
    Api,
    Fault,
    Host,
    RecordedRequest,
    Route,
    _ApiError,
    _fault_response,
    blocked,
    key_accepted,
    sse,
)

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


# Parameters only the GPT image models take: a generation that sets one of them and names no model is served by a GPT
# image model ("Defaults to dall-e-2 unless a parameter specific to the GPT image models is used"). The spec does not
# name which; the emulator takes gpt-image-1.5, the edits' default.
_GPT_ONLY = ("background", "moderation", "output_format", "output_compression", "partial_images", "stream", "input_fidelity")
_GPT_DEFAULT = "gpt-image-1.5"


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _default_model(params: Mapping[str, Any], operation: str) -> str:
    if operation == "images.edit":
        return _GPT_DEFAULT
    if operation == "images.variations":
        return "dall-e-2"
    gpt_quality = params.get("quality") in ("low", "medium", "high")
    used = [k for k in _GPT_ONLY if params.get(k) is not None and not (k == "stream" and not _truthy(params[k]))]
    return _GPT_DEFAULT if used or gpt_quality else "dall-e-2"


def _check_gpt_options(params: Mapping[str, Any], model: str, rules: _ModelRules) -> None:
    """The GPT-only parameters: refused for dall-e models, checked against their enums and ranges."""
    gpt = not rules.url_default
    choices = {"background": ("transparent", "opaque", "auto"), "moderation": ("low", "auto"),
               "output_format": ("png", "jpeg", "webp"), "input_fidelity": ("high", "low")}  # fmt: skip
    for name in _GPT_ONLY:
        value = params.get(name)
        if value is None or name == "stream" and not _truthy(value):
            continue
        if not gpt:
            raise _ApiError(400, f"{name} is only supported for the GPT image models, not {model}", "invalid_request_error", None, name)
        if name in choices and value not in choices[name]:
            raise _ApiError(400, f"Invalid {name} {value!r}: one of {', '.join(choices[name])}", "invalid_request_error", None, name)
    if params.get("background") == "transparent" and params.get("output_format") == "jpeg":
        raise _ApiError(400, "Transparent background requires output_format png or webp.", "invalid_request_error", None, "background")
    if params.get("input_fidelity") is not None and model.startswith("gpt-image-1-mini"):
        raise _ApiError(400, f"input_fidelity is not supported for {model}", "invalid_request_error", None, "input_fidelity")
    for name, low, high in (("output_compression", 0, 100), ("partial_images", 0, 3)):
        value = params.get(name)
        if value is not None and (not str(value).lstrip("-").isdigit() or not low <= int(value) <= high):
            raise _ApiError(400, f"{name} must be between {low} and {high}", "invalid_request_error", None, name)


def _image_facts(data: bytes, formats: tuple[str, ...], what: str) -> tuple[int, int]:
    """Width and height of an uploaded image, or the 400 OpenAI answers for bytes that are not an image it takes."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as picture:
            picture.verify()
            kind, size = picture.format, picture.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        kind, size = None, (0, 0)
    if kind not in formats:
        names = ", ".join(f.lower().replace("jpeg", "jpg") for f in formats)
        raise _ApiError(400, f"Invalid image file or mode for {what}: it must be one of {names}.", "invalid_request_error", "invalid_image_format", "mask" if what == "mask" else "image")
    return size


def _image_events(prefix: str, pictures: list[bytes], partials: int, facts: dict[str, str], usage: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of a streamed image call: ``partials`` partial images (blurred, sharper each time) then the final
    image, for each image asked for."""
    from PIL import Image, ImageFilter

    events: list[dict[str, Any]] = []
    created = int(time.time())
    for picture in pictures:
        for index in range(partials):
            with Image.open(io.BytesIO(picture)) as final:
                blurred = final.filter(ImageFilter.GaussianBlur(radius=8 * (partials - index)))
                buffer = io.BytesIO()
                blurred.save(buffer, format=final.format or "PNG")
            events.append({"type": f"{prefix}.partial_image", "b64_json": base64.b64encode(buffer.getvalue()).decode("ascii"),
                           "created_at": created, **facts, "partial_image_index": index})  # fmt: skip
        events.append({"type": f"{prefix}.completed", "b64_json": base64.b64encode(picture).decode("ascii"),
                       "created_at": created, **facts, "usage": usage})  # fmt: skip
    return events


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
        if auth.startswith("Bearer ") and key_accepted(self._host, auth[7:].strip()):
            return None
        message = "Incorrect API key provided. You can find your API key in your account settings."
        return _ApiError(401, message, "invalid_request_error", "invalid_api_key").answer()

    def fault_answer(self, fault: Fault) -> Answer:
        return _fault_response(fault)

    def answer(self, operation: str, params: dict[str, str], record: RecordedRequest) -> Answer:
        return self._operations[operation](record)

    # -- images -----------------------------------------------------------------------------------------------

    def _image_params(self, params: Mapping[str, Any], operation: str) -> tuple[str, _ModelRules, int, str]:
        model = str(params.get("model") or _default_model(params, operation))
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
            width, height = int(match.group(1)), int(match.group(2))
            if not 1 / 3 <= width / height <= 3 or width * height > 3840 * 2160:
                raise _ApiError(400, f"Invalid size {size!r}: the aspect ratio must be between 1:3 and 3:1, at most 3840x2160", "invalid_request_error", None, "size")
        quality = params.get("quality")
        if quality is not None and quality not in rules.qualities:
            raise _ApiError(400, f"Invalid quality {quality!r} for {model}", "invalid_request_error", None, "quality")
        style = params.get("style")
        if style is not None and style not in rules.styles:
            raise _ApiError(400, f"style is not supported for {model}", "invalid_request_error", None, "style")
        _check_gpt_options(params, model, rules)
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
        gpt = not rules.url_default
        fmt = str(params.get("output_format") or "png") if gpt else "png"
        background = str(params.get("background") or "auto") if gpt else "opaque"
        transparent = background == "transparent"
        given = params.get("output_compression")
        compression = 100 if given is None else int(str(given))
        url = params.get("response_format") == "url" or (rules.url_default and params.get("response_format") is None)
        pictures = [make_image(seed_text, width, height, index, None, fmt, transparent, min(95, compression)) for index in range(n)]
        quality = params.get("quality") or "auto"
        usage = {
            "input_tokens": 10 + len(str(params.get("prompt", ""))) // 4,
            "output_tokens": 1056 * n,
            "total_tokens": 10 + len(str(params.get("prompt", ""))) // 4 + 1056 * n,
            "input_tokens_details": {"text_tokens": 10, "image_tokens": 0},
        }
        facts = {
            "background": "transparent" if transparent else "opaque", "output_format": fmt, "size": pixels,
            "quality": "medium" if quality == "auto" else quality,
        }  # fmt: skip
        if _truthy(params.get("stream")):
            prefix = "image_edit" if operation == "images.edit" else "image_generation"
            partials = int(params.get("partial_images") or 0)
            return sse(_image_events(prefix, pictures, partials, facts, usage))
        data = []
        for picture in pictures:
            if url:
                data.append({"url": self._host._store_file(picture, "." + fmt)})
            else:
                data.append({"b64_json": base64.b64encode(picture).decode("ascii")})
            if model == "dall-e-3":
                data[-1]["revised_prompt"] = str(params.get("prompt"))
        body: dict[str, Any] = {"created": int(time.time()), "data": data}
        if gpt:
            body.update(facts, usage=usage)
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
        if len(images) > 16:
            raise _ApiError(400, "at most 16 images can be edited together", "invalid_request_error", None, "image")
        dall_e = model == "dall-e-2"
        if dall_e and images[0][:8] != b"\x89PNG\r\n\x1a\n":
            raise _ApiError(400, "Invalid input image - format must be in ['RGBA', 'LA', 'L'], got RGB.", "invalid_request_error", None, "image")
        sizes = [_image_facts(data, ("PNG",) if dall_e else ("PNG", "WEBP", "JPEG"), f"image {i + 1}") for i, data in enumerate(images)]
        if dall_e and sizes[0][0] != sizes[0][1]:
            raise _ApiError(400, "Uploaded image must be square for dall-e-2 edits.", "invalid_request_error", None, "image")
        for mask in record.files.get("mask", []):
            if _image_facts(mask, ("PNG",), "mask") != sizes[0]:
                raise _ApiError(400, "Invalid mask: the mask must have the same dimensions as the image.", "invalid_request_error", None, "mask")
        seed_text = record.form.get("prompt", "") + "|" + str(len(images)) + "|" + str(sum(len(i) for i in images) % 9973)
        return self._images_response("images.edit", dict(record.form), seed_text)

    def _images_variations(self, record: RecordedRequest) -> Answer:
        images = record.files.get("image", [])
        if not images:
            raise _ApiError(400, "image is required", "invalid_request_error", None, "image")
        width, height = _image_facts(images[0], ("PNG",), "image")
        if width != height:
            raise _ApiError(400, "Uploaded image must be a square PNG less than 4 MB.", "invalid_request_error", None, "image")
        return self._images_response("images.variations", dict(record.form), "variation|" + str(len(images[0])))

    # -- audio: speech, transcriptions and translations (in _openai_audio.py) ----------------------------------

    def _audio_speech(self, record: RecordedRequest) -> Answer:
        return speech(record)

    def _transcript(self, record: RecordedRequest, translate: bool) -> Answer:
        return transcript(record, translate)

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
