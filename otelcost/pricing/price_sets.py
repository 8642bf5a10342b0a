"""The price sets of a catalog version, from what its file says.

A validated :class:`~otelcost.pricing.catalog_models.PriceSetModel` (USD per 1M tokens, as
written) becomes a :class:`~otelcost.pricing.rates.PriceSet` (picodollars per token, fallbacks
applied, variants inheriting the base); a tier is either scaled from the standard prices, with
the rates it names replaced, or a price set of its own.
"""

from __future__ import annotations

from decimal import Decimal

from otelcost.money import per_million_to_pico_per_token
from otelcost.pricing.catalog_models import PriceSetModel, RatesModel, TierModel
from otelcost.pricing.rates import (
    LongContext,
    PriceSet,
    Rates,
    TimeWindow,
    amortized_rates,
    override_price_set,
    pico_to_per_million,
    rates_from,
    scale_price_set,
)

__all__ = ["price_set", "tier_price_set"]


def price_set(model: PriceSetModel | TierModel) -> PriceSet:
    """The standard prices of a version (or a tier written out in full)."""
    amortized = model.amortized
    if amortized is not None:
        assert amortized.usd_per_hour is not None and amortized.input_tokens_per_hour is not None
        pico = amortized_rates(
            amortized.usd_per_hour,
            amortized.input_tokens_per_hour,
            amortized.output_tokens_per_hour,
            amortized.output_weight,
        )
        base = rates_from(pico, {name: pico_to_per_million(value) for name, value in pico.items()})
    else:
        base = _rates(model)
    return PriceSet(
        base,
        tuple(
            LongContext(level.at_least or level.above or 0, level.at_least is not None, _rates(level, base))
            for level in model.long_context
        ),
        tuple(
            TimeWindow(window.name, window.windows, window.weekdays, _rates(window, base))
            for window in model.time_of_day
        ),
    )


def tier_price_set(model: TierModel, standard: PriceSet, key: str) -> PriceSet:
    """A service tier of a version whose standard prices are ``standard``. Raises
    :class:`~otelcost.pricing.rates.RateError` when ``scale`` makes a rate finer than a
    picodollar per token (``key`` names the tier in the message)."""
    if model.scale is None:
        return price_set(model)
    scaled = scale_price_set(standard, model.scale, f"{key}.scale")
    named = model.named()
    return override_price_set(scaled, _pico(named), named)


def _rates(model: RatesModel, inherit: Rates | None = None) -> Rates:
    named = model.named()
    return rates_from(_pico(named), named, inherit=inherit)


def _pico(named: dict[str, Decimal]) -> dict[str, int]:
    # The models accept only whole picodollars per token: this cannot raise.
    return {name: per_million_to_pico_per_token(value) for name, value in named.items()}
