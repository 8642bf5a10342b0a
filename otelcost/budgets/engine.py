"""The budget engine: windowed totals per budget instance, and the decisions they imply.

Pure state, no I/O and no threads (the :class:`~otelcost.budgets.evaluator.Evaluator` wraps it
with a lock, persistence, alerts and publishing). For each budget it keeps the totals of the
*open* window of every instance that has spend:

* calendar windows: one open window per budget (the one containing the wall clock). Rows with
  an event time before its start belong to a closed window and are not counted (``late_calls``);
  rows stamped in the future count in the open window. When the clock passes the window's end,
  :meth:`Engine.tick` drops the totals: the next window starts empty, by time alone.
* rolling windows: per instance, sums per time bucket; buckets that fall out of the window are
  dropped whenever the instance is evaluated.

Evaluating an instance compares its total with each threshold (``at * limit``, exact integer or
Decimal arithmetic: money is in picodollars) and takes the most severe action among the crossed
thresholds. A threshold crossed for the first time in a window yields a :class:`Crossing` (the
evaluator turns those into webhook alerts, once each). Every instance past a threshold has a
:class:`~otelcost.policy.decisions.Decision`; a decision *changes* when its action, threshold,
limit or retry time changes, and only then does the evaluator publish a new snapshot version at
once (spend figures alone are republished at ``budgeting.snapshot_refresh``).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from otelcost.budgets.config import MONEY_METRICS, BudgetConfig, ThresholdConfig
from otelcost.budgets.measures import BatchMeasures
from otelcost.budgets.overrides import Override
from otelcost.budgets.scope import InstanceKey, Scope
from otelcost.budgets.windows import CalendarWindow, RollingWindow, Window
from otelcost.money import PICO_PER_USD, pico_to_decimal
from otelcost.policy.decisions import Action, Decision, Exemption, Snapshot, format_scope
from otelcost.policy.encoding import format_amount, format_time

__all__ = ["Crossing", "Engine", "InstanceStatus", "Rule"]

_GC_EVERY_TICKS: Final = 60
_UNITS: Final = {
    "cost_usd": "USD",
    "effective_cost_usd": "USD",
    "input_tokens": "input tokens",
    "output_tokens": "output tokens",
    "total_tokens": "tokens",
    "requests": "requests",
}


@dataclass(frozen=True, slots=True)
class Rule:
    """A budget compiled for evaluation: parsed window and scope, limit in units."""

    config: BudgetConfig
    window: Window
    scope: Scope
    limit_units: int

    @classmethod
    def of(cls, config: BudgetConfig, default_timezone: str) -> Rule:
        rule = cls(config, config.window_in(default_timezone), Scope.of(config.scope), 0)
        return cls(rule.config, rule.window, rule.scope, rule.to_units(config.limit))

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
        value = amount * PICO_PER_USD if self.metric in MONEY_METRICS else amount
        if value != value.to_integral_value():
            raise ValueError(f"{amount} is not a whole number of {self.metric} units")
        return int(value)

    def to_amount(self, units: int) -> Decimal:
        return pico_to_decimal(units) if self.metric in MONEY_METRICS else Decimal(units)

    def same_totals(self, other: Rule) -> bool:
        """Whether totals kept for ``other`` are valid for this rule (scope, window, metric)."""
        return (self.scope, self.window, self.metric) == (other.scope, other.window, other.metric)


def _prefix_actions(thresholds: Sequence[ThresholdConfig]) -> list[tuple[Action, int | None]]:
    """For c crossed thresholds: the most severe action among them, and which threshold it is."""
    prefix: list[tuple[Action, int | None]] = [(Action.ALLOW, None)]
    for index, threshold in enumerate(thresholds):
        action = Action(threshold.action)
        best, _ = prefix[-1]
        prefix.append((action, index) if action.severity >= best.severity else prefix[-1])
    return prefix


class Instance:
    """Totals of one budget instance in the open window."""

    __slots__ = ("as_of_ns", "buckets", "calls", "crossed", "quiet_below", "units", "unpriced")

    def __init__(self) -> None:
        self.units = 0
        self.calls = 0
        self.unpriced = 0
        self.as_of_ns = 0
        self.crossed = 0  # thresholds crossed at the last evaluation
        self.quiet_below = 0  # calendar, no decision: re-evaluate only from this total on
        self.buckets: dict[int, list[int]] | None = None  # rolling: bucket -> [units, calls, unpriced]

    def add(self, units: int, calls: int, unpriced: int, as_of_ns: int, bucket: int | None) -> None:
        if bucket is None:
            self.units += units
            self.calls += calls
            self.unpriced += unpriced
        else:
            if self.buckets is None:
                self.buckets = {}
            slot = self.buckets.get(bucket)
            if slot is None:
                self.buckets[bucket] = [units, calls, unpriced]
            else:
                slot[0] += units
                slot[1] += calls
                slot[2] += unpriced
        self.as_of_ns = max(self.as_of_ns, as_of_ns)

    def drain(self, first_bucket: int) -> None:
        """Rolling: drop buckets before ``first_bucket`` and total the rest."""
        buckets = self.buckets or {}
        for bucket in [b for b in buckets if b < first_bucket]:
            del buckets[bucket]
        self.units = sum(slot[0] for slot in buckets.values())
        self.calls = sum(slot[1] for slot in buckets.values())
        self.unpriced = sum(slot[2] for slot in buckets.values())


@dataclass(frozen=True, slots=True)
class Crossing:
    """A threshold crossed for the first time in a window: the stuff of one alert."""

    alert_id: str
    rule: Rule
    scope: Mapping[str, str | tuple[str, ...]]
    threshold: ThresholdConfig
    action: Action
    spent: Decimal
    limit: Decimal
    window_id: int
    window_start_ns: int | None
    window_end_ns: int | None
    crossed_at_ns: int
    unpriced_calls: int


@dataclass(frozen=True, slots=True)
class InstanceStatus:
    """One row of ``otelcost budgets status``."""

    budget: str
    scope: Mapping[str, str | tuple[str, ...]]
    window: str
    window_start_ns: int | None
    window_end_ns: int | None
    metric: str
    spent: Decimal
    limit: Decimal
    action: Action
    calls: int
    unpriced_calls: int
    projected_exhaustion_ns: int | None
    exceeded: bool


@dataclass
class _BudgetState:
    rule: Rule
    window_start_ns: int | None = None
    window_end_ns: int | None = None
    instances: dict[InstanceKey, Instance] = field(default_factory=dict)
    prefix: list[tuple[Action, int | None]] = field(default_factory=list)
    levels: dict[int, list[int]] = field(default_factory=dict)  # limit units -> threshold units

    def __post_init__(self) -> None:
        self.prefix = _prefix_actions(self.rule.thresholds)

    def threshold_units(self, limit_units: int) -> list[int]:
        """Units at which each threshold is crossed: ``ceil(at * limit)`` (units are whole)."""
        levels = self.levels.get(limit_units)
        if levels is None:
            levels = [
                int((t.at * limit_units).to_integral_value(ROUND_CEILING)) for t in self.rule.thresholds
            ]
            self.levels[limit_units] = levels
        return levels


class Engine:
    """Windowed totals and decisions for a set of budget rules (not thread-safe)."""

    def __init__(self, rules: Iterable[Rule], *, now_ns: int) -> None:
        self._states: dict[str, _BudgetState] = {}
        self._overrides: dict[str, Override] = {}
        self._decisions: dict[tuple[str, InstanceKey], Decision] = {}
        self.as_of_ns: int | None = None
        self.decisions_changed = False
        self.spend_changed = False
        self.late_calls = 0
        self._ticks = 0
        for rule in rules:
            self.add_rule(rule, now_ns=now_ns)

    # -- rules and overrides ---------------------------------------------------------------

    @property
    def rules(self) -> list[Rule]:
        return [state.rule for state in self._states.values()]

    def add_rule(self, rule: Rule, *, now_ns: int) -> None:
        if rule.name in self._states:
            raise ValueError(f"two budgets named {rule.name!r}")
        state = _BudgetState(rule)
        if isinstance(rule.window, CalendarWindow):
            state.window_start_ns, state.window_end_ns = rule.window.bounds(now_ns)
        self._states[rule.name] = state

    def replace_rule(self, rule: Rule, *, now_ns: int) -> tuple[bool, list[Crossing]]:
        """Swap in a changed rule; keep totals when they stay valid. Returns (kept, crossings)."""
        old = self._states.get(rule.name)
        if old is None or not rule.same_totals(old.rule):
            self.remove_rule(rule.name)
            self.add_rule(rule, now_ns=now_ns)
            return False, []
        state = _BudgetState(rule, old.window_start_ns, old.window_end_ns, old.instances)
        self._states[rule.name] = state
        crossings: list[Crossing] = []
        for key, instance in state.instances.items():
            crossings += self._evaluate(state, key, instance, now_ns, emit=True)
        self.decisions_changed = True
        return True, crossings

    def remove_rule(self, name: str) -> None:
        if self._states.pop(name, None) is not None:
            for decision_key in [k for k in self._decisions if k[0] == name]:
                del self._decisions[decision_key]
            self.decisions_changed = True

    def set_overrides(self, overrides: Mapping[str, Override], *, now_ns: int) -> list[Crossing]:
        """Replace the overrides; re-evaluate the budgets whose limits they touch."""
        before = self._overrides
        self._overrides = dict(overrides)
        touched = {o.budget for o in (*before.values(), *overrides.values()) if o.action == "raise_limit"}
        crossings: list[Crossing] = []
        for name in touched:
            state = self._states.get(name or "")
            if state is not None:
                for key, instance in state.instances.items():
                    crossings += self._evaluate(state, key, instance, now_ns, emit=True)
        self.decisions_changed = True
        return crossings

    def _limit_for(self, state: _BudgetState, key: InstanceKey, now_ns: int) -> tuple[int, str | None]:
        limit, source = state.rule.limit_units, None
        for override in self._overrides.values():
            if (
                override.action == "raise_limit"
                and override.budget == state.rule.name
                and override.limit is not None
                and not (override.until_ns is not None and override.until_ns <= now_ns)
                and state.rule.scope.covers(key, override.scope)
            ):
                raised = state.rule.to_units(override.limit)
                if raised > limit or source is None:
                    limit, source = raised, override.id
        return limit, source

    # -- data path -----------------------------------------------------------------------------

    def consume(
        self, measures: BatchMeasures, rows: npt.NDArray[np.bool_] | None, now_ns: int
    ) -> list[Crossing]:
        """Add the rows of a batch (``rows``: which ones; None = all) to every matching budget."""
        batch = measures.batch
        if batch.num_rows == 0 or (rows is not None and not rows.any()):
            return []
        received = measures.received_ns if rows is None else measures.received_ns[rows]
        newest = int(received.max())
        self.as_of_ns = newest if self.as_of_ns is None else max(self.as_of_ns, newest)
        crossings: list[Crossing] = []
        for state in self._states.values():
            crossings += self._consume_one(state, measures, rows, now_ns)
        return crossings

    def _consume_one(
        self, state: _BudgetState, measures: BatchMeasures, rows: npt.NDArray[np.bool_] | None, now_ns: int
    ) -> list[Crossing]:
        rule = state.rule
        mask = rule.scope.mask(measures.batch)
        if rows is not None:
            mask = rows if mask is None else mask & rows
        event_ns = np.minimum(measures.ts_ns, now_ns)  # a clock ahead of ours counts as now
        buckets: npt.NDArray[np.int64] | None = None
        if isinstance(rule.window, CalendarWindow):
            if state.window_end_ns is None or now_ns >= state.window_end_ns:
                self._roll(state, now_ns)
            assert state.window_start_ns is not None
            late = event_ns < state.window_start_ns
            if late.any():
                if mask is not None:
                    late &= mask
                self.late_calls += int(np.count_nonzero(late))
                mask = ~late if mask is None else mask & ~late
        else:
            buckets = event_ns // rule.window.bucket_ns
            fresh = buckets >= rule.window.first_bucket(now_ns)
            mask = fresh if mask is None else mask & fresh
        if mask is not None and not mask.any():
            return []
        crossings: list[Crossing] = []
        instances = state.instances
        for key, bucket, units, calls, unpriced, as_of in self._groups(rule, measures, mask, buckets):
            instance = instances.get(key)
            if instance is None:
                instance = instances[key] = Instance()
            instance.add(units, calls, unpriced, as_of, bucket)
            # Most instances are far from any threshold: their calendar total only grows, so
            # nothing can change before it reaches the first threshold.
            if instance.units >= instance.quiet_below:
                crossings += self._evaluate(state, key, instance, now_ns, emit=True)
        self.spend_changed = True
        return crossings

    @staticmethod
    def _groups(
        rule: Rule,
        measures: BatchMeasures,
        mask: npt.NDArray[np.bool_] | None,
        buckets: npt.NDArray[np.int64] | None,
    ) -> Iterator[tuple[InstanceKey, int | None, int, int, int, int]]:
        """(instance, bucket, units, calls, unpriced calls, newest receive time) per group.

        Grouping is numpy on dictionary codes (for batches of a few hundred rows an Arrow
        ``group_by`` costs a millisecond of plan set-up; this costs tens of microseconds); sums
        are exact int64 (``np.add.at``).
        """
        selected: npt.NDArray[np.intp] | slice = slice(None) if mask is None else np.flatnonzero(mask)
        units = measures.units(rule.metric)[selected]
        unpriced = measures.unpriced[selected]
        received = measures.received_ns[selected]
        wildcards = rule.scope.wildcards
        if not wildcards and buckets is None:
            yield ((), None, int(units.sum()), len(units), int(unpriced.sum()), int(received.max()))
            return
        codes = np.zeros(len(units), dtype=np.int64)
        key_columns: list[tuple[list[str], npt.NDArray[np.int64]]] = []
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
            codes = _compact(
                codes * (int(bucket_values.max()) - int(bucket_values.min()) + 1)
                + bucket_values
                - int(bucket_values.min())
            )
        groups, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        count = len(groups)
        sums = np.zeros(count, dtype=np.int64)
        np.add.at(sums, inverse, units)
        calls = np.bincount(inverse, minlength=count)
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

    def seed(
        self,
        budget: str,
        key: InstanceKey,
        *,
        units: int,
        calls: int,
        unpriced: int,
        as_of_ns: int,
        bucket: int | None = None,
    ) -> None:
        """Add totals rebuilt from the lake (no alerts: those crossings happened before)."""
        state = self._states[budget]
        instance = state.instances.get(key)
        if instance is None:
            instance = state.instances[key] = Instance()
        instance.add(units, calls, unpriced, as_of_ns, bucket)
        self.as_of_ns = as_of_ns if self.as_of_ns is None else max(self.as_of_ns, as_of_ns)

    def totals(self, budget: str) -> Iterator[tuple[InstanceKey, int | None, int, int, int, int]]:
        """(instance, bucket, units, calls, unpriced, as_of) of every total kept for ``budget``,
        in the form :meth:`seed` takes."""
        for key, instance in self._states[budget].instances.items():
            if instance.buckets is not None:
                for bucket, (units, calls, unpriced) in instance.buckets.items():
                    yield key, bucket, units, calls, unpriced, instance.as_of_ns
            else:
                yield key, None, instance.units, instance.calls, instance.unpriced, instance.as_of_ns

    def settle(self, budget: str, now_ns: int) -> None:
        """Evaluate every instance of ``budget`` after seeding, without emitting crossings."""
        state = self._states[budget]
        for key, instance in state.instances.items():
            self._evaluate(state, key, instance, now_ns, emit=False)

    def open_window(self, budget: str, now_ns: int) -> tuple[int, int | None]:
        """(first event time counted, window end) of ``budget``'s open window at ``now_ns``."""
        state = self._states[budget]
        window = state.rule.window
        if isinstance(window, CalendarWindow):
            if state.window_end_ns is None or now_ns >= state.window_end_ns:
                self._roll(state, now_ns)
            assert state.window_start_ns is not None
            return state.window_start_ns, state.window_end_ns
        return window.first_bucket(now_ns) * window.bucket_ns, None

    # -- time ----------------------------------------------------------------------------------

    def _roll(self, state: _BudgetState, now_ns: int) -> None:
        assert isinstance(state.rule.window, CalendarWindow)
        state.window_start_ns, state.window_end_ns = state.rule.window.bounds(now_ns)
        if state.instances:
            state.instances = {}
            self.spend_changed = True
        for decision_key in [k for k in self._decisions if k[0] == state.rule.name]:
            del self._decisions[decision_key]
            self.decisions_changed = True

    def tick(self, now_ns: int) -> list[Crossing]:
        """Roll calendar windows, drain rolling ones, expire overrides."""
        self._ticks += 1
        crossings: list[Crossing] = []
        expired = {k for k, o in self._overrides.items() if o.until_ns is not None and o.until_ns <= now_ns}
        if expired:
            crossings += self.set_overrides(
                {k: o for k, o in self._overrides.items() if k not in expired}, now_ns=now_ns
            )
        for state in self._states.values():
            window = state.rule.window
            if isinstance(window, CalendarWindow):
                if state.window_end_ns is not None and now_ns >= state.window_end_ns:
                    self._roll(state, now_ns)
                continue
            active = [key for (name, key) in self._decisions if name == state.rule.name]
            for key in active:
                crossings += self._evaluate(state, key, state.instances[key], now_ns, emit=True)
            if self._ticks % _GC_EVERY_TICKS == 0:
                first = window.first_bucket(now_ns)
                for key in [
                    k for k, inst in state.instances.items() if not inst.buckets or max(inst.buckets) < first
                ]:
                    del state.instances[key]
        return crossings

    def expired_overrides(self, now_ns: int) -> list[str]:
        return [k for k, o in self._overrides.items() if o.until_ns is not None and o.until_ns <= now_ns]

    # -- evaluation ------------------------------------------------------------------------------

    def _evaluate(
        self, state: _BudgetState, key: InstanceKey, instance: Instance, now_ns: int, *, emit: bool
    ) -> list[Crossing]:
        rule = state.rule
        window = rule.window
        if isinstance(window, RollingWindow):
            instance.drain(window.first_bucket(now_ns))
        limit_units, limit_override = self._limit_for(state, key, now_ns)
        levels = state.threshold_units(limit_units)
        crossed = bisect.bisect_right(levels, instance.units)
        previous = instance.crossed
        instance.crossed = crossed
        crossings: list[Crossing] = []
        if emit and crossed > previous:
            window_id = self._window_id(state, now_ns)
            scope = rule.scope.instance_scope(key)
            for index in range(previous, crossed):
                threshold = rule.thresholds[index]
                if threshold.alert:
                    crossings.append(
                        Crossing(
                            alert_id=_alert_id(rule.name, scope, window_id, threshold.at),
                            rule=rule,
                            scope=scope,
                            threshold=threshold,
                            action=state.prefix[index + 1][0],
                            spent=rule.to_amount(instance.units),
                            limit=rule.to_amount(limit_units),
                            window_id=window_id,
                            window_start_ns=self._window_start(state, now_ns),
                            window_end_ns=state.window_end_ns,
                            crossed_at_ns=now_ns,
                            unpriced_calls=instance.unpriced,
                        )
                    )
        action, threshold_index = state.prefix[crossed]
        decision_key = (rule.name, key)
        calendar = isinstance(window, CalendarWindow)
        instance.quiet_below = levels[0] if calendar and action is Action.ALLOW else 0
        if action is Action.ALLOW:
            if self._decisions.pop(decision_key, None) is not None:
                self.decisions_changed = True
            return crossings
        retry_at = (
            state.window_end_ns
            if isinstance(window, CalendarWindow)
            else self._drain_time(state, instance, levels, action)
        )
        assert threshold_index is not None
        decision = Decision(
            budget=rule.name,
            scope=rule.scope.instance_scope(key),
            action=action,
            reason=self._reason(
                state,
                key=key,
                instance=instance,
                limit_units=limit_units,
                threshold_index=threshold_index,
                action=action,
                retry_at=retry_at,
            ),
            computed_at_ns=now_ns,
            metric=rule.metric,
            spent=rule.to_amount(instance.units),
            limit=rule.to_amount(limit_units),
            threshold=rule.thresholds[threshold_index].at,
            window=window.label,
            window_start_ns=self._window_start(state, now_ns),
            window_end_ns=state.window_end_ns if isinstance(window, CalendarWindow) else retry_at,
            retry_at_ns=retry_at,
            as_of_ns=instance.as_of_ns or None,
            unpriced_calls=instance.unpriced,
            override_id=limit_override,
        )
        previous_decision = self._decisions.get(decision_key)
        self._decisions[decision_key] = decision
        if previous_decision is None or _signature(previous_decision) != _signature(decision):
            self.decisions_changed = True
        return crossings

    @staticmethod
    def _window_start(state: _BudgetState, now_ns: int) -> int | None:
        window = state.rule.window
        if isinstance(window, CalendarWindow):
            return state.window_start_ns
        return window.first_bucket(now_ns) * window.bucket_ns

    @staticmethod
    def _window_id(state: _BudgetState, now_ns: int) -> int:
        """Alerts fire once per window: the calendar window, or for rolling windows each
        successive stretch of the window's duration (so an oscillating total cannot storm)."""
        window = state.rule.window
        if isinstance(window, CalendarWindow):
            assert state.window_start_ns is not None
            return state.window_start_ns
        return now_ns // window.duration_ns * window.duration_ns

    @staticmethod
    def _drain_time(state: _BudgetState, instance: Instance, levels: list[int], action: Action) -> int | None:
        """When a rolling total falls below the lowest threshold that keeps ``action``."""
        window = state.rule.window
        assert isinstance(window, RollingWindow)
        floor_index = next(
            c for c in range(1, len(state.prefix)) if state.prefix[c][0].severity >= action.severity
        )
        floor = levels[floor_index - 1]
        remaining = instance.units
        for bucket in sorted(instance.buckets or {}):
            remaining -= (instance.buckets or {})[bucket][0]
            if remaining < floor:
                return window.bucket_leaves_at(bucket)
        return None

    @staticmethod
    def _reason(
        state: _BudgetState,
        *,
        key: InstanceKey,
        instance: Instance,
        limit_units: int,
        threshold_index: int,
        action: Action,
        retry_at: int | None,
    ) -> str:
        rule = state.rule
        unit = _UNITS[rule.metric]
        spent, limit = rule.to_amount(instance.units), rule.to_amount(limit_units)
        percent = instance.units * 100 / limit_units if limit_units else 0
        at = rule.thresholds[threshold_index].at
        period = (
            f"this {rule.window.unit}"
            if isinstance(rule.window, CalendarWindow)
            else f"in the last {rule.window.spec}"
        )
        text = (
            f"budget {rule.name} ({format_scope(rule.scope.instance_scope(key))}): "
            f"{format_amount(spent)} of {format_amount(limit)} {unit} {period} ({percent:.0f}%), "
            f"{action.value} from {format_amount(at * 100)}%"
        )
        if retry_at is not None:
            text += f" until {format_time(retry_at)}"
        if instance.unpriced:
            text += f"; {instance.unpriced} unpriced call(s) not in the cost"
        return text

    # -- publishing ------------------------------------------------------------------------------

    def snapshot(self, *, version: int, epoch: str, now_ns: int) -> Snapshot:
        decisions = list(self._decisions.values())
        exemptions: list[Exemption] = []
        for override in self._overrides.values():
            scope = dict(override.scope)
            if override.action == "block":
                who = f"{override.created_by}: {override.reason}" if override.reason else override.created_by
                decisions.append(
                    Decision(
                        budget=override.budget or "",
                        scope=scope,
                        action=Action.BLOCK,
                        reason=f"blocked by override {override.id} ({who})",
                        computed_at_ns=now_ns,
                        source="override",
                        retry_at_ns=override.until_ns,
                        override_id=override.id,
                    )
                )
            elif override.action == "allow":
                exemptions.append(
                    Exemption(override.id, scope, override.budget, override.until_ns, override.reason)
                )
        decisions.sort(key=lambda d: (d.budget, format_scope(d.scope), d.source))
        exemptions.sort(key=lambda e: e.override_id)
        self.decisions_changed = False
        self.spend_changed = False
        return Snapshot(
            version=version,
            epoch=epoch,
            computed_at_ns=now_ns,
            as_of_ns=self.as_of_ns,
            decisions=tuple(decisions),
            exemptions=tuple(exemptions),
        )

    def status(self, now_ns: int) -> list[InstanceStatus]:
        """Every instance with spend in its open window (for ``otelcost budgets status``)."""
        rows: list[InstanceStatus] = []
        for state in self._states.values():
            rule = state.rule
            start = self._window_start(state, now_ns)
            for key, instance in sorted(state.instances.items()):
                if isinstance(rule.window, RollingWindow):
                    instance.drain(rule.window.first_bucket(now_ns))
                    if not instance.calls:
                        continue
                limit_units, _ = self._limit_for(state, key, now_ns)
                action, _ = state.prefix[
                    bisect.bisect_right(state.threshold_units(limit_units), instance.units)
                ]
                exceeded = instance.units >= limit_units
                rows.append(
                    InstanceStatus(
                        budget=rule.name,
                        scope=rule.scope.instance_scope(key),
                        window=rule.window.label,
                        window_start_ns=start,
                        window_end_ns=state.window_end_ns,
                        metric=rule.metric,
                        spent=rule.to_amount(instance.units),
                        limit=rule.to_amount(limit_units),
                        action=action,
                        calls=instance.calls,
                        unpriced_calls=instance.unpriced,
                        projected_exhaustion_ns=_projection(
                            instance.units, limit_units, start, state.window_end_ns, now_ns
                        ),
                        exceeded=exceeded,
                    )
                )
        return rows


def _projection(
    units: int, limit_units: int, start_ns: int | None, end_ns: int | None, now_ns: int
) -> int | None:
    """Linear projection of when a calendar window's spend reaches the limit.

    The window's average rate so far (spent / elapsed) is assumed to continue; None when the
    limit is already reached, nothing was spent, or the projection lands after the window ends.
    Rolling windows (no end) have no projection: at a steady rate their total stays flat.
    """
    if end_ns is None or start_ns is None or units <= 0 or units >= limit_units:
        return None
    elapsed = max(1, now_ns - start_ns)
    projected = now_ns + (limit_units - units) * elapsed // units
    return projected if projected < end_ns else None


def _compact(codes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Renumber codes densely from 0 (so combining another column cannot overflow)."""
    return np.unique(codes, return_inverse=True)[1].astype(np.int64).reshape(-1)


def _signature(decision: Decision) -> tuple[object, ...]:
    return (
        decision.action,
        decision.threshold,
        decision.limit,
        decision.window_end_ns,
        decision.retry_at_ns,
        decision.override_id,
    )


def _alert_id(budget: str, scope: Mapping[str, str | tuple[str, ...]], window_id: int, at: Decimal) -> str:
    text = f"{budget}\x1f{format_scope(scope)}\x1f{window_id}\x1f{at.normalize()}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]
