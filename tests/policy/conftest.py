"""A running policy endpoint on a free loopback port, backed by a real evaluator."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from otelcost.api import build_api_app
from otelcost.budgets.config import BudgetConfig, BudgetingConfig
from otelcost.budgets.evaluator import Evaluator
from otelcost.policy.config import ApiConfig
from tests.budgets.harness import ApiServer, Clock
from tests.budgets.rows import at

START = at("2026-03-14T10:00:00")

TEAM_MONTHLY = BudgetConfig.model_validate(
    {
        "name": "team-monthly",
        "scope": {"team": "*"},
        "window": "month",
        "limit": 100,
        "thresholds": [
            {"at": 0.5, "action": "notify"},
            {"at": 0.8, "action": "notify"},
            {"at": 1.0, "action": "throttle"},
            {"at": 1.2, "action": "block"},
        ],
    }
)


@dataclass
class Running:
    evaluator: Evaluator
    server: ApiServer
    clock: Clock

    @property
    def url(self) -> str:
        return self.server.url


def run_policy(
    tmp_path: Path,
    *,
    api: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    clock: Clock | None = None,
) -> tuple[Evaluator, ApiServer, Clock]:
    clock = clock or Clock(START)
    evaluator = Evaluator(
        budgets=[TEAM_MONTHLY],
        settings=BudgetingConfig.model_validate(settings or {}),
        state_dir=tmp_path / "state",
        clock_ns=clock,
        run_threads=False,
    )
    evaluator.start()
    config = ApiConfig.model_validate(api or {})
    server = ApiServer(lambda: build_api_app(evaluator=evaluator, config=config, clock_ns=clock)).start()
    return evaluator, server, clock


@contextmanager
def policy_running(tmp_path: Path, *, api: dict[str, Any] | None = None) -> Iterator[Running]:
    """:func:`run_policy`, stopped again when the block ends."""
    evaluator, server, clock = run_policy(tmp_path, api=api)
    try:
        yield Running(evaluator, server, clock)
    finally:
        server.stop()
        evaluator.shutdown()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    with policy_running(
        tmp_path, api={"admin_token": "s3cret", "admin_tokens": {"alice": "a-token"}}
    ) as live:
        yield live


def assert_error(response: Any, status: int, fragment: str) -> None:
    """Every API error has one shape: {"error": {"status": N, "message": "..."}}."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == status
    assert fragment in body["error"]["message"], body["error"]["message"]
