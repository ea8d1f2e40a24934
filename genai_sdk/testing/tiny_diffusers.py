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


def _scheduler() -> Any:
    """DDIM as current Stable Diffusion checkpoints configure it (older defaults make diffusers warn at load)."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(steps_offset=1, clip_sample=False)


def _unet(scale: int) -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(8 * scale, 16 * scale), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16, attention_head_dim=4, norm_num_groups=4,
    )


def _flagging_safety_checker() -> tuple[Any, Any]:
    """diffusers' own StableDiffusionSafetyChecker, tiny, with concept thresholds below any similarity: it flags
    every image as NSFW, as a real checker does a picture it recognises."""
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    config = CLIPConfig(
        text_config={"hidden_size": 16, "intermediate_size": 16, "num_attention_heads": 2, "num_hidden_layers": 1},
        vision_config={"hidden_size": 16, "intermediate_size": 16, "num_attention_heads": 2, "num_hidden_layers": 1,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )  # fmt: skip
    checker = StableDiffusionSafetyChecker(config)
    with torch.no_grad():
        checker.concept_embeds_weights.fill_(-2.0)  # cosine similarity is at least -1: every concept "matches"
    return checker, CLIPImageProcessor(crop_size=32, size=32)


def stable_diffusion(folder: Path, *, safetensors: bool = True, scale: int = 1, flag_nsfw: bool = False) -> Path:
    """A tiny text-to-image pipeline; ``flag_nsfw`` gives it a safety checker that flags every image."""
    import torch
    from diffusers import StableDiffusionPipeline

    torch.manual_seed(0)
    checker, extractor = _flagging_safety_checker() if flag_nsfw else (None, None)
    pipeline = StableDiffusionPipeline(
        unet=_unet(scale), vae=_vae(), text_encoder=_text_encoder(), tokenizer=_tokenizer(folder.parent / f"{folder.name}-tok"),
        scheduler=_scheduler(), safety_checker=checker, feature_extractor=extractor, requires_safety_checker=flag_nsfw,
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
    from diffusers import StableDiffusionImageVariationPipeline
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    unet = _unet(1)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=16, projection_dim=16, num_hidden_layers=2, num_attention_heads=2, image_size=32,
        intermediate_size=16, patch_size=4,
    ))
    pipeline = StableDiffusionImageVariationPipeline(
        vae=_vae(), image_encoder=encoder, unet=unet, scheduler=_scheduler(), safety_checker=None,
        feature_extractor=CLIPImageProcessor(crop_size=32, size=32), requires_safety_checker=False,
    )
    pipeline.save_pretrained(folder, safe_serialization=True)
    return folder


# -- the other video families: transformer denoisers behind a T5 text encoder --------------------------------------


def _t5(*, umt5: bool = False) -> tuple[Any, Any]:
    """A tiny T5 (or UMT5, as Wan has) encoder and a Unigram tokenizer over a few words and single letters."""
    from transformers import T5Config, T5EncoderModel, T5Tokenizer, UMT5Config, UMT5EncoderModel

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [("\u2581" + word, -1.0) for word in WORDS]
    vocab += [(ch, -5.0) for ch in "abcdefghijklmnopqrstuvwxyz\u2581"]
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0)
    config, model = (UMT5Config, UMT5EncoderModel) if umt5 else (T5Config, T5EncoderModel)
    encoder = model(config(
        vocab_size=len(vocab), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4, relative_attention_num_buckets=8,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    ))
    return encoder, tokenizer


def animatediff(folder: Path) -> Path:
    """AnimateDiff: the Stable Diffusion parts plus a motion adapter."""
    import torch
    from diffusers import AnimateDiffPipeline, DDIMScheduler, MotionAdapter

    torch.manual_seed(0)
    adapter = MotionAdapter(
        block_out_channels=(8, 16), motion_layers_per_block=1, motion_norm_num_groups=4, motion_num_attention_heads=2,
        motion_max_seq_length=32,
    )
    pipeline = AnimateDiffPipeline(
        vae=_vae(), text_encoder=_text_encoder(), tokenizer=_tokenizer(folder.parent / f"{folder.name}-tok"),
        unet=_unet(1), motion_adapter=adapter, scheduler=DDIMScheduler(beta_schedule="linear", clip_sample=False),
    )
    pipeline.save_pretrained(folder, safe_serialization=True)
    return folder


def cogvideox(folder: Path) -> Path:
    import torch
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXPipeline, CogVideoXTransformer3DModel

    torch.manual_seed(0)
    encoder, tokenizer = _t5()
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=4, attention_head_dim=8, in_channels=4, out_channels=4, time_embed_dim=2, text_embed_dim=32,
        num_layers=1, sample_width=4, sample_height=4, sample_frames=9, patch_size=2, temporal_compression_ratio=4,
        max_text_seq_length=226,
    )
    vae = AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), latent_channels=4,
        layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4,
    )
    pipeline = CogVideoXPipeline(
        tokenizer=tokenizer, text_encoder=encoder, vae=vae, transformer=transformer, scheduler=CogVideoXDDIMScheduler(),
    )
    pipeline.save_pretrained(folder, safe_serialization=True)
    return folder


def ltx_video(folder: Path, *, image_to_video: bool = False) -> Path:
    """LTX-Video; ``image_to_video`` saves the same parts as LTX's image-to-video pipeline."""
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXImageToVideoPipeline,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )

    torch.manual_seed(0)
    encoder, tokenizer = _t5()
    transformer = LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4, attention_head_dim=8,
        cross_attention_dim=32, num_layers=1, caption_channels=32,
    )
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False), decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4, upsample_factor=(1,) * 4, timestep_conditioning=False, patch_size=1,
        patch_size_t=1, encoder_causal=True, decoder_causal=False,
    )
    pipeline = (LTXImageToVideoPipeline if image_to_video else LTXPipeline)(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=encoder, tokenizer=tokenizer,
        transformer=transformer,
    )
    pipeline.save_pretrained(folder, safe_serialization=True)
    return folder


def wan(folder: Path) -> Path:
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel

    torch.manual_seed(0)
    encoder, tokenizer = _t5(umt5=True)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True])
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16, text_dim=32,
        freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    )
    pipeline = WanPipeline(
        tokenizer=tokenizer, text_encoder=encoder, transformer=transformer, vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
    )
    pipeline.save_pretrained(folder, safe_serialization=True)
    return folder


VIDEO_FAMILIES = {"text-to-video-sd": text_to_video, "animatediff": animatediff, "cogvideox": cogvideox,
                  "ltx": ltx_video, "wan": wan}


# -- upscalers and ControlNet ----------------------------------------------------------------------------------------


def sd_upscaler(folder: Path) -> Path:
    """Stable Diffusion's x4 upscaler: the low-resolution picture beside the latents, a VAE that upsamples 4 times."""
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        DDPMScheduler,
        StableDiffusionUpscalePipeline,
        UNet2DConditionModel,
    )

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=7, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16, attention_head_dim=4, norm_num_groups=4, num_class_embeds=100,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 16), in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3, latent_channels=4, norm_num_groups=4, scaling_factor=0.08333,
    )
    pipeline = StableDiffusionUpscalePipeline(
        vae=vae, text_encoder=_text_encoder(), tokenizer=_tokenizer(folder.parent / f"{folder.name}-tok"), unet=unet,
        low_res_scheduler=DDPMScheduler(), scheduler=DDIMScheduler(steps_offset=1, clip_sample=False, prediction_type="v_prediction"),
        safety_checker=None, feature_extractor=None, watermarker=None, max_noise_level=99,
    )
    pipeline.save_pretrained(folder, safe_serialization=True)
    return folder


def ldm_super_resolution(folder: Path) -> Path:
    """Latent-diffusion super-resolution (no prompt): a VQ autoencoder that upsamples 4 times."""
    import torch
    from diffusers import DDIMScheduler, LDMSuperResolutionPipeline, UNet2DModel, VQModel

    torch.manual_seed(0)
    unet = UNet2DModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=6, out_channels=3,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=4, attention_head_dim=4,
    )
    vqvae = VQModel(
        block_out_channels=(8, 8, 16), in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3, latent_channels=3, norm_num_groups=4, num_vq_embeddings=32,
    )
    pipeline = LDMSuperResolutionPipeline(vqvae=vqvae, unet=unet, scheduler=DDIMScheduler(steps_offset=1, clip_sample=False))
    pipeline.save_pretrained(folder, safe_serialization=True)
    return folder


def latent_upscaler(folder: Path) -> Path:
    """Stable Diffusion's x2 latent upscaler (its K-diffusion blocks; the VAE as :func:`stable_diffusion`'s)."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionLatentUpscalePipeline, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        act_fn="gelu", attention_head_dim=4, norm_num_groups=None, block_out_channels=(32, 32, 64, 64),
        time_cond_proj_dim=128 + 16, conv_in_kernel=1, conv_out_kernel=1, cross_attention_dim=16, in_channels=8,
        down_block_types=("KDownBlock2D",) + ("KCrossAttnDownBlock2D",) * 3, mid_block_type=None,
        up_block_types=("KCrossAttnUpBlock2D",) * 3 + ("KUpBlock2D",), only_cross_attention=False, out_channels=5,
        resnet_time_scale_shift="scale_shift", time_embedding_type="fourier", timestep_post_act="gelu",
    )  # the timestep condition is 128 noise-level features and the pooled text (16 wide)
    pipeline = StableDiffusionLatentUpscalePipeline(
        vae=_vae(), text_encoder=_text_encoder(), tokenizer=_tokenizer(folder.parent / f"{folder.name}-tok"), unet=unet,
        scheduler=EulerDiscreteScheduler(prediction_type="sample"),
    )
    pipeline.save_pretrained(folder, safe_serialization=True)
    return folder


def controlnet(folder: Path) -> Path:
    """A ControlNet for :func:`stable_diffusion`'s denoiser (same blocks, same text width)."""
    import torch
    from diffusers import ControlNetModel

    torch.manual_seed(0)
    model = ControlNetModel(
        block_out_channels=(8, 16), layers_per_block=1, in_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        cross_attention_dim=16, attention_head_dim=4, norm_num_groups=4, conditioning_embedding_out_channels=(4, 8),
    )
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def controlnet_pipeline(folder: Path) -> Path:
    """Stable Diffusion with its ControlNet saved in one folder (``StableDiffusionControlNetPipeline``)."""
    import torch
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

    cn_folder = controlnet(folder.parent / f"{folder.name}-controlnet")
    torch.manual_seed(0)
    pipeline = StableDiffusionControlNetPipeline(
        unet=_unet(1), vae=_vae(), text_encoder=_text_encoder(), tokenizer=_tokenizer(folder.parent / f"{folder.name}-tok"),
        scheduler=_scheduler(), controlnet=ControlNetModel.from_pretrained(cn_folder), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )
    pipeline.save_pretrained(folder, safe_serialization=True)
    return folder


def _kandinsky_prior_parts(folder: Path) -> dict[str, Any]:
    """Kandinsky 2.2's prior, tiny: a CLIP text and image encoder (32 wide) and the prior transformer between them."""
    import torch
    from diffusers import PriorTransformer, UnCLIPScheduler
    from transformers import (
        CLIPImageProcessor,
        CLIPTextConfig,
        CLIPTextModelWithProjection,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    torch.manual_seed(0)
    text_encoder = CLIPTextModelWithProjection(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, hidden_size=32, projection_dim=32, intermediate_size=37, layer_norm_eps=1e-5,
        num_attention_heads=4, num_hidden_layers=2, pad_token_id=1, vocab_size=200,
    ))
    prior = PriorTransformer(num_attention_heads=2, attention_head_dim=12, embedding_dim=32, num_layers=1)
    with torch.no_grad():
        prior.clip_std.fill_(1.0)  # zeros (the default) would scale every embedding to the mean
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, image_size=32, projection_dim=32, intermediate_size=37, num_attention_heads=4, num_channels=3,
        num_hidden_layers=2, patch_size=8,
    ))
    return {
        "prior": prior, "image_encoder": image_encoder, "text_encoder": text_encoder,
        "tokenizer": _tokenizer(folder.parent / f"{folder.name}-tok"),
        "scheduler": UnCLIPScheduler(variance_type="fixed_small_log", prediction_type="sample", num_train_timesteps=1000,
                                     clip_sample=True, clip_sample_range=10.0),
        "image_processor": CLIPImageProcessor(crop_size=32, size=32, do_center_crop=True, do_normalize=True, do_resize=True),
    }  # fmt: skip


def _kandinsky_decoder_parts(inpaint: bool) -> dict[str, Any]:
    """Kandinsky 2.2's decoder, tiny: a UNet conditioned on a 32-wide image embedding, and the MoVQ that decodes."""
    import torch
    from diffusers import DDIMScheduler, UNet2DConditionModel, VQModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        in_channels=9 if inpaint else 4, out_channels=8, addition_embed_type="image",
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"), mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        block_out_channels=(32, 64), layers_per_block=1, encoder_hid_dim=32, encoder_hid_dim_type="image_proj",
        cross_attention_dim=32, attention_head_dim=4, resnet_time_scale_shift="scale_shift", class_embed_type=None,
    )  # out_channels: the mean and the variance
    torch.manual_seed(0)
    movq = VQModel(
        block_out_channels=[32, 64], down_block_types=["DownEncoderBlock2D", "AttnDownEncoderBlock2D"], in_channels=3,
        latent_channels=4, layers_per_block=1, norm_num_groups=8, norm_type="spatial", num_vq_embeddings=12,
        out_channels=3, up_block_types=["AttnUpDecoderBlock2D", "UpDecoderBlock2D"], vq_embed_dim=4,
    )
    scheduler = DDIMScheduler(
        num_train_timesteps=1000, beta_schedule="linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
        set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon", thresholding=False,
    )
    return {"unet": unet, "scheduler": scheduler, "movq": movq}


def kandinsky_prior(folder: Path) -> Path:
    """A tiny Kandinsky 2.2 prior (``KandinskyV22PriorPipeline``): text or image in, a CLIP image embedding out."""
    from diffusers import KandinskyV22PriorPipeline

    KandinskyV22PriorPipeline(**_kandinsky_prior_parts(folder)).save_pretrained(folder, safe_serialization=True)
    return folder


def kandinsky_decoder(folder: Path, *, inpaint: bool = False) -> Path:
    """A tiny Kandinsky 2.2 decoder (``KandinskyV22Pipeline``, or ``KandinskyV22InpaintPipeline``): an image
    embedding in, a picture out. It needs a prior: :func:`kandinsky_prior`."""
    from diffusers import KandinskyV22InpaintPipeline, KandinskyV22Pipeline

    cls = KandinskyV22InpaintPipeline if inpaint else KandinskyV22Pipeline
    cls(**_kandinsky_decoder_parts(inpaint)).save_pretrained(folder, safe_serialization=True)
    return folder


def kandinsky_combined(folder: Path, *, inpaint: bool = False) -> Path:
    """A tiny Kandinsky 2.2 prior and decoder in one folder (``KandinskyV22CombinedPipeline``, or the inpainting
    ``KandinskyV22InpaintCombinedPipeline``)."""
    from diffusers import KandinskyV22CombinedPipeline, KandinskyV22InpaintCombinedPipeline

    prior = {f"prior_{name}": part for name, part in _kandinsky_prior_parts(folder).items()}
    cls = KandinskyV22InpaintCombinedPipeline if inpaint else KandinskyV22CombinedPipeline
    cls(**_kandinsky_decoder_parts(inpaint), **prior).save_pretrained(folder, safe_serialization=True)
    return folder
