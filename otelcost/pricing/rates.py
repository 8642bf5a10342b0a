"""Per-token rates and the price sets a catalog version is made of.

A catalog quotes prices the way providers do, in USD per million tokens, as exact decimals
(``"0.0375"``). Here each becomes a whole number of picodollars per token
(:func:`otelcost.money.per_million_to_pico_per_token`), so a call's cost is exact integer
arithmetic. A price quoted with more than six decimals per million is refused, never rounded.

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
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Final

from otelcost.money import PICO_PER_USD, per_million_to_pico_per_token

__all__ = [
    "RATE_CLASSES",
    "LongContext",
    "PriceSet",
    "RateError",
    "Rates",
    "TimeWindow",
    "override_price_set",
    "parse_price_set",
    "pico_to_per_million",
    "scale_price_set",
]

RATE_CLASSES: Final = ("input", "cache_read", "cache_write", "cache_write_1h", "output", "reasoning")
"""Rate classes, in the order of :attr:`Rates.vector` (and of the engine's rate matrix)."""

_PICO_PER_MILLION_TOKENS: Final = PICO_PER_USD // 10**6  # one USD per 1M tokens, per token
_SECONDS_PER_DAY: Final = 86_400


class RateError(ValueError):
    """A price in a catalog is malformed; the message says which key and why."""


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


def _decimal(value: object, key: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise RateError(f"{key}: expected a number of USD per 1M tokens, got {value!r}")
    if isinstance(value, float):
        # Loaded catalogs never produce floats (the loader reads numbers as Decimal), but a
        # caller building a catalog in Python might: go through the shortest repr, not binary.
        value = repr(value)
    try:
        number = Decimal(str(value).strip().replace("_", ""))
    except InvalidOperation:
        raise RateError(f"{key}: expected a number of USD per 1M tokens, got {value!r}") from None
    if not number.is_finite():
        raise RateError(f"{key}: {value!r} is not a finite number")
    if number < 0:
        raise RateError(f"{key}: a price cannot be negative ({number})")
    return number


def _rate(value: object, key: str) -> tuple[Decimal, int]:
    number = _decimal(value, key)
    try:
        return number, per_million_to_pico_per_token(number)
    except ValueError:
        raise RateError(
            f"{key}: {number} USD per 1M tokens is finer than a picodollar per token "
            "(at most 6 decimal places)"
        ) from None


def _amortized(spec: object, key: str) -> dict[str, int]:
    """A GPU-hour cost spread over the tokens the deployment serves in that hour.

    ``input_tokens_per_hour`` and ``output_tokens_per_hour`` are measured *together* (the same
    hour of traffic); ``output_weight`` says how many input tokens' worth of GPU time one output
    token takes (decode is slower than prefill). The input rate is
    ``usd_per_hour / (input + weight x output)`` and the output rate ``weight`` times that, so
    an hour of the measured traffic costs the hour, never twice it. Each rate is rounded
    half-to-even to the picodollar.
    """
    if not isinstance(spec, Mapping):
        raise RateError(f"{key}: expected a mapping with usd_per_hour and input_tokens_per_hour")
    unknown = set(spec) - {"usd_per_hour", "input_tokens_per_hour", "output_tokens_per_hour", "output_weight"}
    if unknown:
        raise RateError(f"{key}: unknown key {sorted(unknown)[0]!r}")
    if "usd_per_hour" not in spec or "input_tokens_per_hour" not in spec:
        raise RateError(f"{key}: usd_per_hour and input_tokens_per_hour are required")
    usd = _decimal(spec["usd_per_hour"], f"{key}.usd_per_hour")
    input_tokens = _decimal(spec["input_tokens_per_hour"], f"{key}.input_tokens_per_hour")
    output_tokens = _decimal(spec.get("output_tokens_per_hour", 0), f"{key}.output_tokens_per_hour")
    weight = _decimal(spec.get("output_weight", 1), f"{key}.output_weight")
    if input_tokens < 0 or output_tokens < 0:
        raise RateError(f"{key}: token throughputs must not be negative")
    if weight <= 0:
        raise RateError(f"{key}.output_weight: must be greater than zero")
    input_equivalents = input_tokens + weight * output_tokens
    if input_equivalents <= 0:
        raise RateError(f"{key}: the throughputs must serve some tokens")
    per_input = usd * PICO_PER_USD / input_equivalents
    return {
        "input": int(per_input.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)),
        "output": int((per_input * weight).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)),
    }


def _rates(spec: Mapping[str, Any], key: str, *, inherit: Rates | None = None) -> Rates:
    """Rates from a mapping of rate classes; classes it lacks come from ``inherit`` if given,
    else from the fallbacks (cache -> input, 1h cache write -> cache write, reasoning -> output)."""
    declared: dict[str, Decimal] = {}
    pico: dict[str, int] = {}
    if "amortized" in spec:
        if any(name in spec for name in RATE_CLASSES):
            raise RateError(f"{key}: give either amortized or per-token rates, not both")
        pico.update(_amortized(spec["amortized"], f"{key}.amortized"))
        declared.update({name: pico_to_per_million(value) for name, value in pico.items()})
    for name in RATE_CLASSES:
        if name in spec:
            declared[name], pico[name] = _rate(spec[name], f"{key}.{name}")
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
    if "input" not in pico:
        raise RateError(f"{key}: the input rate is missing")
    if "output" not in pico:
        # Embedding models bill input only; stating output: 0 keeps that explicit.
        raise RateError(f"{key}: the output rate is missing (write output: 0 for input-only models)")
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


_PRICE_SET_KEYS: Final = frozenset({*RATE_CLASSES, "amortized", "long_context", "time_of_day"})


def _parse_clock(text: str, key: str) -> int:
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit():
        raise RateError(f"{key}: expected HH:MM, got {text!r}")
    value = int(hours) * 3600 + int(minutes) * 60
    if not 0 <= value <= _SECONDS_PER_DAY or int(minutes) >= 60:
        raise RateError(f"{key}: {text!r} is not a time of day")
    return value % _SECONDS_PER_DAY if value == _SECONDS_PER_DAY else value


def _time_window(spec: object, base: Rates, key: str) -> TimeWindow:
    if not isinstance(spec, Mapping):
        raise RateError(f"{key}: expected a mapping with name, windows and rates")
    unknown = set(spec) - {*RATE_CLASSES, "name", "windows", "weekdays"}
    if unknown:
        raise RateError(f"{key}: unknown key {sorted(unknown)[0]!r}")
    name = spec.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise RateError(f"{key}.name: expected a short identifier such as off_peak")
    windows = spec.get("windows")
    if not isinstance(windows, list) or not windows:
        raise RateError(f"{key}.windows: expected a list of UTC ranges such as '16:30-00:30'")
    ranges = []
    for i, window in enumerate(windows):
        start, sep, end = str(window).partition("-")
        if not sep:
            raise RateError(f"{key}.windows[{i}]: expected HH:MM-HH:MM, got {window!r}")
        first, last = _parse_clock(start, f"{key}.windows[{i}]"), _parse_clock(end, f"{key}.windows[{i}]")
        if first == last:
            raise RateError(f"{key}.windows[{i}]: the window {window!r} is empty")
        ranges.append((first, last))
    weekdays = spec.get("weekdays", [1, 2, 3, 4, 5, 6, 7])
    if not isinstance(weekdays, list) or not weekdays or not all(d in range(1, 8) for d in weekdays):
        raise RateError(f"{key}.weekdays: expected ISO weekdays 1 (Monday) to 7 (Sunday)")
    return TimeWindow(name, tuple(ranges), frozenset(weekdays), _rates(spec, key, inherit=base))


def _long_context(spec: object, base: Rates, key: str) -> LongContext:
    if not isinstance(spec, Mapping):
        raise RateError(f"{key}: expected a mapping with above (or at_least) and rates")
    unknown = set(spec) - {*RATE_CLASSES, "above", "at_least"}
    if unknown:
        raise RateError(f"{key}: unknown key {sorted(unknown)[0]!r}")
    if ("above" in spec) == ("at_least" in spec):
        raise RateError(f"{key}: give exactly one of above (strictly more input tokens) or at_least")
    inclusive = "at_least" in spec
    threshold = spec["at_least" if inclusive else "above"]
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold <= 0:
        raise RateError(f"{key}: the threshold must be a positive whole number of input tokens")
    if not any(name in spec for name in RATE_CLASSES):
        raise RateError(f"{key}: a long-context level must name at least one rate")
    return LongContext(threshold, inclusive, _rates(spec, key, inherit=base))


def parse_price_set(spec: object, key: str) -> PriceSet:
    """Parse one price set (``prices:`` of a version, or a service tier written out in full)."""
    if not isinstance(spec, Mapping):
        raise RateError(f"{key}: expected a mapping of rates (input, output, cache_read ...)")
    unknown = set(spec) - _PRICE_SET_KEYS
    if unknown:
        raise RateError(f"{key}: unknown key {sorted(unknown)[0]!r}")
    base = _rates(spec, key)
    levels = spec.get("long_context") or []
    windows = spec.get("time_of_day") or []
    if not isinstance(levels, list) or not isinstance(windows, list):
        raise RateError(f"{key}: long_context and time_of_day are lists")
    if levels and windows:
        raise RateError(f"{key}: long_context and time_of_day cannot be combined in one price set")
    long_context = tuple(_long_context(s, base, f"{key}.long_context[{i}]") for i, s in enumerate(levels))
    ordered = sorted(long_context, key=lambda level: (level.threshold, level.inclusive))
    if [(lv.threshold, lv.inclusive) for lv in ordered] != [
        (lv.threshold, lv.inclusive) for lv in long_context
    ]:
        raise RateError(f"{key}.long_context: list the levels by increasing threshold")
    if len({level.threshold for level in ordered}) != len(ordered):
        raise RateError(f"{key}.long_context: two levels have the same threshold")
    time_of_day = tuple(_time_window(s, base, f"{key}.time_of_day[{i}]") for i, s in enumerate(windows))
    if len({window.name for window in time_of_day}) != len(time_of_day):
        raise RateError(f"{key}.time_of_day: two windows have the same name")
    return PriceSet(base, long_context, time_of_day)


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


def scale_price_set(prices: PriceSet, factor: object, key: str) -> PriceSet:
    """Every rate of ``prices`` (variants included) times ``factor`` — "batch is 50% off"."""
    number = _decimal(factor, key)
    return PriceSet(
        _scale_rates(prices.base, number, key),
        tuple(replace(lv, rates=_scale_rates(lv.rates, number, key)) for lv in prices.long_context),
        tuple(replace(w, rates=_scale_rates(w.rates, number, key)) for w in prices.time_of_day),
    )


def override_price_set(prices: PriceSet, spec: Mapping[str, Any], key: str) -> PriceSet:
    """``prices`` with the base rates ``spec`` names replaced (variants keep their own rates)."""
    named = {name: spec[name] for name in RATE_CLASSES if name in spec}
    if not named:
        return prices
    return replace(prices, base=_rates(named, key, inherit=prices.base))
