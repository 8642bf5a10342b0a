"""What the totals imply, and what is published: decisions, reasons, exemptions, the Snapshot.

The :class:`Engine` is pure state, no I/O and no threads (the
:class:`~otelcost.budgets.evaluator.Evaluator` wraps it with a lock, persistence, alerts and
publishing). It keeps the :class:`~otelcost.budgets.totals.Ledger` and, for every budget
instance past a threshold, its :class:`~otelcost.policy.decisions.Decision`.

Evaluating an instance compares its total with each threshold (``at * limit``, exact integer
arithmetic: money is in picodollars) and takes the most severe action among the crossed
thresholds. A threshold crossed for the first time in a window yields a :class:`Crossing` (the
evaluator turns those into webhook alerts, once each). A decision *changes* when its action,
threshold, limit or retry time changes, and only then does the evaluator publish a new snapshot
version at once (spend figures alone are republished at ``budgeting.snapshot_refresh``).

Overrides shape what is published: ``raise_limit`` changes the limit an instance is evaluated
against, ``block`` is a decision of its own (``source: override``) and ``allow`` an
:class:`~otelcost.policy.decisions.Exemption` published next to the decisions.

Every operation at an instant first brings each budget's open window up to it
(:meth:`~otelcost.budgets.totals.Ledger.advance`): a window that closed takes its totals and its
decisions with it.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

import numpy as np
import numpy.typing as npt

from otelcost.budgets.config import ThresholdConfig
from otelcost.budgets.measures import BatchMeasures
from otelcost.budgets.overrides import Override
from otelcost.budgets.rules import Group, Rule
from otelcost.budgets.scope import InstanceKey
from otelcost.budgets.totals import BudgetTotals, Instance, Ledger
from otelcost.budgets.windows import OpenWindow
from otelcost.money import format_amount
from otelcost.policy.decisions import Action, Decision, Exemption, Snapshot, format_scope
from otelcost.timefmt import format_time

__all__ = ["Crossing", "Engine"]

_COLLECT_EVERY_TICKS: Final = 60
_UNITS: Final = {
    "cost_usd": "USD",
    "effective_cost_usd": "USD",
    "input_tokens": "input tokens",
    "output_tokens": "output tokens",
    "total_tokens": "tokens",
    "requests": "requests",
}


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


class Engine:
    """Totals and decisions for a set of budget rules (not thread-safe)."""

    def __init__(self, rules: Iterable[Rule], *, now_ns: int) -> None:
        self.ledger = Ledger()
        self._overrides: dict[str, Override] = {}
        self._decisions: dict[str, dict[InstanceKey, Decision]] = {}
        self.decisions_changed = False
        self._ticks = 0
        for rule in rules:
            self.add_rule(rule, now_ns=now_ns)

    @property
    def rules(self) -> list[Rule]:
        return self.ledger.rules

    @property
    def as_of_ns(self) -> int | None:
        """When the newest call counted was received."""
        return self.ledger.as_of_ns

    @property
    def late_calls(self) -> int:
        return self.ledger.late_calls

    @property
    def spend_changed(self) -> bool:
        """Whether any total changed since the last :meth:`snapshot`."""
        return self.ledger.spend_changed

    # -- rules and overrides ---------------------------------------------------------------

    def add_rule(self, rule: Rule, *, now_ns: int) -> None:
        self.ledger.add_rule(rule, now_ns=now_ns)
        self._decisions[rule.name] = {}

    def replace_rule(self, rule: Rule, *, now_ns: int) -> tuple[bool, list[Crossing]]:
        """Swap in a changed rule; keep totals when they stay valid. Returns (kept, crossings)."""
        old = self.ledger.budgets.get(rule.name)
        if old is None or not rule.same_totals(old.rule):
            self.remove_rule(rule.name)
            self.add_rule(rule, now_ns=now_ns)
            return False, []
        self.advance(now_ns)
        totals = self.ledger.replace_rule(rule)
        crossings: list[Crossing] = []
        for key, instance in totals.instances.items():
            crossings += self._evaluate(totals, key, instance, now_ns, emit=True)
        self.decisions_changed = True
        return True, crossings

    def remove_rule(self, name: str) -> None:
        if self.ledger.remove_rule(name):
            del self._decisions[name]
            self.decisions_changed = True

    def set_overrides(self, overrides: Mapping[str, Override], *, now_ns: int) -> list[Crossing]:
        """Replace the overrides; re-evaluate the budgets whose limits they touch."""
        self.advance(now_ns)
        before = self._overrides
        self._overrides = dict(overrides)
        touched = {o.budget for o in (*before.values(), *overrides.values()) if o.action == "raise_limit"}
        crossings: list[Crossing] = []
        for name in touched:
            totals = self.ledger.budgets.get(name or "")
            if totals is not None:
                for key, instance in totals.instances.items():
                    crossings += self._evaluate(totals, key, instance, now_ns, emit=True)
        self.decisions_changed = True
        return crossings

    def expired_overrides(self, now_ns: int) -> list[str]:
        return [k for k, o in self._overrides.items() if o.until_ns is not None and o.until_ns <= now_ns]

    def limit_for(self, rule: Rule, key: InstanceKey, now_ns: int) -> tuple[int, str | None]:
        """The limit of instance ``key`` in units, and the override that raised it (if any)."""
        limit, source = rule.limit_units, None
        for override in self._overrides.values():
            if (
                override.action == "raise_limit"
                and override.budget == rule.name
                and override.limit is not None
                and not (override.until_ns is not None and override.until_ns <= now_ns)
                and rule.scope.covers(key, override.scope)
            ):
                raised = rule.to_units(override.limit)
                if raised > limit or source is None:
                    limit, source = raised, override.id
        return limit, source

    # -- data path and time ------------------------------------------------------------------

    def consume(
        self, measures: BatchMeasures, rows: npt.NDArray[np.bool_] | None, now_ns: int
    ) -> list[Crossing]:
        """Add the rows of a batch (``rows``: which ones; None = all) to every matching budget."""
        if measures.batch.num_rows == 0 or (rows is not None and not rows.any()):
            return []
        self.advance(now_ns)
        crossings: list[Crossing] = []
        for totals, key, instance in self.ledger.add(measures, rows, now_ns):
            crossings += self._evaluate(totals, key, instance, now_ns, emit=True)
        return crossings

    def tick(self, now_ns: int) -> list[Crossing]:
        """Roll windows that closed, re-evaluate totals that age, expire overrides."""
        self._ticks += 1
        crossings: list[Crossing] = []
        expired = set(self.expired_overrides(now_ns))
        if expired:
            crossings += self.set_overrides(
                {k: o for k, o in self._overrides.items() if k not in expired}, now_ns=now_ns
            )
        self.advance(now_ns)
        for name, totals in self.ledger.budgets.items():
            for key in list(self._decisions[name]):
                instance = totals.instances[key]
                if not instance.only_grows:
                    crossings += self._evaluate(totals, key, instance, now_ns, emit=True)
            if self._ticks % _COLLECT_EVERY_TICKS == 0:
                totals.collect()
        return crossings

    def advance(self, now_ns: int) -> None:
        """Bring every budget's open window up to ``now_ns``."""
        for name in self.ledger.advance(now_ns):
            if self._decisions[name]:
                self._decisions[name] = {}
                self.decisions_changed = True

    # -- rebuild -------------------------------------------------------------------------------

    def open_window(self, budget: str, now_ns: int) -> OpenWindow:
        """``budget``'s window open at ``now_ns``."""
        self.advance(now_ns)
        return self.ledger[budget].window

    def seed(self, budget: str, group: Group) -> None:
        """Add totals rebuilt from the lake (no alerts: those crossings happened before)."""
        self.ledger.seed(budget, group)

    def apply(self, budget: str, group: Group, now_ns: int) -> list[Crossing]:
        """Add one total counted elsewhere (a shared store's change) and evaluate its instance."""
        instance = self.ledger.seed(budget, group)
        self.ledger.spend_changed = True
        # As in Ledger.add: a total that only grew and stays below its first threshold cannot
        # have changed a decision.
        if group[2] >= 0 and instance.units < instance.quiet_below:
            return []
        return self._evaluate(self.ledger[budget], group[0], instance, now_ns, emit=True)

    def replace_totals(
        self, budget: str, groups: Iterable[Group], now_ns: int, *, emit: bool = True
    ) -> list[Crossing]:
        """Replace ``budget``'s totals (a shared store's) and evaluate every instance; decisions
        of instances without totals any more are dropped."""
        totals = self.ledger.replace(budget, groups)
        decisions = self._decisions[budget]
        for key in [k for k in decisions if k not in totals.instances]:
            del decisions[key]
            self.decisions_changed = True
        crossings: list[Crossing] = []
        for key, instance in totals.instances.items():
            crossings += self._evaluate(totals, key, instance, now_ns, emit=emit)
        return crossings

    def entries(self, budget: str) -> Iterator[Group]:
        """Every total kept for ``budget``, in the form :meth:`seed` takes."""
        return self.ledger[budget].entries()

    def settle(self, budget: str, now_ns: int) -> None:
        """Evaluate every instance of ``budget`` after seeding, without emitting crossings."""
        self.advance(now_ns)
        totals = self.ledger[budget]
        for key, instance in totals.instances.items():
            self._evaluate(totals, key, instance, now_ns, emit=False)

    # -- evaluation ------------------------------------------------------------------------------

    def _evaluate(
        self, totals: BudgetTotals, key: InstanceKey, instance: Instance, now_ns: int, *, emit: bool
    ) -> list[Crossing]:
        rule, window = totals.rule, totals.window
        instance.age(window.first_bucket)
        limit_units, limit_override = self.limit_for(rule, key, now_ns)
        levels = rule.threshold_units(limit_units)
        crossed = bisect.bisect_right(levels, instance.units)
        previous = instance.crossed
        instance.crossed = crossed
        crossings: list[Crossing] = []
        if emit and crossed > previous:
            window_id = rule.window.alert_window_id(window, now_ns)
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
                            action=rule.ladder[index + 1][0],
                            spent=rule.to_amount(instance.units),
                            limit=rule.to_amount(limit_units),
                            window_id=window_id,
                            window_start_ns=window.start_ns,
                            window_end_ns=window.end_ns,
                            crossed_at_ns=now_ns,
                            unpriced_calls=instance.unpriced,
                        )
                    )
        action, threshold_index = rule.ladder[crossed]
        decisions = self._decisions[rule.name]
        instance.quiet_below = levels[0] if instance.only_grows and action is Action.ALLOW else 0
        if action is Action.ALLOW:
            if decisions.pop(key, None) is not None:
                self.decisions_changed = True
            return crossings
        # When the action lapses if nothing more is spent: a total that only grows stays until
        # its window closes; one kept in buckets when enough of them have aged out.
        retry_at = (
            window.end_ns
            if instance.only_grows
            else instance.falls_below_at(rule.floor_of(action, levels), rule.window)
        )
        assert threshold_index is not None
        decision = Decision(
            budget=rule.name,
            scope=rule.scope.instance_scope(key),
            action=action,
            reason=_reason(
                rule,
                key,
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
            window=rule.window.label,
            window_start_ns=window.start_ns,
            window_end_ns=window.end_ns if window.end_ns is not None else retry_at,
            retry_at_ns=retry_at,
            as_of_ns=instance.as_of_ns or None,
            unpriced_calls=instance.unpriced,
            override_id=limit_override,
        )
        previous_decision = decisions.get(key)
        decisions[key] = decision
        if previous_decision is None or _signature(previous_decision) != _signature(decision):
            self.decisions_changed = True
        return crossings

    # -- publishing ------------------------------------------------------------------------------

    def snapshot(self, *, version: int, epoch: str, now_ns: int) -> Snapshot:
        """The decisions of every instance and override, as snapshot ``version``."""
        decisions = [d for per_budget in self._decisions.values() for d in per_budget.values()]
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
        self.ledger.spend_changed = False
        return Snapshot(
            version=version,
            epoch=epoch,
            computed_at_ns=now_ns,
            as_of_ns=self.ledger.as_of_ns,
            decisions=tuple(decisions),
            exemptions=tuple(exemptions),
        )


def _reason(
    rule: Rule,
    key: InstanceKey,
    *,
    instance: Instance,
    limit_units: int,
    threshold_index: int,
    action: Action,
    retry_at: int | None,
) -> str:
    unit = _UNITS[rule.metric]
    spent, limit = rule.to_amount(instance.units), rule.to_amount(limit_units)
    percent = instance.units * 100 / limit_units if limit_units else 0
    at = rule.thresholds[threshold_index].at
    text = (
        f"budget {rule.name} ({format_scope(rule.scope.instance_scope(key))}): "
        f"{format_amount(spent)} of {format_amount(limit)} {unit} {rule.window.phrase} ({percent:.0f}%), "
        f"{action.value} from {format_amount(at * 100)}%"
    )
    if retry_at is not None:
        text += f" until {format_time(retry_at)}"
    if instance.unpriced:
        text += f"; {instance.unpriced} unpriced call(s) not in the cost"
    return text


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
