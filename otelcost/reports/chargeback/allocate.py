"""The arithmetic of chargeback: splitting a pool of picodollars by weights, and prorating a fee.

Everything here is integer picodollars (1e-12 USD, ``otelcost.money``) and exact fractions, so
a split always adds up to the pool to the last picodollar:

1. each receiver's exact share is ``pool * weight / total_weight`` (a ``Fraction``);
2. every receiver first gets its share rounded down (floor);
3. the picodollars left over (fewer than the number of receivers) go one each to the receivers
   with the largest discarded fractions, ties broken by receiver name (ascending), so the same
   inputs always give the same bill. Each receiver's ``rounding_pico`` (0 or 1) shows it.

A monthly fee is prorated by the time the period covers of each calendar month it touches
(:func:`prorate_monthly`): a whole month gets the whole amount, 2026-11-05 gets 1/30 of
November's, a quarter three whole amounts. The exact sum is rounded down once, to the
picodollar.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction

__all__ = ["Share", "month_overlaps", "prorate_monthly", "split"]


@dataclass(frozen=True, slots=True)
class Share:
    """One receiver's part of a pool: ``pico`` includes ``rounding_pico`` (0 or 1 per receiver)."""

    receiver: str
    pico: int
    weight: Fraction
    share: Fraction
    rounding_pico: int


def split(pool_pico: int, weights: Mapping[str, Fraction]) -> list[Share]:
    """Split ``pool_pico`` over the receivers of positive weight by largest remainder.

    Returns one :class:`Share` per receiver with a positive weight, in receiver-name order; the
    ``pico`` of the shares add up to ``pool_pico`` exactly. No positive weight: an empty list
    (the caller keeps the pool unallocated). Weights must not be negative.
    """
    if any(weight < 0 for weight in weights.values()):
        raise ValueError("weights must not be negative")
    positive = {name: weight for name, weight in weights.items() if weight > 0}
    total = sum(positive.values(), Fraction(0))
    if not positive:
        return []
    exact = {name: pool_pico * weight / total for name, weight in positive.items()}
    floors = {name: value.numerator // value.denominator for name, value in exact.items()}
    remainder = pool_pico - sum(floors.values())
    # The remainder is below the number of receivers: each discarded fraction is in [0, 1).
    order = sorted(positive, key=lambda name: (-(exact[name] - floors[name]), name))
    extra = set(order[:remainder])
    return [
        Share(
            receiver=name,
            pico=floors[name] + (1 if name in extra else 0),
            weight=positive[name],
            share=positive[name] / total,
            rounding_pico=1 if name in extra else 0,
        )
        for name in sorted(positive)
    ]


def _month_start(year: int, month: int) -> datetime:
    return datetime(year + (month - 1) // 12, (month - 1) % 12 + 1, 1, tzinfo=UTC)


def month_overlaps(start: datetime, end: datetime) -> list[tuple[datetime, Fraction]]:
    """Each calendar month (its first instant, UTC) that ``[start, end)`` touches, with the
    exact fraction of that month the span covers."""
    out: list[tuple[datetime, Fraction]] = []
    first = _month_start(start.year, start.month)
    while first < end:
        following = _month_start(first.year, first.month + 1)
        covered = min(end, following) - max(start, first)
        month = following - first
        micros = covered.days * 86_400_000_000 + covered.seconds * 1_000_000 + covered.microseconds
        whole = month.days * 86_400_000_000
        if micros > 0:
            out.append((first, Fraction(micros, whole)))
        first = following
    return out


def prorate_monthly(amount_pico: int, start: datetime, end: datetime) -> int:
    """``amount_pico`` per calendar month for ``[start, end)``, rounded down to the picodollar."""
    exact = sum((amount_pico * covered for _, covered in month_overlaps(start, end)), Fraction(0))
    return exact.numerator // exact.denominator
