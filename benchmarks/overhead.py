"""Per-call overhead of client.images.generate against the raw openai client, same emulator, sequential calls.

The SDK runs its whole pipeline (catalog validation, the content policy (--policy standard: the prompt check and
the output image check; off: none), a reservation against a granted balance and a budget, the retry wrapper,
decoding and provenance, the commit). Calls alternate between the two
so that drift in the machine affects both alike.

    python benchmarks/overhead.py [--calls 300] [--policy standard|off]
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import time

import openai
from _common import emulator_env, machine, median_ms
from PIL import Image as PILImage

import genai_sdk as genai

PROMPT = "an avocado couch"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--policy", default="standard",
                        help="standard (the default: prompt and output checks) or off (the SDK's own overhead)")
    parser.add_argument("--size", default="256x256")
    parser.add_argument("--ledger", default="memory://", help="ledger URL; the SDK's default is a SQLite file")
    args = parser.parse_args()
    with emulator_env():
        raw = openai.OpenAI(max_retries=0)
        client = genai.Client(image="openai:dall-e-2", policy=args.policy, ledger=args.ledger)
        client.credits.grant(10**9)
        client.credits.set_budget(credits=10**9, period="day")

        def call_raw() -> None:
            response = raw.images.generate(model="dall-e-2", prompt=PROMPT, n=1, size=args.size, response_format="b64_json")
            assert response.data

        def call_raw_decoded() -> None:  # what a user of the raw client does to get the image's bytes
            response = raw.images.generate(model="dall-e-2", prompt=PROMPT, n=1, size=args.size, response_format="b64_json")
            assert response.data and base64.b64decode(response.data[0].b64_json or "")

        def call_raw_pixels() -> None:  # and what it does to know the bytes are a picture it can use: decode them
            response = raw.images.generate(model="dall-e-2", prompt=PROMPT, n=1, size=args.size, response_format="b64_json")
            PILImage.open(io.BytesIO(base64.b64decode(response.data[0].b64_json or "") if response.data else b"")).load()

        def call_sdk() -> None:
            assert client.images.generate(PROMPT, size=args.size).images

        for _ in range(20):  # warm both connection pools and caches
            call_raw()
            call_sdk()
        raw_times: list[float] = []
        decoded_times: list[float] = []
        pixel_times: list[float] = []
        sdk_times: list[float] = []
        for _ in range(args.calls):
            for fn, bucket in ((call_raw, raw_times), (call_raw_decoded, decoded_times), (call_raw_pixels, pixel_times),
                               (call_sdk, sdk_times)):  # fmt: skip
                started = time.perf_counter()
                fn()
                bucket.append(time.perf_counter() - started)
        ratios = sorted(s / r for s, r in zip(sdk_times, raw_times, strict=True))
        print(f"# per-call overhead, {args.calls} sequential calls each, {args.size}, dall-e-2 via the emulator, ledger {args.ledger} ({machine()})")
        print(f"raw openai      median {median_ms(raw_times):7.3f} ms")
        print(f"raw + b64decode median {median_ms(decoded_times):7.3f} ms")
        print(f"raw + decoding  median {median_ms(pixel_times):7.3f} ms   (b64decode, then Pillow decodes the picture)")
        print(f"genai_sdk       median {median_ms(sdk_times):7.3f} ms")
        print(f"added per call  median {median_ms(sdk_times) - median_ms(raw_times):7.3f} ms")
        ratio = statistics.median(sdk_times) / statistics.median(raw_times)
        print(f"ratio sdk/raw (medians) {ratio:.3f}; median of paired ratios {statistics.median(ratios):.3f}")
        decoded = statistics.median(sdk_times) / statistics.median(decoded_times)
        print(f"ratio sdk/(raw + b64decode) {decoded:.3f}")
        pixels = statistics.median(sdk_times) / statistics.median(pixel_times)
        print(f"ratio sdk/(raw + decoding) {pixels:.3f}")
        # The SDK decodes every picture before a call succeeds (a corrupt one must not be charged), as a caller of the
        # raw client must before using one: that is the like-for-like comparison.
        print(f"target: ratio to raw + decoding <= 1.15 -> {'met' if pixels <= 1.15 else 'NOT met'}")


if __name__ == "__main__":
    main()
