"""Building the ``CALL_SCHEMA`` table from the kept calls and their attributions.

Columns are built as Python lists in one pass over the calls and converted to Arrow once per
column; the ``attributes`` and ``resource_attributes`` maps are built from flat key and value
lists with offsets, every value rendered as text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from otelcost.normalize.attribution import Attribution
from otelcost.normalize.conventions.common import (
    REQUEST_MODEL_KEYS,
    RESPONSE_MODEL_KEYS,
    first_text,
    read_service_tier,
)
from otelcost.normalize.spans import Draft
from otelcost.normalize.values import attribute_text
from otelcost.schema import ATTRIBUTION_DIMENSIONS, CALL_SCHEMA, SETTLEMENT_COLUMN_NAMES

__all__ = ["CUT_MARKER", "USAGE_NOTES_KEY", "build_table"]

USAGE_NOTES_KEY: Final = "otelcost.usage_notes"
"""Added to a row's ``attributes`` when its token counts were converted or inferred
(comma-separated notes such as ``cache_added``, ``total_only``, ``usage_from_event``)."""

CUT_MARKER: Final = " [cut by otelcost: {length} characters, over attribution.max_attribute_value_length]"
"""Appended to an attribute value cut to ``max_attribute_value_length``; says it was cut and
how long the value was, so a reader never takes a cut prompt for the whole one."""

_STATUS_ERROR: Final = Status.STATUS_CODE_ERROR


def build_table(
    drafts: Sequence[Draft],
    attributions: Sequence[Attribution],
    now_ns: int,
    *,
    max_value_length: int | None = None,
    cut: list[int] | None = None,
) -> pa.Table:
    """One row per call, exactly ``CALL_SCHEMA``; ``attributions[i]`` belongs to ``drafts[i]``.

    Attribute values longer than ``max_value_length`` characters are cut (``CUT_MARKER``); how
    many were is appended to ``cut`` when given.
    """
    columns = _call_columns(drafts, max_value_length, cut)
    columns.update(_attribution_columns(attributions))
    columns.update(_key_columns(drafts, attributions))
    columns["received_at"] = [now_ns // 1000] * len(drafts)
    none = pa.nulls(len(drafts), pa.string())
    columns.update(dict.fromkeys(SETTLEMENT_COLUMN_NAMES, none))  # calls: not folded, not a change
    arrays = [
        column if isinstance(column := columns[field.name], pa.Array) else pa.array(column, type=field.type)
        for field in CALL_SCHEMA
    ]
    return pa.Table.from_arrays(arrays, schema=CALL_SCHEMA)


def _call_columns(
    drafts: Sequence[Draft], max_value_length: int | None, cut: list[int] | None
) -> dict[str, Any]:
    """Every column read from the spans themselves: Python lists, and the two Arrow maps."""
    ts: list[int] = []
    end_ts: list[int | None] = []
    duration_ms: list[float | None] = []
    trace_ids: list[str] = []
    span_ids: list[str] = []
    parent_ids: list[str | None] = []
    names: list[str] = []
    response_ids: list[str | None] = []
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
        response_ids.append(draft.response_id)
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
            [v if type(v) is str else str(v) if type(v) is int else attribute_text(v) for v in attrs.values()]
        )
        if tokens.notes:
            attr_keys.append(USAGE_NOTES_KEY)
            attr_values.append(",".join(tokens.notes))
        attr_offsets.append(len(attr_keys))
        keys, values = draft.resource.text()
        res_keys.extend(keys)
        res_values.extend(values)
        res_offsets.append(len(res_keys))
    return {
        "ts": ts,
        "end_ts": end_ts,
        "duration_ms": duration_ms,
        "trace_id": trace_ids,
        "span_id": span_ids,
        "parent_span_id": parent_ids,
        "span_name": names,
        "response_id": response_ids,
        "service": services,
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
        "status": status,
        "error_type": error_types,
        "attributes": _map_array(
            attr_offsets, attr_keys, attr_values, "attributes", max_value_length=max_value_length, cut=cut
        ),
        "resource_attributes": _map_array(
            res_offsets,
            res_keys,
            res_values,
            "resource_attributes",
            max_value_length=max_value_length,
            cut=cut,
        ),
    }


def _attribution_columns(attributions: Sequence[Attribution]) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {
        name: [a.values[index] for a in attributions] for index, name in enumerate(ATTRIBUTION_DIMENSIONS)
    }
    columns["attribution_status"] = ["incomplete" if a.missing else "complete" for a in attributions]
    columns["missing_dimensions"] = [a.missing for a in attributions]  # pyarrow takes the tuples
    return columns


def _key_columns(drafts: Sequence[Draft], attributions: Sequence[Attribution]) -> dict[str, Any]:
    """``ingest_key`` and ``bound_dimensions``: NULL for calls sent without a key (most, in a
    deployment that allows anonymous ingest), so that case builds no per-row values."""
    n = len(drafts)
    if all(draft.resource.key is None for draft in drafts):
        return {"ingest_key": pa.nulls(n, pa.string()), "bound_dimensions": pa.nulls(n, _BOUND_TYPE)}
    names: list[str | None] = []
    bound: list[list[tuple[str, str | None]] | None] = []
    for draft, attribution in zip(drafts, attributions, strict=True):
        key = draft.resource.key
        if key is None:
            names.append(None)
            bound.append(None)
            continue
        names.append(key.name)
        claims = list(attribution.claimed)
        if "service" in key.bind:
            claims.append(("service", draft.resource.claimed_service))
        bound.append(claims)
    return {"ingest_key": names, "bound_dimensions": pa.array(bound, type=_BOUND_TYPE)}


_BOUND_TYPE: Final = CALL_SCHEMA.field("bound_dimensions").type


def _outcome(span: Any, attrs: Mapping[str, Any]) -> tuple[bool, str | None]:
    """(failed, error type): the span status, or a Langfuse ``ERROR`` level."""
    level = attrs.get("langfuse.observation.level")
    failed = span.status.code == _STATUS_ERROR or (isinstance(level, str) and level.upper() == "ERROR")
    error_type = attrs.get("error.type")
    if error_type is not None and error_type != "":
        return failed, error_type if isinstance(error_type, str) else attribute_text(error_type)
    if failed:
        message = span.status.message or attrs.get("langfuse.observation.status_message")
        return True, message if isinstance(message, str) and message else None
    return False, None


def _map_array(
    offsets: list[int],
    keys: list[str],
    values: list[str],
    column: str,
    *,
    max_value_length: int | None,
    cut: list[int] | None,
) -> pa.Array:
    value_array = pa.array(values, type=pa.string())
    if max_value_length is not None and len(value_array):
        value_array = _bounded(value_array, max_value_length, cut)
    return pa.MapArray.from_arrays(
        pa.array(offsets, type=pa.int32()),
        pa.array(keys, type=pa.string()),
        value_array,
        type=CALL_SCHEMA.field(column).type,
    )


def _bounded(values: pa.Array, limit: int, cut: list[int] | None) -> pa.Array:
    """``values`` with every string longer than ``limit`` characters cut and marked.

    Vectorised: one length pass over all values of the batch, and only the long ones (rare)
    are rewritten in Python.
    """
    lengths = pc.utf8_length(values)
    if pc.max(lengths).as_py() <= limit:  # the common case: nothing to cut
        return values
    too_long = pc.greater(lengths, limit)
    positions = pc.indices_nonzero(too_long).to_pylist()
    replaced = values.to_pylist()
    for position in positions:
        text = replaced[position]
        replaced[position] = text[:limit] + CUT_MARKER.format(length=len(text))
    if cut is not None:
        cut.append(len(positions))
    return pa.array(replaced, type=pa.string())
