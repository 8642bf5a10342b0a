"""The evaluator as a sink: exact sums, metrics, dedup, versions, windows, alerts, overrides."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from otelcost.budgets.config import BudgetConfig, BudgetingConfig
from otelcost.budgets.evaluator import Evaluator
from otelcost.budgets.overrides import OverrideSpec
from otelcost.errors import BudgetAdminError, ConfigError
from otelcost.policy.decisions import Action, Snapshot
from tests.budgets.harness import Clock
from tests.budgets.rows import at, calls

START = at("2026-03-14T10:00:00")
LADDER = [
    {"at": 0.5, "action": "notify"},
    {"at": 0.8, "action": "notify"},
    {"at": 1.0, "action": "throttle"},
    {"at": 1.2, "action": "block"},
]


def budget(**fields: Any) -> BudgetConfig:
    document: dict[str, Any] = {
        "name": "team-monthly",
        "scope": {"team": "*"},
        "window": "month",
        "limit": 100,
    }
    document.update(fields)
    return BudgetConfig.model_validate(document)


def evaluator(
    *budgets: BudgetConfig, clock: Clock, state_dir: Path | None = None, **settings: Any
) -> Evaluator:
    ev = Evaluator(
        budgets=list(budgets),
        settings=BudgetingConfig.model_validate(settings),
        state_dir=state_dir,
        clock_ns=clock,
        run_threads=False,
    )
    ev.start()
    return ev


def only(snapshot: Snapshot, budget_name: str | None = None) -> Any:
    found = [d for d in snapshot.decisions if budget_name is None or d.budget == budget_name]
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


def test_money_sums_are_exact(clock: Clock) -> None:
    ev = evaluator(budget(limit="0.3", thresholds=[{"at": 1, "action": "block"}]), clock=clock)
    for _ in range(3):
        ev.consume(calls(1, at=START, cost="0.1", team="ml"))
    decision = only(ev.snapshot)
    assert decision.spent == Decimal("0.3")  # 0.1 + 0.1 + 0.1, no float drift
    assert decision.action is Action.BLOCK
    ev.consume(calls(1, at=START, cost="0.000000000001", team="ml"))
    assert ev.status()[0].spent == Decimal("0.300000000001")


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("cost_usd", Decimal("2.5")),
        ("effective_cost_usd", Decimal("2")),
        ("input_tokens", Decimal(200)),
        ("output_tokens", Decimal(60)),
        ("total_tokens", Decimal(260)),
        ("requests", Decimal(2)),
    ],
)
def test_each_metric(clock: Clock, metric: str, expected: Decimal) -> None:
    ev = evaluator(budget(metric=metric, limit=10_000), clock=clock)
    ev.consume(
        calls(2, at=START, cost="1.25", effective_cost="1", input_tokens=100, output_tokens=30, team="ml")
    )
    assert ev.status()[0].spent == expected


def test_unpriced_calls_count_for_tokens_and_requests_and_are_flagged(clock: Clock) -> None:
    ev = evaluator(
        budget(name="cost", limit=1),
        budget(name="tokens", metric="total_tokens", limit=1000),
        budget(name="requests", metric="requests", limit=3),
        clock=clock,
    )
    ev.consume(
        calls(4, at=START, pricing_status="unknown_model", input_tokens=200, output_tokens=50, team="ml")
    )
    status = {s.budget: s for s in ev.status()}
    assert status["cost"].spent == 0 and status["cost"].unpriced_calls == 4
    assert status["tokens"].spent == 1000 and status["tokens"].action is Action.BLOCK
    assert status["requests"].spent == 4
    tokens = only(ev.snapshot, "tokens")
    assert tokens.unpriced_calls == 4
    assert "4 unpriced call(s)" in tokens.reason


def test_replayed_calls_never_count_twice(clock: Clock) -> None:
    ev = evaluator(budget(), clock=clock)
    batch = calls(5, at=START, cost="1", team="ml")
    ev.consume(batch)
    ev.consume(batch)  # a sender retry after a lost ack
    ev.consume(pa.concat_tables([batch.slice(0, 2), calls(1, at=START, cost="1", team="ml")]))
    assert ev.status()[0].spent == Decimal(6)
    assert ev.counters()["duplicates"] == 7


def test_versions_move_on_decision_changes_and_spend_refreshes(clock: Clock) -> None:
    ev = evaluator(budget(thresholds=LADDER), clock=clock, snapshot_refresh="5s")
    first = ev.snapshot.version
    ev.consume(calls(1, at=START, cost="10", team="ml"))
    assert ev.snapshot.version == first  # 10 % of the limit: no decision changes
    ev.consume(calls(1, at=START, cost="45", team="ml"))
    assert ev.snapshot.version == first + 1  # notify from 50 %
    ev.consume(calls(1, at=START, cost="1", team="ml"))
    assert ev.snapshot.version == first + 1  # same decision; spend alone waits for the refresh
    assert only(ev.snapshot).spent == Decimal(55)
    clock.advance(5)
    ev.tick()
    assert ev.snapshot.version == first + 2
    assert only(ev.snapshot).spent == Decimal(56)
    ev.tick()
    assert ev.snapshot.version == first + 2  # nothing new
    ev.consume(calls(1, at=START, cost="30", team="ml"))
    assert only(ev.snapshot).action is Action.NOTIFY  # 86 %: second notify threshold
    assert only(ev.snapshot).threshold == Decimal("0.8")
    assert ev.snapshot.version == first + 3
    assert ev.snapshot.computed_at_ns == clock()
    # Freshness: the newest counted call was received 1 s after START; computed 5 s later.
    assert ev.snapshot.as_of_ns == int(START.timestamp()) * 1_000_000_000 + 1_000_000_000


def test_scope_instances_are_independent(clock: Clock) -> None:
    ev = evaluator(budget(thresholds=LADDER), clock=clock)
    ev.consume(calls(1, at=START, cost="130", team="ml"))
    ev.consume(calls(1, at=START, cost="60", team="search"))
    ev.consume(calls(1, at=START, cost="500", team=None))  # no team: not in a '*' budget
    actions = {d.scope["team"]: d.action for d in ev.snapshot.decisions}
    assert actions == {"ml": Action.BLOCK, "search": Action.NOTIFY}


def test_calendar_windows_roll_over_by_time_alone(clock: Clock) -> None:
    clock.set(at("2026-03-31T23:59:00"))
    ev = evaluator(budget(), clock=clock)
    ev.consume(calls(1, at=at("2026-03-31T23:58:00"), cost="150", team="ml"))
    blocked = only(ev.snapshot)
    assert blocked.action is Action.BLOCK
    assert blocked.window_end_ns == blocked.retry_at_ns == int(at("2026-04-01T00:00:00").timestamp() * 1e9)
    version = ev.snapshot.version
    clock.set(at("2026-04-01T00:00:01"))
    ev.tick()
    assert ev.snapshot.decisions == ()
    assert ev.snapshot.version == version + 1
    # A March call arriving late does not reopen March, nor count in April.
    ev.consume(calls(1, at=at("2026-03-31T23:59:30"), cost="150", team="ml"))
    assert ev.snapshot.decisions == ()
    assert ev.counters()["late_calls"] == 1
    assert ev.status() == []


def test_calls_stamped_in_the_future_count_now(clock: Clock) -> None:
    clock.set(at("2026-03-31T23:59:59"))
    ev = evaluator(budget(), clock=clock)
    ev.consume(calls(1, at=at("2026-04-01T00:00:30"), cost="150", team="ml"))  # sender clock ahead
    assert only(ev.snapshot).window_end_ns == int(at("2026-04-01T00:00:00").timestamp() * 1e9)


def test_rolling_window_blocks_a_runaway_agent_and_drains(clock: Clock) -> None:
    tpm = budget(
        name="agent-tpm",
        scope={"workflow": "*"},
        window="1m",
        metric="total_tokens",
        limit=10_000,
        thresholds=[{"at": 1, "action": "block"}],
    )
    ev = evaluator(tpm, clock=clock)
    for second in range(0, 20, 5):  # 4 x 3,000 tokens within 20 s
        clock.set(START + timedelta(seconds=second))
        ev.consume(
            calls(
                1,
                at=START + timedelta(seconds=second),
                input_tokens=2500,
                output_tokens=500,
                workflow="agent",
            )
        )
    decision = only(ev.snapshot)
    assert decision.action is Action.BLOCK and decision.spent == Decimal(12_000)
    # Dropping the first 3,000 tokens (the call at +0 s) brings the total under 10,000.
    assert decision.retry_at_ns == int((START + timedelta(seconds=60)).timestamp() * 1e9)
    clock.set(START + timedelta(seconds=59))
    ev.tick()
    assert only(ev.snapshot).action is Action.BLOCK
    clock.set(START + timedelta(seconds=60))
    ev.tick()
    assert ev.snapshot.decisions == ()
    assert ev.status()[0].spent == Decimal(9000)


def test_each_threshold_alerts_once_per_window(clock: Clock, tmp_path: Path) -> None:
    ev = evaluator(budget(thresholds=LADDER), clock=clock, state_dir=tmp_path)
    for _ in range(10):  # 9 x 10 = 90 %: passes 50 % and 80 %, then keeps spending
        ev.consume(calls(1, at=START, cost="9", team="ml"))
    crossed = journal(tmp_path, "crossed")
    assert [a["threshold"] for a in crossed] == ["0.5", "0.8"]
    assert ev.alerts.skipped == 2  # no webhook configured: logged, not sent
    ev.shutdown()
    # A restart rebuilds nothing here (no lake) but remembers what was alerted.
    again = evaluator(budget(thresholds=LADDER), clock=clock, state_dir=tmp_path)
    for _ in range(3):
        again.consume(calls(1, at=START, cost="9", team="ml"))
    assert [a["threshold"] for a in journal(tmp_path, "crossed")] == ["0.5", "0.8"]
    again.consume(calls(1, at=START, cost="100", team="ml"))  # 127 %: past 100 % and 120 %
    assert [a["threshold"] for a in journal(tmp_path, "crossed")] == ["0.5", "0.8", "1", "1.2"]
    # Next month the same thresholds alert again.
    clock.set(at("2026-04-02T00:00:00"))
    again.tick()
    again.consume(calls(1, at=at("2026-04-02T00:00:00"), cost="60", team="ml"))
    assert [a["threshold"] for a in journal(tmp_path, "crossed")][-1] == "0.5"


def journal(state_dir: Path, event: str) -> list[dict[str, Any]]:
    lines = (state_dir / "alerts.jsonl").read_text().splitlines()
    return [json.loads(line)["alert"] for line in lines if json.loads(line)["event"] == event]


def test_overrides_block_allow_and_raise(clock: Clock, tmp_path: Path) -> None:
    ev = evaluator(budget(thresholds=LADDER), clock=clock, state_dir=tmp_path)
    ev.consume(calls(1, at=START, cost="110", team="ml"))
    assert ev.snapshot.check({"team": "ml"}, clock()).action is Action.THROTTLE
    # Raise the limit for ml: 110 of 200 is 55 %.
    ev.put_override(
        "ml-more",
        OverrideSpec(action="raise_limit", budget="team-monthly", scope={"team": "ml"}, limit=Decimal(200)),
        actor="alice",
    )
    decision = only(ev.snapshot)
    assert (decision.action, decision.limit, decision.override_id) == (Action.NOTIFY, Decimal(200), "ml-more")
    # Kill switch for one user, whatever the spend.
    ev.put_override(
        "stop-u1", OverrideSpec(action="block", scope={"user_id": "u1"}, reason="leak"), actor="bob"
    )
    assert ev.snapshot.check({"team": "search", "user_id": "u1"}, clock()).action is Action.BLOCK
    assert "leak" in ev.snapshot.check({"user_id": "u1"}, clock()).reason
    # An allow override lifts budget decisions but not the kill switch.
    ev.delete_override("ml-more", actor="alice")
    ev.put_override("launch", OverrideSpec(action="allow", scope={"team": "ml"}), actor="alice")
    assert ev.snapshot.check({"team": "ml"}, clock()).allowed
    assert not ev.snapshot.check({"team": "ml", "user_id": "u1"}, clock()).allowed
    with pytest.raises(BudgetAdminError, match="no budget named"):
        ev.put_override("x", OverrideSpec(action="raise_limit", budget="nope", limit=Decimal(1)), actor="a")
    with pytest.raises(BudgetAdminError, match="no override"):
        ev.delete_override("nope", actor="a")
    actions = [(e["actor"], e["action"], e["target"]) for e in ev.audit()]
    assert actions == [
        ("alice", "override.put", "ml-more"),
        ("bob", "override.put", "stop-u1"),
        ("alice", "override.delete", "ml-more"),
        ("alice", "override.put", "launch"),
    ]
    assert ev.audit()[2]["before"]["limit"] == "200" and ev.audit()[2]["after"] is None


def test_overrides_expire_by_themselves(clock: Clock, tmp_path: Path) -> None:
    ev = evaluator(budget(), clock=clock, state_dir=tmp_path)
    until = START + timedelta(minutes=10)
    ev.put_override("pause", OverrideSpec(action="block", scope={"team": "ml"}, until=until), actor="ops")
    blocked = ev.snapshot.check({"team": "ml"}, clock())
    assert blocked.action is Action.BLOCK and blocked.retry_after == 600
    clock.advance(600)
    ev.tick()
    assert ev.snapshot.check({"team": "ml"}, clock()).allowed
    assert ev.overrides() == []
    assert ev.audit()[-1]["actor"] == "system" and ev.audit()[-1]["action"] == "override.expire"


def test_admin_budget_changes_persist_and_are_audited(clock: Clock, tmp_path: Path) -> None:
    yaml_budget = budget()
    ev = evaluator(yaml_budget, clock=clock, state_dir=tmp_path)
    ev.consume(calls(1, at=START, cost="90", team="ml"))
    # Lower the limit: totals are kept (same scope, window, metric), the decision changes now.
    changed, _ = ev.upsert_budget(budget(limit=50), actor="alice", note="cut")
    assert not changed and only(ev.snapshot).action is Action.BLOCK
    created, _ = ev.upsert_budget(budget(name="daily", window="day", limit=1000), actor="alice")
    assert created
    ev.delete_budget("team-monthly", actor="bob")
    assert [e.config.name for e in ev.budgets()] == ["daily"]
    with pytest.raises(BudgetAdminError, match="no budget"):
        ev.delete_budget("team-monthly", actor="bob")
    audit = ev.audit()
    assert [(e["actor"], e["action"], e["target"]) for e in audit] == [
        ("alice", "budget.update", "team-monthly"),
        ("alice", "budget.create", "daily"),
        ("bob", "budget.delete", "team-monthly"),
    ]
    assert audit[0]["before"]["limit"] == "100" and audit[0]["after"]["limit"] == "50"
    assert audit[0]["note"] == "cut"
    ev.shutdown()
    # A restart with the same YAML keeps the admin changes (the YAML budget stays deleted).
    restarted = evaluator(yaml_budget, clock=clock, state_dir=tmp_path)
    assert [(e.config.name, e.source) for e in restarted.budgets()] == [("daily", "api")]


def test_duplicate_budget_names_are_a_config_error(clock: Clock) -> None:
    with pytest.raises(ConfigError, match="two budgets named 'team-monthly'"):
        Evaluator(budgets=[budget(), budget()], clock_ns=clock, run_threads=False)


def test_consume_is_vectorised_enough(clock: Clock) -> None:
    ev = evaluator(
        budget(),
        budget(name="per-user", scope={"user_id": "*"}, window="day"),
        budget(name="tpm", scope={"workflow": "*"}, window="1m", metric="total_tokens", limit=10**9),
        clock=clock,
    )
    batches = [
        pa.concat_tables(
            [
                calls(25, at=START, cost="0.01", team=f"t{i % 7}", user_id=f"u{i}", workflow="w")
                for i in range(4)
            ]
        )
        for _ in range(40)
    ]
    started = time.perf_counter()
    for batch in batches:
        ev.consume(batch)
    per_call = (time.perf_counter() - started) / (100 * len(batches))
    assert ev.counters()["calls_counted"] == 4000
    # Generous (the machine is shared); benchmarks/decision_latency.py measures properly.
    assert per_call < 250e-6, f"{per_call * 1e6:.1f} µs per call"
