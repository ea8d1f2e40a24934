"""DALL-E 2's design, locally: a prior turns a prompt (or an image) into a CLIP image embedding, and a decoder paints
the picture from the embedding (Kandinsky 2.2, and 2.1, whose decoder reads the prompt too).

A model is either one folder holding both (``KandinskyV22CombinedPipeline``, ``KandinskyV22InpaintCombinedPipeline``)
or a decoder folder (``KandinskyV22Pipeline``, ...) with the ``prior`` option naming the prior's folder. Generate
runs the prior on the prompt; variations take the input image's embedding from the prior's image encoder, as DALL-E 2
did; blend mixes the images' embeddings by their weights (the prior's ``interpolate``); edit runs the decoder from the
input image (image-to-image) or, on an inpainting decoder, inside the mask.
"""

from __future__ import annotations

import dataclasses
import inspect
import random
import time
from typing import TYPE_CHECKING, Any

from .._catalog import ModelInfo
from .._errors import ConfigError, InvalidRequestError, UnsupportedError
from .._media import Image
from .._requests import ImageRequest
from .base import CallContext, ImageBatch

if TYPE_CHECKING:
    from ._options import ParsedOptions
    from .diffusers import DiffusersProvider

PRIORS = frozenset({"KandinskyV22PriorPipeline", "KandinskyPriorPipeline"})
COMBINED = frozenset({
    "KandinskyV22CombinedPipeline", "KandinskyV22Img2ImgCombinedPipeline", "KandinskyV22InpaintCombinedPipeline",
    "KandinskyCombinedPipeline", "KandinskyImg2ImgCombinedPipeline", "KandinskyInpaintCombinedPipeline",
})  # fmt: skip
DECODERS = frozenset({
    "KandinskyV22Pipeline", "KandinskyV22Img2ImgPipeline", "KandinskyV22InpaintPipeline",
    "KandinskyPipeline", "KandinskyImg2ImgPipeline", "KandinskyInpaintPipeline",
})  # fmt: skip
ALL_IMAGE_OPERATIONS = frozenset({"images.generate", "images.edit", "images.variations", "images.blend"})


def operations(class_name: str) -> frozenset[str] | None:
    """What a folder of this class serves (None: not a prior-and-decoder pipeline). An inpainting decoder's denoiser
    reads the mask and the masked picture, so it only edits; a prior alone makes embeddings, not pictures."""
    if class_name in PRIORS:
        return frozenset()
    if class_name in COMBINED or class_name in DECODERS:
        return frozenset({"images.edit"}) if "Inpaint" in class_name else ALL_IMAGE_OPERATIONS
    return None


def check_prior(model: ModelInfo, class_name: str, request: ImageRequest, options: ParsedOptions) -> list[str]:
    """What can be refused or said before anything is loaded."""
    if class_name in DECODERS and options.text("prior") is None:
        raise ConfigError(_needs_prior(model, class_name))
    warnings = []
    if "Inpaint" in class_name and request.operation == "edit" and request.mask is None:
        raise InvalidRequestError(f"{model.id} ({class_name}) is an inpainting decoder: images.edit needs mask=")
    if request.operation == "edit" and request.mask is not None and "Inpaint" not in class_name:
        raise UnsupportedError(
            f"{model.id} ({class_name}) has no inpainting decoder: edit without a mask, or use a "
            "KandinskyV22InpaintPipeline or KandinskyV22InpaintCombinedPipeline folder"
        )
    if request.operation == "variations" and len(request.images) > 1:
        warnings.append(f"{len(request.images)} images were given: only the first was used (images.blend mixes several)")
    if options.number("prompt_weight") is not None and not request.prompt:
        warnings.append("prompt_weight was given without a prompt: it was not applied")
    return warnings


def _needs_prior(model: ModelInfo, class_name: str) -> str:
    return (
        f"{model.id} ({class_name}) is a decoder: it paints from an image embedding that a prior makes. Pass the "
        "prior's folder: provider_options={'diffusers': {'prior': '/path/to/kandinsky-2-2-prior'}}, or use a combined "
        "pipeline folder"
    )


def _pipelines(provider: DiffusersProvider, model: ModelInfo, options: ParsedOptions) -> tuple[Any, Any, str]:
    """The prior pipeline, the decoder pipeline (as the folder has it) and the device, loaded through the pool."""
    from .diffusers import _class_name

    loaded, device = provider._pipeline(model, options, "text2img")
    name = type(loaded).__name__
    prior_name = options.text("prior")
    if prior_name is not None:
        prior_model = dataclasses.replace(model, name=prior_name)
        prior_class = _class_name(prior_name)
        if prior_class and prior_class not in PRIORS:
            raise ConfigError(f"prior={prior_name!r} is a {prior_class} folder, not a prior ({', '.join(sorted(PRIORS))})")
        prior, _ = provider._pipeline(prior_model, options, "text2img")
        if type(prior).__name__ not in PRIORS:
            raise ConfigError(f"prior={prior_name!r} holds a {type(prior).__name__}, not a prior")
    elif name in COMBINED:
        prior = loaded.prior_pipe
    else:
        raise ConfigError(_needs_prior(model, name))
    decoder = loaded.decoder_pipe if name in COMBINED else loaded
    return prior, decoder, device


def _decoder_for(decoder: Any, task: str) -> Any:
    """The decoder for the task, on the loaded one's components: text-to-image and image-to-image share them."""
    import diffusers

    name = type(decoder).__name__
    if "Inpaint" in name:
        return decoder
    family = "KandinskyV22" if name.startswith("KandinskyV22") else "Kandinsky"
    wanted = f"{family}Img2ImgPipeline" if task == "img2img" else f"{family}Pipeline"
    if name == wanted:
        return decoder
    components = {key: value for key, value in decoder.components.items() if value is not None}
    derived = getattr(diffusers, wanted)(**components)
    derived.set_progress_bar_config(disable=True)
    return derived


def _interpolate(prior: Any, conditions: list[Any], weights: list[float], kwargs: dict[str, Any]) -> Any:
    """The prior's weighted mix of image and text embeddings, with the SDK's error mapping and one run at a time."""
    from .diffusers import _RUNNING

    with _RUNNING:
        try:
            return prior.interpolate(conditions, weights, **kwargs)
        except ValueError as exc:
            raise InvalidRequestError(f"the diffusers prior refused the settings: {exc}") from exc
        except RuntimeError as exc:
            from .._errors import GenerationFailedError

            raise GenerationFailedError(f"the diffusers prior failed: {exc}", provider="diffusers") from exc


def blend_conditions(request: ImageRequest, prompt_weight: float | None) -> tuple[list[Any], list[float]]:
    """The images (as RGB pictures) and their weights; a prompt joins as one more condition, with ``prompt_weight``
    (default: an equal share, 1 / (images + 1)), the images' weights scaled to the rest."""
    pictures: list[Any] = [i.to_pil().convert("RGB") for i in request.images]
    weights = list(request.weights) or [1.0 / len(pictures)] * len(pictures)
    if request.prompt:
        share = 1.0 / (len(pictures) + 1) if prompt_weight is None else prompt_weight
        weights = [w * (1.0 - share) for w in weights] + [share]
        pictures.append(request.prompt)
    return pictures, weights


def images(provider: DiffusersProvider, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> ImageBatch:
    from .diffusers import OPTIONS, _call_options, _combined, _mask_to_repaint, _refuse_flagged, _torch

    torch = _torch()
    options = OPTIONS.for_request(request)
    prior, decoder, device = _pipelines(provider, model, options)
    warnings: list[str] = []  # check_prior's were given before the call
    seed = request.seed if request.seed is not None else random.randrange(2**63)
    generator = torch.Generator(device="cpu" if device == "mps" else device).manual_seed(seed)
    size: tuple[int, int] | None = None
    if request.size not in (None, "auto"):
        width, height = (int(v) for v in str(request.size).split("x"))
        size = (width, height)
    prior_kwargs: dict[str, Any] = {"generator": generator, "num_images_per_prompt": n}
    if request.steps is not None:
        prior_kwargs["num_inference_steps"] = request.steps

    started = time.perf_counter()
    if request.operation in ("variations", "blend"):
        if request.operation == "variations":
            conditions: list[Any] = [request.images[0].to_pil().convert("RGB")]
            weights = [1.0]
        else:
            conditions, weights = blend_conditions(request, options.number("prompt_weight"))
        if request.negative_prompt is not None:
            prior_kwargs["negative_prior_prompt"] = request.negative_prompt
        embeds = _interpolate(prior, conditions, weights, prior_kwargs)
        size = size or request.images[0].size
    else:
        prior_kwargs["prompt"] = request.prompt or ""
        if request.negative_prompt is not None:
            prior_kwargs["negative_prompt"] = request.negative_prompt
        prior_kwargs["output_type"] = "pt"
        embeds = provider._run(prior, prior_kwargs, ctx, request.steps)

    task = "text2img"
    if request.operation == "edit":
        task = "inpaint" if request.mask is not None else "img2img"
    pipeline = _decoder_for(decoder, task)
    kwargs: dict[str, Any] = {
        "image_embeds": embeds.image_embeds, "negative_image_embeds": embeds.negative_image_embeds,
        "generator": generator, "num_images_per_prompt": 1,  # the prior made one embedding per picture
    }  # fmt: skip
    accepted = inspect.signature(pipeline.__call__).parameters
    if "prompt" in accepted:  # Kandinsky 2.1's decoder reads the prompt as well
        kwargs["prompt"] = [request.prompt or ""] * n
        if request.negative_prompt is not None:
            kwargs["negative_prompt"] = [request.negative_prompt] * n
    if request.steps is not None:
        kwargs["num_inference_steps"] = request.steps
    if request.guidance is not None:
        kwargs["guidance_scale"] = request.guidance
    original = None
    if task != "text2img":
        original = _combined(request.images, size)
        size = original.size
        kwargs["image"] = [original] * n
        if task == "inpaint":
            assert request.mask is not None
            mask = _mask_to_repaint(request.mask, original.size)
            kwargs["mask_image"] = [mask] * n
        else:
            kwargs["strength"] = options.number("strength", 0.75)
    elif "strength" in options:
        warnings.append(f"{type(pipeline).__name__} paints from the embedding alone: strength was not applied")
    if size is not None:
        kwargs["width"], kwargs["height"] = size
    warnings.extend(_call_options(pipeline, options, kwargs))
    output = provider._run(pipeline, kwargs, ctx, request.steps)
    _refuse_flagged(output)
    pictures = [p.convert("RGB") for p in output.images]
    if size is not None:  # the MoVQ's multiple can round the size up: the asked size comes back
        from PIL import Image as PILImage

        pictures = [p if p.size == size else p.resize(size, PILImage.Resampling.LANCZOS) for p in pictures]
    if task == "inpaint" and original is not None:
        from PIL import Image as PILImage

        pictures = [PILImage.composite(p, original, kwargs["mask_image"][0]) for p in pictures]
    made = [Image.from_pil(p) for p in pictures]
    return ImageBatch(made, seed=seed, compute_seconds=time.perf_counter() - started,
                      size=f"{made[0].width}x{made[0].height}" if made else None, warnings=warnings)  # fmt: skip


__all__ = ["COMBINED", "DECODERS", "PRIORS", "blend_conditions", "check_prior", "images", "operations"]
