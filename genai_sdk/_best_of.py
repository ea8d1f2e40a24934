"""``images.generate(prompt, n=n, best_of=k)``: k candidates made by one generation call, ranked against the prompt by
an image-text model (CLIP) in one scoring call, the n best returned.

Both are ordinary calls on the one path (validation, the content policy, a reservation, retries, one charge each):
every candidate is made and charged, and the result's cost is the generation's plus the scoring's. The scoring model
is resolved before anything is generated, so a missing one costs nothing.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ._catalog import MAX_IMAGES_PER_CALL
from ._errors import InvalidRequestError, UnsupportedError
from ._requests import ImageRequest, ImageResult, ScoreRequest

if TYPE_CHECKING:
    from ._pipeline import Pipeline
    from ._score_jobs import Ranking


def candidates_request(pipeline: Pipeline, request: ImageRequest, best_of: object, clip_model: object) -> tuple[ImageRequest, str]:
    """The generation of the candidates, and the scoring model: checked before anything is generated."""
    if isinstance(best_of, bool) or not isinstance(best_of, int) or not 1 <= best_of <= MAX_IMAGES_PER_CALL:
        raise InvalidRequestError(f"best_of={best_of!r}: give a whole number of candidates from 1 to {MAX_IMAGES_PER_CALL}")
    if best_of < request.n:
        raise InvalidRequestError(f"best_of={best_of} is fewer than n={request.n}: make at least as many candidates as are kept")
    if clip_model is not None and (not isinstance(clip_model, str) or not clip_model):
        raise InvalidRequestError(f"clip_model={clip_model!r}: name a model as 'provider:model', for example 'clip:/models/clip'")
    scorer = pipeline.model_id_for("image_scoring", clip_model)
    model, _ = pipeline.resolve("image_scoring", scorer)  # an unknown provider or a missing extra: said now
    if not model.supports("images.score"):
        raise UnsupportedError(f"{model.id} cannot score images against text: best_of needs a CLIP model")
    return dataclasses.replace(request, n=best_of), scorer


def ranking_request(request: ImageRequest, made: ImageResult, scorer: str) -> ScoreRequest:
    options = dataclasses.replace(request.options, model=scorer)
    return ScoreRequest("rank", tuple(made.images), (request.prompt or "",), options)


def best(made: ImageResult, ranking: Ranking, n: int) -> ImageResult:
    """The n candidates the scoring model ranks highest, best first, with their scores; the cost of both calls."""
    order = sorted(range(len(made.images)), key=lambda i: -ranking.similarities[i])[:n]
    warnings = [*made.warnings, *(w for w in ranking.warnings if w not in made.warnings)]
    return dataclasses.replace(
        made,
        images=[made.images[i] for i in order],
        cost=made.cost + ranking.cost,
        warnings=warnings,
        policy=[*made.policy, *ranking.policy],
        scores=[ranking.similarities[i] for i in order],
    )
