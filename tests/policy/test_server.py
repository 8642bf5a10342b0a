"""The policy endpoint over real HTTP: snapshots, ETag/304, long polls, checks, protobuf."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import pytest
import requests
from aiohttp import web

from otelcost._proto.otelcost.policy.v1 import decisions_pb2
from otelcost.api import build_api_app, waiting_pollers
from otelcost.budgets.evaluator import Evaluator
from otelcost.policy.config import ApiConfig
from otelcost.policy.encoding import snapshot_from_json, snapshot_from_protobuf
from tests.budgets.harness import ApiServer
from tests.budgets.rows import calls
from tests.policy.conftest import START, Running, assert_error
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


def spend(running: Running, team: str, usd: str) -> None:
    running.evaluator.consume(calls(1, at=START, cost=usd, team=team))


def test_snapshot_etag_and_304(running: Running) -> None:
    first = requests.get(f"{running.url}/v1/decisions", timeout=5)
    assert first.status_code == 200
    assert first.headers["Content-Type"].startswith("application/json")
    etag = first.headers["ETag"]
    body = first.json()
    assert etag == f'"{body["etag"]}"' and body["decisions"] == []
    assert body["computed_at"] == "2026-03-14T10:00:00Z" and body["as_of"] is None
    unchanged = requests.get(f"{running.url}/v1/decisions", headers={"If-None-Match": etag}, timeout=5)
    assert unchanged.status_code == 304 and unchanged.headers["ETag"] == etag and unchanged.content == b""
    spend(running, "ml", "60")
    changed = requests.get(f"{running.url}/v1/decisions", headers={"If-None-Match": etag}, timeout=5)
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    (decision,) = changed.json()["decisions"]
    assert decision["scope"] == {"team": "ml"} and decision["action"] == "notify"
    assert decision["spent"] == "60" and decision["limit"] == "100" and decision["percent"] == 60.0
    assert decision["window_end"] == "2026-04-01T00:00:00Z"
    assert decision["as_of"] == "2026-03-14T10:00:01Z"  # freshness: receive time of the newest call
    assert snapshot_from_json(changed.content).decisions == running.evaluator.snapshot.decisions


def test_long_poll_returns_as_soon_as_the_version_changes(running: Running) -> None:
    etag = requests.get(f"{running.url}/v1/decisions", timeout=5).headers["ETag"]
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        future = pool.submit(
            requests.get, f"{running.url}/v1/decisions?wait=20s", headers={"If-None-Match": etag}, timeout=30
        )
        time.sleep(0.3)  # time passes, and the long poll may not answer without a change
        assert not future.done()
        changed_at = time.monotonic()
        spend(running, "ml", "130")
        response = future.result(timeout=10)
    assert response.status_code == 200
    assert time.monotonic() - changed_at < 2.0 and changed_at - started >= 0.3
    assert response.json()["decisions"][0]["action"] == "block"


def test_long_poll_times_out_with_304(running: Running) -> None:
    etag = requests.get(f"{running.url}/v1/decisions", timeout=5).headers["ETag"]
    started = time.monotonic()
    response = requests.get(
        f"{running.url}/v1/decisions?wait=0.5", headers={"If-None-Match": etag}, timeout=5
    )
    assert response.status_code == 304 and time.monotonic() - started >= 0.45
    opa_style = requests.get(
        f"{running.url}/v1/decisions",
        headers={"If-None-Match": etag, "Prefer": "modes=snapshot;wait=1"},
        timeout=5,
    )
    assert opa_style.status_code == 304
    assert_error(requests.get(f"{running.url}/v1/decisions?wait=soon", timeout=5), 400, "wait")


def test_protobuf_snapshot_decodes(running: Running) -> None:
    spend(running, "ml", "125")
    response = requests.get(
        f"{running.url}/v1/decisions", headers={"Accept": "application/x-protobuf"}, timeout=5
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-protobuf"
    assert response.headers["ETag"].endswith('.pb"')
    message = decisions_pb2.DecisionSnapshot.FromString(response.content)
    assert message.decisions[0].action == decisions_pb2.ACTION_BLOCK
    assert message.decisions[0].spent == "125"
    assert message.decisions[0].window_end_unix_nano > message.computed_at_unix_nano
    assert snapshot_from_protobuf(response.content).decisions == running.evaluator.snapshot.decisions
    again = requests.get(
        f"{running.url}/v1/decisions",
        headers={"Accept": "application/x-protobuf", "If-None-Match": response.headers["ETag"]},
        timeout=5,
    )
    assert again.status_code == 304


def test_check_answers_200_or_429_with_retry_after(running: Running) -> None:
    allowed = requests.get(f"{running.url}/v1/check", params={"team": "ml", "user_id": "u1"}, timeout=5)
    assert allowed.status_code == 200 and allowed.json()["allowed"] is True
    assert allowed.headers["X-Otelcost-Action"] == "allow"
    spend(running, "ml", "125")
    blocked = requests.get(f"{running.url}/v1/check", params={"team": "ml"}, timeout=5)
    assert blocked.status_code == 429
    assert blocked.headers["Retry-After"] == str(18 * 86400 - 10 * 3600)  # to April 1st, 00:00 UTC
    assert blocked.headers["X-Otelcost-Action"] == "block"
    assert blocked.headers["X-Otelcost-Budget"] == "team-monthly"
    body = blocked.json()
    assert body["allowed"] is False and body["action"] == "block"
    assert "125 of 100 USD" in body["reason"]
    decision = body["decisions"][0]
    assert (decision["budget"], decision["spent"], decision["limit"]) == ("team-monthly", "125", "100")
    assert decision["window_end"] == "2026-04-01T00:00:00Z"
    other = requests.get(f"{running.url}/v1/check", headers={"X-Otelcost-Team": "search"}, timeout=5)
    assert other.status_code == 200


def test_check_deny_status_for_nginx(running: Running) -> None:
    spend(running, "ml", "105")  # throttle
    query = requests.get(f"{running.url}/v1/check?team=ml&deny_status=403", timeout=5)
    header = requests.get(
        f"{running.url}/v1/check",
        headers={"X-Otelcost-Team": "ml", "X-Otelcost-Deny-Status": "403"},
        timeout=5,
    )
    for response in (query, header):
        assert response.status_code == 403
        assert response.headers["X-Otelcost-Action"] == "throttle"
        assert int(response.headers["X-Otelcost-Retry-After"]) > 0
    assert_error(requests.get(f"{running.url}/v1/check?deny_status=500", timeout=5), 400, "4xx")


def test_check_in_envoy_prefix_form_uses_headers_only(running: Running) -> None:
    spend(running, "ml", "130")
    # Envoy (path_prefix: /v1/check) sends the client's method, path and query after the prefix.
    blocked = requests.post(
        f"{running.url}/v1/check/v1/chat/completions?team=search",
        headers={"X-Otelcost-Team": "ml", "Content-Length": "0"},
        timeout=5,
    )
    assert blocked.status_code == 429
    ignored_query = requests.post(f"{running.url}/v1/check/v1/chat/completions?team=ml", timeout=5)
    assert ignored_query.status_code == 200


def test_check_refuses_unknown_dimensions(running: Running) -> None:
    assert_error(requests.get(f"{running.url}/v1/check?teem=ml", timeout=5), 400, "unknown dimension 'teem'")
    underscored = requests.get(f"{running.url}/v1/check", headers={"X-Otelcost-User-Id": "u1"}, timeout=5)
    assert underscored.json()["dimensions"] == {"user_id": "u1"}


def test_a_thousand_long_pollers_wake_together(running: Running) -> None:
    etag = requests.get(f"{running.url}/v1/decisions", timeout=5).headers["ETag"]
    pollers = 1000
    results: list[int] = []
    done = threading.Event()

    async def poll_all() -> None:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one() -> None:
                async with session.get(
                    f"{running.url}/v1/decisions?wait=30s", headers={"If-None-Match": etag}
                ) as response:
                    await response.read()
                    results.append(response.status)

            await asyncio.gather(*(one() for _ in range(pollers)))
        done.set()

    thread = threading.Thread(target=asyncio.run, args=(poll_all(),), daemon=True)
    thread.start()
    assert running.server.app is not None
    app = running.server.app
    wait_until(
        lambda: waiting_pollers(app) >= pollers, timeout=30, poll=0.05, what=f"{pollers} waiting pollers"
    )
    assert waiting_pollers(running.server.app) == pollers
    started = time.monotonic()
    spend(running, "ml", "90")
    assert done.wait(30)
    elapsed = time.monotonic() - started
    assert results == [200] * pollers
    assert elapsed < 10, f"{pollers} pollers took {elapsed:.2f}s to answer"


def test_extra_routes_are_served(tmp_path: object) -> None:
    evaluator = Evaluator(budgets=[], run_threads=False)
    evaluator.start()

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = lambda: build_api_app(  # noqa: E731
        evaluator=evaluator, config=ApiConfig(), extra_routes=[web.get("/healthz", healthz)]
    )
    with ApiServer(app) as server:
        assert requests.get(f"{server.url}/healthz", timeout=5).json() == {"status": "ok"}
        assert requests.get(f"{server.url}/v1/decisions", timeout=5).status_code == 200
