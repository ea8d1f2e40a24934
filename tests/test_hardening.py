"""Faulty and hostile backends, and careless callers: every answer checked, every error typed, nothing charged for
what the caller did not get, nothing left reserved."""

from __future__ import annotations

import asyncio
import datetime
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import genai_sdk as genai
from genai_sdk.cli import main
from genai_sdk.testing import Emulator
from genai_sdk.testing._answer_faults import bomb_png

from .conftest import fast

REFUSED_ANSWERS = [
    "malformed_json", "json_list", "html", "truncated_image", "junk_image", "bomb_image", "no_images", "tiny_image",
]  # fmt: skip


def _client(model: str = "openai:dall-e-2", **settings: Any) -> genai.Client:
    c = fast(genai.Client(image=model, ledger="memory://", policy="off", **settings))
    return c


@pytest.mark.parametrize("model", ["openai:dall-e-2", "openai:gpt-image-1.5"])
@pytest.mark.parametrize("kind", REFUSED_ANSWERS)
def test_a_spoilt_answer_is_a_typed_error_and_its_spending_is_recorded(genai_emulator: Emulator, model: str, kind: str) -> None:
    client = _client(model)
    client.credits.grant(100)
    estimate = client.images.estimate("a cat", n=2).credits
    genai_emulator.fail("images.generate", kind, times=5)
    with pytest.raises(genai.ProviderError) as info:
        client.images.generate("a cat", n=2)
    assert info.value.provider == "openai"
    assert not info.value.retryable, "a 200 means the images were made: asking again would pay twice"
    assert len(genai_emulator.calls("images.generate")) == 1
    assert client.credits.reserved() == 0
    history = [e for e in client.credits.history() if e.kind != "grant"]
    if kind == "no_images":  # nothing was made, nothing was billed
        assert history == [] and client.credits.balance() == 100
    else:  # the images were made and billed, and the caller got none: spent, not charged as delivered
        [entry] = history
        # Priced as the estimate was, or as the answer said it was made (gpt-image names its quality and size).
        assert entry.kind == "spent" and 0 < -entry.credits <= estimate and "not delivered" in entry.reason
        assert client.credits.balance() == 100 + entry.credits


def test_the_same_spoilt_answers_through_async(genai_emulator: Emulator) -> None:
    async def run() -> None:
        async with genai.AsyncClient(image="openai:gpt-image-1.5", ledger="memory://", policy="off") as client:
            for kind in REFUSED_ANSWERS:
                genai_emulator.fail("images.generate", kind)
                with pytest.raises(genai.ProviderError):
                    await client.images.generate("a cat")
                assert await client.credits.reserved() == 0
            kinds = [e.kind for e in await client.credits.history()]
            assert kinds == ["spent"] * (len(REFUSED_ANSWERS) - 1), kinds  # all but no_images made something

    asyncio.run(run())


def test_a_picture_of_another_size_is_a_warning(genai_emulator: Emulator) -> None:
    client = _client()
    genai_emulator.fail("images.generate", "wrong_size")
    result = client.images.generate("a cat", size="512x512")
    assert result.images[0].size == (256, 256)
    assert "openai:dall-e-2 made a 256x256 picture where 512x512 was asked for" in result.warnings


def test_more_images_than_asked_are_not_kept_nor_charged(genai_emulator: Emulator) -> None:
    client = _client()
    client.credits.grant(2)
    genai_emulator.fail("images.generate", "extra_images")
    result = client.images.generate("a cat", size="256x256")
    assert len(result.images) == 1 and result.cost.credits == genai.Client(
        image="openai:dall-e-2", ledger="memory://").images.estimate("a cat", size="256x256").credits
    assert any("answered with 10 images where 1 were asked for" in w for w in result.warnings)
    assert client.credits.balance() == 2 - result.cost.credits


@pytest.mark.parametrize("kind", ["malformed_json", "html", "json_list", "no_id", "lost_answer"])
def test_a_spoilt_replicate_create_answer_finds_the_prediction_it_made(genai_emulator: Emulator, kind: str) -> None:
    client = _client("replicate:black-forest-labs/flux-schnell")
    genai_emulator.fail("replicate.predictions.create", kind)
    result = client.images.generate("a cat")
    assert len(result.images) == 1
    # The prediction was made although its answer was lost: it is found, followed and charged once, not made again.
    assert len(genai_emulator.calls("replicate.predictions.create")) == 1
    assert len(genai_emulator.calls("replicate.predictions.list")) == 1
    assert [e.kind for e in client.credits.history()] == ["charge"]
    assert result.request_ids == [next(iter(genai_emulator.replicate.predictions))]


def test_a_lost_create_answer_that_made_nothing_is_created_again(genai_emulator: Emulator) -> None:
    client = _client("replicate:black-forest-labs/flux-schnell")
    genai_emulator.fail("replicate.predictions.create", "drop")  # the connection drops before anything is made
    result = client.images.generate("a cat")
    assert len(result.images) == 1 and len(genai_emulator.replicate.predictions) == 1
    assert len(genai_emulator.calls("replicate.predictions.list")) == 1


def test_a_lost_create_answer_that_cannot_be_looked_up_is_final(genai_emulator: Emulator) -> None:
    client = _client("replicate:black-forest-labs/flux-schnell")
    genai_emulator.fail("replicate.predictions.create", "lost_answer")
    genai_emulator.fail("replicate.predictions.list", "server_error", times=5)
    with pytest.raises(genai.ProviderError, match="could not be looked up") as info:
        client.images.generate("a cat")
    assert not info.value.retryable
    assert len(genai_emulator.replicate.predictions) == 1  # made once, never twice
    assert client.credits.reserved() == 0


def test_images_are_decoded_in_full_under_a_pixel_cap(tmp_path: Path) -> None:
    png = tmp_path / "ok.png"
    genai.Image.from_pil(__import__("PIL.Image", fromlist=["Image"]).new("RGB", (8, 8))).save(png)
    data = png.read_bytes()
    assert genai.Image.from_bytes(data).size == (8, 8)
    for spoilt, message in ((data[: len(data) // 2], "cannot be decoded"), (data[:33] + b"junk" * 50, "cannot be decoded"),
                            (bomb_png(), "declares 50000x50000 pixels")):
        with pytest.raises(genai.InvalidRequestError, match=message):
            genai.Image.from_bytes(spoilt)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.images.generate("a cat", timeout="abc"), "timeout='abc'"),
        (lambda c: c.images.generate("a cat", timeout=float("nan")), "timeout=nan"),
        (lambda c: c.images.generate("a cat", timeout=float("inf")), "timeout=inf"),
        (lambda c: c.images.generate("a cat", timeout=-1), "timeout=-1"),
        (lambda c: c.images.generate("a cat \ud800"), "lone surrogate"),
        (lambda c: c.images.generate(123), "the prompt must be a string"),
        (lambda c: c.images.generate("a cat", size=256), "size must be a string"),
        (lambda c: c.images.generate("a cat", model=123), "model=123"),
        (lambda c: c.images.generate("a cat", provider_options=[1, 2]), "provider_options must map"),
        (lambda c: c.images.generate("a cat", on_progress=5), "on_progress must be a function"),
        (lambda c: c.images.generate("a cat", seed=1.5), "seed=1.5"),
        (lambda c: c.images.edit("a\x00b.png", "a cat"), "NUL"),
        (lambda c: c.images.edit(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "a cat"), "declares 0x0 pixels"),
        (lambda c: c.images.edit(bomb_png(), "a cat"), "declares 50000x50000"),
        (lambda c: c.speech.synthesize(42), "must be a string"),
        (lambda c: c.credits.grant(1e30), "out of range"),
        (lambda c: c.credits.set_budget(credits=-5), "above 0"),
        (lambda c: c.credits.grant(5, expires=datetime.datetime(2030, 1, 1)), "time zone"),
    ],
)
def test_bad_input_is_refused_before_anything_is_reserved(
    genai_emulator: Emulator, call: Callable[[genai.Client], object], message: str
) -> None:
    client = _client()
    with pytest.raises(genai.InvalidRequestError, match=message):
        call(client)
    assert genai_emulator.calls() == [] and client.credits.reserved() == 0


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("kwarg", float("nan"), "timeout must be a finite number"),
        ("kwarg", float("inf"), "timeout must be a finite number"),
        ("env", "nan", "GENAI_TIMEOUT: timeout must be a finite number"),
        ("toml", "timeout = nan\n", "timeout must be a finite number"),
        ("toml", "[profiles]\nprod = 3\n", "must hold tables"),
        ("toml", b"timeout = \xff\n", "not valid TOML"),
        ("folder", None, "is a folder"),
        ("kwarg_rate", "Infinity", "credits_per_usd must be a finite number"),
    ],
)
def test_bad_settings_are_config_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str, value: object,
                                        message: str) -> None:
    monkeypatch.chdir(tmp_path)
    kwargs: dict[str, Any] = {"ledger": "memory://"}  # settings of mixed types, some wrong on purpose
    if where == "kwarg":
        kwargs["timeout"] = value
    elif where == "kwarg_rate":
        kwargs["credits_per_usd"] = value
    elif where == "env":
        monkeypatch.setenv("GENAI_TIMEOUT", str(value))
    elif where == "toml":
        path = tmp_path / "genai.toml"
        path.write_bytes(value if isinstance(value, bytes) else str(value).encode())
    else:
        (tmp_path / "genai.toml").mkdir()
    with pytest.raises(genai.ConfigError, match=message):
        genai.Client(**kwargs)


def test_save_errors_are_typed_and_stale_temporaries_are_removed(genai_emulator: Emulator, tmp_path: Path) -> None:
    image = _client().images.generate("a cat", size="256x256").image
    for target, message in ((tmp_path, "extension"), (tmp_path / "folder.png", "is a folder"),
                            (tmp_path / "missing" / "x.png", "does not exist"), ("a\x00.png", "NUL")):
        if str(target).endswith("folder.png"):
            Path(target).mkdir()
        with pytest.raises(genai.InvalidRequestError, match=message):
            image.save(target)
    stale = tmp_path / ".out.png.abc123.tmp"
    fresh = tmp_path / ".out.png.def456.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    image.save(tmp_path / "out.png")
    assert not stale.exists(), "a save killed an hour ago left it: the next save removes it"
    assert fresh.exists(), "a save in progress elsewhere may own it"


def test_secrets_in_ledger_urls_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    with pytest.raises(genai.ConfigError) as info:
        genai.Client(ledger="redis://alice:hunter2@cache:6379")
    assert "hunter2" not in str(info.value) and "alice:[redacted]@" in str(info.value)
    settings = dataclasses.replace(genai.Client(ledger="memory://").settings, ledger="postgresql://bob:hunter2@db/genai")
    assert "hunter2" not in repr(settings)
    from genai_sdk.credits._memory import MemoryLedger

    with pytest.MonkeyPatch.context() as patch:  # a client whose settings name a PostgreSQL URL with a password
        patch.setenv("GENAI_LEDGER", "postgresql://bob:hunter2@db/genai")
        client = genai.Client(ledger=MemoryLedger())  # the ledger object is used; the settings still hold the URL
    assert "hunter2" not in repr(client) and "hunter2" not in repr(client.settings)


def test_the_default_ledger_is_private_to_its_user(tmp_path: Path) -> None:
    from genai_sdk.credits import open_ledger

    path = tmp_path / "fresh" / "ledger.db"
    open_ledger(f"sqlite://{path}").close()
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert path.stat().st_mode & 0o777 == 0o600


def test_the_history_adds_up_to_the_balance_across_a_first_grant(genai_emulator: Emulator, ledger_url: str) -> None:
    client = fast(genai.Client(image="openai:dall-e-2", ledger=ledger_url, policy="off"))
    client.images.generate("a cat", size="256x256")
    client.credits.grant(10)
    charge, grant = client.credits.history()
    assert (charge.kind, grant.kind) == ("charge", "grant") and charge.credits < 0
    assert client.credits.balance() == charge.credits + grant.credits == 10 + charge.credits, "the earlier spending is owed"


def test_a_usd_budget_keeps_holding_priced_calls_after_an_unpriced_one(genai_emulator: Emulator) -> None:
    from decimal import Decimal

    from genai_sdk.credits._memory import MemoryLedger

    ledger = MemoryLedger()
    client = fast(genai.Client(image="openai:dall-e-2", ledger=ledger, policy="off"))
    reservation = ledger.reserve("default", Decimal(1), None, "unpriced-call", "replicate:someone/model")
    ledger.commit(reservation, Decimal(1), None)
    client.credits.set_budget(usd=5)
    assert len(client.images.generate("a cat", size="256x256").images) == 1
    assert client.credits.budgets()[0].usd == 5


def test_emulated_calls_never_reach_the_users_ledger(genai_emulator: Emulator) -> None:
    assert os.environ["GENAI_LEDGER"] == "memory://"
    client = genai.Client(image="openai:dall-e-2", policy="off")
    assert client.settings.ledger == "memory://"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["image", "a cat", "-o", "/missing/dir/x.png"], "does not exist"),
        (["image", "a cat", "-o", "x.gif"], "extension"),
        (["image", "a cat", "-o", ""], "is empty"),
        (["image", "a cat", "-o", "out{zz}.png"], "use only"),
        (["speak", "hello", "-o", "/missing/a.wav"], "does not exist"),
        (["video", "a panda", "-o", "panda.txt", "--model", "replicate:someone/video"], "extension"),
    ],
)
def test_the_cli_checks_where_it_will_save_before_it_pays(
    genai_emulator: Emulator, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert genai_emulator.calls() == []


def test_cancelling_async_calls_at_any_moment_leaks_nothing(genai_emulator: Emulator, tmp_path: Path) -> None:
    """Calls cancelled by asyncio.wait_for at random moments (while reserving, calling, committing): afterwards
    nothing is reserved, and every charge is a result the caller got or a visible cancelled-after-completion note."""
    import random

    rng = random.Random(7)
    ledger = f"sqlite://{tmp_path / 'ledger.db'}?synchronous=normal"

    async def run() -> tuple[int, genai.AsyncClient]:
        client = genai.AsyncClient(image="openai:dall-e-2", ledger=ledger, policy="off")
        delivered = 0

        async def one(index: int) -> None:
            nonlocal delivered
            timeout = None if index < 2 else rng.uniform(0.0, 0.05)  # two a batch always finish
            try:
                await asyncio.wait_for(client.images.generate("a cat", size="256x256"), timeout=timeout)
                delivered += 1
            except (TimeoutError, asyncio.CancelledError):
                pass

        for _ in range(8):
            await asyncio.gather(*(one(i) for i in range(12)))
        return delivered, client

    delivered, client = asyncio.run(run())
    sync = genai.Client(ledger=ledger, policy="off")
    deadline = time.monotonic() + 10
    while sync.credits.reserved() and time.monotonic() < deadline:  # the last releases run in their threads
        time.sleep(0.05)
    history = sync.credits.history()
    charges = [e for e in history if e.kind == "charge"]
    notes = [e for e in history if e.kind == "cancelled"]
    assert sync.credits.reserved() == 0, "a cancelled call left its reservation held"
    assert len(charges) == delivered + len(notes), (len(charges), delivered, len(notes))
    assert {n.request_id for n in notes} <= {c.request_id for c in charges}
    assert 16 <= delivered < 96, "the timeouts must cancel some calls and let others finish"


def test_first_calls_from_many_threads_on_one_client(genai_emulator: Emulator) -> None:
    """Eight threads make their first calls at once on one client, half to OpenAI and half to Replicate: providers,
    their imports and their HTTP clients are made once, under locks, and every call succeeds."""
    import threading

    client = genai.Client(ledger="memory://", policy="off")
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def first_call(index: int) -> None:
        start.wait()
        try:
            if index % 2:
                client.images.generate("a cat", model="openai:dall-e-2", size="256x256")
            else:
                client.images.generate("a cat", model="replicate:black-forest-labs/flux-schnell")
        except BaseException as exc:  # noqa: BLE001 - any error at all fails the test below
            errors.append(exc)

    threads = [threading.Thread(target=first_call, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(client.credits.history()) == 8
