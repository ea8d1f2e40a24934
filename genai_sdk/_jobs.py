"""Call plans: each request, validated against the catalog, becomes an immutable, typed plan (its model, estimate,
the backend calls it splits into, its warnings) that the pipeline runs; the plan prices what the backend answered
and assembles the typed result. This module holds the base and the image plan; speech and video plans live in
``_speech_jobs`` and ``_video_jobs``. The pipeline never looks inside a provider's wire format."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Generic, TypeVar, cast

from ._catalog import MAX_IMAGES_PER_CALL, Catalog, ModelInfo
from ._errors import GenerationFailedError, InvalidRequestError, ModelRetiredError, ProviderError, UnsupportedError
from ._media import Image, make_provenance
from ._requests import Cost, ImageRequest, ImageResult
from .credits._pricing import Notice, Notices, Pricing, Usage
from .providers.base import CallContext, ImageBatch, ImageProvider, Provider, mark_spent

_SIZE = re.compile(r"^(\d{2,5})x(\d{2,5})$")
PORTABLE_EXTRAS = ("seed", "negative_prompt", "steps", "guidance")
# Compute-seconds reserved for one locally generated image; the actual figure is measured.
ESTIMATED_SECONDS_PER_IMAGE = Decimal(10)

Part = TypeVar("Part")
Outcome = TypeVar("Outcome")
Result = TypeVar("Result")


def check_operation(model: ModelInfo, operation: str, catalog: Catalog, today: date) -> list[str | Notice]:
    """Refuse an operation the model cannot do (naming models that can) or a retired model; warn of a retirement."""
    if not model.supports(operation):
        able = [m.id for m in catalog.models() if m.supports(operation) and m.retired_on is None]
        hint = f"; models that can: {', '.join(able)}" if able else ""
        if operation in ("speech.transcribe", "speech.translate", "speech.detect_language") and model.provider != "whisper":
            hint += "; local Whisper models (whisper:...) can too"
        raise UnsupportedError(f"{model.id} cannot do {operation}{hint}")
    return check_lifecycle(model, today)


def check_lifecycle(model: ModelInfo, today: date) -> list[str | Notice]:
    if model.retired_on is None:
        return []
    instead = f"; use {model.replacement} instead" if model.replacement else (f" ({model.notes})" if model.notes else "")
    retired = model.retired_on.isoformat()
    if model.retired_on <= today:
        raise ModelRetiredError(
            f"{model.id} was retired on {retired}{instead}", retired_on=retired, replacement=model.replacement
        )
    return [Notice("lifecycle", model.id, f"{model.id} will be retired on {retired}{instead}")]


def not_applied(model: ModelInfo, setting: str, message: str | None = None) -> Notice:
    """A setting the model does not take: said once per call, whoever notices it."""
    return Notice("not_applied", setting, message or f"{model.id} does not support {setting}: it was not applied")


def _choose(value: str | None, allowed: tuple[str, ...], default: str | None, what: str, model: ModelInfo) -> str | None:
    if value is None:
        return default
    if not allowed:
        return None
    if value not in allowed:
        raise InvalidRequestError(f"{what}={value!r} is not available for {model.id}: use one of {', '.join(allowed)}")
    return value


def _check_size(size: str | None, model: ModelInfo, operation: str) -> str | None:
    if size is None:
        return model.default_size
    allowed = model.edit_sizes if operation in ("edit", "variations") and model.edit_sizes else model.sizes
    if size in allowed:
        return size
    match = _SIZE.match(size)
    if match is None:
        raise InvalidRequestError(f"size={size!r} is not of the form 'WIDTHxHEIGHT', for example '1024x1024'")
    if model.size_rule is not None:
        problem = model.size_rule.check(int(match.group(1)), int(match.group(2)))
        if problem is None:
            return size
        raise InvalidRequestError(f"size={size!r} is not available for {model.id}: {problem}")
    raise InvalidRequestError(
        f"size={size!r} is not available for {model.id} ({operation}): use one of {', '.join(allowed) or 'none'}"
    )


Priced = tuple[Cost, Notice | None]


@dataclass(frozen=True, kw_only=True)
class CallPlan(Generic[Part, Outcome, Result]):
    """One logical call, planned and immutable: its model and provider, the text the content policy checks, the
    estimate, the backend calls it splits into (``parts``) and the warnings known before it runs. The pipeline runs
    it; ``cost`` and ``result`` are functions of what the backend answered, and change nothing."""

    model: ModelInfo
    provider: Provider | None  # None for a plan made only to be priced
    policy_text: str | None
    estimate: Cost
    parts: tuple[Part, ...]
    notices: tuple[str | Notice, ...]
    pricing: Pricing

    def call(self, part: Part, ctx: CallContext) -> Outcome:
        raise NotImplementedError

    async def acall(self, part: Part, ctx: CallContext) -> Outcome:
        raise NotImplementedError

    def cost(self, outcomes: Sequence[Outcome]) -> Priced:
        """What the outcomes cost, and a notice when it is unpriced."""
        raise NotImplementedError

    def result(self, outcomes: Sequence[Outcome], cost: Cost, request_id: str, notices: Notices) -> Result:
        raise NotImplementedError

    def _priced(self, usages: list[Usage]) -> Priced:
        return self.pricing.cost(self.model, usages, estimated=False)


def estimate_with_notices(
    pricing: Pricing, model: ModelInfo, usages: list[Usage], notices: list[str | Notice]
) -> tuple[Cost, tuple[str | Notice, ...]]:
    """A plan's estimate, and its warnings with the estimate's notice (which the actual cost's replaces)."""
    cost, notice = pricing.cost(model, usages, estimated=True)
    return cost, (*notices, notice) if notice is not None else tuple(notices)


@dataclass(frozen=True, kw_only=True)
class ImagePlan(CallPlan[int, ImageBatch, ImageResult]):
    request: ImageRequest  # with the size and quality the catalog resolved (defaults filled in)
    size: str | None
    quality: str | None

    def call(self, part: int, ctx: CallContext) -> ImageBatch:
        return self._counted(cast(ImageProvider, self.provider).images(self.model, self.request, part, ctx), part)

    async def acall(self, part: int, ctx: CallContext) -> ImageBatch:
        batch = await cast(ImageProvider, self.provider).aimages(self.model, self.request, part, ctx)
        return self._counted(batch, part)

    def _counted(self, batch: ImageBatch, asked: int) -> ImageBatch:
        """No image is a failure, not an empty success; more than were asked for are not kept, nor charged."""
        if not batch.images:
            raise GenerationFailedError(
                f"{self.model.id} answered with no image", provider=self.model.provider, request_id=batch.request_id
            )
        notes = list(batch.warnings)
        images = batch.images
        if len(images) > asked:
            notes.append(
                f"{self.model.id} answered with {len(images)} images where {asked} were asked for: "
                f"the first {asked} were kept and charged"
            )
            images = images[:asked]
        elif len(images) < asked:
            notes.append(f"{self.model.id} made {len(images)} of the {asked} images asked for")
        kept = batch if images is batch.images else replace(batch, images=images)
        notes.extend(note for note in self._size_notes(kept) if note not in notes)  # the pictures kept, only
        if kept is batch and len(notes) == len(batch.warnings):
            return batch  # as answered (the common case: no copy on the hot path)
        return replace(kept, warnings=notes)

    def _size_notes(self, batch: ImageBatch) -> list[str]:
        """Each picture's size against the one asked for, where the model makes exactly that size (the catalog's
        ``exact_sizes``; Replicate's models round sizes their own way): a mismatch is a warning, and a picture whose
        area is off by more than 16 times cannot be what was asked for (a thumbnail, a placeholder): an error."""
        match = _SIZE.match(self.size or "")
        if match is None or not self.model.exact_sizes:
            return []
        width, height = int(match.group(1)), int(match.group(2))
        notes = []
        for image in batch.images:
            if (image.width, image.height) == (width, height):
                continue
            ratio = (image.width * image.height) / (width * height)
            if not 1 / 16 <= ratio <= 16:  # made and billed all the same: spent
                error = ProviderError(
                    f"{self.model.id} answered with a {image.width}x{image.height} picture where {self.size} was asked "
                    "for: it cannot be the picture asked for", provider=self.model.provider, retryable=False,
                )  # fmt: skip
                lost = ImageBatch([], batch.request_id, batch.quality, batch.size, billed=len(batch.images))
                raise mark_spent(error, batch.request_id or f"size-{id(batch)}", lost)
            notes.append(f"{self.model.id} made a {image.width}x{image.height} picture where {self.size} was asked for")
        return notes

    def cost(self, outcomes: Sequence[ImageBatch]) -> Priced:
        usages = [
            Usage(u.unit, u.quantity, u.quality or self._priced_quality(), u.size or self.size) if u.unit == "image" else u
            for batch in outcomes for u in batch.usage()
        ]  # fmt: skip
        images = [u for u in usages if u.unit == "image"]
        seconds = sum((u.quantity for u in usages if u.unit == "compute_second"), Decimal(0))
        return self._priced([*images, Usage("compute_second", seconds)])

    def _priced_quality(self) -> str | None:
        if self.quality in (None, "auto"):
            return self.model.estimate_quality or self.model.default_quality
        return self.quality

    def result(self, outcomes: Sequence[ImageBatch], cost: Cost, request_id: str, notices: Notices) -> ImageResult:
        images: list[Image] = []
        request_ids: list[str] = []
        for batch in outcomes:
            rid = batch.request_id or request_id
            request_ids.append(rid)
            seed = batch.seed if batch.seed is not None else self.request.seed
            facts = make_provenance(model=self.model.id, prompt=self.request.prompt, seed=seed, request_id=rid)
            images.extend(Image(i.data, i.media_type, i.width, i.height, facts) for i in batch.images)
            notices.extend(batch.warnings)
        return ImageResult(images, cost, self.model.id, notices.messages(), request_ids)


def build_image_job(
    request: ImageRequest, model: ModelInfo, provider: Provider | None, catalog: Catalog, pricing: Pricing, today: date
) -> ImagePlan:
    model = catalog.priced(model)  # a model the catalog does not know may still have a price the application set
    warnings = check_operation(model, f"images.{request.operation}", catalog, today)

    prompt = request.prompt
    if request.operation in ("upscale", "blend") and prompt is not None and not prompt.strip():
        raise InvalidRequestError("the prompt is empty: leave it out, or describe the picture")
    if request.operation not in ("variations", "upscale", "blend"):
        if not prompt or not prompt.strip():
            raise InvalidRequestError("the prompt is empty")
        if model.max_prompt is not None and len(prompt) > model.max_prompt:
            raise InvalidRequestError(
                f"the prompt has {len(prompt)} characters; {model.id} accepts at most {model.max_prompt}"
            )
    if isinstance(request.n, bool) or not isinstance(request.n, int) or not 1 <= request.n <= MAX_IMAGES_PER_CALL:
        raise InvalidRequestError(f"n={request.n!r}: ask for between 1 and {MAX_IMAGES_PER_CALL} images")
    if request.operation == "upscale":
        if request.n != 1:
            raise InvalidRequestError(f"n={request.n}: an upscale makes one picture")
        if request.scale is not None and (isinstance(request.scale, bool) or not isinstance(request.scale, int)
                                          or not 2 <= request.scale <= 8):  # fmt: skip
            raise InvalidRequestError(f"scale={request.scale!r}: give a whole number from 2 to 8")
    elif request.scale is not None:
        raise InvalidRequestError(f"scale= is for images.upscale, not images.{request.operation}")
    if request.operation == "blend" and len(request.images) < 2:
        raise InvalidRequestError(f"images.blend needs at least two images, not {len(request.images)}")
    if request.operation in ("edit", "variations", "upscale", "sketch", "blend"):
        if not request.images:
            raise InvalidRequestError(f"images.{request.operation} needs an input image")
        if len(request.images) > model.max_input_images:
            raise InvalidRequestError(
                f"{len(request.images)} input images given; {model.id} combines at most {model.max_input_images}"
            )
    if request.operation in ("upscale", "sketch"):  # the picture's size follows its input's
        if request.size is not None:
            raise InvalidRequestError(f"size= is not taken by images.{request.operation}: the picture's size follows "
                                      "the input's" + (" and scale=" if request.operation == "upscale" else ""))  # fmt: skip
        size = None
    else:
        size = _check_size(request.size, model, request.operation)
    quality = _choose(request.quality, model.qualities, model.default_quality, "quality", model)
    if request.quality is not None and not model.qualities:
        warnings.append(not_applied(model, "quality", f"{model.id} has no quality setting: quality={request.quality!r} was not applied"))
    if request.style is not None:
        if model.styles:
            _choose(request.style, model.styles, None, "style", model)
        else:
            warnings.append(not_applied(model, "style", f"{model.id} has no style setting: style={request.style!r} was not applied"))
    for name in PORTABLE_EXTRAS:
        if getattr(request, name) is not None and name not in model.portable:
            warnings.append(not_applied(model, name))
    if provider is not None:
        warnings.extend(provider.check(model, request))

    parts = [min(model.max_n, request.n - start) for start in range(0, request.n, model.max_n)]
    estimate_quality = model.estimate_quality if quality in (None, "auto") else quality
    expected = [Usage.of("image", request.n, estimate_quality, size),
                Usage("compute_second", ESTIMATED_SECONDS_PER_IMAGE * request.n)]  # fmt: skip
    estimate, notices = estimate_with_notices(pricing, model, expected, warnings)
    resolved = request if (request.size, request.quality) == (size, quality) else request.resolved(size, quality)
    return ImagePlan(
        model=model, provider=provider, policy_text=prompt, estimate=estimate, parts=tuple(parts), notices=notices,
        pricing=pricing, request=resolved, size=size, quality=quality,
    )
