"""Restart: totals of open windows come back from the lake and the decisions are the same.

The lake is real: Parquet files in Hive layout written by ``otelcost.lake.publish``, read by
DuckDB through ``otelcost.lake.query``.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from otelcost.budgets.config import BudgetConfig, BudgetingConfig
from otelcost.budgets.evaluator import Evaluator
from otelcost.budgets.rebuild import lake_query
from otelcost.budgets.status import budget_status
from otelcost.lake.layout import table_dir
from otelcost.policy.decisions import Action
from tests.budgets.harness import Clock
from tests.budgets.lake import land
from tests.budgets.rows import at, calls

NOW = at("2026-03-14T10:00:00")

BUDGETS = [
    BudgetConfig.model_validate(
        {
            "name": "team-monthly",
            "scope": {"team": "*"},
            "window": "month",
            "limit": 100,
            "thresholds": [
                {"at": 0.5, "action": "notify"},
                {"at": 0.8, "action": "notify"},
                {"at": 1.0, "action": "throttle"},
                {"at": 1.2, "action": "block"},
            ],
        }
    ),
    BudgetConfig.model_validate(
        {
            "name": "agent-tpm",
            "scope": {"workflow": "*"},
            "window": "1m",
            "metric": "total_tokens",
            "limit": 1000,
            "thresholds": [{"at": 1, "action": "block"}],
        }
    ),
    BudgetConfig.model_validate(
        {
            "name": "gpt-daily",
            "scope": {"model": ["gpt-4o", "o3"], "user_id": "*"},
            "window": "day",
            "metric": "requests",
            "limit": 3,
            "timezone": "Europe/Berlin",
        }
    ),
]


def start(tmp_path: Path, clock: Clock, budgets: list[BudgetConfig] = BUDGETS) -> Evaluator:
    ev = Evaluator(
        budgets=budgets,
        settings=BudgetingConfig(),
        state_dir=tmp_path / "state",
        lake=lake_query(tmp_path / "lake"),
        clock_ns=clock,
        run_threads=False,
    )
    ev.start()
    return ev


def traffic() -> list[pa.Table]:
    early = NOW - timedelta(days=3)
    return [
        calls(4, at=early, cost="20", team="ml", user_id="u1", received=early + timedelta(seconds=2)),
        calls(2, at=NOW - timedelta(seconds=40), cost="15", team="ml", workflow="agent", input_tokens=300),
        calls(1, at=NOW - timedelta(seconds=5), cost="60", team="search", user_id="u2", model="o3"),
        calls(3, at=NOW - timedelta(seconds=2), cost="0.5", team="search", user_id="u2", model="o3"),
        calls(2, at=NOW - timedelta(seconds=1), pricing_status="unknown_model", team="ml", workflow="agent"),
        # Last month: closed, never counted.
        calls(5, at=at("2026-02-27T12:00:00"), cost="100", team="ml", user_id="u1"),
    ]


def test_restart_gives_the_same_decisions(tmp_path: Path) -> None:
    clock = Clock(NOW)
    before = start(tmp_path, clock)
    batches = traffic()
    for batch in batches:
        before.consume(batch)
    before.consume(batches[1])  # a retry: deduplicated live
    land(tmp_path / "lake", *batches, batches[1])  # ... and the lake holds it twice
    expected = before.snapshot.decisions
    assert {(d.budget, d.action) for d in expected} == {
        ("team-monthly", Action.THROTTLE),  # ml: 80 + 30 = 110
        ("team-monthly", Action.NOTIFY),  # search: 61.5
        ("agent-tpm", Action.BLOCK),  # 2 x 350 + 2 x 150 unpriced = 1000 tokens
        ("gpt-daily", Action.BLOCK),  # u2: 4 requests of o3
    }
    expected_status = before.status()
    before.shutdown()

    after = start(tmp_path, clock)
    assert after.snapshot.decisions == expected
    assert after.status() == expected_status
    assert after.snapshot.as_of_ns == before.snapshot.as_of_ns


def test_replays_after_a_restart_never_count_twice(tmp_path: Path) -> None:
    clock = Clock(NOW)
    confirmed = calls(4, at=NOW - timedelta(days=3), cost="20", team="ml", received=NOW - timedelta(days=3))
    flushed = calls(
        2, at=NOW - timedelta(seconds=40), cost="15", team="ml", workflow="agent", input_tokens=300
    )
    unflushed = calls(
        2, at=NOW - timedelta(seconds=1), pricing_status="unknown_model", team="ml", workflow="agent"
    )
    land(tmp_path / "lake", confirmed, flushed)
    ev = start(tmp_path, clock)
    assert {(s.budget, s.spent) for s in ev.status()} == {
        ("team-monthly", Decimal(110)),
        ("agent-tpm", Decimal(700)),
    }
    # The spool replays what it had not seen confirmed: the flushed rows and the unflushed ones.
    ev.consume(flushed)
    ev.consume(unflushed)
    assert ev.counters()["duplicates"] == flushed.num_rows
    assert {(s.budget, s.spent) for s in ev.status()} == {
        ("team-monthly", Decimal(110)),
        ("agent-tpm", Decimal(1000)),
    }


def test_rolling_and_calendar_windows_rebuild_only_the_open_window(tmp_path: Path) -> None:
    clock = Clock(NOW)
    land(
        tmp_path / "lake",
        calls(3, at=NOW - timedelta(seconds=90), workflow="agent", input_tokens=400),  # out of the minute
        calls(1, at=NOW - timedelta(seconds=30), workflow="agent", input_tokens=400),
        calls(2, at=at("2026-02-28T23:30:00"), cost="500", team="ml"),  # February
    )
    ev = start(tmp_path, clock)
    assert {s.budget: s.spent for s in ev.status()} == {"agent-tpm": 450}


def test_a_budget_added_at_run_time_starts_from_the_lake(tmp_path: Path) -> None:
    clock = Clock(NOW)
    ev = start(tmp_path, clock, budgets=[])
    flushed = calls(3, at=NOW - timedelta(hours=1), cost="40", team="ml")
    ev.consume(flushed)
    land(tmp_path / "lake", flushed)
    live = calls(1, at=NOW, cost="5", team="ml", received=NOW + timedelta(seconds=1))
    created, _ = ev.upsert_budget(BUDGETS[0], actor="alice")
    assert created
    ev.consume(live)
    land(tmp_path / "lake", live)
    (status,) = ev.status()
    assert status.spent == 125 and status.action is Action.BLOCK
    assert ev.audit()[-1]["action"] == "budget.create"


def test_budget_status_from_the_lake_alone(tmp_path: Path) -> None:
    land(tmp_path / "lake", *traffic())
    now_ns = int(NOW.timestamp()) * 1_000_000_000
    rows = budget_status(
        budgets=BUDGETS, settings=BudgetingConfig(), lake=lake_query(tmp_path / "lake"), now_ns=now_ns
    )
    by_scope = {(r.budget, tuple(sorted(r.scope.items()))): r for r in rows}
    ml = by_scope[("team-monthly", (("team", "ml"),))]
    assert (ml.spent, ml.limit, ml.action, ml.exceeded) == (Decimal(110), Decimal(100), Action.THROTTLE, True)
    assert ml.projected_exhaustion_ns is None
    search = by_scope[("team-monthly", (("team", "search"),))]
    assert search.spent == Decimal("61.5")
    # 61.5 USD in 13 days 10 hours: 38.5 USD more takes another 8.4 days -> March 22.
    assert search.projected_exhaustion_ns is not None
    elapsed = now_ns - search.window_start_ns  # type: ignore[operator]
    assert search.projected_exhaustion_ns == now_ns + 385 * 10**11 * elapsed // (615 * 10**11)


def test_an_empty_lake_is_an_empty_start(tmp_path: Path) -> None:
    assert not table_dir(tmp_path / "lake").exists()
    ev = start(tmp_path, Clock(NOW))
    assert ev.snapshot.decisions == () and ev.status() == []
