"""The whole pipeline: spans from the real OpenTelemetry SDK in, priced lake rows out.

Spans go through the OTLP/HTTP exporter to a real otelcost server (``BackgroundServer`` on
loopback ports), are normalized, priced by the shipped catalog plus a user catalog and contract
discounts, written to the Parquet lake and read back with DuckDB. Every expected amount is worked
out by hand in the comments from the rates on the provider's price sheet (tokens x USD per 1M /
1,000,000), never from the engine. Then ``/metrics`` must count the unknown model, and
``otelcost reprice --since`` (the issue's spelling) must price it after a catalog correction,
rewriting only what changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otelcost.cli import main
from otelcost.config import load_config
from otelcost.lake.query import run_query
from otelcost.server import BackgroundServer

pytestmark = pytest.mark.slow

D = Decimal

USER_CATALOG = """
provider: acme
source: {url: "https://wiki.acme.internal/llm-costs", read: 2026-11-01}
models:
  - id: acme-summarizer-v2
    versions:
      - effective_from: 2026-01-01
        prices:
          amortized:
            usd_per_hour: "32.77"
            input_tokens_per_hour: 400000000
            output_tokens_per_hour: 20000000
            output_weight: 5
"""

CORRECTION = """
provider: openai
source: {url: "https://example.com/negotiated", read: 2026-11-25}
models:
  - id: gpt-99
    versions:
      - prices: {input: "3.00", output: "12.00"}
"""


def _ns(text: str) -> int:
    moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000


# (span id, start time UTC, span attributes, expected lake values). Money in USD, exact.
CALLS: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    (
        "openai plain + cached read, 12.5% contract discount",
        "2026-11-20T10:00:00",
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 1_000,
            "gen_ai.usage.cache_read.input_tokens": 200,
            "gen_ai.usage.output_tokens": 500,
        },
        # 800 x 2.50 = 0.002; 200 x 1.25 = 0.00025; 500 x 10.00 = 0.005; x 0.875 = 0.00634375
        {
            "input_cost_usd": D("0.002"),
            "cache_read_cost_usd": D("0.00025"),
            "output_cost_usd": D("0.005"),
            "cost_usd": D("0.00725"),
            "effective_cost_usd": D("0.00634375"),
            "price_ref": "openai/gpt-4o-2024-08-06@2024-08-06",
            "model": "gpt-4o-2024-08-06",
        },
    ),
    (
        "o3 the second before the 2025-06-10 price cut; priority not priced then: standard",
        "2025-06-09T23:59:59",
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "o3",
            "gen_ai.response.model": "o3-2025-04-16",
            "openai.response.service_tier": "priority",
            "gen_ai.usage.input_tokens": 10_000,
            "gen_ai.usage.cache_read.input_tokens": 2_000,
            "gen_ai.usage.output_tokens": 3_000,
            "gen_ai.usage.reasoning.output_tokens": 2_500,
        },
        # 10 / 2.50 / 40: 8000 x 10 = 0.08; 2000 x 2.50 = 0.005; 500 x 40 = 0.02;
        # 2500 x 40 = 0.1; total 0.205, x 0.875 = 0.179375
        {
            "service_tier": "priority",
            "input_cost_usd": D("0.08"),
            "cache_read_cost_usd": D("0.005"),
            "output_cost_usd": D("0.02"),
            "reasoning_cost_usd": D("0.1"),
            "cost_usd": D("0.205"),
            "effective_cost_usd": D("0.179375"),
            "price_ref": "openai/o3@2025-04-16",
        },
    ),
    (
        "o3 at the first second of the cut (2 / 0.50 / 8)",
        "2025-06-10T00:00:00",
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.response.model": "o3-2025-04-16",
            "gen_ai.usage.input_tokens": 10_000,
            "gen_ai.usage.cache_read.input_tokens": 2_000,
            "gen_ai.usage.output_tokens": 3_000,
            "gen_ai.usage.reasoning.output_tokens": 2_500,
        },
        # 8000 x 2 = 0.016; 2000 x 0.50 = 0.001; 500 x 8 = 0.004; 2500 x 8 = 0.02; total 0.041
        {
            "cost_usd": D("0.041"),
            "reasoning_cost_usd": D("0.02"),
            "effective_cost_usd": D("0.035875"),
            "price_ref": "openai/o3@2025-06-10",
        },
    ),
    (
        "o3 flex tier from the span attribute (1 / 0.25 / 4)",
        "2026-11-20T10:00:01",
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.response.model": "o3-2025-04-16",
            "openai.response.service_tier": "flex",
            "gen_ai.usage.input_tokens": 10_000,
            "gen_ai.usage.cache_read.input_tokens": 2_000,
            "gen_ai.usage.output_tokens": 3_000,
            "gen_ai.usage.reasoning.output_tokens": 2_500,
        },
        # 8000 x 1 = 0.008; 2000 x 0.25 = 0.0005; 500 x 4 = 0.002; 2500 x 4 = 0.01; total 0.0205
        {
            "service_tier": "flex",
            "cost_usd": D("0.0205"),
            "effective_cost_usd": D("0.0179375"),
            "price_ref": "openai/o3@2025-06-10#flex",
        },
    ),
    (
        "anthropic cache reads, 5-minute and 1-hour cache writes, 20% discount on claude-sonnet-*",
        "2026-11-20T10:00:02",
        {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.response.model": "claude-sonnet-4-5-20250929",
            "gen_ai.usage.input_tokens": 3_000,
            "gen_ai.usage.cache_read.input_tokens": 500,
            "gen_ai.usage.cache_creation.input_tokens": 1_500,
            "otelcost.cache_write_1h_tokens": 1_000,
            "gen_ai.usage.output_tokens": 400,
        },
        # 3.00 / 0.30 / 3.75 (5 min) / 6.00 (1 h) / 15.00: 1000 x 3 = 0.003; 500 x 0.30 = 0.00015;
        # 500 x 3.75 = 0.001875 + 1000 x 6 = 0.006 -> 0.007875; 400 x 15 = 0.006;
        # total 0.017025, x 0.8 = 0.01362
        {
            "input_cost_usd": D("0.003"),
            "cache_read_cost_usd": D("0.00015"),
            "cache_write_cost_usd": D("0.007875"),
            "output_cost_usd": D("0.006"),
            "cost_usd": D("0.017025"),
            "effective_cost_usd": D("0.01362"),
            "price_ref": "anthropic/claude-sonnet-4-5@2025-09-29",
        },
    ),
    (
        "anthropic Message Batches: half of every rate",
        "2026-11-20T10:00:03",
        {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.response.model": "claude-sonnet-4-5-20250929",
            "anthropic.response.service_tier": "batch",
            "gen_ai.usage.input_tokens": 1_000,
            "gen_ai.usage.output_tokens": 1_000,
        },
        # 1000 x 1.50 = 0.0015; 1000 x 7.50 = 0.0075; total 0.009, x 0.8 = 0.0072
        {
            "service_tier": "batch",
            "cost_usd": D("0.009"),
            "effective_cost_usd": D("0.0072"),
            "price_ref": "anthropic/claude-sonnet-4-5@2025-09-29#batch",
        },
    ),
    (
        "gemini 2.5 pro at exactly 200K input tokens: not long context ('> 200K')",
        "2026-11-20T10:00:04",
        {
            "gen_ai.provider.name": "gcp.gemini",
            "gen_ai.request.model": "gemini-2.5-pro",
            "gen_ai.usage.input_tokens": 200_000,
            "gen_ai.usage.output_tokens": 1_000,
        },
        # 200000 x 1.25 = 0.25; 1000 x 10 = 0.01
        {"cost_usd": D("0.26"), "price_ref": "gcp.gemini/gemini-2.5-pro@2025-03-25"},
    ),
    (
        "gemini 2.5 pro one token over: every token at the long-context rates",
        "2026-11-20T10:00:05",
        {
            "gen_ai.provider.name": "gcp.gemini",
            "gen_ai.request.model": "gemini-2.5-pro",
            "gen_ai.usage.input_tokens": 200_001,
            "gen_ai.usage.output_tokens": 1_000,
        },
        # 200001 x 2.50 = 0.5000025; 1000 x 15 = 0.015
        {"cost_usd": D("0.5150025"), "price_ref": "gcp.gemini/gemini-2.5-pro@2025-03-25#long>200000"},
    ),
    (
        "deepseek V4 peak window (Friday 02:00 UTC)",
        "2026-11-20T02:00:00",
        {
            "gen_ai.provider.name": "deepseek",
            "gen_ai.request.model": "deepseek-v4-flash",
            "gen_ai.usage.input_tokens": 1_000,
            "gen_ai.usage.output_tokens": 1_000,
        },
        # 1000 x 0.30 = 0.0003; 1000 x 1.20 = 0.0012
        {"cost_usd": D("0.0015"), "price_ref": "deepseek/deepseek-v4-flash@2026-08-16T16:00Z#peak"},
    ),
    (
        "deepseek V4 same hour on a Saturday: off-peak",
        "2026-11-21T02:00:00",
        {
            "gen_ai.provider.name": "deepseek",
            "gen_ai.request.model": "deepseek-v4-flash",
            "gen_ai.usage.input_tokens": 1_000,
            "gen_ai.usage.output_tokens": 1_000,
        },
        # 1000 x 0.15 = 0.00015; 1000 x 0.60 = 0.0006
        {"cost_usd": D("0.00075"), "price_ref": "deepseek/deepseek-v4-flash@2026-08-16T16:00Z"},
    ),
    (
        "self-hosted model from the user catalog, GPU-hour cost amortized per token",
        "2026-11-20T10:00:06",
        {
            "gen_ai.provider.name": "acme",
            "gen_ai.request.model": "acme-summarizer-v2",
            "gen_ai.usage.input_tokens": 1_000_000,
            "gen_ai.usage.output_tokens": 100_000,
        },
        # 32.77 USD/h / (400M + 5 x 20M) = 65,540 pico per input token, x 5 = 327,700 per
        # output token: 1e6 x 65,540 = 0.06554; 1e5 x 327,700 = 0.03277
        {
            "cost_usd": D("0.09831"),
            "effective_cost_usd": D("0.09831"),
            "price_ref": "acme:acme/acme-summarizer-v2@2026-01-01",
        },
    ),
    (
        "a model no entry prices: kept with its tokens, cost 0",
        "2026-11-20T10:00:07",
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-99",
            "gen_ai.usage.input_tokens": 10_000,
            "gen_ai.usage.output_tokens": 5_000,
        },
        {
            "pricing_status": "unknown_model",
            "cost_usd": D("0"),
            "effective_cost_usd": D("0"),
            "price_ref": None,
            "model": None,
            "input_tokens": 10_000,
            "output_tokens": 5_000,
        },
    ),
]


@pytest.fixture
def priced_lake(tmp_path: Path) -> Iterator[tuple[Path, Path, str]]:
    """Send CALLS through a running server; yield (config file, data dir, /metrics text)."""
    data_dir = tmp_path / "data"
    catalog = tmp_path / "acme.yaml"
    catalog.write_text(USER_CATALOG, encoding="utf-8")
    pricing = {
        "catalogs": [str(catalog)],
        "discounts": [
            {"provider": "openai", "percent": "12.5"},
            {
                "provider": "anthropic",
                "model": "claude-sonnet-*",
                "percent": "20",
                "effective_from": "2026-01-01",
            },
        ],
    }
    config = load_config(
        None,
        overrides={
            "data_dir": str(data_dir),
            "receiver": {"grpc": {"listen": "127.0.0.1:0"}, "http": {"listen": "127.0.0.1:0"}},
            "api": {"listen": "127.0.0.1:0"},
            "lake": {"flush_interval": "200ms"},
            "pricing": pricing,
        },
        environ={},
    )
    with BackgroundServer(config) as running:
        server = running.server
        assert server.http is not None and server.api_port is not None
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{server.http.port}/v1/traces", timeout=5)
        provider = TracerProvider(resource=Resource.create({"service.name": "pricing-e2e"}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("pricing.e2e")
        for name, start, attributes, _ in CALLS:
            span = tracer.start_span(
                name, start_time=_ns(start), attributes={"gen_ai.operation.name": "chat", **attributes}
            )
            span.end(end_time=_ns(start) + 1_000_000_000)
        provider.shutdown()
        metrics = requests.get(f"http://127.0.0.1:{server.api_port}/metrics", timeout=5).text
    # The CLI reads the same configuration from a file.
    config_file = tmp_path / "otelcost.yaml"
    config_file.write_text(
        json.dumps({"data_dir": str(data_dir), "pricing": {"catalogs": [str(catalog)], **pricing}}),
        encoding="utf-8",
    )
    yield config_file, data_dir, metrics


def _rows(data_dir: Path) -> dict[str, dict[str, Any]]:
    table = run_query(data_dir / "lake", "SELECT * FROM llm_calls")
    return {row["span_name"]: row for row in table.to_pylist()}


def test_spans_in_priced_lake_rows_out(priced_lake: tuple[Path, Path, str]) -> None:
    _, data_dir, metrics = priced_lake
    rows = _rows(data_dir)
    assert sorted(rows) == sorted(name for name, *_ in CALLS), "every call lands, unknown ones too"
    zero = D(0)
    for name, start, _, expected in CALLS:
        row = rows[name]
        assert row["ts"] == datetime.fromisoformat(start).replace(tzinfo=UTC), name
        assert row["pricing_status"] == expected.get("pricing_status", "priced"), name
        assert row["service_tier"] == expected.get("service_tier", "standard"), name
        for column, value in expected.items():
            assert row[column] == value, (name, column, row[column])
        # the five parts add up to the total exactly
        parts = ("input", "cache_read", "cache_write", "output", "reasoning")
        assert sum(row[f"{p}_cost_usd"] for p in parts) == row["cost_usd"], name
        assert isinstance(row["cost_usd"], Decimal) and row["cost_usd"] >= zero, name
        if "effective_cost_usd" not in expected:
            assert row["effective_cost_usd"] == row["cost_usd"], name  # no discount applies

    # the unknown model is visible in the metrics, not dropped
    assert 'otelcost_calls_by_pricing_status_total{status="unknown_model"} 1.0' in metrics
    assert f'otelcost_calls_by_pricing_status_total{{status="priced"}} {len(CALLS) - 1}.0' in metrics


def test_pricing_unknown_then_reprice_after_a_catalog_correction(priced_lake: tuple[Path, Path, str]) -> None:
    config_file, data_dir, _ = priced_lake
    runner = CliRunner()
    result = runner.invoke(main, ["pricing", "unknown", "-c", str(config_file), "-f", "json"])
    assert result.exit_code == 0, result.output
    assert [
        (r["provider"], r["model_name"], r["calls"], r["input_tokens"], r["output_tokens"])
        for r in json.loads(result.output)
    ] == [("openai", "gpt-99", 1, 10_000, 5_000)]
    before = _rows(data_dir)

    # The correction: a user catalog that prices gpt-99, loaded after the first one.
    config = json.loads(config_file.read_text(encoding="utf-8"))
    correction = config_file.parent / "correction.yaml"
    correction.write_text(CORRECTION, encoding="utf-8")
    config["pricing"]["catalogs"].append(str(correction))
    config_file.write_text(json.dumps(config), encoding="utf-8")

    result = runner.invoke(main, ["reprice", "-c", str(config_file), "--since", "2026-11-20", "-f", "json"])
    assert result.exit_code == 0, result.output
    by_day = {r["date"]: r for r in json.loads(result.output)}
    assert set(by_day) == {"2026-11-20", "2026-11-21"}
    # 2026-11-20 holds the unknown call: 10,000 x 3.00 = 0.03; 5,000 x 12.00 = 0.06 -> +0.09
    day = by_day["2026-11-20"]
    assert (day["changed_rows"], day["rewritten"]) == (1, True)
    assert D(day["cost_after"]) - D(day["cost_before"]) == D("0.09")
    # ... and 12.5% off for openai: 0.09 x 0.875 = 0.07875
    assert D(day["effective_after"]) - D(day["effective_before"]) == D("0.07875")
    assert (by_day["2026-11-21"]["changed_rows"], by_day["2026-11-21"]["rewritten"]) == (0, False)

    after = _rows(data_dir)
    fixed = after["a model no entry prices: kept with its tokens, cost 0"]
    assert (fixed["pricing_status"], fixed["price_ref"], fixed["cost_usd"]) == (
        "priced",
        "correction:openai/gpt-99@start",
        D("0.09"),
    )
    assert (fixed["input_tokens"], fixed["output_tokens"]) == (10_000, 5_000)
    for name, row in before.items():
        if name != "a model no entry prices: kept with its tokens, cost 0":
            assert after[name] == row, name  # every other row is untouched, to the byte
    # 2025 partitions were outside --since: still priced with their own day's prices
    assert (
        after["o3 the second before the 2025-06-10 price cut; priority not priced then: standard"][
            "price_ref"
        ]
        == "openai/o3@2025-04-16"
    )
