"""Contract discounts: ``effective_cost_usd`` from the list-price ``cost_usd``, exactly.

A discount of ``p`` percent keeps ``(100 - p) / 100`` of the cost. With ``p`` given to at most
six decimals that fraction is ``keep / scale`` with integers ``keep <= scale <= 10**8``, and the
discounted cost is ``cost * keep / scale`` rounded half-to-even to the picodollar. The product is
computed as ``(cost // scale) * keep + round((cost % scale) * keep / scale)``, so nothing
overflows int64 for any cost that fits in it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Final

import numpy as np
import numpy.typing as npt

from otelcost.pricing.config import Discount

__all__ = ["DiscountRule", "apply_fraction", "rules_for"]

_NO_END: Final = np.iinfo(np.int64).max


@dataclass(frozen=True, slots=True)
class DiscountRule:
    keep: int  # numerator of the fraction of list price that is paid
    scale: int  # its denominator
    start_us: int  # first microsecond (UTC) the rule applies; 0 = always
    end_us: int  # first microsecond it no longer applies
    discount: Discount


def _fraction(percent: Decimal) -> tuple[int, int]:
    keep = Decimal(100) - percent
    exponent = keep.normalize().as_tuple().exponent
    places = max(0, -exponent) if isinstance(exponent, int) else 0
    scale = 100 * 10**places
    return int(keep * 10**places), scale


def _day_us(day: date | None, default: int) -> int:
    if day is None:
        return default
    return int(datetime.combine(day, time(0), tzinfo=UTC).timestamp()) * 1_000_000


def _specificity(discount: Discount, order: int) -> tuple[int, int, int, int]:
    exact_model = not any(ch in discount.model for ch in "*?[")
    literal = sum(1 for ch in discount.model if ch not in "*?[]")
    return (-int(exact_model), -literal, -int(discount.provider != "*"), order)


def rules_for(discounts: Sequence[Discount], provider: str | None, model_id: str) -> tuple[DiscountRule, ...]:
    """The discounts that may apply to calls of ``model_id`` through ``provider``, most specific
    first; each row then takes the first whose dates contain its ``ts``."""
    matching = [
        (index, d)
        for index, d in enumerate(discounts)
        if (d.provider == "*" or d.provider.lower() == (provider or "").lower())
        and fnmatch.fnmatchcase(model_id, d.model.lower())
    ]
    matching.sort(key=lambda pair: _specificity(pair[1], pair[0]))
    rules = []
    for _, d in matching:
        keep, scale = _fraction(d.percent)
        rules.append(
            DiscountRule(keep, scale, _day_us(d.effective_from, 0), _day_us(d.effective_to, _NO_END), d)
        )
    return tuple(rules)


def apply_fraction(
    cost: npt.NDArray[np.int64] | npt.NDArray[np.object_],
    keep: npt.NDArray[np.int64],
    scale: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64] | npt.NDArray[np.object_]:
    """``cost * keep / scale`` rounded half-to-even, exactly, element-wise (costs are >= 0)."""
    # // and % rather than np.divmod: they also work on object arrays of Python integers.
    quotient, remainder = cost // scale, cost % scale
    product = remainder * keep
    partial, rest = product // scale, product % scale
    result = quotient * keep + partial
    twice = rest * 2
    round_up = (twice > scale) | ((twice == scale) & (result % 2 == 1))
    rounded: npt.NDArray[np.int64] | npt.NDArray[np.object_] = result + round_up.astype(result.dtype)
    return rounded
