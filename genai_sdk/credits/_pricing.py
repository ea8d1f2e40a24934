"""Prices to costs: an estimate before the call, the actual cost after it."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from .._catalog import ModelInfo
from .._requests import Cost

_CREDIT_STEP = Decimal("0.0001")

# Credits counted per unit when no USD price is known, so that credit budgets still hold: never a silent zero.
UNPRICED_CREDITS = {
    "image": Decimal(1),
    "minute": Decimal(1),
    "character": Decimal("0.001"),
    "compute_second": Decimal("0.1"),
    "second": Decimal(1),
}


def to_credits(usd: Decimal, credits_per_usd: Decimal) -> Decimal:
    return (usd * credits_per_usd).quantize(_CREDIT_STEP, rounding=ROUND_CEILING)


def _cost(
    model: ModelInfo, unit_usd: Decimal | None, units: Decimal, unit: str, what: str, credits_per_usd: Decimal, estimated: bool
) -> tuple[Cost, str | None]:
    if unit_usd is None:
        credits = (UNPRICED_CREDITS.get(unit, Decimal(1)) * units).quantize(_CREDIT_STEP, rounding=ROUND_CEILING)
        warning = (
            f"no USD price is known for {model.id} {what}: the cost is unpriced (usd=None) and {credits} credits were counted"
        )
        return Cost(credits, None, estimated), warning
    usd = unit_usd * units
    return Cost(to_credits(usd, credits_per_usd), usd, estimated), None


def image_cost(
    model: ModelInfo,
    count: int,
    quality: str | None,
    size: str | None,
    credits_per_usd: Decimal,
    *,
    estimated: bool,
) -> tuple[Cost, str | None]:
    """The cost of ``count`` images, and a warning when the price is unknown."""
    unit_usd = model.price.lookup(quality, size) if model.price is not None else None
    what = f"at quality={quality}, size={size}"
    return _cost(model, unit_usd, Decimal(count), "image", what, credits_per_usd, estimated)


def unit_cost(
    model: ModelInfo, units: Decimal, credits_per_usd: Decimal, *, estimated: bool
) -> tuple[Cost, str | None]:
    """The cost of ``units`` of the model's price unit (minutes, characters, compute-seconds, ...)."""
    unit = model.price.unit if model.price is not None else "unit"
    unit_usd = model.price.lookup(None, None) if model.price is not None else None
    return _cost(model, unit_usd, units, unit, f"per {unit.replace('_', '-')}", credits_per_usd, estimated)
