"""Batches at volume, against the emulator in a process of its own.

1. Throughput: N images through ``AsyncClient.images.generate_many`` (and ``Client.images.generate_many``) against a
   hand-written ``asyncio.gather`` of raw ``AsyncOpenAI`` calls bounded by a semaphore, every answer taking
   ``--latency`` seconds; and against LiteLLM's ``aimage_generation`` when it is installed.
2. Rate limits: the same batch against a server that answers 429 beyond ``--server-limit`` requests a second, with and
   without the SDK's client-side limiter set to that limit: 429s received and wall time.

    python benchmarks/batch.py [--images 500] [--concurrency 32] [--latency 0.1] [--server-limit 20] [--peer-python P]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
import time

import openai
from _common import emulator_env, machine

import genai_sdk as genai

PROMPT = "an avocado couch"


async def raw_gather(count: int, concurrency: int, size: str) -> float:
    client = openai.AsyncOpenAI(max_retries=0)
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> bytes:
        async with gate:
            answer = await client.images.generate(
                model="dall-e-2", prompt=f"{PROMPT} {i}", n=1, size=size, response_format="b64_json"  # type: ignore[arg-type]
            )
            assert answer.data and answer.data[0].b64_json
            return base64.b64decode(answer.data[0].b64_json)

    started = time.perf_counter()
    images = await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.perf_counter() - started
    assert len(images) == count
    await client.close()
    return elapsed


async def sdk_async(count: int, concurrency: int, size: str, **settings: object) -> tuple[float, genai.BatchResults[genai.ImageResult]]:
    async with genai.AsyncClient(image="openai:dall-e-2", ledger="memory://", policy="off", **settings) as client:  # type: ignore[arg-type]
        started = time.perf_counter()
        results = await client.images.generate_many([f"{PROMPT} {i}" for i in range(count)], concurrency=concurrency, size=size)
        return time.perf_counter() - started, results


def sdk_sync(count: int, concurrency: int, size: str) -> float:
    with genai.Client(image="openai:dall-e-2", ledger="memory://", policy="off") as client:
        started = time.perf_counter()
        results = client.images.generate_many([f"{PROMPT} {i}" for i in range(count)], concurrency=concurrency, size=size, progress=False)
        elapsed = time.perf_counter() - started
    assert len(results.succeeded) == count, results.failed[:3]
    return elapsed


def litellm_gather(python: str | None, count: int, concurrency: int, size: str) -> dict[str, float] | None:
    """LiteLLM's ``aimage_generation`` (and raw calls, for the ratio) in an interpreter that has LiteLLM."""
    if python is None:
        try:
            import litellm  # noqa: F401
        except ModuleNotFoundError:
            return None
        python = sys.executable
    import json
    import subprocess
    from pathlib import Path

    script = Path(__file__).with_name("batch_peer.py")
    done = subprocess.run([python, str(script), str(count), str(concurrency), size], capture_output=True, text=True, check=True)
    times: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return times


def throughput(args: argparse.Namespace) -> None:
    with emulator_env("--latency", str(args.latency)):
        asyncio.run(raw_gather(args.concurrency, args.concurrency, args.size))  # warm both paths
        asyncio.run(sdk_async(args.concurrency, args.concurrency, args.size))
        raw = asyncio.run(raw_gather(args.images, args.concurrency, args.size))
        elapsed, results = asyncio.run(sdk_async(args.images, args.concurrency, args.size))
        assert len(results.succeeded) == args.images, results.failed[:3]
        threads = sdk_sync(args.images, args.concurrency, args.size)
        peer = litellm_gather(args.peer_python, args.images, args.concurrency, args.size)
    print(f"{args.images} images, concurrency {args.concurrency}, {args.latency * 1000:.0f} ms answers ({machine()})")
    print(f"  raw AsyncOpenAI + gather        {args.images / raw:8.1f} images/s")
    print(f"  AsyncClient.generate_many       {args.images / elapsed:8.1f} images/s   ratio to raw {raw / elapsed:.3f}")
    print(f"  Client.generate_many (threads)  {args.images / threads:8.1f} images/s   ratio to raw {raw / threads:.3f}")
    if peer is None:
        print("  LiteLLM aimage_generation        not installed (--peer-python: an interpreter that has it)")
    else:
        print(f"  LiteLLM aimage_generation       {args.images / peer['litellm']:8.1f} images/s   ratio to raw "
              f"{peer['raw'] / peer['litellm']:.3f} (raw in its own run: {args.images / peer['raw']:.1f} images/s)")


def limited(args: argparse.Namespace) -> None:
    limit = f"images.generate={args.server_limit}/1"
    rows = []
    for label, settings in (
        ("no client-side limit (retries on 429)", {"max_retries": 10}),
        ("client-side limit = server's", {"max_retries": 10, "rate_limits": {"openai": {"requests": args.server_limit, "per": 1.0}}}),
    ):
        with emulator_env("--latency", str(args.latency), "--rate-limit", limit):
            before = _count_429s()
            elapsed, results = asyncio.run(sdk_async(args.limited_images, args.concurrency, args.size, **settings))
            rows.append((label, elapsed, len(results.succeeded), _count_429s() - before))
    print(f"{args.limited_images} images against a server limit of {args.server_limit}/s, concurrency {args.concurrency}")
    for label, elapsed, done, refused in rows:
        print(f"  {label:40s} {elapsed:6.2f} s   {done} done   {refused} answers 429")


_SEEN_429 = [0]


def _count_429s() -> int:
    return _SEEN_429[0]


def _watch_429s() -> None:
    """Count the 429s the SDK meets, from its own log of retries (the emulator is in another process)."""
    import logging

    class Counter(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "429" in record.getMessage() or "RateLimitError" in record.getMessage():
                _SEEN_429[0] += 1

    logger = logging.getLogger("genai_sdk")
    logger.addHandler(Counter(logging.INFO))
    logger.setLevel(logging.INFO)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--limited-images", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--server-limit", type=int, default=20)
    parser.add_argument("--size", default="256x256")
    parser.add_argument("--peer-python", help="an interpreter with LiteLLM installed, for the peer's figures")
    args = parser.parse_args()
    _watch_429s()
    throughput(args)
    limited(args)


if __name__ == "__main__":
    main()
