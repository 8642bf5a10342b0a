"""The normalizer stage: one OTLP export request in, one Arrow table of attributed LLM calls out.

For each span, in one pass over its attributes:

1. decode the attributes into a dict and remember the span in the trace memory (parent link and
   the values attribution rules read);
2. find the conventions whose marker keys it carries and let their adapters classify it as a
   *call* (one model request) or a *wrapper* (agent, workflow, chain ...) and read its usage
   (:mod:`otelcost.normalize.conventions`); anything else is dropped as ``not_llm``;
3. validate what a row needs (ids, timestamps, token counts) and reject what is invalid.

Then, for the request as a whole, the nested-usage rule (docs/attribution.md): every call marks
its ancestors; a span with a usage-carrying call below it is dropped (``wrapper_usage``), a span
without usage with any call below it is dropped (``wrapper_no_usage``), a call whose ancestor was
already emitted with usage is dropped (``ancestor_counted``), and a second span of the same trace
with the same provider response id is dropped (``duplicate_response_id``), as is a span sent twice
in one request (``duplicate_span``). Only then are the survivors attributed and turned into
columns, built as Python lists and converted to Arrow once per column.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from otelcost.normalize.attribution import Attribution, Attributor, load_ownership
from otelcost.normalize.config import AttributionConfig
from otelcost.normalize.conventions import (
    MARKER_BITS,
    USAGE_KEYS,
    Adapter,
    RawUsage,
    Role,
    SpanContext,
    Tokens,
    adapters_for,
    settle,
)
from otelcost.normalize.conventions.common import (
    REQUEST_MODEL_KEYS,
    RESPONSE_MODEL_KEYS,
    first_text,
    read_provider,
    read_service_tier,
)
from otelcost.normalize.lineage import BELOW_CALL, BELOW_USAGE, TraceMemory
from otelcost.normalize.values import InvalidCountError, attribute_text
from otelcost.normalize.wire import WireRequest, decode_wire_attributes, to_wire
from otelcost.schema import ATTRIBUTION_DIMENSIONS, CALL_SCHEMA

__all__ = ["MAX_FUTURE_SKEW_NS", "USAGE_NOTES_KEY", "NormalizeResult", "Normalizer", "NormalizerCounters"]

USAGE_NOTES_KEY: Final = "otelcost.usage_notes"
"""Added to a row's ``attributes`` when its token counts were converted or inferred
(comma-separated notes such as ``cache_added``, ``total_only``, ``usage_from_event``)."""

MAX_FUTURE_SKEW_NS: Final = 24 * 3600 * 10**9
"""A span starting more than a day after it was received is rejected (``future_timestamp``):
clock skew is seconds, a day ahead is a broken clock, and a far-future row would sit in a
partition nobody looks at while budgets count it now."""

MIN_START_NS: Final = 946_684_800 * 10**9
"""Spans starting before 2000-01-01 are rejected (``invalid_timestamp``): an unset or
uninitialized clock, not a real call."""

_STATUS_ERROR: Final = Status.STATUS_CODE_ERROR
_ALL_MARKERS: Final = frozenset(MARKER_BITS)
_ZERO_TRACE: Final = bytes(16)
_ZERO_SPAN: Final = bytes(8)
_DIMENSION_INDEX: Final = {name: index for index, name in enumerate(ATTRIBUTION_DIMENSIONS)}


@dataclass(frozen=True)
class NormalizeResult:
    """What one request turned into."""

    calls: pa.Table
    """Exactly ``schema.CALL_SCHEMA``: one row per LLM call."""
    spans_seen: int
    dropped: Mapping[str, int]
    """Spans not turned into rows and not an error, by reason (``not_llm``, ``wrapper_usage`` ...)."""
    rejected: int
    """Invalid spans (OTLP partial success)."""
    rejected_reasons: Mapping[str, int]


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
        )


@dataclass(slots=True)
class _Resource:
    attrs: dict[str, Any]
    service: str | None
    sdk_name: str | None
    _text: tuple[list[str], list[str]] | None = None

    def text(self) -> tuple[list[str], list[str]]:
        if self._text is None:
            self._text = (list(self.attrs), [attribute_text(v) for v in self.attrs.values()])
        return self._text


@dataclass(slots=True)
class _Draft:
    """A span recognized as an LLM call candidate, before the nested-usage rule."""

    key: bytes
    parent_key: bytes | None
    span: Any
    """A ``wire`` span: the fields of ``trace_pb2.Span`` the normalizer reads, same names."""
    attrs: dict[str, Any]
    resource: _Resource
    scope_name: str
    convention: str
    operation: str | None
    provider: str | None
    tokens: Tokens
    has_usage: bool
    response_id: str | None


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
        self._span_keys = self._attributor.span_keys
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

    # -- per span ------------------------------------------------------------------------------

    def _normalize(self, request: ExportTraceServiceRequest, now_ns: int) -> NormalizeResult:
        # Re-read the request with attributes as raw bytes (see wire.py): a serialize and a
        # parse in C cost ~5 µs per span and save the ~1 µs per attribute that reading
        # KeyValue/AnyValue wrappers costs.
        wire = request if isinstance(request, WireRequest) else to_wire(request)
        memory = self._memory
        memory.evict(now_ns)
        span_keys = self._span_keys
        dropped: Counter[str] = Counter()
        rejected: Counter[str] = Counter()
        drafts: list[_Draft] = []
        spans_seen = 0
        for resource_spans in wire.resource_spans:
            resource_attrs = decode_wire_attributes(resource_spans.resource.attributes)
            service = resource_attrs.get("service.name")
            sdk_name = resource_attrs.get("telemetry.sdk.name")
            resource = _Resource(
                resource_attrs,
                service if isinstance(service, str) else None,
                sdk_name.lower() if isinstance(sdk_name, str) else None,
            )
            for scope_spans in resource_spans.scope_spans:
                scope_name = scope_spans.scope.name
                for span in scope_spans.spans:
                    spans_seen += 1
                    attrs = decode_wire_attributes(span.attributes)
                    trace_id = span.trace_id
                    span_id = span.span_id
                    parent_id = span.parent_span_id
                    ids_valid = (
                        len(trace_id) == 16
                        and len(span_id) == 8
                        and len(parent_id) in (0, 8)
                        and trace_id != _ZERO_TRACE
                        and span_id != _ZERO_SPAN
                    )
                    key = trace_id + span_id
                    parent_key = trace_id + parent_id if parent_id and parent_id != _ZERO_SPAN else None
                    if ids_valid:
                        common = span_keys.intersection(attrs)
                        tags = {k: attrs[k] for k in common} if common else None
                        memory.observe(key, parent_key, tags, now_ns)
                    if _ALL_MARKERS.isdisjoint(attrs):
                        if not span.events:
                            dropped["not_llm"] += 1
                            continue
                        event_attrs = _event_usage(span)
                        if event_attrs is None:
                            dropped["not_llm"] += 1
                            continue
                        attrs_for_usage = {**event_attrs, **attrs}
                    else:
                        attrs_for_usage = attrs
                    outcome = self._recognize(attrs, attrs_for_usage, span, resource, scope_name)
                    if isinstance(outcome, str):
                        if outcome.startswith("!"):
                            rejected[outcome[1:]] += 1
                        else:
                            dropped[outcome] += 1
                        continue
                    reason = _invalid(span, ids_valid, now_ns)
                    if reason is not None:
                        rejected[reason] += 1
                        continue
                    adapter, raw, from_event, ctx = outcome
                    tokens = settle(raw) if raw is not None else _NO_TOKENS
                    if from_event:
                        tokens = Tokens(*_token_tuple(tokens), notes=(*tokens.notes, "usage_from_event"))
                    response_id = attrs.get("gen_ai.response.id")
                    drafts.append(
                        _Draft(
                            key=key,
                            parent_key=parent_key,
                            span=span,
                            attrs=attrs,
                            resource=resource,
                            scope_name=scope_name,
                            convention=adapter.label(attrs, ctx),
                            operation=adapter.operation(attrs, span.name) or _operation_from_name(span.name),
                            provider=ctx.provider,
                            tokens=tokens,
                            has_usage=raw is not None,
                            response_id=response_id if isinstance(response_id, str) and response_id else None,
                        )
                    )
        kept = self._apply_nesting_rule(drafts, dropped, now_ns)
        table, attributions = self._build_table(kept, now_ns)
        self._count(spans_seen, kept, attributions, dropped, rejected)
        return NormalizeResult(
            calls=table,
            spans_seen=spans_seen,
            dropped=dict(dropped),
            rejected=sum(rejected.values()),
            rejected_reasons=dict(rejected),
        )

    def _recognize(
        self,
        attrs: dict[str, Any],
        attrs_for_usage: dict[str, Any],
        span: Any,
        resource: _Resource,
        scope_name: str,
    ) -> str | tuple[Adapter, RawUsage | None, bool, SpanContext]:
        """(adapter, usage, usage_from_event, context), a drop reason, or a ``!``-prefixed reject reason.

        The span is a candidate call when this returns a tuple: a CALL with or without usage, or
        a WRAPPER with usage.
        """
        mask = 0
        for key in _ALL_MARKERS.intersection(attrs_for_usage):
            mask |= MARKER_BITS[key]
        ctx = SpanContext(span.name, scope_name, read_provider(attrs_for_usage), resource.sdk_name)
        from_event = attrs_for_usage is not attrs
        first: tuple[Adapter, Role] | None = None
        try:
            for adapter in adapters_for(mask):
                role = adapter.classify(attrs_for_usage, span.name)
                if role is None:
                    continue
                raw = adapter.usage(attrs_for_usage, ctx)
                if raw is not None:
                    return adapter, raw, from_event, ctx
                if first is None:
                    first = (adapter, role)
            if first is not None and not from_event and span.events:
                # Usage may ride on a span event instead of the span (some SDKs, log-style emitters).
                event_attrs = _event_usage(span)
                if event_attrs is not None:
                    merged = {**event_attrs, **attrs}
                    for adapter in adapters_for(mask | _mask(event_attrs)):
                        if adapter.classify(merged, span.name) is None:
                            continue
                        raw = adapter.usage(merged, ctx)
                        if raw is not None:
                            return adapter, raw, True, ctx
        except InvalidCountError as exc:
            return "!" + exc.reason
        if first is None:
            return "not_llm"
        adapter, role = first
        if role is Role.WRAPPER:
            return "not_llm"  # an agent/workflow/tool span without usage is not a call
        return adapter, None, False, ctx

    # -- across spans ------------------------------------------------------------------------------

    def _apply_nesting_rule(self, drafts: list[_Draft], dropped: Counter[str], now_ns: int) -> list[_Draft]:
        memory = self._memory
        for draft in drafts:
            if draft.parent_key is not None:
                memory.mark_below(draft.parent_key, BELOW_CALL, now_ns)
                if draft.has_usage:
                    memory.mark_below(draft.parent_key, BELOW_USAGE, now_ns)
        kept: list[_Draft] = []
        seen: set[bytes] = set()
        for draft in drafts:
            flags = memory.flags(draft.key)
            if draft.key in seen:
                dropped["duplicate_span"] += 1  # the same span twice in one request
            elif draft.has_usage and flags & BELOW_USAGE:
                dropped["wrapper_usage"] += 1
            elif not draft.has_usage and flags & BELOW_CALL:
                dropped["wrapper_no_usage"] += 1
            elif memory.ancestor_emitted(draft.parent_key):
                dropped["ancestor_counted"] += 1
            elif draft.response_id is not None and not memory.claim_response(
                draft.key[:16], draft.response_id, draft.key, now_ns
            ):
                dropped["duplicate_response_id"] += 1
            else:
                if draft.has_usage:
                    memory.mark_emitted(draft.key)
                seen.add(draft.key)
                kept.append(draft)
        return kept

    # -- columns ---------------------------------------------------------------------------------

    def _build_table(self, drafts: list[_Draft], now_ns: int) -> tuple[pa.Table, list[Attribution]]:
        n = len(drafts)
        attributor = self._attributor
        memory = self._memory
        ts: list[int] = []
        end_ts: list[int | None] = []
        duration_ms: list[float | None] = []
        trace_ids: list[str] = []
        span_ids: list[str] = []
        parent_ids: list[str | None] = []
        names: list[str] = []
        services: list[str | None] = []
        scopes: list[str] = []
        conventions: list[str] = []
        providers: list[str | None] = []
        operations: list[str | None] = []
        request_models: list[str | None] = []
        response_models: list[str | None] = []
        tiers: list[str] = []
        token_columns: tuple[list[int], ...] = ([], [], [], [], [])
        status: list[str] = []
        error_types: list[str | None] = []
        attr_offsets = [0]
        attr_keys: list[str] = []
        attr_values: list[str] = []
        res_offsets = [0]
        res_keys: list[str] = []
        res_values: list[str] = []
        attributions: list[Attribution] = []
        for draft in drafts:
            span = draft.span
            attrs = draft.attrs
            start = span.start_time_unix_nano
            end = span.end_time_unix_nano
            ts.append(start // 1000)
            if end:
                end_ts.append(end // 1000)
                duration_ms.append((end - start) / 1e6)
            else:
                end_ts.append(None)
                duration_ms.append(None)
            trace_ids.append(span.trace_id.hex())
            span_ids.append(span.span_id.hex())
            parent_ids.append(span.parent_span_id.hex() if draft.parent_key is not None else None)
            names.append(span.name)
            services.append(draft.resource.service)
            scopes.append(draft.scope_name)
            conventions.append(draft.convention)
            providers.append(draft.provider)
            operations.append(draft.operation)
            request_models.append(first_text(attrs, REQUEST_MODEL_KEYS))
            response_models.append(first_text(attrs, RESPONSE_MODEL_KEYS))
            tiers.append(read_service_tier(attrs))
            tokens = draft.tokens
            token_columns[0].append(tokens.input)
            token_columns[1].append(tokens.output)
            token_columns[2].append(tokens.cache_read)
            token_columns[3].append(tokens.cache_write)
            token_columns[4].append(tokens.reasoning)
            failed, error_type = _outcome(span, attrs)
            status.append("error" if failed else "ok")
            error_types.append(error_type)
            attr_keys.extend(attrs)
            attr_values.extend(
                [
                    v if type(v) is str else str(v) if type(v) is int else attribute_text(v)
                    for v in attrs.values()
                ]
            )
            if tokens.notes:
                attr_keys.append(USAGE_NOTES_KEY)
                attr_values.append(",".join(tokens.notes))
            attr_offsets.append(len(attr_keys))
            keys, values = draft.resource.text()
            res_keys.extend(keys)
            res_values.extend(values)
            res_offsets.append(len(res_keys))
            attributions.append(
                attributor.attribute(
                    attrs,
                    draft.resource.attrs,
                    draft.resource.service,
                    # A root call has no ancestors: no bound method and partial per span.
                    _no_ancestors
                    if draft.parent_key is None
                    else partial(memory.ancestor_tags, draft.parent_key),
                )
            )
        dimension_columns = [[a.values[i] for a in attributions] for i in range(len(ATTRIBUTION_DIMENSIONS))]
        schema = CALL_SCHEMA
        columns: dict[str, Any] = {
            "ts": ts,
            "end_ts": end_ts,
            "duration_ms": duration_ms,
            "trace_id": trace_ids,
            "span_id": span_ids,
            "parent_span_id": parent_ids,
            "span_name": names,
            "service": services,
            "environment": dimension_columns[_DIMENSION_INDEX["environment"]],
            "scope_name": scopes,
            "convention": conventions,
            "provider": providers,
            "operation": operations,
            "request_model": request_models,
            "response_model": response_models,
            "service_tier": tiers,
            "input_tokens": token_columns[0],
            "output_tokens": token_columns[1],
            "cache_read_tokens": token_columns[2],
            "cache_write_tokens": token_columns[3],
            "reasoning_tokens": token_columns[4],
            "attribution_status": ["incomplete" if a.missing else "complete" for a in attributions],
            "missing_dimensions": [a.missing for a in attributions],  # pyarrow takes the tuples
            "status": status,
            "error_type": error_types,
            "received_at": [now_ns // 1000] * n,
        }
        for name in ATTRIBUTION_DIMENSIONS:
            if name != "environment":
                columns[name] = dimension_columns[_DIMENSION_INDEX[name]]
        arrays: list[pa.Array] = []
        for schema_field in schema:
            if schema_field.name == "attributes":
                arrays.append(_map_array(attr_offsets, attr_keys, attr_values, schema_field.type))
            elif schema_field.name == "resource_attributes":
                arrays.append(_map_array(res_offsets, res_keys, res_values, schema_field.type))
            else:
                arrays.append(pa.array(columns[schema_field.name], type=schema_field.type))
        return pa.Table.from_arrays(arrays, schema=schema), attributions

    def _count(
        self,
        spans_seen: int,
        kept: list[_Draft],
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
        for attribution in attributions:
            if attribution.missing:
                counters.incomplete_calls += 1
                counters.missing_by_dimension.update(attribution.missing)
            if attribution.inherited:
                counters.inherited_by_dimension.update(attribution.inherited)
        counters.trace_memory_spans = len(self._memory)


_NO_TOKENS: Final = Tokens(0, 0, 0, 0, 0)


def _no_ancestors() -> list[Mapping[str, Any]]:
    return []


def _token_tuple(tokens: Tokens) -> tuple[int, int, int, int, int]:
    return tokens.input, tokens.output, tokens.cache_read, tokens.cache_write, tokens.reasoning


def _mask(attrs: Mapping[str, Any]) -> int:
    mask = 0
    for key in _ALL_MARKERS.intersection(attrs):
        mask |= MARKER_BITS[key]
    return mask


def _event_usage(span: Any) -> dict[str, Any] | None:
    """Attributes of the last span event that carries token counts, if any."""
    for event in reversed(span.events):
        event_attrs = decode_wire_attributes(event.attributes)
        if not USAGE_KEYS.isdisjoint(event_attrs):
            return event_attrs
    return None


def _invalid(span: Any, ids_valid: bool, now_ns: int) -> str | None:
    """Why a call span cannot become a row, or None."""
    if not ids_valid:
        if len(span.trace_id) != 16 or span.trace_id == _ZERO_TRACE:
            return "invalid_trace_id"
        if len(span.span_id) != 8 or span.span_id == _ZERO_SPAN:
            return "invalid_span_id"
        return "invalid_parent_span_id"
    start = span.start_time_unix_nano
    if start == 0:
        return "missing_timestamp"
    if start < MIN_START_NS:
        return "invalid_timestamp"
    if start > now_ns + MAX_FUTURE_SKEW_NS:
        return "future_timestamp"
    end = span.end_time_unix_nano
    if end and end < start:
        return "end_before_start"
    return None


_NAME_OPERATIONS: Final = frozenset(
    {"chat", "text_completion", "generate_content", "embeddings", "invoke_agent", "execute_tool"}
)


def _operation_from_name(name: str) -> str | None:
    """``chat gpt-4o`` -> ``chat``: the span-name pattern of the GenAI conventions."""
    head = name.split(" ", 1)[0]
    return head if head in _NAME_OPERATIONS else None


def _outcome(span: Any, attrs: Mapping[str, Any]) -> tuple[bool, str | None]:
    level = attrs.get("langfuse.observation.level")
    failed = span.status.code == _STATUS_ERROR or (isinstance(level, str) and level.upper() == "ERROR")
    error_type = attrs.get("error.type")
    if error_type is not None and error_type != "":
        return failed, error_type if isinstance(error_type, str) else attribute_text(error_type)
    if failed:
        message = span.status.message or attrs.get("langfuse.observation.status_message")
        return True, message if isinstance(message, str) and message else None
    return False, None


def _map_array(offsets: list[int], keys: list[str], values: list[str], type_: pa.DataType) -> pa.Array:
    return pa.MapArray.from_arrays(
        pa.array(offsets, type=pa.int32()),
        pa.array(keys, type=pa.string()),
        pa.array(values, type=pa.string()),
        type=type_,
    )
