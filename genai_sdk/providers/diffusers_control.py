"""Pictures from a sketch with a ControlNet: the control image prepared for the kind of ControlNet, then one call of
the ControlNet pipeline at the sketch's size (rounded to multiples of 8)."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._catalog import ModelInfo
from .._errors import ConfigError, InvalidRequestError
from .._media import Image
from .._requests import ImageRequest
from .base import CallContext, ImageBatch

if TYPE_CHECKING:
    from ._options import ParsedOptions
    from .diffusers import DiffusersProvider

KINDS = ("scribble", "canny", "depth")
MULTIPLE = 8  # Stable Diffusion's ControlNet pipelines refuse other widths and heights


def controlnet_folder(options: ParsedOptions) -> Path | None:
    """The ControlNet folder the ``controlnet`` option names (checked: a folder with a config and safetensors)."""
    from .diffusers import PICKLE_SUFFIXES

    given = options.text("controlnet")
    if given is None:
        return None
    folder = Path(given).expanduser()
    if not (folder / "config.json").is_file():
        raise ConfigError(f"controlnet={given!r} is not a ControlNet folder (config.json is missing)")
    files = [p for p in folder.iterdir() if p.is_file()]
    if not any(p.suffix == ".safetensors" for p in files) and not options.flag("allow_pickle", False):
        pickled = [p.name for p in files if p.suffix in PICKLE_SUFFIXES]
        raise ConfigError(
            f"{folder} holds no safetensors weights{f' (only {pickled[0]})' if pickled else ''}: convert them, or pass "
            "provider_options={'diffusers': {'allow_pickle': True}} if you trust the file"
        )
    return folder.resolve()


def check_sketch(model: ModelInfo, class_name: str, options: ParsedOptions) -> None:
    """Refuse, before anything is loaded, a sketch with no ControlNet to read it."""
    if controlnet_folder(options) is None and class_name and "ControlNet" not in class_name:
        raise ConfigError(
            f"{model.id} ({class_name}) has no ControlNet: pass provider_options={{'diffusers': {{'controlnet': "
            "'/path/to/controlnet-folder'}}}, or use a ControlNet pipeline folder"
        )


def load_controlnet(base: Any, folder: Path) -> Any:
    """The base pipeline's ControlNet counterpart, sharing its loaded components, with the ControlNet in ``folder``."""
    from diffusers import AutoPipelineForText2Image, ControlNetModel

    from .diffusers import _dtype_keyword, _quiet_loading

    with _quiet_loading():
        net = ControlNetModel.from_pretrained(folder, **{_dtype_keyword(): base.dtype}, local_files_only=True)
    net.to(base.device)
    try:
        return AutoPipelineForText2Image.from_pipe(base, controlnet=net)
    except ValueError as exc:
        raise InvalidRequestError(f"this pipeline ({type(base).__name__}) has no ControlNet counterpart: {exc}") from None


def guess_kind(name: str) -> str:
    """The kind of ControlNet from its name (``sd-controlnet-canny``, ``control_v11f1p_sd15_depth``), else scribble."""
    lowered = name.lower()
    return next((kind for kind in ("canny", "depth") if kind in lowered), "scribble")


def _line_drawing(gray: Any) -> bool:
    """Whether a greyscale picture is a drawing (nearly all pixels near black or white) rather than a photo."""
    import numpy as np

    extreme = np.count_nonzero((gray < 64) | (gray > 191))
    return bool(extreme >= 0.9 * gray.size)


def _edges(gray: Any) -> Any:
    try:
        import cv2
    except ImportError:
        raise ConfigError("finding edges in a photo needs OpenCV: pip install 'genai-sdk[policy]'") from None
    return cv2.Canny(gray, 100, 200)


def control_image(sketch: Any, kind: str, size: tuple[int, int]) -> Any:
    """What the ControlNet reads: white lines on black for scribble and canny (a dark-on-white drawing inverted, a
    photo turned into its edges), the picture as given for depth; at ``size``."""
    import numpy as np
    from PIL import Image as PILImage

    picture = sketch.convert("RGB")
    if picture.size != size:
        picture = picture.resize(size, PILImage.Resampling.BICUBIC)
    if kind == "depth":
        return picture
    gray = np.asarray(picture.convert("L"))
    if _line_drawing(gray):
        lines = 255 - gray if np.median(gray) > 127 else gray  # scribble and canny nets were trained on white lines
    else:
        lines = _edges(gray)
    return PILImage.fromarray(np.ascontiguousarray(lines), "L").convert("RGB")


def output_size(width: int, height: int) -> tuple[int, int]:
    """The sketch's size rounded to the nearest multiples of 8 (halves up; at least 8)."""
    return tuple(max(MULTIPLE, (edge + MULTIPLE // 2) // MULTIPLE * MULTIPLE) for edge in (width, height))  # type: ignore[return-value]


def from_sketch(provider: DiffusersProvider, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> ImageBatch:
    from .diffusers import OPTIONS, _call_options, _class_name, _refuse_flagged, _torch

    torch = _torch()
    options = OPTIONS.for_request(request)
    check_sketch(model, _class_name(model.name), options)
    folder = controlnet_folder(options)
    pipeline, device = provider._pipeline(model, options, f"control:{folder}" if folder is not None else "control")
    if getattr(pipeline, "controlnet", None) is None:
        raise ConfigError(f"{model.id} ({type(pipeline).__name__}) has no ControlNet: pass the controlnet option")
    kind = options.text("control") or guess_kind(str(folder) if folder is not None else _controlnet_name(model.name))
    sketch = request.images[0].to_pil()
    size = output_size(*sketch.size)
    warnings = []
    if size != sketch.size:
        warnings.append(f"the sketch is {sketch.size[0]}x{sketch.size[1]}; pictures are made at {size[0]}x{size[1]} "
                        f"(multiples of {MULTIPLE})")  # fmt: skip
    seed = request.seed if request.seed is not None else random.randrange(2**63)
    kwargs: dict[str, Any] = {
        "prompt": request.prompt or "",
        "image": control_image(sketch, kind, size),
        "width": size[0],
        "height": size[1],
        "num_images_per_prompt": n,
        "generator": torch.Generator(device="cpu" if device == "mps" else device).manual_seed(seed),
    }
    if request.steps is not None:
        kwargs["num_inference_steps"] = request.steps
    if request.guidance is not None:
        kwargs["guidance_scale"] = request.guidance
    if request.negative_prompt is not None:
        kwargs["negative_prompt"] = request.negative_prompt
    strength = options.number("control_strength")
    if strength is not None:
        kwargs["controlnet_conditioning_scale"] = strength
    warnings.extend(_call_options(pipeline, options, kwargs))
    started = time.perf_counter()
    output = provider._run(pipeline, kwargs, ctx, request.steps)
    _refuse_flagged(output)
    images = [Image.from_pil(p) for p in output.images]
    return ImageBatch(images, seed=seed, compute_seconds=time.perf_counter() - started,
                      size=f"{size[0]}x{size[1]}", warnings=warnings)  # fmt: skip


def _controlnet_name(model_name: str) -> str:
    """The name a ControlNet pipeline folder's own ControlNet was saved from, else the folder's name."""
    config = Path(model_name).expanduser() / "controlnet" / "config.json"
    try:
        saved = str(json.loads(config.read_text(encoding="utf-8")).get("_name_or_path", ""))
    except (OSError, ValueError):
        saved = ""
    return f"{model_name} {saved}"


__all__ = ["KINDS", "check_sketch", "control_image", "from_sketch", "guess_kind", "load_controlnet", "output_size"]
