"""Tiny random diffusers pipelines for tests: their weights are noise, their code is real diffusers code.

    from genai_sdk.testing.tiny_diffusers import stable_diffusion
    folder = stable_diffusion(tmp_path / "tiny-sd")
    genai.Client(image=f"diffusers:{folder}").images.generate("a couch", size="32x32", steps=2)

``scale`` widens every layer, for benchmarks that want a pipeline heavier than the minimum.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WORDS = "a an the of in on couch avocado red fox cat dog house blue green panda playing guitar lamp hat".split()


def _tokenizer(folder: Path) -> Any:
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}
    for word in WORDS:
        vocab[word + "</w>"] = len(vocab)
    for ch in "abcdefghijklmnopqrstuvwxyz":
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)


def _text_encoder() -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, hidden_size=16, intermediate_size=16, layer_norm_eps=1e-5,
        num_attention_heads=2, num_hidden_layers=2, pad_token_id=1, vocab_size=200, projection_dim=16,
    ))


def _vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(8, 16), in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=4, sample_size=32,
    )


def _unet(scale: int) -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(8 * scale, 16 * scale), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16, attention_head_dim=4, norm_num_groups=4,
    )


def stable_diffusion(folder: Path, *, safetensors: bool = True, scale: int = 1) -> Path:
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    torch.manual_seed(0)
    pipeline = StableDiffusionPipeline(
        unet=_unet(scale), vae=_vae(), text_encoder=_text_encoder(), tokenizer=_tokenizer(folder.parent / f"{folder.name}-tok"),
        scheduler=DDIMScheduler(), safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipeline.save_pretrained(folder, safe_serialization=safetensors)
    return folder


def text_to_video(folder: Path) -> Path:
    import torch
    from diffusers import DDIMScheduler, TextToVideoSDPipeline, UNet3DConditionModel

    torch.manual_seed(0)
    unet = UNet3DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"), up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=16, attention_head_dim=4, norm_num_groups=4,
    )
    pipeline = TextToVideoSDPipeline(
        unet=unet, vae=_vae(), text_encoder=_text_encoder(), tokenizer=_tokenizer(folder.parent / f"{folder.name}-tok"),
        scheduler=DDIMScheduler(),
    )
    pipeline.save_pretrained(folder, safe_serialization=True)
    return folder


def image_variation(folder: Path) -> Path:
    """A tiny image-variation pipeline (an image encoder where the others have a text encoder)."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionImageVariationPipeline
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    unet = _unet(1)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=16, projection_dim=16, num_hidden_layers=2, num_attention_heads=2, image_size=32,
        intermediate_size=16, patch_size=4,
    ))
    pipeline = StableDiffusionImageVariationPipeline(
        vae=_vae(), image_encoder=encoder, unet=unet, scheduler=DDIMScheduler(), safety_checker=None,
        feature_extractor=CLIPImageProcessor(crop_size=32, size=32), requires_safety_checker=False,
    )
    pipeline.save_pretrained(folder, safe_serialization=True)
    return folder
