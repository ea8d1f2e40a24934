"""Throughput of 64 concurrent requests through AsyncClient against raw AsyncOpenAI on the same emulator.

    python benchmarks/concurrency.py [--concurrency 64] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import time

import openai
from _common import emulator_env, machine

import genai_sdk as genai

PROMPT = "an avocado couch"


async def run(args: argparse.Namespace) -> None:
    raw = openai.AsyncOpenAI(max_retries=0)
    client = genai.AsyncClient(image="openai:dall-e-2", policy=args.policy, ledger=args.ledger)
    await client.credits.grant(10**9)

    async def burst_raw() -> None:
        await asyncio.gather(*(
            raw.images.generate(model="dall-e-2", prompt=PROMPT, n=1, size=args.size, response_format="b64_json")
            for _ in range(args.concurrency)
        ))

    async def one_raw_decoded() -> None:  # what a user of the raw client does to get the image's bytes
        response = await raw.images.generate(model="dall-e-2", prompt=PROMPT, n=1, size=args.size, response_format="b64_json")
        assert response.data and base64.b64decode(response.data[0].b64_json or "")

    async def burst_raw_decoded() -> None:
        await asyncio.gather(*(one_raw_decoded() for _ in range(args.concurrency)))

    async def burst_sdk() -> None:
        await asyncio.gather(*(client.images.generate(PROMPT, size=args.size) for _ in range(args.concurrency)))

    await burst_raw()
    await burst_sdk()
    raw_rates: list[float] = []
    decoded_rates: list[float] = []
    sdk_rates: list[float] = []
    for _ in range(args.rounds):
        for burst, rates in ((burst_raw, raw_rates), (burst_raw_decoded, decoded_rates), (burst_sdk, sdk_rates)):
            started = time.perf_counter()
            await burst()
            rates.append(args.concurrency / (time.perf_counter() - started))
    print(f"# {args.concurrency} concurrent requests, {args.rounds} rounds, {args.size}, via the emulator, ledger {args.ledger} ({machine()})")
    print(f"raw AsyncOpenAI   median {statistics.median(raw_rates):8.1f} requests/s")
    print(f"raw + b64decode   median {statistics.median(decoded_rates):8.1f} requests/s")
    print(f"genai AsyncClient median {statistics.median(sdk_rates):8.1f} requests/s")
    ratio = statistics.median(sdk_rates) / statistics.median(raw_rates)
    print(f"throughput ratio sdk/raw {ratio:.3f}")
    print(f"throughput ratio sdk/(raw + b64decode) {statistics.median(sdk_rates) / statistics.median(decoded_rates):.3f}")
    print(f"target: ratio >= 0.9 -> {'met' if ratio >= 0.9 else 'NOT met'}")
    await client.aclose()
    await raw.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--policy", default="standard",
                        help="standard (the default: prompt and output checks) or off (the SDK's own overhead)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--size", default="256x256")
    parser.add_argument("--ledger", default="memory://", help="ledger URL; the SDK's default is a SQLite file")
    with emulator_env():
        asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
