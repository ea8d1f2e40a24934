"""Prices to costs, in one place, for every modality and backend.

A call's use is :class:`Usage` records, one per billing unit (3 images at quality high and size 1024x1024, 8 seconds
of video, 95 characters): the job's expected usages before the call (the estimate, reserved), the outcomes' after it
(``outcome.usage()``). :meth:`Pricing.cost` prices them in the unit of the model's price, turns USD into credits and
applies the credit plan. A model without a price is never free: its cost is unpriced (``usd=None``) and credits are
counted per unit, with a :class:`Notice` saying so for a hosted model. A local model, priced by the user's
``local_usd_per_second``, is unpriced without it as expected: its cost says so (``usd=None``), and no warning does.
Notices become the result's ``list[str]`` of warnings.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import TYPE_CHECKING

from .._requests import Cost

if TYPE_CHECKING:
    from .._catalog import ModelInfo
    from ._plans import Plan

_CREDIT_STEP = Decimal("0.0001")

# Credits counted per unit when no USD price is known, so that credit budgets still hold: never a silent zero.
UNPRICED_CREDITS = {
    "image": Decimal(1),
    "minute": Decimal(1),
    "character": Decimal("0.001"),
    "compute_second": Decimal("0.1"),
    "second": Decimal(1),
}


@dataclass(frozen=True)
class Usage:
    """What a call used in one billing unit. ``quality`` and ``size`` select an image price."""

    unit: str  # image, second (of video), minute (of audio), character, compute_second
    quantity: Decimal
    quality: str | None = None
    size: str | None = None

    @classmethod
    def of(cls, unit: str, quantity: float | int, quality: str | None = None, size: str | None = None) -> Usage:
        """A usage from a float figure (seconds measured, a duration), kept to the millisecond."""
        exact = Decimal(quantity) if isinstance(quantity, int) else Decimal(str(round(quantity, 3)))
        return cls(unit, exact, quality, size)


@dataclass(frozen=True)
class Notice:
    """One warning of a call: its kind ("unpriced", "lifecycle", "not_applied", "provider", ...), the setting or
    model it is about, and the message the result shows."""

    kind: str
    setting: str
    message: str


class Notices:
    """A call's warnings in the order they arose, one per (kind, setting): a later notice of the same kind about the
    same setting replaces the earlier and goes last (the actual cost's "unpriced" notice replaces the estimate's).
    Plain strings (a provider's warnings) are notes keyed by their text: the same text is kept once, where it came."""

    def __init__(self, items: Iterable[str | Notice] = ()) -> None:
        self._items: dict[tuple[str, str], Notice] = {}
        self.extend(items)

    def add(self, item: str | Notice) -> None:
        if isinstance(item, str) and any(n.message == item for n in self._items.values()):
            return  # said already, in another's words: a provider's note that repeats the core's
        notice = item if isinstance(item, Notice) else Notice("note", item, item)
        key = (notice.kind, notice.setting)
        if self._items.get(key) == notice:
            return  # said already
        self._items.pop(key, None)  # a replacement goes last, as the latest word
        self._items[key] = notice

    def extend(self, items: Iterable[str | Notice]) -> None:
        for item in items:
            self.add(item)

    def messages(self) -> list[str]:
        return [notice.message for notice in self._items.values()]

    def __iter__(self) -> Iterator[Notice]:
        return iter(list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)


class Pricing:
    """Usages to a cost: the catalog's prices, ``credits_per_usd`` and the credit plan, applied the same way to
    estimates and to actual costs."""

    def __init__(self, credits_per_usd: Decimal, plan: Plan | None = None) -> None:
        self.credits_per_usd = credits_per_usd
        self.plan = plan

    def cost(self, model: ModelInfo, usages: Sequence[Usage], *, estimated: bool) -> tuple[Cost, Notice | None]:
        """The cost of ``usages`` in the unit of the model's price (the first usage's unit, the call's main one,
        when the model has no price table), and a notice when no USD price is known for a hosted model."""
        price = model.price
        unit = price.unit if price is not None and any(u.unit == price.unit for u in usages) else usages[0].unit
        chosen = [u for u in usages if u.unit == unit]
        credits, usd, unpriced = Decimal(0), Decimal(0), None
        for usage in chosen:
            unit_usd = price.lookup(usage.quality, usage.size) if price is not None else None
            if unit_usd is None:
                step = UNPRICED_CREDITS.get(usage.unit, Decimal(1)) * usage.quantity
                unpriced = usage
            else:
                usd += unit_usd * usage.quantity
                step = unit_usd * usage.quantity * self.credits_per_usd
            credits += step.quantize(_CREDIT_STEP, rounding=ROUND_CEILING)
        cost = Cost(credits, None if unpriced is not None else usd, estimated)
        if self.plan is not None:
            cost = self.plan.price(cost)
        if unpriced is None or (price is not None and price.configured):
            return cost, None  # a local model without local_usd_per_second is unpriced by the user's choice: no warning
        what = (
            f"at quality={unpriced.quality}, size={unpriced.size}" if unpriced.unit == "image"
            else f"per {unpriced.unit.replace('_', '-')}"
        )  # fmt: skip
        return cost, Notice("unpriced", model.id, f"no USD price is known for {model.id} {what}: the cost is unpriced "
                                                  f"(usd=None) and {cost.credits} credits were counted")  # fmt: skip


__all__ = ["UNPRICED_CREDITS", "Notice", "Notices", "Pricing", "Usage"]
