"""Local image-text scoring with CLIP (transformers' CLIPModel and CLIPProcessor), on the CPU or a GPU.

Models load from a folder or the local Hugging Face cache, offline unless downloads are allowed, safetensors only
unless pickle weights are allowed; each is loaded once per process (by folder, device and options) and shared by
every client.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .._catalog import CONFIGURED, ModelInfo, PriceTable
from .._config import Settings
from .._errors import ConfigError, GenerationFailedError
from .._requests import Request, ScoreRequest
from ._options import Bool, Option, OptionSpec, ParsedOptions, Str
from .base import CallContext, Cancelled, LoadedModels, ScoreOutcome

OPTIONS = OptionSpec(
    "clip",
    Option("device", Str(pattern=r"auto|cpu|cuda(:[0-9]+)?", pattern_text="auto, cpu, cuda or cuda:N"),
           "where the model runs; auto (default): CUDA when available, else the CPU"),
    Option("allow_download", Bool(), "download a model missing from the local Hugging Face cache (default False)"),
    Option("allow_pickle", Bool(), "load pickle weights (.bin, .pt): this runs code from the files (default False)"),
)
MODELS = LoadedModels()  # by (folder, device, allow_pickle): (model, processor)


def _torch() -> Any:
    try:
        import torch
    except ModuleNotFoundError:
        raise ConfigError("clip models need torch and transformers: pip install 'genai-sdk[local]'") from None
    return torch


def resolve_folder(name: str, allow_download: bool) -> Path:
    """A model folder, or the snapshot of a Hugging Face model id in the local cache (downloaded only if allowed)."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        return folder
    if name.startswith(("/", ".", "~")):
        raise ConfigError(f"no CLIP model folder at {name}")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=not allow_download))
    except Exception as exc:  # not cached, not found, offline: all mean the same to the user
        hint = "" if allow_download else " (downloads are off: pass provider_options={'clip': {'allow_download': True}})"
        raise ConfigError(f"clip:{name} is not a folder and not in the local Hugging Face cache{hint}: {type(exc).__name__}") from None


def _device(options: ParsedOptions) -> str:
    device = options.text("device", "auto")
    if device == "auto":
        return "cuda" if _torch().cuda.is_available() else "cpu"
    return device


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """transformers draws a bar while it loads weights: off while the SDK loads, back on after if it was on."""
    from transformers.utils import logging as transformers_logging

    was_on = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            transformers_logging.enable_progress_bar()


def _load(folder: Path, device: str, allow_pickle: bool) -> tuple[Any, Any]:
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{folder} is not a CLIP model folder: config.json is missing")
    weights = [p.name for p in folder.iterdir() if p.suffix == ".safetensors"]
    if not weights and not allow_pickle:
        raise ConfigError(
            f"{folder} holds no safetensors weights; loading pickle weights runs code from the file, so it is refused. "
            "Convert the weights to safetensors, or pass provider_options={'clip': {'allow_pickle': True}} if you trust the file"
        )
    from transformers import CLIPModel, CLIPProcessor

    try:
        with _quiet_loading():
            model = CLIPModel.from_pretrained(folder, local_files_only=True, use_safetensors=None if allow_pickle else True)
            processor = CLIPProcessor.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"could not load the CLIP model in {folder}: {exc}") from exc
    try:
        model = model.to(device)
    except (RuntimeError, AssertionError) as exc:  # no such device, or torch built without CUDA
        raise ConfigError(f"could not move the CLIP model to {device}: {exc}") from exc
    model.eval()
    return model, processor


def similarities(model: Any, processor: Any, pictures: list[Any], texts: list[str]) -> tuple[Any, Any]:
    """Cosine similarities (images x texts) and the softmax of CLIP's logits over the texts, as tensors: the
    computation ``score`` makes, shared with the benchmark."""
    torch = _torch()
    inputs = processor(text=texts, images=pictures, return_tensors="pt", padding=True, truncation=True)
    device = next(model.parameters()).device
    with torch.inference_mode():
        output = model(**{key: value.to(device) for key, value in inputs.items()})
    cosine = output.image_embeds @ output.text_embeds.T  # both normalised by CLIPModel
    return cosine, output.logits_per_image.softmax(dim=-1)


class ClipProvider:
    name = "clip"

    def __init__(self, settings: Settings, environ: Mapping[str, str]) -> None:
        self._settings = settings
        _torch()
        try:
            import transformers  # noqa: F401
        except ModuleNotFoundError:
            raise ConfigError("clip models need transformers: pip install 'genai-sdk[local]'") from None

    def describe(self, model_name: str) -> ModelInfo | None:
        price = self._settings.local_usd_per_second
        return ModelInfo(
            provider="clip",
            name=model_name,
            operations=frozenset({"images.score", "images.classify"}),
            price=PriceTable("compute_second", {"*@*": price} if price is not None else {}, CONFIGURED, ""),
            notes="local CLIP model",
        )

    def check(self, model: ModelInfo, request: Request) -> list[str]:
        OPTIONS.for_request(request)
        return []

    def _model(self, model: ModelInfo, request: ScoreRequest) -> tuple[Any, Any]:
        options = OPTIONS.for_request(request)
        allow_pickle = options.flag("allow_pickle", False)
        folder = resolve_folder(model.name, options.flag("allow_download", False))
        device = _device(options)
        key = (str(folder.resolve()), device, allow_pickle)
        loaded: tuple[Any, Any] = MODELS.get(key, lambda: _load(folder, device, allow_pickle))
        return loaded

    def score(self, model: ModelInfo, request: ScoreRequest, ctx: CallContext) -> ScoreOutcome:
        clip, processor = self._model(model, request)
        if ctx.cancelled is not None and ctx.cancelled.is_set():
            raise Cancelled("the call was cancelled", provider="clip")
        pictures = [image.to_pil().convert("RGB") for image in request.images]
        started = time.perf_counter()
        try:
            cosine, probabilities = similarities(clip, processor, pictures, list(request.texts))
        except (RuntimeError, ValueError) as exc:  # torch's errors (out of memory, a bad tensor)
            raise GenerationFailedError(f"CLIP failed: {exc}", provider="clip") from exc
        return ScoreOutcome(cosine.float().cpu().tolist(), probabilities.float().cpu().tolist(),
                            compute_seconds=time.perf_counter() - started)  # fmt: skip

    async def ascore(self, model: ModelInfo, request: ScoreRequest, ctx: CallContext) -> ScoreOutcome:
        return await asyncio.to_thread(self.score, model, request, ctx)

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass
