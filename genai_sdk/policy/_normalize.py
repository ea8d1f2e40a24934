"""Normalisation against evasion: the one reading of a text that every rule and the classifier see.

Writers who want past a filter spell words so that a person still reads them and a word list does not:
``ｎｕｄｅ``, ``nüdé``, ``nu\u200bde``, ``nudе`` (a Cyrillic e), ``n4k3d``, ``n u d e``, ``n.u.d.e``, ``nuuuude``,
``nude_woman``, ``na-ked``, ``n🔥a🔥k🔥e🔥d``, ``na*ed``, ``nakid``. Each is undone here, in this order: Unicode NFKC
(full-width and styled letters), text under a right-to-left override put back in reading order, invisible and
control characters dropped, pictographs between letters dropped, look-alike Cyrillic, Greek and Armenian letters
inside Latin words mapped by shape, everything else transliterated to ASCII by ``anyascii`` (accents), lower case,
punctuation to spaces (apostrophes dropped inside words), then per word: digits and symbols read as letters,
masked letters (``s*x``, ``n**ed``) filled in, letters stretched or doubled squeezed, one typo of a rule word
corrected; then words broken apart (``na-ked``, ``sui-\ncide``) and single letters in a row (``n u d e``) joined.
A repair is kept only when it yields a known word (a rule term or a word of the classifier's vocabulary), so
``1080p``, ``4k`` and ``mp3`` stay as they are; rule terms are preferred (``n*de`` is "nude", not "node").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from functools import lru_cache
from importlib import resources

# Format characters, joiners, variation selectors, soft hyphens, fillers, and control characters other than white
# space: invisible in print, used to split words.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    "\u200b-\u200f\u202a-\u202e\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffc"
    "\U000e0000-\U000e007f]"
)
# Right-to-left overrides and isolates: what they enclose is shown reversed ("\u202edekan\u202c" shows "naked").
_REVERSED = re.compile("[\u202e\u2067]([^\u202a-\u202e\u2066-\u2069]*)(?:[\u202c\u2069]|$)")
# Pictographs (emoji and symbols) between two letters spell nothing: "n🔥a🔥k🔥e🔥d".
_PICTOGRAPHS_IN_WORD = re.compile(
    "(?<=[^\\W\\d_])[\u2190-\u2bff\U0001f000-\U0001faff\ufe0f\u200d]+(?=[^\\W\\d_])"
)
_EMOJI_WORDS = {"\U0001f51e": " nsfw ", "\U0001f346": " eggplant ", "\U0001f4a6": " sweat droplets "}
# Cyrillic and Greek letters that look like Latin ones, mapped by shape (a transliteration would map by sound:
# Cyrillic "р" is an r to anyascii and a p to the eye).
_HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "в": "b", "е": "e", "ё": "e", "і": "i", "ї": "i", "ј": "j", "к": "k", "м": "m", "н": "h",
        "о": "o", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w",
        "ь": "b", "ү": "y", "һ": "h", "ӏ": "l", "п": "n", "г": "r", "и": "u", "з": "3", "ч": "4", "б": "6",
        "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
        "Х": "X", "У": "Y", "І": "I", "Ј": "J", "Ѕ": "S", "Ԁ": "D", "Ԛ": "Q", "Ԝ": "W",
        "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
        "υ": "u", "χ": "x", "γ": "y", "ω": "w", "ς": "c", "μ": "u", "ϲ": "c", "ϳ": "j",
        "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
        "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
        "ո": "n", "ս": "u", "օ": "o", "ց": "g", "հ": "h", "ք": "p", "ա": "w", "ւ": "l", "լ": "l", "ե": "e",
        "ɑ": "a", "ɡ": "g", "ɩ": "i", "ı": "i", "ҽ": "e", "ɵ": "o", "ʏ": "y", "ʀ": "r", "ɴ": "n", "ɪ": "i",
    }
)  # fmt: skip
_LOOKALIKE_SCRIPT = re.compile("[\u0250-\u02af\u0131\u0370-\u03ff\u0400-\u052f\u0530-\u058f]")
_LATIN_LETTER = re.compile("[A-Za-z]")
# Characters read as letters inside words; "1" and "|" may be an i or an l.
_LEET: dict[str, tuple[str, ...]] = {
    "0": ("o",), "1": ("i", "l"), "3": ("e",), "4": ("a",), "5": ("s",), "7": ("t",), "8": ("b",), "9": ("g",),
    "@": ("a",), "$": ("s",), "!": ("i",), "|": ("l", "i"), "+": ("t",),
}  # fmt: skip
_WORD_CHARS = "a-z0-9@$!|+*"
_SPLIT = re.compile(f"[^{_WORD_CHARS}]+")
_INNER_APOSTROPHE = re.compile(r"(?<=[a-z])['`](?=[a-z])")
_POSSESSIVE = re.compile(r"(?<=[a-z])['`]s\b")
_TERM_TEXT = re.compile(r"[^a-z0-9*]+")
_RUN3 = re.compile(r"([a-z])\1{2,}")
_RUN2 = re.compile(r"([a-z])\1+")
_HAS_LETTER = re.compile("[a-z]")
_PLAIN = re.compile("^[a-z0-9]+$")
_NOT_WORD = re.compile("[^a-z0-9]+")
_LETTERS_ONLY = re.compile("^[a-z]+$")
_GAPS = re.compile(f"([^{_WORD_CHARS}]+)")


def term_words(text: str) -> list[str]:
    """The words of a rule term: terms are clean text, so only case, accents and punctuation are normalised
    (as for prompts: "driver's license" -> "driver license"); a trailing ``*`` is kept."""
    if not text.isascii():
        from anyascii import anyascii

        text = anyascii(text)
    text = _INNER_APOSTROPHE.sub("", _POSSESSIVE.sub("", text.lower()))
    return [w for w in _TERM_TEXT.sub(" ", text).split() if w.strip("*")]


def squeeze(word: str) -> str:
    """``word`` with every run of a repeated letter made one letter: the key under which stretched words are found."""
    return _RUN2.sub(r"\1", word)


@lru_cache(maxsize=1)
def vocabulary() -> frozenset[str]:
    """Whole English words of the classifier's WordPiece vocabulary (shipped with the package, 30,522 entries)."""
    text = resources.files("genai_sdk.policy").joinpath("data/minilm-vocab.txt").read_text(encoding="utf-8")
    return frozenset(w for w in text.split() if w.isalpha() and w.isascii() and w.islower() and len(w) > 1)


def _fix_lookalikes(token: str) -> str:
    """Map look-alike letters by shape in a word that mixes scripts or is spelt only with look-alikes."""
    if not _LOOKALIKE_SCRIPT.search(token):
        return token
    mapped = token.translate(_HOMOGLYPHS)
    if _LATIN_LETTER.search(token) or not _LOOKALIKE_SCRIPT.search(mapped):
        return mapped
    return token  # a word of Russian or Greek: anyascii transliterates it by sound


def _deleet_candidates(token: str) -> Iterable[str]:
    """Readings of a word with digits or symbols for letters, most likely first."""
    readings = [""]
    for char in token:
        options = _LEET.get(char) or (char,)
        readings = [r + o for r in readings for o in options][:16]
    return readings


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


MAX_WORD = 40  # longer "words" (hashes, base64, keyboard mashing) are left as they are: repairs cost time per letter
# Misspelt on purpose ("nakid", "sucide") or not, these are read as what they misspell. The list is short and made of
# long, distinctive words: the vocabulary is not a dictionary, and a general one-typo correction would read ordinary
# words it lacks ("peonies", "kites") as rule words.
TYPO_TARGETS = frozenset(
    """naked topless nipples penis vagina pornography pornographic hentai masturbate masturbating masturbation
    molest molested molesting molestation pedophile pedophilia paedophile lolicon shotacon bestiality incest rapist
    suicide suicidal selfharm anorexia bulimia overdose decapitated decapitation dismembered dismemberment
    mutilated mutilation disembowel disemboweled beheading beheaded massacre genocide terrorist terrorists
    assassinate assassinated assassination kidnapping kidnapped methamphetamine fentanyl cocaine heroin
    counterfeit explosive explosives detonator grenade swastika holocaust deepfake deepfakes forged forgery""".split()
)
_STOPWORDS = frozenset(
    "a an and are as at be by do for from go he her him his i if in is it me my no not of on or our she so than "
    "that the their them then there they this to up us was we were what when who will with you your".split()
)


class Normalizer:
    """Turns text into the normalised reading.

    ``is_term`` says whether a word belongs to a rule (preferred when a masked or leet word has several readings:
    ``n*de`` is "nude" before "node"); ``is_word`` whether it is any known word; ``terms`` are the rule words, from
    which stretched, doubled, masked and misspelt words are recovered.
    """

    def __init__(self, is_term: Callable[[str], bool], is_word: Callable[[str], bool], terms: Iterable[str]) -> None:
        self._is_term = is_term
        self._is_word = is_word
        words = sorted({t for t in terms if t.isalpha() and len(t) > 2})
        self._terms = frozenset(words)
        self._stretched = {squeeze(w): w for w in words}  # "kil" -> "kill", "nude" -> "nude"
        self._by_length: dict[int, list[str]] = {}
        for word in words:
            self._by_length.setdefault(len(word), []).append(word)
        near: dict[str, set[str]] = {}
        for word in TYPO_TARGETS:
            for variant in _deletions(word) | {word}:
                near.setdefault(variant, set()).add(word)
        self._near = {variant: next(iter(found)) for variant, found in near.items() if len(found) == 1}
        self._cache: dict[str, str] = {}

    def _known(self, word: str) -> bool:
        return self._is_term(word) or self._is_word(word)

    def _repair(self, token: str) -> str:
        if len(token) > MAX_WORD or (_PLAIN.match(token) and self._known(token)):
            return token
        cached = self._cache.get(token)
        if cached is None:
            cached = self._repair_uncached(token)
            if len(self._cache) < 50_000:
                self._cache[token] = cached
        return cached

    def _unstretch(self, word: str, typos: bool = False) -> str | None:
        """A known word, or the rule word it stretches or doubles ("nuuude", "naaked") or, with ``typos``,
        misspells by one letter ("nakid")."""
        if self._known(word):
            return word
        if _RUN3.search(word):  # stretched on purpose: any rule word with the same letters in the same order
            found = self._stretched.get(squeeze(word))
            if found is not None:
                return found
            for shortened in (_RUN3.sub(r"\1\1", word), _RUN3.sub(r"\1", word)):
                if self._known(shortened):
                    return shortened
        elif _RUN2.search(word):  # one letter doubled: "naaked", "bommb" (but "collie" is no "coolie")
            for i in range(len(word) - 1):
                if word[i] == word[i + 1] and word[:i] + word[i + 1 :] in self._terms:
                    return word[:i] + word[i + 1 :]
        if typos and len(word) >= 5:
            for variant in (word, *sorted(_deletions(word))):
                found = self._near.get(variant)
                if found is not None and abs(len(found) - len(word)) <= 1:
                    return found
        return None

    def _unmask(self, word: str) -> str | None:
        """Letters hidden behind asterisks, a letter a star: the first rule word that fits."""
        pattern = re.compile("^" + re.escape(word).replace(r"\*", "[a-z]") + "$")
        for found in self._by_length.get(len(word), ()):
            if pattern.match(found):
                return found
        return None

    def _read(self, word: str) -> str | None:
        if word.isdigit():
            return None
        if _LETTERS_ONLY.match(word):
            return self._unstretch(word, typos=True)
        if len(_HAS_LETTER.findall(word)) < 2:
            return None
        if "*" in word:
            return self._unmask("".join(_LEET.get(c, (c,))[0] for c in word))
        readings = list(_deleet_candidates(word))
        for check in (self._is_term, self._is_word):
            for reading in readings:
                fixed = self._unstretch(reading)
                if fixed is not None and check(fixed):
                    return fixed
        return None

    def _repair_uncached(self, token: str) -> str:
        core = token.strip("!|+")  # at the edges of a word these are punctuation more often than letters
        for candidate in dict.fromkeys((core, token, token.strip("*"))):
            fixed = self._read(candidate) if candidate else None
            if fixed is not None:
                return fixed
        return token

    def normalize(self, text: str) -> str:
        """The normalised reading: lower-case ASCII words separated by single spaces."""
        text = unicodedata.normalize("NFKC", text)
        if not text.isascii():
            text = _REVERSED.sub(lambda m: m.group(1)[::-1], text)
            text = _INVISIBLE.sub("", text)
            for emoji, spoken in _EMOJI_WORDS.items():
                text = text.replace(emoji, spoken)
            text = _PICTOGRAPHS_IN_WORD.sub("", text)
            from anyascii import anyascii

            text = anyascii(" ".join(_fix_lookalikes(t) for t in text.split(" ")))
        else:
            text = _INVISIBLE.sub("", text)
        text = _INNER_APOSTROPHE.sub("", _POSSESSIVE.sub("", text.lower()))
        words: list[str] = []
        gaps: list[str] = []
        gap = " "
        for index, piece in enumerate(_GAPS.split(text)):  # word, gap, word, gap, ...
            if index % 2:
                gap = piece
            elif piece:
                for position, word in enumerate(_NOT_WORD.sub(" ", self._repair(piece)).split()):
                    words.append(word)
                    gaps.append(gap if position == 0 else " ")
        return " ".join(self._join_spelled(self._join_broken(words, gaps)))

    def _join_broken(self, words: list[str], gaps: list[str]) -> list[str]:
        """Join two pieces of a rule word broken apart where a piece is no word of its own ("na-ked", "na ked"), both
        are short ("bo mb"), or a hyphen breaks the line ("sui-\ncide"); never two words that make a third ("the pen
        is" stays, so does "self-harm")."""
        out: list[str] = []
        index = 0
        while index < len(words):
            if index + 1 < len(words) and len(words[index]) > 1 and len(words[index + 1]) > 1:
                first, second, gap = words[index], words[index + 1], gaps[index + 1]
                joined = self._unstretch(first + second) if len(first) + len(second) <= MAX_WORD else None
                if joined and len(joined) >= 4 and self._is_term(joined) and not {first, second} & _STOPWORDS and (
                    ("-" in gap and "\n" in gap)  # hyphenated at a line break: one word
                    or not (self._known(first) and self._known(second))  # "self-harm" stays two words
                    or (len(first) <= 3 and len(second) <= 3)
                ):
                    out.append(joined)
                    index += 2
                    continue
            out.append(words[index])
            index += 1
        return out

    def _segment(self, letters: list[str]) -> list[str] | None:
        """Spelled-out letters read as known words ("h o w t o m a k e a b o m b" -> how to make a bomb), or None
        when they spell none. Long words are preferred (each scores its length squared, a rule term double), so
        "decapitation" wins over "de capita t ion"; of single letters only "a" and "i" are words."""
        text = "".join(letters)
        if not text.isalpha():  # "s.3.x": read as one word with a digit for a letter
            repaired = self._repair(text)
            return [repaired] if repaired != text and repaired.isalpha() else None
        if len(text) > 200:
            return None
        best: list[tuple[int, list[str]] | None] = [(0, [])] + [None] * len(text)
        for end in range(1, len(text) + 1):
            for start in range(max(0, end - 24), end):
                before = best[start]
                word = text[start:end]
                if before is None:
                    continue
                term = self._is_term(word)
                if not (term or (len(word) > 1 and self._is_word(word)) or word in ("a", "i")):
                    continue
                score = before[0] + len(word) ** 2 * (2 if term else 1)
                current = best[end]
                if current is None or score > current[0]:
                    best[end] = (score, [*before[1], word])
        found = best[len(text)]
        if found is None or (len(found[1]) == 1 and not self._is_term(found[1][0]) and len(found[1][0]) < 4):
            return None
        return found[1]

    def _join_spelled(self, tokens: list[str]) -> list[str]:
        """Join three or more single characters in a row ("n u d e") when together they spell a known word."""
        out: list[str] = []
        index = 0
        while index < len(tokens):
            end = index
            while end < len(tokens) and len(tokens[end]) == 1:
                end += 1
            if end - index < 3:
                out.append(tokens[index])
                index += 1
                continue
            run = tokens[index:end]
            out += self._segment(run) or run
            index = end
        return out
