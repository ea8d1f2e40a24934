"""Fallbacks (a model setting or ``model=`` naming several models) and the circuit breaker, through the emulator."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import genai_sdk as genai
from genai_sdk.testing import Emulator

from .conftest import fast

CHAIN = ["openai:dall-e-2", "replicate:black-forest-labs/flux-schnell"]


def _client(**settings: object) -> genai.Client:
    return fast(genai.Client(image=CHAIN, max_retries=1, policy="off", **settings))  # type: ignore[arg-type]


@pytest.mark.parametrize("fault", ["server_error", "unavailable", "rate_limit"])
def test_the_next_model_serves_after_an_outage_or_a_rate_limit(genai_emulator: Emulator, fault: str) -> None:
    genai_emulator.fail("images.generate", fault, times=2)  # the first model's attempt and its one retry
    client = _client()
    result = client.images.generate("a lighthouse", size="512x512")
    assert result.model == CHAIN[1] and result.failed_models == [CHAIN[0]]
    assert any(w.startswith(f"{CHAIN[0]} was not used") for w in result.warnings)
    assert len(genai_emulator.calls("images.generate")) == 2
    assert len(genai_emulator.calls("replicate.predictions.create")) == 1
    history = client.credits.history()
    assert [(e.kind, e.model) for e in history] == [("charge", CHAIN[1])]  # only the model that served is charged
    assert client.credits.reserved() == 0
    assert client.images.generate("a second lighthouse").model == CHAIN[0]  # healthy again: the first model serves


@pytest.mark.parametrize(
    ("fault", "error"),
    [("bad_request", genai.ProviderError), ("unauthorized", genai.AuthenticationError)],
)
def test_no_fallback_after_an_invalid_request_or_a_bad_key(
    genai_emulator: Emulator, fault: str, error: type[genai.GenAIError]
) -> None:
    genai_emulator.fail("images.generate", fault)
    with pytest.raises(error) as caught:
        _client().images.generate("a lighthouse")
    assert caught.value.status in (400, 401) and not caught.value.retryable  # type: ignore[attr-defined]
    assert genai_emulator.calls("replicate.predictions.create") == []


def test_no_fallback_after_a_content_policy_refusal(genai_emulator: Emulator) -> None:
    blocked = genai_emulator.blocked_words[0]
    with pytest.raises(genai.ContentPolicyError) as caught:
        _client().images.generate(f"a {blocked} lighthouse")
    assert caught.value.source == "provider"
    assert genai_emulator.calls("replicate.predictions.create") == []


def test_no_fallback_after_a_budget_refusal(genai_emulator: Emulator) -> None:
    client = _client()
    client.credits.set_budget(credits=1)
    with pytest.raises(genai.BudgetExceededError):
        client.images.generate("a lighthouse", size="1024x1024")
    assert genai_emulator.calls() == []  # refused before anything was sent, to either model


def test_a_hop_that_cannot_take_the_request_is_skipped_with_a_warning(genai_emulator: Emulator) -> None:
    client = _client()
    result = client.images.generate("a lighthouse", size="1440x816")  # not a dall-e-2 size
    assert result.model == CHAIN[1] and result.failed_models == [CHAIN[0]]
    assert "InvalidRequestError" in " ".join(result.warnings)
    assert genai_emulator.calls("images.generate") == []  # nothing sent to the hop that could not take it


def test_when_every_model_fails_the_last_error_says_what_became_of_the_others(genai_emulator: Emulator) -> None:
    genai_emulator.fail("images.generate", "server_error", times=2)
    genai_emulator.fail("replicate.predictions.create", "server_error", times=2)
    client = _client()
    with pytest.raises(genai.ProviderUnavailableError) as caught:
        client.images.generate("a lighthouse")
    assert caught.value.provider == "replicate"
    assert any("every fallback failed: openai:dall-e-2" in note for note in caught.value.__notes__)
    assert client.credits.history() == [] and client.credits.reserved() == 0


def test_per_call_fallbacks_and_settings_from_a_config_file(genai_emulator: Emulator, tmp_path: Path) -> None:
    genai_emulator.fail("images.generate", "server_error", times=2)
    client = fast(genai.Client(image="openai:dall-e-2", max_retries=1))
    assert client.images.generate("a cat", model=CHAIN).model == CHAIN[1]
    config = tmp_path / "genai.toml"
    config.write_text(f"image = {CHAIN!r}\n".replace("'", '"'), encoding="utf-8")
    assert genai.Client(config=config).settings.image == tuple(CHAIN)
    for bad in ([], ["openai:dall-e-2", "openai:dall-e-2"], [3]):
        with pytest.raises(genai.InvalidRequestError, match="model="):
            client.images.generate("a cat", model=bad)  # type: ignore[arg-type]
    with pytest.raises(genai.ConfigError, match="malformed model name 'dall-e-2'"):
        genai.Client(image=["openai:dall-e-2", "dall-e-2"])


def test_fallbacks_from_the_environment(genai_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENAI_IMAGE", ",".join(CHAIN))
    assert genai.Client().settings.image == tuple(CHAIN)


def test_async_fallbacks(genai_emulator: Emulator) -> None:
    genai_emulator.fail("images.generate", "unavailable", times=2)

    async def main() -> genai.ImageResult:
        async with genai.AsyncClient(image=CHAIN, max_retries=1, policy="off") as aclient:
            fast(aclient)
            return await aclient.images.generate("a lighthouse")

    result = asyncio.run(main())
    assert result.model == CHAIN[1] and result.failed_models == [CHAIN[0]]


def test_the_circuit_breaker_opens_says_so_and_closes_after_its_cool_down(genai_emulator: Emulator) -> None:
    client = fast(genai.Client(image="openai:dall-e-2", max_retries=0, circuit_breaker_failures=2, circuit_breaker_cooldown=0.3))
    genai_emulator.fail("images.generate", "server_error", times=2)
    for _ in range(2):
        with pytest.raises(genai.ProviderUnavailableError):
            client.images.generate("a cat")
    with pytest.raises(genai.ProviderUnavailableError, match="circuit breaker"):
        client.images.generate("a cat")
    assert len(genai_emulator.calls("images.generate")) == 2  # the third call was never sent
    time.sleep(0.35)  # the cool-down passes: one call tries the model again, and it answers
    assert client.images.generate("a cat").model == "openai:dall-e-2"
    assert client.images.generate("a cat").model == "openai:dall-e-2"  # closed again


def test_an_open_circuit_sends_calls_to_the_fallback(genai_emulator: Emulator) -> None:
    client = _client(circuit_breaker_failures=1, circuit_breaker_cooldown=600)
    genai_emulator.fail("images.generate", "server_error", times=2)
    assert client.images.generate("one").model == CHAIN[1]
    result = client.images.generate("two")
    assert result.model == CHAIN[1] and "circuit breaker" in " ".join(result.warnings)
    assert len(genai_emulator.calls("images.generate")) == 2  # the open circuit kept the second call away


def test_the_clients_own_rate_limit_does_not_open_the_circuit(genai_emulator: Emulator) -> None:
    client = fast(genai.Client(image="openai:dall-e-2", rate_limits={"openai": {"requests": 1, "per": 600}},
                               circuit_breaker_failures=1))  # fmt: skip
    client.images.generate("first", size="256x256")
    for _ in range(3):
        with pytest.raises(genai.RateLimitError, match="client-side rate limit"):
            client.images.generate("more", size="256x256", timeout=1)
    assert len(genai_emulator.calls("images.generate")) == 1  # the backend saw one request, and no failure
