"""Reliability under faults: image requests against the emulator with 30% of the answers spoilt by every kind of
fault it knows (genai_sdk.testing.CHAOS_OPENAI_IMAGES / CHAOS_REPLICATE), through the SDK and, for comparison,
through the raw openai client under the same faults and timeout.

    python benchmarks/reliability.py [--requests 1000] [--replicate 300] [--rate 0.3] [--timeout 2]

Prints, per run: how requests ended (success, typed error by class, anything else), the worst overshoot past the
timeout, what the ledger recorded against what the emulator made, and reservations left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import io
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import genai_sdk as genai  # noqa: E402
from genai_sdk.testing import CHAOS_OPENAI_IMAGES, CHAOS_REPLICATE, Emulator  # noqa: E402

PROMPT = "a lighthouse at dusk"
URL = {"openai": {"response_format": "url"}}


def _ended(error: BaseException | None) -> str:
    if error is None:
        return "success"
    return type(error).__name__ if isinstance(error, genai.GenAIError) else f"UNTYPED {type(error).__name__}"


def _report(name: str, ends: list[tuple[str, float]], timeout: float, ledger: dict[str, Any]) -> None:
    counts = collections.Counter(kind for kind, _ in ends)
    worst = max(elapsed for _, elapsed in ends) - timeout
    durations = sorted(elapsed for _, elapsed in ends)
    print(f"\n## {name}: {len(ends)} requests")
    for kind, count in counts.most_common():
        print(f"  {kind:32s} {count:5d}")
    print(f"  median {durations[len(durations) // 2]:.3f} s, worst {durations[-1]:.3f} s "
          f"(past the {timeout:g} s timeout by {max(worst, 0):.3f} s)")  # fmt: skip
    for key, value in ledger.items():
        print(f"  {key:32s} {value}")


def _ledger(history: list[Any], reserved: Any, billable: int, per_image: Decimal) -> dict[str, Any]:
    """What the ledger holds against what the backend made (``billable`` images), in credits: a call whose attempts
    lost two generations has one spent line holding both."""
    charges = [e for e in history if e.kind == "charge"]
    spent = [e for e in history if e.kind == "spent"]
    recorded = -sum((e.credits for e in charges + spent), Decimal(0))
    return {"charges": len(charges), "spent lines": len(spent), "images made (billable)": billable,
            "credits recorded / made": f"{recorded} / {billable * per_image}",
            "unrecorded credits": max(Decimal(0), billable * per_image - recorded), "left reserved": reserved}  # fmt: skip


def _billable(emulator: Emulator) -> int:
    return sum(int(r.json.get("n", 1)) for r in emulator.calls("images.generate") if r.status == 200 and r.fault != "no_images")


def _per_image(model: str, size: str | None = "256x256") -> Decimal:
    credits: Decimal = genai.Client(ledger="memory://").images.estimate("x", model=model, size=size).credits
    return credits


def _timed(call: Any) -> tuple[str, float]:
    """How one request ended, and how long it took."""
    started = time.monotonic()
    try:
        call()
        error = None
    except BaseException as exc:  # noqa: BLE001 - counted
        error = exc
    return _ended(error), time.monotonic() - started


def _under_chaos(emulator: Emulator, faults: dict[str, list[Any]], rate: float, seed: int, one: Any, requests: int) -> list[tuple[str, float]]:
    """``one(index)`` for each request, from 16 threads, with ``rate`` of the answers spoilt."""
    emulator.chaos(rate, faults, seed=seed)
    with ThreadPoolExecutor(16) as pool:
        ends = list(pool.map(one, range(requests)))
    emulator.chaos(0, {})
    return ends


def sdk_sync(emulator: Emulator, requests: int, rate: float, timeout: float) -> None:
    emulator.clear()
    client = genai.Client(image="openai:dall-e-2", ledger="memory://", policy="off")
    client.retry_policy.initial_delay, client.retry_policy.max_delay = 0.01, 0.05

    def one(index: int) -> tuple[str, float]:
        options = URL if index % 2 else None
        return _timed(lambda: client.images.generate(PROMPT, size="256x256", timeout=timeout, provider_options=options))

    ends = _under_chaos(emulator, CHAOS_OPENAI_IMAGES, rate, 1, one, requests)
    _report("genai_sdk, sync (16 threads)", ends, timeout,
            _ledger(client.credits.history(), client.credits.reserved(), _billable(emulator), _per_image("openai:dall-e-2")))  # fmt: skip


def sdk_async(emulator: Emulator, requests: int, rate: float, timeout: float) -> None:
    emulator.clear()

    async def run() -> tuple[list[tuple[str, float]], dict[str, Any]]:
        client = genai.AsyncClient(image="openai:dall-e-2", ledger="memory://", policy="off")
        client.retry_policy.initial_delay, client.retry_policy.max_delay = 0.01, 0.05
        gate = asyncio.Semaphore(32)

        async def one(index: int) -> tuple[str, float]:
            async with gate:
                started = time.monotonic()
                try:
                    await client.images.generate(PROMPT, size="256x256", timeout=timeout,
                                                 provider_options=URL if index % 2 else None)  # fmt: skip
                    error = None
                except BaseException as exc:  # noqa: BLE001
                    error = exc
                return _ended(error), time.monotonic() - started

        ends = await asyncio.gather(*(one(i) for i in range(requests)))
        return list(ends), _ledger(await client.credits.history(), await client.credits.reserved(), _billable(emulator), _per_image("openai:dall-e-2"))

    emulator.chaos(rate, CHAOS_OPENAI_IMAGES, seed=2)
    ends, ledger = asyncio.run(run())
    emulator.chaos(0, {})
    _report("genai_sdk, async (concurrency 32)", ends, timeout, ledger)


def raw_openai(emulator: Emulator, requests: int, rate: float, timeout: float) -> None:
    """The same requests through openai-python as a user would write them: its own retries, the same timeout,
    images decoded with Pillow (b64) or fetched with httpx (URLs)."""
    import base64

    import httpx
    import openai
    from PIL import Image

    emulator.clear()
    client = openai.OpenAI(max_retries=2, timeout=timeout)
    http = httpx.Client(follow_redirects=True, timeout=timeout)

    def one(index: int) -> tuple[str, float]:
        started = time.monotonic()
        try:
            fmt = "url" if index % 2 else "b64_json"
            answer = client.images.generate(model="dall-e-2", prompt=PROMPT, size="256x256", response_format=fmt)
            for item in answer.data or []:
                data = http.get(item.url).content if item.url else base64.b64decode(item.b64_json or "")
                Image.open(io.BytesIO(data)).load()
            kind = "success" if answer.data else "UNTYPED empty success"
        except openai.OpenAIError as exc:
            kind = f"openai {type(exc).__name__}"
        except BaseException as exc:  # noqa: BLE001
            kind = f"UNTYPED {type(exc).__name__}"
        return kind, time.monotonic() - started

    # Without the faults that send results to private addresses: the raw client would connect there, and this
    # benchmark talks to loopback only.
    safe = {op: [f for f in kinds if f not in ("private_url", "redirect_private")] for op, kinds in CHAOS_OPENAI_IMAGES.items()}
    ends = _under_chaos(emulator, safe, rate, 1, one, requests)
    _report("raw openai-python + httpx + Pillow, sync (16 threads)", ends, timeout,
            {"generations made (billable)": _billable(emulator), "recorded": "nothing: no ledger"})  # fmt: skip


def sdk_replicate(emulator: Emulator, requests: int, rate: float, timeout: float) -> None:
    emulator.clear()
    emulator.replicate.max_wait, emulator.replicate.job_seconds = 0, 0.05
    client = genai.Client(ledger="memory://", policy="off")
    client.retry_policy.initial_delay, client.retry_policy.max_delay = 0.01, 0.05
    delivered: set[str] = set()

    def one(index: int) -> tuple[str, float]:
        def call() -> None:
            result = client.images.generate(PROMPT, model="replicate:black-forest-labs/flux-schnell", timeout=timeout)
            delivered.update(result.request_ids)

        return _timed(call)

    ends = _under_chaos(emulator, CHAOS_REPLICATE, rate, 3, one, requests)
    counts = emulator.replicate.status_counts()
    succeeded = {pid for pid, p in emulator.replicate.predictions.items() if p.body["status"] == "succeeded"}
    images = sum(int(p.body["input"].get("num_outputs") or 1) for pid, p in emulator.replicate.predictions.items() if pid in succeeded)
    ledger = _ledger(client.credits.history(), client.credits.reserved(), images, _per_image("replicate:black-forest-labs/flux-schnell", None))
    ledger["predictions by status"] = dict(counts)
    ledger["succeeded, not delivered"] = len(succeeded - delivered)
    _report("genai_sdk, Replicate, sync (16 threads)", ends, timeout, ledger)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--replicate", type=int, default=300)
    parser.add_argument("--rate", type=float, default=0.3)
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    with Emulator() as emulator, emulator.installed():
        print(f"# {args.rate:.0%} of answers spoilt; timeout {args.timeout:g} s; max_retries 2")
        sdk_sync(emulator, args.requests, args.rate, args.timeout)
        sdk_async(emulator, args.requests, args.rate, args.timeout)
        raw_openai(emulator, args.requests, args.rate, args.timeout)
        sdk_replicate(emulator, args.replicate, args.rate, args.timeout)


if __name__ == "__main__":
    main()
