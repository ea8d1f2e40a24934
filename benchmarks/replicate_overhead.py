"""Replicate through the SDK against Replicate's own Python client, on the same emulator in one run.

Two measurements:

- **per call**: sequential image predictions that finish at once (FLUX schnell, one 1:1 image), the SDK's
  ``client.images.generate`` (whole pipeline: catalog, policy, reservation, retries, the download, accounting)
  against ``replicate.Client.run`` followed by the download of its output, calls alternating between the two;
- **concurrency**: bursts of concurrent predictions that each run ``--job-seconds`` on the emulator, the SDK's
  ``AsyncClient`` against ``replicate.async_run`` (plus the download), wall time per burst.

    python benchmarks/replicate_overhead.py [--calls 300] [--concurrency 64] [--rounds 5] [--job-seconds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable

import httpx
import replicate
from _common import emulator_env, machine, median_ms

import genai_sdk as genai

MODEL = "black-forest-labs/flux-schnell"
INPUT = {"prompt": "an avocado couch", "aspect_ratio": "1:1", "megapixels": "0.25", "num_outputs": 1}


def per_call(calls: int, policy: str) -> None:
    official = replicate.Client(api_token=os.environ["REPLICATE_API_TOKEN"], base_url=os.environ["REPLICATE_BASE_URL"])
    downloads = httpx.Client()
    client = genai.Client(image=f"replicate:{MODEL}", policy=policy, ledger="memory://")
    client.credits.grant(10**9)

    def call_raw() -> None:
        (url,) = official.run(MODEL, input=INPUT)
        assert downloads.get(str(url)).content  # the emulator serves http: the client hands back the URL as text

    def call_sdk() -> None:
        assert client.images.generate(INPUT["prompt"], size="512x512").images[0].data

    for _ in range(20):  # warm connection pools and the SDK's schema cache
        call_raw()
        call_sdk()
    raw_times: list[float] = []
    sdk_times: list[float] = []
    for _ in range(calls):
        for fn, bucket in ((call_raw, raw_times), (call_sdk, sdk_times)):
            started = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - started)
    ratio = statistics.median(sdk_times) / statistics.median(raw_times)
    print(f"# per call: {calls} sequential predictions each, {MODEL} 512x512 via the emulator, ledger memory ({machine()})")
    print(f"raw replicate.run + download median {median_ms(raw_times):7.3f} ms")
    print(f"genai_sdk images.generate    median {median_ms(sdk_times):7.3f} ms")
    print(f"added per call                 median {median_ms(sdk_times) - median_ms(raw_times):7.3f} ms")
    print(f"ratio sdk/raw (medians) {ratio:.3f}")


async def bursts(concurrency: int, rounds: int, job_seconds: float, policy: str) -> None:
    official = replicate.Client(api_token=os.environ["REPLICATE_API_TOKEN"], base_url=os.environ["REPLICATE_BASE_URL"])
    limits = httpx.Limits(max_connections=concurrency * 2)
    async with httpx.AsyncClient(limits=limits) as downloads, \
            genai.AsyncClient(image=f"replicate:{MODEL}", ledger="memory://", timeout=120, policy=policy) as client:

        async def raw_one(i: int) -> None:
            (url,) = await official.async_run(MODEL, input=dict(INPUT, prompt=f"a fox, take {i}"))
            assert (await downloads.get(str(url))).content

        async def sdk_one(i: int) -> None:
            result = await client.images.generate(f"a fox, take {i}", size="512x512")
            assert result.images[0].data

        async def burst(one: Callable[[int], Awaitable[None]]) -> float:
            started = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(concurrency)))
            return time.perf_counter() - started

        await burst(raw_one)  # warm both
        await burst(sdk_one)
        raw_walls: list[float] = []
        sdk_walls: list[float] = []
        for _ in range(rounds):
            raw_walls.append(await burst(raw_one))
            sdk_walls.append(await burst(sdk_one))
    print(f"# concurrency: bursts of {concurrency} predictions of {job_seconds:g} s each, median of {rounds} rounds")
    print(f"raw replicate.async_run + download median {statistics.median(raw_walls):6.3f} s a burst")
    print(f"genai_sdk AsyncClient                median {statistics.median(sdk_walls):6.3f} s a burst")
    print(f"ratio sdk/raw {statistics.median(sdk_walls) / statistics.median(raw_walls):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--policy", default="standard",
                        help="standard (the default: prompt and output checks) or off (the SDK's own overhead)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--job-seconds", type=float, default=1.0)
    args = parser.parse_args()
    with emulator_env():
        per_call(args.calls, args.policy)
    with emulator_env("--job-seconds", str(args.job_seconds)):
        asyncio.run(bursts(args.concurrency, args.rounds, args.job_seconds, args.policy))


if __name__ == "__main__":
    main()
