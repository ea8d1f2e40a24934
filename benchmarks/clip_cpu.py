"""client.images.score on a local CLIP model against the raw transformers call (processor, model, cosine and
softmax), same model, same inputs, on the CPU, in one run: a tiny model and one of ViT-B/32's shape (random weights
do not change speed). The SDK's call runs with an in-memory ledger; ``--policy`` sets its content policy.

    python benchmarks/clip_cpu.py [--runs 30] [--texts 8] [--policy off]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import machine

import genai_sdk as genai
from genai_sdk.testing.tiny_clip import clip_model

LABELS = ["cat", "dog", "car", "house", "tree", "red square", "blue circle", "green sky", "sky", "photo"]


def _median(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def compare(folder: Path, name: str, runs: int, count: int, policy: str) -> None:
    import torch
    from PIL import Image as PILImage
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(folder, local_files_only=True).eval()
    processor = CLIPProcessor.from_pretrained(folder, local_files_only=True)
    picture = PILImage.new("RGB", (256, 256), (200, 40, 40))
    image = genai.Image.from_pil(picture)
    texts = [f"a photo of a {label}" for label in (LABELS * 10)[:count]]
    client = genai.Client(image_scoring=f"clip:{folder}", ledger="memory://", policy=policy)

    def call_raw() -> None:
        inputs = processor(text=texts, images=[picture.convert("RGB")], return_tensors="pt", padding=True, truncation=True)
        with torch.inference_mode():
            output = model(**inputs)
        (output.image_embeds @ output.text_embeds.T).tolist()
        output.logits_per_image.softmax(dim=-1).tolist()

    def call_sdk() -> None:
        client.images.score(image, texts)

    call_raw()
    call_sdk()
    raw_times, sdk_times = [], []
    for _ in range(runs):  # interleaved, so that a slow moment of the machine falls on both
        raw_times.append(_median(call_raw, 1))
        sdk_times.append(_median(call_sdk, 1))
    raw_median, sdk_median = statistics.median(raw_times), statistics.median(sdk_times)
    ratio = sdk_median / raw_median
    print(f"{name:<12} raw {raw_median * 1000:8.2f} ms   genai_sdk {sdk_median * 1000:8.2f} ms   "
          f"ratio {ratio:.3f} (target <= 1.05: {'met' if ratio <= 1.05 else 'NOT met'})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--texts", type=int, default=8)
    parser.add_argument("--policy", default="off")
    args = parser.parse_args()

    import torch

    print(f"# CLIP score on the CPU, 1 image x {args.texts} texts, policy {args.policy}, torch {torch.__version__} "
          f"({machine()})")  # fmt: skip
    root = Path(tempfile.mkdtemp())
    compare(clip_model(root / "tiny"), "tiny", args.runs, args.texts, args.policy)
    compare(clip_model(root / "vit-b-32", real_shaped=True), "ViT-B/32", max(5, args.runs // 3), args.texts, args.policy)


if __name__ == "__main__":
    main()
