"""The gateway-side client: long polls, answers locally, survives the endpoint going away."""

from __future__ import annotations

import gc
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otelcost.policy.client import PolicyClient
from otelcost.policy.decisions import Action
from tests.budgets.rows import calls
from tests.policy.conftest import START, Running, run_policy
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


# Stopping an in-process server under a live long-polling client can leave a connection it
# accepted in the last instant to be closed by the garbage collector, not by aiohttp: a
# ResourceWarning about the test harness, not about the client under test. The tests that
# stop a server under a client ignore it, and collect garbage before they end so that the
# warning cannot surface in whichever test runs next.
_STOP_UNDER_CLIENT = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning", "ignore::ResourceWarning"
)


@pytest.fixture(autouse=True)
def _collect_garbage_before_the_next_test() -> Iterator[None]:
    yield
    gc.collect()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_long_polling_client_sees_changes_and_checks_locally(running: Running) -> None:
    with PolicyClient(running.url, wait=20, clock_ns=running.clock) as client:
        assert client.wait_for_version(1)
        assert client.check(team="ml").allowed
        running.evaluator.consume(calls(1, at=START, cost="130", team="ml"))
        assert client.wait_for_version(running.evaluator.snapshot.version, timeout=5)
        result = client.check({"team": "ml", "user_id": "u1"})
        assert result.action is Action.BLOCK and not result.allowed
        assert result.retry_after is not None and result.retry_after > 0
        assert client.check(team="search").allowed
        # Answered from memory: microseconds, no I/O.
        started = time.perf_counter()
        for _ in range(10_000):
            client.check(team="ml", user_id="u1")
        assert (time.perf_counter() - started) / 10_000 < 100e-6


def test_protobuf_client(running: Running) -> None:
    running.evaluator.consume(calls(1, at=START, cost="90", team="ml"))
    with PolicyClient(running.url, protobuf=True, clock_ns=running.clock) as client:
        assert client.wait_for_version(running.evaluator.snapshot.version)
        assert client.check(team="ml").action is Action.NOTIFY


@pytest.mark.parametrize(("mode", "allowed"), [("open", True), ("closed", False)])
def test_fail_mode_applies_when_the_endpoint_was_never_reached(mode: str, allowed: bool) -> None:
    with PolicyClient(f"http://127.0.0.1:{free_port()}", fail_mode=mode) as client:  # type: ignore[arg-type]
        wait_until(lambda: client.failures >= 1 and client.last_error, what="the first failed poll")
        result = client.check(team="ml")
        assert result.allowed is allowed
        assert f"failing {mode}" in result.reason
        assert client.failures >= 1 and client.last_error


@_STOP_UNDER_CLIENT
def test_the_last_snapshot_keeps_serving_when_the_endpoint_goes_away(tmp_path: Path) -> None:
    evaluator, server, clock = run_policy(tmp_path)
    evaluator.consume(calls(1, at=START, cost="130", team="ml"))
    client = PolicyClient(server.url, fail_mode="open", wait=1, max_staleness=3600, clock_ns=clock).start()
    try:
        assert client.wait_for_version(evaluator.snapshot.version)
        server.stop()
        evaluator.shutdown()
        # The long poll in flight ends (or, if its connection was accepted just as the
        # in-process server stopped, times out after wait + 10 s) and reconnecting fails.
        wait_until(lambda: client.failures > 0, timeout=15, poll=0.05, what="a failed poll")
        assert client.failures >= 1
        assert client.check(team="ml").action is Action.BLOCK  # still the last snapshot
        clock.advance(3601)  # past max_staleness: now fail_mode decides
        stale = client.check(team="ml")
        assert stale.allowed and "stale" in stale.reason
    finally:
        client.close()


@_STOP_UNDER_CLIENT
def test_closed_client_refuses_once_stale(tmp_path: Path) -> None:
    evaluator, server, clock = run_policy(tmp_path)
    client = PolicyClient(server.url, fail_mode="closed", wait=1, max_staleness=60, clock_ns=clock).start()
    try:
        assert client.wait_for_version(1)
        assert client.check(team="ml").allowed
        server.stop()
        evaluator.shutdown()
        clock.advance(61)
        assert client.check(team="ml").action is Action.BLOCK
    finally:
        client.close()


@_STOP_UNDER_CLIENT
def test_a_restarted_server_is_picked_up(tmp_path: Path) -> None:
    evaluator, server, clock = run_policy(tmp_path)
    port = server.port
    client = PolicyClient(server.url, wait=1, clock_ns=clock).start()
    try:
        assert client.wait_for_version(1)
        first_epoch = client.snapshot.epoch if client.snapshot else None
        server.stop()
        evaluator.shutdown()
        evaluator2, server2, _ = run_policy(tmp_path / "again", clock=clock)
        try:
            client.url = f"{server2.url}/v1/decisions"  # a new port: point the client at it
            evaluator2.consume(calls(1, at=START, cost="130", team="ml"))
            # A poll cut by the in-process stop may take wait + 10 s.
            wait_until(
                lambda: not client.check(team="ml").allowed,
                timeout=20,
                poll=0.05,
                what="the block from the restarted server",
            )
            assert not client.check(team="ml").allowed
            assert client.snapshot is not None and client.snapshot.epoch != first_epoch
        finally:
            server2.stop()
            evaluator2.shutdown()
    finally:
        client.close()
    assert port
