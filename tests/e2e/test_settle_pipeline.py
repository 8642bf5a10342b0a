"""Settling calls through the real pipeline: counted once, attributed as they finally are.

One provider call reported by two spans in two traces is one call; a handler span that arrives
after its call moves the call's spend to the handler's team. Requests are real OTLP messages
encoded by the OpenTelemetry SDK; the lake is real Parquet read back with DuckDB (``llm_calls``
one row per call with its latest attribution, ``duplicate_spans`` the folded span naming its
call, ``attribution_changes`` before/after rows); the budget evaluator agrees with the lake to
the picodollar, through a refusal, a crash and a replay.
"""

from __future__ import annotations

import time
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util.types import AttributeValue

from otelcost.errors import TransientIngestError
from otelcost.lake.locking import lake_lock
from otelcost.lake.query import run_query
from otelcost.pipeline import Pipeline
from tests.e2e.test_spool_replay import abandon, budget_matches_lake, export, pipeline_config

pytestmark = pytest.mark.slow

_ids = count(1)
SDK = "com.anthropic.sdk.python"
OPENLLMETRY = "opentelemetry.instrumentation.anthropic"


def _sdk_span(response_id: str, **extra: AttributeValue) -> dict[str, AttributeValue]:
    """What the anthropic SDK's own span (scope com.anthropic.sdk.python) carries."""
    return {
        "gen_ai.provider.name": "anthropic",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.response.model": "claude-sonnet-4-5-20250929",
        "gen_ai.response.id": response_id,
        "gen_ai.usage.input_tokens": 1700,
        "gen_ai.usage.cache_read.input_tokens": 1000,
        "gen_ai.usage.cache_write.input_tokens": 500,
        "gen_ai.usage.output_tokens": 80,
        **extra,
    }


def _request(*spans: tuple[str, dict[str, AttributeValue]]) -> ExportTraceServiceRequest:
    """One request; each span is a root (its own trace), as the SDK and an instrumentation
    report one call when neither is the other's parent."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    now = time.time_ns()
    for scope, attributes in spans:
        span = provider.get_tracer(scope).start_span("chat", start_time=now, attributes=attributes)
        span.end(end_time=now + 900_000_000)
    provider.shutdown()
    return encode_spans(exporter.get_finished_spans())


def _tables(lake_dir: Path) -> dict[str, list[dict[str, Any]]]:
    columns = (
        "trace_id, span_id, scope_name, team, duplicate_of_trace_id, duplicate_of_span_id, duplicate_reason"
    )
    return {
        table: run_query(
            lake_dir, f"SELECT {columns} FROM {table} ORDER BY received_at, scope_name"
        ).to_pylist()
        for table in ("llm_calls", "duplicate_spans")
    }


def test_the_second_span_of_a_call_is_folded_into_the_first_and_auditable(tmp_path: Path) -> None:
    config = pipeline_config(tmp_path / "data")
    pipeline = Pipeline(config)
    pipeline.start()
    try:
        rid = f"msg_{next(_ids)}"
        export(pipeline, _request((SDK, _sdk_span(rid, **{"app.team": "search"}))))
        export(
            pipeline,
            _request(("opentelemetry.instrumentation.anthropic", _sdk_span(rid, **{"app.team": "ads"}))),
        )
        export(
            pipeline,
            _request(("com.anthropic.sdk.python", _sdk_span(f"msg_{next(_ids)}", **{"app.team": "ads"}))),
        )
        pipeline.lake.flush()
        tables = _tables(config.lake_dir)
        calls, folded = tables["llm_calls"], tables["duplicate_spans"]
        assert len(calls) == 2 and len(folded) == 1
        first = calls[0]
        assert folded[0]["duplicate_of_trace_id"] == first["trace_id"] != folded[0]["trace_id"]
        assert folded[0]["duplicate_of_span_id"] == first["span_id"]
        assert folded[0]["duplicate_reason"] == "response_id"
        assert all(row["duplicate_of_span_id"] is None for row in calls)
        # Across requests the first arrival survives as it stood (it was already counted).
        assert (first["team"], folded[0]["team"]) == ("search", "ads")
        live, lake = budget_matches_lake(pipeline, config.lake_dir)
        assert live == lake
        assert sum(n for _, n in live.values()) == 2
        counters = pipeline.counters_snapshot()
        assert (counters.calls, counters.duplicates) == (2, {"response_id": 1})
    finally:
        pipeline.shutdown()


def test_a_refused_batch_does_not_make_the_other_span_a_duplicate(tmp_path: Path) -> None:
    # A buffer of 4 rows at most (lake.max_buffer_rows 1, bound factor 4).
    config = pipeline_config(tmp_path / "data", lake={"flush_interval": "1h", "max_buffer_rows": 1})
    pipeline = Pipeline(config)
    pipeline.start()
    try:
        filler = [("svc.filler", _sdk_span(f"msg_{next(_ids)}")) for _ in range(4)]
        rid = f"msg_{next(_ids)}"
        # A job holding the lake lock keeps the flush thread from making room meanwhile.
        with lake_lock(config.lake_dir):
            export(pipeline, _request(*filler))
            with pytest.raises(TransientIngestError):
                export(pipeline, _request(("com.anthropic.sdk.python", _sdk_span(rid))))
        pipeline.lake.flush()
        # The sender gave up; the instrumentation's span of the same call arrives on its own.
        export(pipeline, _request(("opentelemetry.instrumentation.anthropic", _sdk_span(rid))))
        pipeline.lake.flush()
        tables = _tables(config.lake_dir)
        assert len(tables["llm_calls"]) == 5 and tables["duplicate_spans"] == []
    finally:
        pipeline.shutdown()


def test_a_crash_and_replay_store_each_table_once(tmp_path: Path) -> None:
    config = pipeline_config(tmp_path / "data")
    first = Pipeline(config)
    first.start()
    first.lake._on_seqs_durable = None  # the crash comes before any checkpoint is written
    rids = [f"msg_{next(_ids)}" for _ in range(4)]
    for rid in rids[:2]:  # both spans in one request: the better one survives
        export(first, _request((OPENLLMETRY, _sdk_span(rid, **{"app.team": "ads"})), (SDK, _sdk_span(rid))))
    first.lake.flush()  # in Parquet, not checkpointed
    for rid in rids[2:]:
        export(
            first, _request((OPENLLMETRY, _sdk_span(rid)), (SDK, _sdk_span(rid, **{"app.team": "search"})))
        )
    abandon(first)

    second = Pipeline(config)
    second.start()
    try:
        assert second.replayed.records_in_lake == 2 and second.replayed.records == 2
        tables = _tables(config.lake_dir)
        assert len(tables["llm_calls"]) == 4 and len(tables["duplicate_spans"]) == 4
        assert len({(r["trace_id"], r["span_id"]) for r in tables["duplicate_spans"]}) == 4
        # In one request the spans tie on usage; the one with the team survives.
        assert [row["team"] for row in tables["llm_calls"]] == ["ads", "ads", "search", "search"]
        live, lake = budget_matches_lake(second, config.lake_dir)
        assert live == lake and sum(n for _, n in live.values()) == 4
    finally:
        second.shutdown()


def _late_parent_requests(team: str) -> tuple[ExportTraceServiceRequest, ExportTraceServiceRequest]:
    """An LLM call inside a handler span that sets ``app.team``: the call's request, then the
    handler's (it ends, and is exported, after the call)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("app")
    with (
        tracer.start_as_current_span("POST /refund", attributes={"app.team": team}),
        tracer.start_as_current_span("chat", attributes=_sdk_span(f"msg_{next(_ids)}")),
    ):
        pass
    provider.shutdown()
    call, handler = exporter.get_finished_spans()
    return encode_spans([call]), encode_spans([handler])


def test_a_late_handler_moves_the_calls_spend_to_its_team(tmp_path: Path) -> None:
    # Without the handler, the ownership table says the service belongs to "platform".
    ownership = {"rows": [{"service": "checkout", "team": "platform"}]}
    config = pipeline_config(tmp_path / "data", attribution={"ownership": ownership})
    pipeline = Pipeline(config)
    pipeline.start()
    try:
        first_call, first_handler = _late_parent_requests("payments")
        export(pipeline, first_call)
        live, _ = budget_matches_lake(pipeline, config.lake_dir)
        assert {team: n for team, (_, n) in live.items()} == {"platform": 1}
        export(pipeline, first_handler)
        second_call, _ = _late_parent_requests("search")  # its handler never comes
        export(pipeline, second_call)
        pipeline.lake.flush()
        live, lake = budget_matches_lake(pipeline, config.lake_dir)
        assert live == lake
        assert {team: n for team, (_, n) in live.items()} == {"payments": 1, "platform": 1}
        changes = run_query(
            config.lake_dir,
            "SELECT attribution_change AS side, team, attribution_change_reason AS reason, cost_usd "
            "FROM attribution_changes ORDER BY side DESC",
        ).to_pylist()
        assert [(c["side"], c["team"], c["reason"]) for c in changes] == [
            ("before", "platform", "late_ancestor"),
            ("after", "payments", "late_ancestor"),
        ]
        assert changes[0]["cost_usd"] == changes[1]["cost_usd"] > 0
        assert pipeline.settler.counters_snapshot().changes == {"late_ancestor": 1}
    finally:
        pipeline.shutdown()

    restarted = Pipeline(config)  # the budgets rebuilt from the lake see the same
    restarted.start()
    try:
        assert budget_matches_lake(restarted, config.lake_dir) == (live, lake)
    finally:
        restarted.shutdown()


def test_changes_replayed_after_a_crash_move_the_spend_once(tmp_path: Path) -> None:
    ownership = {"rows": [{"service": "checkout", "team": "platform"}]}
    config = pipeline_config(tmp_path / "data", attribution={"ownership": ownership})
    first = Pipeline(config)
    first.start()
    first.lake._on_seqs_durable = None  # the crash comes before any checkpoint is written
    calls, handlers = zip(*(_late_parent_requests("payments") for _ in range(3)), strict=True)
    for request in calls:
        export(first, request)
    export(first, handlers[0])
    first.lake.flush()  # the calls and the first change are in Parquet, not checkpointed
    for request in handlers[1:]:
        export(first, request)  # two changes only in the spool
    abandon(first)

    second = Pipeline(config)
    second.start()
    try:
        assert second.replayed.records == 2
        live, lake = budget_matches_lake(second, config.lake_dir)
        assert live == lake
        assert {team: n for team, (_, n) in live.items()} == {"payments": 3}
        counts = run_query(
            config.lake_dir, "SELECT count(*) AS n FROM attribution_changes GROUP BY attribution_change"
        ).to_pylist()
        assert [row["n"] for row in counts] == [3, 3]
    finally:
        second.shutdown()


def test_a_block_caused_by_spend_that_moves_away_is_lifted(tmp_path: Path) -> None:
    """One call blocks the team the ownership table names; its handler arrives and names
    another team: the block moves with the spend."""
    ownership = {"rows": [{"service": "checkout", "team": "platform"}]}
    budget = {
        "name": "per-team",
        "scope": {"team": "*"},
        "window": "day",
        "metric": "requests",
        "limit": "1",
        "thresholds": [{"at": 1.0, "action": "block"}],
    }
    config = pipeline_config(tmp_path / "data", attribution={"ownership": ownership}, budgets=[budget])
    pipeline = Pipeline(config)
    pipeline.start()
    try:
        call, handler = _late_parent_requests("payments")
        export(pipeline, call)

        def blocked() -> set[object]:
            return {
                d.scope["team"] for d in pipeline.evaluator.snapshot.decisions if d.action.value == "block"
            }

        assert blocked() == {"platform"}
        export(pipeline, handler)
        assert blocked() == {"payments"}
    finally:
        pipeline.shutdown()
