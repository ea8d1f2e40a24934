"""Video jobs: text (and optionally an image) to a video file, run by the same pipeline as every other call."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import cast

from ._catalog import Catalog, ModelInfo
from ._errors import InvalidRequestError
from ._jobs import Job, check_operation, note_price_warning
from ._media import Video, make_provenance
from ._requests import Cost, VideoRequest, VideoResult
from .credits._pricing import unit_cost
from .providers.base import CallContext, Provider, VideoOutcome, VideoProvider

# Compute-seconds reserved for one local frame, and the defaults a request leaves out.
ESTIMATED_SECONDS_PER_FRAME = Decimal(2)
DEFAULT_SECONDS = 2.0
DEFAULT_FPS = 8


@dataclass
class VideoJob(Job[VideoRequest, VideoOutcome, VideoResult]):
    request: VideoRequest = field(default=None)  # type: ignore[assignment]
    credits_per_usd: Decimal = Decimal(100)

    def call(self, part: VideoRequest, ctx: CallContext) -> VideoOutcome:
        return cast(VideoProvider, self.provider).video(self.model, part, ctx)

    async def acall(self, part: VideoRequest, ctx: CallContext) -> VideoOutcome:
        return await cast(VideoProvider, self.provider).avideo(self.model, part, ctx)

    def cost(self, outcomes: list[VideoOutcome]) -> Cost:
        outcome = outcomes[0]
        if self.model.price is not None and self.model.price.unit == "compute_second":
            units = Decimal(str(round(outcome.compute_seconds or 0.0, 3)))
        else:
            units = Decimal(str(round(outcome.video.duration or self.request.seconds or 0.0, 3)))
        cost, warning = unit_cost(self.model, units, self.credits_per_usd, estimated=False)
        note_price_warning(self.warnings, self.model, warning)
        return cost

    def result(self, outcomes: list[VideoOutcome], cost: Cost, request_id: str) -> VideoResult:
        outcome = outcomes[0]
        self.warnings.extend(w for w in outcome.warnings if w not in self.warnings)
        seed = outcome.seed if outcome.seed is not None else self.request.seed
        rid = outcome.request_id or request_id
        facts = make_provenance(model=self.model.id, prompt=self.request.prompt, seed=seed, request_id=rid)
        v = outcome.video
        video = Video(v.data, v.media_type, v.width, v.height, v.fps, v.duration, facts)
        return VideoResult(video, cost, self.model.id, list(self.warnings), [rid])


def build_video_job(
    request: VideoRequest,
    model: ModelInfo,
    provider: Provider | None,
    catalog: Catalog,
    credits_per_usd: Decimal,
    today: date,
) -> VideoJob:
    warnings = check_operation(model, "videos.generate", catalog, today)
    if not request.prompt or not request.prompt.strip():
        raise InvalidRequestError("the prompt is empty")
    if request.seconds is not None and not 0 < request.seconds <= 600:
        raise InvalidRequestError(f"seconds={request.seconds}: ask for more than 0 and at most 600 seconds")
    if request.fps is not None and not 1 <= request.fps <= 120:
        raise InvalidRequestError(f"fps={request.fps}: use 1 to 120 frames a second")
    if model.durations and request.seconds is not None and request.seconds not in model.durations:
        lengths = ", ".join(f"{d:g}" for d in model.durations)
        raise InvalidRequestError(f"seconds={request.seconds:g} is not available for {model.id}: it makes {lengths}-second videos")
    if model.sizes and request.size is not None and request.size not in model.sizes:
        raise InvalidRequestError(f"size={request.size!r} is not available for {model.id}: use one of {', '.join(model.sizes)}")
    if request.size is not None:
        match = re.fullmatch(r"(\d{1,5})x(\d{1,5})", request.size)
        if match is None:
            raise InvalidRequestError(f"size={request.size!r} is not of the form 'WIDTHxHEIGHT'")
        if model.size_rule is not None:
            problem = model.size_rule.check(int(match.group(1)), int(match.group(2)))
            if problem:
                raise InvalidRequestError(f"size={request.size!r} is not available for {model.id}: {problem}")
    for name in ("seed", "negative_prompt", "steps", "guidance"):
        if getattr(request, name) is not None and name not in model.portable:
            warnings.append(f"{model.id} does not support {name}: it was not applied")
    if provider is not None:
        warnings.extend(provider.check(model, request))
    seconds = request.seconds or (model.durations[0] if model.durations else DEFAULT_SECONDS)
    if model.price is not None and model.price.unit == "compute_second":
        units = Decimal(str(seconds)) * (request.fps or DEFAULT_FPS) * ESTIMATED_SECONDS_PER_FRAME
    else:
        units = Decimal(str(seconds))
    job = VideoJob(
        model=model, provider=provider, policy_text=request.prompt, estimate=Cost(Decimal(0), None), parts=[request],
        warnings=warnings, request=request, credits_per_usd=credits_per_usd,
    )
    job.estimate, warning = unit_cost(model, units, credits_per_usd, estimated=True)
    note_price_warning(job.warnings, model, warning)
    return job
