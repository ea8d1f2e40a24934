"""The model catalog: what each model can do, what it costs, and when it retires. Data, not code paths."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import cast

from ._errors import ConfigError

IMAGE_OPERATIONS = frozenset({"images.generate", "images.edit", "images.variations"})
SPEECH_TO_TEXT = frozenset({"speech.transcribe", "speech.translate", "speech.detect_language"})
MAX_IMAGES_PER_CALL = 10  # across split calls; more is almost always a mistake in a loop
PRICE_UNITS = ("image", "second", "minute", "character", "compute_second")
# The source of a local model's price: the user's ``local_usd_per_second``. Unset, the model is unpriced as expected.
CONFIGURED = "configuration"


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
        return next((self.usd[key] for key in (f"{q}@{s}", f"{q}@*", f"*@{s}", "*@*") if key in self.usd), None)

    @property
    def configured(self) -> bool:
        """Priced by the user's settings (a local model's compute-seconds): no figure there is a choice, not a gap."""
        return self.source == CONFIGURED


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
    exact_sizes: bool = False  # it makes pictures of exactly the size asked for (checked on every answer)
    durations: tuple[float, ...] = ()  # the only lengths (seconds) a video model makes, its default first
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


# -- the catalog files: the ``models`` of each ``providers/<name>.json`` --------------------------------------------
# Each model is an object of ModelInfo's fields (lists for tuples and sets, ISO dates); ``"template": "x"`` starts it
# from the file's ``templates.x``; ``size_rule`` is an object of SizeRule's fields or the name of one of the file's
# ``size_rules``; ``"price": {"unit": ..., "usd": {key: "USD"}}`` (or ``usd_per_million``), its source and date from
# the file's ``prices`` unless given. Prices are strings, read as exact decimals; ``comment`` is for readers.

_TUPLES = ("sizes", "qualities", "styles", "edit_sizes", "voices", "audio_formats", "speed_range", "durations")
_SETS = ("operations", "portable")


def size_rule(provider: str, name: str) -> SizeRule:
    """A size rule a provider's file names in its ``[size_rules]`` (for models it describes when first used)."""
    from .providers._specs import provider_files

    return SizeRule(**provider_files()[provider]["size_rules"][name])


def _price(table: Mapping[str, object], defaults: Mapping[str, object]) -> PriceTable:
    usd = {key: Decimal(str(value)) for key, value in dict(table.get("usd", {})).items()}  # type: ignore[call-overload]
    per_million = dict(table.get("usd_per_million", {}))  # type: ignore[call-overload]
    usd.update({key: Decimal(str(value)) / 1_000_000 for key, value in per_million.items()})
    return PriceTable(
        str(table["unit"]), usd, str(table.get("source", defaults.get("source", ""))),
        str(table.get("as_of", defaults.get("as_of", ""))),
    )  # fmt: skip


def _model(provider: str, data: Mapping[str, object], file: Mapping[str, object]) -> ModelInfo:
    fields = dict(data)
    template = fields.pop("template", None)
    if template is not None:
        fields = {**file["templates"][template], **fields}  # type: ignore[index]
    fields.pop("comment", None)
    if isinstance(fields.get("retired_on"), str):
        fields["retired_on"] = date.fromisoformat(str(fields["retired_on"]))
    fields.update({key: tuple(cast(Iterable[object], fields[key])) for key in _TUPLES if key in fields})
    fields.update({key: frozenset(cast(Iterable[object], fields[key])) for key in _SETS if key in fields})
    rule = fields.get("size_rule")
    if isinstance(rule, str):
        rule = file["size_rules"][rule]  # type: ignore[index]
    if isinstance(rule, Mapping):
        fields["size_rule"] = SizeRule(**rule)
    if "price" in fields:
        fields["price"] = _price(fields["price"], file.get("prices", {}))  # type: ignore[arg-type]
    try:
        return ModelInfo(provider=provider, **fields)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ConfigError(f"providers/{provider}.json: model {data.get('name')!r} is malformed: {exc}") from exc


@functools.cache
def _builtin_models() -> tuple[ModelInfo, ...]:
    from .providers._specs import provider_files

    return tuple(
        _model(provider, model, file) for provider, file in provider_files().items() for model in file.get("models", ())
    )


def markdown(models: Iterable[ModelInfo]) -> str:
    """The models as the Markdown table of their provider's docs page (a test keeps the pages equal to it)."""
    rows = ["| model | operations | sizes | USD | status |", "|---|---|---|---|---|"]
    for m in models:
        sizes = ", ".join(s for s in m.sizes if s != "auto" or not m.size_rule)
        if m.size_rule is not None:
            r = m.size_rule
            rule = f"any WxH, edges multiples of {r.multiple_of} from {r.min_edge} to {r.max_edge}, ratio up to {r.max_ratio:g}:1"
            sizes = f"{sizes}; {rule}" if sizes else rule
        if m.durations:
            sizes += f"; {', '.join(f'{d:g}' for d in m.durations)} s"
        status = "recommended" if m.recommended else "available"
        if m.retired_on is not None:
            status = f"retired {m.retired_on.isoformat()}"
        rows.append(f"| `{m.id}` | {', '.join(sorted(m.operations))} | {sizes} | {_price_text(m.price)} | {status} |")
    return "\n".join(rows)


def _price_text(price: PriceTable | None) -> str:
    if price is None or not price.usd:
        return "unpriced"
    unit, scale = ("million characters", 1_000_000) if price.unit == "character" else (price.unit.replace("_", " "), 1)
    low, high = min(price.usd.values()) * scale, max(price.usd.values()) * scale
    amount = f"{low.normalize():f}" if low == high else f"{low.normalize():f} to {high.normalize():f}"
    return f"{amount} per {unit}"


# A price set by the application: USD by ``quality@size`` key, and its unit (None: the unit of the model's own table).
_SetPrice = tuple[dict[str, Decimal], str | None, str, str]
# The unit a model without a price table is priced in when set_price names none: its main operation's.
_MAIN_UNIT = (("images.", "image"), ("videos.", "second"), ("speech.synthesize", "character"), ("speech.", "minute"))


def _usd(value: object, what: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{what}: {value!r} is not a number of USD") from None
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"{what}: {value!r} must be a finite number of USD >= 0")
    return amount


class Catalog:
    """Lookup of ``provider:model`` names. Thread-safe; users may register models of their own and price them."""

    def __init__(self, models: Iterable[ModelInfo] = ()) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, ModelInfo] = {m.id: m for m in models}
        self._prices: dict[str, _SetPrice] = {}

    def register(self, model: ModelInfo) -> None:
        """Add or replace a model, for instance one served by an OpenAI-compatible endpoint."""
        with self._lock:
            self._models[model.id] = model

    def set_price(
        self, model: str, usd: Decimal | float | str | Mapping[str, Decimal | float | str], *, unit: str | None = None,
        source: str = "set by the application", as_of: str = "",
    ) -> None:
        """Price a model in USD per ``unit`` (image, second, minute, character or compute_second; by default the unit of
        the model's own price, or of its main operation). ``usd`` is one figure, or for images a table keyed
        ``quality@size`` with ``*`` for either part. Nothing else about the model changes: a model the catalog does not
        know (``replicate:owner/model``, ``diffusers:/path``) keeps what its provider describes when it is used."""
        provider, name = split_model_id(model)
        if unit is not None and unit not in PRICE_UNITS:
            raise ConfigError(f"set_price({model!r}): unit={unit!r} is not one of {', '.join(PRICE_UNITS)}")
        table = dict(usd) if isinstance(usd, Mapping) else {"*@*": usd}
        if not table:
            raise ConfigError(f"set_price({model!r}): no price was given")
        prices = {str(key): _usd(value, f"set_price({model!r})") for key, value in table.items()}
        with self._lock:
            self._prices[f"{provider}:{name}"] = (prices, unit, source, as_of)

    def priced(self, model: ModelInfo) -> ModelInfo:
        """The model with the price the application set for it, if it set one."""
        chosen = self._prices.get(model.id)
        if chosen is None:
            return model
        usd, unit, source, as_of = chosen
        if unit is None:
            unit = model.price.unit if model.price is not None else next(
                (u for prefix, u in _MAIN_UNIT if any(op.startswith(prefix) for op in model.operations)), "image"
            )
        return replace(model, price=PriceTable(unit, usd, source, as_of))

    def get(self, model_id: str) -> ModelInfo | None:
        model = self._models.get(model_id)
        return None if model is None else self.priced(model)

    def models(self, provider: str | None = None) -> list[ModelInfo]:
        return [self.priced(m) for m in list(self._models.values()) if provider is None or m.provider == provider]

    def recommended(self, provider: str, operation: str) -> ModelInfo | None:
        return next((m for m in self.models(provider) if m.recommended and m.supports(operation)), None)


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
