"""The ledger: what every budget instance has spent in its open window.

Pure state, no I/O, no threads, no decisions (those are ``snapshot.py``'s). Per budget a
:class:`BudgetTotals` holds the window open now (:class:`~otelcost.budgets.windows.OpenWindow`)
and one :class:`Instance` per instance key with spend in it: units of the metric, calls,
unpriced calls and the newest receive time counted, kept per bucket for a window that slides.

* **Counting**: :meth:`Ledger.add` adds a batch to every budget (the rule says which rows and
  under which key) and yields the instances whose decision may have changed.
* **Seeding**: :meth:`Ledger.seed` adds totals rebuilt from the lake (``rebuild.py``);
  :meth:`Ledger.entries` gives them back in the same form.
* **Rollover and ageing**: :meth:`BudgetTotals.advance` brings the open window up to the clock;
  when a window that closes has ended, its totals go with it and the next one starts empty.
  A window that slides loses spend bucket by bucket instead (:meth:`Instance.age`), and
  :meth:`BudgetTotals.collect` forgets instances whose every bucket has aged out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import numpy.typing as npt

from otelcost.budgets.measures import BatchMeasures
from otelcost.budgets.rules import Group, Rule
from otelcost.budgets.scope import InstanceKey
from otelcost.budgets.windows import OpenWindow, Window

__all__ = ["BudgetTotals", "Instance", "Ledger"]


class Instance:
    """Totals of one budget instance in the open window."""

    __slots__ = ("as_of_ns", "buckets", "calls", "crossed", "quiet_below", "units", "unpriced")

    def __init__(self) -> None:
        self.units = 0
        self.calls = 0
        self.unpriced = 0
        self.as_of_ns = 0
        self.crossed = 0  # thresholds crossed at the last evaluation
        self.quiet_below = 0  # no decision and only growing: re-evaluate only from this total on
        self.buckets: dict[int, list[int]] | None = None  # sliding: bucket -> [units, calls, unpriced]

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

    @property
    def only_grows(self) -> bool:
        """Whether the total can only grow until the window closes (no buckets to age out)."""
        return self.buckets is None

    def age(self, first_bucket: int) -> None:
        """Drop buckets before ``first_bucket`` and total the rest (no buckets: nothing ages)."""
        buckets = self.buckets
        if buckets is None:
            return
        for bucket in [b for b in buckets if b < first_bucket]:
            del buckets[bucket]
        self.units = sum(slot[0] for slot in buckets.values())
        self.calls = sum(slot[1] for slot in buckets.values())
        self.unpriced = sum(slot[2] for slot in buckets.values())

    def falls_below_at(self, floor: int, window: Window) -> int | None:
        """When the total falls below ``floor`` as buckets age out, if nothing is added."""
        remaining = self.units
        buckets = self.buckets or {}
        for bucket in sorted(buckets):
            remaining -= buckets[bucket][0]
            if remaining < floor:
                return window.bucket_leaves_at(bucket)
        return None


class BudgetTotals:
    """One budget's open window and the totals of its instances in it."""

    __slots__ = ("instances", "rule", "window")

    def __init__(
        self, rule: Rule, window: OpenWindow, instances: dict[InstanceKey, Instance] | None = None
    ) -> None:
        self.rule = rule
        self.window = window
        self.instances: dict[InstanceKey, Instance] = {} if instances is None else instances

    def advance(self, now_ns: int) -> bool:
        """Bring the open window up to ``now_ns``; True when the one open before has closed
        (its totals are gone: the next window starts empty)."""
        previous = self.window
        if now_ns < previous.valid_until_ns:
            return False
        self.window = self.rule.window.open_at(now_ns)
        if previous.end_ns is None or now_ns < previous.end_ns:
            return False
        self.instances = {}
        return True

    def add(self, group: Group) -> Instance:
        key, bucket, units, calls, unpriced, as_of = group
        instance = self.instances.get(key)
        if instance is None:
            instance = self.instances[key] = Instance()
        instance.add(units, calls, unpriced, as_of, bucket)
        return instance

    def entries(self) -> Iterator[Group]:
        """Every total kept, in the form :meth:`add` takes."""
        for key, instance in self.instances.items():
            if instance.buckets is not None:
                for bucket, (units, calls, unpriced) in instance.buckets.items():
                    yield key, bucket, units, calls, unpriced, instance.as_of_ns
            else:
                yield key, None, instance.units, instance.calls, instance.unpriced, instance.as_of_ns

    def collect(self) -> None:
        """Forget instances whose buckets have all aged out of the open window."""
        first = self.window.first_bucket
        for key in [
            k
            for k, instance in self.instances.items()
            if instance.buckets is not None and (not instance.buckets or max(instance.buckets) < first)
        ]:
            del self.instances[key]


class Ledger:
    """The totals of every budget (not thread-safe)."""

    def __init__(self) -> None:
        self.budgets: dict[str, BudgetTotals] = {}
        self.as_of_ns: int | None = None  # the newest receive time counted
        self.late_calls = 0  # call-budget pairs of windows that had closed
        self.spend_changed = False

    def __getitem__(self, budget: str) -> BudgetTotals:
        return self.budgets[budget]

    @property
    def rules(self) -> list[Rule]:
        return [totals.rule for totals in self.budgets.values()]

    def add_rule(self, rule: Rule, *, now_ns: int) -> None:
        if rule.name in self.budgets:
            raise ValueError(f"two budgets named {rule.name!r}")
        self.budgets[rule.name] = BudgetTotals(rule, rule.window.open_at(now_ns))

    def replace_rule(self, rule: Rule) -> BudgetTotals:
        """Swap in a changed rule, keeping the totals (valid when ``rule.same_totals(old)``)."""
        old = self.budgets[rule.name]
        totals = self.budgets[rule.name] = BudgetTotals(rule, old.window, old.instances)
        return totals

    def remove_rule(self, name: str) -> bool:
        return self.budgets.pop(name, None) is not None

    def advance(self, now_ns: int) -> list[str]:
        """Bring every open window up to ``now_ns``; return the budgets whose window closed."""
        closed: list[str] = []
        for name, totals in self.budgets.items():
            had_spend = bool(totals.instances)
            if totals.advance(now_ns):
                closed.append(name)
                self.spend_changed |= had_spend
        return closed

    def add(
        self, measures: BatchMeasures, rows: npt.NDArray[np.bool_] | None, now_ns: int
    ) -> Iterator[tuple[BudgetTotals, InstanceKey, Instance]]:
        """Add the rows of a batch (``rows``: which ones; None = all) to every budget they fall
        in, yielding each instance to evaluate right after its total grew (a bucketed instance
        once per bucket). Windows must be advanced to ``now_ns`` first."""
        received = measures.received_ns if rows is None else measures.received_ns[rows]
        newest = int(received.max())
        self.as_of_ns = newest if self.as_of_ns is None else max(self.as_of_ns, newest)
        for totals, group in self.groups(measures, rows, now_ns):
            self.spend_changed = True
            instance = totals.add(group)
            # Most instances are far from any threshold: a total that only grows cannot
            # change a decision before it reaches the first threshold. One that shrank (an
            # attribution change moved spend away) is evaluated again.
            if measures.sign < 0 or instance.units >= instance.quiet_below:
                yield totals, group[0], instance

    def groups(
        self, measures: BatchMeasures, rows: npt.NDArray[np.bool_] | None, now_ns: int
    ) -> Iterator[tuple[BudgetTotals, Group]]:
        """What :meth:`add` would add, budget by budget, without adding it (a shared store
        sends these to every process instead, ``budgets/shared.py``); counts late calls."""
        for totals in self.budgets.values():
            rule = totals.rule
            mask, buckets, late = rule.select(measures, rows, totals.window, now_ns)
            if not measures.change:
                self.late_calls += late
            if mask is not None and not mask.any():
                continue
            for group in rule.groups(measures, mask, buckets):
                yield totals, group

    def seed(self, budget: str, group: Group) -> Instance:
        """Add totals rebuilt from the lake (or counted by another process)."""
        instance = self.budgets[budget].add(group)
        as_of = group[5]
        self.as_of_ns = as_of if self.as_of_ns is None else max(self.as_of_ns, as_of)
        return instance

    def replace(self, budget: str, groups: Iterable[Group]) -> BudgetTotals:
        """Replace ``budget``'s totals with ``groups`` (a shared store's, ``budgets/shared.py``),
        keeping which thresholds each instance had crossed, so no crossing is reported twice."""
        totals = self.budgets[budget]
        before = totals.instances
        totals.instances = {}
        for group in groups:
            self.seed(budget, group)
        for key, instance in totals.instances.items():
            previous = before.get(key)
            if previous is not None:
                instance.crossed = previous.crossed
        self.spend_changed = True
        return totals
