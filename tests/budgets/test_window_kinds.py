"""A new window kind is one class: two kinds defined here work through the engine unchanged.

``Shift`` closes (eight-hour shifts from 06:00 UTC): it implements only ``label``, ``phrase``,
``open_at`` and ``longest``. ``LastHours`` slides (the current UTC hour and the ones before it, kept in
hourly buckets): it adds its buckets. Neither is known to ``otelcost.budgets``; the engine
counts, decides, rolls over, ages out, alerts once, rebuilds from a real lake and reports
status for both through the :class:`~otelcost.budgets.windows.Window` interface alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from otelcost.budgets.config import BudgetConfig
from otelcost.budgets.measures import BatchMeasures
from otelcost.budgets.rebuild import lake_query, rebuild_rule
from otelcost.budgets.rules import Rule
from otelcost.budgets.snapshot import Crossing, Engine
from otelcost.budgets.status import instance_status
from otelcost.budgets.windows import OpenWindow, Window
from otelcost.policy.decisions import Action
from tests.budgets.lake import land
from tests.budgets.rows import at, calls

HOUR = 3600 * 1_000_000_000


def ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000


@dataclass(frozen=True, slots=True)
class Shift(Window):
    """Eight-hour shifts starting at 06:00, 14:00 and 22:00 UTC."""

    @property
    def label(self) -> str:
        return "shift"

    @property
    def phrase(self) -> str:
        return "this shift"

    @property
    def longest(self) -> timedelta:
        return timedelta(hours=8)

    def open_at(self, now_ns: int) -> OpenWindow:
        start = (now_ns - 6 * HOUR) // (8 * HOUR) * (8 * HOUR) + 6 * HOUR
        return OpenWindow(start_ns=start, end_ns=start + 8 * HOUR, valid_until_ns=start + 8 * HOUR)


@dataclass(frozen=True, slots=True)
class LastHours(Window):
    """The current UTC hour and the ``hours - 1`` before it, in hourly buckets."""

    hours: int

    @property
    def label(self) -> str:
        return f"last {self.hours} hours"

    @property
    def phrase(self) -> str:
        return f"in the last {self.hours} hours"

    @property
    def longest(self) -> timedelta:
        return timedelta(hours=self.hours)

    def open_at(self, now_ns: int) -> OpenWindow:
        current = now_ns // HOUR
        first = current - self.hours + 1
        return OpenWindow(
            start_ns=first * HOUR, end_ns=None, valid_until_ns=(current + 1) * HOUR, first_bucket=first
        )

    def buckets_of(self, event_ns: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return event_ns // HOUR

    def bucket_sql(self, event_us: str) -> str:
        return f"({event_us}) // {HOUR // 1000}"

    def bucket_leaves_at(self, bucket: int) -> int:
        return (bucket + self.hours) * HOUR


def rule(window: Window, **fields: Any) -> Rule:
    document: dict[str, Any] = {
        "name": "team-budget",
        "scope": {"team": "*"},
        "window": "day",  # the YAML needs a window it knows; the rule counts with ``window``
        "limit": 100,
        "thresholds": [{"at": 0.5, "action": "notify"}, {"at": 1, "action": "block"}],
    }
    document.update(fields)
    return Rule.of(BudgetConfig.model_validate(document), window)


def consume(engine: Engine, now: datetime, *batches: Any) -> list[Crossing]:
    crossings: list[Crossing] = []
    for batch in batches:
        crossings += engine.consume(BatchMeasures(batch), None, ns(now))
    return crossings


def test_a_window_kind_that_closes() -> None:
    now = at("2026-03-14T07:00:00")
    engine = Engine([rule(Shift())], now_ns=ns(now))
    crossings = consume(engine, now, calls(1, at=at("2026-03-14T06:30:00"), cost="60", team="ml"))
    assert [c.threshold.at for c in crossings] == [Decimal("0.5")]
    assert crossings[0].window_start_ns == ns(at("2026-03-14T06:00:00"))
    (decision,) = engine.snapshot(version=1, epoch="e", now_ns=ns(now)).decisions
    assert decision.action is Action.NOTIFY and decision.window == "shift"
    assert decision.window_end_ns == decision.retry_at_ns == ns(at("2026-03-14T14:00:00"))
    assert "60 of 100 USD this shift (60%)" in decision.reason
    # Spending on blocks; the notify threshold does not alert again in the same shift.
    crossings = consume(engine, now, calls(1, at=now, cost="45", team="ml"))
    assert [c.threshold.at for c in crossings] == [Decimal(1)]
    (decision,) = engine.snapshot(version=2, epoch="e", now_ns=ns(now)).decisions
    assert (decision.action, decision.spent) == (Action.BLOCK, Decimal(105))
    # A call of the previous shift is late: not counted.
    consume(engine, now, calls(2, at=at("2026-03-14T05:59:00"), cost="10", team="search"))
    assert engine.late_calls == 2
    # The shift ends: totals and decisions go, and the next shift starts empty.
    later = at("2026-03-14T14:00:01")
    engine.tick(ns(later))
    assert engine.snapshot(version=3, epoch="e", now_ns=ns(later)).decisions == ()
    assert instance_status(engine, ns(later)) == []
    crossings = consume(engine, later, calls(1, at=later, cost="50", team="ml"))
    assert crossings[0].window_id == ns(at("2026-03-14T14:00:00"))


def test_a_window_kind_that_slides() -> None:
    now = at("2026-03-14T10:30:00")
    engine = Engine([rule(LastHours(3))], now_ns=ns(now))
    consume(
        engine,
        now,
        calls(1, at=at("2026-03-14T07:59:00"), cost="500", team="ml"),  # before the window
        calls(1, at=at("2026-03-14T08:10:00"), cost="60", team="ml"),
        calls(1, at=at("2026-03-14T10:05:00"), cost="50", team="ml"),
    )
    assert engine.late_calls == 0  # aged out, not late: the window slides
    (decision,) = engine.snapshot(version=1, epoch="e", now_ns=ns(now)).decisions
    assert (decision.action, decision.spent, decision.window) == (Action.BLOCK, Decimal(110), "last 3 hours")
    assert decision.window_start_ns == ns(at("2026-03-14T08:00:00"))
    # The block lapses when the 08:00 bucket leaves the window.
    assert decision.retry_at_ns == decision.window_end_ns == ns(at("2026-03-14T11:00:00"))
    assert "in the last 3 hours" in decision.reason
    engine.tick(ns(at("2026-03-14T10:59:59")))
    assert engine.snapshot(version=2, epoch="e", now_ns=0).decisions[0].action is Action.BLOCK
    engine.tick(ns(at("2026-03-14T11:00:00")))
    (decision,) = engine.snapshot(version=3, epoch="e", now_ns=0).decisions
    assert (decision.action, decision.spent) == (Action.NOTIFY, Decimal(50))
    (status,) = instance_status(engine, ns(at("2026-03-14T11:00:00")))
    assert (status.spent, status.calls, status.window_end_ns) == (Decimal(50), 1, None)


def test_window_kinds_rebuild_from_the_lake(tmp_path: Path) -> None:
    now = at("2026-03-14T10:30:00")
    rules = [
        rule(Shift(), name="per-shift"),
        rule(LastHours(3), name="last-hours", metric="requests", limit=4),
    ]
    batches = [
        calls(2, at=at("2026-03-14T05:00:00"), cost="30", team="ml"),  # previous shift, 5 h ago
        calls(3, at=at("2026-03-14T08:15:00"), cost="20", team="ml"),
        calls(1, at=at("2026-03-14T10:10:00"), cost="45", team="search"),
    ]
    live = Engine(rules, now_ns=ns(now))
    consume(live, now, *batches)
    land(tmp_path / "lake", *batches)
    rebuilt = Engine(rules, now_ns=ns(now))
    for each in rules:
        rebuild_rule(rebuilt, each, lake_query(tmp_path / "lake"), ns(now))
    assert instance_status(rebuilt, ns(now)) == instance_status(live, ns(now))
    assert {(s.budget, s.scope["team"], s.spent) for s in instance_status(rebuilt, ns(now))} == {
        ("per-shift", "ml", Decimal(60)),
        ("per-shift", "search", Decimal(45)),
        ("last-hours", "ml", Decimal(3)),
        ("last-hours", "search", Decimal(1)),
    }
    snapshot = rebuilt.snapshot(version=1, epoch="e", now_ns=ns(now))
    assert snapshot.decisions == live.snapshot(version=1, epoch="e", now_ns=ns(now)).decisions
    assert {d.budget for d in snapshot.decisions} == {"per-shift", "last-hours"}
