"""Content policy: layered checks of prompts before any credit is reserved, and of outputs after the call.

Layers, in order (each one named in ``PolicyDecision.layer`` when it decides):

1. normalisation against evasion (``_normalize``): full-width, accents, look-alikes, invisible characters,
   leetspeak, spelled-out letters, stretched words;
2. rules (``rules/*.toml``): strong terms, combinations of weak terms, allow-lists of benign senses;
3. a small learned classifier (``_classifier``): sentence embeddings and one head per category, run offline on
   the CPU; it needs the ``policy`` extra, without which the rules run alone (logged once);
4. an optional hosted moderator (``policy_moderator = "openai:omni-moderation-latest"``) as a second opinion;
5. output checks (``_images``): an NSFW image classifier, and a face detector that only escalates when the prompt
   named a public figure; transcripts go through the text layers.

Levels: ``off``, ``standard`` (the default), ``strict`` (strict-only terms and combinations, lower thresholds),
``monitor`` (decide everything as ``standard`` does, block nothing: the verdicts are flagged), or the path of a TOML
file that extends a level::

    extends = "standard"
    [actions]                 # per category: block, flag or allow
    violence = "flag"
    [categories.brand]        # a category of one's own, or more terms for a built-in one
    strong = ["project nightingale"]
    [thresholds]              # the classifier's, per category
    sexual = 0.6
    classifier = true         # false: rules alone; or heads trained on one's own data ("my-heads.json")
    image_checks = true       # false: outputs' pictures are not checked (the provider's own checks still apply)
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import ConfigError
from .._requests import PolicyDecision
from ._categories import CATEGORIES

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from ._classifier import TextClassifier
    from ._images import ImageChecker
    from ._moderator import Moderator, ModeratorVerdict
    from ._rules import RuleSet, Scan

log = logging.getLogger("genai_sdk")

LEVELS = ("off", "standard", "strict", "monitor")
ACTIONS = ("block", "flag", "allow")
_SEVERITY = {"allow": 0, "flag": 1, "block": 2}
# An NSFW score (0-1) over which an image is sexual content; open_nsfw's authors call < 0.2 safe and > 0.8 NSFW.
_IMAGE_THRESHOLDS = {"standard": {"sexual": 0.8}, "strict": {"sexual": 0.5}}
# A minor named next to a sexual signal this strong (a fraction of the sexual threshold) is sexual/minors.
_MINOR_ESCALATION = 0.5


@dataclass
class PolicyConfig:
    """A level, or a rules file over a level: what is checked, how strictly, and what each category's verdict does."""

    name: str
    level: str
    rules: RuleSet | None = None  # None: the built-in rules
    actions: dict[str, str] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    image_thresholds: dict[str, float] = field(default_factory=dict)
    moderator_thresholds: dict[str, float] = field(default_factory=dict)
    classifier: bool | Path = True  # False: rules alone; a path: heads trained on one's own data
    image_checks: bool = True  # False: outputs' pictures are not checked (the provider's own checks still apply)

    @property
    def strict(self) -> bool:
        return self.level == "strict"

    def action(self, category: str) -> str:
        if self.level == "monitor":
            return "flag" if self.actions.get(category, "block") != "allow" else "allow"
        return self.actions.get(category, "block")


@dataclass(frozen=True)
class _Finding:
    layer: str
    score: float
    reason: str


_CLAUSE = re.compile(r"[,;:.!?\n|()\[\]]+|\s[-–—]\s")
_CLAUSE_LIMIT = 2000  # characters: a longer text (a transcript) is read in windows, not also clause by clause


def clauses_of(text: str) -> list[str]:
    """Of a prompt of several clauses, the first (where the subject usually is) and the longest (where it is when
    style words come first): each also scored alone, so that a long list of style words cannot dilute a request
    ("..., golden hour, 85mm lens, highly detailed"). Two at most: each costs a few milliseconds."""
    parts = [p.strip() for p in _CLAUSE.split(text)]
    parts = [p for p in parts if len(p.split()) >= 2]
    if len(parts) < 2:
        return []
    return list(dict.fromkeys((parts[0], max(parts, key=len))))


_BUILTIN: RuleSet | None = None
_BUILTIN_LOCK = threading.Lock()
_NOTED: set[str] = set()


def builtin_rules() -> RuleSet:
    """The shipped rules, loaded once per process on the first check (not at import: a client that checks
    nothing pays nothing)."""
    global _BUILTIN
    with _BUILTIN_LOCK:
        if _BUILTIN is None:
            from ._rules import RuleSet

            _BUILTIN = RuleSet.builtin()
        return _BUILTIN


def note_once(key: str, message: str) -> None:
    """Log a limitation once per process (a missing extra, say), not at every call."""
    if key not in _NOTED:
        _NOTED.add(key)
        log.warning(message)


def _floats(table: object, origin: str, what: str) -> dict[str, float]:
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise ConfigError(f"{origin}: [{what}] must be a table of category = number")
    out = {}
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
            raise ConfigError(f"{origin}: [{what}] {key} must be a number between 0 and 1, not {value!r}")
        out[str(key)] = float(value)
    return out


def config_from_setting(setting: str) -> PolicyConfig:
    """``off``, ``standard``, ``strict``, ``monitor``, or the path of a TOML rules file that extends one of them."""
    if setting in LEVELS:
        return PolicyConfig(setting, setting)
    try:
        return _config_from_file(Path(setting))
    except (OSError, ValueError, RecursionError) as exc:  # a path the system refuses, a file nested too deep
        raise ConfigError(f"policy {setting[:200]!r}: cannot be read as a rules file ({type(exc).__name__}: {exc})") from exc


def _config_from_file(path: Path) -> PolicyConfig:
    if not path.is_file():
        raise ConfigError(
            f"policy {str(path)[:200]!r}: use one of {', '.join(LEVELS)}, or the path of a TOML rules file "
            "(no such file)"
        )
    from ._rules import RuleSet, load_rules_file

    origin = f"policy rules file {path}"
    document = load_rules_file(path)
    known = {
        "extends", "actions", "categories", "thresholds", "image_thresholds", "moderator_thresholds", "classifier",
        "image_checks",
    }  # fmt: skip
    unknown = sorted(set(document) - known)
    if unknown:
        raise ConfigError(f"{origin}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    level = document.get("extends", "standard")
    if level not in LEVELS:
        raise ConfigError(f"{origin}: extends must be one of {', '.join(LEVELS)}, not {level!r}")
    config = PolicyConfig(str(path), str(level))
    actions = document.get("actions", {})
    if not isinstance(actions, dict) or not all(v in ACTIONS for v in actions.values()):
        raise ConfigError(f"{origin}: [actions] maps a category to one of {', '.join(ACTIONS)}")
    config.actions = {str(k): str(v) for k, v in actions.items()}
    config.thresholds = _floats(document.get("thresholds"), origin, "thresholds")
    categories = document.get("categories", {})
    if not isinstance(categories, dict):
        raise ConfigError(f"{origin}: [categories] must be a table")
    named = set(CATEGORIES) | set(categories) | {"moderator-unavailable"}
    for table_name, names in (("actions", set(config.actions)), ("thresholds", set(config.thresholds))):
        typos = sorted(names - named)
        if typos:
            raise ConfigError(
                f"{origin}: [{table_name}] names no category: {', '.join(typos)} (categories: {', '.join(CATEGORIES)}, "
                "or one of [categories])"
            )
    config.image_thresholds = _floats(document.get("image_thresholds"), origin, "image_thresholds")
    config.moderator_thresholds = _floats(document.get("moderator_thresholds"), origin, "moderator_thresholds")
    classifier = document.get("classifier", True)
    if isinstance(classifier, str):
        heads = (path.parent / classifier).resolve()
        if not heads.is_file():
            raise ConfigError(f"{origin}: classifier = {classifier!r}: no such file (heads written by "
                              "python -m genai_sdk.policy.train)")  # fmt: skip
        config.classifier = heads
    elif isinstance(classifier, bool):
        config.classifier = classifier
    else:
        raise ConfigError(f"{origin}: classifier must be true, false or the path of a heads file")
    image_checks = document.get("image_checks", True)
    if not isinstance(image_checks, bool):
        raise ConfigError(f"{origin}: image_checks must be true or false")
    config.image_checks = image_checks
    if categories:
        rules = builtin_rules().copy() if level != "off" else RuleSet()
        for category, body in categories.items():
            where = f"{origin} [categories.{category}]"
            table = {"strong": body} if isinstance(body, list) else body
            if not isinstance(table, dict):
                raise ConfigError(f"{where}: give a list of terms or a table with strong, strict, allow, combinations")
            extra = sorted(set(table) - {"strong", "strict", "allow", "combinations", "description"})
            if extra:
                raise ConfigError(f"{where}: unknown key(s) {', '.join(extra)}")
            rules.add_lists(str(category), table, where)
            rules.add_combinations(str(category), table, where)
        config.rules = rules
    return config


class Policy:
    """The content policy of a client: ``check`` (text), ``check_image``, ``check_output`` (a call's result)."""

    def __init__(self, config: PolicyConfig, moderator: Moderator | None = None) -> None:
        self.config = config
        self.name = config.name
        self.moderator = moderator
        self._decisions: dict[tuple[str, str], PolicyDecision] = {}

    @classmethod
    def from_setting(cls, setting: str, moderator: Moderator | None = None) -> Policy:
        return cls(config_from_setting(setting), moderator)

    @property
    def enabled(self) -> bool:
        return self.config.level != "off" or self.config.rules is not None

    @property
    def rules(self) -> RuleSet:
        return self.config.rules if self.config.rules is not None else builtin_rules()

    # -- text ---------------------------------------------------------------------------------------------

    def check(self, text: str | None, stage: str = "prompt") -> PolicyDecision:
        """The decision on a prompt (or, with ``stage="output"``, on a transcript)."""
        known = self._known(text, stage)
        if known is not None:
            return known
        findings, scores, layers, people, warnings = self._local_text(text or "")
        if self.moderator is not None and not self._blocks(findings):
            self._merge_moderator(self.moderator.check_text(text or ""), findings, scores, layers, warnings)
        return self._remember((stage, text or ""), self._decide(findings, scores, layers, stage, people, warnings))

    async def acheck(self, text: str | None, stage: str = "prompt") -> PolicyDecision:
        """``check`` for async code: the classifier runs in a worker thread and the moderator is awaited."""
        known = self._known(text, stage)
        if known is not None:
            return known
        import asyncio

        findings, scores, layers, people, warnings = await asyncio.to_thread(self._local_text, text or "")
        if self.moderator is not None and not self._blocks(findings):
            self._merge_moderator(await self.moderator.acheck_text(text or ""), findings, scores, layers, warnings)
        return self._remember((stage, text or ""), self._decide(findings, scores, layers, stage, people, warnings))

    def _known(self, text: str | None, stage: str) -> PolicyDecision | None:
        """The decision without checking: nothing to check, the policy off, or the text already decided."""
        if not text or not self.enabled:
            return PolicyDecision(True, layer="off" if not self.enabled else "", stage=stage)
        return self._decisions.get((stage, text))

    def _remember(self, key: tuple[str, str], decision: PolicyDecision) -> PolicyDecision:
        if len(self._decisions) >= 4096:
            self._decisions.clear()
        self._decisions[key] = decision
        return decision

    def _blocks(self, findings: Mapping[str, _Finding]) -> bool:
        return any(self.config.action(c) == "block" for c in findings)

    def _local_text(
        self, text: str
    ) -> tuple[dict[str, _Finding], dict[str, float], list[str], list[str], list[str]]:
        rules = self.rules
        normalized = rules.normalize(text)
        scan = rules.scan(normalized, strict=self.config.strict)
        findings: dict[str, _Finding] = {}
        scores: dict[str, float] = {}
        for category, reasons in scan.matches.items():
            findings[category] = _Finding("rules", 1.0, "matched " + "; ".join(reasons))
            scores[category] = 1.0
        layers = ["rules"]
        warnings: list[str] = []
        classifier = _text_classifier(self.config.classifier)
        if classifier is not None and self.config.level != "off" and normalized:
            layers.append("classifier")
            clauses = [rules.normalize(c) for c in clauses_of(text)] if len(normalized) < _CLAUSE_LIMIT else []
            self._apply_classifier(classifier, normalized, clauses, scan, findings, scores)
        return findings, scores, layers, scan.people, warnings

    def _apply_classifier(
        self,
        classifier: TextClassifier,
        normalized: str,
        clauses: list[str],
        scan: Scan,
        findings: dict[str, _Finding],
        scores: dict[str, float],
    ) -> None:
        level = "strict" if self.config.strict else "standard"
        predicted = classifier.scores(normalized, clauses)
        unsafe = predicted.pop("unsafe")
        scores["unsafe"] = round(unsafe, 4)
        for category, score in predicted.items():
            scores[category] = max(scores.get(category, 0.0), round(score, 4))
        threshold = classifier.threshold(level)
        likeliest = max(predicted, key=lambda c: predicted[c])
        if unsafe >= threshold and likeliest not in findings:
            findings[likeliest] = _Finding(
                "classifier", unsafe, f"classifier: unsafe {unsafe:.2f} >= {threshold:.2f}, likeliest {likeliest}"
            )
        for category, own in self.config.thresholds.items():  # a rules file's thresholds, per category
            if predicted.get(category, 0.0) >= own and category not in findings:
                findings[category] = _Finding("classifier", predicted[category], f"classifier score {predicted[category]:.2f} >= {own:.2f}")
        # A minor named beside a sexual signal is sexual/minors, whichever layer saw the sexual part. The signal is
        # the adult sexual class: the minors class alone is what the threshold above already judged.
        sexual = predicted.get("sexual", 0.0)
        if "sexual/minors" not in findings and scan.minor and (
            "sexual" in findings or sexual >= threshold * _MINOR_ESCALATION
        ):
            findings["sexual/minors"] = _Finding(
                "classifier", sexual, f"a minor ({scan.minor}) named beside sexual content (sexual score {sexual:.2f})"
            )
            scores["sexual/minors"] = max(scores.get("sexual/minors", 0.0), round(sexual, 4))

    def _merge_moderator(
        self,
        verdict: ModeratorVerdict,
        findings: dict[str, _Finding],
        scores: dict[str, float],
        layers: list[str],
        warnings: list[str],
    ) -> None:
        layers.append("moderator")
        if verdict.error is not None:
            if verdict.refuse:
                findings["moderator-unavailable"] = _Finding("moderator", 1.0, verdict.error)
            else:
                warnings.append(verdict.error)
            return
        for category, score in verdict.scores.items():
            scores[f"moderator:{category}"] = round(score, 4)
        for category, (score, threshold) in verdict.over.items():
            findings.setdefault(
                category, _Finding("moderator", score, f"{verdict.model} score {score:.2f} >= {threshold:.2f}")
            )

    def _decide(
        self,
        findings: Mapping[str, _Finding],
        scores: Mapping[str, float],
        layers: list[str],
        stage: str,
        people: list[str],
        warnings: list[str],
    ) -> PolicyDecision:
        order = {c: i for i, c in enumerate(CATEGORIES)}
        acting = sorted(
            (c for c in findings if self.config.action(c) != "allow"),
            key=lambda c: (-_SEVERITY[self.config.action(c)], order.get(c, len(order)), c),
        )
        if not acting:
            return PolicyDecision(
                True, [], "", dict(scores), "+".join(layers), "allow", stage, people, warnings=warnings
            )  # fmt: skip
        action = self.config.action(acting[0])
        reason = "; ".join(f"{c}: {findings[c].reason} ({findings[c].layer})" for c in acting)
        return PolicyDecision(
            action != "block", acting, reason, dict(scores), findings[acting[0]].layer, action, stage, people,
            warnings=warnings,
        )  # fmt: skip

    # -- images and outputs ------------------------------------------------------------------------------------

    def check_image(self, image: object, *, people: list[str] | tuple[str, ...] = (), stage: str = "output") -> PolicyDecision:
        """The decision on an image: the NSFW classifier, and faces when ``people`` (named in the prompt) is given."""
        from .._media import as_image

        if not self.enabled:
            return PolicyDecision(True, layer="off", stage=stage)
        picture = as_image(image)
        checker = _image_checker()
        pixels = picture.to_pil() if checker is not None else None  # decoded once, for every check below
        findings: dict[str, _Finding] = {}
        scores: dict[str, float] = {}
        layers: list[str] = []
        warnings: list[str] = []
        if checker is not None and pixels is not None:
            layers.append("nsfw-image")
            self._image_findings(checker, pixels, list(people), findings, scores, layers)
        if self.moderator is not None and self.moderator.accepts_images and not self._blocks(findings):
            self._merge_moderator(self.moderator.check_image(picture), findings, scores, layers, warnings)
        return self._with_escalation(self._decide(findings, scores, layers or ["none"], stage, list(people), warnings))

    def _image_findings(
        self,
        checker: ImageChecker,
        picture: PILImage,
        people: list[str],
        findings: dict[str, _Finding],
        scores: dict[str, float],
        layers: list[str],
    ) -> None:
        level = "strict" if self.config.strict else "standard"
        nsfw = checker.nsfw(picture)
        scores["sexual"] = round(nsfw, 4)
        threshold = self.config.image_thresholds.get("sexual", _IMAGE_THRESHOLDS[level]["sexual"])
        if nsfw >= threshold:
            findings["sexual"] = _Finding("nsfw-image", nsfw, f"NSFW image score {nsfw:.2f} >= {threshold:.2f}")
        if people:
            layers.append("faces")
            faces = checker.faces(picture)
            scores["faces"] = float(faces)
            if faces:
                findings["public-figures"] = _Finding(
                    "faces", 1.0, f"{faces} realistic face(s) in a picture of a public figure ({', '.join(people)})"
                )

    def check_output(self, result: object, prompt: PolicyDecision | None = None) -> PolicyDecision | None:
        """The decision on a call's result: images and video frames through the image checks, transcripts through
        the text layers. None when there is nothing to check (synthesised speech: its text was the prompt)."""
        if not self.enabled:
            return None
        people = prompt.people if prompt is not None else []
        images = getattr(result, "images", None)
        if not self.config.image_checks and (images is not None or getattr(result, "video", None) is not None):
            return None
        if isinstance(images, list):
            return self._worst([self.check_image(i, people=people) for i in images], people)
        video = getattr(result, "video", None)
        if video is not None:
            from ._images import video_frames

            frames = video_frames(video)
            return self._worst([self.check_image(f, people=people) for f in frames], people) if frames else None
        text = getattr(result, "text", None)
        if isinstance(text, str) and text.strip():
            return self.check(text, stage="output")
        return None

    def _worst(self, decisions: list[PolicyDecision], people: list[str]) -> PolicyDecision | None:
        if not decisions:
            return None
        worst = max(decisions, key=lambda d: _SEVERITY[d.action])
        if len(decisions) == 1:
            return worst
        scores: dict[str, float] = {}
        for d in decisions:
            for k, v in d.scores.items():
                scores[k] = max(scores.get(k, 0.0), v)
        categories = list(dict.fromkeys(c for d in decisions for c in d.categories))
        return replace(worst, categories=categories, scores=scores, people=people)

    def _with_escalation(self, decision: PolicyDecision) -> PolicyDecision:
        """Faces only escalate: a likeness is blocked under strict and flagged otherwise."""
        if decision.layer != "faces" or decision.action == "allow" or self.config.strict:
            return decision
        return replace(decision, action="flag", allowed=True)


def _text_classifier(setting: bool | Path) -> TextClassifier | None:
    if setting is False:
        return None
    try:
        from ._classifier import shared_classifier
    except ImportError:  # numpy itself is missing
        note_once("classifier", "content policy: the learned classifier needs numpy (the policy extra): rules run alone")
        return None
    return shared_classifier(None if setting is True else setting)


def _image_checker() -> ImageChecker | None:
    from ._images import shared_image_checker

    return shared_image_checker()


def describe(decision: PolicyDecision) -> dict[str, Any]:
    """A decision as plain data (for the CLI's JSON and for logs)."""
    return {
        "allowed": decision.allowed,
        "action": decision.action,
        "stage": decision.stage,
        "categories": decision.categories,
        "layer": decision.layer,
        "reason": decision.reason,
        "scores": dict(decision.scores),
        "people": decision.people,
        "warnings": decision.warnings,
    }


__all__ = ["ACTIONS", "CATEGORIES", "LEVELS", "Policy", "PolicyConfig", "config_from_setting", "describe"]
