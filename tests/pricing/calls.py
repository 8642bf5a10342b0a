"""Build CALL_SCHEMA batches for pricing tests, one dict per call with defaults for the rest.

The whole-pipeline test (spans through the real server) is ``tests/pricing/test_pipeline.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from otelcost.schema import CALL_SCHEMA

DEFAULTS: dict[str, Any] = {
    "end_ts": None,
    "duration_ms": None,
    "trace_id": "0" * 32,
    "span_id": "0" * 16,
    "parent_span_id": None,
    "span_name": "chat",
    "response_id": None,
    "service": "svc",
    "environment": None,
    "scope_name": None,
    "convention": "gen_ai",
    "provider": None,
    "operation": "chat",
    "request_model": None,
    "response_model": None,
    "service_tier": None,
    "input_tokens": 0,
    "output_tokens": 0,
    "cache_read_tokens": 0,
    "cache_write_tokens": 0,
    "reasoning_tokens": 0,
    "team": None,
    "feature": None,
    "user_id": None,
    "tenant_id": None,
    "session_id": None,
    "project": None,
    "cost_center": None,
    "workflow": None,
    "attribution_status": "complete",
    "missing_dimensions": None,
    "ingest_key": None,
    "bound_dimensions": None,
    "status": "ok",
    "error_type": None,
    "attributes": None,
    "resource_attributes": None,
    "received_at": datetime(2026, 11, 22, tzinfo=UTC),
    "duplicate_of_trace_id": None,
    "duplicate_of_span_id": None,
    "duplicate_reason": None,
    "attribution_change": None,
    "attribution_change_reason": None,
}


def calls_table(rows: list[dict[str, Any]]) -> pa.Table:
    """A CALL_SCHEMA table; each row needs at least ``ts`` and may override any column.

    ``attributes`` may be given as a dict (it becomes the map column).
    """
    columns: dict[str, list[Any]] = {name: [] for name in CALL_SCHEMA.names}
    for i, row in enumerate(rows):
        unknown = set(row) - set(CALL_SCHEMA.names)
        if unknown:
            raise KeyError(f"not CALL_SCHEMA columns: {sorted(unknown)}")
        full = {**DEFAULTS, "span_id": f"{i:016x}", **row}
        if isinstance(full["attributes"], dict):
            full["attributes"] = list(full["attributes"].items())
        for name in CALL_SCHEMA.names:
            columns[name].append(full[name])
    return pa.Table.from_pydict(columns, schema=CALL_SCHEMA)


def at(text: str) -> datetime:
    """``2025-06-10T12:00`` (UTC) as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
