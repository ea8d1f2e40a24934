"""Content policy: prompt rules checked before any credit is reserved, and an output check after the call.

Levels: ``off`` (allow everything; the provider's own moderation still applies), ``standard`` (a small built-in
list of unambiguous terms per category), or the path of a TOML rules file::

    [categories]
    violence = ["behead", "massacre"]
    custom = ["project nightingale"]
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from .._errors import ConfigError
from .._requests import PolicyDecision

_STANDARD_RULES: dict[str, tuple[str, ...]] = {
    "sexual/minors": ("child porn", "csam"),
    "violence/graphic": ("beheading", "dismemberment", "gore porn"),
    "self-harm/instructions": ("how to kill myself", "suicide method"),
    "illicit/weapons": ("build a pipe bomb", "make a pipe bomb", "nerve agent synthesis"),
}


class Policy:
    def __init__(self, rules: Mapping[str, Sequence[str]], name: str) -> None:
        self.name = name
        self._patterns = {
            category: re.compile(r"\b(?:" + "|".join(re.escape(t.lower()) for t in terms) + r")\b")
            for category, terms in rules.items()
            if terms
        }

    @classmethod
    def from_setting(cls, setting: str) -> Policy:
        if setting == "off":
            return cls({}, "off")
        if setting == "standard":
            return cls(_STANDARD_RULES, "standard")
        path = Path(setting)
        if not path.is_file():
            raise ConfigError(
                f"policy {setting!r}: use 'off', 'standard', or the path of a TOML rules file (no such file)"
            )
        import tomllib

        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"policy rules file {path} is not valid TOML: {exc}") from None
        categories = document.get("categories")
        if not isinstance(categories, dict) or not all(
            isinstance(v, list) and all(isinstance(t, str) for t in v) for v in categories.values()
        ):
            raise ConfigError(f"{path}: expected a [categories] table of string lists")
        return cls(categories, str(path))

    def check(self, text: str | None) -> PolicyDecision:
        if not text or not self._patterns:
            return PolicyDecision(True)
        lowered = text.lower()
        hits = [category for category, pattern in self._patterns.items() if pattern.search(lowered)]
        if hits:
            return PolicyDecision(False, hits, f"the prompt matches the {self.name} policy's rules for {', '.join(hits)}")
        return PolicyDecision(True)

    def check_output(self, result: object) -> PolicyDecision:
        """Local output checks; media classifiers plug in here. Text outputs (transcripts) are checked as prompts."""
        text = getattr(result, "text", None)
        return self.check(text) if isinstance(text, str) else PolicyDecision(True)


__all__ = ["Policy"]
