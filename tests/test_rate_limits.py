"""Client-side rate limits: requests per window and in flight, per provider and per model, shared through the ledger's
database by every process that uses it. Checked by counting requests on the emulator, not by timing thresholds."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import genai_sdk as genai
from genai_sdk.testing import Emulator

from .conftest import fast


def _most_in_window(times: list[float], window: float) -> int:
    """The most requests that arrived within any stretch of ``window`` seconds."""
    times = sorted(times)
    return max((sum(1 for t in times[i:] if t < start + window) for i, start in enumerate(times)), default=0)


def test_requests_in_flight_are_bounded(genai_emulator: Emulator) -> None:
    genai_emulator.fail("images.generate", "slow", times=6, delay=0.3)
    client = fast(genai.Client(image="openai:dall-e-2", rate_limits={"openai": {"concurrent": 2}}))
    results = client.images.generate_many([f"cat {i}" for i in range(6)], concurrency=6, size="256x256")
    assert len(results.succeeded) == 6
    assert genai_emulator.peak_in_flight("images.generate") == 2


def test_requests_per_window_are_bounded_per_model(genai_emulator: Emulator) -> None:
    limits = {"openai:dall-e-2": {"requests": 3, "per": 1.0}}
    client = fast(genai.Client(image="openai:dall-e-2", rate_limits=limits))
    results = client.images.generate_many([f"cat {i}" for i in range(7)], concurrency=7, size="256x256")
    assert len(results.succeeded) == 7
    arrivals = [call.received for call in genai_emulator.calls("images.generate")]
    assert _most_in_window(arrivals, 0.9) <= 3
    assert max(arrivals) - min(arrivals) >= 1.0  # seven calls at three a second took more than two windows
    other = client.speech.synthesize("Not limited.", model="openai:tts-1")  # another model of the provider
    assert other.model == "openai:tts-1"


def test_async_calls_share_the_limit(genai_emulator: Emulator) -> None:
    genai_emulator.fail("images.generate", "slow", times=5, delay=0.2)

    async def main() -> None:
        async with genai.AsyncClient(image="openai:dall-e-2", rate_limits={"openai": {"concurrent": 1}}) as aclient:
            await asyncio.gather(*(aclient.images.generate(f"dog {i}", size="256x256") for i in range(5)))

    asyncio.run(main())
    assert genai_emulator.peak_in_flight("images.generate") == 1 and len(genai_emulator.calls("images.generate")) == 5


def test_a_wait_longer_than_the_call_may_take_is_a_rate_limit_error(genai_emulator: Emulator) -> None:
    client = fast(genai.Client(image="openai:dall-e-2", rate_limits={"openai": {"requests": 1, "per": 600}}))
    client.images.generate("first", size="256x256")
    with pytest.raises(genai.RateLimitError, match="client-side rate limit"):
        client.images.generate("second", size="256x256", timeout=2)
    assert len(genai_emulator.calls("images.generate")) == 1 and client.credits.reserved() == 0
    served = client.images.generate("third", model=["openai:dall-e-2", "replicate:black-forest-labs/flux-schnell"], timeout=5)
    assert served.model == "replicate:black-forest-labs/flux-schnell"  # the limited model is skipped for a fallback


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"openai": {"rpm": 0}}, "whole numbers of at least 1"),
        ({"openai": {"rps": 3}}, "unknown field"),
        ({"openai": {}}, "sets no limit"),
        ({"openai": {"requests": 2, "per": -1}}, "per must be seconds"),
        ({"openai": {"rpm": 5, "requests": 5}}, "not both"),
        ({"openai": 5}, "must be a table"),
    ],
)
def test_bad_limits_are_refused(limits: object, message: str) -> None:
    with pytest.raises(genai.ConfigError, match=message):
        genai.Client(ledger="memory://", rate_limits=limits)  # type: ignore[arg-type]


def test_limits_from_a_config_file_and_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "genai.toml"
    config.write_text('[rate_limits]\nopenai = { rpm = 50, concurrent = 4 }\n"openai:dall-e-3" = { requests = 5, per = 10 }\n')
    limits = genai.Client(config=config, ledger="memory://").settings.rate_limits
    assert [(x.key, x.requests, x.per, x.concurrent) for x in limits] == [("openai", 50, 60.0, 4), ("openai:dall-e-3", 5, 10.0, None)]
    monkeypatch.setenv("GENAI_RATE_LIMITS", '{"replicate": {"concurrent": 2}}')
    assert genai.Client(ledger="memory://").settings.rate_limits[0].key == "replicate"
    monkeypatch.setenv("GENAI_RATE_LIMITS", "replicate=2")
    with pytest.raises(genai.ConfigError, match="JSON object"):
        genai.Client(ledger="memory://")


_WORKER = textwrap.dedent(
    """
    import sys
    import genai_sdk as genai

    limits = {"openai:dall-e-2": {"requests": 3, "per": 1.0}}
    client = genai.Client(image="openai:dall-e-2", ledger=sys.argv[1], rate_limits=limits)
    results = client.images.generate_many([f"{sys.argv[2]} {i}" for i in range(5)], concurrency=5, size="256x256")
    print(len(results.succeeded))
    """
)


def _two_processes(ledger: str) -> list[str]:
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, ledger, name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("left", "right")
    ]
    outputs = [worker.communicate(timeout=120) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), outputs
    return [out.strip() for out, _ in outputs]


def test_the_limit_holds_across_processes_sharing_a_sqlite_ledger(genai_emulator: Emulator, tmp_path: Path) -> None:
    assert _two_processes(f"sqlite:///{tmp_path / 'ledger.db'}") == ["5", "5"]
    arrivals = [call.received for call in genai_emulator.calls("images.generate")]
    assert len(arrivals) == 10 and _most_in_window(arrivals, 0.9) <= 3


def test_the_limit_holds_across_processes_sharing_a_postgres_ledger(genai_emulator: Emulator, postgres_url: str) -> None:
    assert _two_processes(postgres_url) == ["5", "5"]
    arrivals = [call.received for call in genai_emulator.calls("images.generate")]
    assert len(arrivals) == 10 and _most_in_window(arrivals, 0.9) <= 3
