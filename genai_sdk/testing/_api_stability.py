"""Stability AI's v2beta Stable Image API in the emulator: generate (Core, Ultra, SD 3.5), inpaint, the fast and
conservative upscalers and sketch control, each a multipart POST with the key as ``Authorization: Bearer``. Reach it as
``emulator.api("stability")``.

Answers are what Stability sends: with ``Accept: application/json``, ``{"image": base64, "finish_reason", "seed"}``;
with ``Accept: image/*``, the picture's bytes with ``finish-reason`` and ``seed`` headers. Pictures are real PNG, JPEG
or WebP files of the aspect ratio asked for, or of the input's size (4 times it for the fast upscaler). Parameters are
checked as the reference describes (400); a prompt with a blocked word is refused with 403 ``content_moderation``, and
one with an output-blocked word answers 200 with ``finish_reason`` ``CONTENT_FILTERED``. Errors have Stability's
shape, ``{"id", "name", "errors": [...]}``.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

from ._media_maker import make_image
from ._wire import Answer, Api, Fault, Host, RecordedRequest, Refusal, Route, blocked, key_accepted

ROUTES: list[Route] = [
    ("POST", r"^/v2beta/stable-image/generate/(?P<service>core|ultra|sd3)$", "stability.generate"),
    ("POST", r"^/v2beta/stable-image/edit/inpaint$", "stability.inpaint"),
    ("POST", r"^/v2beta/stable-image/upscale/(?P<service>fast|conservative)$", "stability.upscale"),
    ("POST", r"^/v2beta/stable-image/control/sketch$", "stability.sketch"),
]
# The pixels of each aspect ratio (the SD 3.5 models' 1-megapixel shapes; the emulator makes them for every model).
PIXELS = {
    "1:1": (1024, 1024), "16:9": (1344, 768), "9:16": (768, 1344), "21:9": (1536, 640), "9:21": (640, 1536),
    "3:2": (1216, 832), "2:3": (832, 1216), "5:4": (1088, 896), "4:5": (896, 1088),
}  # fmt: skip
SD3_MODELS = ("sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash")
STYLES = (
    "3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance", "fantasy-art", "isometric",
    "line-art", "low-poly", "modeling-compound", "neon-punk", "origami", "photographic", "pixel-art", "tile-texture",
)  # fmt: skip
MAX_SEED = 4_294_967_294
MODERATION = ("Your request was flagged by our content moderation system, as a result your request was denied and "
              "you were not charged.")  # fmt: skip


class StabilityError(Refusal):
    def __init__(self, status: int, name: str, *errors: str) -> None:
        super().__init__("; ".join(errors))
        self.status, self.name, self.errors = status, name, list(errors)

    def answer(self) -> Answer:
        return _error(self.status, self.name, *self.errors)


def _error(status: int, name: str, *errors: str) -> Answer:
    body = {"id": uuid.uuid4().hex, "name": name, "errors": list(errors)}
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def _bad(*errors: str) -> StabilityError:
    return StabilityError(400, "bad_request", *errors)


class StabilityApi:
    """The Stable Image endpoints under ``/v2beta``."""

    name = "stability"
    routes = ROUTES

    def __init__(self, host: Host) -> None:
        self._host = host
        self._lock = threading.Lock()
        self.scale = 1.0  # a fraction makes smaller pictures (of the same shape), cheaper to make and to check
        self.credits: float | None = None  # None: unlimited; else spent per picture, and 402 once too few are left
        self.spent = 0.0  # credits billed, as Stability counts them (only successful generations)

    # -- what the server asks ---------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return {"STABILITY_BASE_URL": self._host.url, "STABILITY_API_KEY": self._host.api_key or "sk-any-key"}

    def unreadable(self) -> Answer:
        return _error(400, "bad_request", "the request body could not be read as multipart/form-data")

    def authorize(self, record: RecordedRequest) -> Answer | None:
        header = record.headers.get("authorization", "")
        if not header:
            return _error(401, "unauthorized", "authorization: missing; use 'Authorization: Bearer <your key>'")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key_accepted(self._host, key.strip()):
            return _error(401, "unauthorized", "Incorrect API key provided")
        return None

    def fault_answer(self, fault: Fault) -> Answer:
        if fault.kind in ("rate_limit", "quota"):
            headers = {"Content-Type": "application/json"}
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            if fault.kind == "quota":
                return _error(402, "payment_required", "You lack sufficient credits to make this request. Please "
                                                       "purchase more credits and try again.")  # fmt: skip
            body = {"id": uuid.uuid4().hex, "name": "rate_limit_exceeded",
                    "errors": ["You have exceeded the rate limit of 150 requests within a 10 second period."]}  # fmt: skip
            return 429, headers, json.dumps(body).encode()
        status, name, message = {
            "server_error": (500, "internal_error", "An unexpected server error has occurred, please try again later."),
            "unavailable": (503, "service_unavailable", "The service is temporarily unavailable."),
            "conflict": (409, "conflict", "Conflict (injected)."),
            "bad_request": (400, "bad_request", "Invalid request (injected)."),
            "unauthorized": (401, "unauthorized", "Incorrect API key provided"),
        }[fault.kind]  # fmt: skip
        return _error(fault.status or status, name, message)

    def answer(self, operation: str, params: dict[str, str], record: RecordedRequest) -> Answer:
        if not record.headers.get("content-type", "").startswith("multipart/form-data"):
            raise _bad("content-type: must be multipart/form-data")
        accept = record.headers.get("accept", "image/*")
        if accept not in ("image/*", "application/json", "*/*"):
            raise _bad(f"accept: must be image/* or application/json, not {accept}")
        form = record.form
        fmt = form.get("output_format", "png")
        if fmt not in ("png", "jpeg", "webp"):
            raise _bad("output_format: must be one of png, jpeg, webp")
        seed = _seed(form)
        if operation == "stability.generate":
            prompt = self._prompt(form, required=True)
            size, credits = self._generate(params["service"], form, fmt)
        elif operation == "stability.inpaint":
            prompt = self._prompt(form, required=True)
            image = _image(record, "image", 64, None, 4096, 9_437_184)
            mask = _image(record, "mask", 64, None, 4096, 9_437_184, required=False)
            if mask is None and "A" not in image.getbands():
                raise _bad("mask: required when the image has no alpha channel")
            if mask is not None and mask.size != image.size:
                raise _bad(f"mask: must be the size of the image ({image.width}x{image.height})")
            _int(form, "grow_mask", 0, 100)
            _style(form)
            size, credits = image.size, 5.0
        elif operation == "stability.upscale":
            if params["service"] == "fast":
                prompt = ""
                image = _image(record, "image", 32, 1536, 1024, 1_048_576)
                size, credits = (image.width * 4, image.height * 4), 2.0
            else:
                prompt = self._prompt(form, required=True)
                image = _image(record, "image", 64, None, 4096, 9_437_184)
                _float(form, "creativity", 0.2, 0.5)
                ratio = (4_194_304 / (image.width * image.height)) ** 0.5
                size, credits = (round(image.width * ratio), round(image.height * ratio)), 40.0
        else:
            prompt = self._prompt(form, required=True)
            image = _image(record, "image", 64, None, 0, 9_437_184)
            if not 1 / 2.5 <= image.width / image.height <= 2.5:
                raise _bad("image: the aspect ratio must be between 1:2.5 and 2.5:1")
            _float(form, "control_strength", 0.0, 1.0)
            _style(form)
            size, credits = image.size, 5.0
        if blocked(prompt, self._host.output_blocked_words):
            return self._reply(accept, b"", "image/png", "CONTENT_FILTERED", seed)  # not billed
        with self._lock:
            if self.credits is not None and self.credits - self.spent < credits:
                raise StabilityError(402, "payment_required", "You lack sufficient credits to make this request. "
                                                              "Please purchase more credits and try again.")  # fmt: skip
            self.spent += credits
        width, height = max(16, round(size[0] * self.scale)), max(16, round(size[1] * self.scale))
        picture = make_image(prompt or "upscaled", width, height, 0, seed, fmt)
        return self._reply(accept, picture, f"image/{fmt}", "SUCCESS", seed)

    def _prompt(self, form: dict[str, str], *, required: bool) -> str:
        prompt = form.get("prompt", "")
        if required and not prompt.strip():
            raise _bad("prompt: cannot be empty")
        if len(prompt) > 10_000 or len(form.get("negative_prompt", "")) > 10_000:
            raise _bad("prompt: must be at most 10000 characters")
        if blocked(prompt, self._host.blocked_words):
            raise StabilityError(403, "content_moderation", MODERATION)
        return prompt

    def _generate(self, service: str, form: dict[str, str], fmt: str) -> tuple[tuple[int, int], float]:
        aspect = form.get("aspect_ratio", "1:1")
        if aspect not in PIXELS:
            raise _bad(f"aspect_ratio: must be one of {', '.join(PIXELS)}")
        _style(form)
        credits = {"core": 3.0, "ultra": 8.0}.get(service)
        if service == "sd3":
            model = form.get("model", "sd3.5-large")
            if model not in SD3_MODELS:
                raise _bad(f"model: must be one of {', '.join(SD3_MODELS)}")
            if fmt == "webp":
                raise _bad("output_format: must be one of png, jpeg")
            _float(form, "cfg_scale", 1.0, 10.0)
            credits = {"sd3.5-large": 6.5, "sd3.5-large-turbo": 4.0, "sd3.5-medium": 3.5, "sd3.5-flash": 2.5}[model]
        elif "model" in form or "cfg_scale" in form:
            raise _bad(f"{'model' if 'model' in form else 'cfg_scale'}: not a parameter of {service}")
        assert credits is not None
        return PIXELS[aspect], credits

    def _reply(self, accept: str, picture: bytes, media_type: str, reason: str, seed: int) -> Answer:
        if accept == "application/json":
            body = {"image": base64.b64encode(picture).decode(), "finish_reason": reason, "seed": seed}
            return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()
        return 200, {"Content-Type": media_type, "finish-reason": reason, "seed": str(seed)}, picture


def _seed(form: dict[str, str]) -> int:
    seed = _int(form, "seed", 0, MAX_SEED)
    return seed if seed else 1 + int(uuid.uuid4().int % MAX_SEED)


def _int(form: dict[str, str], name: str, low: int, high: int) -> int | None:
    if name not in form:
        return None
    try:
        value = int(form[name])
    except ValueError:
        raise _bad(f"{name}: must be an integer") from None
    if not low <= value <= high:
        raise _bad(f"{name}: must be between {low} and {high}")
    return value


def _float(form: dict[str, str], name: str, low: float, high: float) -> None:
    if name not in form:
        return
    try:
        value = float(form[name])
    except ValueError:
        raise _bad(f"{name}: must be a number") from None
    if not low <= value <= high:
        raise _bad(f"{name}: must be between {low:g} and {high:g}")


def _style(form: dict[str, str]) -> None:
    if "style_preset" in form and form["style_preset"] not in STYLES:
        raise _bad(f"style_preset: must be one of {', '.join(STYLES)}")


def _image(record: RecordedRequest, name: str, min_edge: int, max_edge: int | None, min_pixels: int, max_pixels: int,
           *, required: bool = True) -> Any:  # fmt: skip
    """The uploaded image ``name``, decoded, within the limits the reference gives; None when optional and absent."""
    from PIL import Image, UnidentifiedImageError

    found = record.files.get(name)
    if not found:
        if required:
            raise _bad(f"{name}: required")
        return None
    try:
        picture = Image.open(io.BytesIO(found[0]))
        picture.load()
    except (UnidentifiedImageError, OSError):
        raise _bad(f"{name}: is not a png, jpeg or webp image") from None
    if picture.format not in ("PNG", "JPEG", "WEBP"):
        raise _bad(f"{name}: must be png, jpeg or webp")
    width, height = picture.size
    if min(width, height) < min_edge or (max_edge is not None and max(width, height) > max_edge):
        raise _bad(f"{name}: every side must be at least {min_edge} pixels"
                   + (f" and at most {max_edge}" if max_edge is not None else ""))  # fmt: skip
    if not min_pixels <= width * height <= max_pixels:
        raise _bad(f"{name}: the total pixel count must be between {min_pixels} and {max_pixels}")
    return picture


API: Callable[[Host], Api] = StabilityApi
