"""Video plans: text (and optionally an image) to a video file, run by the same pipeline as every other call."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import cast

from ._catalog import Catalog, ModelInfo
from ._errors import InvalidRequestError
from ._jobs import PORTABLE_EXTRAS, CallPlan, Priced, check_operation, estimate_with_notices, not_applied
from ._media import Video, make_provenance
from ._requests import Cost, VideoRequest, VideoResult
from .credits._pricing import Notices, Pricing, Usage
from .providers.base import CallContext, Provider, VideoOutcome, VideoProvider

# Compute-seconds reserved for one local frame, and the defaults a request leaves out.
ESTIMATED_SECONDS_PER_FRAME = Decimal(2)
DEFAULT_SECONDS = 2.0
DEFAULT_FPS = 8


@dataclass(frozen=True, kw_only=True)
class VideoPlan(CallPlan[VideoRequest, VideoOutcome, VideoResult]):
    request: VideoRequest

    def call(self, part: VideoRequest, ctx: CallContext) -> VideoOutcome:
        return cast(VideoProvider, self.provider).video(self.model, part, ctx)

    async def acall(self, part: VideoRequest, ctx: CallContext) -> VideoOutcome:
        return await cast(VideoProvider, self.provider).avideo(self.model, part, ctx)

    def cost(self, outcomes: Sequence[VideoOutcome]) -> Priced:
        usages = outcomes[0].usage()
        if not any(u.unit == "second" for u in usages):  # the file's length unknown: the length asked for
            usages.insert(0, Usage.of("second", self.request.seconds or 0.0))
        if not any(u.unit == "compute_second" for u in usages):
            usages.append(Usage("compute_second", Decimal(0)))
        return self._priced(usages)

    def result(self, outcomes: Sequence[VideoOutcome], cost: Cost, request_id: str, notices: Notices) -> VideoResult:
        outcome = outcomes[0]
        notices.extend(outcome.warnings)
        seed = outcome.seed if outcome.seed is not None else self.request.seed
        rid = outcome.request_id or request_id
        facts = make_provenance(model=self.model.id, prompt=self.request.prompt, seed=seed, request_id=rid)
        v = outcome.video
        video = Video(v.data, v.media_type, v.width, v.height, v.fps, v.duration, facts)
        return VideoResult(video, cost, self.model.id, notices.messages(), [rid])


def build_video_job(
    request: VideoRequest, model: ModelInfo, provider: Provider | None, catalog: Catalog, pricing: Pricing, today: date
) -> VideoPlan:
    model = catalog.priced(model)  # a model the catalog does not know may still have a price the application set
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
    for name in PORTABLE_EXTRAS:
        if getattr(request, name) is not None and name not in model.portable:
            warnings.append(not_applied(model, name))
    if provider is not None:
        warnings.extend(provider.check(model, request))
    seconds = request.seconds or (model.durations[0] if model.durations else DEFAULT_SECONDS)
    frames = Decimal(str(seconds)) * (request.fps or DEFAULT_FPS)
    expected = [Usage.of("second", seconds), Usage("compute_second", frames * ESTIMATED_SECONDS_PER_FRAME)]
    estimate, notices = estimate_with_notices(pricing, model, expected, warnings)
    return VideoPlan(
        model=model, provider=provider, policy_text=request.prompt, estimate=estimate, parts=(request,),
        notices=notices, pricing=pricing, request=request,
    )
