"""Stale decisions over real HTTP: a shared budget store (a real redis-server) killed and restarted.

While the evaluator cannot reach Redis its snapshot says ``stale``; ``/v1/check`` says so in a
header and decides, fails open or fails closed as ``api.check_when_stale`` (or the request's
``X-Otelcost-When-Stale``) asks; the gateway client does what its ``when_stale`` says.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import requests

from otelcost.budgets.evaluator import Evaluator
from otelcost.policy.client import PolicyClient
from tests.budgets.harness import ApiServer, Clock
from tests.budgets.rows import calls
from tests.policy.conftest import START, run_policy
from tests.redis_run import RedisServer
from tests.waiting import wait_until


def _holds_stale(client: PolicyClient) -> bool:
    return client.snapshot is not None and client.snapshot.stale


@pytest.fixture
def stale_policy(tmp_path: Path, redis_server: RedisServer) -> Iterator[tuple[Evaluator, ApiServer, Clock]]:
    """A policy endpoint whose team ``ml`` is throttled, then cut off from Redis."""
    settings = {
        "store": redis_server.url,
        "store_prefix": f"p{secrets.token_hex(3)}",
        "store_timeout": "200ms",
    }
    evaluator, server, clock = run_policy(tmp_path, settings=settings)
    evaluator.consume(calls(1, at=START, cost="110", team="ml"))
    wait_until(lambda: evaluator.snapshot.decisions, what="the throttle")
    redis_server.kill()
    evaluator.consume(calls(1, at=START, cost="1", team="search"))  # finds Redis gone
    wait_until(lambda: evaluator.snapshot.stale, what="stale decisions")
    yield evaluator, server, clock
    server.stop()
    evaluator.shutdown()


def test_check_says_stale_and_decides_from_what_the_process_knows(
    stale_policy: tuple[Evaluator, ApiServer, Clock],
) -> None:
    _, server, _ = stale_policy
    throttled = requests.get(f"{server.url}/v1/check", params={"team": "ml"}, timeout=5)
    assert throttled.status_code == 429
    assert throttled.headers["X-Otelcost-Stale"] == "true"
    assert throttled.json()["stale"] is True
    assert "stale" in throttled.headers["X-Otelcost-Reason"]
    body = requests.get(f"{server.url}/v1/decisions", timeout=5).json()
    assert body["stale"] is True and body["decisions"][0]["scope"] == {"team": "ml"}


def test_a_request_may_fail_open_or_closed_while_stale(
    stale_policy: tuple[Evaluator, ApiServer, Clock],
) -> None:
    _, server, _ = stale_policy
    opened = requests.get(
        f"{server.url}/v1/check", params={"team": "ml"}, headers={"X-Otelcost-When-Stale": "allow"}, timeout=5
    )
    assert opened.status_code == 200 and "failing open" in opened.json()["reason"]
    closed = requests.get(
        f"{server.url}/v1/check",
        params={"team": "search"},
        headers={"X-Otelcost-When-Stale": "deny"},
        timeout=5,
    )
    assert closed.status_code == 429 and closed.headers["Retry-After"] == "5"
    assert "failing closed" in closed.json()["reason"]
    wrong = requests.get(f"{server.url}/v1/check", headers={"X-Otelcost-When-Stale": "maybe"}, timeout=5)
    assert wrong.status_code == 400 and "X-Otelcost-When-Stale" in wrong.text


def test_check_when_stale_deny_fails_closed_until_redis_answers(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = {
        "store": redis_server.url,
        "store_prefix": f"p{secrets.token_hex(3)}",
        "store_timeout": "200ms",
    }
    evaluator, server, _ = run_policy(tmp_path, settings=settings, api={"check_when_stale": "deny"})
    try:
        assert requests.get(f"{server.url}/v1/check", params={"team": "search"}, timeout=5).status_code == 200
        redis_server.kill()
        evaluator.consume(calls(1, at=START, cost="1", team="search"))
        wait_until(lambda: evaluator.snapshot.stale, what="stale decisions")
        refused = requests.get(f"{server.url}/v1/check", params={"team": "search"}, timeout=5)
        assert refused.status_code == 429 and refused.headers["X-Otelcost-Stale"] == "true"
        redis_server.start()
        wait_until(lambda: not evaluator.snapshot.stale, timeout=15, what="Redis to answer again")
        fresh = requests.get(f"{server.url}/v1/check", params={"team": "search"}, timeout=5)
        assert fresh.status_code == 200 and "X-Otelcost-Stale" not in fresh.headers
    finally:
        server.stop()
        evaluator.shutdown()


def test_the_gateway_client_fails_as_told_on_a_stale_snapshot(
    stale_policy: tuple[Evaluator, ApiServer, Clock],
) -> None:
    _, server, _ = stale_policy
    trusting = PolicyClient(server.url, wait=1).start()
    failing = PolicyClient(server.url, wait=1, when_stale="fail", fail_mode="closed").start()
    try:
        for client in (trusting, failing):
            wait_until(partial(_holds_stale, client), what="a stale snapshot")
        assert trusting.check(team="search").allowed
        refused = failing.check(team="search")
        assert not refused.allowed and "stale" in refused.reason
    finally:
        trusting.close()
        failing.close()
