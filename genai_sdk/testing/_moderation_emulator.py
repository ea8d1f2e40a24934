"""The emulator's /v1/moderations: scores per OpenAI category, settable per word and for images, for the tests of
the content policy's moderator layer."""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Mapping
from typing import Any

MODERATION_CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent", "self-harm",
    "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence", "violence/graphic",
)  # fmt: skip


class ModerationEndpoint:
    """Mixed into the Emulator: what it needs of it is below (a lock, an id counter, blocked words, errors)."""

    _lock: threading.Lock
    _ids: itertools.count[int]
    blocked_words: tuple[str, ...]
    _moderation_rules: list[tuple[str, dict[str, float]]]
    _image_moderation: dict[str, float]

    def _api_error(self, status: int, message: str, kind: str, code: str | None, param: str | None) -> Exception:
        raise NotImplementedError  # the Emulator's: an OpenAI error answer

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

    def _moderation_blocked(self, text: str) -> bool:
        lowered = text.lower()
        return any(re.search(rf"\b{re.escape(word)}\b", lowered) for word in self.blocked_words)

    def _moderation_scores(self, part: Any) -> dict[str, float]:
        scores = dict.fromkeys(MODERATION_CATEGORIES, 0.001)
        if isinstance(part, dict) and part.get("type") == "image_url":
            scores.update(self._image_moderation)
            return scores
        text = part if isinstance(part, str) else str(part.get("text", "")) if isinstance(part, dict) else ""
        if self._moderation_blocked(text):
            scores["violence"] = 0.97
        for word, extra in self._moderation_rules:
            if word in text.lower():
                scores.update(extra)
        return scores

    def _op_moderations(self, record: Any) -> tuple[int, dict[str, str], bytes]:
        params = record.json if isinstance(record.json, dict) else {}
        inputs = params.get("input", "")
        parts = [inputs] if isinstance(inputs, str) else list(inputs) if isinstance(inputs, list) else []
        if not parts:
            raise self._api_error(400, "input is required", "invalid_request_error", None, "input")
        model = str(params.get("model") or "omni-moderation-latest")
        if any(isinstance(p, dict) and p.get("type") == "image_url" for p in parts) and not model.startswith("omni"):
            raise self._api_error(400, f"{model} does not accept images", "invalid_request_error", None, "input")
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

