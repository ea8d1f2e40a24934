"""Property-based tests: whatever a caller passes, whatever is configured, whatever a backend answers and wherever a
result is saved, the outcome is a success that holds together or a typed ``genai.GenAIError``: never another
exception, never a hang, never a reservation left behind, never a partial file.

The library bugs these properties found are listed in ``FOUND_BUGS``, each with a minimal reproduction below
(``test_known_bug``), now a regression test: all are fixed. A bug found later goes into ``KNOWN_BUGS`` (open bugs,
none today), which marks its reproduction, and any full-strength property that reaches it, ``xfail(strict=True)``
while it stands; the same property also runs in a form whose strategy leaves the open bugs' triggers out, so that it
guards everything else meanwhile. Fixing a bug: delete its id from ``KNOWN_BUGS``; the marks follow.
"""

from __future__ import annotations

import asyncio
import base64
import decimal
import io
import itertools
import json
import math
import os
import string
import tempfile
import threading
import time
import wave
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.control import currently_in_test_context

import genai_sdk as genai
from genai_sdk._config import KEYS
from genai_sdk._requests import ImageOptions
from genai_sdk.testing import Emulator
from genai_sdk.testing._answer_faults import bomb_png

from .conftest import fast

# -- known library bugs ----------------------------------------------------------------------------------------------

FOUND_BUGS: dict[str, str] = {
    "provider-options-not-json": "provider_options values JSON cannot carry (object(), bytes, NaN for Replicate) escape "
    "as TypeError/ValueError from the request encoder instead of an InvalidRequestError before anything is reserved",
    "provider-options-non-str-key": "a provider_options key that is not a string (provider_options={'openai': {1: 'x'}}) "
    "crashes the unknown-key message: TypeError from ', '.join(sorted(unknown))",
    "huge-timeout": "a finite but huge timeout (timeout=1e308, accepted by the checks) escapes as OverflowError "
    "('timestamp out of range for platform time_t') from the HTTP layer",
    "openai-answer-types": "an OpenAI images answer whose fields have the wrong JSON types ({'data': 5}, {'data': [5]}, "
    "{'data': [{'b64_json': 5}]}, {'data': [{'url': 5}]}) escapes as TypeError/AttributeError",
    "deep-json": "a JSON answer nested deeper than Python's recursion limit ('[' * 100000 + ']' * 100000, 200 KB) "
    "escapes as RecursionError: from an OpenAI 2xx answer, and from any Replicate answer, errors included",
    "replicate-schema-types": "a Replicate model schema whose parts have the wrong JSON types (components a list, "
    "properties a list, a property spec a number, required a number) escapes as AttributeError/TypeError",
    "replicate-schema-values": "a Replicate schema with an aspect_ratio enum of '1:0' or 'a:b', or num_outputs maximum "
    "Infinity, escapes as ZeroDivisionError/ValueError/OverflowError",
    "openai-bad-url": "an OpenAI image URL with a character httpx refuses ('http://127.0.0.1/\\x00') escapes as "
    "httpx2.InvalidURL: genai_sdk._http.fetch catches httpx's HTTPError only, and InvalidURL is not one",
    "replicate-bad-output-url": "a Replicate output URL urllib or httpx cannot parse ('http://[::1', 'http://[zz]/', "
    "a NUL in it) escapes as ValueError (from urlsplit in AddressGuard.check_url) or httpx.InvalidURL",
    "replicate-predict-time": "Replicate's metrics.predict_time is trusted: NaN, Infinity, negative or huge values give a "
    "NaN/negative/huge charge (a NaN balance forever, credits minted by a negative charge) or decimal.InvalidOperation",
    "save-unencodable-name": "Image.save/Audio.save with a lone surrogate in the file name ('\\ud800.png') escapes as "
    "UnicodeEncodeError",
    "save-name-too-long": "Image.save/Audio.save with a file name over the file system's limit escapes as OSError "
    "(ENAMETOOLONG from Path.is_dir) instead of an InvalidRequestError",
    "save-bytes-path": "Image.save(b'x.png') escapes as TypeError from Path(path).suffix, before the check meant for it",
    "save-cmyk-as-png": "a valid CMYK JPEG (Image.from_bytes accepts it) saved as .png escapes as OSError "
    "('cannot write mode CMYK as PNG'): _encode is not converted nor wrapped",
}
KNOWN_BUGS: dict[str, str] = {}  # open bugs (ids of FOUND_BUGS, or new ones): none


def _open(*ids: str) -> bool:
    return any(bug in KNOWN_BUGS for bug in ids)


def _until_fixed(*ids: str) -> pytest.MarkDecorator:
    """The mark of a full-strength property that reaches these bugs: a strict xfail while any of them is open."""
    reason = "; ".join(f"{bug}: {KNOWN_BUGS[bug]}" for bug in ids if bug in KNOWN_BUGS)
    return pytest.mark.xfail(_open(*ids), strict=True, reason=f"library bug(s) open: {reason}")


# No example database (database=None below), and Hypothesis's caches outside the repository, not in ./.hypothesis.
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "genai-sdk-hypothesis")
QUICK = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SHORT = settings(QUICK, max_examples=25)

# -- shared helpers --------------------------------------------------------------------------------------------------


class CallerStop(Exception):
    """Raised by an ``on_progress`` callback to stop a call: the caller's own exception, passed through by design."""


def _png(size: tuple[int, int] = (8, 6), mode: str = "RGB") -> bytes:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.new(mode, size, "red" if mode == "RGB" else None).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _png()
JPEG = genai.Image.from_bytes(PNG).encode(".jpg")
WEBP = genai.Image.from_bytes(PNG).encode(".webp")


def _decodes(image: genai.Image) -> None:
    """An image of a result holds together: its bytes decode in full to the size it claims."""
    again = genai.Image.from_bytes(image.data)
    assert (again.width, again.height, again.media_type) == (image.width, image.height, image.media_type)
    assert image.to_pil().size == (image.width, image.height)


@dataclass
class Books:
    """What an account's ledger said before a call, to check what the call did to it."""

    client: Any
    balances: dict[str, Decimal] = field(default_factory=dict)
    lengths: dict[str, int] = field(default_factory=dict)

    ACCOUNTS = ("default", "alice")

    @classmethod
    def open(cls, client: Any) -> Books:
        books = cls(client)
        for account in cls.ACCOUNTS:
            books.balances[account] = client._pipeline.ledger.balance(account)
            books.lengths[account] = len(client._pipeline.ledger.history(account))
        return books

    def check(self, outcome: object, account: str | None) -> None:
        """Nothing stays reserved; a success is charged exactly once, its cost; a typed error is not charged (work a
        backend billed and the caller did not get may be recorded once, as "spent"); every account's balance moved by
        what its new history lines say."""
        ledger = self.client._pipeline.ledger
        for name in ledger.accounts():
            assert ledger.reserved(name) == 0, f"a reservation of {name!r} was left behind"
        used = account or "default"
        for name in self.ACCOUNTS:
            new = ledger.history(name)[self.lengths[name] :]
            moved = ledger.balance(name) - self.balances[name]
            assert moved == sum((e.credits for e in new), Decimal(0)), "the history does not add up to the balance"
            moving = [e for e in new if e.credits != 0]
            if name != used:
                assert moving == [], f"another account was charged: {moving}"
                continue
            spent = [e for e in moving if e.kind == "spent"]
            charges = [e for e in moving if e.kind != "spent"]
            assert len(spent) <= 1 and all(e.credits.is_finite() and e.credits < 0 for e in spent), spent
            if isinstance(outcome, genai.GenAIError):
                assert charges == [], f"charged for a failed call: {charges}"
            elif isinstance(outcome, CallerStop):
                assert len(charges) <= 1
            else:
                assert isinstance(outcome, genai.ImageResult), outcome
                cost = outcome.cost
                assert cost.credits.is_finite() and cost.credits >= 0, f"a cost of {cost.credits} credits"
                expected = [("charge", -cost.credits)] if cost.credits else []
                assert [(e.kind, e.credits) for e in charges] == expected, "not charged exactly once, its cost"


def _outcome(call: Callable[[], Any]) -> Any:
    """The result, or the typed error (or the caller's own CallerStop); anything else fails the test as raised."""
    try:
        return call()
    except (genai.GenAIError, CallerStop) as exc:
        return exc


async def _aoutcome(call: Callable[[], Any]) -> Any:
    try:
        return await call()
    except (genai.GenAIError, CallerStop) as exc:
        return exc


def _note(text: str) -> None:
    """A line of Hypothesis's statistics (pytest --hypothesis-show-statistics), when a property is running."""
    if currently_in_test_context():
        # Escaped: a refused file name may hold a lone surrogate, and Hypothesis's pytest plugin encodes these
        # statistics as UTF-8 (an INTERNALERROR of the whole run otherwise).
        event(text.encode("utf-8", "backslashreplace").decode("utf-8"))


def _check_images(outcome: object, n: object) -> None:
    _note(f"outcome: {type(outcome).__name__}")
    if isinstance(outcome, genai.ImageResult):
        assert isinstance(n, int) and 1 <= len(outcome.images) <= n
        for image in outcome.images:
            _decodes(image)
        assert all(isinstance(w, str) for w in outcome.warnings)


# -- 1. request parameters --------------------------------------------------------------------------------------------

SURROGATES = st.sampled_from(["\ud800", "\udfff", "\udc80", "\udbff"])
TEXT = st.text(max_size=30)
NASTY_TEXT = st.one_of(
    TEXT,
    st.builds(lambda a, s, b: a + s + b, TEXT, SURROGATES, TEXT),
    st.builds(lambda a, b: a + "\x00" + b, TEXT, TEXT),
    st.sampled_from(["", " ", "\n", "x" * 5000, "\u202e", "\ufeff", "é" * 3]),
)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    FLOATS,
    NASTY_TEXT,
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from([object(), Decimal("NaN"), Decimal("1e999"), 1j, (), frozenset(), Path("x"), len]),
)


def _or_junk(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(valid, JUNK)


MODELS = st.sampled_from(
    [
        *(
            "openai:dall-e-2",
            "openai:dall-e-3",
            "openai:gpt-image-1.5",
            "openai:gpt-image-1-mini",
            "openai:gpt-image-1",
        ),
        "replicate:black-forest-labs/flux-schnell",
        "replicate:stability-ai/sdxl:39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b",
        *("replicate:nobody/unknown-model", "replicate:Bad Name", "whisper:tiny.en", "piper:en_US-joe-medium"),
        *("diffusers:/no/such/folder", "nosuch:model", "openai:", ":dall-e-2", "openai", ""),
    ]
)
SIZES = st.one_of(
    st.sampled_from(["256x256", "512x512", "1024x1024", "1536x1024", "1024x1536", "1792x1024", "auto", "1024x576"]),
    st.builds(lambda w, h: f"{w}x{h}", st.integers(-5, 100_000), st.integers(-5, 100_000)),
    st.from_regex(r"\A[0-9x ]{0,12}\Z"),
)
QUALITIES = st.sampled_from(["standard", "hd", "low", "medium", "high", "auto", "ultra"])
WHOLE = st.one_of(st.integers(-3, 60), st.integers(min_value=-(2**80), max_value=2**80))
# Timeouts: valid ones kept short (the emulator answers in milliseconds), and every invalid kind.
TIMEOUTS = st.one_of(
    st.floats(0.001, 30), st.integers(1, 30), st.sampled_from([0, -1, -0.0, math.nan, math.inf, -math.inf])
)
HUGE_TIMEOUTS = st.floats(1e10, 1e308)
JSON_SAFE = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.floats(-1e6, 1e6), st.text(max_size=8))
# provider_options: the right shape with values JSON can carry, or the wrong shape altogether.
PROVIDER_OPTIONS = st.one_of(
    st.none(),
    st.just({}),
    st.dictionaries(
        st.sampled_from(["openai", "replicate", "diffusers", "other"]),
        st.dictionaries(
            st.sampled_from(["user", "background", "output_format", "seed", "go_fast", "colour", "response_format"]),
            JSON_SAFE,
            max_size=2,
        ),
        max_size=2,
    ),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2),
    st.just("openai"),
)
UNCARRIABLE = st.sampled_from([object(), b"\xff", math.nan, math.inf, {1, 2}, "\ud800"])
BAD_PROVIDER_OPTIONS = st.one_of(
    st.builds(
        lambda p, k, v: {p: {k: v}},
        st.sampled_from(["openai", "replicate"]),
        st.sampled_from(["user", "seed"]),
        UNCARRIABLE,
    ),
    st.builds(lambda p, k: {p: {k: "x"}}, st.sampled_from(["openai", "replicate"]), st.sampled_from([1, None, (1,)])),
)
PROGRESS_MODES = st.one_of(
    st.sampled_from([None, "record", "raise:started", "raise:generating", "raise:done", "raise:retrying", "raise:any"]),
    st.sampled_from([5, "print", [], object()]),
)


def _progress(mode: object, seen: list[genai.Progress]) -> object:
    if not (isinstance(mode, str) and (mode == "record" or mode.startswith("raise:"))):
        return mode
    stage = mode.partition(":")[2]

    def callback(progress: genai.Progress) -> None:
        assert isinstance(progress, genai.Progress)
        seen.append(progress)
        if stage in (progress.stage, "any"):
            raise CallerStop(progress.stage)

    return callback


GOOD_MODELS = st.sampled_from(
    [
        *("openai:dall-e-2", "openai:dall-e-3", "openai:gpt-image-1.5", "openai:gpt-image-1-mini"),
        "replicate:black-forest-labs/flux-schnell",
        "replicate:stability-ai/sdxl:39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b",
    ]
)
# Values a careful caller passes (still not always valid together: a size the model lacks, a quality it ignores).
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "n": st.integers(1, 4),
    "size": st.sampled_from(["256x256", "512x512", "1024x1024", "1536x1024", "1792x1024", "auto", "1024x576"]),
    "quality": QUALITIES,
    "style": st.sampled_from(["vivid", "natural"]),
    "seed": st.integers(0, 2**32),
    "negative_prompt": st.sampled_from(["", "blurry", "people"]),
    "steps": st.integers(1, 8),
    "guidance": st.floats(0, 10),
    "timeout": st.floats(5, 30),
    "model": GOOD_MODELS,
    "account": st.sampled_from(["default", "alice"]),
    "provider_options": st.sampled_from([None, {}, {"openai": {"user": "u1"}}, {"replicate": {"go_fast": False}}]),
    "on_progress": st.sampled_from([None, "record", "raise:started", "raise:generating", "raise:done"]),
}


def _wild(
    timeouts: st.SearchStrategy[Any], provider_options: st.SearchStrategy[Any]
) -> dict[str, st.SearchStrategy[Any]]:
    """Values of every kind for each keyword argument: valid, invalid, and of the wrong type."""
    return {
        "n": _or_junk(st.integers(-2, 12)),
        "size": _or_junk(SIZES),
        "quality": _or_junk(QUALITIES),
        "style": _or_junk(st.sampled_from(["vivid", "natural", "painterly"])),
        "seed": _or_junk(WHOLE),
        "negative_prompt": _or_junk(NASTY_TEXT),
        "steps": _or_junk(WHOLE),
        "guidance": _or_junk(FLOATS),
        "timeout": _or_junk(timeouts),
        "model": _or_junk(MODELS),
        "account": st.one_of(st.sampled_from(["default", "alice", "", "  "]), JUNK),
        "provider_options": st.one_of(provider_options, JUNK),
        "on_progress": PROGRESS_MODES,
    }


PROMPTS = st.one_of(st.sampled_from(["a cat", "an avocado couch", "a red fox in the snow"]), NASTY_TEXT, JUNK)


@st.composite
def _requests(
    draw: st.DrawFn,
    timeouts: st.SearchStrategy[Any] = TIMEOUTS,
    provider_options: st.SearchStrategy[Any] = PROVIDER_OPTIONS,
) -> tuple[object, dict[str, Any]]:
    """A prompt and keyword arguments: all plausible, plausible but for one wild value, or wild throughout (so that
    successes stay common enough to check, and every kind of mistake still turns up)."""
    wild = _wild(timeouts, provider_options)
    mode = draw(st.sampled_from(["plausible", "one wild", "wild"]))
    if mode == "wild":
        return draw(PROMPTS), draw(st.fixed_dictionaries({}, optional=wild))
    kwargs = draw(st.fixed_dictionaries({}, optional=PLAUSIBLE))
    prompt: object = draw(st.sampled_from(["a cat", "an avocado couch", "a red fox in the snow"]))
    if mode == "one wild":
        key = draw(st.sampled_from(["prompt", *sorted(wild)]))
        if key == "prompt":
            prompt = draw(PROMPTS)
        else:
            kwargs[key] = draw(wild[key])
    return prompt, kwargs


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """One emulator for the module; each test points the environment at it (see ``emulated``)."""
    with Emulator() as running:
        yield running


@pytest.fixture
def emulated(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    return emulator


def _account_of(kwargs: dict[str, Any]) -> str | None:
    account = kwargs.get("account")
    return account if isinstance(account, str) and account.strip() else None


def _run_request(prompt: object, kwargs: dict[str, Any]) -> None:
    """One call on a fresh client whose accounts hold credits: a decoded success or a typed error, books straight."""
    seen: list[genai.Progress] = []
    call = dict(kwargs, on_progress=_progress(kwargs["on_progress"], seen)) if "on_progress" in kwargs else kwargs
    with genai.Client(image="openai:dall-e-2", ledger="memory://", policy="off", max_retries=1) as client:
        fast(client)
        for account in Books.ACCOUNTS:
            client.credits.grant(10**6, account=account)
        books = Books.open(client)
        # Hypothesis draws the prompt and the settings, wrong types included on purpose: the call must refuse them.
        outcome = _outcome(lambda: client.images.generate(prompt, **call))  # type: ignore[arg-type]
        books.check(outcome, _account_of(kwargs))
        _check_images(outcome, kwargs.get("n", 1))
    if isinstance(outcome, genai.ImageResult) and kwargs.get("on_progress") == "record":
        assert seen[0].stage == "started" and seen[-1].stage == "done"


@SHORT
@given(request=_requests())
def test_any_request_is_a_decoded_success_or_a_typed_error(
    emulated: Emulator, request: tuple[object, dict[str, Any]]
) -> None:
    _run_request(*request)


@_until_fixed("provider-options-not-json", "provider-options-non-str-key", "huge-timeout")
@SHORT
@given(request=_requests(st.one_of(TIMEOUTS, HUGE_TIMEOUTS), st.one_of(PROVIDER_OPTIONS, BAD_PROVIDER_OPTIONS)))
@example(request=("a cat", {"size": "256x256", "provider_options": {"openai": {"user": object()}}}))
@example(request=("a cat", {"provider_options": {"openai": {1: "x"}}}))
@example(request=("a cat", {"size": "256x256", "timeout": 1e308}))
def test_any_request_full_strength(emulated: Emulator, request: tuple[object, dict[str, Any]]) -> None:
    _run_request(*request)


@SHORT
@given(request=_requests())
def test_any_async_request_is_a_decoded_success_or_a_typed_error(
    emulated: Emulator, request: tuple[object, dict[str, Any]]
) -> None:
    prompt, kwargs = request
    seen: list[genai.Progress] = []
    call = dict(kwargs, on_progress=_progress(kwargs["on_progress"], seen)) if "on_progress" in kwargs else kwargs

    async def run() -> object:
        async with genai.AsyncClient(
            image="openai:dall-e-2", ledger="memory://", policy="off", max_retries=1
        ) as client:
            fast(client)
            for account in Books.ACCOUNTS:
                await client.credits.grant(10**6, account=account)
            books = Books.open(client)
            # As above: the prompt and the settings are drawn by Hypothesis, wrong types included on purpose.
            outcome = await _aoutcome(lambda: client.images.generate(prompt, **call))  # type: ignore[arg-type]
            books.check(outcome, _account_of(kwargs))
            _check_images(outcome, kwargs.get("n", 1))
            return outcome

    if isinstance(asyncio.run(run()), genai.ImageResult) and kwargs.get("on_progress") == "record":
        assert seen[0].stage == "started" and seen[-1].stage == "done"


# -- 2. configuration ------------------------------------------------------------------------------------------------

CONFIG_MODELS = st.one_of(MODELS, st.lists(MODELS, max_size=3), NASTY_TEXT)
NUMBER_LIKE = st.one_of(
    st.integers(-5, 200),
    st.integers(min_value=-(2**70), max_value=2**70),
    FLOATS,
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        "3| 3 |0|-1|1e3|1e400|nan|NaN|inf|-inf|Infinity|none|None||0x10|١٢|3.5|1_000|sNaN|1e-400".split("|")
    ),
)


def _ledger_urls() -> st.SearchStrategy[Any]:
    # Never a PostgreSQL URL (no network here) nor a SQLite file outside the test's folder.
    names = st.text(alphabet=string.ascii_letters + string.digits + "._-/ ", min_size=1, max_size=20).filter(
        lambda s: ".." not in s and not s.startswith(("/", "~"))
    )
    return st.one_of(
        st.sampled_from(
            [
                "memory://",
                "MEMORY://",
                "memory:",
                "redis://alice:hunter2@cache:6379",
                "sqlite:",
                "sqlite:///",
                "sqlite:.",
                "sqlite:ledger.db?synchronous=normal",
                "sqlite:ledger.db?synchronous=sometimes",
                "nonsense",
                "",
            ]
        ),
        names.map(lambda s: f"sqlite:{s}"),
        st.text(max_size=20).filter(lambda s: not s.lower().startswith(("postgres", "sqlite"))),
    )


SETTING_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "image": _or_junk(CONFIG_MODELS),
    "video": _or_junk(CONFIG_MODELS),
    "speech_to_text": _or_junk(CONFIG_MODELS),
    "text_to_speech": _or_junk(CONFIG_MODELS),
    "ledger": st.one_of(_ledger_urls(), st.none(), st.integers(), st.binary(max_size=4)),
    "account": _or_junk(st.sampled_from(["default", "alice", "bob"])),
    "policy": _or_junk(st.sampled_from(["off", "standard", "strict", "monitor", "lenient", ".", "rules.toml"])),
    "policy_moderator": _or_junk(st.sampled_from(["openai:omni-moderation-latest", "off", "none", "x:y"])),
    "policy_moderator_outage": _or_junk(st.sampled_from(["warn", "refuse", "panic"])),
    "max_retries": _or_junk(NUMBER_LIKE),
    "timeout": _or_junk(NUMBER_LIKE),
    "reservation_ttl": _or_junk(NUMBER_LIKE),
    "credits_per_usd": _or_junk(NUMBER_LIKE),
    "local_usd_per_second": _or_junk(NUMBER_LIKE),
    "plan": _or_junk(st.sampled_from(["usd", "dalle", "free"])),
    "trusted_hosts": _or_junk(
        st.one_of(
            st.lists(
                st.sampled_from(["mirror.local", "*.corp.example", "10.0.0.0/8", "::1", "bad host", "*", ""]),
                max_size=3,
            ),
            st.sampled_from(["mirror.local, 10.1.2.3", "a b c", "", "*.", "256.1.1.1/33"]),
        )
    ),
}


def _check_settings(client: genai.Client) -> None:
    """What a client that was made holds: every setting coerced to its type and range."""
    s = client.settings
    assert isinstance(s.max_retries, int) and not isinstance(s.max_retries, bool) and 0 <= s.max_retries <= 100
    for seconds in (s.timeout, s.reservation_ttl):
        assert seconds is None or (isinstance(seconds, float) and math.isfinite(seconds) and seconds > 0)
    assert isinstance(s.credits_per_usd, Decimal) and s.credits_per_usd.is_finite() and 0 < s.credits_per_usd <= 10**9
    assert s.local_usd_per_second is None or (s.local_usd_per_second.is_finite() and s.local_usd_per_second >= 0)
    assert s.policy_moderator_outage in ("warn", "refuse") and s.plan in ("usd", "dalle")
    for name in ("image", "video", "ledger", "policy_moderator"):
        assert getattr(s, name) is None or isinstance(getattr(s, name), str)
    for name in ("speech_to_text", "text_to_speech", "account", "policy"):
        assert isinstance(getattr(s, name), str)
    assert isinstance(repr(client), str) and isinstance(repr(s), str)


def _use(make: Callable[[], genai.Client]) -> None:
    """Make a client, look at its settings, price a call (nothing is sent), read a balance, close it."""
    try:
        client = make()
    except genai.ConfigError as exc:
        _note(f"config: ConfigError {str(exc).split(':')[0][:30]}")
        return
    _note("config: a client")
    try:
        _check_settings(client)
        for call in (lambda: client.images.estimate("a cat"), lambda: client.credits.balance()):
            try:
                value = call()
            except genai.GenAIError:
                continue
            assert isinstance(value, genai.Cost | Decimal)
    finally:
        client.close()


@QUICK
@given(values=st.fixed_dictionaries({}, optional={k: SETTING_VALUES.get(k, JUNK) for k in KEYS}))
def test_any_keyword_settings_make_a_client_or_a_config_error(values: dict[str, Any]) -> None:
    _use(lambda: genai.Client(**values))


def _as_text(value: Any) -> str:
    """A setting's value as an environment variable holds it (lists comma-separated), without the NUL characters and
    lone surrogates an environment cannot hold."""
    text = ",".join(map(str, value)) if isinstance(value, list | tuple) else "" if value is None else str(value)
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _tomlable(value: Any) -> Any:
    """A value TOML can write: lists and tables kept, numbers in range, anything else as its text."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")  # a file in UTF-8 cannot hold a lone surrogate
    if isinstance(value, bool | float) or (isinstance(value, int) and -(2**63) <= value < 2**63):
        return value
    if isinstance(value, list | tuple | frozenset):
        return [_tomlable(v) for v in value if v is not None]
    if isinstance(value, dict):
        return {_tomlable(str(k)): _tomlable(v) for k, v in value.items() if v is not None}
    return _as_text(value)


@st.composite
def _setting_tables(draw: st.DrawFn, allow_unknown: bool = True) -> dict[str, Any]:
    """Settings as a file or the environment holds them: known keys with values of every kind, now and then a key the
    SDK does not know."""
    keys = draw(st.lists(st.sampled_from(KEYS), max_size=5, unique=True))
    table = {key: draw(SETTING_VALUES.get(key, JUNK)) for key in keys}
    if allow_unknown and draw(st.integers(0, 5)) == 0:
        table[draw(st.text(max_size=6))] = draw(JUNK)
    if isinstance(table.get("ledger"), str) and table["ledger"].lower().startswith(("postgres", "sqlite")):
        table["ledger"] = "memory://"  # no PostgreSQL server is reachable, and SQLite files stay in the test's folder
    return {k: v for k, v in table.items() if v is not None}


@QUICK
@given(
    values=_setting_tables(allow_unknown=False),
    extra=st.one_of(
        st.just({}), st.just({}), st.dictionaries(st.sampled_from(["CONFIG", "PROFILE"]), TEXT, max_size=1)
    ),
)
def test_any_environment_makes_a_client_or_a_config_error(values: dict[str, Any], extra: dict[str, str]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in values.items():
            patch.setenv(f"GENAI_{key.upper()}", _as_text(value))
        for key, value in extra.items():
            patch.setenv(f"GENAI_{key}", _as_text(value))
        if "ledger" not in values:
            patch.setenv("GENAI_LEDGER", "memory://")
        _use(genai.Client)


def _toml_key(key: str) -> str:
    return (
        key
        if key and all(c in string.ascii_letters + string.digits + "_-" for c in key)
        else json.dumps(key, ensure_ascii=False)
    )


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def _toml(document: dict[str, Any], profiles: dict[str, dict[str, Any]]) -> str:
    lines = [f"{_toml_key(_tomlable(k))} = {_toml_value(_tomlable(v))}" for k, v in document.items()]
    for name, table in profiles.items():
        lines.append(f"[profiles.{_toml_key(name)}]")
        lines.extend(f"{_toml_key(_tomlable(k))} = {_toml_value(_tomlable(v))}" for k, v in table.items())
    return "\n".join(lines) + "\n"


@QUICK
@given(
    document=_setting_tables(),
    profiles=st.dictionaries(st.sampled_from(["prod", "dev", "x y"]), _setting_tables(), max_size=2),
    profile=st.one_of(st.none(), st.sampled_from(["prod", "dev", "x y", "missing", ""])),
    where=st.sampled_from(["config", "cwd", "env"]),
)
def test_any_toml_document_makes_a_client_or_a_config_error(
    tmp_path: Path, document: dict[str, Any], profiles: dict[str, Any], profile: str | None, where: str
) -> None:
    path = tmp_path / "genai.toml"
    path.write_text(_toml(document, profiles), encoding="utf-8")
    _load(path, profile, where)


@QUICK
@given(
    content=st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.builds(
            lambda k, v: f"{k} = {v}\n".encode("utf-8", "surrogatepass"), st.sampled_from(KEYS), st.text(max_size=30)
        ),
        st.sampled_from(
            [
                b"[profiles]\nprod = 3\n",
                b"profiles = []\n",
                b"[profiles.prod]\n[profiles.prod.x]\n",
                b"timeout = 1e400\n",
                b"a = " + b"[" * 2000 + b"]" * 2000 + b"\n",
                b"\xef\xbb\xbftimeout = 3\n",
                b"timeout = 3\x00\n",
            ]
        ),
    ),
    profile=st.one_of(st.none(), st.sampled_from(["prod", "missing"])),
    where=st.sampled_from(["config", "cwd", "env"]),
)
def test_any_bytes_as_genai_toml_make_a_client_or_a_config_error(
    tmp_path: Path, content: bytes, profile: str | None, where: str
) -> None:
    path = tmp_path / "genai.toml"
    path.write_bytes(content)
    _load(path, profile, where)


def _load(path: Path, profile: str | None, where: str) -> None:
    """Load a genai.toml each way the SDK finds one: config=, the working folder, GENAI_CONFIG."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(path.parent)
        patch.setenv("GENAI_LEDGER", "memory://")  # whatever the file says, the environment wins over it
        if where == "config":
            _use(lambda: genai.Client(config=path, profile=profile))
        elif where == "env":
            patch.setenv("GENAI_CONFIG", str(path))
            if profile is not None:
                patch.setenv("GENAI_PROFILE", profile)
            _use(genai.Client)
        else:
            _use(lambda: genai.Client(profile=profile))


# -- 3. garbage answers ---------------------------------------------------------------------------------------------

CALL_TIMEOUT = 1.5  # seconds a call may take, retries included
SLACK = 2.0  # what the hang bound allows past it
STALL = CALL_TIMEOUT + 1.0  # an answer held back this long outlives the call
DRIP_FOR = CALL_TIMEOUT + SLACK + 0.5  # a trickled answer trickles this long at most, then comes in full


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    delay: float = 0.0  # seconds before the answer
    cut: bool = False  # Content-Length promises more than is sent, then the connection closes
    drip: float = 0.0  # seconds between bytes: the body trickles

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 60 else self.body[:60] + b"...(%d bytes)" % len(self.body)
        extra = "".join(f", {k}={getattr(self, k)!r}" for k in ("delay", "cut", "drip") if getattr(self, k))
        return f"Answer({self.status}, {dict(self.headers)!r}, {body!r}{extra})"


NOT_FOUND = Answer(404, (("Content-Type", "application/json"),), b'{"detail": "not found"}')


class GarbageServer:
    """HTTP on loopback that answers each request with the next scripted answer (then 404s); ``/blob/K`` paths serve
    the blob K whenever asked, for image URLs that point back here."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: deque[Answer] = deque()
        self._blobs: dict[str, Answer] = {}
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _answer(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    if length:
                        self.rfile.read(min(length, 50_000_000))
                    answer = server.take(self.path)
                    if answer.delay and server.stopping.wait(answer.delay):
                        return
                    self.send_response(answer.status)
                    for name, value in answer.headers:
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body) + (100 if answer.cut else 0)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    body, stop = answer.body, time.monotonic() + DRIP_FOR
                    while answer.drip and len(body) > 1 and time.monotonic() < stop:
                        self.wfile.write(body[:1])
                        self.wfile.flush()
                        body = body[1:]
                        if server.stopping.wait(answer.drip):
                            return
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up: a timeout, a closed connection

            do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def load(self, answers: list[Answer], blobs: dict[str, Answer] | None = None) -> None:
        with self._lock:
            self._script = deque(answers)
            self._blobs = dict(blobs or {})

    def take(self, path: str) -> Answer:
        with self._lock:
            if path.startswith("/blob/"):
                return self._blobs.get(path[len("/blob/") :], NOT_FOUND)
            return self._script.popleft() if self._script else NOT_FOUND

    def start(self) -> GarbageServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture(scope="module")
def garbage_server() -> Iterator[GarbageServer]:
    server = GarbageServer().start()
    yield server
    server.stop()


@pytest.fixture
def garbage(garbage_server: GarbageServer, monkeypatch: pytest.MonkeyPatch) -> GarbageServer:
    monkeypatch.setenv("OPENAI_BASE_URL", garbage_server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-garbage-0000000000000000")
    monkeypatch.setenv("REPLICATE_BASE_URL", garbage_server.url)
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_garbage0000000000")
    return garbage_server


# Keys a body's meaning hangs on: random JSON leaves them out in the "right shape" properties, so that a random body
# is garbage as a whole; the full-strength properties put them anywhere, with any JSON type.
MEANINGFUL = tuple(
    "data b64_json url id status output metrics predict_time latest_version openapi_schema components schemas Input "
    "properties required enum maximum allOf error logs urls quality size current_release".split()
)
HEADER_TEXT = st.text(alphabet=string.ascii_letters + string.digits + " .,;:=/-_", max_size=16)
HEADER_NAMES = "Content-Type Retry-After retry-after-ms x-should-retry x-request-id X-Junk Content-Encoding".split()
HEADER_VALUES = ["0", "1", "-1", "nan", "1e400", "true", "false", "application/json", "text/html", "gzip", "0.01"]
HEADERS = st.lists(
    st.tuples(
        st.sampled_from(HEADER_NAMES),
        st.one_of(HEADER_TEXT, st.sampled_from([*HEADER_VALUES, "Wed, 21 Oct 2015 07:28:00 GMT"])),
    ),
    max_size=3,
).map(tuple)
JSON_HEADERS = st.one_of(st.just((("Content-Type", "application/json"),)), HEADERS)
STATUSES = st.sampled_from([200, 201, 400, 404, 429, 500, 503])
OK_STATUSES = st.sampled_from([200, 200, 200, 201])
# Delays: nearly always none; now and then an answer held back past the call's timeout.
DELAYS = st.sampled_from([0.0] * 40 + [0.01, STALL] + [0.0] * 40)
CUTS = st.sampled_from([False] * 10 + [True])


def _json_values(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), FLOATS, st.text(max_size=12))
    return st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3), max_leaves=10
    )


MEANINGLESS_JSON = _json_values(st.text(max_size=8).filter(lambda k: k not in MEANINGFUL))
ANY_JSON = _json_values(st.one_of(st.sampled_from(MEANINGFUL), st.text(max_size=8)))


DEEP_JSON = b"[" * 100_000 + b"]" * 100_000  # valid JSON, nested past any recursion limit


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()  # NaN and Infinity go out as JSON's non-standard tokens, as some servers send


BROKEN_IMAGES = [PNG[: len(PNG) // 2], PNG[:33] + bytes(range(256)), bomb_png(), b"\x89PNG\r\n\x1a\n" + bytes(30)]
IMAGE_BYTES = st.one_of(
    st.sampled_from([PNG, JPEG, WEBP, *BROKEN_IMAGES, b"", b"<html>nope</html>"]), st.binary(max_size=64)
)


def _blob_answers() -> st.SearchStrategy[dict[str, Answer]]:
    """What /blob/0 .. /blob/2 serve: images, broken images, errors; sometimes late."""
    blob = st.builds(Answer, st.one_of(OK_STATUSES, STATUSES), HEADERS, IMAGE_BYTES, DELAYS)
    return st.fixed_dictionaries({"0": blob, "1": blob, "2": blob})


def _urls(server: GarbageServer) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(["0", "1", "2", "404"]).map(lambda k: f"{server.url}/blob/{k}"),
        st.sampled_from(["http://127.0.0.1:1/refused", "ftp://127.0.0.1/x", "", "/relative", "nonsense"]),
        IMAGE_BYTES.map(lambda b: "data:image/png;base64," + base64.b64encode(b).decode()),
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _openai_body(server: GarbageServer) -> st.SearchStrategy[bytes]:
    """Images answers of the documented shape (fields of the documented JSON types), with garbage values."""
    item = st.fixed_dictionaries(
        {},
        optional={
            "b64_json": st.one_of(IMAGE_BYTES.map(_b64), st.text(max_size=16), st.none()),
            "url": st.one_of(_urls(server), st.none()),
            "revised_prompt": st.text(max_size=8),
        },
    )
    document = st.fixed_dictionaries(
        {"data": st.lists(item, max_size=3)},
        optional={
            "created": st.integers(),
            "quality": st.text(max_size=8),
            "size": st.text(max_size=12),
            "usage": MEANINGLESS_JSON,
            "output_format": st.text(max_size=5),
        },
    )
    return st.one_of(
        document.map(_dumps),
        MEANINGLESS_JSON.map(_dumps),
        st.binary(max_size=64),
        st.sampled_from([b"", b"<html><body>Welcome to the Wi-Fi</body></html>", b'{"data": [', b"null", b"[]"]),
        st.builds(
            lambda code: _dumps({"error": {"message": "no", "type": code, "code": code}}),
            st.sampled_from(["content_policy_violation", "moderation_blocked", "insufficient_quota", "x"]),
        ),
    )


def _openai_answers(server: GarbageServer, bodies: st.SearchStrategy[bytes]) -> st.SearchStrategy[list[Answer]]:
    answer = st.builds(Answer, STATUSES, JSON_HEADERS, bodies, DELAYS, CUTS)
    return st.lists(answer, min_size=1, max_size=3)


@dataclass
class GarbageRun:
    model: str
    answers: list[Answer]
    blobs: dict[str, Answer]
    use_async: bool
    n: int = 1
    size: str | None = None


def _run_garbage(server: GarbageServer, run: GarbageRun) -> None:
    """One call against the scripted answers: a typed error or a decoded success, in time, with the books straight."""
    run = _fill(run, server)
    server.load(run.answers, run.blobs)

    def check(client: Any, books: Books, outcome: object, elapsed: float) -> None:
        assert elapsed <= CALL_TIMEOUT + SLACK, f"the call took {elapsed:.1f} s with timeout={CALL_TIMEOUT}"
        books.check(outcome, None)
        _check_images(outcome, run.n)

    kwargs: ImageOptions = {"model": run.model, "n": run.n, "timeout": CALL_TIMEOUT}
    if run.size is not None:
        kwargs["size"] = run.size
    if run.use_async:

        async def main() -> None:
            async with genai.AsyncClient(ledger="memory://", policy="off", max_retries=1) as client:
                fast(client)
                await client.credits.grant(10**6)
                books = Books.open(client)
                started = time.monotonic()
                outcome = await _aoutcome(lambda: client.images.generate("a cat", **kwargs))
                check(client, books, outcome, time.monotonic() - started)

        asyncio.run(main())
        return
    client = fast(genai.Client(ledger="memory://", policy="off", max_retries=1))
    try:
        client.credits.grant(10**6)
        books = Books.open(client)
        started = time.monotonic()
        outcome = _outcome(lambda: client.images.generate("a cat", **kwargs))
        check(client, books, outcome, time.monotonic() - started)
    finally:
        client.close()


OPENAI_MODELS = st.sampled_from(["openai:dall-e-2", "openai:gpt-image-1.5"])


GOOD_IMAGES = st.sampled_from([PNG, JPEG, WEBP])
GOOD_BLOBS = st.fixed_dictionaries(
    {k: st.builds(lambda b: Answer(200, (("Content-Type", "image/png"),), b), GOOD_IMAGES) for k in ("0", "1", "2")}
)


def _good_openai(server: GarbageServer, n: int) -> st.SearchStrategy[Answer]:
    """An images answer as the API documents it: n images, inline or as URLs to good files."""
    item = st.one_of(
        GOOD_IMAGES.map(lambda b: {"b64_json": _b64(b)}),
        st.sampled_from(["0", "1", "2"]).map(lambda k: {"url": f"{server.url}/blob/{k}"}),
    )
    extra = st.fixed_dictionaries({}, optional={"created": st.integers(0, 2**31), "usage": MEANINGLESS_JSON})
    return st.builds(lambda items, more: _ok({"data": items, **more}), st.lists(item, min_size=n, max_size=n), extra)


@st.composite
def _spoiled(draw: st.DrawFn, run: GarbageRun, bodies: st.SearchStrategy[bytes]) -> GarbageRun:
    """A good run with one thing wrong: a status, a body, a header, a late or cut-off answer, in one answer or file."""
    answers, blobs = list(run.answers), dict(run.blobs)
    key = draw(st.sampled_from([*range(len(answers)), "0", "1", "2"]))
    answer = answers[key] if isinstance(key, int) else blobs[key]
    how = draw(st.sampled_from(["status", "body", "body", "headers", "stall", "cut", "late"]))
    if how == "status":
        answer = Answer(draw(STATUSES), answer.headers, answer.body)
    elif how == "body":
        answer = Answer(answer.status, answer.headers, draw(bodies if isinstance(key, int) else IMAGE_BYTES))
    elif how == "headers":
        answer = Answer(answer.status, draw(HEADERS), answer.body)
    else:
        answer = Answer(
            answer.status,
            answer.headers,
            answer.body,
            delay=STALL if how == "stall" else 0.01 * (how == "late"),
            cut=how == "cut",
        )
    if isinstance(key, int):
        answers[key] = answer
    else:
        blobs[key] = answer
    return GarbageRun(run.model, answers, blobs, run.use_async, run.n, run.size)


@st.composite
def _openai_runs(draw: st.DrawFn, server: GarbageServer, full: bool) -> GarbageRun:
    """A call's answers: good, good but for one thing, or garbage throughout."""
    bodies = _openai_body(server)
    if full:
        wrong_types = _openai_items_of_any_type(server)
        bodies = st.one_of(wrong_types, wrong_types, bodies, ANY_JSON.map(_dumps), st.just(DEEP_JSON))
    model, n, use_async = draw(OPENAI_MODELS), draw(st.integers(1, 3)), draw(st.booleans())
    mode = draw(st.sampled_from(["good", "one bad", "garbage"]))
    if mode == "garbage":
        return GarbageRun(model, draw(_openai_answers(server, bodies)), draw(_blob_answers()), use_async, n)
    run = GarbageRun(model, [draw(_good_openai(server, n))], draw(GOOD_BLOBS), use_async, n)
    return run if mode == "good" else draw(_spoiled(run, bodies))


def _openai_items_of_any_type(server: GarbageServer) -> st.SearchStrategy[bytes]:
    field_values = st.one_of(ANY_JSON, _urls(server), st.sampled_from(["http://[::1", "http://127.0.0.1/\x00"]))
    item = st.one_of(ANY_JSON, st.fixed_dictionaries({}, optional={"b64_json": field_values, "url": field_values}))
    return st.one_of(st.fixed_dictionaries({"data": st.one_of(ANY_JSON, st.lists(item, max_size=3))}).map(_dumps))


SERVER_URL_PLACEHOLDER = "http://127.0.0.1:9/"  # explicit examples are written before the server exists


def _fill(run: GarbageRun, server: GarbageServer) -> GarbageRun:
    def fix(answer: Answer) -> Answer:
        return Answer(
            answer.status,
            answer.headers,
            answer.body.replace(SERVER_URL_PLACEHOLDER.encode(), f"{server.url}/".encode()),
            answer.delay,
            answer.cut,
            answer.drip,
        )

    return GarbageRun(
        run.model,
        [fix(a) for a in run.answers],
        {k: fix(v) for k, v in run.blobs.items()},
        run.use_async,
        run.n,
        run.size,
    )


def _ok(body: Any, status: int = 200) -> Answer:
    return Answer(status, (("Content-Type", "application/json"),), body if isinstance(body, bytes) else _dumps(body))


@SHORT
@given(data=st.data())
def test_openai_answers_of_the_right_shape_with_garbage_values(garbage: GarbageServer, data: st.DataObject) -> None:
    _run_garbage(garbage, data.draw(_openai_runs(garbage, full=False)))


OPENAI_BUG_EXAMPLES: dict[str, list[GarbageRun]] = {
    "openai-answer-types": [
        GarbageRun("openai:dall-e-2", [_ok({"data": 5})], {}, False),
        GarbageRun("openai:dall-e-2", [_ok({"data": [5]})], {}, False),
        GarbageRun("openai:gpt-image-1.5", [_ok({"data": [{"b64_json": 5}]})], {}, False),
        GarbageRun("openai:gpt-image-1.5", [_ok({"data": [{"url": 5}]})], {}, True),
    ],
    "openai-bad-url": [
        GarbageRun("openai:gpt-image-1.5", [_ok({"data": [{"url": "http://127.0.0.1/\x00"}]})], {}, False)
    ],
    "deep-json": [GarbageRun("openai:dall-e-2", [_ok(DEEP_JSON)], {}, True)],
}


@_until_fixed(*OPENAI_BUG_EXAMPLES)
@SHORT
@given(data=st.data())
def test_openai_answers_of_any_shape(garbage: GarbageServer, data: st.DataObject) -> None:
    for runs in OPENAI_BUG_EXAMPLES.values():  # explicit examples first, so that an open bug fails every run
        for run in runs:
            _run_garbage(garbage, run)
    _run_garbage(garbage, data.draw(_openai_runs(garbage, full=True)))


# Replicate: the schema (GET /v1/models/...), the create (POST), polls (GET /v1/predictions/ID), then the outputs.

REPLICATE_MODELS = st.sampled_from(["replicate:black-forest-labs/flux-schnell", "replicate:garbage/model"])
RATIOS = ["1:1", "16:9", "9:16", "4:3", "3:4", "21:9"]


def _schema_document(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "latest_version": {
            "id": "v1",
            "openapi_schema": {
                "components": {
                    "schemas": {"Input": {"type": "object", "required": ["prompt"], "properties": properties}}
                }
            },
        }
    }


SCHEMA_PROPERTIES = st.fixed_dictionaries(
    {"prompt": st.just({"type": "string"})},
    optional={
        "num_outputs": st.builds(lambda m: {"type": "integer", "maximum": m}, st.integers(1, 4)),
        "aspect_ratio": st.builds(
            lambda e: {"type": "string", "enum": e}, st.lists(st.sampled_from(RATIOS), min_size=1, max_size=3)
        ),
        "megapixels": st.just({"type": "string", "enum": ["1", "0.25"]}),
        "seed": st.just({"type": "integer"}),
        "width": st.just({"type": "integer"}),
        "height": st.just({"type": "integer"}),
    },
)
PREDICTION_STATUSES = st.sampled_from(
    ["succeeded", "succeeded", "failed", "canceled", "aborted", "starting", "processing", "??"]
)


def _prediction(server: GarbageServer) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"id": st.sampled_from(["p1", "p2", "x y", "ü"]), "status": PREDICTION_STATUSES},
        optional={
            "output": st.one_of(
                st.lists(_urls(server), max_size=3),
                _urls(server),
                st.dictionaries(st.text(max_size=4), _urls(server), max_size=2),
                st.none(),
            ),
            "error": st.one_of(
                st.none(), st.text(max_size=20), st.sampled_from(["NSFW content detected", "E1001 out of memory"])
            ),
            "logs": st.one_of(st.text(max_size=20), st.sampled_from(["50%|", "100%|", "999%|"])),
            "metrics": st.builds(lambda t: {"predict_time": t}, st.floats(0, 1000)),
        },
    )


def _replicate_answers(server: GarbageServer, full: bool) -> st.SearchStrategy[list[Answer]]:
    garbage_body = MEANINGLESS_JSON.map(_dumps) | st.binary(max_size=40) | st.just(b"<html>proxy</html>")
    if full:
        garbage_body = garbage_body | ANY_JSON.map(_dumps) | st.just(DEEP_JSON)
    schema_body = st.one_of(SCHEMA_PROPERTIES.map(_schema_document).map(_dumps), garbage_body)
    if full:
        schema_body = schema_body | _schemas_of_any_type()
    prediction_body = st.one_of(_prediction(server).map(_dumps), garbage_body)
    if full:
        prediction_body = prediction_body | _predictions_of_any_type(server)
    likely = st.one_of(OK_STATUSES, OK_STATUSES, STATUSES)
    schema = st.builds(Answer, likely, JSON_HEADERS, schema_body, DELAYS)
    prediction = st.builds(Answer, likely, JSON_HEADERS, prediction_body, DELAYS)
    return st.builds(lambda s, p, polls: [s, p, *polls], schema, prediction, st.lists(prediction, max_size=2))


def _schemas_of_any_type() -> st.SearchStrategy[bytes]:
    spec = st.one_of(
        ANY_JSON,
        st.builds(lambda e: {"enum": e}, st.lists(st.sampled_from(["1:0", "a:b", "0:0", ":", "1:1"]))),
        st.sampled_from([{"maximum": math.inf}, {"maximum": math.nan}, {"allOf": 5}, {"allOf": [5]}]),
    )
    properties = st.one_of(
        ANY_JSON, st.dictionaries(st.sampled_from(["prompt", "num_outputs", "aspect_ratio", "megapixels"]), spec)
    )
    entry = st.fixed_dictionaries({}, optional={"properties": properties, "required": ANY_JSON})
    document = st.one_of(
        ANY_JSON,
        st.fixed_dictionaries(
            {
                "components": st.one_of(
                    ANY_JSON,
                    st.fixed_dictionaries(
                        {"schemas": st.one_of(ANY_JSON, st.fixed_dictionaries({"Input": st.one_of(ANY_JSON, entry)}))}
                    ),
                )
            }
        ),
    )
    return st.fixed_dictionaries(
        {"latest_version": st.one_of(ANY_JSON, st.fixed_dictionaries({"openapi_schema": document}))}
    ).map(_dumps)


def _predictions_of_any_type(server: GarbageServer) -> st.SearchStrategy[bytes]:
    bad_urls = st.sampled_from(["http://[::1", "http://127.0.0.1/\x00", "http://\u00e9\u00e9/x"])
    return st.fixed_dictionaries(
        {"id": st.text(min_size=1, max_size=3), "status": PREDICTION_STATUSES},
        optional={
            "output": st.one_of(ANY_JSON, bad_urls, st.lists(bad_urls, max_size=2)),
            "error": ANY_JSON,
            "logs": ANY_JSON,
            "metrics": st.one_of(ANY_JSON, st.builds(lambda t: {"predict_time": t}, st.one_of(FLOATS, st.integers()))),
        },
    ).map(_dumps)


def _good_replicate(server: GarbageServer, n: int) -> st.SearchStrategy[list[Answer]]:
    """The schema, then predictions that make n images (one each), each created finished or after a poll."""
    schema = SCHEMA_PROPERTIES.map(lambda properties: _ok(_schema_document(properties)))

    def prediction(index: int, status: str, k: str) -> dict[str, Any]:
        return {
            "id": f"p{index}",
            "status": status,
            "output": [f"{server.url}/blob/{k}"],
            "metrics": {"predict_time": 0.5},
        }

    def answers(schema_answer: Answer, polled: list[bool], blobs: list[str]) -> list[Answer]:
        out = [schema_answer]
        for index, (poll, k) in enumerate(zip(polled, blobs, strict=True)):
            if poll:
                out += [_ok(prediction(index, "starting", k), 201), _ok(prediction(index, "succeeded", k))]
            else:
                out.append(_ok(prediction(index, "succeeded", k), 201))
        return out

    blob_keys = st.lists(st.sampled_from(["0", "1", "2"]), min_size=n, max_size=n)
    return st.builds(
        answers, schema, st.lists(st.sampled_from([False, False, True]), min_size=n, max_size=n), blob_keys
    )


@st.composite
def _replicate_runs(draw: st.DrawFn, server: GarbageServer, full: bool) -> GarbageRun:
    """A call's answers: good, good but for one thing, or garbage throughout."""
    model, n, use_async = draw(REPLICATE_MODELS), draw(st.integers(1, 2)), draw(st.booleans())
    size = draw(st.sampled_from([None, "512x512", "1024x576"]))
    mode = draw(st.sampled_from(["good", "one bad", "one bad", "garbage", "garbage"]))
    if mode == "garbage":
        return GarbageRun(model, draw(_replicate_answers(server, full)), draw(_blob_answers()), use_async, n, size)
    run = GarbageRun(model, draw(_good_replicate(server, n)), draw(GOOD_BLOBS), use_async, n, size)
    bodies = st.one_of(MEANINGLESS_JSON.map(_dumps), st.binary(max_size=40), _prediction(server).map(_dumps))
    if full:
        bodies = bodies | _schemas_of_any_type() | _predictions_of_any_type(server)
    return run if mode == "good" else draw(_spoiled(run, bodies))


@SHORT
@given(data=st.data())
def test_replicate_answers_of_the_right_shape_with_garbage_values(garbage: GarbageServer, data: st.DataObject) -> None:
    _run_garbage(garbage, data.draw(_replicate_runs(garbage, full=False)))


FLUX_SCHEMA = _ok(_schema_document({"prompt": {"type": "string"}}))


def _replicate_example(*answers: Answer, size: str | None = None, use_async: bool = False) -> GarbageRun:
    return GarbageRun("replicate:garbage/model", list(answers), {"0": Answer(body=PNG)}, use_async, size=size)


def _made(**fields: Any) -> Answer:
    """A finished prediction (of a create) whose output is /blob/0."""
    return _ok({"id": "p", "status": "succeeded", "output": [SERVER_URL_PLACEHOLDER + "blob/0"], **fields}, 201)


REPLICATE_BUG_EXAMPLES: dict[str, list[GarbageRun]] = {
    "replicate-schema-types": [
        _replicate_example(_ok({"latest_version": {"openapi_schema": {"components": []}}})),
        _replicate_example(_ok(_schema_document([1]))),  # type: ignore[arg-type]  # a list where the schema holds a dict, on purpose
    ],
    "replicate-schema-values": [
        _replicate_example(_ok(_schema_document({"prompt": {}, "aspect_ratio": {"enum": ["1:0"]}})), size="512x512")
    ],
    "replicate-bad-output-url": [_replicate_example(FLUX_SCHEMA, _made(output=["http://[::1"]))],
    "replicate-predict-time": [
        _replicate_example(FLUX_SCHEMA, _made(metrics={"predict_time": math.nan})),
        _replicate_example(FLUX_SCHEMA, _made(metrics={"predict_time": -1e6}), use_async=True),
    ],
    "deep-json": [_replicate_example(Answer(422, (("Content-Type", "application/json"),), DEEP_JSON))],
}


@_until_fixed(*REPLICATE_BUG_EXAMPLES)
@SHORT
@given(data=st.data())
def test_replicate_answers_of_any_shape(garbage: GarbageServer, data: st.DataObject) -> None:
    for runs in REPLICATE_BUG_EXAMPLES.values():
        for run in runs:
            _run_garbage(garbage, run)
    _run_garbage(garbage, data.draw(_replicate_runs(garbage, full=True)))


@pytest.mark.parametrize(
    ("model", "use_async"), [("openai:dall-e-2", False), ("replicate:black-forest-labs/flux-schnell", True)]
)
def test_an_answer_that_never_comes_ends_with_the_timeout(garbage: GarbageServer, model: str, use_async: bool) -> None:
    """The hang bound, deterministically: every answer is held back longer than the call may take."""
    stall = Answer(200, (("Content-Type", "application/json"),), b"{}", delay=STALL)
    _run_garbage(garbage, GarbageRun(model, [stall] * 6, {}, use_async))


@pytest.mark.parametrize("model", ["openai:dall-e-2", "replicate:black-forest-labs/flux-schnell"])
def test_an_answer_trickled_byte_by_byte_ends_with_the_timeout(garbage: GarbageServer, model: str) -> None:
    """A server that sends a byte now and then keeps each read alive: the call's timeout must bound them together."""
    body = _dumps({"data": [{"b64_json": _b64(PNG)}]}) if model.startswith("openai") else FLUX_SCHEMA.body
    drip = Answer(200, (("Content-Type", "application/json"),), body[:40] + b" " * 200 + body[40:], drip=0.1)
    _run_garbage(garbage, GarbageRun(model, [drip], {}, False))


# -- 4. files ---------------------------------------------------------------------------------------------------------


def _wav(frames: int = 800, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(bytes(2 * frames))
    return buffer.getvalue()


def _cmyk_jpeg() -> bytes:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.new("CMYK", (4, 4)).save(buffer, format="JPEG")
    return buffer.getvalue()


MEDIA: dict[str, Callable[[], genai.Image | genai.Audio]] = {
    "png": lambda: genai.Image.from_bytes(PNG, {"model": "openai:dall-e-2", "seed": "3"}),
    "rgba": lambda: genai.Image.from_bytes(_png((5, 5), "RGBA")),
    "palette": lambda: genai.Image.from_bytes(_png((3, 7), "P")),
    "jpeg": lambda: genai.Image.from_bytes(JPEG),
    "webp": lambda: genai.Image.from_bytes(WEBP),
    "wav": lambda: genai.Audio.from_bytes(_wav(), provenance={"model": "piper:x"}),
    "mp3": lambda: genai.Audio(b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(64), "audio/mpeg"),
}
BUGGY_MEDIA: dict[str, Callable[[], genai.Image | genai.Audio]] = {"cmyk": lambda: genai.Image.from_bytes(_cmyk_jpeg())}  # valid images the save-cmyk-as-png bug trips on
NAME_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=20)
EXTENSIONS = st.sampled_from(
    ".png .jpg .jpeg .webp .PNG .Jpg .wav .WAV .mp3 .gif .txt .tmp . .png.tmp .png/".split() + [""]
)
FOLDERS = st.sampled_from(["", "", "", "existing/", "missing/", "missing/deeper/", "a_file/", "./", "existing//"])


FITTING = {"wav": [".wav", ".WAV"], "mp3": [".mp3"]}  # the images: .png, .jpg, .jpeg, .webp in any case


@st.composite
def _saves(draw: st.DrawFn, full: bool) -> tuple[str, object, bool]:
    """What to save, where (a name fit for it more often than not), and whether a file is there already."""
    media_kind = draw(st.sampled_from(sorted({**MEDIA, **BUGGY_MEDIA} if full else MEDIA)))
    fitting = st.sampled_from(FITTING.get(media_kind, [".png", ".jpg", ".jpeg", ".webp", ".PNG", ".Jpg"]))
    kind = draw(
        st.sampled_from(
            ["plain", "plain", "plain", "nul", "empty", "folder", "absolute", "pathlike"]
            + (["surrogate", "long", "bytes"] if full else [])
        )
    )
    name = draw(NAME_TEXT) + draw(st.one_of(fitting, fitting, EXTENSIONS))
    return media_kind, _name(draw, kind, name), draw(st.booleans())


def _name(draw: st.DrawFn, kind: str, name: str) -> object:
    folder = draw(FOLDERS)
    if kind == "nul":
        return folder + name[: len(name) // 2] + "\x00" + name[len(name) // 2 :]
    if kind == "empty":
        return ""
    if kind == "folder":
        return "existing" + draw(st.sampled_from(["", "/", "_dir.png"]))
    if kind == "surrogate":
        return folder + draw(SURROGATES) + name
    if kind == "long":
        return folder + "x" * draw(st.integers(250, 300)) + name
    if kind == "bytes":
        return os.fsencode(folder + name)
    if kind == "pathlike":
        return Path(folder + name) if (folder + name) else Path("out.png")
    if kind == "absolute":
        return "@ABS@" + folder + name
    return folder + name


def _listing(root: Path) -> dict[str, bytes | None]:
    found: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        found[str(path.relative_to(root))] = None if path.is_dir() else path.read_bytes()
    return found


_EXAMPLES = itertools.count()


def _save_and_check(tmp_path: Path, media_kind: str, name: object, overwrite: bool) -> None:
    folder = tmp_path / f"example{next(_EXAMPLES)}"
    (folder / "existing").mkdir(parents=True)
    (folder / "existing_dir.png").mkdir()
    (folder / "a_file").write_bytes(b"not a folder")
    if isinstance(name, str) and name.startswith("@ABS@"):
        name = str(folder / name[len("@ABS@") :])
    target_text = os.fsdecode(name) if isinstance(name, bytes | str | Path) else ""
    target = folder / target_text if target_text and "\x00" not in target_text else None
    if overwrite and target is not None:
        try:
            if target.parent.is_dir() and not target.exists():
                target.write_bytes(b"the old content")
        except (OSError, ValueError):
            pass
    media = {**MEDIA, **BUGGY_MEDIA}[media_kind]()
    before = _listing(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        try:
            saved = media.save(name)  # type: ignore[arg-type]  # any name, wrong types included on purpose
        except genai.GenAIError as exc:
            assert isinstance(exc, genai.InvalidRequestError), exc
            assert _listing(folder) == before, "a failed save changed the folder (a partial or temporary file?)"
            _note(f"save: refused ({str(exc)[:25]})")
            return
    _note("save: saved")
    path = (folder / saved) if not Path(saved).is_absolute() else Path(saved)
    assert path.is_file()
    after = _listing(folder)
    assert not [p for p in after if p.endswith(".tmp") and p not in before], "a temporary file was left behind"
    changed = {p for p in after if before.get(p, b"absent") != after[p]}
    assert changed == {str(path.relative_to(folder))}, f"the save touched {changed}"
    if isinstance(media, genai.Image):
        again = genai.Image.from_path(path)
        assert again.size == media.size
        assert again.to_pil().size == media.size
        assert dict(again.provenance) == dict(media.provenance)
    else:
        data = path.read_bytes()
        if media.media_type == "audio/wav":
            with wave.open(io.BytesIO(data)) as reader:
                assert reader.getnframes() == 800
            assert genai.Audio.from_path(path).duration == media.duration
        else:
            assert data == media.data


@QUICK
@given(save=_saves(full=False))
def test_a_save_writes_a_whole_file_or_nothing(tmp_path: Path, save: tuple[str, object, bool]) -> None:
    _save_and_check(tmp_path, *save)


@_until_fixed("save-unencodable-name", "save-name-too-long", "save-bytes-path", "save-cmyk-as-png")
@SHORT
@given(save=_saves(full=True))
@example(save=("png", "\ud800.png", False))
@example(save=("png", "x" * 300 + ".png", False))
@example(save=("png", b"x.png", False))
@example(save=("cmyk", "x.png", False))
def test_a_save_writes_a_whole_file_or_nothing_full_strength(tmp_path: Path, save: tuple[str, object, bool]) -> None:
    _save_and_check(tmp_path, *save)


# -- the known bugs, one minimal reproduction each --------------------------------------------------------------------


def _generate(request: pytest.FixtureRequest, **kwargs: Any) -> None:
    """A dall-e-2 call through the emulator: a decoded success or a typed error, with the books straight."""
    request.getfixturevalue("emulated")
    _run_request("a cat", kwargs)


def _invalid_url_errors() -> tuple[type[BaseException], ...]:
    import httpx
    import httpx2

    return httpx.InvalidURL, httpx2.InvalidURL


# How each bug showed: a mark expects these exceptions only, so that another failure is not taken for the bug.
BUG_ERRORS: dict[str, tuple[type[BaseException], ...]] = {
    "provider-options-not-json": (TypeError, ValueError),
    "provider-options-non-str-key": (TypeError,),
    "huge-timeout": (OverflowError,),
    "openai-answer-types": (TypeError, AttributeError),
    "openai-bad-url": _invalid_url_errors(),
    "deep-json": (RecursionError,),
    "replicate-schema-types": (TypeError, AttributeError),
    "replicate-schema-values": (ZeroDivisionError, ValueError, OverflowError),
    "replicate-bad-output-url": (ValueError, *_invalid_url_errors()),
    "replicate-predict-time": (decimal.InvalidOperation, AssertionError),  # AssertionError: the books are wrong
    "save-unencodable-name": (UnicodeEncodeError,),
    "save-name-too-long": (OSError,),
    "save-bytes-path": (TypeError,),
    "save-cmyk-as-png": (OSError,),
}


def _bug(bug: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(bug in KNOWN_BUGS, strict=True, reason=KNOWN_BUGS.get(bug, ""), raises=BUG_ERRORS[bug])


def _garbage_runs(bug: str) -> Callable[[pytest.FixtureRequest], object]:
    runs = OPENAI_BUG_EXAMPLES.get(bug, []) + REPLICATE_BUG_EXAMPLES.get(bug, [])

    def reproduce(request: pytest.FixtureRequest) -> None:
        for run in runs:
            _run_garbage(request.getfixturevalue("garbage"), run)

    return reproduce


REPRODUCTIONS: dict[str, Callable[[pytest.FixtureRequest], object]] = {
    **{bug: _garbage_runs(bug) for bug in {**OPENAI_BUG_EXAMPLES, **REPLICATE_BUG_EXAMPLES}},
    "provider-options-not-json": lambda r: _generate(
        r, size="256x256", provider_options={"openai": {"user": object()}}
    ),
    "provider-options-non-str-key": lambda r: _generate(r, provider_options={"openai": {1: "x"}}),
    "huge-timeout": lambda r: _generate(r, size="256x256", timeout=1e308),
    "save-unencodable-name": lambda r: _save_and_check(r.getfixturevalue("tmp_path"), "png", "\ud800.png", False),
    "save-name-too-long": lambda r: _save_and_check(r.getfixturevalue("tmp_path"), "png", "x" * 300 + ".png", False),
    "save-bytes-path": lambda r: _save_and_check(r.getfixturevalue("tmp_path"), "png", b"x.png", False),
    "save-cmyk-as-png": lambda r: _save_and_check(r.getfixturevalue("tmp_path"), "cmyk", "x.png", False),
}


@pytest.mark.parametrize("bug", [pytest.param(bug, marks=_bug(bug)) for bug in REPRODUCTIONS])
def test_known_bug(request: pytest.FixtureRequest, bug: str) -> None:
    REPRODUCTIONS[bug](request)


def test_every_known_bug_has_a_reproduction() -> None:
    assert set(KNOWN_BUGS) <= set(FOUND_BUGS) == set(REPRODUCTIONS) == set(BUG_ERRORS)
