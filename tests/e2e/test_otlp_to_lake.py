"""Spans from the real OpenTelemetry SDK and OTLP exporters land as priced rows in the lake.

The lake is read back through ``otelcost sql`` (the analyst's path), and every column of the
record contract is checked for a call whose cost is computed by hand from the price sheet.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Status, StatusCode

from otelcost.cli import main
from otelcost.server import BackgroundServer

pytestmark = pytest.mark.slow

START = datetime(2026, 11, 20, 23, 59, 59, 500_000, tzinfo=UTC)
START_NS = int(START.timestamp() * 1e9)
END_NS = START_NS + 1_250_000_000  # 1.25 s later, across midnight: the partition follows ts


def sql(data_dir: Path, query: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(main, ["sql", "--data-dir", str(data_dir), "--format", "json", query])
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.output)
    return rows


@contextmanager
def provider_for(exporter: SpanExporter) -> Iterator[TracerProvider]:
    resource = Resource.create(
        {"service.name": "checkout", "deployment.environment.name": "staging", "cloud.region": "eu-west-1"}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield provider
    finally:
        provider.shutdown()


def send_agent_with_chat(provider: TracerProvider) -> tuple[int, int, int]:
    tracer = provider.get_tracer("acme.llm", "2.1.0")
    agent = tracer.start_span(
        "invoke_agent checkout-helper",
        start_time=START_NS - 1_000_000,
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "checkout-helper"},
    )
    with trace.use_span(agent, end_on_exit=False):
        chat = tracer.start_span(
            "chat gpt-4o",
            start_time=START_NS,
            attributes={
                "gen_ai.provider.name": "openai",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.usage.input_tokens": 1_000,
                "gen_ai.usage.cache_read.input_tokens": 200,
                "gen_ai.usage.output_tokens": 500,
                "app.team": "payments",
                "app.feature": "receipt-qa",
                "user.id": "u-42",
                "session.id": "s-7",
                "app.tenant": "acme-corp",
                "error.type": "timeout",
            },
        )
        chat.set_status(Status(StatusCode.ERROR, "upstream timed out"))
        chat.end(end_time=END_NS)
    agent.end(end_time=END_NS + 1_000_000)
    context = chat.get_span_context()
    return context.trace_id, context.span_id, agent.get_span_context().span_id


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_every_column_of_a_call_sent_by_the_sdk(running: BackgroundServer, protocol: str) -> None:
    server = running.server
    assert server.grpc is not None and server.http is not None
    exporter: SpanExporter
    if protocol == "grpc":
        exporter = GrpcSpanExporter(endpoint=f"127.0.0.1:{server.grpc.port}", insecure=True, timeout=5)
    else:
        exporter = HttpSpanExporter(endpoint=f"http://127.0.0.1:{server.http.port}/v1/traces", timeout=5)
    with provider_for(exporter) as provider:
        trace_id, span_id, agent_span_id = send_agent_with_chat(provider)
    running.stop()  # drains and flushes the lake

    data_dir = server.config.data_dir
    rows = sql(data_dir, "SELECT * FROM llm_calls")
    assert len(rows) == 1, "the agent span carries no usage: it is not a call"
    row = rows[0]

    assert row["ts"].startswith("2026-11-20T23:59:59.5")
    assert row["end_ts"].startswith("2026-11-21T00:00:00.75")
    assert row["duration_ms"] == pytest.approx(1250.0)
    assert row["date"] == "2026-11-20"
    assert row["trace_id"] == f"{trace_id:032x}"
    assert row["span_id"] == f"{span_id:016x}"
    assert row["parent_span_id"] == f"{agent_span_id:016x}"
    assert row["span_name"] == "chat gpt-4o"
    assert row["service"] == "checkout"
    assert row["environment"] == "staging"
    assert row["scope_name"] == "acme.llm"
    assert row["convention"] == "gen_ai"
    assert row["provider"] == "openai"
    assert row["operation"] == "chat"
    assert row["request_model"] == "gpt-4o"
    assert row["response_model"] == "gpt-4o-2024-08-06"
    assert row["model"] is not None and row["model"].startswith("gpt-4o")
    assert row["service_tier"] == "standard"
    assert (row["input_tokens"], row["output_tokens"]) == (1_000, 500)
    assert (row["cache_read_tokens"], row["cache_write_tokens"], row["reasoning_tokens"]) == (200, 0, 0)

    # gpt-4o-2024-08-06 list prices: 2.50 USD / 1M input, 1.25 cached input, 10.00 output.
    assert Decimal(row["input_cost_usd"]) == Decimal("0.002")  # 800 uncached x 2.50e-6
    assert Decimal(row["cache_read_cost_usd"]) == Decimal("0.00025")  # 200 x 1.25e-6
    assert Decimal(row["cache_write_cost_usd"]) == 0
    assert Decimal(row["output_cost_usd"]) == Decimal("0.005")  # 500 x 10e-6
    assert Decimal(row["reasoning_cost_usd"]) == 0
    assert Decimal(row["cost_usd"]) == Decimal("0.00725")
    assert Decimal(row["effective_cost_usd"]) == Decimal("0.00725")
    assert row["price_ref"]
    assert row["pricing_status"] == "priced"

    assert row["team"] == "payments"
    assert row["feature"] == "receipt-qa"
    assert row["user_id"] == "u-42"
    assert row["session_id"] == "s-7"
    assert row["tenant_id"] == "acme-corp"
    assert row["workflow"] in (None, "checkout-helper")  # inherited from the agent span if supported
    assert row["project"] is None and row["cost_center"] is None
    assert row["attribution_status"] == "complete"
    assert row["missing_dimensions"] in (None, [])

    assert row["status"] == "error"
    assert row["error_type"] == "timeout"
    assert row["attributes"]["app.team"] == "payments"
    assert row["attributes"]["gen_ai.usage.input_tokens"] == "1000"
    assert row["resource_attributes"]["cloud.region"] == "eu-west-1"
    assert row["resource_attributes"]["service.name"] == "checkout"
    received = datetime.fromisoformat(row["received_at"])
    assert abs((datetime.now(UTC) - received).total_seconds()) < 120


def otlp_json_request(trace_id: str, span_id: str) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "handmade"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": "chat claude",
                                "kind": 3,
                                "startTimeUnixNano": str(START_NS),
                                "endTimeUnixNano": str(END_NS),
                                "attributes": [
                                    {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                    {
                                        "key": "gen_ai.request.model",
                                        "value": {"stringValue": "gpt-4o-2024-08-06"},
                                    },
                                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "4000"}},
                                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 100}},
                                    {"key": "app.team", "value": {"stringValue": "search"}},
                                ],
                                "status": {},
                            }
                        ],
                    }
                ],
            }
        ]
    }


def test_otlp_http_json_and_gzip_land_with_hex_ids_intact(running: BackgroundServer) -> None:
    server = running.server
    assert server.http is not None
    url = f"http://127.0.0.1:{server.http.port}/v1/traces"
    plain = otlp_json_request("5B8EFFF798038103D269B633813FC60C", "EEE19B7EC3C1B174")
    response = requests.post(url, json=plain, timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")

    zipped = gzip.compress(
        json.dumps(otlp_json_request("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")).encode()
    )
    response = requests.post(
        url, data=zipped, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}, timeout=5
    )
    assert response.status_code == 200, response.text
    running.stop()

    rows = sql(
        server.config.data_dir, "SELECT trace_id, span_id, service, cost_usd FROM llm_calls ORDER BY trace_id"
    )
    assert [(r["trace_id"], r["span_id"], r["service"]) for r in rows] == [
        ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "json-svc"),
        ("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "json-svc"),
    ]
    # 4,000 x 2.50e-6 + 100 x 10e-6
    assert {Decimal(r["cost_usd"]) for r in rows} == {Decimal("0.011")}
