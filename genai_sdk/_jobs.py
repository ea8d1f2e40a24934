"""Per-modality steps of the pipeline: validation against the catalog, pricing, splitting into backend calls,
and assembling the typed result. The pipeline runs them; it never looks inside a provider's wire format."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Generic, TypeVar, cast

from ._catalog import MAX_IMAGES_PER_CALL, Catalog, ModelInfo
from ._errors import GenerationFailedError, InvalidRequestError, ModelRetiredError, ProviderError, UnsupportedError
from ._media import Image, make_provenance
from ._requests import Cost, ImageRequest, ImageResult
from .credits._pricing import image_cost, unit_cost
from .providers.base import CallContext, ImageBatch, ImageProvider, Provider, mark_spent

_SIZE = re.compile(r"^(\d{2,5})x(\d{2,5})$")
_PORTABLE_EXTRAS = ("seed", "negative_prompt", "steps", "guidance")
# Compute-seconds reserved for one locally generated image; the actual figure is measured.
ESTIMATED_SECONDS_PER_IMAGE = Decimal(10)

Part = TypeVar("Part")
Outcome = TypeVar("Outcome")
Result = TypeVar("Result")


def check_operation(model: ModelInfo, operation: str, catalog: Catalog, today: date) -> list[str]:
    """Refuse an operation the model cannot do (naming models that can) or a retired model; warn of a retirement."""
    if not model.supports(operation):
        able = [m.id for m in catalog.models() if m.supports(operation) and m.retired_on is None]
        hint = f"; models that can: {', '.join(able)}" if able else ""
        if operation in ("speech.transcribe", "speech.translate", "speech.detect_language") and model.provider != "whisper":
            hint += "; local Whisper models (whisper:...) can too"
        raise UnsupportedError(f"{model.id} cannot do {operation}{hint}")
    return check_lifecycle(model, today)


def check_lifecycle(model: ModelInfo, today: date) -> list[str]:
    if model.retired_on is None:
        return []
    instead = f"; use {model.replacement} instead" if model.replacement else (f" ({model.notes})" if model.notes else "")
    if model.retired_on <= today:
        raise ModelRetiredError(
            f"{model.id} was retired on {model.retired_on.isoformat()}{instead}",
            retired_on=model.retired_on.isoformat(),
            replacement=model.replacement,
        )
    return [f"{model.id} will be retired on {model.retired_on.isoformat()}{instead}"]


def note_price_warning(warnings: list[str], model: ModelInfo, warning: str | None) -> None:
    """Keep one unpriced-cost warning per call: the actual cost's replaces the estimate's."""
    if warning is None:
        return
    prefix = f"no USD price is known for {model.id}"
    warnings[:] = [w for w in warnings if not w.startswith(prefix)]
    warnings.append(warning)


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


@dataclass
class Job(Generic[Part, Outcome, Result]):
    """One logical call: its model, warnings, estimate and the backend calls it splits into."""

    model: ModelInfo
    provider: Provider | None  # None for a job built only to be priced
    policy_text: str | None
    estimate: Cost
    parts: list[Part]
    warnings: list[str] = field(default_factory=list)

    def call(self, part: Part, ctx: CallContext) -> Outcome:
        raise NotImplementedError

    async def acall(self, part: Part, ctx: CallContext) -> Outcome:
        raise NotImplementedError

    def cost(self, outcomes: list[Outcome]) -> Cost:
        raise NotImplementedError

    def result(self, outcomes: list[Outcome], cost: Cost, request_id: str) -> Result:
        raise NotImplementedError


@dataclass
class ImageJob(Job[int, ImageBatch, ImageResult]):
    request: ImageRequest = field(default=None)  # type: ignore[assignment]
    size: str | None = None
    quality: str | None = None
    credits_per_usd: Decimal = Decimal(100)

    def call(self, part: int, ctx: CallContext) -> ImageBatch:
        return self._counted(cast(ImageProvider, self.provider).images(self.model, self.effective, part, ctx), part)

    async def acall(self, part: int, ctx: CallContext) -> ImageBatch:
        batch = await cast(ImageProvider, self.provider).aimages(self.model, self.effective, part, ctx)
        return self._counted(batch, part)

    def _counted(self, batch: ImageBatch, asked: int) -> ImageBatch:
        """No image is a failure, not an empty success; more than were asked for are not kept, nor charged."""
        if not batch.images:
            raise GenerationFailedError(
                f"{self.model.id} answered with no image", provider=self.model.provider, request_id=batch.request_id
            )
        if len(batch.images) > asked:
            batch.warnings.append(
                f"{self.model.id} answered with {len(batch.images)} images where {asked} were asked for: "
                f"the first {asked} were kept and charged"
            )
            batch.images = batch.images[:asked]
        elif len(batch.images) < asked:
            batch.warnings.append(f"{self.model.id} made {len(batch.images)} of the {asked} images asked for")
        self._check_sizes(batch)
        return batch

    def _check_sizes(self, batch: ImageBatch) -> None:
        """Each picture's size against the one asked for, where the model makes exactly that size (the catalog's
        ``exact_sizes``; Replicate's models round sizes their own way): a mismatch is a warning, and a picture whose
        area is off by more than 16 times cannot be what was asked for (a thumbnail, a placeholder): an error."""
        match = _SIZE.match(self.size or "")
        if match is None or not self.model.exact_sizes:
            return
        width, height = int(match.group(1)), int(match.group(2))
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
            note = f"{self.model.id} made a {image.width}x{image.height} picture where {self.size} was asked for"
            if note not in batch.warnings:
                batch.warnings.append(note)

    @property
    def effective(self) -> ImageRequest:
        """The request with the size and quality the catalog resolved (defaults filled in)."""
        request = self.request
        if request.size == self.size and request.quality == self.quality:
            return request
        request = self.request = request.resolved(self.size, self.quality)
        return request

    def cost(self, outcomes: list[ImageBatch]) -> Cost:
        if self.model.price is not None and self.model.price.unit == "compute_second":
            seconds = sum((Decimal(str(round(b.compute_seconds or 0.0, 3))) for b in outcomes), Decimal(0))
            cost, warning = unit_cost(self.model, seconds, self.credits_per_usd, estimated=False)
            note_price_warning(self.warnings, self.model, warning)
            return cost
        total: Cost | None = None
        for batch in outcomes:
            quality = batch.quality or self._priced_quality()
            part_cost, warning = image_cost(
                self.model, len(batch.images) if batch.billed is None else batch.billed, quality, batch.size or self.size,
                self.credits_per_usd, estimated=False,
            )
            note_price_warning(self.warnings, self.model, warning)
            total = part_cost if total is None else total + part_cost
        return total if total is not None else Cost(Decimal(0), Decimal(0))

    def _priced_quality(self) -> str | None:
        if self.quality in (None, "auto"):
            return self.model.estimate_quality or self.model.default_quality
        return self.quality

    def result(self, outcomes: list[ImageBatch], cost: Cost, request_id: str) -> ImageResult:
        images: list[Image] = []
        request_ids: list[str] = []
        for batch in outcomes:
            rid = batch.request_id or request_id
            request_ids.append(rid)
            seed = batch.seed if batch.seed is not None else self.request.seed
            facts = make_provenance(model=self.model.id, prompt=self.request.prompt, seed=seed, request_id=rid)
            images.extend(Image(i.data, i.media_type, i.width, i.height, facts) for i in batch.images)
            self.warnings.extend(w for w in batch.warnings if w not in self.warnings)
        return ImageResult(images, cost, self.model.id, list(self.warnings), request_ids)


def build_image_job(
    request: ImageRequest,
    model: ModelInfo,
    provider: Provider | None,
    catalog: Catalog,
    credits_per_usd: Decimal,
    today: date,
) -> ImageJob:
    warnings = check_operation(model, f"images.{request.operation}", catalog, today)

    prompt = request.prompt
    if request.operation != "variations":
        if not prompt or not prompt.strip():
            raise InvalidRequestError("the prompt is empty")
        if model.max_prompt is not None and len(prompt) > model.max_prompt:
            raise InvalidRequestError(
                f"the prompt has {len(prompt)} characters; {model.id} accepts at most {model.max_prompt}"
            )
    if isinstance(request.n, bool) or not isinstance(request.n, int) or not 1 <= request.n <= MAX_IMAGES_PER_CALL:
        raise InvalidRequestError(f"n={request.n!r}: ask for between 1 and {MAX_IMAGES_PER_CALL} images")
    if request.operation in ("edit", "variations"):
        if not request.images:
            raise InvalidRequestError(f"images.{request.operation} needs an input image")
        if len(request.images) > model.max_input_images:
            raise InvalidRequestError(
                f"{len(request.images)} input images given; {model.id} combines at most {model.max_input_images}"
            )
    size = _check_size(request.size, model, request.operation)
    quality = _choose(request.quality, model.qualities, model.default_quality, "quality", model)
    if request.quality is not None and not model.qualities:
        warnings.append(f"{model.id} has no quality setting: quality={request.quality!r} was not applied")
    if request.style is not None:
        if model.styles:
            _choose(request.style, model.styles, None, "style", model)
        else:
            warnings.append(f"{model.id} has no style setting: style={request.style!r} was not applied")
    for name in _PORTABLE_EXTRAS:
        if getattr(request, name) is not None and name not in model.portable:
            warnings.append(f"{model.id} does not support {name}: it was not applied")
    if provider is not None:
        warnings.extend(provider.check(model, request))

    parts = [min(model.max_n, request.n - start) for start in range(0, request.n, model.max_n)]
    estimate_quality = model.estimate_quality if quality in (None, "auto") else quality
    if model.price is not None and model.price.unit == "compute_second":
        seconds = ESTIMATED_SECONDS_PER_IMAGE * request.n
        estimate, warning = unit_cost(model, seconds, credits_per_usd, estimated=True)
    else:
        estimate, warning = image_cost(model, request.n, estimate_quality, size, credits_per_usd, estimated=True)
    if warning:
        warnings.append(warning)
    return ImageJob(
        model=model,
        provider=provider,
        policy_text=prompt,
        estimate=estimate,
        parts=parts,
        warnings=warnings,
        request=request,
        size=size,
        quality=quality,
        credits_per_usd=credits_per_usd,
    )
