"""The nginx configuration in docs/gateway-integration.md, run in a real nginx.

Skipped when no nginx (with the auth_request module) is installed. The configuration block is
read from the document itself, so the documentation is what is tested.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.budgets.rows import calls
from tests.policy.conftest import START, Running
from tests.policy.nginx_run import documented_config, nginx_serving, provider_double

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed"),
]


@pytest.fixture
def upstream() -> Iterator[str]:
    with provider_double() as (url, _):
        yield url


@pytest.fixture
def nginx(tmp_path: Path, running: Running, upstream: str) -> Iterator[str]:
    api_address = f"127.0.0.1:{running.server.port}"
    with nginx_serving(tmp_path, documented_config(), api_address=api_address, upstream=upstream) as url:
        yield url


def test_documented_nginx_config_allows_and_refuses_with_429(running: Running, nginx: str) -> None:
    allowed = requests.post(f"{nginx}/v1/chat/completions", headers={"X-Team": "ml"}, json={}, timeout=5)
    assert allowed.status_code == 200 and allowed.json() == {"upstream": "ok"}
    running.evaluator.consume(calls(1, at=START, cost="130", team="ml"))
    refused = requests.post(f"{nginx}/v1/chat/completions", headers={"X-Team": "ml"}, json={}, timeout=5)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == str(18 * 86400 - 10 * 3600)
    assert refused.headers["X-Otelcost-Action"] == "block"
    assert "budget exceeded: budget team-monthly (team=ml)" in refused.text
    other_team = requests.post(
        f"{nginx}/v1/chat/completions", headers={"X-Team": "search"}, json={}, timeout=5
    )
    assert other_team.status_code == 200
