"""The spool wired into the pipeline: replay after a crash is exactly once, in the lake and budgets.

Requests are real OTLP messages, encoded by the OpenTelemetry SDK's exporter encoder from spans
the SDK recorded; the lake is real Parquet read back with DuckDB. A "crash" here abandons a
pipeline without its orderly shutdown (no final flush, no checkpoint): the in-process analogue
of SIGKILL at a chosen moment. ``test_crash.py`` does the real SIGKILL of ``otelcost serve``.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from itertools import count
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import requests
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util.types import AttributeValue

from otelcost.config import Config
from otelcost.errors import TransientIngestError
from otelcost.lake.layout import split_by_day
from otelcost.lake.locking import lake_lock
from otelcost.lake.publish import write_files
from otelcost.lake.query import run_query
from otelcost.lake.recovery import read_partition_seqs
from otelcost.lake.seqs import SeqSet
from otelcost.pipeline import Pipeline
from otelcost.prepare import decode_batch
from otelcost.receiver.intake import ExportOutcome
from otelcost.server import BackgroundServer
from otelcost.spool import Spool, SpoolFullError
from tests.e2e.conftest import loopback_config

pytestmark = pytest.mark.slow

DAY_NS = 86_400 * 10**9
BUDGET = {
    "name": "team-daily-cost",
    "scope": {"team": "*"},
    "window": "day",
    "metric": "cost_usd",
    "limit": "1000",
    "thresholds": [{"at": 1.0, "action": "block"}],
}
_numbers = count()


def make_request(
    spans: int, *, team: str = "search", days_ago: tuple[int, ...] = (0,)
) -> ExportTraceServiceRequest:
    """One OTLP request of ``spans`` LLM chat spans, recorded and encoded by the SDK; span i
    starts ``days_ago[i % len(days_ago)]`` days before now."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "agent"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("agent")
    for i in range(spans):
        now = time.time_ns() - days_ago[i % len(days_ago)] * DAY_NS
        n = next(_numbers)
        span = tracer.start_span(
            "chat gpt-4o-mini",
            start_time=now,
            attributes={
                "gen_ai.provider.name": "openai",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 100 + n,
                "gen_ai.usage.output_tokens": 10 + n % 7,
                "app.team": team,
            },
        )
        span.end(end_time=now + 1_000_000)
    provider.shutdown()
    return encode_spans(exporter.get_finished_spans())


def export(pipeline: Pipeline, request: ExportTraceServiceRequest) -> ExportOutcome:
    """``Pipeline.export`` from a thread without an event loop; returns once the batch is spooled."""
    return asyncio.run(pipeline.export(request))


def pipeline_config(data_dir: Path, **overrides: object) -> Config:
    layer: dict[str, Any] = {"lake": {"flush_interval": "1h"}, "budgets": [BUDGET]}
    layer.update(overrides)
    return loopback_config(data_dir, **layer)


def abandon(pipeline: Pipeline) -> None:
    """Stop a pipeline the way a crash would: nothing flushed, nothing checkpointed.

    The lake writer's thread is stopped without its final flush (its buffer is simply lost),
    the spool is closed without a checkpoint (it syncs, as the kernel would keep the page
    cache), and the evaluator's threads stop; only in-process state disappears.
    """
    lake = pipeline.lake
    lake._stopping = True
    lake._wake.set()
    if lake._thread is not None:
        lake._thread.join()
    pipeline.evaluator.shutdown()
    assert pipeline.spool is not None
    pipeline.spool.shutdown()


def lake_figures(lake_dir: Path) -> dict[str, Any]:
    row: dict[str, Any] = run_query(
        lake_dir,
        "SELECT count(*) AS n, count(DISTINCT (trace_id, span_id)) AS ids, sum(cost_usd) AS cost "
        "FROM llm_calls",
    ).to_pylist()[0]
    return row


def budget_matches_lake(pipeline: Pipeline, lake_dir: Path) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """Per team: the evaluator's (spent, calls) next to the lake's sums over the same window."""
    live: dict[Any, Any] = {}
    for status in pipeline.evaluator.status():
        live[status.scope["team"]] = (status.spent, status.calls)
        start = status.window_start_ns
    lake = {
        row["team"]: (row["cost"], row["n"])
        for row in run_query(
            lake_dir,
            "SELECT team, sum(cost_usd) AS cost, count(*) AS n FROM llm_calls "
            "WHERE epoch_ns(ts) >= $start GROUP BY team",
            {"start": start},
        ).to_pylist()
    }
    return live, lake


def test_a_crash_between_lake_flush_and_checkpoint_duplicates_nothing(tmp_path: Path) -> None:
    config = pipeline_config(tmp_path / "data")
    first = Pipeline(config)
    first.start()
    assert first.spool is not None
    first.lake._on_seqs_durable = None  # the crash comes before any checkpoint is written
    for i in range(5):
        export(first, make_request(4, team="search" if i % 2 else "ads"))
    first.lake.flush()  # seqs 1..5 are in Parquet, the checkpoint still says 0
    for _ in range(3):
        export(first, make_request(3, team="ads"))  # seqs 6..8: only in the spool and the buffer
    # Seq 9 has rows on two days, and only yesterday's file reached the lake: the crash came in
    # the middle of a flush, which publishes one file per day.
    export(first, make_request(4, team="search", days_ago=(1, 0)))
    export(first, make_request(2, team="search"))  # seq 10, so that seq 9 is in the middle
    abandon(first)
    batch = next(table for seq, table in _spool_records(config) if seq == 9)
    [(yesterday_day, yesterday)] = [
        (day, part) for day, part in split_by_day(batch) if day < datetime.now(UTC).date()
    ]
    assert yesterday.num_rows == 2
    with lake_lock(config.lake_dir, shared=True):
        write_files(config.lake_dir, yesterday, spool_seqs={yesterday_day: SeqSet.of([9])})

    second = Pipeline(config)
    second.start()
    try:
        assert second.spool is not None
        assert second.replayed.records_in_lake == 5
        assert second.replayed.records == 5  # 6, 7, 8, 10, and 9 minus what the lake holds
        assert second.spool.checkpointed_seq == second.spool.last_seq == 10
        figures = lake_figures(config.lake_dir)
        assert figures["n"] == figures["ids"] == 5 * 4 + 3 * 3 + 4 + 2
        live, lake = budget_matches_lake(second, config.lake_dir)
        assert live == lake
        assert read_partition_seqs(config.lake_dir, yesterday_day) == SeqSet.of([9])
    finally:
        second.shutdown()

    third = Pipeline(config)  # a clean restart replays nothing and rebuilds the same totals
    third.start()
    try:
        assert third.replayed.records == third.replayed.records_in_lake == 0
        assert lake_figures(config.lake_dir) == figures
        assert budget_matches_lake(third, config.lake_dir) == (live, lake)
    finally:
        third.shutdown()


def _spool_records(config: Config) -> Iterator[tuple[int, pa.Table]]:
    spool = Spool(config.spool_dir, config=config.spool)
    spool.start()
    try:
        for record in spool.replay():
            yield record.seq, decode_batch(record.payload, seq=record.seq)
    finally:
        spool.shutdown()


def test_refusals_come_before_the_append_and_leave_nothing_behind(tmp_path: Path) -> None:
    config = pipeline_config(
        tmp_path / "data",
        lake={"flush_interval": "1h", "max_buffer_rows": 100},  # refuses beyond 400 rows
        spool={"max_size": "64KiB", "segment_size": "64KiB"},  # about seven 2-span records
    )
    pipeline = Pipeline(config)
    pipeline.start()
    try:
        spool = pipeline.spool
        assert spool is not None
        export(pipeline, make_request(20))
        pipeline.lake.reserve(380)  # other requests in flight hold the rest of the buffer
        with pytest.raises(TransientIngestError, match="buffer is full"):
            export(pipeline, make_request(1))
        assert spool.last_seq == 1  # refused by the lake: never appended
        pipeline.lake.release(380)
        pipeline.lake.flush()
        assert spool.checkpointed_seq == 1 and spool.depth == 0

        with pytest.raises(SpoolFullError):
            for _ in range(20):
                export(pipeline, make_request(2))
        assert spool.refused_full == 1
        buffered = pipeline.lake.buffered_rows
        assert buffered == 2 * (spool.last_seq - 1)
        # The lake's reservation for the batch the spool refused was given back.
        pipeline.lake.reserve(400 - buffered)
        pipeline.lake.release(400 - buffered)
        assert pipeline.counters_snapshot().refused_requests == 2
        pipeline.lake.flush()  # the lake catches up, the checkpoint frees the spool
        assert spool.depth == 0
        export(pipeline, make_request(2))
    finally:
        pipeline.shutdown()


def test_a_clean_stop_checkpoints_everything_over_real_otlp(tmp_path: Path) -> None:
    config = loopback_config(tmp_path / "data")
    with BackgroundServer(config) as running:
        assert running.server.grpc is not None
        provider = TracerProvider(resource=Resource.create({"service.name": "agent"}))
        provider.add_span_processor(
            SimpleSpanProcessor(
                OTLPSpanExporter(endpoint=f"127.0.0.1:{running.server.grpc.port}", insecure=True)
            )
        )
        tracer = provider.get_tracer("agent")
        for i in range(12):
            attributes: dict[str, AttributeValue] = {
                "gen_ai.provider.name": "openai",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 100 + i,
                "gen_ai.usage.output_tokens": 10,
            }
            with tracer.start_as_current_span("chat", attributes=attributes):
                pass
        with tracer.start_as_current_span("not an llm call"):
            pass  # a request without LLM calls needs no spool record
        provider.shutdown()
        spool = running.server.pipeline.spool
        assert spool is not None and spool.last_seq == 12
        metrics = requests.get(f"http://127.0.0.1:{running.server.api_port}/metrics", timeout=5).text
        assert "otelcost_spool_appends_total 12.0" in metrics
    assert spool.checkpointed_seq == 12
    assert not any(p.suffix == ".seg" and p.stat().st_size > 24 for p in config.spool_dir.iterdir())
    assert lake_figures(config.lake_dir)["n"] == 12
    with BackgroundServer(config) as again:
        assert again.server.pipeline.replayed.records == 0
        assert again.server.pipeline.spool is not None
        assert again.server.pipeline.spool.depth == 0
    assert Decimal(0) < lake_figures(config.lake_dir)["cost"]


def test_a_replaced_spool_never_reuses_a_seq_the_lake_names(tmp_path: Path) -> None:
    """Lake footers name spool seqs forever; a new (or repaired) spool starting its numbering
    over would make a later replay take its new records for ones already in the lake."""
    config = pipeline_config(tmp_path / "data")
    first = Pipeline(config)
    first.start()
    for _ in range(3):
        export(first, make_request(4))
    first.shutdown()  # seqs 1..3 in Parquet and checkpointed
    shutil.rmtree(config.spool_dir)  # the operator moves a damaged spool aside

    second = Pipeline(config)
    second.start()
    assert second.spool is not None
    assert second.spool.last_seq == 3  # numbering continues after what the lake names
    for _ in range(2):
        export(second, make_request(5))  # seqs 4 and 5: in the spool, not yet in Parquet
    abandon(second)

    third = Pipeline(config)
    third.start()
    try:
        assert third.replayed.records == 2 and third.replayed.records_in_lake == 0
        figures = lake_figures(config.lake_dir)
        assert figures["n"] == figures["ids"] == 3 * 4 + 2 * 5
    finally:
        third.shutdown()
