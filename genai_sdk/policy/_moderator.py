"""A hosted second opinion: OpenAI's moderation endpoint (``policy_moderator = "openai:omni-moderation-latest"``).

Its per-category scores are compared with thresholds of our own (not only its ``flagged`` bit, which is tuned for
chat text, not image prompts); verdicts are cached by text, so a batch of one prompt asks once. Images go to it too
where the model accepts them (the omni-moderation models). Calls go through the SDK's one retry loop, under a
short deadline of their own. When the endpoint cannot be reached after its retries, the setting
``policy_moderator_outage`` decides: ``warn`` (the default: the local layers' verdict stands, with a warning) or
``refuse`` (fail closed: the call is refused).
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._errors import ConfigError, GenAIError, ProviderError
from .._retry import Attempt, Deadline, RetryPolicy, acall_with_retry, call_with_retry

if TYPE_CHECKING:
    from .._media import Image
    from ..providers import ProviderPool

# OpenAI's categories, folded into the SDK's.
CATEGORY_MAP = {
    "sexual": "sexual", "sexual/minors": "sexual/minors", "hate": "hate", "hate/threatening": "hate",
    "harassment": "harassment", "harassment/threatening": "harassment", "self-harm": "self-harm",
    "self-harm/intent": "self-harm", "self-harm/instructions": "self-harm", "violence": "violence",
    "violence/graphic": "violence/graphic", "illicit": "illicit", "illicit/violent": "illicit",
}  # fmt: skip
DEFAULT_THRESHOLDS = {
    "standard": {"sexual": 0.5, "sexual/minors": 0.2, "hate": 0.5, "harassment": 0.6, "self-harm": 0.4,
                 "violence": 0.7, "violence/graphic": 0.5, "illicit": 0.5},
    "strict": {"sexual": 0.3, "sexual/minors": 0.1, "hate": 0.3, "harassment": 0.4, "self-harm": 0.2,
               "violence": 0.4, "violence/graphic": 0.3, "illicit": 0.3},
}  # fmt: skip
OUTAGE_CHOICES = ("warn", "refuse")
MODERATOR_TIMEOUT = 20.0  # seconds for the moderator's answer, retries included, whatever the call's own timeout
_CACHE_SIZE = 4096


@dataclass(frozen=True)
class ModeratorVerdict:
    model: str
    scores: dict[str, float] = field(default_factory=dict)  # per SDK category: the highest of OpenAI's scores
    over: dict[str, tuple[float, float]] = field(default_factory=dict)  # category -> (score, threshold) at or over
    error: str | None = None
    refuse: bool = False


class Moderator:
    def __init__(
        self,
        model_id: str,
        providers: ProviderPool,
        retry: RetryPolicy,
        *,
        outage: str = "warn",
        thresholds: dict[str, float] | None = None,
        strict: bool = False,
    ) -> None:
        provider_name, _, model = model_id.partition(":")
        if provider_name != "openai" or not model:
            raise ConfigError(
                f"policy_moderator={model_id!r}: the moderator is an OpenAI moderation model, "
                "for example 'openai:omni-moderation-latest'"
            )
        if outage not in OUTAGE_CHOICES:
            raise ConfigError(f"policy_moderator_outage={outage!r}: use one of {', '.join(OUTAGE_CHOICES)}")
        self.model_id = model_id
        self.model = model
        self.outage = outage
        self.thresholds = {**DEFAULT_THRESHOLDS["strict" if strict else "standard"], **(thresholds or {})}
        self._providers = providers
        self._retry = retry
        self._cache: OrderedDict[str, ModeratorVerdict] = OrderedDict()
        self._lock = threading.Lock()
        providers.get("openai")  # a missing key or package is reported when the client is made, not mid-call

    @property
    def accepts_images(self) -> bool:
        return self.model.startswith("omni-moderation")

    # -- the calls ------------------------------------------------------------------------------------------

    def check_text(self, text: str) -> ModeratorVerdict:
        return self._cached(text, lambda: self._ask([{"type": "text", "text": text}]))

    async def acheck_text(self, text: str) -> ModeratorVerdict:
        key = self._key(text)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        verdict = await self._aask([{"type": "text", "text": text}])
        self._store(key, verdict)
        return verdict

    def check_image(self, image: Image) -> ModeratorVerdict:
        url = f"data:{image.media_type};base64,{base64.b64encode(image.data).decode('ascii')}"
        return self._cached(url, lambda: self._ask([{"type": "image_url", "image_url": {"url": url}}]))

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.model}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()

    def _cached(self, text: str, ask: Callable[[], ModeratorVerdict]) -> ModeratorVerdict:
        key = self._key(text)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        verdict = ask()
        self._store(key, verdict)
        return verdict

    def _store(self, key: str, verdict: ModeratorVerdict) -> None:
        if verdict.error is not None:
            return  # an outage is not an answer: ask again next time
        with self._lock:
            self._cache[key] = verdict
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)

    def _provider(self) -> Any:
        return self._providers.get("openai")

    def _ask(self, inputs: list[dict[str, Any]]) -> ModeratorVerdict:
        provider = self._provider()

        def attempt(a: Attempt) -> list[dict[str, float]]:
            scores: list[dict[str, float]] = provider.moderate(self.model, inputs, a.timeout)
            return scores

        try:
            results = call_with_retry(attempt, self._retry, Deadline(MODERATOR_TIMEOUT), provider="openai")
        except (ProviderError, ConfigError) as exc:
            return self._unavailable(exc)
        return self._verdict(results)

    async def _aask(self, inputs: list[dict[str, Any]]) -> ModeratorVerdict:
        provider = self._provider()

        async def attempt(a: Attempt) -> list[dict[str, float]]:
            scores: list[dict[str, float]] = await provider.amoderate(self.model, inputs, a.timeout)
            return scores

        try:
            results = await acall_with_retry(attempt, self._retry, Deadline(MODERATOR_TIMEOUT), provider="openai")
        except (ProviderError, ConfigError) as exc:
            return self._unavailable(exc)
        return self._verdict(results)

    def _unavailable(self, exc: GenAIError) -> ModeratorVerdict:
        what = "refused, as policy_moderator_outage='refuse' asks" if self.outage == "refuse" else "the local checks decided alone"
        return ModeratorVerdict(
            self.model_id, error=f"the moderator {self.model_id} could not be asked ({exc.message}): {what}",
            refuse=self.outage == "refuse",
        )  # fmt: skip

    def _verdict(self, results: list[dict[str, float]]) -> ModeratorVerdict:
        scores: dict[str, float] = {}
        for result in results:
            for name, value in result.items():
                category = CATEGORY_MAP.get(name)
                if category is not None and isinstance(value, int | float):
                    scores[category] = max(scores.get(category, 0.0), float(value))
        over = {c: (s, self.thresholds[c]) for c, s in scores.items() if c in self.thresholds and s >= self.thresholds[c]}
        return ModeratorVerdict(self.model_id, scores, over)
