"""Budget totals shared through a real Redis (``budgeting.store: redis://``).

Two evaluators stand for two otelcost processes: each sends its batches' deltas to a
``redis-server`` the test starts (and kills, and starts again), and each must end with the
totals of both, added once, whatever is replayed, retried or sent while Redis is down.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from otelcost.budgets import BudgetConfig, BudgetingConfig, Evaluator, OverrideSpec
from otelcost.budgets.config import ThresholdConfig
from otelcost.budgets.rebuild import lake_query
from otelcost.errors import SharedStoreUnavailableError, TransientIngestError
from otelcost.policy.decisions import Action
from otelcost.policy.encoding import (
    snapshot_from_json,
    snapshot_from_protobuf,
    snapshot_to_json,
    snapshot_to_protobuf,
)
from tests.budgets.harness import Clock, WebhookReceiver
from tests.budgets.lake import land
from tests.budgets.rows import at, calls, ids_of
from tests.redis_run import RedisServer
from tests.waiting import wait_until

START = at("2026-03-14T10:00:00")


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


def budget(limit: str = "100", window: str = "month", name: str = "team", **extra: object) -> BudgetConfig:
    return BudgetConfig.model_validate(
        {
            "name": name,
            "scope": {"team": "*"},
            "window": window,
            "limit": limit,
            "thresholds": [{"at": 1, "action": "block"}],
            **extra,
        }
    )


class Cluster:
    """Evaluators sharing one store prefix, as processes of one deployment would."""

    def __init__(self, server: RedisServer, clock: Clock, tmp_path: Path) -> None:
        self.server = server
        self.clock = clock
        self.tmp_path = tmp_path
        self.prefix = f"t{secrets.token_hex(4)}"
        self.members: list[Evaluator] = []

    def evaluator(self, writer: str, *configs: BudgetConfig, **settings: object) -> Evaluator:
        ev = Evaluator(
            budgets=list(configs) or [budget()],
            settings=BudgetingConfig.model_validate(
                {
                    "store": self.server.url,
                    "store_prefix": self.prefix,
                    "store_timeout": "200ms",
                    "snapshot_refresh": "1ms",  # every change published: versions compared
                    **settings,
                }
            ),
            clock_ns=self.clock,
            run_threads=False,
            writer=writer,
        )
        ev.start()
        self.members.append(ev)
        return ev

    def close(self) -> None:
        for ev in self.members:
            ev.shutdown()


@pytest.fixture
def cluster(redis_server: RedisServer, clock: Clock, tmp_path: Path) -> Iterator[Cluster]:
    group = Cluster(redis_server, clock, tmp_path)
    yield group
    group.close()


def spent(ev: Evaluator, team: str = "ml") -> Decimal:
    return sum((s.spent for s in ev.status() if s.scope.get("team") == team), Decimal(0))


def store_version(ev: Evaluator) -> int:
    assert ev.shared is not None
    return ev.shared.version


def converged(*evaluators: Evaluator, version: int) -> bool:
    """Whether every evaluator has published a snapshot of at least store ``version``. The test
    clock is moved on a little at each look: spend alone is republished once time has passed."""
    first = evaluators[0]
    assert isinstance(first._clock_ns, Clock)
    first._clock_ns.advance(0.002)
    for ev in evaluators:
        ev.tick()
    return all(ev.snapshot.version >= version for ev in evaluators)


def test_two_processes_see_the_sum_of_both_and_publish_one_version(cluster: Cluster) -> None:
    a = cluster.evaluator("a")
    b = cluster.evaluator("b")
    a.consume(calls(3, at=START, cost="10", team="ml"), seq=1)
    b.consume(calls(2, at=START, cost="10", team="ml"), seq=1)  # same seq, other writer
    b.consume(calls(1, at=START, cost="0.000000000001", team="ml"), seq=2)
    wait_until(lambda: converged(a, b, version=3), what="both processes at store version 3")
    wait_until(lambda: a.snapshot.etag == b.snapshot.etag, what="the same ETag")
    assert spent(a) == spent(b) == Decimal("50.000000000001")
    # Crossing the limit in one process blocks in both, with the same decision and ETag.
    a.consume(calls(1, at=START, cost="50", team="ml"), seq=2)
    wait_until(lambda: converged(a, b, version=4), what="version 4")
    wait_until(lambda: a.snapshot.etag == b.snapshot.etag, what="the same ETag")
    for ev in (a, b):
        result = ev.snapshot.check({"team": "ml"}, cluster.clock())
        assert result.action is Action.BLOCK
        assert result.decision is not None and result.decision.spent == Decimal("100.000000000001")
        assert not ev.snapshot.stale
    # Equal but for when each process computed them.
    assert [replace(d, computed_at_ns=0) for d in a.snapshot.decisions] == [
        replace(d, computed_at_ns=0) for d in b.snapshot.decisions
    ]


def test_a_replayed_seq_and_a_retried_batch_count_once(cluster: Cluster) -> None:
    a = cluster.evaluator("a")
    b = cluster.evaluator("b")
    batch = calls(4, at=START, cost="1", team="ml")
    a.consume(batch, seq=7)
    a.shutdown()
    a = cluster.evaluator("a")  # restarted: nothing remembered in the process
    a.consume(batch, seq=7)  # the spool replay after the crash
    retried = calls(4, at=START, cost="1", team="ml", ids=ids_of(batch))
    b.consume(retried, seq=3)  # the sender retried the same request against another process
    a.consume(calls(1, at=START, cost="1", team="ml"), seq=8)
    wait_until(lambda: converged(a, b, version=2), what="version 2")
    assert spent(a) == spent(b) == Decimal(5)
    shared = a.shared
    assert shared is not None and b.shared is not None
    wait_until(lambda: shared.changes_skipped == 1 and b.shared is not None and b.shared.changes_skipped == 1)
    # Redis remembers seq 7 until the spool is checkpointed past it.
    assert shared.was_applied(7)
    a.checkpointed(7)
    a.consume(calls(1, at=START, cost="1", team="ml"), seq=9)
    wait_until(lambda: shared.was_applied(9), what="seq 9 sent")
    assert not shared.was_applied(7)


def test_money_past_what_a_64_bit_picodollar_total_holds(cluster: Cluster) -> None:
    a = cluster.evaluator("a", budget(limit="100000000"))
    b = cluster.evaluator("b", budget(limit="100000000"))
    # 2 x 5,000,000.000000000001 USD = 1.0e19 picodollars: more than a Redis integer holds.
    a.consume(calls(1, at=START, cost="5000000.000000000001", team="ml"), seq=1)
    b.consume(calls(1, at=START, cost="5000000.000000000001", team="ml"), seq=1)
    wait_until(lambda: converged(a, b, version=2), what="version 2")
    assert spent(a) == spent(b) == Decimal("10000000.000000000002")
    late = cluster.evaluator("c", budget(limit="100000000"))  # reads the totals back whole
    assert spent(late) == Decimal("10000000.000000000002")


def test_redis_down_counts_locally_marks_stale_and_reconciles_once(cluster: Cluster) -> None:
    a = cluster.evaluator("a")
    b = cluster.evaluator("b")
    a.consume(calls(1, at=START, cost="10", team="ml"), seq=1)
    wait_until(lambda: converged(a, b, version=1), what="version 1")
    cluster.server.kill()
    a.consume(calls(2, at=START, cost="10", team="ml"), seq=2)  # Redis is gone: counted here
    wait_until(lambda: a.snapshot.stale and spent(a) == Decimal(30), what="a counting locally, stale")
    wait_until(lambda: b.snapshot.stale, what="the other process to notice")
    assert spent(b) == Decimal(10)
    body = snapshot_from_json(snapshot_to_json(a.snapshot))
    assert body.stale and snapshot_from_protobuf(snapshot_to_protobuf(a.snapshot)).stale
    b.consume(calls(5, at=START, cost="10", team="ml"), seq=1)
    wait_until(lambda: spent(b) == Decimal(60), what="b counting locally")
    assert a.shared is not None and a.shared.pending == 1
    cluster.server.start()
    wait_until(lambda: not a.snapshot.stale and not b.snapshot.stale, timeout=15, what="Redis back")
    wait_until(lambda: converged(a, b, version=3), timeout=5, what="both pending changes applied")
    assert spent(a) == spent(b) == Decimal(80)
    assert a.shared.pending == 0
    # What was applied before the outage is not applied again by a replay after it.
    a.consume(calls(1, at=START, cost="10", team="ml", ids=[("0" * 32, "1" * 16)]), seq=2)
    wait_until(lambda: a.shared is not None and a.shared.changes_skipped == 1, what="the replay skipped")


def test_a_process_started_while_redis_is_down_is_stale_until_it_answers(
    redis_server: RedisServer, clock: Clock, tmp_path: Path
) -> None:
    group = Cluster(redis_server, clock, tmp_path)
    try:
        a = group.evaluator("a")
        a.consume(calls(1, at=START, cost="10", team="ml"), seq=1)
        redis_server.kill()
        b = group.evaluator("b")
        assert b.snapshot.stale
        b.consume(calls(1, at=START, cost="10", team="ml"), seq=1)
        redis_server.start()
        wait_until(lambda: not b.snapshot.stale, timeout=15, what="b to reach Redis")
        wait_until(lambda: spent(a) == spent(b) == Decimal(20), what="both at 20 USD")
    finally:
        group.close()


def test_totals_of_a_window_that_rolled_are_read_whole(cluster: Cluster) -> None:
    a = cluster.evaluator("a", budget(window="hour"))
    b = cluster.evaluator("b", budget(window="hour"))
    a.consume(calls(1, at=START, cost="10", team="ml"), seq=1)
    wait_until(lambda: converged(a, b, version=1), what="version 1")
    cluster.clock.set(at("2026-03-14T11:00:01"))
    a.tick()  # a rolls its window; b has not yet
    a.consume(calls(1, at=at("2026-03-14T11:00:01"), cost="3", team="ml"), seq=2)
    wait_until(lambda: converged(a, version=2), what="a at version 2")
    b.tick()
    wait_until(lambda: spent(b) == Decimal(3), what="b to read the new hour whole")
    assert spent(a) == Decimal(3)


def test_configured_differently_means_counted_apart(cluster: Cluster) -> None:
    a = cluster.evaluator("a", budget(window="month"))
    b = cluster.evaluator("b", budget(window="day"))  # same name, another shape
    a.consume(calls(1, at=START, cost="10", team="ml"), seq=1)
    b.consume(calls(1, at=START, cost="1", team="ml"), seq=1)
    # Each reads the other's change and adds nothing of it (so publishes nothing new).
    wait_until(lambda: store_version(a) == store_version(b) == 2, what="both at store version 2")
    assert spent(a) == Decimal(10) and spent(b) == Decimal(1)


def test_a_threshold_alerts_from_one_process_only(
    redis_server: RedisServer, clock: Clock, tmp_path: Path
) -> None:
    group = Cluster(redis_server, clock, tmp_path)
    with WebhookReceiver() as hook:
        try:
            config = budget(
                limit="10",
                thresholds=[ThresholdConfig(at=Decimal("0.5"), action="notify")],
                webhook_url=hook.url,
            )
            evaluators = [
                Evaluator(
                    budgets=[config],
                    settings=BudgetingConfig.model_validate(
                        {"store": redis_server.url, "store_prefix": group.prefix}
                    ),
                    state_dir=tmp_path / name,
                    clock_ns=clock,
                    writer=name,
                )
                for name in ("a", "b", "c")
            ]
            for ev in evaluators:
                ev.start()
                group.members.append(ev)
            evaluators[0].consume(calls(1, at=START, cost="6", team="ml"), seq=1)
            wait_until(
                lambda: all(ev.shared is not None and ev.shared.version >= 1 for ev in evaluators),
                what="all three at store version 1",
            )
            assert hook.wait_for(1)
            wait_until(lambda: all(ev.alerts.pending == 0 for ev in evaluators), what="deliveries done")
            assert len(hook.requests) == 1
            assert hook.requests[0]["budget"] == "team"
        finally:
            group.close()


def test_the_lake_seeds_a_new_store_once_however_many_processes_start(
    redis_server: RedisServer, clock: Clock, tmp_path: Path
) -> None:
    lake_dir = tmp_path / "lake"
    land(lake_dir, calls(3, at=START - timedelta(hours=2), cost="7", team="ml"))  # before Redis counted
    prefix = f"t{secrets.token_hex(4)}"

    def process(writer: str) -> Evaluator:
        ev = Evaluator(
            budgets=[budget()],
            settings=BudgetingConfig.model_validate({"store": redis_server.url, "store_prefix": prefix}),
            lake=lake_query(lake_dir),
            clock_ns=clock,
            run_threads=False,
            writer=writer,
        )
        ev.start()
        return ev

    a, b = process("a"), process("b")
    try:
        b.consume(calls(1, at=START, cost="1", team="ml"), seq=1)
        wait_until(lambda: spent(a) == spent(b) == Decimal(22), what="the seed once plus the live call")
        a.shutdown()
        a = process("a")  # a restart seeds nothing again
        assert spent(a) == Decimal(22)
        # A budget added at run time starts from the lake too, once.
        added = budget(name="ml-daily", window="day", limit="1000")
        a.upsert_budget(added, actor="alice")
        b.upsert_budget(added, actor="alice")
        wait_until(
            lambda: {s.spent for s in (*a.status(), *b.status()) if s.budget == "ml-daily"} == {Decimal(21)},
            what="the new budget seeded from the lake once",
        )
    finally:
        a.shutdown()
        b.shutdown()


def test_a_process_behind_a_trimmed_stream_reads_the_totals_whole(cluster: Cluster) -> None:
    a = cluster.evaluator("a")
    b = cluster.evaluator("b")
    assert b.shared is not None
    b.shared.shutdown()  # b stops reading the stream for a while
    for seq in range(1, 4):
        a.consume(calls(1, at=START, cost="2", team="ml"), seq=seq)
    client = cluster.server.client()
    client.xtrim(f"{{{cluster.prefix}}}:changes", maxlen=0)  # what MAXLEN does to a laggard
    client.close()
    b.shared.start()
    wait_until(lambda: spent(b) == Decimal(6), timeout=10, what="b to resync past the gap")


def test_too_many_changes_waiting_for_redis_refuse_ingest(cluster: Cluster) -> None:
    a = cluster.evaluator("a", store_pending_batches=2)
    shared = a.shared
    assert shared is not None
    cluster.server.kill()
    for seq in (1, 2):
        shared.reserve()
        a.consume(calls(1, at=START, cost="1", team="ml"), seq=seq)
    with pytest.raises(TransientIngestError, match="2 budget changes wait for Redis"):
        shared.reserve()
    cluster.server.start()
    wait_until(lambda: shared.pending == 0, timeout=15, what="the pending changes added")
    shared.reserve()


def test_a_kill_switch_set_through_one_process_blocks_in_every_one(cluster: Cluster) -> None:
    a = cluster.evaluator("a")
    b = cluster.evaluator("b")
    a.put_override(
        "stop-ml", OverrideSpec(action="block", scope={"team": "ml"}, reason="runaway"), actor="alice"
    )

    def blocked(ev: Evaluator) -> bool:
        return ev.snapshot.check({"team": "ml"}, cluster.clock()).action is Action.BLOCK

    wait_until(lambda: blocked(a) and blocked(b), what="the kill switch in both processes")
    assert [o.id for o in b.overrides()] == ["stop-ml"]
    b.delete_override("stop-ml", actor="bob")
    wait_until(lambda: not blocked(a) and not blocked(b), what="the kill switch lifted in both")
    # A process started later finds it too; one the store cannot reach changes nothing.
    a.put_override("stop-ads", OverrideSpec(action="block", scope={"team": "ads"}), actor="alice")
    c = cluster.evaluator("c")
    assert [o.id for o in c.overrides()] == ["stop-ads"]
    cluster.server.kill()
    with pytest.raises(SharedStoreUnavailableError, match="'stop-search' is not set"):
        c.put_override("stop-search", OverrideSpec(action="block", scope={"team": "search"}), actor="carol")
    assert [o.id for o in c.overrides()] == ["stop-ads"]
