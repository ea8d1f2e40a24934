"""Super-resolution with diffusers' upscalers, in overlapping tiles so that memory stays bounded.

The pipeline sees one tile at a time, so its memory is that of a ``tile_size`` square input whatever the picture's
size; the blend adds 16 bytes per output pixel (float32 sums and weights). Neighbouring tiles share ``tile_overlap``
input pixels, and across that band each tile's weight ramps linearly, so no tile's edge shows as a seam.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._catalog import ModelInfo
from .._errors import InvalidRequestError, UnsupportedError
from .._media import Image
from .._requests import ImageRequest
from .base import CallContext, ImageBatch

if TYPE_CHECKING:
    from .diffusers import DiffusersProvider

# Pipeline class -> how many times larger it makes a picture.
FACTORS = {"StableDiffusionUpscalePipeline": 4, "LDMSuperResolutionPipeline": 4, "StableDiffusionLatentUpscalePipeline": 2}
PROMPTED = frozenset({"StableDiffusionUpscalePipeline", "StableDiffusionLatentUpscalePipeline"})
DEFAULT_TILE = {"StableDiffusionLatentUpscalePipeline": 256}  # others: 128 (their output tile is 512, as trained)
DEFAULT_OVERLAP = 16


def check_upscale(model: ModelInfo, class_name: str, request: ImageRequest, tile: int | None, overlap: int | None) -> list[str]:
    """What can be refused before anything is loaded: a scale the pipeline does not make, tiles that cannot overlap."""
    factor = FACTORS.get(class_name)
    if factor is not None and request.scale is not None and request.scale != factor:
        raise InvalidRequestError(
            f"scale={request.scale}: {model.id} ({class_name}) upscales {factor} times only: "
            f"leave scale out or pass scale={factor}"
        )
    tile = tile or DEFAULT_TILE.get(class_name, 128)
    if overlap is not None and overlap * 2 >= tile:
        raise InvalidRequestError(f"tile_overlap={overlap}: it must be less than half of tile_size ({tile})")
    warnings = []
    if class_name and class_name not in PROMPTED:
        for setting, value in (("prompt", request.prompt), ("negative_prompt", request.negative_prompt),
                               ("guidance", request.guidance)):  # fmt: skip
            if value is not None:
                warnings.append(f"{class_name} takes no {setting}: it was not applied")
    return warnings


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Where tiles start along one edge: ``tile`` long, sharing at least ``overlap`` with the next, the last one
    flush with the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, tile - overlap))
    return starts + [length - tile] if starts[-1] != length - tile else starts


def _ramp(size: int, band: int, before: bool, after: bool) -> Any:
    """Weights along one edge of a tile: 1 inside, rising across ``band`` where a neighbour comes before, falling
    where one comes after (never 0, so every pixel has weight)."""
    import numpy as np

    weights = np.ones(size, dtype=np.float32)
    band = min(band, size // 2)
    if band > 0:
        rise = (np.arange(band, dtype=np.float32) + 0.5) / band
        if before:
            weights[:band] = np.minimum(weights[:band], rise)
        if after:
            weights[size - band:] = np.minimum(weights[size - band:], rise[::-1])
    return weights


def tiled(source: Any, scale: int, tile: int, overlap: int, run_tile: Callable[[Any, int, int], Any]) -> Any:
    """Upscale the PIL picture ``source`` ``scale`` times, ``run_tile(tile_picture, index, count)`` doing each tile,
    the tiles blended where they overlap. The result is exactly ``scale`` times the input's size."""
    import numpy as np
    from PIL import Image as PILImage

    width, height = source.size
    xs, ys = tile_starts(width, tile, overlap), tile_starts(height, tile, overlap)
    boxes = [(x, y, min(x + tile, width), min(y + tile, height)) for y in ys for x in xs]
    if len(boxes) == 1:  # nothing to blend
        made = run_tile(source, 0, 1).convert("RGB")
        target = (width * scale, height * scale)
        return made if made.size == target else made.resize(target, PILImage.Resampling.BICUBIC)
    total = np.zeros((height * scale, width * scale, 3), dtype=np.float32)
    weight = np.zeros((height * scale, width * scale), dtype=np.float32)
    band = overlap * scale
    for index, (left, top, right, bottom) in enumerate(boxes):
        out_w, out_h = (right - left) * scale, (bottom - top) * scale
        made = run_tile(source.crop((left, top, right, bottom)), index, len(boxes)).convert("RGB")
        if made.size != (out_w, out_h):
            made = made.resize((out_w, out_h), PILImage.Resampling.BICUBIC)
        mask = np.outer(_ramp(out_h, band, top > 0, bottom < height), _ramp(out_w, band, left > 0, right < width))
        region = (slice(top * scale, bottom * scale), slice(left * scale, right * scale))
        total[region] += np.asarray(made, dtype=np.float32) * mask[..., None]
        weight[region] += mask
    blended = np.clip(np.rint(total / weight[..., None]), 0, 255).astype(np.uint8)
    return PILImage.fromarray(blended, "RGB")


def _input_multiple(pipeline: Any) -> int:
    """What a tile's edges must be multiples of, for this pipeline to make exactly ``scale`` times its size."""
    blocks = getattr(getattr(getattr(pipeline, "unet", None), "config", None), "block_out_channels", None) or (0,)
    unet = 2 ** (len(blocks) - 1)
    name = type(pipeline).__name__
    if name == "LDMSuperResolutionPipeline":
        return math.lcm(32, unet)  # its preprocessing crops to multiples of 32
    vae = int(getattr(pipeline, "vae_scale_factor", 1) or 1)
    if name == "StableDiffusionLatentUpscalePipeline":
        return math.lcm(vae, max(1, vae * unet // 2))  # encoded vae times smaller, then doubled, before the denoiser
    return math.lcm(vae, unet)


def _padded(picture: Any, multiple: int) -> Any:
    """The tile with its right and bottom edges repeated up to the multiple (cropped off the output again)."""
    import numpy as np
    from PIL import Image as PILImage

    width, height = picture.size
    pad_w, pad_h = -width % multiple, -height % multiple
    if not pad_w and not pad_h:
        return picture
    array = np.pad(np.asarray(picture), ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return PILImage.fromarray(array, "RGB")


def upscale(provider: DiffusersProvider, model: ModelInfo, request: ImageRequest, ctx: CallContext) -> ImageBatch:
    from .diffusers import OPTIONS, _call_options, _refuse_flagged, _torch

    torch = _torch()
    options = OPTIONS.for_request(request)
    pipeline, device = provider._pipeline(model, options, "upscale")
    name = type(pipeline).__name__
    factor = FACTORS.get(name)
    if factor is None:
        raise UnsupportedError(f"{model.id} ({name}) is not an upscaler: use a folder of one of {', '.join(FACTORS)}")
    tile, overlap = options.integer("tile_size"), options.integer("tile_overlap")
    warnings = check_upscale(model, name, request, tile, overlap)
    tile = tile or DEFAULT_TILE.get(name, 128)
    overlap = DEFAULT_OVERLAP if overlap is None else overlap
    seed = request.seed if request.seed is not None else random.randrange(2**63)
    generator = torch.Generator(device="cpu" if device == "mps" else device).manual_seed(seed)
    base: dict[str, Any] = {"generator": generator}
    if request.steps is not None:
        base["num_inference_steps"] = request.steps
    if name in PROMPTED:
        base["prompt"] = request.prompt or ""
        if request.negative_prompt is not None:
            base["negative_prompt"] = request.negative_prompt
        if request.guidance is not None:
            base["guidance_scale"] = request.guidance
    noise = options.integer("noise_level")
    if noise is not None:
        if name != "StableDiffusionUpscalePipeline":
            warnings.append(f"{name} takes no noise_level: it was not applied")
        else:
            base["noise_level"] = noise
    warnings.extend(_call_options(pipeline, options, base))
    multiple = _input_multiple(pipeline)
    source = request.images[0].to_pil().convert("RGB")
    def run_tile(picture: Any, index: int, count: int) -> Any:
        def step(completed: float, of: float, stage: str) -> None:
            if ctx.progress is not None:
                ctx.progress(index * of + completed, count * of, stage)

        kwargs = dict(base, image=_padded(picture, multiple))
        output = provider._run(pipeline, kwargs, dataclasses.replace(ctx, progress=step), request.steps)
        _refuse_flagged(output)
        made = output.images[0].convert("RGB")
        width, height = picture.size
        if ctx.progress is not None:
            ctx.progress(index + 1, count, "tiles")
        return made.crop((0, 0, width * factor, height * factor))

    started = time.perf_counter()
    picture = tiled(source, factor, tile, overlap, run_tile)
    image = Image.from_pil(picture)
    return ImageBatch([image], seed=seed, compute_seconds=time.perf_counter() - started,
                      size=f"{image.width}x{image.height}", warnings=warnings)  # fmt: skip


__all__ = ["FACTORS", "check_upscale", "tile_starts", "tiled", "upscale"]
