"""The contract of the one path: nothing reserved on refusal, nothing charged on failure, one charge on success."""

import threading
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import genai_sdk as genai
from genai_sdk.credits._memory import MemoryLedger
from genai_sdk.testing import Emulator

from .conftest import fast


def _charges(client: genai.Client) -> list[genai.LedgerEntry]:
    return [e for e in client.credits.history() if e.kind == "charge"]


def test_success_after_retries_is_charged_once(client: genai.Client, genai_emulator: Emulator) -> None:
    genai_emulator.fail("images.generate", "server_error", times=2)
    result = client.images.generate("a couch", n=2, size="256x256")
    calls = genai_emulator.calls("images.generate")
    assert len(calls) == 3
    assert len({c.headers["idempotency-key"] for c in calls}) == 1, "retries must reuse the idempotency key"
    charges = _charges(client)
    assert len(charges) == 1
    assert charges[0].usd == Decimal("0.032") == result.cost.usd
    assert charges[0].credits == -result.cost.credits
    assert not result.cost.estimated
    assert client.credits.reserved() == 0


def test_failure_after_retries_is_not_charged(client: genai.Client, genai_emulator: Emulator) -> None:
    genai_emulator.fail("images.generate", "unavailable", times=10)
    with pytest.raises(genai.ProviderUnavailableError) as info:
        client.images.generate("a couch", size="256x256")
    assert info.value.status == 503 and info.value.request_id
    assert len(genai_emulator.calls("images.generate")) == 3  # one try and max_retries=2
    assert _charges(client) == []
    assert client.credits.reserved() == 0


def test_local_refusal_reserves_nothing_and_sends_nothing(
    genai_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[categories]\nfurniture = ["couch"]\n', encoding="utf-8")
    reserved: list[object] = []

    class Watched(MemoryLedger):  # a ledger object passed in: no patching of the client's insides
        def reserve(self, *a: Any, **k: Any) -> Any:
            reserved.append(a)
            return super().reserve(*a, **k)

    client = genai.Client(image="openai:dall-e-2", policy=str(rules), ledger=Watched())
    with pytest.raises(genai.ContentPolicyError) as info:
        client.images.generate("an avocado couch")
    assert (info.value.stage, info.value.source, info.value.categories) == ("prompt", "local", ["furniture"])
    assert reserved == [] and genai_emulator.calls() == []
    (entry,) = client.credits.history()  # recorded, never charged
    assert (entry.kind, entry.credits, entry.model) == ("refusal", Decimal(0), "openai:dall-e-2")
    assert "prompt refused by local (furniture)" in entry.reason and "couch" not in entry.reason
    assert client.credits.balance() == 0


def test_provider_refusal_is_not_retried_nor_charged(client: genai.Client, genai_emulator: Emulator) -> None:
    with pytest.raises(genai.ContentPolicyError) as info:
        client.images.generate("something forbidden", size="256x256")
    assert info.value.source == "provider" and info.value.stage == "prompt"
    assert info.value.categories == ["content_policy_violation"]
    assert info.value.request_id
    assert len(genai_emulator.calls()) == 1
    assert _charges(client) == [] and client.credits.reserved() == 0


def test_budget_refusal_happens_before_sending(client: genai.Client, genai_emulator: Emulator) -> None:
    client.credits.set_budget(credits=5)
    with pytest.raises(genai.BudgetExceededError, match="over its budget of 5"):
        client.images.generate("a couch", n=4, size="512x512")  # 7.2 credits
    assert genai_emulator.calls() == []
    client.images.generate("a couch", n=2, size="512x512")  # 3.6 credits fit
    with pytest.raises(genai.BudgetExceededError):
        client.images.generate("a couch", n=1, size="512x512")  # 3.6 + 1.8 > 5
    assert len(genai_emulator.calls()) == 1


def test_usd_budget(client: genai.Client) -> None:
    client.credits.set_budget(usd="0.05", period="day")
    client.images.generate("a couch", n=2, size="512x512")  # $0.036
    with pytest.raises(genai.BudgetExceededError, match=r"over its budget of \$0.05"):
        client.images.generate("a couch", n=1, size="512x512")


def test_usd_budget_refuses_unpriced_calls(client: genai.Client, genai_emulator: Emulator) -> None:
    client.credits.set_budget(usd=10)
    with pytest.raises(genai.BudgetExceededError, match="price in USD is unknown"):
        client.images.generate("a couch", model="openai:gpt-image-2", size="1536x864")
    assert genai_emulator.calls() == []


def test_unpriced_model_is_never_silently_free(client: genai.Client) -> None:
    result = client.images.generate("a couch", model="openai:gpt-image-2", size="1536x864", n=2)
    assert result.cost.usd is None
    assert result.cost.credits == 2
    assert any("no USD price is known for openai:gpt-image-2" in w for w in result.warnings)
    assert result.images[0].size == (1536, 864)


def test_actual_cost_uses_what_the_provider_reports(client: genai.Client, genai_emulator: Emulator) -> None:
    estimate = client.images.estimate("a couch", model="openai:gpt-image-1.5")
    assert estimate.usd == Decimal("0.133") and estimate.estimated  # "auto" quality is reserved at the dearest
    result = client.images.generate("a couch", model="openai:gpt-image-1.5")
    assert result.cost.usd == Decimal("0.034")  # the emulator reports it chose "medium"


def test_grants_limit_concurrent_spending(client: genai.Client, genai_emulator: Emulator) -> None:
    client.credits.grant(4)  # each call below costs 1.6 credits: only two fit, whatever the interleaving
    genai_emulator.fail("images.generate", "slow", times=5, delay=0.3)
    outcomes: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        try:
            client.images.generate("a couch", size="256x256")
            outcome = "ok"
        except genai.BudgetExceededError:
            outcome = "refused"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "ok", "refused", "refused", "refused"]
    assert client.credits.balance() == Decimal("0.8")
    assert len(genai_emulator.calls()) == 2


def test_unlimited_account_records_spending(client: genai.Client) -> None:
    client.images.generate("a couch", size="256x256")
    assert client.credits.balance() == Decimal("-1.6")
    client.images.generate("a couch", size="256x256", account="bob")
    assert [e.account for e in client.credits.history("bob")] == ["bob"]


def test_models_with_n_1_are_called_once_per_image(genai_emulator: Emulator) -> None:
    client = fast(genai.Client())
    dalle3 = client.catalog.get("openai:dall-e-3")
    assert dalle3 is not None and dalle3.max_n == 1
    client.catalog.register(replace(dalle3, retired_on=None))  # as a deployment that still serves it would
    result = client.images.generate("a couch", model="openai:dall-e-3", n=4, size="1792x1024", quality="hd")
    calls = genai_emulator.calls("images.generate")
    assert [c.json["n"] for c in calls] == [1, 1, 1, 1]
    assert len({c.headers["idempotency-key"] for c in calls}) == 4
    assert len(result.images) == 4 and result.images[0].size == (1792, 1024)
    assert result.cost.usd == Decimal("0.480")
    assert len([e for e in client.credits.history() if e.kind == "charge"]) == 1


def test_a_failed_part_releases_everything(genai_emulator: Emulator) -> None:
    client = fast(genai.Client(max_retries=0))
    dalle3 = client.catalog.get("openai:dall-e-3")
    assert dalle3 is not None
    client.catalog.register(replace(dalle3, retired_on=None))
    genai_emulator.fail("images.generate", "bad_request", times=1)
    genai_emulator.fail("images.generate", "bad_request", times=1)
    with pytest.raises(genai.ProviderError):
        client.images.generate("a couch", model="openai:dall-e-3", n=3)
    # The three calls ran at once: two met the faults, the third made its picture, which OpenAI bills: recorded as
    # spent (never as a charge of the failed call), and nothing stays reserved.
    [spent] = client.credits.history()
    assert (spent.kind, spent.usd) == ("spent", Decimal("0.040")) and client.credits.reserved() == 0


def test_progress_is_reported(client: genai.Client) -> None:
    seen: list[genai.Progress] = []
    client.images.generate("a couch", size="256x256", on_progress=seen.append)
    assert [p.stage for p in seen] == ["started", "generating", "done"]
    assert seen[-1].fraction == 1.0


def test_a_failing_progress_callback_does_not_leak_a_reservation(client: genai.Client) -> None:
    def broken(progress: genai.Progress) -> None:
        if progress.stage == "generating":
            raise RuntimeError("callback bug")

    with pytest.raises(RuntimeError):
        client.images.generate("a couch", size="256x256", on_progress=broken)
    assert client.credits.reserved() == 0 and _charges(client) == []
