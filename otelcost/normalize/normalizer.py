"""The normalizer stage: one OTLP export request in, one Arrow table of attributed LLM calls out.

:meth:`Normalizer.normalize` runs the steps in order, each in its own module:

1. read the spans (:func:`~otelcost.normalize.spans.read_spans`): decode, remember in the trace
   memory, recognize (:mod:`~otelcost.normalize.recognition`) and validate
   (:mod:`~otelcost.normalize.validation`) each span; candidate calls out;
2. apply the nested-usage rule to the request as a whole
   (:func:`~otelcost.normalize.nesting.apply_nesting_rule`): usage counted once per chain;
3. attribute the kept calls (:class:`~otelcost.normalize.attribution.Attributor`, with the
   ancestors the trace memory knows);
4. build the columns (:func:`~otelcost.normalize.columns.build_table`);
5. calls of earlier requests whose ancestors arrived in this one are attributed again, and
   proposed as attribution changes where the result differs
   (:class:`~otelcost.normalize.pending.PendingCalls`);
6. count what happened, for self-metrics (:class:`NormalizerCounters`).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otelcost.normalize.attribution import Attribution, Attributor, load_ownership
from otelcost.normalize.columns import build_table
from otelcost.normalize.config import AttributionConfig
from otelcost.normalize.lineage import TraceMemory
from otelcost.normalize.nesting import apply_nesting_rule
from otelcost.normalize.pending import PendingCalls
from otelcost.normalize.spans import Draft, read_spans
from otelcost.normalize.wire import WireRequest, to_wire
from otelcost.schema import ATTRIBUTION_DIMENSIONS

__all__ = ["NormalizeResult", "Normalizer", "NormalizerCounters"]


@dataclass(frozen=True)
class NormalizeResult:
    """What one request turned into."""

    calls: pa.Table
    """Exactly ``schema.CALL_SCHEMA``: one row per LLM call."""
    proposals: pa.Table | None
    """CALL_SCHEMA rows of calls of earlier requests whose late ancestors (in this request)
    changed their attribution (``pending.py``), ``attribution_change`` = ``proposed``."""
    spans_seen: int
    dropped: Mapping[str, int]
    """Spans not turned into rows and not an error, by reason (``not_llm``, ``wrapper_usage`` ...)."""
    rejected: int
    """Invalid spans (OTLP partial success)."""
    rejected_reasons: Mapping[str, int]

    @property
    def rows(self) -> pa.Table:
        """The calls and the proposals in one table: what the pricer prices."""
        return self.calls if self.proposals is None else pa.concat_tables([self.calls, self.proposals])


@dataclass
class NormalizerCounters:
    """Running totals since start, for self-metrics. Plain integers; read with :meth:`snapshot`."""

    spans_seen: int = 0
    calls: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    calls_by_convention: Counter[str] = field(default_factory=Counter)
    incomplete_calls: int = 0
    missing_by_dimension: Counter[str] = field(default_factory=Counter)
    """Calls missing each required dimension (a call missing two counts in both)."""
    inherited_by_dimension: Counter[str] = field(default_factory=Counter)
    """Calls whose dimension value came from an ancestor span."""
    usage_notes: Counter[str] = field(default_factory=Counter)
    """Token conversions applied (``cache_added``, ``total_only``, ``usage_from_event`` ...)."""
    trace_memory_spans: int = 0
    """Spans currently remembered (a gauge)."""
    pending_calls: int = 0
    """Calls waiting for ancestors that have not arrived (a gauge, ``pending.py``)."""
    proposed_changes: int = 0
    """Calls attributed again when their ancestors arrived, with a different result."""
    attribute_values_cut: int = 0
    """Attribute values cut to ``attribution.max_attribute_value_length`` in the lake's maps."""
    key_calls: Counter[str] = field(default_factory=Counter)
    """Calls sent with an API key, by the key's name (``ingest_key``)."""
    key_overrides: Counter[str] = field(default_factory=Counter)
    """Calls whose span claimed another value than its key binds, by dimension (spoofing, or a
    misconfigured service)."""

    def snapshot(self) -> NormalizerCounters:
        return NormalizerCounters(
            self.spans_seen,
            self.calls,
            Counter(self.dropped),
            Counter(self.rejected),
            Counter(self.calls_by_convention),
            self.incomplete_calls,
            Counter(self.missing_by_dimension),
            Counter(self.inherited_by_dimension),
            Counter(self.usage_notes),
            self.trace_memory_spans,
            self.pending_calls,
            self.proposed_changes,
            self.attribute_values_cut,
            Counter(self.key_calls),
            Counter(self.key_overrides),
        )


class Normalizer:
    """Turns OTLP export requests into attributed LLM-call tables (``schema.CALL_SCHEMA``).

    Keeps a bounded trace memory across requests (see :mod:`otelcost.normalize.lineage`);
    ``normalize`` is serialized by a lock, so one instance may be shared between threads.
    """

    def __init__(self, config: AttributionConfig) -> None:
        self.config = config
        self._attributor = Attributor(config, load_ownership(config.ownership))
        memory = config.trace_memory
        self._memory = TraceMemory(
            window_ns=int(memory.window.total_seconds() * 1e9),
            max_spans=memory.max_spans,
            max_depth=memory.max_depth,
        )
        self._pending = (
            PendingCalls(
                self._memory,
                self._attributor.span_keys,
                window_ns=int(memory.window.total_seconds() * 1e9),
                max_calls=memory.max_pending_calls,
            )
            if config.inherit and config.late_ancestors and memory.max_pending_calls
            else None
        )
        self._lock = threading.Lock()
        self.counters = NormalizerCounters()

    def normalize(self, request: ExportTraceServiceRequest, *, received_at_ns: int) -> NormalizeResult:
        """Turn one request into rows. ``received_at_ns`` is the wall-clock arrival time (it fills
        ``received_at``, bounds future timestamps and drives trace-memory expiry)."""
        with self._lock:
            return self._normalize(request, received_at_ns)

    def counters_snapshot(self) -> NormalizerCounters:
        """A consistent copy of the counters, safe to take while another thread normalizes."""
        with self._lock:
            return self.counters.snapshot()

    def _normalize(self, request: ExportTraceServiceRequest, now_ns: int) -> NormalizeResult:
        # Re-read the request with attributes as raw bytes (see wire.py): a serialize and a
        # parse in C cost ~5 µs per span and save the ~1 µs per attribute that reading
        # KeyValue/AnyValue wrappers costs.
        wire = request if isinstance(request, WireRequest) else to_wire(request)
        self._memory.evict(now_ns)
        pending = self._pending
        if pending is not None:
            pending.evict(now_ns)
        dropped: Counter[str] = Counter()
        rejected: Counter[str] = Counter()
        touched: set[bytes] = set()
        drafts, spans_seen = read_spans(
            wire,
            self._memory,
            self._attributor.span_keys,
            now_ns,
            dropped=dropped,
            rejected=rejected,
            watched=pending.traces if pending is not None else None,
            touched=touched,
        )
        kept = apply_nesting_rule(drafts, self._memory, dropped, now_ns)
        attributions = self._attribute(kept)
        cut: list[int] = []
        table = build_table(
            kept, attributions, now_ns, max_value_length=self.config.max_attribute_value_length, cut=cut
        )
        if cut:
            self.counters.attribute_values_cut += sum(cut)
        proposals = None
        if pending is not None:
            # Calls of earlier requests first: their ancestors may be in this one.
            proposals = pending.revisit(touched, self._attributor.attribute) if touched else None
            pending.add(kept, attributions, table, now_ns)
            if proposals is not None:
                self.counters.proposed_changes += proposals.num_rows
        self._count(spans_seen, kept, attributions, dropped, rejected)
        return NormalizeResult(
            calls=table,
            proposals=proposals,
            spans_seen=spans_seen,
            dropped=dict(dropped),
            rejected=sum(rejected.values()),
            rejected_reasons=dict(rejected),
        )

    def _attribute(self, kept: list[Draft]) -> list[Attribution]:
        """The dimension values of each kept call, reading its ancestors in the trace memory."""
        attribute = self._attributor.attribute
        ancestor_tags = self._memory.ancestor_tags
        return [
            attribute(
                draft.attrs,
                draft.resource.attrs,
                draft.resource.service,
                # A root call has no ancestors: no partial per span.
                _no_ancestors if draft.parent_key is None else partial(ancestor_tags, draft.parent_key),
                None if draft.resource.key is None else draft.resource.key.bind,
            )
            for draft in kept
        ]

    def _count(
        self,
        spans_seen: int,
        kept: list[Draft],
        attributions: list[Attribution],
        dropped: Counter[str],
        rejected: Counter[str],
    ) -> None:
        counters = self.counters
        counters.spans_seen += spans_seen
        counters.calls += len(kept)
        counters.dropped.update(dropped)
        counters.rejected.update(rejected)
        # Counter.update is a Python-level call of a few µs even for an empty tuple; most calls
        # have no notes and nothing inherited, so it is called only when there is something to add.
        for draft in kept:
            counters.calls_by_convention[draft.convention] += 1
            if draft.tokens.notes:
                counters.usage_notes.update(draft.tokens.notes)
            if draft.resource.key is not None:
                counters.key_calls[draft.resource.key.name] += 1
                claimed = draft.resource.claimed_service
                bound = draft.resource.key.bind.get("service")
                if bound is not None and claimed is not None and claimed != bound:
                    counters.key_overrides["service"] += 1
        for attribution in attributions:
            if attribution.missing:
                counters.incomplete_calls += 1
                counters.missing_by_dimension.update(attribution.missing)
            if attribution.inherited:
                counters.inherited_by_dimension.update(attribution.inherited)
            for dimension, claimed in attribution.claimed:
                if claimed is not None and claimed != attribution.values[_DIMENSION_INDEX[dimension]]:
                    counters.key_overrides[dimension] += 1
        counters.trace_memory_spans = len(self._memory)
        counters.pending_calls = len(self._pending) if self._pending is not None else 0


_DIMENSION_INDEX = {dimension: index for index, dimension in enumerate(ATTRIBUTION_DIMENSIONS)}


def _no_ancestors() -> list[Mapping[str, Any]]:
    return []
