"""The one pricing module: usages to costs for every unit, the plan applied there, unpriced models never free, and
notices that replace each other by kind and setting."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from genai_sdk._catalog import CONFIGURED, Catalog, ModelInfo, PriceTable
from genai_sdk._errors import ConfigError
from genai_sdk._requests import Cost
from genai_sdk.credits._plans import DallePlan
from genai_sdk.credits._pricing import Notice, Notices, Pricing, Usage

D = Decimal
IMAGES = PriceTable("image", {"low@1024x1024": D("0.01"), "low@*": D("0.02"), "high@*": D("0.2"), "*@*": D("0.05")})


def _model(price: PriceTable | None) -> ModelInfo:
    return ModelInfo(provider="acme", name="m", operations=frozenset({"images.generate"}), price=price)


@pytest.mark.parametrize(
    ("price", "usages", "credits", "usd", "unpriced"),
    [
        # images, by quality and size (a wildcard for either)
        (IMAGES, [Usage("image", D(3), "low", "1024x1024")], D(3), D("0.03"), False),
        (IMAGES, [Usage("image", D(1), "low", "512x512"), Usage("image", D(2), "high", "1024x1024")], D(42), D("0.42"), False),
        (IMAGES, [Usage("image", D(1), "medium", "1024x1024")], D(5), D("0.05"), False),
        # the price's unit is chosen among what the call used
        (PriceTable("compute_second", {"*@*": D("0.001")}), [Usage("image", D(4)), Usage("compute_second", D("12.5"))],
         D("1.25"), D("0.0125"), False),
        (PriceTable("second", {"*@*": D("0.40")}), [Usage("second", D(8)), Usage("compute_second", D(0))], D(320), D("3.20"), False),
        (PriceTable("minute", {"*@*": D("0.006")}), [Usage("minute", D("0.5")), Usage("compute_second", D(3))], D("0.3"), D("0.003"), False),
        (PriceTable("character", {"*@*": D("0.000015")}), [Usage("character", D(1000))], D("1.5"), D("0.015"), False),
        # no price: never free; credits per unit of the call's main unit, usd unknown
        (None, [Usage("image", D(2)), Usage("compute_second", D(30))], D(2), None, True),
        (PriceTable("character", {}), [Usage("character", D(1000))], D(1), None, True),
        (None, [Usage("character", D(1000)), Usage("compute_second", D(20))], D(1), None, True),  # as an empty table
        (PriceTable("compute_second", {}), [Usage("compute_second", D(25))], D("2.5"), None, True),
        # a price with no entry for this quality and size: unpriced too
        (PriceTable("image", {"high@*": D("0.2")}), [Usage("image", D(1), "low", "1024x1024")], D(1), None, True),
        # a local model's compute-seconds, priced by the user's local_usd_per_second, or unpriced without a warning
        (PriceTable("compute_second", {"*@*": D("0.001")}, CONFIGURED), [Usage("compute_second", D(25))], D("2.5"),
         D("0.025"), False),
        (PriceTable("compute_second", {}, CONFIGURED), [Usage("compute_second", D(25))], D("2.5"), None, False),
    ],
)
def test_usages_are_priced_in_the_models_unit(
    price: PriceTable | None, usages: list[Usage], credits: Decimal, usd: Decimal | None, unpriced: bool
) -> None:
    cost, notice = Pricing(D(100)).cost(_model(price), usages, estimated=False)
    assert cost == Cost(credits, usd, False)
    assert (notice is not None) == unpriced
    if notice is not None:
        assert notice.kind == "unpriced" and notice.setting == "acme:m"
        counted = re.search(r"and ([0-9.]+) credits were counted", notice.message)
        assert counted is not None and Decimal(counted.group(1)) == credits and "usd=None" in notice.message


def test_credits_are_rounded_up_to_a_ten_thousandth() -> None:
    cost, _ = Pricing(D(100)).cost(_model(PriceTable("character", {"*@*": D("0.000015")})), [Usage("character", D(1))],
                                   estimated=True)  # fmt: skip
    assert cost == Cost(D("0.0015"), D("0.000015"), True)
    cost, _ = Pricing(D(3)).cost(_model(PriceTable("character", {"*@*": D("0.000015")})), [Usage("character", D(1))],
                                 estimated=True)  # fmt: skip
    assert cost.credits == D("0.0001"), "0.000045 credits, rounded up"


def test_the_plan_is_applied_where_costs_are_made() -> None:
    cost, _ = Pricing(D(100), DallePlan()).cost(_model(IMAGES), [Usage("image", D(4), "high", "1024x1024")], estimated=False)
    assert cost == Cost(DallePlan.CREDITS_PER_PROMPT, D("0.8"), False), "one credit a prompt, the USD price kept"


def test_an_unpriced_notice_counts_the_credits_the_plan_charges() -> None:
    cost, notice = Pricing(D(100), DallePlan()).cost(_model(None), [Usage("image", D(2))], estimated=False)
    assert cost == Cost(DallePlan.CREDITS_PER_PROMPT, None, False)
    assert notice is not None and f"and {DallePlan.CREDITS_PER_PROMPT} credits were counted" in notice.message


def test_usage_of_keeps_a_measured_figure_to_the_millisecond() -> None:
    assert Usage.of("compute_second", 1.23456) == Usage("compute_second", D("1.235"))
    assert Usage.of("image", 3, "low", "256x256") == Usage("image", D(3), "low", "256x256")


def test_notices_replace_by_kind_and_setting_and_keep_their_order() -> None:
    notices = Notices(["made 2 of the 3 images asked for"])
    notices.add(Notice("unpriced", "acme:m", "estimate: no USD price, 3 credits"))
    notices.add("a provider's note")
    notices.add("made 2 of the 3 images asked for")  # the same text: kept once
    notices.add(Notice("unpriced", "acme:m", "actual: no USD price, 2 credits"))  # replaces the estimate's
    notices.add(Notice("unpriced", "acme:other", "another model's"))
    assert notices.messages() == [
        "made 2 of the 3 images asked for", "a provider's note", "actual: no USD price, 2 credits", "another model's",
    ]
    assert [n.kind for n in notices] == ["note", "note", "unpriced", "unpriced"] and len(notices) == 4
    notices.add(Notice("not_applied", "style", "acme:m has no style setting"))
    notices.add("acme:m has no style setting")  # a provider repeating the core's words: said once
    assert notices.messages().count("acme:m has no style setting") == 1


def _user_model(provider: str = "replicate", name: str = "acme/sketch", price: PriceTable | None = None) -> ModelInfo:
    return ModelInfo(provider=provider, name=name, operations=frozenset({"images.generate", "videos.generate"}),
                     max_n=4, price=price)  # fmt: skip


def test_set_price_prices_a_model_the_catalog_does_not_know_and_changes_nothing_else() -> None:
    catalog = Catalog()
    described = _user_model(price=PriceTable("compute_second", {}, "GPU time"))
    assert catalog.priced(described) is described, "nothing set: the model as its provider describes it"
    catalog.set_price("replicate:acme/sketch", "0.002", unit="image")
    assert catalog.get("replicate:acme/sketch") is None, "a price does not make a model known"
    priced = catalog.priced(described)
    assert priced.price == PriceTable("image", {"*@*": D("0.002")}, "set by the application", "")
    assert (priced.operations, priced.max_n, priced.id) == (described.operations, 4, described.id)
    cost, notice = Pricing(D(100)).cost(priced, [Usage("image", D(3)), Usage("compute_second", D(7))], estimated=False)
    assert cost == Cost(D("0.6"), D("0.006"), False) and notice is None
    # without a unit, the unit of the model's own price (a local model's compute-seconds), else of its operation
    catalog.set_price("diffusers:/models/mine", 0.5)
    local = _user_model("diffusers", "/models/mine", PriceTable("compute_second", {}, CONFIGURED))
    assert catalog.priced(local).price == PriceTable("compute_second", {"*@*": D("0.5")}, "set by the application", "")
    catalog.set_price("replicate:acme/other", {"*@1024x1024": "0.01", "*@*": "0.005"})
    other = catalog.priced(_user_model(name="acme/other"))
    assert other.price is not None and other.price.unit == "image" and other.price.lookup(None, "1024x1024") == D("0.01")


def test_set_price_on_a_known_model_keeps_its_capabilities() -> None:
    known = ModelInfo(provider="openai", name="dall-e-2", operations=frozenset({"images.generate"}), sizes=("256x256",),
                      price=PriceTable("image", {"*@256x256": D("0.016")}))  # fmt: skip
    catalog = Catalog([known])
    catalog.set_price("openai:dall-e-2", "0.01", source="our negotiated rate", as_of="2026-01-01")
    got = catalog.get("openai:dall-e-2")
    assert got is not None and got.sizes == ("256x256",)
    assert got.price == PriceTable("image", {"*@*": D("0.01")}, "our negotiated rate", "2026-01-01")
    assert [m.price for m in catalog.models("openai")] == [got.price]


@pytest.mark.parametrize(
    ("model", "usd", "unit", "message"),
    [
        ("no-colon", "0.1", None, "malformed model name"),
        ("replicate:acme/x", "-1", None, "must be a finite number of USD >= 0"),
        ("replicate:acme/x", "NaN", None, "must be a finite number of USD >= 0"),
        ("replicate:acme/x", "cheap", None, "is not a number of USD"),
        ("replicate:acme/x", "0.1", "token", "unit='token' is not one of image, second"),
        ("replicate:acme/x", {}, None, "no price was given"),
    ],
)
def test_set_price_refuses_what_cannot_be_a_price(model: str, usd: str | dict[str, str], unit: str | None, message: str) -> None:
    catalog = Catalog()
    with pytest.raises(ConfigError, match=re.escape(message)):
        catalog.set_price(model, usd, unit=unit)
    assert catalog.priced(_user_model(name="acme/x")).price is None, "a refused price is not kept"
