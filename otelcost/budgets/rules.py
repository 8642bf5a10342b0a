"""Budget rules: a budget compiled for evaluation, and which calls of a batch it counts.

A :class:`Rule` is a :class:`~otelcost.budgets.config.BudgetConfig` with its window and scope
parsed, its limit in integer units (picodollars for the cost metrics) and its threshold ladder.
For a batch it selects the rows it counts -- in scope, not already counted (the dedup), inside
the open window -- and groups them by instance key (the values of the scope's ``'*'``
dimensions) and, for a window that slides, by bucket, with exact int64 sums.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from otelcost.budgets.config import MONEY_METRICS, BudgetConfig, ThresholdConfig
from otelcost.budgets.measures import BatchMeasures
from otelcost.budgets.scope import InstanceKey, Scope
from otelcost.budgets.windows import OpenWindow, Window
from otelcost.money import PICO_PER_USD, pico_to_decimal
from otelcost.policy.decisions import Action

__all__ = ["Group", "Rule", "Selection"]

Mask = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
Ladder = tuple[tuple[Action, int | None], ...]

Selection = tuple[Mask | None, I64 | None, int]
"""(rows counted or None for all of them, their buckets or None, late calls)."""
Group = tuple[InstanceKey, int | None, int, int, int, int]
"""(instance key, bucket, units, calls, unpriced calls, newest receive time)."""


def _ladder(thresholds: Sequence[ThresholdConfig]) -> Ladder:
    """For c crossed thresholds: the most severe action among them, and which threshold it is."""
    ladder: list[tuple[Action, int | None]] = [(Action.ALLOW, None)]
    for index, threshold in enumerate(thresholds):
        action = Action(threshold.action)
        best, _ = ladder[-1]
        ladder.append((action, index) if action.severity >= best.severity else ladder[-1])
    return tuple(ladder)


def _to_units(metric: str, amount: Decimal) -> int:
    value = amount * PICO_PER_USD if metric in MONEY_METRICS else amount
    if value != value.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of {metric} units")
    return int(value)


@dataclass(frozen=True, slots=True)
class Rule:
    """A budget compiled for evaluation: parsed window and scope, limit in units."""

    config: BudgetConfig
    window: Window
    scope: Scope
    limit_units: int
    ladder: Ladder
    """``ladder[c]``: the action with ``c`` thresholds crossed, and the threshold it comes from."""
    _levels: dict[int, list[int]] = field(default_factory=dict, compare=False, hash=False, repr=False)
    _shape: list[str] = field(default_factory=list, compare=False, hash=False, repr=False)

    @classmethod
    def of(cls, config: BudgetConfig, window: Window) -> Rule:
        """``config`` with its parsed ``window`` (usually ``config.window_in(zone)``)."""
        limit = _to_units(config.metric, config.limit)
        return cls(config, window, Scope.of(config.scope), limit, _ladder(config.thresholds))

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def metric(self) -> str:
        return self.config.metric

    @property
    def thresholds(self) -> tuple[ThresholdConfig, ...]:
        return self.config.thresholds

    def to_units(self, amount: Decimal) -> int:
        """An amount of the metric in integer units (picodollars for money)."""
        return _to_units(self.metric, amount)

    def to_amount(self, units: int) -> Decimal:
        return pico_to_decimal(units) if self.metric in MONEY_METRICS else Decimal(units)

    @property
    def shape(self) -> str:
        """:meth:`same_totals` as a short id (12 hex digits): rules of one shape count the same
        calls the same way, so a shared store keeps their totals together (``shared.py``)."""
        if not self._shape:
            scope = json.dumps(self.config.scope, sort_keys=True)
            text = f"{scope}|{self.window!r}|{self.metric}"
            self._shape.append(hashlib.sha256(text.encode()).hexdigest()[:12])
        return self._shape[0]

    def same_totals(self, other: Rule) -> bool:
        """Whether totals kept for ``other`` are valid for this rule (scope, window, metric)."""
        return (self.scope, self.window, self.metric) == (other.scope, other.window, other.metric)

    def threshold_units(self, limit_units: int) -> list[int]:
        """Units at which each threshold is crossed: ``ceil(at * limit)`` (units are whole)."""
        levels = self._levels.get(limit_units)
        if levels is None:
            levels = [int((t.at * limit_units).to_integral_value(ROUND_CEILING)) for t in self.thresholds]
            self._levels[limit_units] = levels
        return levels

    def floor_of(self, action: Action, levels: Sequence[int]) -> int:
        """The lowest total that keeps ``action`` (of a ladder crossed at ``levels``)."""
        crossed = next(c for c in range(1, len(self.ladder)) if self.ladder[c][0].severity >= action.severity)
        return levels[crossed - 1]

    # -- which calls count, under which key ------------------------------------------------------

    def select(
        self, measures: BatchMeasures, rows: Mask | None, window: OpenWindow, now_ns: int
    ) -> Selection:
        """The rows of a batch this rule counts in ``window`` (``rows``: not yet counted, None =
        all), the bucket of each row (windows that slide), and the late calls: rows in scope
        that belong to a window that has closed."""
        mask = self.scope.mask(measures.batch)
        if rows is not None:
            mask = rows if mask is None else mask & rows
        event_ns = np.minimum(measures.ts_ns, now_ns)  # a clock ahead of ours counts as now
        late = 0
        before = event_ns < window.start_ns
        if before.any():
            if window.end_ns is not None:  # a sliding window's old calls have aged out instead
                late = int(np.count_nonzero(before if mask is None else before & mask))
            mask = ~before if mask is None else mask & ~before
        return mask, self.window.buckets_of(event_ns), late

    def groups(self, measures: BatchMeasures, mask: Mask | None, buckets: I64 | None) -> Iterator[Group]:
        """One :data:`Group` per instance (and bucket) among the rows of ``mask``.

        Grouping is numpy on dictionary codes (for batches of a few hundred rows an Arrow
        ``group_by`` costs a millisecond of plan set-up; this costs tens of microseconds); sums
        are exact int64 (``np.add.at``).
        """
        selected: npt.NDArray[np.intp] | slice = slice(None) if mask is None else np.flatnonzero(mask)
        units = measures.units(self.metric)[selected]
        unpriced = measures.unpriced[selected]
        received = measures.received_ns[selected]
        wildcards = self.scope.wildcards
        sign = measures.sign
        if not wildcards and buckets is None:
            yield ((), None, int(units.sum()), sign * len(units), int(unpriced.sum()), int(received.max()))
            return
        codes = np.zeros(len(units), dtype=np.int64)
        key_columns: list[tuple[list[str], I64]] = []
        for dim in wildcards:
            encoded = measures.batch[dim].combine_chunks().dictionary_encode()
            raw = encoded.indices
            if raw.null_count:  # null rows are never selected; any code will do
                raw = pc.fill_null(raw, pa.scalar(0, raw.type))
            indices = np.asarray(raw.to_numpy(zero_copy_only=False), dtype=np.int64)[selected]
            key_columns.append((encoded.dictionary.to_pylist(), indices))
            codes = _compact(codes * len(encoded.dictionary) + indices)
        bucket_values = None
        if buckets is not None:
            bucket_values = buckets[selected]
            low = int(bucket_values.min())
            codes = _compact(codes * (int(bucket_values.max()) - low + 1) + bucket_values - low)
        groups, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        count = len(groups)
        sums = np.zeros(count, dtype=np.int64)
        np.add.at(sums, inverse, units)
        calls = np.bincount(inverse, minlength=count) * sign
        unpriced_sums = np.zeros(count, dtype=np.int64)
        np.add.at(unpriced_sums, inverse, unpriced)
        newest = np.full(count, np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(newest, inverse, received)
        keys = zip(
            *([values[i] for i in indices[first].tolist()] for values, indices in key_columns), strict=True
        )
        bucket_list = [None] * count if bucket_values is None else bucket_values[first].tolist()
        yield from zip(
            keys if key_columns else [()] * count,
            bucket_list,
            sums.tolist(),
            calls.tolist(),
            unpriced_sums.tolist(),
            newest.tolist(),
            strict=True,
        )


def _compact(codes: I64) -> I64:
    """Renumber codes densely from 0 (so combining another column cannot overflow)."""
    return np.unique(codes, return_inverse=True)[1].astype(np.int64).reshape(-1)
