"""The rules layer: term lists as data (``rules/*.toml``, one file per category), matched on the normalised text.

A category file has ``strong`` terms that decide alone, ``strict`` terms that decide alone under the strict level,
``allow`` phrases that take benign senses out ("a shot of espresso"), and ``[[combinations]]`` of weak terms that
decide only together (a minor with a sexual term, a named person with an abusive term, a weapon with an
instruction). Groups of terms shared by several files live in ``_groups.toml`` and are named with ``@``:
``@minors``, ``@people`` (``people.toml``), ``@minor_age`` (an age under 18 written out), or another category's
list (``@sexual.strong``). A term is matched as whole words; ``*`` at the end of a word matches any ending. A
combination may ask for its terms within a ``window`` of words, and ``ordered`` (in the groups' order).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .._errors import ConfigError
from ._categories import CATEGORIES
from ._normalize import Normalizer, term_words, vocabulary

_CATEGORY_FILES = {category: category.replace("/", "_").replace("-", "_") + ".toml" for category in CATEGORIES}
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
}  # fmt: skip
_AGE_SUFFIX = re.compile(r"^(\d{1,2})(?:yo|yr|yrs|y|yearold|yearsold)$")
_AGE_AFTER = (("year", "old"), ("years", "old"), ("yr", "old"), ("yrs", "old"), ("year", "olds"), ("yo",), ("y", "o"))


@dataclass(frozen=True)
class Term:
    """A word or phrase; a word ending in ``*`` matches any ending."""

    text: str
    words: tuple[str, ...]
    prefix: tuple[bool, ...]

    @classmethod
    def parse(cls, text: str) -> Term | None:
        words = term_words(text)
        if not words:
            return None
        return cls(text, tuple(w.rstrip("*") for w in words), tuple(w.endswith("*") for w in words))

    def matches_at(self, words: Sequence[str], start: int) -> bool:
        if start + len(self.words) > len(words):
            return False
        for offset, (word, prefix) in enumerate(zip(self.words, self.prefix, strict=True)):
            actual = words[start + offset]
            if not (actual.startswith(word) if prefix else actual == word):
                return False
        return True


@dataclass(frozen=True)
class Hit:
    """Where a term of a list was found: word positions [start, end)."""

    list_id: str
    start: int
    end: int
    term: str


class TermIndex:
    """Every term of every list, found in one pass over the words."""

    def __init__(self) -> None:
        self._exact: dict[str, list[tuple[Term, str]]] = {}
        self._prefix: dict[int, dict[str, list[tuple[Term, str]]]] = {}
        self.words: set[str] = set()
        self.prefixes: dict[int, set[str]] = {}  # every word of a term that ends in *, by length

    def add(self, list_id: str, terms: Iterable[str]) -> None:
        for text in terms:
            term = Term.parse(text)
            if term is None:
                continue
            for word, prefix in zip(term.words, term.prefix, strict=True):
                if prefix:
                    self.prefixes.setdefault(len(word), set()).add(word)
                else:
                    self.words.add(word)
            first = term.words[0]
            if term.prefix[0]:
                self._prefix.setdefault(len(first), {}).setdefault(first, []).append((term, list_id))
            else:
                self._exact.setdefault(first, []).append((term, list_id))

    def is_term(self, word: str) -> bool:
        """Whether a word is a word of some term, or one of its starred words with a short ending ("decapitat*":
        decapitation, not "tom*": tomakeabomb)."""
        return word in self.words or any(
            word[:n] in found for n, found in self.prefixes.items() if 4 <= n <= len(word) <= n + max(3, n // 2)
        )

    def find(self, words: Sequence[str]) -> list[Hit]:
        hits: list[Hit] = []
        lengths = sorted(self._prefix)
        for start, word in enumerate(words):
            candidates = list(self._exact.get(word, ()))
            for length in lengths:
                if length > len(word):
                    break
                candidates.extend(self._prefix[length].get(word[:length], ()))
            for term, list_id in candidates:
                if term.matches_at(words, start):
                    hits.append(Hit(list_id, start, start + len(term.words), term.text))
        hits.extend(_minor_ages(words))
        return hits


def _age(word: str) -> int | None:
    if word.isdigit() and len(word) <= 2:
        return int(word)
    return _NUMBER_WORDS.get(word)


def _minor_ages(words: Sequence[str]) -> Iterable[Hit]:
    """Ages under 18 written out: "12 year old", "twelve-year-old", "12yo", "aged 12"."""
    for index, word in enumerate(words):
        match = _AGE_SUFFIX.match(word)
        if match and int(match.group(1)) < 18:
            yield Hit("minor_age", index, index + 1, word)
            continue
        age = _age(word)
        if age is None or age >= 18:
            continue
        if index > 0 and words[index - 1] in ("aged", "age"):
            yield Hit("minor_age", index - 1, index + 1, f"{words[index - 1]} {word}")
            continue
        for suffix in _AGE_AFTER:
            if tuple(words[index + 1 : index + 1 + len(suffix)]) == suffix:
                yield Hit("minor_age", index, index + 1 + len(suffix), " ".join([word, *suffix]))
                break


@dataclass(frozen=True)
class Combination:
    name: str
    groups: tuple[frozenset[str], ...]  # list ids; a group is satisfied by a hit of any of its lists
    window: int | None
    strict_only: bool
    ordered: bool = False  # the groups' terms must come in the groups' order ("a man beating a dog", not "a dog...")


@dataclass
class CategoryRules:
    category: str
    description: str = ""
    combinations: list[Combination] = field(default_factory=list)


@dataclass(frozen=True)
class Scan:
    """What the rules found in a text: reasons per category, the public figures named, a minor named (or None)."""

    matches: dict[str, list[str]]
    people: list[str]
    minor: str | None


class RuleSet:
    """Categories with their lists, compiled into one index."""

    def __init__(self) -> None:
        self.categories: dict[str, CategoryRules] = {}
        self.lists: dict[str, list[str]] = {}
        self._index: TermIndex | None = None
        self._normalizer: Normalizer | None = None
        self.person_names: dict[str, str] = {}  # a name or alias, normalised -> the person's name

    # -- building ---------------------------------------------------------------------------------------

    @classmethod
    def builtin(cls) -> RuleSet:
        rules = cls()
        folder = resources.files("genai_sdk.policy").joinpath("rules")
        groups = _load_toml_text(folder.joinpath("_groups.toml").read_text(encoding="utf-8"), "_groups.toml")
        for name, terms in _string_lists(groups.get("groups", {}), "_groups.toml [groups]").items():
            rules.lists[f"groups.{name}"] = list(terms)
        people = _load_toml_text(folder.joinpath("people.toml").read_text(encoding="utf-8"), "people.toml")
        persons = people.get("person", [])
        for person in persons if isinstance(persons, list) else []:
            for name in [person["name"], *person.get("aliases", [])]:
                rules.lists.setdefault("people", []).append(name)
                rules.person_names[" ".join(term_words(name))] = person["name"]
        documents = {}
        for category, filename in _CATEGORY_FILES.items():
            documents[category] = _load_toml_text(folder.joinpath(filename).read_text(encoding="utf-8"), filename)
        for category, document in documents.items():
            rules.add_lists(category, document, _CATEGORY_FILES[category])
        for category, document in documents.items():
            rules.add_combinations(category, document, _CATEGORY_FILES[category])
        return rules

    def copy(self) -> RuleSet:
        other = RuleSet()
        other.categories = {
            k: CategoryRules(v.category, v.description, list(v.combinations)) for k, v in self.categories.items()
        }
        other.lists = {k: list(v) for k, v in self.lists.items()}
        other.person_names = dict(self.person_names)
        return other

    def add_lists(self, category: str, document: Mapping[str, object], origin: str) -> None:
        rules = self.categories.setdefault(category, CategoryRules(category))
        if isinstance(document.get("description"), str):
            rules.description = str(document["description"])
        for kind in ("strong", "strict", "allow"):
            terms = document.get(kind, [])
            if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
                raise ConfigError(f"{origin}: {kind} must be a list of strings")
            _check_terms(terms, f"{origin} {kind}")
            self.lists.setdefault(f"{category}.{kind}", []).extend(terms)
        self._index = None

    def add_combinations(self, category: str, document: Mapping[str, object], origin: str) -> None:
        rules = self.categories.setdefault(category, CategoryRules(category))
        combinations = document.get("combinations", [])
        if not isinstance(combinations, list):
            raise ConfigError(f"{origin}: combinations must be an array of tables ([[combinations]])")
        for number, table in enumerate(combinations):
            where = f"{origin} combination {number + 1}"
            if not isinstance(table, dict) or not isinstance(table.get("groups"), list) or len(table["groups"]) < 2:
                raise ConfigError(f"{where}: needs name and groups = [[...], [...]] (two groups or more)")
            unknown = sorted(set(table) - {"name", "groups", "window", "level", "ordered"})
            if unknown:
                raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: name, groups, window, level, ordered")
            group_ids = []
            for position, group in enumerate(table["groups"]):
                if not isinstance(group, list) or not group or not all(isinstance(t, str) for t in group):
                    raise ConfigError(f"{where}: each group must be a non-empty list of strings")
                ids = set()
                inline = [t for t in group if not t.startswith("@")]
                _check_terms(inline, where)
                for reference in (t[1:] for t in group if t.startswith("@")):
                    ids.add(self._resolve(reference, where))
                if inline:
                    inline_id = f"{category}.c{len(rules.combinations)}.g{position}"
                    self.lists[inline_id] = inline
                    ids.add(inline_id)
                group_ids.append(frozenset(ids))
            window = table.get("window")
            if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
                raise ConfigError(f"{where}: window must be a whole number of words >= 1")
            level = table.get("level", "standard")
            if level not in ("standard", "strict"):
                raise ConfigError(f"{where}: level must be 'standard' or 'strict'")
            ordered = table.get("ordered", False)
            if not isinstance(ordered, bool):
                raise ConfigError(f"{where}: ordered must be true or false")
            name = str(table.get("name") or f"combination {number + 1}")
            rules.combinations.append(Combination(name, tuple(group_ids), window, level == "strict", ordered))
        self._index = None

    def _resolve(self, reference: str, where: str) -> str:
        if reference in ("people", "minor_age"):
            return reference
        if f"groups.{reference}" in self.lists:
            return f"groups.{reference}"
        if reference in self.lists and "." in reference:
            return reference
        raise ConfigError(f"{where}: @{reference} names no group (groups: {', '.join(self.group_names())})")

    def group_names(self) -> list[str]:
        return sorted(k.removeprefix("groups.") for k in self.lists if k.startswith("groups.")) + ["people", "minor_age"]

    # -- matching ---------------------------------------------------------------------------------------

    def _compiled(self) -> tuple[TermIndex, Normalizer]:
        if self._index is None or self._normalizer is None:
            index = TermIndex()
            for list_id, terms in self.lists.items():
                index.add(list_id, terms)
            self._normalizer = Normalizer(index.is_term, vocabulary().__contains__, index.words)
            self._index = index
        return self._index, self._normalizer

    def normalize(self, text: str) -> str:
        return self._compiled()[1].normalize(text)

    def scan(self, normalized: str, *, strict: bool) -> Scan:
        """The categories the rules put a normalised text in, with the public figures and the minor it names."""
        index, _ = self._compiled()
        hits = index.find(normalized.split())
        allowed_spans = [(h.start, h.end) for h in hits if h.list_id.endswith(".allow")]
        live: dict[str, list[Hit]] = {}
        for hit in hits:
            if hit.list_id.endswith(".allow") or any(a <= hit.start and hit.end <= b for a, b in allowed_spans):
                continue  # a benign sense: "shot" in "a shot of espresso"
            live.setdefault(hit.list_id, []).append(hit)
        matches: dict[str, list[str]] = {}
        for category, rules in self.categories.items():
            reasons: list[str] = [repr(h.term) for h in live.get(f"{category}.strong", ())]
            if strict:
                reasons += [f"{h.term!r} (strict)" for h in live.get(f"{category}.strict", ())]
            for combination in rules.combinations:
                if combination.strict_only and not strict:
                    continue
                chosen = _combine(combination, live)
                if chosen is not None:
                    reasons.append(f"{combination.name} ({' + '.join(repr(h.term) for h in chosen)})")
            if reasons:
                matches[category] = list(dict.fromkeys(reasons))
        named = live.get("people", [])
        people = list(dict.fromkeys(  # "Barack Obama" once, not also as "Obama" inside it
            self.person_names.get(" ".join(term_words(h.term)), h.term) for h in named
            if not any(o is not h and o.start <= h.start and h.end <= o.end and o.end - o.start > h.end - h.start
                       for o in named)
        ))  # fmt: skip
        minors = [h.term for list_id in ("minor_age", "groups.minors") for h in live.get(list_id, ())]
        return Scan(matches, people, minors[0] if minors else None)


def _combine(combination: Combination, live: Mapping[str, list[Hit]]) -> list[Hit] | None:
    """Hits, one per group at distinct places (within the window if one is set), or None."""
    per_group = [[h for list_id in group for h in live.get(list_id, ())] for group in combination.groups]
    if not all(per_group):
        return None
    for anchor in per_group[0]:
        chosen = [anchor]
        for group in per_group[1:]:
            options = [
                h for h in group
                if all(h.end <= c.start or c.end <= h.start for c in chosen)
                and (combination.window is None or abs(h.start - anchor.start) <= combination.window)
                and (not combination.ordered or h.start >= chosen[-1].end)
            ]  # fmt: skip
            if not options:
                break
            chosen.append(min(options, key=lambda h: abs(h.start - anchor.start)))
        else:
            return chosen
    return None


def _check_terms(terms: Sequence[str], origin: str) -> None:
    """A term must have a word, and a starred word enough letters before its star: three alone, two in a phrase
    ("a*" would match half of English, "my ex*" is precise enough)."""
    for text in terms:
        words = term_words(text)
        least = 3 if len(words) == 1 else 2
        if not words or any(w.endswith("*") and len(w.rstrip("*")) < least for w in words):
            raise ConfigError(
                f"{origin}: {text!r} is not a usable term (a word; 3 letters or more before a *, 2 in a phrase)"
            )


def _load_toml_text(text: str, origin: str) -> dict[str, object]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin} is not valid TOML: {exc}") from exc


def _string_lists(table: object, origin: str) -> dict[str, list[str]]:
    if not isinstance(table, dict) or not all(
        isinstance(v, list) and all(isinstance(t, str) for t in v) for v in table.values()
    ):
        raise ConfigError(f"{origin}: expected a table of string lists")
    return {str(k): list(v) for k, v in table.items()}


def load_rules_file(path: Path) -> dict[str, object]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"policy rules file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"policy rules file {path} cannot be read: {exc.strerror or exc}") from exc
    return _load_toml_text(text, f"policy rules file {path}")
