"""Enforcement is asynchronous: measure the overshoot and hold it to the documented bound.

docs/budgets.md states: the spend past a limit is at most

    (calls in flight + admission rate x (pipeline latency + propagation latency)) x cost per call

A simulated gateway runs ``workers`` concurrent callers. Each asks the real ``PolicyClient``
(long-polling the real endpoint) before every call, "calls" for ``CALL_SECONDS`` and hands the
spend to a simulated pipeline that delivers finished calls to the evaluator every
``PIPELINE_SECONDS``. Per worker, at most one call is in flight when the limit is crossed, and
while the block travels (pipeline + evaluation + long poll) each worker starts at most
``ceil(latency / CALL_SECONDS)`` more: the bound below, with the latency measured.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from otelcost.api import build_api_app
from otelcost.budgets.config import BudgetConfig, BudgetingConfig
from otelcost.budgets.evaluator import Evaluator
from otelcost.policy.client import PolicyClient
from otelcost.policy.config import ApiConfig
from otelcost.policy.decisions import Action
from tests.budgets.harness import ApiServer
from tests.budgets.rows import calls
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

WORKERS = 8
CALL_SECONDS = 0.02
PIPELINE_SECONDS = 0.05
COST = Decimal("0.01")
LIMIT = Decimal("4")


def test_measured_overshoot_is_within_the_bound(tmp_path: Path) -> None:
    budget = BudgetConfig.model_validate(
        {"name": "cap", "window": "1h", "limit": str(LIMIT), "thresholds": [{"at": 1, "action": "block"}]}
    )
    evaluator = Evaluator(budgets=[budget], settings=BudgetingConfig(), run_threads=False)
    evaluator.start()
    server = ApiServer(lambda: build_api_app(evaluator=evaluator, config=ApiConfig())).start()
    client = PolicyClient(server.url, wait=20).start()
    assert client.wait_for_version(1)

    finished: queue.Queue[int] = queue.Queue()
    stop = threading.Event()
    published_at: list[float] = []  # when consume() returned with the block in the snapshot
    delivered = [0]  # finished calls the evaluator has consumed
    seen_at: list[float] = []  # when a worker first saw it
    admitted = [0] * WORKERS

    def worker(index: int) -> None:
        while not stop.is_set() and admitted[index] < 5000:
            if not client.check(team="ml").allowed:
                seen_at.append(time.monotonic())
                return
            admitted[index] += 1
            time.sleep(CALL_SECONDS)  # the simulated call to the model
            finished.put(1)

    def pipeline() -> None:
        while not stop.is_set():
            time.sleep(PIPELINE_SECONDS)  # the simulated pipeline's latency
            count = 0
            while not finished.empty():
                count += finished.get_nowait()
            if count:
                evaluator.consume(calls(count, at=now(), cost=str(COST), team="ml"))
                delivered[0] += count
                if (
                    not published_at
                    and evaluator.snapshot.check({"team": "ml"}, time.time_ns()).action is Action.BLOCK
                ):
                    published_at.append(time.monotonic())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
    feeder = threading.Thread(target=pipeline)
    feeder.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # The calls still in flight finish and reach the evaluator.
    wait_until(lambda: delivered[0] == sum(admitted), what="every admitted call to reach the evaluator")
    stop.set()
    feeder.join()
    client.close()
    server.stop()
    evaluator.shutdown()

    assert len(seen_at) == WORKERS, "every worker was eventually blocked"
    spent = sum(admitted) * COST
    overshoot = spent - LIMIT
    propagation = max(seen_at) - published_at[0]
    latency = PIPELINE_SECONDS + evaluator.last_consume_seconds + propagation
    bound = COST * WORKERS * (1 + math.ceil(latency / CALL_SECONDS))
    print(
        f"\novershoot {overshoot} USD ({overshoot / COST:.0f} calls) of limit {LIMIT}; bound {bound} USD; "
        f"admission {WORKERS / CALL_SECONDS:.0f} calls/s, propagation {propagation * 1000:.1f} ms"
    )
    assert overshoot >= 0
    assert overshoot <= bound
    assert propagation < 0.25  # long poll: the block reaches the gateway within 250 ms


def now() -> datetime:
    return datetime.now(UTC)
