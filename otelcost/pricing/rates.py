"""Per-token rates and the price sets a catalog version is made of.

A catalog quotes prices the way providers do, in USD per million tokens, as exact decimals
(``"0.0375"``). Here each becomes a whole number of picodollars per token
(:func:`otelcost.money.per_million_to_pico_per_token`), so a call's cost is exact integer
arithmetic. A price quoted with more than six decimals per million is refused, never rounded
(the file models of :mod:`otelcost.pricing.catalog_models` check what is written; this module
holds what it becomes).

A :class:`PriceSet` holds the rates of one service tier of one catalog version:

* ``base`` — the six rates, with the catalog's fallbacks already applied: a missing
  ``cache_read`` or ``cache_write`` rate is the ``input`` rate (a provider that does not price
  caching apart bills those tokens as plain input), a missing ``cache_write_1h`` is the
  ``cache_write`` rate, a missing ``reasoning`` rate is the ``output`` rate.
* at most one kind of *variant*, chosen per call:

  - ``long_context``: higher rates for every token of the call once its input tokens (cache
    reads and writes included) pass a threshold — strictly above ``above: N``, or from
    ``at_least: N`` on. The highest threshold crossed wins; a class a level does not name
    keeps the base rate. This is how Anthropic, Google and OpenAI publish long-context prices.
  - ``time_of_day``: other rates while the call's start time (UTC) falls in a window, for
    providers with peak / off-peak prices (DeepSeek). The first matching window wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

from otelcost.money import PICO_PER_USD

__all__ = [
    "RATE_CLASSES",
    "SERVICE_TIERS",
    "LongContext",
    "PriceSet",
    "RateError",
    "Rates",
    "TimeWindow",
    "amortized_rates",
    "override_price_set",
    "pico_to_per_million",
    "rates_from",
    "scale_price_set",
]

RATE_CLASSES: Final = ("input", "cache_read", "cache_write", "cache_write_1h", "output", "reasoning")
"""Rate classes, in the order of :attr:`Rates.vector` (and of the engine's rate matrix)."""

SERVICE_TIERS: Final = ("standard", "batch", "flex", "priority")
"""Tiers a call can be priced at (``service_tier`` column). ``standard`` is a version's ``prices``."""

_PICO_PER_MILLION_TOKENS: Final = PICO_PER_USD // 10**6  # one USD per 1M tokens, per token


class RateError(ValueError):
    """Rates derived from a catalog are not whole picodollars; the message says which key and why."""


@dataclass(frozen=True, slots=True)
class Rates:
    """Picodollars per token for each rate class, fallbacks applied; ``declared`` keeps what the
    catalog actually wrote (USD per 1M tokens) for display."""

    input: int
    cache_read: int
    cache_write: int
    cache_write_1h: int
    output: int
    reasoning: int
    declared: tuple[tuple[str, Decimal], ...] = ()

    @property
    def vector(self) -> tuple[int, int, int, int, int, int]:
        return (
            self.input,
            self.cache_read,
            self.cache_write,
            self.cache_write_1h,
            self.output,
            self.reasoning,
        )

    def per_million(self) -> dict[str, Decimal]:
        """Every rate class in USD per 1M tokens (fallbacks included), for display."""
        return {
            name: pico_to_per_million(value) for name, value in zip(RATE_CLASSES, self.vector, strict=True)
        }


@dataclass(frozen=True, slots=True)
class LongContext:
    """Rates for every token of a call whose input tokens pass ``threshold``."""

    threshold: int
    inclusive: bool  # True: input_tokens >= threshold (xAI's rule); False: input_tokens > threshold
    rates: Rates

    @property
    def label(self) -> str:
        return f"long>={self.threshold}" if self.inclusive else f"long>{self.threshold}"


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Rates for calls that start inside one of ``ranges`` (seconds of the UTC day, end
    exclusive; a range may wrap past midnight) on one of ``weekdays`` (ISO, 1 = Monday)."""

    name: str
    ranges: tuple[tuple[int, int], ...]
    weekdays: frozenset[int]
    rates: Rates

    def contains(self, second_of_day: int, iso_weekday: int) -> bool:
        if iso_weekday not in self.weekdays:
            return False
        return any(_in_range(second_of_day, start, end) for start, end in self.ranges)


def _in_range(second: int, start: int, end: int) -> bool:
    if start < end:
        return start <= second < end
    return second >= start or second < end  # wraps past midnight


@dataclass(frozen=True, slots=True)
class PriceSet:
    base: Rates
    long_context: tuple[LongContext, ...] = ()
    time_of_day: tuple[TimeWindow, ...] = ()

    def variants(self) -> tuple[tuple[str | None, Rates], ...]:
        """``(label, rates)`` for the base (label None) then each variant, in engine order."""
        extra: tuple[tuple[str | None, Rates], ...]
        if self.long_context:
            extra = tuple((level.label, level.rates) for level in self.long_context)
        else:
            extra = tuple((window.name, window.rates) for window in self.time_of_day)
        return ((None, self.base), *extra)


def pico_to_per_million(pico: int) -> Decimal:
    """Picodollars per token as USD per 1M tokens, without trailing zeros."""
    value = Decimal(pico) / _PICO_PER_MILLION_TOKENS
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def amortized_rates(
    usd_per_hour: Decimal,
    input_tokens_per_hour: Decimal,
    output_tokens_per_hour: Decimal,
    output_weight: Decimal,
) -> dict[str, int]:
    """A GPU-hour cost spread over the tokens the deployment serves in that hour.

    ``input_tokens_per_hour`` and ``output_tokens_per_hour`` are measured *together* (the same
    hour of traffic); ``output_weight`` says how many input tokens' worth of GPU time one output
    token takes (decode is slower than prefill). The input rate is
    ``usd_per_hour / (input + weight x output)`` and the output rate ``weight`` times that, so
    an hour of the measured traffic costs the hour, never twice it. Each rate is rounded
    half-to-even to the picodollar. The throughputs must serve some tokens.
    """
    per_input = usd_per_hour * PICO_PER_USD / (input_tokens_per_hour + output_weight * output_tokens_per_hour)
    return {
        "input": int(per_input.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)),
        "output": int((per_input * output_weight).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)),
    }


def rates_from(
    pico: Mapping[str, int], declared: Mapping[str, Decimal], *, inherit: Rates | None = None
) -> Rates:
    """Rates from the classes a price set names (``pico``: picodollars per token; ``declared``: as
    written, for display). Classes it lacks come from ``inherit`` if given (a variant: a
    long-context level, a time-of-day window, a tier's replaced rates), else from the fallbacks
    (cache -> input, 1h cache write -> cache write, reasoning -> output); without ``inherit``,
    ``input`` and ``output`` must be named."""
    if inherit is not None:
        # A class the variant does not name keeps the base rate if the base *declared* it;
        # otherwise it follows the same fallback as the base did, from the variant's own rates
        # (reasoning at a long-context level costs that level's output rate, not the base's).
        inherited = dict(zip(RATE_CLASSES, inherit.vector, strict=True))
        explicit = {name for name, _ in inherit.declared}

        def pick(name: str, fallback: int) -> int:
            if name in pico:
                return pico[name]
            return inherited[name] if name in explicit else fallback

        input_rate = pick("input", inherited["input"])
        output_rate = pick("output", inherited["output"])
        cache_write = pick("cache_write", input_rate)
        return Rates(
            input=input_rate,
            cache_read=pick("cache_read", input_rate),
            cache_write=cache_write,
            cache_write_1h=pick("cache_write_1h", cache_write),
            output=output_rate,
            reasoning=pick("reasoning", output_rate),
            declared=tuple(sorted(declared.items())),
        )
    cache_write = pico.get("cache_write", pico["input"])
    return Rates(
        input=pico["input"],
        cache_read=pico.get("cache_read", pico["input"]),
        cache_write=cache_write,
        cache_write_1h=pico.get("cache_write_1h", cache_write),
        output=pico["output"],
        reasoning=pico.get("reasoning", pico["output"]),
        declared=tuple(sorted(declared.items())),
    )


def _scale_rates(rates: Rates, factor: Decimal, key: str) -> Rates:
    values = []
    for name, value in zip(RATE_CLASSES, rates.vector, strict=True):
        scaled = Decimal(value) * factor
        if scaled != scaled.to_integral_value():
            raise RateError(
                f"{key}: scale {factor} makes the {name} rate {pico_to_per_million(value)} finer than a "
                "picodollar per token; write that rate out instead"
            )
        values.append(int(scaled))
    declared = tuple((name, (amount * factor).normalize()) for name, amount in rates.declared)
    input_, cache_read, cache_write, cache_write_1h, output, reasoning = values
    return Rates(input_, cache_read, cache_write, cache_write_1h, output, reasoning, declared=declared)


def scale_price_set(prices: PriceSet, factor: Decimal, key: str) -> PriceSet:
    """Every rate of ``prices`` (variants included) times ``factor`` — "batch is 50% off".
    Raises :class:`RateError` when a scaled rate is not a whole number of picodollars."""
    return PriceSet(
        _scale_rates(prices.base, factor, key),
        tuple(replace(lv, rates=_scale_rates(lv.rates, factor, key)) for lv in prices.long_context),
        tuple(replace(w, rates=_scale_rates(w.rates, factor, key)) for w in prices.time_of_day),
    )


def override_price_set(
    prices: PriceSet, pico: Mapping[str, int], declared: Mapping[str, Decimal]
) -> PriceSet:
    """``prices`` with the base rates ``pico`` names replaced (variants keep their own rates)."""
    if not pico:
        return prices
    return replace(prices, base=rates_from(pico, declared, inherit=prices.base))
