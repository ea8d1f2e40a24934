"""Scoring plans: an image against texts by an image-text model (CLIP), run by the same pipeline as every other call.

``score`` answers a similarity and a probability per text, ``classify`` ranks labels written into a prompt template
(zero-shot), and ``rank`` (used by ``images.generate(best_of=...)``) scores several candidate images against one text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import cast

from ._catalog import Catalog, ModelInfo
from ._errors import GenerationFailedError, InvalidRequestError
from ._jobs import CallPlan, Priced, check_operation, estimate_with_notices
from ._requests import (
    Classification,
    Cost,
    ImageScores,
    LabelScore,
    PolicyDecision,
    ScoreRequest,
    TextScore,
)
from .credits._pricing import Notices, Pricing, Usage
from .providers.base import CallContext, Provider, ScoreOutcome, ScoreProvider

# Compute-seconds reserved for scoring one image; the actual figure is measured.
ESTIMATED_SECONDS_PER_IMAGE = Decimal(1)
MAX_TEXTS = 1000  # texts (or labels) of one call: each is encoded, and a longer list is almost always a mistake
MAX_IMAGES = 64  # candidates of one ranking
DEFAULT_TEMPLATE = "a photo of a {label}"


@dataclass(frozen=True)
class Ranking:
    """Candidate images against one text (``best_of``): each image's similarity, in the order given."""

    similarities: list[float]
    cost: Cost
    model: str
    warnings: list[str] = field(default_factory=list)
    policy: list[PolicyDecision] = field(default_factory=list)
    failed_models: list[str] = field(default_factory=list)


ScoreResult = ImageScores | Classification | Ranking


@dataclass(frozen=True, kw_only=True)
class ScorePlan(CallPlan[ScoreRequest, ScoreOutcome, ScoreResult]):
    request: ScoreRequest

    def call(self, part: ScoreRequest, ctx: CallContext) -> ScoreOutcome:
        return self._checked(cast(ScoreProvider, self.provider).score(self.model, part, ctx))

    async def acall(self, part: ScoreRequest, ctx: CallContext) -> ScoreOutcome:
        return self._checked(await cast(ScoreProvider, self.provider).ascore(self.model, part, ctx))

    def _checked(self, outcome: ScoreOutcome) -> ScoreOutcome:
        """One row per image, one column per text, finite numbers: anything else is the backend's failure."""
        rows, columns = len(self.request.images), len(self.request.texts)
        shaped = len(outcome.similarities) == rows == len(outcome.probabilities) and all(
            len(row) == columns for table in (outcome.similarities, outcome.probabilities) for row in table
        )
        finite = shaped and all(v == v and abs(v) != float("inf") for t in (outcome.similarities, outcome.probabilities)
                                for row in t for v in row)  # fmt: skip
        if not finite:
            raise GenerationFailedError(
                f"{self.model.id} answered with scores that do not match {rows} image(s) and {columns} text(s)",
                provider=self.model.provider,
            )
        return outcome

    def cost(self, outcomes: Sequence[ScoreOutcome]) -> Priced:
        seconds = sum((u.quantity for o in outcomes for u in o.usage()), Decimal(0))
        return self._priced([Usage("compute_second", seconds)])

    def result(self, outcomes: Sequence[ScoreOutcome], cost: Cost, request_id: str, notices: Notices) -> ScoreResult:
        outcome = outcomes[0]
        notices.extend(outcome.warnings)
        request = self.request
        if request.operation == "rank":
            return Ranking([row[0] for row in outcome.similarities], cost, self.model.id, notices.messages())
        similarities, probabilities = outcome.similarities[0], outcome.probabilities[0]
        if request.operation == "classify":
            ranked = sorted(
                (LabelScore(label, p, s) for label, p, s in zip(request.labels, probabilities, similarities, strict=True)),
                key=lambda item: -item.probability,
            )
            return Classification(ranked, cost, self.model.id, request.template or "", notices.messages())
        scores = [TextScore(t, s, p) for t, s, p in zip(request.texts, similarities, probabilities, strict=True)]
        return ImageScores(scores, cost, self.model.id, notices.messages())


def build_score_job(
    request: ScoreRequest, model: ModelInfo, provider: Provider | None, catalog: Catalog, pricing: Pricing, today: date
) -> ScorePlan:
    model = catalog.priced(model)  # a model the catalog does not know may still have a price the application set
    operation = "classify" if request.operation == "classify" else "score"
    warnings = check_operation(model, f"images.{operation}", catalog, today)
    what = "labels" if request.operation == "classify" else "texts"
    if not request.images:
        raise InvalidRequestError("give an image to score")
    if len(request.images) > MAX_IMAGES:
        raise InvalidRequestError(f"{len(request.images)} images given: rank at most {MAX_IMAGES} at once")
    if not request.texts:
        raise InvalidRequestError(f"give at least one of the {what} to score the image against")
    if len(request.texts) > MAX_TEXTS:
        raise InvalidRequestError(f"{len(request.texts)} {what} given: at most {MAX_TEXTS} a call")
    for index, text in enumerate(request.labels if request.operation == "classify" else request.texts):
        if not text.strip():
            raise InvalidRequestError(f"{what[:-1]} {index} is empty: every one must say something")
    if provider is not None:
        warnings.extend(provider.check(model, request))
    expected = [Usage("compute_second", ESTIMATED_SECONDS_PER_IMAGE * len(request.images))]
    estimate, notices = estimate_with_notices(pricing, model, expected, warnings)
    return ScorePlan(
        model=model, provider=provider, policy_text=request.prompt, estimate=estimate, parts=(request,),
        notices=notices, pricing=pricing, request=request,
    )
