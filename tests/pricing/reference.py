"""A deliberately naive, row-at-a-time pricer: Decimal arithmetic straight from the published
per-million rates, written independently of the vectorised engine, to test it against."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from otelcost.pricing import Catalog
from otelcost.pricing.rates import SERVICE_TIERS, PriceSet, Rates

MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Expected:
    model: str | None
    status: str
    input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    output: Decimal
    reasoning: Decimal

    @property
    def total(self) -> Decimal:
        return self.input + self.cache_read + self.cache_write + self.output + self.reasoning


def _rates_for(prices: PriceSet, input_tokens: int, when: datetime) -> Rates:
    if prices.long_context:
        chosen = prices.base
        for level in prices.long_context:
            if input_tokens > level.threshold or (level.inclusive and input_tokens == level.threshold):
                chosen = level.rates
        return chosen
    second = when.hour * 3600 + when.minute * 60 + when.second
    for window in prices.time_of_day:
        if window.contains(second, when.isoweekday()):
            return window.rates
    return prices.base


def price_row(catalog: Catalog, row: dict[str, object]) -> Expected:
    provider = row.get("provider")
    names = [n for n in (row.get("response_model"), row.get("request_model")) if n]
    entry = None
    for name in names:
        entry = catalog.resolve(provider if isinstance(provider, str) else None, str(name))
        if entry is not None:
            break
    zero = Decimal(0)
    if entry is None:
        return Expected(None, "unknown_model" if names else "no_model", zero, zero, zero, zero, zero)
    when = row["ts"]
    assert isinstance(when, datetime)
    version = entry.version_at(when)
    if version is None:
        return Expected(None, "unknown_model", zero, zero, zero, zero, zero)
    tier = str(row.get("service_tier") or "standard").lower()
    _, prices = version.price_set(tier if tier in SERVICE_TIERS else "standard")
    tokens_in = max(int(row.get("input_tokens") or 0), 0)  # type: ignore[call-overload]
    cache_read = max(int(row.get("cache_read_tokens") or 0), 0)  # type: ignore[call-overload]
    cache_write = max(int(row.get("cache_write_tokens") or 0), 0)  # type: ignore[call-overload]
    output = max(int(row.get("output_tokens") or 0), 0)  # type: ignore[call-overload]
    reasoning = max(int(row.get("reasoning_tokens") or 0), 0)  # type: ignore[call-overload]
    rates = _rates_for(prices, tokens_in, when).per_million()
    attributes = row.get("attributes") or {}
    assert isinstance(attributes, dict)
    raw_1h = str(attributes.get("otelcost.cache_write_1h_tokens", "0")).strip()
    write_1h = min(int(raw_1h) if raw_1h.isdigit() else 0, cache_write)
    return Expected(
        entry.id,
        "priced",
        max(tokens_in - cache_read - cache_write, 0) * rates["input"] / MILLION,
        cache_read * rates["cache_read"] / MILLION,
        ((cache_write - write_1h) * rates["cache_write"] + write_1h * rates["cache_write_1h"]) / MILLION,
        max(output - reasoning, 0) * rates["output"] / MILLION,
        reasoning * rates["reasoning"] / MILLION,
    )
