"""Probes, metrics and the start-up gate of the API, over real HTTP through the real app.

The process is a stand-in with the three things the health routes ask of ``Server``; the
end-to-end version, with a pipeline kept starting by a held lake lock, is
``tests/e2e/test_startup.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests
from prometheus_client import CollectorRegistry

from otelcost import metrics
from otelcost.api import build_api_app
from otelcost.api.health import ALWAYS_SERVED, Readiness
from otelcost.budgets import Evaluator
from otelcost.policy.config import ApiConfig
from tests.budgets.harness import ApiServer
from tests.policy.conftest import assert_error

pytestmark = pytest.mark.slow


@dataclass
class StartingProcess:
    pipeline_started: bool = False
    state: Readiness = field(default_factory=lambda: Readiness(ready=False, status="starting"))
    metrics_registry: CollectorRegistry = field(default_factory=metrics.build_registry)

    def readiness(self) -> Readiness:
        return self.state


@pytest.fixture
def served() -> Iterator[tuple[StartingProcess, str]]:
    evaluator = Evaluator(budgets=[], run_threads=False)
    evaluator.start()
    process = StartingProcess()
    config = ApiConfig.model_validate({"admin_token": "s3cret"})
    server = ApiServer(lambda: build_api_app(evaluator=evaluator, config=config, process=process)).start()
    try:
        yield process, server.url
    finally:
        server.stop()
        evaluator.shutdown()


def test_only_the_probes_answer_while_the_pipeline_starts(served: tuple[StartingProcess, str]) -> None:
    _, url = served
    assert requests.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}
    readyz = requests.get(f"{url}/readyz", timeout=5)
    assert (readyz.status_code, readyz.json()) == (503, {"status": "starting"})
    scraped = requests.get(f"{url}/metrics", timeout=5)
    assert scraped.status_code == 200 and scraped.headers["Content-Type"] == metrics.CONTENT_TYPE
    held_paths = ["/v1/decisions", "/v1/check?team=ml", "/v1/admin/budgets", "/no/such/route"]
    for path in held_paths:
        held = requests.get(f"{url}{path}", headers={"Authorization": "Bearer s3cret"}, timeout=5)
        assert_error(held, 503, "otelcost is starting")
        assert held.headers["Retry-After"] == "1"
    assert {"/healthz", "/readyz", "/metrics"} == ALWAYS_SERVED


def test_everything_answers_once_started_and_readyz_follows_the_process(
    served: tuple[StartingProcess, str],
) -> None:
    process, url = served
    process.pipeline_started = True
    process.state = Readiness(ready=False, status="not ready")
    assert requests.get(f"{url}/v1/decisions", timeout=5).status_code == 200
    assert requests.get(f"{url}/v1/check?team=ml", timeout=5).status_code == 200
    assert requests.get(f"{url}/readyz", timeout=5).json() == {"status": "not ready"}
    process.state = Readiness(ready=True, status="ready")
    readyz = requests.get(f"{url}/readyz", timeout=5)
    assert (readyz.status_code, readyz.json()) == (200, {"status": "ready"})
    process.state = Readiness(ready=False, status="no receiver worker is listening")
    assert requests.get(f"{url}/readyz", timeout=5).status_code == 503
