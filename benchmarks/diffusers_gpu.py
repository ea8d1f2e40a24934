"""Seconds per image on a GPU: raw diffusers defaults against the SDK's defaults and its `fast` mode, with
pipelines of the Stable Diffusion 1.5 and SDXL architectures and random weights (weights do not change speed).

    python benchmarks/diffusers_gpu.py [--runs 5] [--only sd15|sdxl]      # needs CUDA
    python benchmarks/diffusers_gpu.py --preset tiny --device cpu         # smoke runs of the same code paths
    python benchmarks/diffusers_gpu.py --preset tinyxl --device cpu

Targets: the SDK's defaults within 2 % of raw defaults; `fast` at least 1.5x faster than raw defaults.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import machine

import genai_sdk as genai
from genai_sdk.testing.tiny_diffusers import _tokenizer

# Architectures: (unet, vae, text encoders). "tiny" keeps the shapes' structure at toy sizes for smoke runs.
PRESETS: dict[str, dict[str, Any]] = {
    "sd15": {"size": 512, "blocks": (320, 640, 1280, 1280), "heads": 8, "text": [(768, 12, 12, 3072)], "vae": (128, 256, 512, 512)},
    "sdxl": {"size": 1024, "blocks": (320, 640, 1280), "heads": (5, 10, 20), "layers": (1, 2, 10),
             "text": [(768, 12, 12, 3072), (1280, 32, 20, 5120)], "vae": (128, 256, 512, 512)},
    "tiny": {"size": 64, "blocks": (32, 64), "heads": 4, "text": [(32, 2, 2, 64)], "vae": (16, 32)},
    "tinyxl": {"size": 64, "blocks": (32, 64, 64), "heads": (2, 4, 4), "layers": (1, 1, 1),
               "text": [(32, 2, 2, 64), (32, 2, 2, 64)], "vae": (16, 32)},
}


def _text(hidden: int, layers: int, heads: int, intermediate: int, projection: bool) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                            intermediate_size=intermediate, projection_dim=hidden, vocab_size=49408,
                            bos_token_id=0, eos_token_id=1, pad_token_id=1)
    return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)


def build(preset: str, folder: Path) -> Path:
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )

    spec = PRESETS[preset]
    torch.manual_seed(0)
    blocks = spec["blocks"]
    vae = AutoencoderKL(block_out_channels=spec["vae"], down_block_types=("DownEncoderBlock2D",) * len(spec["vae"]),
                        up_block_types=("UpDecoderBlock2D",) * len(spec["vae"]), latent_channels=4,
                        norm_num_groups=min(32, spec["vae"][0]), sample_size=spec["size"])
    tokenizer = _tokenizer(folder.parent / f"{folder.name}-tok")
    if "xl" in preset:
        te1, te2 = spec["text"]
        unet = UNet2DConditionModel(
            sample_size=spec["size"] // 8, block_out_channels=blocks, layers_per_block=2,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=spec["layers"], attention_head_dim=spec["heads"],
            cross_attention_dim=te1[0] + te2[0], use_linear_projection=True, addition_embed_type="text_time",
            addition_time_embed_dim=256, projection_class_embeddings_input_dim=te2[0] + 6 * 256,
        )
        pipeline = StableDiffusionXLPipeline(
            vae=vae, text_encoder=_text(*te1, projection=False), text_encoder_2=_text(*te2, projection=True),
            tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=EulerDiscreteScheduler(),
        )
    else:
        (te,) = spec["text"]
        crossattn = ("CrossAttnDownBlock2D",) * (len(blocks) - 1) + ("DownBlock2D",)
        unet = UNet2DConditionModel(
            sample_size=spec["size"] // 8, block_out_channels=blocks, layers_per_block=2,
            down_block_types=crossattn, up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (len(blocks) - 1),
            cross_attention_dim=te[0], attention_head_dim=spec["heads"], norm_num_groups=min(32, blocks[0]),
        )
        pipeline = StableDiffusionPipeline(
            vae=vae, text_encoder=_text(*te, projection=False), tokenizer=tokenizer, unet=unet,
            scheduler=EulerDiscreteScheduler(), safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        )
    pipeline.save_pretrained(folder, safe_serialization=True)
    return folder


def measure(preset: str, device: str, runs: int, steps: int) -> None:
    import torch
    from diffusers import DiffusionPipeline

    folder = build(preset, Path(tempfile.mkdtemp()) / preset)
    size = PRESETS[preset]["size"]
    dtype = torch.float16 if device == "cuda" else torch.float32
    raw = DiffusionPipeline.from_pretrained(folder, torch_dtype=dtype, local_files_only=True, use_safetensors=True).to(device)
    raw.set_progress_bar_config(disable=True)
    client = genai.Client(ledger="memory://")
    model = f"diffusers:{folder}"
    options = {"diffusers": {"device": device}}
    fast = {"diffusers": {"device": device, "fast": True}}

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    def call_raw() -> None:
        raw("an avocado couch", num_inference_steps=steps, height=size, width=size,
            generator=torch.Generator(device).manual_seed(0))
        sync()

    def call_sdk() -> None:
        client.images.generate("an avocado couch", model=model, size=f"{size}x{size}", steps=steps, seed=0,
                               provider_options=options)
        sync()

    def call_fast() -> None:
        client.images.generate("an avocado couch", model=model, size=f"{size}x{size}", steps=steps, seed=0,
                               provider_options=fast)
        sync()

    for fn in (call_raw, call_sdk, call_fast, call_fast):  # warm-up; the first fast call compiles
        fn()
    timings: dict[str, list[float]] = {"raw": [], "sdk": [], "fast": []}
    for _ in range(runs):
        for name, fn in (("raw", call_raw), ("sdk", call_sdk), ("fast", call_fast)):
            started = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - started)
    medians = {k: statistics.median(v) for k, v in timings.items()}
    gpu = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(f"# {preset}: {size}x{size}, {steps} steps, {dtype}, {gpu}, torch {torch.__version__} ({machine()})")
    for name, value in medians.items():
        print(f"{name:<5} {value:8.3f} s/image")
    print(f"sdk/raw {medians['sdk'] / medians['raw']:.3f} (target <= 1.02); raw/fast {medians['raw'] / medians['fast']:.2f}x (target >= 1.5)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--preset", choices=tuple(PRESETS))
    parser.add_argument("--only", choices=("sd15", "sdxl"))
    args = parser.parse_args()
    presets = [args.preset] if args.preset else [args.only] if args.only else ["sd15", "sdxl"]
    for preset in presets:
        measure(preset, args.device, args.runs, args.steps)


if __name__ == "__main__":
    main()
