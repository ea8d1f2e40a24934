"""client.images.upscale and client.images.from_sketch on local diffusers pipelines against the raw pipeline calls,
same models, same seeds, same inputs (one tile: the raw pipelines do not tile), on the CPU with tiny random models
(weights do not change speed), interleaved, medians.

    python benchmarks/diffusers_ops_cpu.py [--runs 9] [--steps 10] [--size 64]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import machine

import genai_sdk as genai
from genai_sdk.testing.tiny_diffusers import controlnet_pipeline, ldm_super_resolution, sd_upscaler


def _time(raw: Callable[[], object], sdk: Callable[[], object], runs: int) -> tuple[float, float]:
    raw(), sdk()  # warm up: loading, first-call allocations
    raw_times, sdk_times = [], []
    for _ in range(runs):
        for fn, bucket in ((raw, raw_times), (sdk, sdk_times)):
            started = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - started)
    return statistics.median(raw_times), statistics.median(sdk_times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=64, help="input edge in pixels (one tile)")
    args = parser.parse_args()

    import torch
    from diffusers import DiffusionPipeline
    from PIL import Image as PILImage
    from PIL import ImageDraw

    root = Path(tempfile.mkdtemp())
    size, steps = args.size, args.steps
    photo = PILImage.effect_mandelbrot((size, size), (-2.0, -1.5, 1.0, 1.5), 60).convert("RGB")
    sketch = PILImage.new("RGB", (size, size), "white")
    ImageDraw.Draw(sketch).line((4, 4, size - 5, size - 9), fill="black", width=2)
    control = PILImage.eval(sketch, lambda v: 255 - v)  # what the SDK hands the ControlNet: white lines on black

    def generator() -> torch.Generator:
        return torch.Generator("cpu").manual_seed(0)

    cases: list[tuple[str, Path, Callable[[DiffusionPipeline], object], Callable[[genai.Client], object]]] = [
        ("upscale, LDM x4 (no prompt)", ldm_super_resolution(root / "ldm"),
         lambda p: p(image=photo, num_inference_steps=steps, generator=generator()),
         lambda c: c.images.upscale(photo, seed=0, steps=steps)),
        ("upscale, SD x4 (prompt)", sd_upscaler(root / "sd-x4"),
         lambda p: p(prompt="a red fox", image=photo, num_inference_steps=steps, generator=generator()),
         lambda c: c.images.upscale(photo, prompt="a red fox", seed=0, steps=steps)),
        ("sketch, SD + ControlNet", controlnet_pipeline(root / "sd-cn"),
         lambda p: p(prompt="a house", image=control, width=size, height=size, num_inference_steps=steps,
                     generator=generator()),
         lambda c: c.images.from_sketch(sketch, "a house", seed=0, steps=steps)),
    ]  # fmt: skip
    print(f"# diffusers upscale and sketch on the CPU, {size}x{size} input, {steps} steps, torch {torch.__version__} "
          f"({machine()})")  # fmt: skip
    print(f"{'operation':32} {'raw ms':>9} {'sdk ms':>9} {'ratio':>6}")
    for label, folder, raw_call, sdk_call in cases:
        pipeline = DiffusionPipeline.from_pretrained(folder, local_files_only=True, use_safetensors=True)
        pipeline.set_progress_bar_config(disable=True)
        client = genai.Client(image=f"diffusers:{folder}", ledger="memory://", policy="off")
        raw_median, sdk_median = _time(functools.partial(raw_call, pipeline), functools.partial(sdk_call, client), args.runs)
        ratio = sdk_median / raw_median
        print(f"{label:32} {raw_median * 1000:9.1f} {sdk_median * 1000:9.1f} {ratio:6.3f}"
              f"{'' if ratio <= 1.05 else '  (target <= 1.05 NOT met)'}")  # fmt: skip


if __name__ == "__main__":
    main()
