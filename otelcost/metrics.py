"""Self-metrics in the Prometheus exposition format, served at ``/metrics`` on the API listener.

Stages keep plain counters and know nothing of Prometheus; this module reads them at scrape
time through a custom collector (prometheus_client's documented pattern for exposing values
that live elsewhere), so the hot path pays nothing for metrics beyond integer increments.
Each pipeline gets its own registry, which keeps several pipelines in one process (tests)
apart. ``docs/metrics.md`` lists every metric.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from otelcost.counters import IntakeCounters, ReplayCounters
from otelcost.jobs.compact import Compactor
from otelcost.lake.writer import LakeWriter
from otelcost.normalize import NormalizerCounters
from otelcost.receiver.stats import ReceiverStats
from otelcost.reports.anomalies.streaming import StreamingCounters
from otelcost.settle import SettleCounters
from otelcost.spool import Spool

__all__ = [
    "CONTENT_TYPE",
    "AnomaliesCollector",
    "CompactionCollector",
    "EvaluatorCollector",
    "NormalizerCollector",
    "PipelineCollector",
    "ReceiverCollector",
    "SettleCollector",
    "SpoolCollector",
    "WorkersCollector",
    "build_registry",
    "render",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class PipelineCollector(Collector):
    def __init__(self, counters: Callable[[], IntakeCounters], lake: LakeWriter) -> None:
        self._counters = counters
        self._lake = lake

    def collect(self) -> Iterator[Metric]:
        c = self._counters()
        yield _counter("otelcost_export_requests", "Export requests taken in.", c.requests)
        yield _counter(
            "otelcost_export_refused_requests",
            "Export requests refused with a retryable error (pipeline full).",
            c.refused_requests,
        )
        yield _counter("otelcost_spans_received", "Spans in accepted export requests.", c.spans)
        yield _counter("otelcost_calls", "LLM calls turned into lake rows.", c.calls)
        yield _labelled_counter(
            "otelcost_spans_rejected", "Invalid spans rejected (OTLP partial success).", "reason", c.rejected
        )
        yield _labelled_counter(
            "otelcost_spans_dropped", "Spans not turned into rows (not an LLM call ...).", "reason", c.dropped
        )
        yield _labelled_counter(
            "otelcost_duplicate_spans",
            "Spans folded into another call of the same provider call (stored in duplicate_spans).",
            "reason",
            c.duplicates,
        )
        yield _labelled_counter(
            "otelcost_calls_by_pricing_status", "LLM calls by pricing status.", "status", c.pricing_status
        )
        yield _labelled_counter(
            "otelcost_calls_by_attribution_status",
            "LLM calls by attribution status.",
            "status",
            c.attribution_status,
        )
        lake = self._lake
        yield _counter("otelcost_lake_rows_written", "Rows written to Parquet.", lake.rows_written)
        yield _counter("otelcost_lake_files_written", "Parquet files written.", lake.files_written)
        yield _counter("otelcost_lake_flushes", "Lake flushes.", lake.flushes)
        yield _counter(
            "otelcost_lake_flush_errors", "Lake flushes that failed (rows kept).", lake.flush_errors
        )
        yield _counter(
            "otelcost_lake_refused_batches",
            "Batches refused because the lake buffer was full.",
            lake.refused_batches,
        )
        yield GaugeMetricFamily(
            "otelcost_lake_buffered_rows",
            "Rows accepted but not yet written to Parquet.",
            value=lake.buffered_rows,
        )
        yield GaugeMetricFamily(
            "otelcost_lake_last_flush_seconds",
            "Duration of the last lake flush.",
            value=lake.last_flush_seconds,
        )
        buckets, total = lake.flush_durations.snapshot()
        yield HistogramMetricFamily(
            "otelcost_lake_flush_duration_seconds",
            "Duration of successful lake flushes (write, fsync, rename).",
            buckets=buckets,
            sum_value=total,
        )


class CompactionCollector(Collector):
    """Background lake compaction (``otelcost/jobs/compact.py``); zeros when it is disabled."""

    def __init__(self, compactor: Compactor) -> None:
        self._compactor = compactor

    def collect(self) -> Iterator[Metric]:
        c = self._compactor
        yield _counter(
            "otelcost_lake_compaction_runs", "Passes of background compaction over the lake.", c.runs
        )
        yield _counter(
            "otelcost_lake_compactions", "Partitions (days) whose small files were merged.", c.compactions
        )
        yield _counter(
            "otelcost_lake_compaction_files_merged", "Small files merged away by compaction.", c.files_merged
        )
        yield _counter(
            "otelcost_lake_compaction_seconds", "Time spent compacting (lake lock held).", c.seconds
        )
        yield _counter(
            "otelcost_lake_compaction_errors", "Compactions that failed (retried next pass).", c.errors
        )
        yield _counter(
            "otelcost_lake_compaction_abandoned",
            "Compactions abandoned because the server was stopping.",
            c.abandoned,
        )
        yield _counter(
            "otelcost_lake_retention_partitions_dropped",
            "Day partitions dropped by lake.retention.",
            c.partitions_dropped,
        )


class NormalizerCollector(Collector):
    """Convention, attribution and token-conversion counters of the normalizer."""

    def __init__(self, counters: Callable[[], NormalizerCounters]) -> None:
        self._counters = counters

    def collect(self) -> Iterator[Metric]:
        c = self._counters()
        yield _labelled_counter(
            "otelcost_calls_by_convention",
            "LLM calls by the convention that recognized them.",
            "convention",
            dict(c.calls_by_convention),
        )
        yield _counter(
            "otelcost_calls_incomplete_attribution", "Calls missing a required dimension.", c.incomplete_calls
        )
        yield _labelled_counter(
            "otelcost_calls_missing_dimension",
            "Calls missing each required dimension.",
            "dimension",
            dict(c.missing_by_dimension),
        )
        yield _labelled_counter(
            "otelcost_calls_inherited_dimension",
            "Calls whose dimension came from an ancestor span.",
            "dimension",
            dict(c.inherited_by_dimension),
        )
        yield _labelled_counter(
            "otelcost_usage_conversions",
            "Token conversions applied to reach GenAI semantics.",
            "conversion",
            dict(c.usage_notes),
        )
        yield GaugeMetricFamily(
            "otelcost_pending_calls",
            "Calls waiting for ancestors that arrive after them (late attribution).",
            value=c.pending_calls,
        )
        yield _counter(
            "otelcost_attribution_proposed",
            "Calls attributed again when late ancestors arrived, with a different result.",
            c.proposed_changes,
        )
        yield _counter(
            "otelcost_attribute_values_cut",
            "Attribute values cut to attribution.max_attribute_value_length in the lake's maps.",
            c.attribute_values_cut,
        )
        yield _labelled_counter(
            "otelcost_ingest_key_calls",
            "Calls sent with an API key, by the key's name (ingest_key).",
            "key",
            dict(c.key_calls),
        )
        yield _labelled_counter(
            "otelcost_attribution_key_overrides",
            "Calls whose span claimed another value than its API key binds, by dimension.",
            "dimension",
            dict(c.key_overrides),
        )
        yield GaugeMetricFamily(
            "otelcost_trace_memory_spans",
            "Spans remembered for attribution inheritance and dedup.",
            value=c.trace_memory_spans,
        )


class SettleCollector(Collector):
    """What settling calls in the serve process (otelcost/settle) remembers and changed."""

    def __init__(self, counters: Callable[[], SettleCounters]) -> None:
        self._counters = counters

    def collect(self) -> Iterator[Metric]:
        c = self._counters()
        yield _labelled_counter(
            "otelcost_attribution_changes",
            "Attribution changes of stored calls (before/after pairs in attribution_changes).",
            "reason",
            dict(c.changes),
        )
        yield _counter(
            "otelcost_attribution_proposals_dropped",
            "Late attribution proposed for a call no longer remembered, or that changed nothing.",
            c.dropped_proposals,
        )
        yield _labelled_counter(
            "otelcost_duplicate_attribution_carried",
            "Dimensions a call took from a span folded into it.",
            "dimension",
            dict(c.attribution_carried),
        )
        yield GaugeMetricFamily(
            "otelcost_settle_remembered_calls",
            "Calls remembered for later spans of the same provider call and late attribution.",
            value=c.remembered_calls,
        )
        yield _counter("otelcost_settle_seconds", "Time spent settling batches.", c.seconds)


class ReceiverCollector(Collector):
    """Requests per protocol and outcome, as the receivers answered them."""

    def __init__(self, stats: dict[str, Callable[[], ReceiverStats] | None]) -> None:
        """``stats``: per protocol, a function giving a consistent copy of its counters."""
        self._stats = {protocol: s for protocol, s in stats.items() if s is not None}

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "otelcost_receiver_requests",
            "Export requests by protocol and outcome.",
            labels=["protocol", "outcome"],
        )
        spans = CounterMetricFamily(
            "otelcost_receiver_spans", "Spans received, by protocol.", labels=["protocol"]
        )
        for protocol, stats in sorted(self._stats.items()):
            snapshot = stats()
            for outcome, count in sorted(snapshot.requests.items()):
                requests.add_metric([protocol, outcome], count)
            spans.add_metric([protocol], snapshot.spans)
        yield requests
        yield spans


class WorkersCollector(Collector):
    """Receiver worker processes (``receiver.workers``): configured, listening, restarted."""

    def __init__(self, state: Callable[[], tuple[int, int, int]]) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        configured, live, restarts = self._state()
        yield GaugeMetricFamily(
            "otelcost_receiver_workers",
            "Receiver worker processes configured (0: in-process).",
            value=configured,
        )
        yield GaugeMetricFamily(
            "otelcost_receiver_workers_live", "Receiver worker processes listening now.", value=live
        )
        yield _counter(
            "otelcost_receiver_worker_restarts",
            "Receiver worker processes started again after exiting.",
            restarts,
        )


class SpoolCollector(Collector):
    """The durable spool (docs/durability.md): appends, fsyncs, refusals, depth, the replay."""

    def __init__(self, spool: Spool, replayed: Callable[[], ReplayCounters]) -> None:
        self._spool = spool
        self._replayed = replayed

    def collect(self) -> Iterator[Metric]:
        s = self._spool.stats()
        yield _counter("otelcost_spool_appends", "Records appended to the spool.", s.appends)
        yield _counter(
            "otelcost_spool_appended_bytes", "Payload bytes appended to the spool.", s.bytes_appended
        )
        yield _counter(
            "otelcost_spool_fsyncs",
            "fsync/fdatasync calls of the spool (commits, rolls, directory, checkpoint).",
            s.fsyncs,
        )
        yield _counter(
            "otelcost_spool_fsync_seconds", "Time spent in the spool's fsyncs.", s.fsync_seconds_total
        )
        yield _counter(
            "otelcost_spool_commits",
            "Group commits that acknowledged appends (appends / commits = batching).",
            s.commits,
        )
        yield _labelled_counter(
            "otelcost_spool_refused",
            "Appends refused: full = spool.max_size reached, io = the disk refused.",
            "reason",
            {"full": s.refused_full, "io": s.refused_io},
        )
        yield GaugeMetricFamily(
            "otelcost_spool_depth_records",
            "Spool records not yet confirmed in the lake (replayed after a crash).",
            value=s.depth,
        )
        yield GaugeMetricFamily(
            "otelcost_spool_size_bytes",
            "On-disk bytes of the spool records not yet checkpointed.",
            value=s.size_bytes,
        )
        yield GaugeMetricFamily("otelcost_spool_segments", "Spool segment files.", value=s.segments)
        yield GaugeMetricFamily(
            "otelcost_spool_checkpointed_seq",
            "Highest spool seq confirmed in the lake.",
            value=s.checkpointed_seq,
        )
        yield GaugeMetricFamily("otelcost_spool_last_seq", "Highest spool seq appended.", value=s.last_seq)
        r = self._replayed()
        yield _counter(
            "otelcost_spool_replayed_records",
            "Spool records replayed into the lake and the budgets at start.",
            r.records,
        )
        yield _counter("otelcost_spool_replayed_rows", "Rows replayed from the spool at start.", r.rows)
        yield _counter(
            "otelcost_spool_replay_skipped_records",
            "Spool records not replayed at start because a lake file already held them.",
            r.records_in_lake,
        )
        yield GaugeMetricFamily(
            "otelcost_spool_replay_seconds", "Duration of the replay at start.", value=r.seconds
        )


# Evaluator figures that only grow; the rest are gauges.
_EVALUATOR_COUNTERS = frozenset(
    {
        "calls_seen",
        "calls_counted",
        "attribution_changes",
        "duplicates",
        "dedup_evicted",
        "late_calls",
        "consume_errors",
        "alerts_delivered",
        "alerts_failed",
        "alerts_dropped",
        "store_changes_sent",
        "store_changes_skipped",
        "store_changes_applied",
        "store_resyncs",
        "store_outages",
    }
)


class EvaluatorCollector(Collector):
    """The budget evaluator's figures (docs/budgets.md): ``otelcost_budget_<name>``."""

    def __init__(self, counters: Callable[[], dict[str, float]]) -> None:
        self._counters = counters

    def collect(self) -> Iterator[Metric]:
        for name, value in sorted(self._counters().items()):
            metric = f"otelcost_budget_{name}"
            if name in _EVALUATOR_COUNTERS:
                yield _counter(metric, f"Budget evaluator: {name.replace('_', ' ')}.", value)
            else:
                yield GaugeMetricFamily(metric, f"Budget evaluator: {name.replace('_', ' ')}.", value=value)


class AnomaliesCollector(Collector):
    """The live anomaly detectors of serve (otelcost/reports/anomalies/streaming.py)."""

    def __init__(self, counters: Callable[[], StreamingCounters]) -> None:
        self._counters = counters

    def collect(self) -> Iterator[Metric]:
        c = self._counters()
        yield _labelled_counter(
            "otelcost_anomalies_raised", "Live anomalies alerted, by kind.", "kind", c.raised
        )
        yield _labelled_counter(
            "otelcost_anomalies_suppressed",
            "Live anomalies not alerted: their calls belong to an incident alerted within the cooldown.",
            "kind",
            c.suppressed,
        )
        yield _counter("otelcost_anomalies_calls_seen", "Calls the live detectors were handed.", c.calls_seen)
        yield _labelled_counter(
            "otelcost_anomalies_calls_ignored",
            "Calls the live detectors did not count: stale (older than the baseline), duplicate.",
            "reason",
            c.calls_ignored,
        )
        yield _labelled_counter(
            "otelcost_anomalies_evicted",
            "Traces, sessions, scopes and workflow norms forgotten early: stream_max_keys was reached.",
            "what",
            c.evicted,
        )
        tracked = GaugeMetricFamily(
            "otelcost_anomalies_tracked",
            "Traces, sessions, scopes and workflow norms the live detectors remember.",
            labels=["what"],
        )
        for what, count in sorted(c.tracked.items()):
            tracked.add_metric([what], count)
        yield tracked
        yield _counter(
            "otelcost_anomalies_consume_errors",
            "Batches the live detectors failed on (logged).",
            c.consume_errors,
        )
        yield _counter("otelcost_anomalies_seconds", "Time spent in the live detectors.", c.seconds)
        yield _counter("otelcost_anomalies_alerts_delivered", "Anomaly alerts delivered.", c.alerts_delivered)
        yield _counter(
            "otelcost_anomalies_alerts_failed", "Anomaly alerts given up after retries.", c.alerts_failed
        )
        yield _counter(
            "otelcost_anomalies_alerts_dropped", "Anomaly alerts dropped (queue full).", c.alerts_dropped
        )
        yield GaugeMetricFamily(
            "otelcost_anomalies_alerts_pending",
            "Anomaly alerts waiting for delivery.",
            value=c.alerts_pending,
        )


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _labelled_counter(
    name: str, documentation: str, label: str, values: dict[str, int]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


class AuthCollector(Collector):
    """API requests by how they authenticated (OTLP refusals are in the receiver's outcomes)."""

    def __init__(self, outcomes: Callable[[], dict[tuple[str, str], int]]) -> None:
        self._outcomes = outcomes

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "otelcost_api_auth_requests",
            "API requests by outcome: key, anonymous, unauthenticated (401), forbidden (403).",
            labels=["outcome"],
        )
        for (surface, outcome), value in sorted(self._outcomes().items()):
            if surface == "api":
                family.add_metric([outcome], value)
        yield family


def build_registry(*collectors: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
