"""Observability: the on_call_end hook and OpenTelemetry spans (with the SDK's in-memory span exporter)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import pytest

import genai_sdk as genai
from genai_sdk.testing import Emulator, FakeProvider

from .conftest import fast


def test_every_call_reports_its_end(genai_emulator: Emulator) -> None:
    events: list[genai.CallEvent] = []
    genai_emulator.fail("images.generate", "server_error")  # one retry before the answer
    client = fast(genai.Client(image="openai:dall-e-2", on_call_end=events.append, max_retries=2))
    result = client.images.generate("a lighthouse", size="256x256", n=2)
    [event] = events
    assert (event.operation, event.model, event.outcome, event.attempts) == ("images.generate", "openai:dall-e-2", "ok", 2)
    assert event.cost == result.cost and event.cost.usd == Decimal("0.032") and event.latency > 0
    assert event.account == "default" and event.request_ids == result.request_ids and event.error is None

    client.credits.set_budget(credits=1)
    with pytest.raises(genai.BudgetExceededError):
        client.images.generate("a lighthouse", size="256x256")
    assert (events[-1].outcome, events[-1].attempts, events[-1].cost) == ("over_budget", 0, None)
    with pytest.raises(genai.InvalidRequestError):
        client.images.generate("a lighthouse", size="7x7")
    assert events[-1].outcome == "invalid" and isinstance(events[-1].error, genai.InvalidRequestError)


def test_refusals_errors_and_speech_are_reported(genai_emulator: Emulator) -> None:
    events: list[genai.CallEvent] = []
    client = fast(genai.Client(image="openai:dall-e-2", on_call_end=events.append, max_retries=1, policy="off"))
    with pytest.raises(genai.ContentPolicyError):
        client.images.generate(f"a {genai_emulator.blocked_words[0]}")
    genai_emulator.fail("images.generate", "unavailable", times=2)
    with pytest.raises(genai.ProviderUnavailableError):
        client.images.generate("a cat")
    assert [(e.outcome, e.attempts) for e in events] == [("refused", 1), ("error", 2)]
    client.speech.synthesize("Hello.", model="openai:tts-1")
    assert (events[-1].operation, events[-1].model, events[-1].outcome) == ("speech.synthesize", "openai:tts-1", "ok")


def test_a_hook_that_raises_does_not_fail_the_call(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: genai.CallEvent) -> None:
        raise RuntimeError("the dashboard is down")

    client = genai.Client(image="fake:x", ledger="memory://", policy="off", providers={"fake": FakeProvider()}, on_call_end=broken)
    assert len(client.images.generate("a cat").images) == 1
    assert "on_call_end raised RuntimeError: the dashboard is down" in caplog.text
    with pytest.raises(genai.ConfigError, match="on_call_end must be a function"):
        genai.Client(on_call_end="print")  # type: ignore[arg-type]


def test_fallbacks_and_async_calls_are_reported(genai_emulator: Emulator) -> None:
    events: list[genai.CallEvent] = []
    genai_emulator.fail("images.generate", "server_error")

    async def main() -> None:
        chain = ["openai:dall-e-2", "replicate:black-forest-labs/flux-schnell"]
        async with genai.AsyncClient(image=chain, max_retries=0, on_call_end=events.append, policy="off") as aclient:
            await aclient.images.generate("a lighthouse")

    asyncio.run(main())
    [event] = events
    assert event.model == "replicate:black-forest-labs/flux-schnell" and event.failed_models == ["openai:dall-e-2"]
    assert event.attempts == 2 and event.outcome == "ok"


@pytest.fixture
def spans() -> Iterator[object]:
    pytest.importorskip("opentelemetry.sdk", reason="spans need the 'otel' extra")
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("genai_sdk")
    original = trace.get_tracer

    def our_tracer(name: str, *args: object, **kwargs: object) -> object:
        return tracer if name == "genai_sdk" else original(name, *args, **kwargs)  # type: ignore[arg-type]

    trace.get_tracer = our_tracer  # type: ignore[assignment]
    yield exporter
    trace.get_tracer = original


def test_spans_follow_the_genai_conventions(genai_emulator: Emulator, spans: object) -> None:
    client = fast(genai.Client(image="openai:dall-e-2", otel=True, max_retries=0))
    client.images.generate("a lighthouse", size="256x256")
    genai_emulator.fail("images.generate", "server_error")
    with pytest.raises(genai.ProviderUnavailableError):
        client.images.generate("a lighthouse", size="256x256")
    ok, failed = spans.get_finished_spans()  # type: ignore[attr-defined]
    assert ok.name == "images.generate openai:dall-e-2"
    attributes = dict(ok.attributes)
    assert attributes["gen_ai.system"] == "openai" and attributes["gen_ai.request.model"] == "openai:dall-e-2"
    assert attributes["gen_ai.operation.name"] == "images.generate" and attributes["gen_ai.response.model"] == "openai:dall-e-2"
    assert attributes["genai_sdk.cost.usd"] == pytest.approx(0.016) and attributes["genai_sdk.cost.credits"] == pytest.approx(1.6)
    assert attributes["genai_sdk.outcome"] == "ok" and attributes["genai_sdk.attempts"] == 1
    assert failed.status.status_code.name == "ERROR" and failed.attributes["error.type"] == "ProviderUnavailableError"
    assert "genai_sdk.cost.usd" not in failed.attributes


def test_otel_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENAI_OTEL", "maybe")
    with pytest.raises(genai.ConfigError, match="otel must be true or false"):
        genai.Client()
    monkeypatch.setenv("GENAI_OTEL", "on")
    assert genai.Client(ledger="memory://").settings.otel is True
