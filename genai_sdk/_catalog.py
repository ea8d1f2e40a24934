"""The model catalog: what each model can do, what it costs, and when it retires. Data, not code paths."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from ._errors import ConfigError

IMAGE_OPERATIONS = frozenset({"images.generate", "images.edit", "images.variations"})
SPEECH_TO_TEXT = frozenset({"speech.transcribe", "speech.translate", "speech.detect_language"})
MAX_IMAGES_PER_CALL = 10  # across split calls; more is almost always a mistake in a loop


@dataclass(frozen=True)
class SizeRule:
    """Free-form sizes: both edges multiples of ``multiple_of`` within limits (gpt-image-2 style)."""

    multiple_of: int = 16
    min_edge: int = 256
    max_edge: int = 3840
    max_ratio: float = 3.0
    max_pixels: int = 3840 * 2160

    def check(self, width: int, height: int) -> str | None:
        if width % self.multiple_of or height % self.multiple_of:
            return f"both edges must be multiples of {self.multiple_of}"
        if min(width, height) < self.min_edge or max(width, height) > self.max_edge:
            return f"edges must lie between {self.min_edge} and {self.max_edge} pixels"
        if max(width, height) / min(width, height) > self.max_ratio:
            return f"the aspect ratio must lie between 1:{self.max_ratio:g} and {self.max_ratio:g}:1"
        if width * height > self.max_pixels:
            return f"at most {self.max_pixels} pixels"
        return None


@dataclass(frozen=True)
class PriceTable:
    """USD per unit. Image keys are ``quality@WxH`` with ``*`` as a wildcard for either part."""

    unit: str
    usd: Mapping[str, Decimal] = field(default_factory=dict)
    source: str = ""
    as_of: str = ""

    def lookup(self, quality: str | None, size: str | None) -> Decimal | None:
        q, s = quality or "*", size or "*"
        for key in (f"{q}@{s}", f"{q}@*", f"*@{s}", "*@*"):
            if key in self.usd:
                return self.usd[key]
        return None


@dataclass(frozen=True)
class ModelInfo:
    provider: str
    name: str
    operations: frozenset[str]
    sizes: tuple[str, ...] = ()
    size_rule: SizeRule | None = None
    default_size: str | None = None
    qualities: tuple[str, ...] = ()
    default_quality: str | None = None
    estimate_quality: str | None = None  # the quality an "auto" request is reserved at (the dearest it may pick)
    styles: tuple[str, ...] = ()
    max_n: int = 1  # per backend call; more images are split into several calls
    max_prompt: int | None = None
    max_input_images: int = 1
    edit_sizes: tuple[str, ...] = ()
    response: str = "b64_json"  # "url" models are asked for b64_json where they allow it
    price: PriceTable | None = None
    retired_on: date | None = None
    replacement: str | None = None
    portable: frozenset[str] = frozenset()  # which of seed, negative_prompt, steps, guidance it honours
    # speech
    english_only: bool = False
    segments: bool = True  # answers with timed segments (else one segment spans the audio)
    max_upload_bytes: int | None = None  # longer audio is split at silences into several calls
    voices: tuple[str, ...] = ()
    default_voice: str | None = None
    audio_formats: tuple[str, ...] = ()
    max_chars: int | None = None  # longer text is split at sentence ends into several calls
    speed_range: tuple[float, float] = (0.25, 4.0)
    recommended: bool = False
    notes: str = ""

    @property
    def id(self) -> str:
        return f"{self.provider}:{self.name}"

    def supports(self, operation: str) -> bool:
        return operation in self.operations


_USD = Decimal
_OPENAI_PAGES = "OpenAI model pages (third-party quotes where OpenAI lists none)"


def _dalle2_prices() -> PriceTable:
    return PriceTable(
        "image",
        {"*@256x256": _USD("0.016"), "*@512x512": _USD("0.018"), "*@1024x1024": _USD("0.020")},
        _OPENAI_PAGES,
        "2026-08",
    )


def _gpt_image_prices(low: tuple[str, str], medium: tuple[str, str], high: tuple[str, str]) -> PriceTable:
    table = {}
    for quality, (square, other) in {"low": low, "medium": medium, "high": high}.items():
        table[f"{quality}@1024x1024"] = _USD(square)
        table[f"{quality}@*"] = _USD(other)
    return PriceTable("image", table, _OPENAI_PAGES, "2026-08")


_GPT_IMAGE_SIZES = ("1024x1024", "1536x1024", "1024x1536", "auto")
_GPT_IMAGE_QUALITIES = ("low", "medium", "high", "auto")


def _gpt_image(name: str, price: PriceTable | None, **extra: object) -> ModelInfo:
    base = ModelInfo(
        provider="openai",
        name=name,
        operations=frozenset({"images.generate", "images.edit"}),
        sizes=_GPT_IMAGE_SIZES,
        default_size="1024x1024",
        qualities=_GPT_IMAGE_QUALITIES,
        default_quality="auto",
        estimate_quality="high",
        max_n=10,
        max_prompt=32000,
        max_input_images=16,
        edit_sizes=_GPT_IMAGE_SIZES,
        price=price,
    )
    return replace(base, **extra)  # type: ignore[arg-type]


def _builtin_models() -> list[ModelInfo]:
    return [
        ModelInfo(
            provider="openai",
            name="dall-e-2",
            operations=IMAGE_OPERATIONS,
            sizes=("256x256", "512x512", "1024x1024"),
            default_size="1024x1024",
            qualities=("standard",),
            default_quality="standard",
            max_n=10,
            max_prompt=1000,
            max_input_images=1,
            edit_sizes=("256x256", "512x512", "1024x1024"),
            price=_dalle2_prices(),
            notes="edits and variations need a square PNG under 4 MB",
        ),
        ModelInfo(
            provider="openai",
            name="dall-e-3",
            operations=frozenset({"images.generate"}),
            sizes=("1024x1024", "1792x1024", "1024x1792"),
            default_size="1024x1024",
            qualities=("standard", "hd"),
            default_quality="standard",
            styles=("vivid", "natural"),
            max_n=1,
            max_prompt=4000,
            price=PriceTable(
                "image",
                {
                    "standard@1024x1024": _USD("0.040"),
                    "standard@*": _USD("0.080"),
                    "hd@1024x1024": _USD("0.080"),
                    "hd@*": _USD("0.120"),
                },
                _OPENAI_PAGES,
                "2026-08",
            ),
            retired_on=date(2026, 5, 12),
            replacement="openai:gpt-image-1.5",
        ),
        _gpt_image(
            "gpt-image-1",
            _gpt_image_prices(("0.011", "0.016"), ("0.042", "0.063"), ("0.167", "0.25")),
            retired_on=date(2026, 10, 23),
            replacement="openai:gpt-image-1.5",
        ),
        _gpt_image("gpt-image-1-mini", _gpt_image_prices(("0.005", "0.006"), ("0.011", "0.015"), ("0.036", "0.052"))),
        _gpt_image(
            "gpt-image-1.5",
            _gpt_image_prices(("0.009", "0.013"), ("0.034", "0.05"), ("0.133", "0.20")),
            recommended=True,
        ),
        *_openai_speech_models(),
        *_replicate_models(),
        _gpt_image(
            "gpt-image-2",
            None,  # no published price in our sources yet: costs are reported unpriced, never as zero
            sizes=("auto",),
            size_rule=SizeRule(),
            edit_sizes=("auto",),
            notes="any WxH with edges divisible by 16, ratio up to 3:1, at most 3840x2160",
        ),
    ]


_REPLICATE_PAGES = "Replicate model pages (per-image prices of official models)"
REPLICATE_SIZES = SizeRule(multiple_of=8, min_edge=64, max_edge=4096, max_ratio=4.0, max_pixels=4096 * 4096)


def _replicate_models() -> list[ModelInfo]:
    def flux(name: str, usd: str, operations: frozenset[str], max_n: int) -> ModelInfo:
        return ModelInfo(
            provider="replicate", name=f"black-forest-labs/{name}", operations=operations, size_rule=REPLICATE_SIZES,
            max_n=max_n, portable=frozenset({"seed", "negative_prompt", "steps", "guidance"}),
            price=PriceTable("image", {"*@*": _USD(usd)}, _REPLICATE_PAGES, "2025"),
            notes="sizes map to the nearest aspect ratio the model offers",
        )

    generate = frozenset({"images.generate"})
    return [
        flux("flux-schnell", "0.003", generate, 4),
        flux("flux-dev", "0.025", frozenset({"images.generate", "images.edit", "images.variations"}), 4),
        flux("flux-1.1-pro", "0.04", generate, 1),
    ]


_OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse", "marin", "cedar")
_OPENAI_AUDIO_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
OPENAI_UPLOAD_LIMIT = 25 * 1024 * 1024


def _openai_speech_models() -> list[ModelInfo]:
    def stt(name: str, price: str | None, operations: frozenset[str], segments: bool) -> ModelInfo:
        table = PriceTable("minute", {"*@*": _USD(price)} if price else {}, _OPENAI_PAGES, "2026-08")
        return ModelInfo(
            provider="openai", name=name, operations=operations, price=table, segments=segments,
            max_upload_bytes=OPENAI_UPLOAD_LIMIT, max_prompt=896,
        )

    def tts(name: str, per_million: str | None, **extra: object) -> ModelInfo:
        usd = {"*@*": _USD(per_million) / 1_000_000} if per_million else {}
        table = PriceTable("character", usd, _OPENAI_PAGES, "2026-08")
        base = ModelInfo(
            provider="openai", name=name, operations=frozenset({"speech.synthesize"}), price=table,
            voices=_OPENAI_VOICES, default_voice="alloy", audio_formats=_OPENAI_AUDIO_FORMATS, max_chars=4096,
        )
        return replace(base, **extra)  # type: ignore[arg-type]

    both = frozenset({"speech.transcribe", "speech.translate"})
    sora = {"operations": frozenset({"videos.generate"}), "retired_on": date(2026, 9, 24),
            "notes": "OpenAI shut the Videos API down with these models"}
    return [
        ModelInfo(provider="openai", name="sora-2", price=PriceTable("second", {"*@*": _USD("0.10")}, _OPENAI_PAGES, "2026-08"), **sora),  # type: ignore[arg-type]
        ModelInfo(provider="openai", name="sora-2-pro", price=PriceTable("second", {"*@*": _USD("0.30")}, _OPENAI_PAGES, "2026-08"), **sora),  # type: ignore[arg-type]
        stt("whisper-1", "0.006", both, True),
        stt("gpt-4o-transcribe", None, frozenset({"speech.transcribe"}), False),
        stt("gpt-4o-mini-transcribe", None, frozenset({"speech.transcribe"}), False),
        tts("tts-1", "15"),
        tts("tts-1-hd", "30"),
        tts("gpt-4o-mini-tts", None),
    ]


class Catalog:
    """Lookup of ``provider:model`` names. Thread-safe; users may register models of their own."""

    def __init__(self, models: Iterable[ModelInfo] = ()) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, ModelInfo] = {m.id: m for m in models}

    def register(self, model: ModelInfo) -> None:
        """Add or replace a model, for instance one served by an OpenAI-compatible endpoint."""
        with self._lock:
            self._models[model.id] = model

    def get(self, model_id: str) -> ModelInfo | None:
        return self._models.get(model_id)

    def models(self, provider: str | None = None) -> list[ModelInfo]:
        return [m for m in self._models.values() if provider is None or m.provider == provider]

    def recommended(self, provider: str, operation: str) -> ModelInfo | None:
        return next(
            (m for m in self._models.values() if m.provider == provider and m.recommended and m.supports(operation)),
            None,
        )


def split_model_id(model_id: str) -> tuple[str, str]:
    """``provider:model`` -> (provider, model). The provider is the text before the first colon."""
    provider, sep, name = model_id.partition(":")
    if not sep or not provider or not name or not provider.replace("_", "").isalnum():
        raise ConfigError(
            f"malformed model name {model_id!r}: write it as 'provider:model', "
            "for example 'openai:gpt-image-1.5' or 'whisper:tiny.en'"
        )
    return provider.lower(), name


def default_catalog() -> Catalog:
    return Catalog(_builtin_models())
