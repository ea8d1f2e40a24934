"""Images per second of a diffusers model with the Stable Diffusion 1.5 architecture (random weights: weights do not
change speed) in one Ray actor holding one GPU, at map_batches batch sizes 1, 4 and 8, against the same model
called in this process (the raw diffusers pipeline).

    python benchmarks/scaleout_gpu.py [--images 16]                   # needs CUDA and the 'ray' extra
    python benchmarks/scaleout_gpu.py --preset tiny --device cpu      # a smoke run of the same code paths

An actor makes its items one at a time (each item is one call through the pipeline, with its own charge and
files): the batch size sets how many rows Ray hands an actor at once, not a GPU batch.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from _common import machine  # noqa: E402
from diffusers_gpu import PRESETS, build  # noqa: E402

from genai_sdk.batch import Item  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--preset", default="sd15", choices=tuple(PRESETS))
    args = parser.parse_args()
    import ray
    import torch
    from diffusers import DiffusionPipeline

    from genai_sdk.batch.ray import run_dataset

    work = Path(tempfile.mkdtemp(prefix="genai-scaleout-gpu-"))
    folder = build(args.preset, work / args.preset)
    size = PRESETS[args.preset]["size"]
    os.environ["GENAI_LEDGER"] = f"sqlite:///{work / 'ledger.db'}"
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    dtype = torch.float16 if args.device == "cuda" else torch.float32
    raw = DiffusionPipeline.from_pretrained(folder, torch_dtype=dtype, local_files_only=True).to(args.device)
    raw.set_progress_bar_config(disable=True)
    raw("warm up", num_inference_steps=args.steps, height=size, width=size)
    started = time.perf_counter()
    for i in range(args.images):
        raw(f"a product photo number {i}", num_inference_steps=args.steps, height=size, width=size)
    if args.device == "cuda":
        torch.cuda.synchronize()
    one = args.images / (time.perf_counter() - started)
    del raw
    ray.init(address="local", num_cpus=os.cpu_count(), num_gpus=1 if args.device == "cuda" else 0,
             include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)  # fmt: skip
    print(f"# {args.preset} {size}x{size}, {args.steps} steps, {dtype}, {gpu}, torch {torch.__version__} ({machine()})")
    print(f"  raw diffusers in this process   {one:6.2f} images/s")
    settings = {"size": f"{size}x{size}", "steps": args.steps, "provider_options": {"diffusers": {"device": args.device}}}
    for batch in (1, 4, 8):
        items = [Item(f"b{batch}-{i}", f"a product photo number {i}") for i in range(args.images)]
        started = time.perf_counter()
        done = run_dataset(items, task="image", model=f"diffusers:{folder}", out=work / "out", job_id=f"b{batch}",
                           workers=1, gpus_per_worker=1 if args.device == "cuda" else 0, cpus_per_worker=1,
                           batch_size=batch, settings=settings)  # fmt: skip
        elapsed = time.perf_counter() - started
        assert done.counts == {"ok": args.images}, done.counts
        seconds = [row.seconds for row in done.rows]
        steady = len(seconds[1:]) / sum(seconds[1:]) if len(seconds) > 1 else float("nan")
        print(f"  Ray, 1 actor, batch {batch}         {args.images / elapsed:6.2f} images/s over the job (actor start and "
              f"model load included), {steady:6.2f} images/s once loaded")
    ray.shutdown()


if __name__ == "__main__":
    main()
