"""The overshoot bound of docs/budgets.md, measured at 50 concurrent calls against a real server.

tests/integrations/overshoot.py runs the gateway: 50 callers of one team, each call answered by
the fake provider (one gpt-4o-mini call: $0.0002832, hand-computed there) and exported as a GenAI
span to ``otelcost serve``; a $0.05 budget per team (176.5 calls). Each run uses a team of its
own, so one server serves the module.

The documented bound with reservations (one gateway, a decision held, estimates that are upper
bounds, holds kept until the spend is published) is ``N x estimate error + unpublished holds`` =
0 here: the estimate (1208 prompt tokens at the input rate, 300 at the output rate) exceeds the
actual cost, and ``settle_after`` (2 s) exceeds the export delay (0.2 s) plus the pipeline and the
0.1 s spend refresh. From a cold start (no decision yet) the bound adds what was admitted while
the limit was unknown, beyond the limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from tests.integrations.overshoot import CALL_COST, Gateway, gateway, run_overshoot

pytestmark = pytest.mark.slow

WORKERS = 50


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with gateway(tmp_path_factory.mktemp("overshoot") / "data") as running:
        yield running


def test_reservations_hold_the_limit_under_50_concurrent_calls(gw: Gateway) -> None:
    run = run_overshoot(gw, "reserved", reserve=True, workers=WORKERS)
    print("\n" + run.describe())
    estimate_error = max(Decimal(0), CALL_COST - run.estimate)
    assert estimate_error == 0  # the estimate is an upper bound of what the call costs
    assert run.unchecked < run.admitted  # the burst ran against a published decision
    assert run.overshoot <= WORKERS * estimate_error  # = 0: the spend stays within the limit
    # Callers retry until nothing fits once every hold has settled: less than one estimate is left.
    assert run.spent > run.limit - run.estimate


def test_checking_alone_overshoots_by_the_calls_in_flight(gw: Gateway) -> None:
    run = run_overshoot(gw, "checked", reserve=False, workers=WORKERS)
    print("\n" + run.describe())
    assert run.overshoot > 0  # every caller had a call in flight when the limit was crossed


def test_from_a_cold_start_the_bound_adds_what_was_admitted_before_the_limit_was_known(gw: Gateway) -> None:
    run = run_overshoot(gw, "cold", reserve=True, workers=WORKERS, prime=False)
    print("\n" + run.describe())
    assert run.unchecked > 0
    assert run.overshoot <= max(Decimal(0), run.unchecked * CALL_COST - run.limit)
