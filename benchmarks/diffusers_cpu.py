"""client.images.generate on a local diffusers pipeline against the raw pipeline call, same model, same seed,
on the CPU with a small random model (weights do not change speed), in one run.

    python benchmarks/diffusers_cpu.py [--runs 15] [--steps 10] [--size 64]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _common import machine

import genai_sdk as genai
from genai_sdk.testing.tiny_diffusers import stable_diffusion


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()

    import torch
    from diffusers import StableDiffusionPipeline

    folder = stable_diffusion(Path(tempfile.mkdtemp()) / "small-sd", scale=4)
    raw = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True, use_safetensors=True)
    raw.set_progress_bar_config(disable=True)
    client = genai.Client(image=f"diffusers:{folder}", ledger="memory://")
    size = f"{args.size}x{args.size}"

    def call_raw() -> None:
        generator = torch.Generator("cpu").manual_seed(0)
        raw("an avocado couch", num_inference_steps=args.steps, width=args.size, height=args.size, generator=generator)

    def call_sdk() -> None:
        client.images.generate("an avocado couch", size=size, steps=args.steps, seed=0)

    call_raw()
    call_sdk()
    raw_times, sdk_times = [], []
    for _ in range(args.runs):
        for fn, bucket in ((call_raw, raw_times), (call_sdk, sdk_times)):
            started = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - started)
    raw_median, sdk_median = statistics.median(raw_times), statistics.median(sdk_times)
    print(f"# diffusers on the CPU, {size}, {args.steps} steps, torch {torch.__version__} ({machine()})")
    print(f"raw pipeline    median {raw_median * 1000:8.1f} ms")
    print(f"genai_sdk       median {sdk_median * 1000:8.1f} ms")
    ratio = sdk_median / raw_median
    print(f"ratio sdk/raw {ratio:.3f} (target <= 1.05: {'met' if ratio <= 1.05 else 'NOT met'})")


if __name__ == "__main__":
    main()
