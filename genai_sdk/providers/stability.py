"""Stability AI's hosted API (api.stability.ai, a Bearer key): the v2beta Stable Image endpoints.

Every operation is one multipart POST answered at once (``Accept: application/json``: the picture in base64, its
``finish_reason`` and ``seed``), written once as a flow for sync and async callers: generate with Stable Image Core,
Ultra and Stable Diffusion 3.5, inpaint (``images.edit``), the fast and conservative upscalers (``images.upscale``)
and sketch control (``images.sketch``: ``client.images.from_sketch``), all through ``images``; ``upscale`` and
``sketch`` may also be called on the provider itself. Stability bills in credits per successful generation; a refused or filtered one is not billed.

Wire format: Stability's REST API reference (platform.stability.ai/docs/api-reference, the v2beta OpenAPI); see
docs/providers/stability.md.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, cast

from .._catalog import ModelInfo
from .._config import Settings
from .._errors import (
    AuthenticationError,
    ConfigError,
    ContentPolicyError,
    GenAIError,
    GenerationFailedError,
    InvalidRequestError,
    ProviderError,
    RateLimitError,
    redact,
)
from .._flow import Abandoned, Flow, Http, JsonApi, adrive, drive, never_sent
from .._http import AddressGuard
from .._media import Image
from .._requests import ImageRequest, Request
from .._retry import parse_retry_after
from ._options import Choice, Float, Int, Option, OptionSpec
from .base import CallContext, ImageBatch, backend_image, mark_spent, status_error

DEFAULT_BASE_URL = "https://api.stability.ai"
MAX_ANSWER_BYTES = 96 * 1024 * 1024  # one 16-megapixel PNG in base64, with room to spare
MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # Stability's limit on a request

# Sizes the generate models make, by aspect ratio (Stability takes the ratio; Core makes about 1.5 megapixels of it).
ASPECT_RATIOS = {
    "1024x1024": "1:1", "1344x768": "16:9", "768x1344": "9:16", "1536x640": "21:9", "640x1536": "9:21",
    "1216x832": "3:2", "832x1216": "2:3", "1088x896": "5:4", "896x1088": "4:5",
}  # fmt: skip
# The endpoint of each model, and the model field the SD 3.5 endpoint takes.
ENDPOINTS = {
    "stable-image-core": ("stable-image/generate/core", None),
    "stable-image-ultra": ("stable-image/generate/ultra", None),
    "sd3.5-large": ("stable-image/generate/sd3", "sd3.5-large"),
    "sd3.5-large-turbo": ("stable-image/generate/sd3", "sd3.5-large-turbo"),
    "sd3.5-medium": ("stable-image/generate/sd3", "sd3.5-medium"),
    "inpaint": ("stable-image/edit/inpaint", None),
    "upscale-fast": ("stable-image/upscale/fast", None),
    "upscale-conservative": ("stable-image/upscale/conservative", None),
    "sketch": ("stable-image/control/sketch", None),
}
_FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}

OPTIONS = OptionSpec(
    "stability",
    Option("output_format", Choice(("png", "jpeg", "webp")),
           "the pictures' format (default png; the SD 3.5 models make png or jpeg only)"),
    Option("grow_mask", Int(0, 100), "pixels the mask grows by, to soften the edit's edges (Stability's default 5)",
           frozenset({"images.edit"})),
    Option("control_strength", Float(0.0, 1.0), "how much the sketch constrains the picture (default 0.7)",
           frozenset({"images.sketch"})),
    Option("creativity", Float(0.2, 0.5), "how much detail the conservative upscaler may invent (default 0.35)",
           frozenset({"images.upscale"})),
)  # fmt: skip


class StabilityProvider:
    name = "stability"

    def __init__(self, settings: Settings, environ: Mapping[str, str]) -> None:
        import httpx  # noqa: F401  (fail first, with the extra's name, when it is missing)

        key = environ.get("STABILITY_API_KEY", "").strip()
        if not key:
            raise ConfigError("stability models need STABILITY_API_KEY: make one at platform.stability.ai/account/keys")
        base = environ.get("STABILITY_BASE_URL", DEFAULT_BASE_URL).strip().rstrip("/")
        self._key = key
        from .. import __version__

        self._io = JsonApi(
            provider="stability", base_url=f"{base}/v2beta/",
            headers={"Authorization": f"Bearer {key}", "Accept": "application/json",
                     "User-Agent": f"genai-sdk/{__version__}", "Stability-Client-ID": "genai-sdk"},
            timeout=settings.timeout or 300.0, answer_cap=MAX_ANSWER_BYTES, download_cap=MAX_ANSWER_BYTES,
            guard=AddressGuard.for_base_url(base, settings.trusted_hosts), error=self._error,
        )  # fmt: skip

    def describe(self, model_name: str) -> ModelInfo | None:
        return None  # the catalog (stability.json) lists every model this backend knows

    def check(self, model: ModelInfo, request: Request) -> list[str]:
        options = OPTIONS.for_request(request)
        if model.name not in ENDPOINTS:
            raise ConfigError(f"{model.id} is not a Stability endpoint this SDK knows: use one of "
                              + ", ".join(f"stability:{name}" for name in ENDPOINTS))  # fmt: skip
        if not isinstance(request, ImageRequest):
            return []
        if request.operation == "generate" and request.size not in (None, *ASPECT_RATIOS):
            raise InvalidRequestError(f"size={request.size!r} is not available for {model.id}: use one of "
                                      + ", ".join(model.sizes))  # fmt: skip
        if options.text("output_format") == "webp" and model.name.startswith("sd3"):
            raise InvalidRequestError(f"{model.id} makes png or jpeg pictures: output_format='webp' is not available")
        if request.operation == "sketch":
            _check_sketch(model, request.images[0], request.prompt, request.style)
        if request.operation == "upscale":
            _check_upscale(model, request.images[0], request.prompt)
            if model.name == "upscale-fast" and request.scale not in (None, 4):
                raise InvalidRequestError(f"{model.id} makes pictures 4 times larger: scale={request.scale} is not "
                                          "available (leave it out, or give 4)")  # fmt: skip
            if model.name == "upscale-conservative" and request.scale is not None:
                raise InvalidRequestError(f"{model.id} upscales to about 4 megapixels: it takes no scale=")
        if request.operation == "edit":
            _check_upload(request.images[0], "the image", 64)
            if request.mask is not None:
                _check_upload(request.mask, "the mask", 64)
            elif not _has_alpha(request.images[0]):
                raise InvalidRequestError("stability:inpaint needs a mask: pass mask=, or an image whose transparent "
                                          "pixels mark the region to paint")  # fmt: skip
        return []

    # -- images.generate and images.edit -------------------------------------------------------------------------

    def images(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> ImageBatch:
        return drive(self._images(model, request, n, ctx), self._io, ctx)

    async def aimages(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> ImageBatch:
        return await adrive(self._images(model, request, n, ctx), self._io, ctx)

    def _images(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> Flow[ImageBatch]:
        raw = request.options.provider_options.get("stability")
        if request.operation == "upscale":
            return (yield from self._upscale(model, request.images[0], ctx, request.prompt, request.negative_prompt,
                                             request.seed, raw))  # fmt: skip
        if request.operation == "sketch":
            batch = ImageBatch([])
            for _ in range(n):  # one picture a request
                made = yield from self._sketch(model, request.images[0], cast(str, request.prompt), ctx,
                                               request.negative_prompt, request.seed, request.style, raw)  # fmt: skip
                batch.images.extend(made.images)
                batch.seed = made.seed
            return batch
        options = OPTIONS.for_request(request)
        path, sd3_model = ENDPOINTS[model.name]
        fields: dict[str, object] = {"prompt": request.prompt, "negative_prompt": request.negative_prompt,
                                     "seed": request.seed, "style_preset": request.style,
                                     "output_format": options.text("output_format", "png")}  # fmt: skip
        files: dict[str, Image] = {}
        if request.operation == "edit":
            files["image"] = request.images[0]
            if request.mask is not None:
                files["mask"] = request.mask
            fields["grow_mask"] = options.integer("grow_mask")
        else:
            fields["aspect_ratio"] = ASPECT_RATIOS[request.size or model.default_size or "1024x1024"]
            if sd3_model is not None:
                fields["model"] = sd3_model
                fields["cfg_scale"] = request.guidance
        batch = ImageBatch([])
        for _ in range(n):  # one picture a request
            picture, seed = yield from self._post(path, fields, files, ctx)
            batch.images.append(picture)
            batch.seed = seed
        return batch

    # -- upscale and sketch (also callable on the provider itself) ---------------------------------------------

    def upscale(self, model: ModelInfo, image: Image, ctx: CallContext, *, prompt: str | None = None,
                negative_prompt: str | None = None, seed: int | None = None,
                options: Mapping[str, object] | None = None) -> ImageBatch:  # fmt: skip
        """Upscale ``image`` with ``stability:upscale-fast`` (4 times, no prompt) or ``upscale-conservative`` (to about
        4 megapixels, with a prompt)."""
        return drive(self._upscale(model, image, ctx, prompt, negative_prompt, seed, options), self._io, ctx)

    async def aupscale(self, model: ModelInfo, image: Image, ctx: CallContext, *, prompt: str | None = None,
                       negative_prompt: str | None = None, seed: int | None = None,
                       options: Mapping[str, object] | None = None) -> ImageBatch:  # fmt: skip
        return await adrive(self._upscale(model, image, ctx, prompt, negative_prompt, seed, options), self._io, ctx)

    def _upscale(self, model: ModelInfo, image: Image, ctx: CallContext, prompt: str | None,
                 negative_prompt: str | None, seed: int | None, raw: Mapping[str, object] | None) -> Flow[ImageBatch]:  # fmt: skip
        if model.name not in ("upscale-fast", "upscale-conservative"):
            raise InvalidRequestError(
                f"{model.id} does not upscale: use stability:upscale-fast or stability:upscale-conservative"
            )
        options = OPTIONS.parse(raw, "images.upscale")
        fields: dict[str, object] = {"output_format": options.text("output_format", "png")}
        _check_upscale(model, image, prompt)
        if model.name != "upscale-fast":
            fields.update(prompt=prompt, negative_prompt=negative_prompt, seed=seed,
                          creativity=options.number("creativity"))  # fmt: skip
        path, _ = ENDPOINTS[model.name]
        picture, used = yield from self._post(path, fields, {"image": image}, ctx)
        return ImageBatch([picture], seed=used)

    def sketch(self, model: ModelInfo, image: Image, prompt: str, ctx: CallContext, *,
               negative_prompt: str | None = None, seed: int | None = None, style: str | None = None,
               options: Mapping[str, object] | None = None) -> ImageBatch:  # fmt: skip
        """A picture from a sketch (``image``) and a prompt, with ``stability:sketch``."""
        return drive(self._sketch(model, image, prompt, ctx, negative_prompt, seed, style, options), self._io, ctx)

    async def asketch(self, model: ModelInfo, image: Image, prompt: str, ctx: CallContext, *,
                      negative_prompt: str | None = None, seed: int | None = None, style: str | None = None,
                      options: Mapping[str, object] | None = None) -> ImageBatch:  # fmt: skip
        flow = self._sketch(model, image, prompt, ctx, negative_prompt, seed, style, options)
        return await adrive(flow, self._io, ctx)

    def _sketch(self, model: ModelInfo, image: Image, prompt: str, ctx: CallContext, negative_prompt: str | None,
                seed: int | None, style: str | None, raw: Mapping[str, object] | None) -> Flow[ImageBatch]:  # fmt: skip
        if model.name != "sketch":
            raise InvalidRequestError(f"{model.id} does not take sketches: use stability:sketch")
        options = OPTIONS.parse(raw, "images.sketch")
        _check_sketch(model, image, prompt, style)
        fields: dict[str, object] = {"prompt": prompt, "negative_prompt": negative_prompt, "seed": seed,
                                     "style_preset": style, "control_strength": options.number("control_strength"),
                                     "output_format": options.text("output_format", "png")}  # fmt: skip
        picture, used = yield from self._post(ENDPOINTS["sketch"][0], fields, {"image": image}, ctx)
        return ImageBatch([picture], seed=used)

    # -- one request ---------------------------------------------------------------------------------------------

    def _post(self, path: str, fields: Mapping[str, object], files: Mapping[str, Image],
              ctx: CallContext) -> Flow[tuple[Image, int | None]]:  # fmt: skip
        """One multipart POST: the picture and its seed. Stability bills a picture once it is made: an answer lost or
        unusable after the request was sent is not asked for again (it would be billed twice) but recorded spent."""
        form: list[tuple[str, tuple[str | None, Any] | tuple[str, bytes, str]]] = [
            (name, (None, str(value))) for name, value in fields.items() if value is not None
        ]
        form += [(name, (f"{name}.{_extension(image)}", image.data, image.media_type)) for name, image in files.items()]
        try:
            body = yield Http("POST", path, ctx.timeout, files=form)
            return self._picture(body)
        except ProviderError as error:
            failed = isinstance(error, GenerationFailedError)
            if failed or error.status is not None and error.status >= 300 or never_sent(error):
                raise
            error.retryable = False
            mark_spent(error, f"{ctx.idempotency_key}#{ctx.attempt}", ImageBatch([], billed=1))
            raise
        except Abandoned as abandoned:  # the caller gave up with the request sent: it runs on and is billed
            mark_spent(abandoned, f"{ctx.idempotency_key}#{ctx.attempt}", ImageBatch([], billed=1))
            raise

    def _picture(self, body: object) -> tuple[Image, int | None]:
        if not isinstance(body, dict) or not isinstance(body.get("image"), str):
            raise ProviderError("Stability answered with something other than a picture", provider="stability",
                                status=200)  # fmt: skip
        reason = str(body.get("finish_reason") or "SUCCESS")
        if reason == "CONTENT_FILTERED":
            raise ContentPolicyError("Stability's content filter withheld the picture (finish_reason CONTENT_FILTERED)",
                                     stage="output", source="provider", categories=["provider_filter"])  # fmt: skip
        if reason != "SUCCESS":  # a failed generation, which Stability does not bill
            why = redact(reason[:100], (self._key,))
            raise GenerationFailedError(f"Stability's generation ended with finish_reason {why}", provider="stability",
                                        status=200, retryable=False)  # fmt: skip
        try:
            data = base64.b64decode(body["image"], validate=True)
        except ValueError:
            raise ProviderError("Stability answered with a picture that is not base64", provider="stability",
                                status=200) from None  # fmt: skip
        try:
            picture = backend_image(data, "stability")
        except ProviderError as error:
            error.status = 200
            raise
        seed = body.get("seed")
        return picture, seed if isinstance(seed, int) and not isinstance(seed, bool) else None

    # -- errors ------------------------------------------------------------------------------------------------

    def _error(self, response: Any) -> GenAIError:
        """Stability's error body, ``{"id", "name", "errors": [...]}``, as the SDK's error."""
        status = response.status_code
        try:
            body = response.json()
        except (ValueError, RecursionError):
            body = {}
        body = body if isinstance(body, dict) else {}
        name = str(body.get("name") or "")
        errors = body.get("errors")
        text = (
            "; ".join(str(e) for e in errors) if isinstance(errors, list) and errors else str(body.get("message") or "")
        )
        detail = redact(text or response.text[:300] or f"HTTP {status}", (self._key,))
        request_id = str(body["id"]) if isinstance(body.get("id"), str) else response.headers.get("x-request-id")
        message = " ".join(f"Stability answered {status} {name}".split()) + f": {detail}"
        common: dict[str, Any] = {"provider": "stability", "status": status, "request_id": request_id}
        if status == 403 and name == "content_moderation":
            return ContentPolicyError(f"Stability's moderation refused the request: {detail}", stage="prompt",
                                      source="provider", categories=["provider_filter"], request_id=request_id)  # fmt: skip
        if status in (401, 403):
            return AuthenticationError(f"{message}: check STABILITY_API_KEY", **common)
        if status == 402:
            return RateLimitError(f"{message}: the account's credits are spent; buy more at "
                                  "platform.stability.ai/account/credits", retryable=False, code="payment_required",
                                  **common)  # fmt: skip
        if status == 429:
            return RateLimitError(message, retryable=True, retry_after=parse_retry_after(response.headers), **common)
        return status_error(status, message, response.headers, common,
                            "check the model name, and whether Stability has retired its endpoint")  # fmt: skip

    def close(self) -> None:
        self._io.close()

    async def aclose(self) -> None:
        await self._io.aclose()


def _check_upscale(model: ModelInfo, image: Image, prompt: str | None) -> None:
    if model.name == "upscale-fast":
        _check_pixels(image, "the image", 32, 1536, 1024, 1024 * 1024)
        if prompt:
            raise InvalidRequestError("stability:upscale-fast takes no prompt")
    else:
        _check_pixels(image, "the image", 64, None, 4096, 9_437_184)
        if not prompt or not prompt.strip():
            raise InvalidRequestError("stability:upscale-conservative needs a prompt describing the picture")


def _check_sketch(model: ModelInfo, image: Image, prompt: str | None, style: str | None) -> None:
    if not prompt or not prompt.strip():
        raise InvalidRequestError("the prompt is empty")
    if style is not None and style not in model.styles:
        raise InvalidRequestError(f"style={style!r} is not available for {model.id}: use one of {', '.join(model.styles)}")
    _check_pixels(image, "the sketch", 64, None, 4096, 9_437_184)


def _extension(image: Image) -> str:
    return {"image/jpeg": "jpg", "image/webp": "webp"}.get(image.media_type, "png")


def _check_upload(image: Image, what: str, min_edge: int) -> None:
    if image.media_type not in _FORMATS.values():
        raise InvalidRequestError(f"{what} must be png, jpeg or webp for Stability, not {image.media_type}")
    if len(image.data) > MAX_UPLOAD_BYTES:
        raise InvalidRequestError(f"{what} is {len(image.data)} bytes; Stability takes requests of at most 10 MiB")
    _check_pixels(image, what, min_edge, None, 4096, 9_437_184)


def _check_pixels(
    image: Image, what: str, min_edge: int, max_edge: int | None, min_pixels: int, max_pixels: int
) -> None:
    """The limits Stability's reference gives for each input, checked before anything is sent."""
    if image.media_type not in _FORMATS.values():
        raise InvalidRequestError(f"{what} must be png, jpeg or webp for Stability, not {image.media_type}")
    width, height = image.width or 0, image.height or 0
    if min(width, height) < min_edge or (max_edge is not None and max(width, height) > max_edge):
        limit = f"between {min_edge} and {max_edge}" if max_edge is not None else f"at least {min_edge}"
        raise InvalidRequestError(f"{what} is {width}x{height}: Stability needs every side {limit} pixels")
    if not min_pixels <= width * height <= max_pixels:
        raise InvalidRequestError(
            f"{what} is {width}x{height}: Stability needs {min_pixels:,} to {max_pixels:,} pixels"
        )


def _has_alpha(image: Image) -> bool:
    try:
        return "A" in image.to_pil().getbands()
    except Exception:  # an image PIL cannot read is refused later, by its size check or by Stability
        return False


__all__ = ["OPTIONS", "StabilityProvider"]
