"""Priced-call rows for budget tests: ``calls(3, team="ml", cost="1.25", at=...)``.

Every call gets fresh random trace and span ids unless ``ids`` is given, so the same builder
call twice gives distinct calls, and ``calls(..., ids=other.ids)`` replays calls exactly.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from otelcost.schema import RECORD_SCHEMA

__all__ = ["at", "calls", "ids_of"]

_DEFAULTS: dict[str, Any] = {
    "duration_ms": 100.0,
    "span_name": "chat gpt-4o",
    "service": "svc",
    "environment": "production",
    "scope_name": "test",
    "convention": "gen_ai",
    "provider": "openai",
    "operation": "chat",
    "request_model": "gpt-4o",
    "response_model": "gpt-4o",
    "model": "gpt-4o",
    "cache_read_tokens": 0,
    "cache_write_tokens": 0,
    "reasoning_tokens": 0,
    "input_cost_usd": Decimal(0),
    "cache_read_cost_usd": Decimal(0),
    "cache_write_cost_usd": Decimal(0),
    "output_cost_usd": Decimal(0),
    "reasoning_cost_usd": Decimal(0),
    "attribution_status": "complete",
    "status": "ok",
}


def at(text: str) -> datetime:
    """``at("2026-03-14T10:00:00")`` is that instant in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ids_of(table: pa.Table) -> list[tuple[str, str]]:
    return list(zip(table["trace_id"].to_pylist(), table["span_id"].to_pylist(), strict=True))


def calls(
    n: int = 1,
    *,
    at: datetime,
    cost: str | Decimal = "1",
    effective_cost: str | Decimal | None = None,
    input_tokens: int = 100,
    output_tokens: int = 50,
    pricing_status: str = "priced",
    received: datetime | None = None,
    ids: Sequence[tuple[str, str]] | None = None,
    **dimensions: str | None,
) -> pa.Table:
    """``n`` priced calls at ``at`` (received 1 s later unless ``received`` is given)."""
    cost_value = Decimal(cost) if pricing_status == "priced" else Decimal(0)
    effective = Decimal(effective_cost) if effective_cost is not None else cost_value
    received_at = received or at + timedelta(seconds=1)
    rows = []
    for index in range(n):
        trace_id, span_id = ids[index] if ids is not None else (secrets.token_hex(16), secrets.token_hex(8))
        row = dict(_DEFAULTS)
        row |= {
            "ts": at,
            "end_ts": at + timedelta(milliseconds=100),
            "trace_id": trace_id,
            "span_id": span_id,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cost_usd": cost_value,
            "effective_cost_usd": effective,
            "pricing_status": pricing_status,
            "received_at": received_at,
        }
        if pricing_status != "priced":
            row["model"] = None
        row |= dimensions
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)
