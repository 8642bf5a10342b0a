"""Budgets end to end: spans in over OTLP, a gateway's client and /v1/check see the decision.

Everything is real: the OpenTelemetry SDK's gRPC exporter, ``otelcost serve``'s server on
loopback ports, a webhook receiver, the gateway-side PolicyClient long-polling the API, and a
restart on the same data directory.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.util.types import AttributeValue

from otelcost.policy.client import PolicyClient
from otelcost.server import BackgroundServer
from tests.e2e.conftest import loopback_config
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

BUDGET = {
    "name": "team-daily-calls",
    "scope": {"team": "*"},
    "window": "day",
    "metric": "requests",
    "limit": 10,
    "thresholds": [{"at": 0.8, "action": "notify"}, {"at": 1.0, "action": "block"}],
}


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def send_calls(grpc_port: int, team: str, count: int) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "agent"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{grpc_port}", insecure=True))
    )
    tracer = provider.get_tracer("agent")
    for _ in range(count):
        attributes: dict[str, AttributeValue] = {
            "gen_ai.provider.name": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 10,
            "app.team": team,
        }
        with tracer.start_as_current_span("chat gpt-4o-mini", attributes=attributes):
            pass
    provider.shutdown()


def check(api_port: int, team: str) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{api_port}/v1/check", params={"team": team}, timeout=5)


def test_spend_over_otlp_blocks_a_team_and_survives_a_restart(
    tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, alerts = webhook
    config = loopback_config(
        tmp_path / "data",
        budgets=[BUDGET],
        budgeting={"alerts": {"webhook_url": url, "initial_backoff": "100ms"}},
    )
    with BackgroundServer(config) as running:
        server = running.server
        assert server.grpc is not None and server.api_port is not None
        client = PolicyClient(f"http://127.0.0.1:{server.api_port}", wait=5).start()
        try:
            send_calls(server.grpc.port, "payments", 8)  # 80%: notify, still allowed
            wait_until(lambda: len(alerts) >= 1, timeout=10, poll=0.02, what="the 80% alert")
            time.sleep(0.5)  # a second alert for the same crossing would arrive by now
            assert len(alerts) == 1
            assert "text" in alerts[0]  # Slack-compatible
            assert client.check(team="payments").allowed
            assert check(server.api_port, "payments").status_code == 200

            send_calls(server.grpc.port, "payments", 2)  # 100%: block
            wait_until(
                lambda: not client.check(team="payments").allowed,
                timeout=10,
                poll=0.02,
                what="the block to reach the client",
            )
            denied = check(server.api_port, "payments")
            assert denied.status_code == 429
            assert int(denied.headers["Retry-After"]) > 0
            assert check(server.api_port, "search").status_code == 200  # other teams are independent
        finally:
            client.close()

    with BackgroundServer(config) as restarted:  # open windows are rebuilt from the lake
        assert restarted.server.api_port is not None
        assert check(restarted.server.api_port, "payments").status_code == 429
        assert check(restarted.server.api_port, "search").status_code == 200
        time.sleep(0.5)  # time for a re-sent alert to arrive: none may
    assert len(alerts) == 2  # notify at 80% and block at 100%, each once; nothing re-sent on restart
