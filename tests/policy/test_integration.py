"""The issue's scenario end to end, over real HTTP, with a real webhook receiver and lake.

A team passes 80 % -> the webhook receiver gets exactly one alert; passes 120 % -> a long-polling
client sees the block and /v1/check answers 429 (403 in nginx mode); restart -> the same
decisions, rebuilt from the Parquet lake, and no alert repeated; the window rolls over -> allowed
again.
"""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pytest
import requests

from otelcost.api import build_api_app
from otelcost.budgets.config import BudgetingConfig
from otelcost.budgets.evaluator import Evaluator
from otelcost.budgets.rebuild import lake_query
from otelcost.policy.client import PolicyClient
from otelcost.policy.config import ApiConfig
from otelcost.policy.decisions import Action
from tests.budgets.harness import ApiServer, Clock, WebhookReceiver, decisions_of
from tests.budgets.lake import land
from tests.budgets.rows import at, calls
from tests.policy.conftest import TEAM_MONTHLY

pytestmark = pytest.mark.slow

NOW = at("2026-03-31T20:00:00")


def start(tmp_path: Path, clock: Clock, hook: WebhookReceiver) -> tuple[Evaluator, ApiServer]:
    settings = BudgetingConfig.model_validate(
        {"tick_interval": "50ms", "alerts": {"webhook_url": hook.url, "initial_backoff": "50ms"}}
    )
    evaluator = Evaluator(
        budgets=[TEAM_MONTHLY],
        settings=settings,
        state_dir=tmp_path / "state",
        lake=lake_query(tmp_path / "lake"),
        clock_ns=clock,
    )
    evaluator.start()
    server = ApiServer(lambda: build_api_app(evaluator=evaluator, config=ApiConfig(), clock_ns=clock)).start()
    return evaluator, server


def test_alert_block_restart_rollover(tmp_path: Path) -> None:
    clock = Clock(NOW)
    landed: list[pa.Table] = []

    def spend(evaluator: Evaluator, usd: str, team: str = "ml") -> None:
        batch = calls(1, at=NOW, cost=usd, team=team)
        evaluator.consume(batch)
        landed.append(batch)

    with WebhookReceiver() as hook:
        hook.fail_next(503)  # the first delivery fails once: it is retried, not lost or doubled
        evaluator, server = start(tmp_path, clock, hook)
        client = PolicyClient(server.url, wait=20, clock_ns=clock).start()
        try:
            assert client.wait_for_version(1)
            spend(evaluator, "60")  # 60 %: the 50 % alert
            assert hook.wait_for(1)
            spend(evaluator, "21")  # 81 %: the 80 % alert, exactly once ...
            spend(evaluator, "4")
            spend(evaluator, "5")  # ... however much more is spent below 100 %
            assert hook.wait_for(2)
            time.sleep(0.3)  # time for a third alert to arrive: none may
            assert [a["threshold"] for a in hook.requests] == ["0.5", "0.8"]
            alert = hook.requests[1]
            assert alert["budget"] == "team-monthly" and alert["scope"] == {"team": "ml"}
            assert alert["action"] == "notify" and alert["spent"] == "81" and alert["limit"] == "100"
            assert "passed 80%" in alert["text"] and "team=ml" in alert["text"]
            assert hook.headers[1]["X-Otelcost-Alert-Id"] == alert["alert_id"]
            assert hook.statuses[0] == 503  # the retried delivery

            spend(evaluator, "31")  # 121 %
            assert client.wait_for_version(evaluator.snapshot.version, timeout=5)
            seen = client.check(team="ml")
            assert seen.action is Action.BLOCK and seen.decision is not None
            assert seen.decision.window_end_ns == int(at("2026-04-01T00:00:00").timestamp()) * 10**9
            check = requests.get(f"{server.url}/v1/check", params={"team": "ml"}, timeout=5)
            assert check.status_code == 429 and check.headers["Retry-After"] == str(4 * 3600)
            nginx = requests.get(f"{server.url}/v1/check?team=ml&deny_status=403", timeout=5)
            assert nginx.status_code == 403 and nginx.headers["X-Otelcost-Action"] == "block"
            assert requests.get(f"{server.url}/v1/check?team=search", timeout=5).status_code == 200
            assert hook.wait_for(4)
            assert [a["threshold"] for a in hook.requests] == ["0.5", "0.8", "1", "1.2"]
            before = decisions_of(evaluator.snapshot)
            before_spent = [d.spent for d in evaluator.snapshot.decisions]
        finally:
            client.close()
            server.stop()
            evaluator.shutdown()

        # Restart: the lake writer had flushed everything; totals come back from it.
        land(tmp_path / "lake", *landed)
        evaluator, server = start(tmp_path, clock, hook)
        client = PolicyClient(server.url, wait=20, clock_ns=clock).start()
        try:
            assert decisions_of(evaluator.snapshot) == before == [("team-monthly", "team=ml", "block")]
            assert [d.spent for d in evaluator.snapshot.decisions] == before_spent
            assert client.wait_for_version(1)
            assert client.check(team="ml").action is Action.BLOCK
            assert requests.get(f"{server.url}/v1/check?team=ml", timeout=5).status_code == 429
            spend(evaluator, "1")
            time.sleep(0.3)  # time for an alert to arrive: none may
            assert len(hook.requests) == 4  # nothing alerted twice after the restart

            # The month ends: the window rolls over by time alone.
            version = evaluator.snapshot.version
            clock.set(at("2026-04-01T00:00:01"))
            assert client.wait_for_version(version + 1, timeout=5)
            assert client.check(team="ml").allowed
            assert requests.get(f"{server.url}/v1/check?team=ml", timeout=5).status_code == 200
            assert evaluator.snapshot.decisions == ()
        finally:
            client.close()
            server.stop()
            evaluator.shutdown()
