"""The Grafana dashboard (deploy/grafana/otelcost.json) queries only metrics that a running
``otelcost serve`` exposes on ``/metrics``.

One real server on loopback for the module; spans go through the OpenTelemetry SDK's OTLP/gRPC
exporter and include what makes the labelled series appear (an unknown model, a span the
receiver rejects, a provider call reported twice in one trace). ``/metrics`` is scraped over
HTTP and parsed with prometheus_client's own parser; every metric name in every panel's PromQL
(and in the template variables) must be one of the exposed names.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import set_span_in_context
from prometheus_client.parser import text_string_to_metric_families

from otelcost.server import BackgroundServer
from tests.e2e.conftest import loopback_config
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "otelcost.json"

# PromQL words that look like metric names but are not: binary operators and modifiers.
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "group_left", "group_right"})
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: string literals, label matchers, range and
    subquery brackets and grouping label lists removed; a word followed by ``(`` is a function
    or an aggregation."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    names: set[str] = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("(") or match.group() in _KEYWORDS:
            continue
        names.add(match.group())
    return names


def panels_of(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and every query variable."""
    queries = [
        (f"panel {panel['title']!r}", target["expr"])
        for panel in panels_of(dashboard)
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            inner = re.fullmatch(r"label_values\((.+),\s*\w+\)", text)
            queries.append((f"variable {variable['name']!r}", inner.group(1) if inner else text))
    return queries


class Exposition:
    """The names a scrape exposes: every sample name, plus the names of declared families that
    have no sample yet (a labelled counter before its first increment)."""

    def __init__(self, text: str) -> None:
        self.samples: set[str] = set()
        self.histograms: set[str] = set()
        for family in text_string_to_metric_families(text):
            self.samples.update(sample.name for sample in family.samples)
            if family.type == "counter":
                self.samples.add(f"{family.name}_total")
            elif family.type == "histogram":
                self.histograms.add(family.name)
            else:
                self.samples.add(family.name)

    def has(self, name: str) -> bool:
        if name in self.samples:
            return True
        for suffix in _HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and name.removesuffix(suffix) in self.histograms:
                return True
        return False


def missing_metrics(dashboard: dict[str, Any], exposition: Exposition) -> list[str]:
    return sorted(
        f"{where}: {name}"
        for where, expr in dashboard_queries(dashboard)
        for name in promql_metric_names(expr)
        if not exposition.has(name)
    )


def _send_traffic(grpc_port: int) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{grpc_port}", insecure=True, timeout=10))
    )
    tracer = provider.get_tracer("tests.grafana")
    now = time.time_ns()

    def chat(model: str, **extra: str | int) -> dict[str, str | int]:
        return {
            "gen_ai.provider.name": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": 1_000,
            "gen_ai.usage.output_tokens": 200,
            "app.team": "payments",
            **extra,
        }

    for model in ("gpt-4o-mini", "gpt-4o-mini", "mystery-model-9"):
        tracer.start_span(f"chat {model}", start_time=now - 2 * 10**9, attributes=chat(model)).end(
            end_time=now
        )
    # The same provider call reported by two spans of one trace: folded (duplicate_spans).
    root = tracer.start_span(
        "invoke_agent", start_time=now - 3 * 10**9, attributes={"gen_ai.operation.name": "invoke_agent"}
    )
    for _ in range(2):
        span = tracer.start_span(
            "chat gpt-4o-mini",
            context=set_span_in_context(root),
            start_time=now - 2 * 10**9,
            attributes=chat("gpt-4o-mini", **{"gen_ai.response.id": "chatcmpl-dup-1"}),
        )
        span.end(end_time=now - 10**9)
    root.end(end_time=now)
    # Ends before it starts: rejected with OTLP partial success (otelcost_spans_rejected_total).
    tracer.start_span("chat gpt-4o-mini", start_time=now, attributes=chat("gpt-4o-mini")).end(
        end_time=now - 10**9
    )
    provider.shutdown()


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory) -> Exposition:
    with BackgroundServer(loopback_config(tmp_path_factory.mktemp("grafana") / "data")) as running:
        grpc = running.server.grpc
        assert grpc is not None
        _send_traffic(grpc.port)
        api = f"http://127.0.0.1:{running.server.api_port}"

        def scrape() -> str | None:
            text = requests.get(f"{api}/metrics", timeout=5).text
            folded = 'otelcost_duplicate_spans_total{reason="response_id"}' in text
            return text if folded and "otelcost_spans_rejected_total{" in text else None

        text = wait_until(scrape, timeout=20, poll=0.2, what="the traffic counted in /metrics")
        assert text is not None
        return Exposition(text)


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def test_the_metric_name_parser_strips_functions_matchers_ranges_and_groupings() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, instance) ("
        'rate(a_seconds_bucket{x="b{c}", y=~"$v|w"}[$__rate_interval])))'
        " / on(instance) group_left(team) b_total offset 5m + 1e-9 * time()"
        " - count without (z) (c:recorded[1h:5m])"
    )
    assert promql_metric_names(expr) == {"a_seconds_bucket", "b_total", "c:recorded"}
    assert promql_metric_names('sum(x_total{status!="priced"}) and bool y') == {"x_total", "y"}


def test_every_metric_the_dashboard_queries_is_exposed(
    dashboard: dict[str, Any], exposition: Exposition
) -> None:
    queries = dashboard_queries(dashboard)
    assert len(queries) >= 20
    assert all(promql_metric_names(expr) for _, expr in queries), "a query selects no metric"
    assert missing_metrics(dashboard, exposition) == []


def test_a_panel_naming_a_metric_that_does_not_exist_is_caught(
    dashboard: dict[str, Any], exposition: Exposition
) -> None:
    broken = json.loads(json.dumps(dashboard))
    broken["panels"][1]["targets"][0]["expr"] = "sum(rate(otelcost_spans_recieved_total[5m]))"
    assert missing_metrics(broken, exposition) == [
        f"panel {broken['panels'][1]['title']!r}: otelcost_spans_recieved_total"
    ]
    assert exposition.has("otelcost_lake_flush_duration_seconds_count")
    assert not exposition.has("otelcost_calls_bucket")


def test_the_dashboard_covers_what_operators_watch(dashboard: dict[str, Any]) -> None:
    queried = {name for _, expr in dashboard_queries(dashboard) for name in promql_metric_names(expr)}
    for metric in (
        "otelcost_receiver_spans_total",
        "otelcost_spans_rejected_total",
        "otelcost_spool_depth_records",
        "otelcost_lake_buffered_rows",
        "otelcost_budget_snapshot_version",
        "otelcost_budget_snapshot_computed_at_seconds",
        "otelcost_calls_by_pricing_status_total",
        "otelcost_duplicate_spans_total",
    ):
        assert metric in queried, metric
    panels = [p for p in panels_of(dashboard) if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["description"], panel["title"]
        for target in panel["targets"]:
            assert 'instance=~"$instance"' in target["expr"], (panel["title"], target["expr"])
