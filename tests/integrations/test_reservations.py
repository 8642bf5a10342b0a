"""Reservations against a real policy endpoint: admit while the estimate fits, hold until published.

A real evaluator and API server (tests/policy/conftest.py's ``run_policy`` builds them with a
clock the test moves) publish a $1 budget for team ``ml`` with a notify threshold at 1 %, so its
decision carries ``spent`` and ``limit`` early; the real ``PolicyClient`` long-polls it and the
``Reservations`` ledger reserves estimates against ``limit - spent``. Amounts are hand-computed.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from otelcost.api import build_api_app
from otelcost.budgets.config import BudgetConfig, BudgetingConfig
from otelcost.budgets.evaluator import Evaluator
from otelcost.policy.client import PolicyClient
from otelcost.policy.config import ApiConfig
from otelcost.policy.decisions import Action
from otelcost.policy.reservations import Estimate, ReservationRefusedError, Reservations
from tests.budgets.harness import ApiServer, Clock
from tests.budgets.rows import at, calls

START = at("2026-03-14T10:00:00")
CAP = BudgetConfig.model_validate(
    {
        "name": "cap",
        "scope": {"team": "*"},
        "window": "day",
        "limit": 1,
        "thresholds": [{"at": 0.01, "action": "notify", "alert": False}, {"at": 1, "action": "block"}],
    }
)


def usd(amount: str) -> Estimate:
    return Estimate(cost_usd=Decimal(amount), input_tokens=100, output_tokens=50)


@pytest.fixture(scope="module")
def policy() -> Iterator[tuple[Evaluator, PolicyClient, Clock]]:
    clock = Clock(START)
    evaluator = Evaluator(
        budgets=[CAP],
        settings=BudgetingConfig.model_validate({"snapshot_refresh": "1s"}),
        clock_ns=clock,
        run_threads=False,
    )
    evaluator.start()
    server = ApiServer(lambda: build_api_app(evaluator=evaluator, config=ApiConfig(), clock_ns=clock)).start()
    client = PolicyClient(server.url, wait=5, clock_ns=clock).start()
    try:
        assert client.wait_for_version(0)
        yield evaluator, client, clock
    finally:
        client.close()
        server.stop()
        evaluator.shutdown()


def spend(evaluator: Evaluator, client: PolicyClient, clock: Clock, team: str, cost: str) -> None:
    """``cost`` lands for ``team``; wait until the client holds the snapshot showing it."""
    clock.advance(2)  # past snapshot_refresh: the new spend is published
    evaluator.consume(calls(1, at=START, cost=cost, team=team))
    evaluator.tick()
    assert client.wait_for_version(evaluator.snapshot.version)


def test_admits_while_the_estimate_fits_the_published_headroom(
    policy: tuple[Evaluator, PolicyClient, Clock],
) -> None:
    evaluator, client, clock = policy
    spend(evaluator, client, clock, "ml", "0.5")
    reservations = Reservations(client, settle_after=10, clock_ns=clock)
    first = reservations.try_reserve({"team": "ml"}, usd("0.2"))[1]
    second = reservations.try_reserve({"team": "ml"}, usd("0.2"))[1]
    assert first is not None and second is not None  # 0.5 + 0.2 + 0.2 = 0.9 <= 1
    result, third = reservations.try_reserve({"team": "ml"}, usd("0.2"))  # 1.1 > 1
    assert third is None
    assert result.action is Action.THROTTLE and not result.allowed
    assert result.retry_after == 1
    assert "0.2 cost_usd reserved for this call does not fit the 0.1 left" in result.reason
    assert "(0.5 spent + 0.4 in flight of 1)" in result.reason
    assert reservations.try_reserve({"team": "ml"}, usd("0.1"))[1] is not None  # exactly 1
    # Another team has no decision yet: nothing to reserve against, and it is not held by ml's.
    assert reservations.try_reserve({"team": "search"}, usd("5"))[1] is not None
    assert reservations.held({"team": "ml"}) == Decimal("0.5")
    assert reservations.admitted == 4 and reservations.refused == 1


def test_a_released_hold_counts_until_a_snapshot_settle_after_later(
    policy: tuple[Evaluator, PolicyClient, Clock],
) -> None:
    evaluator, client, clock = policy
    spend(evaluator, client, clock, "ops", "0.5")
    reservations = Reservations(client, settle_after=10, clock_ns=clock)
    with reservations.reserve({"team": "ops"}, usd("0.4")) as hold:
        hold.settle(usd("0.45"))  # the call turned out dearer than estimated: the larger counts
    assert reservations.held({"team": "ops"}) == Decimal("0.45")  # released, not yet published
    with (
        pytest.raises(ReservationRefusedError, match=r"0\.1 cost_usd reserved"),
        reservations.reserve({"team": "ops"}, usd("0.1")),
    ):
        pass  # 0.5 + 0.45 + 0.1 > 1
    # Its spend lands and is published; the hold is dropped once a snapshot is 10 s newer.
    spend(evaluator, client, clock, "ops", "0.45")
    assert reservations.held({"team": "ops"}) == Decimal("0.45")  # 2 s later: still held
    clock.advance(9)
    evaluator.tick()
    evaluator.consume(calls(1, at=START, cost="0", team="ops"))
    evaluator.tick()
    assert client.wait_for_version(evaluator.snapshot.version)
    assert reservations.held({"team": "ops"}) == 0
    assert reservations.try_reserve({"team": "ops"}, usd("0.05"))[1] is not None  # 0.95 + 0.05


def test_a_blocked_scope_is_refused_whatever_the_estimate(
    policy: tuple[Evaluator, PolicyClient, Clock],
) -> None:
    evaluator, client, clock = policy
    spend(evaluator, client, clock, "web", "1")
    reservations = Reservations(client, clock_ns=clock)
    result, hold = reservations.try_reserve({"team": "web"}, usd("0"))
    assert hold is None
    assert result.action is Action.BLOCK
    assert result.retry_after is not None and result.retry_after > 1


def test_token_budgets_reserve_tokens() -> None:
    estimate = Estimate(cost_usd=None, input_tokens=1200, output_tokens=300)
    assert estimate.amount("input_tokens") == 1200
    assert estimate.amount("output_tokens") == 300
    assert estimate.amount("total_tokens") == 1500
    assert estimate.amount("requests") == 1
    assert estimate.amount("cost_usd") == 0  # unpriced: counted by token budgets only
