"""While the pipeline starts (lake recovery, budget rebuild, spool replay), the API listener
already answers health probes, and holds policy requests back rather than answer them from
budgets that have not seen the lake yet."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests

from otelcost.lake.locking import lake_lock
from otelcost.server import BackgroundServer
from tests.e2e.conftest import loopback_config
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


def test_health_answers_and_policy_waits_while_the_pipeline_starts(tmp_path: Path) -> None:
    config = loopback_config(tmp_path / "data")
    background = BackgroundServer(config)
    starter = threading.Thread(target=background.start)
    # An exclusive lake lock (what `otelcost reprice` holds while it rewrites a day) keeps the
    # lake writer's start-up recovery, and so the whole pipeline start, waiting.
    with lake_lock(config.lake_dir):
        starter.start()
        api_port = wait_until(
            lambda: background.server.api_port,
            timeout=10,
            poll=0.02,
            what="the API listener to come up first",
        )
        api = f"http://127.0.0.1:{api_port}"
        assert requests.get(f"{api}/healthz", timeout=5).json() == {"status": "ok"}
        starting = requests.get(f"{api}/readyz", timeout=5)
        assert (starting.status_code, starting.json()) == (503, {"status": "starting"})
        assert requests.get(f"{api}/metrics", timeout=5).status_code == 200
        for path in ("/v1/check?team=payments", "/v1/decisions"):
            held = requests.get(f"{api}{path}", timeout=5)
            assert held.status_code == 503, path
            assert held.headers["Retry-After"] == "1"
            error = held.json()["error"]  # the API's one error shape, as every other error
            assert error["status"] == 503 and "starting" in error["message"], error
        assert starter.is_alive(), "the server finished starting while the lake was locked"
    starter.join(timeout=30)
    try:
        assert requests.get(f"{api}/readyz", timeout=5).json() == {"status": "ready"}
        assert requests.get(f"{api}/v1/check", params={"team": "payments"}, timeout=5).status_code == 200
        assert background.server.grpc is not None and background.server.grpc.port
    finally:
        background.stop()
