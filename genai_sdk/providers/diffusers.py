"""Local images and video with diffusers pipelines, on the user's own GPU (or CPU).

Pipelines load from a folder or the local Hugging Face cache, offline unless downloads are allowed, safetensors only
unless pickle weights are allowed. A pool keeps loaded pipelines by model, device, dtype and options, least recently
used first out under a memory budget; text-to-image, image-to-image and inpainting share one set of components.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sized
from pathlib import Path
from typing import Any

from .._catalog import CONFIGURED, ModelInfo, PriceTable, SizeRule
from .._config import Settings
from .._errors import ConfigError, ContentPolicyError, GenerationFailedError, InvalidRequestError, UnsupportedError
from .._media import Image
from .._requests import ImageRequest, Request, VideoRequest
from ._options import Bool, Choice, Float, Int, Option, OptionSpec, ParsedOptions, Str
from .base import CallContext, Cancelled, ImageBatch, VideoOutcome
from .diffusers_video import encode_mp4, frame_count, frames_of, spatial_multiple

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
DEFAULT_STRENGTH = {"edit": 0.75, "variations": 0.6}
_FLAGS = ("cpu_offload", "attention_slicing", "vae_tiling", "channels_last", "fast")  # loading options: the pool's key
OPTIONS = OptionSpec(
    "diffusers",
    Option("device", Str(pattern=r"auto|cpu|mps|cuda(:[0-9]+)?", pattern_text="auto, cpu, cuda, cuda:N or mps"),
           "where the pipeline runs; auto (default): CUDA, then Apple MPS, then the CPU"),
    Option("dtype", Choice(("auto", "float16", "bfloat16", "float32")),
           "weights' precision; auto (default): float16 on a GPU, float32 on the CPU"),
    Option("cpu_offload", Bool(), "model CPU offload: components move to the GPU only while they run (CUDA only)"),
    Option("attention_slicing", Bool(), "compute attention in slices: less memory, a little slower"),
    Option("vae_tiling", Bool(), "decode the VAE in tiles, for large images on little memory"),
    Option("channels_last", Bool(), "channels-last memory format for the denoiser"),
    Option("fast", Bool(), "torch.compile the denoiser (channels-last); the first call compiles, later calls are faster"),
    Option("allow_download", Bool(), "download a model missing from the local Hugging Face cache (default False)"),
    Option("allow_pickle", Bool(), "load pickle weights (.bin, .pt, .ckpt): this runs code from the files (default False)"),
    Option("strength", Float(0.0, 1.0, min_open=True), "how far image-to-image moves from its input (default 0.75 for "
           "edit, 0.6 for variations, 1 for inpainting)", frozenset({"images.edit", "images.variations"})),
    Option("eta", Float(0.0, 1.0), "DDIM's eta: noise added at each step (0 is deterministic DDIM); for pipelines that take it"),
    Option("tile_size", Int(32, 4096), "input pixels a tile spans: larger inputs are upscaled tile by tile (default 128; "
           "256 for the latent upscaler)", frozenset({"images.upscale"})),
    Option("tile_overlap", Int(0, 1024), "input pixels neighbouring tiles share, blended (default 16)", frozenset({"images.upscale"})),
    Option("noise_level", Int(0, 350), "noise added to the input by the Stable Diffusion x4 upscaler (default 20)",
           frozenset({"images.upscale"})),
    Option("controlnet", Str(), "path of a ControlNet folder (default: the model folder's own ControlNet)",
           frozenset({"images.sketch"})),
    Option("control", Choice(("scribble", "canny", "depth")), "what the ControlNet reads (default: from its folder's "
           "name, else scribble)", frozenset({"images.sketch"})),
    Option("control_strength", Float(0.0, 2.0), "how strongly the sketch steers the picture (default 1)",
           frozenset({"images.sketch"})),
    Option("prior", Str(), "path of a prior folder (Kandinsky's) for a decoder folder; for a combined folder, it "
           "replaces the folder's own", frozenset({"images.generate", "images.edit", "images.variations", "images.blend"})),
    Option("prompt_weight", Float(0.0, 1.0), "a blend prompt's share of the mixed embedding, with a prior and decoder "
           "(default: an equal share, 1 / (images + 1))", frozenset({"images.blend"})),
)
_SKETCHABLE = ("StableDiffusionPipeline", "StableDiffusionXLPipeline")  # with a ControlNet given as an option


def _torch() -> Any:
    try:
        import torch
    except ModuleNotFoundError:
        raise ConfigError("diffusers models need torch and diffusers: pip install 'genai-sdk[local]'") from None
    return torch


def check_folder(folder: Path, allow_pickle: bool) -> dict[str, Any]:
    """The folder's model_index.json, after checking that every component it names is there, in safetensors."""
    index = folder / "model_index.json"
    if not index.is_file():
        raise ConfigError(f"{folder} is not a diffusers pipeline folder: model_index.json is missing")
    try:
        config = json.loads(index.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{index} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict) or "_class_name" not in config:
        raise ConfigError(f"{index} names no pipeline class (_class_name is missing)")
    for name, spec in config.items():
        if name.startswith("_") or not isinstance(spec, list) or spec[0] is None:
            continue
        component = folder / name
        if not component.is_dir():
            raise ConfigError(f"{folder} is missing the {name!r} component that model_index.json names ({spec[1]})")
        files = [p for p in component.iterdir() if p.is_file()]
        weights = [p for p in files if p.suffix == ".safetensors"]
        pickled = [p for p in files if p.suffix in PICKLE_SUFFIXES]
        if pickled and not weights and not allow_pickle:
            raise ConfigError(
                f"{component} holds only pickle weights ({pickled[0].name}); loading pickle runs code from the file, "
                "so it is refused. Convert the weights to safetensors, or pass "
                "provider_options={'diffusers': {'allow_pickle': True}} if you trust the file"
            )
    return config


def _class_name(model_name: str) -> str:
    """The pipeline class a folder (or a model in the local Hugging Face cache) names, read without loading it."""
    index = Path(model_name).expanduser() / "model_index.json"
    if not index.is_file() and not model_name.startswith(("/", ".", "~")) and model_name.count("/") == 1:
        with contextlib.suppress(Exception):  # a cache lookup only: nothing is downloaded
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(model_name, "model_index.json")
            if isinstance(cached, str):
                index = Path(cached)
    try:
        return str(json.loads(index.read_text(encoding="utf-8")).get("_class_name", ""))
    except (OSError, ValueError, AttributeError):
        return ""


def resolve_folder(name: str, allow_download: bool) -> Path:
    folder = Path(name).expanduser()
    if folder.is_dir():
        return folder
    if name.startswith(("/", ".", "~")):
        raise ConfigError(f"no diffusers model folder at {name}")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=not allow_download))
    except Exception as exc:  # not cached, not found, offline: all mean the same to the user
        hint = "" if allow_download else " (downloads are off: pass provider_options={'diffusers': {'allow_download': True}})"
        raise ConfigError(f"diffusers:{name} is not a folder and not in the local Hugging Face cache{hint}: {type(exc).__name__}") from None


def _device_and_dtype(options: ParsedOptions) -> tuple[str, Any]:
    torch = _torch()
    device = options.text("device", "auto")
    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    dtype_name = options.text("dtype", "auto")
    if dtype_name == "auto":
        dtype_name = "float16" if device.startswith(("cuda", "mps")) else "float32"
    return device, getattr(torch, dtype_name)


def _footprint(pipeline: Any) -> int:
    total = 0
    for component in getattr(pipeline, "components", {}).values():
        parameters = getattr(component, "parameters", None)
        if callable(parameters):
            total += sum(p.numel() * p.element_size() for p in parameters())
    return total


class PipelinePool:
    """Loaded pipelines by (folder, device, dtype, options); derived tasks share the loaded components."""

    def __init__(self, budget_bytes: int | None = None) -> None:
        self._lock = threading.RLock()
        self._entries: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self.budget_bytes = budget_bytes
        self.loads = 0  # real loads from disk: a second call, or a switch of task, adds none

    def get(self, key: tuple[Any, ...], task: str, load: Any) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                base = load()
                self.loads += 1
                entry = {"base": base, "bytes": _footprint(base)}
                self._entries[key] = entry
                self._evict(keep=key)
            self._entries.move_to_end(key)
            if task not in entry:
                entry[task] = _derive(entry["base"], task)
            return entry[task]

    def _evict(self, keep: tuple[Any, ...]) -> None:
        if self.budget_bytes is None:
            return
        while sum(e["bytes"] for e in self._entries.values()) > self.budget_bytes and len(self._entries) > 1:
            oldest = next(iter(self._entries))
            if oldest == keep:
                break
            del self._entries[oldest]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _derive(base: Any, task: str) -> Any:
    """The pipeline for another task, built on the loaded components (no weights are read again)."""
    if task in ("text2img", "video", "variation", "upscale", "control"):
        return base
    if task.startswith("control:"):
        from .diffusers_control import load_controlnet

        derived = load_controlnet(base, Path(task.partition(":")[2]))
        _silence(derived)
        return derived
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

    try:
        if task == "img2img":
            derived = AutoPipelineForImage2Image.from_pipe(base)
        else:
            derived = AutoPipelineForInpainting.from_pipe(base)
    except ValueError as exc:
        raise InvalidRequestError(f"this pipeline ({type(base).__name__}) has no {task} counterpart: {exc}") from None
    _silence(derived)  # from_pipe makes a new pipeline object: the base's progress-bar setting does not carry over
    return derived


def _silence(pipeline: Any) -> None:
    """Progress goes to on_progress, never as a bar on stderr."""
    if hasattr(pipeline, "set_progress_bar_config"):
        pipeline.set_progress_bar_config(disable=True)


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Loading a pipeline draws diffusers' and transformers' bars ("Loading pipeline components", "Loading
    weights"): they are switched off while the SDK loads, and back on after if they were on."""
    from diffusers.utils import logging as diffusers_logging

    libraries: list[Any] = [diffusers_logging]
    with contextlib.suppress(ModuleNotFoundError):
        from transformers.utils import logging as transformers_logging

        libraries.append(transformers_logging)
    were_on = [library for library in libraries if library.is_progress_bar_enabled()]
    for library in were_on:
        library.disable_progress_bar()
    try:
        yield
    finally:
        for library in were_on:
            library.enable_progress_bar()


POOL = PipelinePool()
# One generation at a time per process: pooled pipelines are shared by every client, and a pipeline's scheduler
# keeps per-run state.
def _dtype_keyword() -> str:
    """diffusers 0.42 renamed from_pretrained's ``torch_dtype`` to ``dtype`` and warns at every use of the old name."""
    import diffusers

    version = tuple(int(part) for part in diffusers.__version__.split(".")[:2] if part.isdigit())
    return "dtype" if version >= (0, 42) else "torch_dtype"


_RUNNING = threading.Lock()


def _mask_to_repaint(mask: Image, size: tuple[int, int]) -> Any:
    """White where the image may change. A mask with alpha follows OpenAI's rule (transparent = change);
    one without follows diffusers' (white = change)."""
    from PIL import Image as PILImage

    picture = mask.to_pil()
    if picture.mode in ("RGBA", "LA") or (picture.mode == "P" and "transparency" in picture.info):
        alpha = picture.convert("RGBA").getchannel("A")
        repaint = alpha.point(lambda a: 255 if a < 128 else 0)
    else:
        repaint = picture.convert("L").point(lambda v: 255 if v >= 128 else 0)
    return repaint.resize(size, PILImage.Resampling.NEAREST) if repaint.size != size else repaint


def _combined(images: tuple[Image, ...], size: tuple[int, int] | None) -> Any:
    pictures = [i.to_pil().convert("RGB") for i in images]
    target = size or pictures[0].size
    blend = pictures[0].resize(target)
    for count, picture in enumerate(pictures[1:], start=2):
        from PIL import Image as PILImage

        blend = PILImage.blend(blend, picture.resize(target), 1.0 / count)
    return blend


class DiffusersProvider:
    name = "diffusers"

    def __init__(self, settings: Settings, environ: Mapping[str, str]) -> None:
        self._settings = settings
        _torch()
        try:
            import diffusers  # noqa: F401
        except ModuleNotFoundError:
            raise ConfigError("diffusers models need diffusers: pip install 'genai-sdk[local]'") from None

    def describe(self, model_name: str) -> ModelInfo | None:
        from .diffusers_prior import operations as prior_operations
        from .diffusers_upscale import FACTORS, PROMPTED

        operations = {"images.generate", "images.edit", "images.variations"}
        portable = {"seed", "negative_prompt", "steps", "guidance"}
        class_name = _class_name(model_name)
        served = prior_operations(class_name)
        if served is not None:
            operations = set(served)
        elif any(word in class_name for word in ("Video", "AnimateDiff", "CogVideoX", "LTX", "Wan")):
            operations = {"videos.generate"}
        elif "ImageVariation" in class_name:
            operations = {"images.variations"}
        elif class_name in FACTORS:
            operations = {"images.upscale"}
            if class_name not in PROMPTED:
                portable = {"seed", "steps"}
        elif "ControlNet" in class_name:
            operations = {"images.sketch"}
        elif class_name in _SKETCHABLE:
            operations.add("images.sketch")
        price = self._settings.local_usd_per_second
        return ModelInfo(
            provider="diffusers",
            name=model_name,
            operations=frozenset(operations),
            size_rule=SizeRule(multiple_of=8, min_edge=8, max_edge=4096, max_ratio=8.0, max_pixels=4096 * 4096),
            max_n=8,
            max_prompt=None,
            max_input_images=8,
            portable=frozenset(portable),
            exact_sizes=True,
            price=PriceTable("compute_second", {"*@*": price} if price is not None else {}, CONFIGURED, ""),
            notes=f"local diffusers pipeline {class_name}".strip(),
        )

    def check(self, model: ModelInfo, request: Request) -> list[str]:
        options = OPTIONS.for_request(request)
        warnings = []
        if isinstance(request, ImageRequest) and request.operation == "upscale":
            from .diffusers_upscale import check_upscale

            warnings.extend(check_upscale(model, _class_name(model.name), request, options.integer("tile_size"),
                                          options.integer("tile_overlap")))  # fmt: skip
        elif isinstance(request, ImageRequest) and request.operation == "sketch":
            from .diffusers_control import check_sketch

            check_sketch(model, _class_name(model.name), options)
        elif isinstance(request, ImageRequest) and _prior_pipeline(model):
            from .diffusers_prior import check_prior

            warnings.extend(check_prior(model, _class_name(model.name), request, options))
        if isinstance(request, ImageRequest) and request.operation in ("upscale", "sketch") and len(request.images) > 1:
            warnings.append(f"{len(request.images)} images were given: only the first was used")
        if isinstance(request, ImageRequest):
            if request.quality is not None:
                warnings.append(f"{model.id} has no quality setting: use steps instead")
            if request.operation == "edit" and len(request.images) > 1:
                warnings.append(f"{len(request.images)} images were blended into one starting image")
        return warnings

    # -- loading ----------------------------------------------------------------------------------------------

    def _pipeline(self, model: ModelInfo, options: ParsedOptions, task: str) -> tuple[Any, str]:
        allow_pickle = options.flag("allow_pickle", False)
        folder = resolve_folder(model.name, options.flag("allow_download", False))
        check_folder(folder, allow_pickle)
        device, dtype = _device_and_dtype(options)
        flags = tuple(sorted(k for k in _FLAGS if options.flag(k, False)))
        key = (str(folder.resolve()), device, str(dtype), flags)

        def load() -> Any:
            from diffusers import DiffusionPipeline

            try:
                with _quiet_loading():
                    pipeline = DiffusionPipeline.from_pretrained(
                        folder, **{_dtype_keyword(): dtype}, local_files_only=True,
                        use_safetensors=None if allow_pickle else True,
                    )
            except (OSError, ValueError, TypeError, KeyError) as exc:
                raise ConfigError(f"could not load the diffusers pipeline in {folder}: {exc}") from exc
            return _optimize(pipeline, device, flags)

        return POOL.get(key, task, load), device

    # -- images -------------------------------------------------------------------------------------------------

    def images(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> ImageBatch:
        if request.operation == "upscale":
            from .diffusers_upscale import upscale

            return upscale(self, model, request, ctx)
        if request.operation == "sketch":
            from .diffusers_control import from_sketch

            return from_sketch(self, model, request, n, ctx)
        if _prior_pipeline(model):
            from .diffusers_prior import images as prior_images

            return prior_images(self, model, request, n, ctx)
        torch = _torch()
        options = OPTIONS.for_request(request)
        if request.operation == "generate":
            task = "text2img"
        elif request.operation == "edit":
            task = "inpaint" if request.mask is not None else "img2img"
        else:
            task = "variation" if "images.generate" not in model.operations else "img2img"
        pipeline, device = self._pipeline(model, options, task)
        seed = request.seed if request.seed is not None else random.randrange(2**63)
        generator = torch.Generator(device="cpu" if device == "mps" else device).manual_seed(seed)
        warnings: list[str] = []
        size: tuple[int, int] | None = None
        if request.size not in (None, "auto"):
            width, height = (int(v) for v in str(request.size).split("x"))
            size = (width, height)
        kwargs: dict[str, Any] = {"generator": generator, "num_images_per_prompt": n}
        if request.steps is not None:
            kwargs["num_inference_steps"] = request.steps
        if request.guidance is not None:
            kwargs["guidance_scale"] = request.guidance
        if task != "variation":
            kwargs["prompt"] = request.prompt or ""
            if request.negative_prompt is not None:
                kwargs["negative_prompt"] = request.negative_prompt
        if size is not None:
            kwargs["width"], kwargs["height"] = size
        original = None
        if task != "text2img":
            original = _combined(request.images, size)
            kwargs["image"] = original
            if task == "inpaint":
                assert request.mask is not None
                kwargs["mask_image"] = _mask_to_repaint(request.mask, original.size)
                kwargs["strength"] = options.number("strength", 1.0)
            elif task == "img2img":
                kwargs["image"] = [original] * n  # one starting image per output (diffusers warns when it must copy)
                kwargs["strength"] = options.number("strength", DEFAULT_STRENGTH[request.operation])
                kwargs.pop("width", None)
                kwargs.pop("height", None)
            elif "strength" in options:
                warnings.append(f"{type(pipeline).__name__} makes variations without a strength: strength was not applied")
        warnings.extend(_call_options(pipeline, options, kwargs))
        started = time.perf_counter()
        output = self._run(pipeline, kwargs, ctx, request.steps)
        _refuse_flagged(output)
        pictures = list(output.images)
        if task == "inpaint" and original is not None:
            # Keep every pixel outside the mask exactly: the VAE's round trip would otherwise blur it.
            from PIL import Image as PILImage

            mask = kwargs["mask_image"]
            pictures = [PILImage.composite(p.resize(original.size), original, mask) for p in pictures]
        images = [Image.from_pil(p) for p in pictures]
        return ImageBatch(images, seed=seed, compute_seconds=time.perf_counter() - started,
                          size=f"{images[0].width}x{images[0].height}" if images else None, warnings=warnings)

    async def aimages(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> ImageBatch:
        return await asyncio.to_thread(self.images, model, request, n, ctx)

    def _run(self, pipeline: Any, kwargs: dict[str, Any], ctx: CallContext, steps: int | None) -> Any:
        total = kwargs.get("num_inference_steps") or steps or 50
        stepped = False

        def step_done(step: int, of: int) -> None:
            nonlocal stepped
            stepped = True
            if ctx.cancelled is not None and ctx.cancelled.is_set():
                raise Cancelled("the call was cancelled", provider="diffusers")
            if ctx.progress is not None:
                ctx.progress(step, of, "denoising")

        def on_step_end(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            step_done(step + 1, getattr(pipe, "num_timesteps", total) or total)
            return tensors

        import inspect

        counted = "callback_on_step_end" not in inspect.signature(pipeline.__call__).parameters
        if not counted:
            kwargs["callback_on_step_end"] = on_step_end
        with _RUNNING:
            if counted:
                # No step callback (older video pipelines, ...): every diffusers pipeline counts its steps, chunks
                # or frames on its progress bar, so the SDK lends it one that reports and stops where it ticks.
                pipeline.progress_bar = lambda iterable=None, total=None: _Ticks(step_done, iterable, total)
            try:
                return pipeline(**kwargs)
            except Cancelled:
                raise
            except ValueError as exc:
                if not stepped:  # the pipeline's own input checks run before the first step
                    raise InvalidRequestError(f"the diffusers pipeline refused the settings: {exc}") from exc
                raise GenerationFailedError(f"the diffusers pipeline failed: {exc}", provider="diffusers") from exc
            except RuntimeError as exc:
                raise GenerationFailedError(f"the diffusers pipeline failed: {exc}", provider="diffusers") from exc
            finally:
                if counted:
                    vars(pipeline).pop("progress_bar", None)  # the pooled pipeline's own method again

    # -- video ----------------------------------------------------------------------------------------------------

    def video(self, model: ModelInfo, request: VideoRequest, ctx: CallContext) -> VideoOutcome:
        import inspect

        torch = _torch()
        options = OPTIONS.for_request(request)
        pipeline, device = self._pipeline(model, options, "video")
        fps = request.fps or 8
        wanted = max(1, round((request.seconds or 2.0) * fps))
        frames, warnings = frame_count(pipeline, wanted, fps)
        seed = request.seed if request.seed is not None else random.randrange(2**63)
        kwargs: dict[str, Any] = {
            "prompt": request.prompt,
            "num_frames": frames,
            "generator": torch.Generator(device="cpu" if device == "mps" else device).manual_seed(seed),
            "output_type": "np",
        }
        accepted = inspect.signature(pipeline.__call__).parameters
        if "frame_rate" in accepted:
            kwargs["frame_rate"] = fps  # LTX conditions its positions on the frame rate
        if "image" in accepted:
            if request.image is None:
                raise InvalidRequestError(
                    f"{model.id} ({type(pipeline).__name__}) makes video from a starting image: pass image="
                )
            kwargs["image"] = request.image.to_pil().convert("RGB")
        elif request.image is not None:
            raise UnsupportedError(
                f"{model.id} ({type(pipeline).__name__}) makes video from text alone: it takes no starting image"
            )
        if request.size is not None:
            width, height = (int(v) for v in request.size.split("x"))
            multiple = spatial_multiple(pipeline)
            if width % multiple or height % multiple:
                raise InvalidRequestError(f"size {request.size}: this model's width and height must be multiples of {multiple}")
            kwargs["width"], kwargs["height"] = width, height
        if request.steps is not None:
            kwargs["num_inference_steps"] = request.steps
        if request.guidance is not None:
            kwargs["guidance_scale"] = request.guidance
        if request.negative_prompt is not None:
            kwargs["negative_prompt"] = request.negative_prompt
        for name, setting in (("prompt", "the prompt"), ("negative_prompt", "negative_prompt"),
                              ("guidance_scale", "guidance"), ("num_inference_steps", "steps")):
            if name in kwargs and name not in accepted:
                del kwargs[name]
                warnings.append(f"{type(pipeline).__name__} takes no {setting}: it was not applied")
        if "image" in kwargs and "width" in kwargs:
            kwargs["image"] = kwargs["image"].resize((kwargs["width"], kwargs["height"]))
        warnings.extend(_call_options(pipeline, options, kwargs))
        started = time.perf_counter()
        output = self._run(pipeline, kwargs, ctx, request.steps)
        made = frames_of(output.frames)
        if len(made) != frames:
            warnings.append(f"the pipeline made {len(made)} frames where {frames} were asked for")
        video = encode_mp4(made, fps)
        return VideoOutcome(video, seed=seed, compute_seconds=time.perf_counter() - started, warnings=warnings)

    async def avideo(self, model: ModelInfo, request: VideoRequest, ctx: CallContext) -> VideoOutcome:
        return await asyncio.to_thread(self.video, model, request, ctx)

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


class _Ticks:
    """What a pipeline's ``progress_bar(iterable=None, total=None)`` returns, with the calls diffusers makes of it:
    used as a context manager and ``update()``-d, or iterated. Each tick is reported, and a cancelled call stops
    there."""

    def __init__(self, tick: Any, iterable: Iterable[Any] | None, total: int | None) -> None:
        self._tick, self._iterable, self._done = tick, iterable, 0
        if total is None and isinstance(iterable, Sized):
            total = len(iterable)
        self.total = total or 0

    def __enter__(self) -> _Ticks:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int = 1) -> None:
        self._done += n
        self._tick(self._done, max(self.total, self._done))

    def __iter__(self) -> Iterator[Any]:
        for item in self._iterable if self._iterable is not None else ():  # a tensor of timesteps has no truth value
            yield item
            self.update()

    def close(self) -> None:
        pass


def _prior_pipeline(model: ModelInfo) -> bool:
    """Whether the model is a prior and a decoder (Kandinsky): diffusers_prior.py serves it."""
    from .diffusers_prior import operations

    return operations(_class_name(model.name)) is not None


def _call_options(pipeline: Any, options: ParsedOptions, kwargs: dict[str, Any]) -> list[str]:
    """Add the options that go to the pipeline's call (``eta``); one the pipeline takes no argument for is left out,
    with a warning."""
    eta = options.number("eta")
    if eta is None:
        return []
    import inspect

    if "eta" not in inspect.signature(pipeline.__call__).parameters:
        return [f"{type(pipeline).__name__} takes no eta: eta was not applied"]
    kwargs["eta"] = eta
    return []


def _optimize(pipeline: Any, device: str, flags: tuple[str, ...]) -> Any:
    torch = _torch()
    if "cpu_offload" in flags and device == "cuda":
        pipeline.enable_model_cpu_offload()
    else:
        pipeline.to(device)
    if "attention_slicing" in flags and hasattr(pipeline, "enable_attention_slicing"):
        pipeline.enable_attention_slicing()
    if "vae_tiling" in flags and hasattr(getattr(pipeline, "vae", None), "enable_tiling"):
        pipeline.vae.enable_tiling()
    denoiser = getattr(pipeline, "unet", None) or getattr(pipeline, "transformer", None)
    if "channels_last" in flags and denoiser is not None:
        denoiser.to(memory_format=torch.channels_last)
    if "fast" in flags and denoiser is not None:
        if getattr(pipeline, "unet", None) is not None:
            pipeline.unet.to(memory_format=torch.channels_last)
        compiled = torch.compile(denoiser, mode="max-autotune-no-cudagraphs", fullgraph=False)
        if getattr(pipeline, "unet", None) is not None:
            pipeline.unet = compiled
        else:
            pipeline.transformer = compiled
    _silence(pipeline)
    return pipeline


def _refuse_flagged(output: Any) -> None:
    """A pipeline with a safety checker blacks out what it flags; the SDK refuses instead of returning black images."""
    flags = getattr(output, "nsfw_content_detected", None)
    if flags is not None and any(bool(flag) for flag in flags):
        raise ContentPolicyError(
            f"the pipeline's safety checker flagged {sum(bool(f) for f in flags)} of {len(flags)} image(s) as NSFW; "
            "nothing is returned (the pipeline had blacked them out)",
            stage="output", source="provider", categories=["sexual"],
        )  # fmt: skip


__all__ = ["POOL", "DiffusersProvider", "PipelinePool", "check_folder", "encode_mp4", "resolve_folder"]
