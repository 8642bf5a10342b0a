"""Realistic lake rows for tests: ``make_calls(n)`` builds a RECORD_SCHEMA table.

Importable by any test package (``from tests.lake.rows import make_calls``). The rows look like
what the pipeline lands: several services and teams, four providers, prompt-cache reads and
writes, reasoning tokens, an in-house model no catalog prices (``pricing_status =
'unknown_model'``, zero cost), incomplete attribution, failed calls, and attribute maps. Costs
are exact: integer picodollars from per-token prices, turned into DECIMAL(38, 12) by
``otelcost.money`` (no float ever touches them), following the token semantics of the schema
(``input_tokens`` includes the cache parts, ``output_tokens`` includes reasoning).

Everything is drawn from a seeded generator, so a (n, seed, start, spread) tuple always gives
the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from otelcost.money import per_million_to_pico_per_token, pico_to_decimal_array
from otelcost.schema import RECORD_SCHEMA

__all__ = ["DEFAULT_DAY", "MODELS", "SERVICES", "Model", "make_calls"]

DEFAULT_DAY: Final = date(2026, 3, 14)


@dataclass(frozen=True, slots=True)
class Model:
    provider: str
    request: str
    response: str
    catalog_id: str | None  # None: no catalog entry, the call stays unpriced
    input: str = "0"  # USD per million tokens
    cache_read: str = "0"
    cache_write: str = "0"
    output: str = "0"
    reasoning: str = "0"
    operation: str = "chat"
    reasons: bool = False
    discount_percent: int = 0  # contract discount behind effective_cost_usd

    def pico(self, part: str) -> int:
        return per_million_to_pico_per_token(getattr(self, part))


MODELS: Final = (
    Model("openai", "gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-2024-08-06", "2.50", "1.25", "0", "10.00"),
    Model("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "gpt-4o-mini", "0.15", "0.075", "0", "0.60"),
    Model(
        "openai",
        "o3-mini",
        "o3-mini-2025-01-31",
        "o3-mini",
        "1.10",
        "0.55",
        "0",
        "4.40",
        "4.40",
        reasons=True,
    ),
    Model(
        "anthropic",
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
        "claude-sonnet-4-5",
        "3.00",
        "0.30",
        "3.75",
        "15.00",
        discount_percent=10,
    ),
    Model(
        "gcp.gemini", "gemini-2.5-flash", "gemini-2.5-flash", "gemini-2.5-flash", "0.30", "0.075", "0", "2.50"
    ),
    Model(
        "openai",
        "text-embedding-3-small",
        "text-embedding-3-small",
        "text-embedding-3-small",
        "0.02",
        operation="embeddings",
    ),
    Model("acme", "acme-summarizer-v2", "acme-summarizer-v2", None),
)

# service -> (team, features, environment)
SERVICES: Final = {
    "support-bot": ("customer-care", ("ticket-triage", "reply-draft")),
    "checkout-assistant": ("payments", ("fraud-explain", "receipt-qa")),
    "search": ("discovery", ("query-rewrite", "semantic-search")),
    "analyst-agent": ("data-platform", ("sql-copilot",)),
    "legacy-summarizer": (None, ("summaries",)),  # no team: attribution incomplete
}
TENANTS: Final = ("acme-corp", "globex", "initech", None)
ERRORS: Final = ("timeout", "rate_limited", "context_length_exceeded")
PICO_PER_US: Final = 1_000  # ms -> µs helper factor


def _choice(
    rng: np.random.Generator, options: tuple[object, ...], n: int, p: list[float] | None = None
) -> np.ndarray:
    return np.asarray(rng.choice(len(options), size=n, p=p))


def _hex_ids(rng: np.random.Generator, n: int, nbytes: int) -> list[str]:
    raw = rng.bytes(n * nbytes).hex()
    width = 2 * nbytes
    return [raw[i * width : (i + 1) * width] for i in range(n)]


def _string_map(entries: dict[str, list[str]], n: int) -> pa.Array:
    """A map<string, string> array with the same keys in every row, built column-wise."""
    keys = list(entries)
    width = len(keys)
    key_array = pa.array(keys * n, pa.string())
    item_values: list[str] = [""] * (n * width)
    for position, key in enumerate(keys):
        item_values[position::width] = entries[key]
    offsets = pa.array(np.arange(0, n * width + 1, width, dtype=np.int32))
    return pa.MapArray.from_arrays(offsets, key_array, pa.array(item_values, pa.string()))


def make_calls(
    n: int,
    *,
    day: date = DEFAULT_DAY,
    seed: int = 0,
    start: datetime | None = None,
    spread: timedelta = timedelta(days=1),
) -> pa.Table:
    """``n`` priced LLM calls in RECORD_SCHEMA, ``ts`` uniform in ``[start, start + spread)``.

    ``start`` defaults to midnight UTC of ``day``; the rows are in random ``ts`` order, as
    calls arrive. Call with a ``start`` shortly before midnight to get rows in two partitions.
    """
    rng = np.random.default_rng(seed)
    begin = start if start is not None else datetime(day.year, day.month, day.day, tzinfo=UTC)
    begin_us = int(begin.timestamp()) * 1_000_000 + begin.microsecond
    ts_us = begin_us + rng.integers(0, max(1, int(spread.total_seconds() * 1_000_000)), size=n)
    duration_us = rng.integers(80_000, 20_000_000, size=n)
    received_us = ts_us + duration_us + rng.integers(1_000, 3_000_000, size=n)

    model_index = _choice(rng, MODELS, n, p=[0.18, 0.3, 0.08, 0.2, 0.1, 0.1, 0.04])
    models = [MODELS[i] for i in model_index]
    service_names = tuple(SERVICES)
    service_index = _choice(rng, service_names, n, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    services = [service_names[i] for i in service_index]

    input_tokens = rng.integers(20, 30_000, size=n)
    cached = rng.random(n) < 0.35
    cache_read = np.where(cached, (input_tokens * rng.uniform(0.1, 0.9, size=n)).astype(np.int64), 0)
    writes_cache = np.array([m.provider == "anthropic" for m in models]) & (rng.random(n) < 0.2)
    cache_write = np.where(writes_cache, (input_tokens - cache_read) // 2, 0)
    embedding = np.array([m.operation == "embeddings" for m in models])
    reasoning_model = np.array([m.reasons for m in models])
    visible_output = np.where(embedding, 0, rng.integers(1, 4_000, size=n))
    reasoning = np.where(reasoning_model, rng.integers(0, 8_000, size=n), 0)
    output_tokens = visible_output + reasoning
    cache_read = np.where(embedding, 0, cache_read)
    cache_write = np.where(embedding, 0, cache_write)

    def price(part: str) -> npt.NDArray[np.int64]:
        per_model = np.array([m.pico(part) for m in MODELS], dtype=np.int64)
        return np.asarray(per_model[model_index], dtype=np.int64)

    uncached_input = input_tokens - cache_read - cache_write
    input_cost = uncached_input * price("input")
    cache_read_cost = cache_read * price("cache_read")
    cache_write_cost = cache_write * price("cache_write")
    output_cost = visible_output * price("output")
    reasoning_cost = reasoning * price("reasoning")
    cost = input_cost + cache_read_cost + cache_write_cost + output_cost + reasoning_cost
    discount = np.array([m.discount_percent for m in MODELS], dtype=np.int64)[model_index]
    effective = cost * (100 - discount) // 100
    priced = np.array([m.catalog_id is not None for m in MODELS])[model_index]

    status_error = rng.random(n) < 0.03
    error_index = _choice(rng, ERRORS, n)
    tenant_index = _choice(rng, TENANTS, n, p=[0.4, 0.3, 0.2, 0.1])
    teams = [SERVICES[s][0] for s in services]
    features = [
        SERVICES[s][1][int(k) % len(SERVICES[s][1])]
        for s, k in zip(services, rng.integers(0, 8, size=n), strict=True)
    ]
    tenants = [TENANTS[i] for i in tenant_index]
    users = [f"u-{k}" for k in rng.integers(1, 400, size=n)]
    sessions = [f"s-{k}" for k in rng.integers(1, 2_000, size=n)]
    environments = ["production" if r < 0.9 else "staging" for r in rng.random(n)]
    missing: list[list[str]] = [
        [d for d, v in (("team", team), ("tenant_id", tenant)) if v is None]
        for team, tenant in zip(teams, tenants, strict=True)
    ]
    trace_ids = _hex_ids(rng, n, 16)
    span_ids = _hex_ids(rng, n, 8)
    parent_ids: list[str | None] = [
        p if r < 0.7 else None for p, r in zip(_hex_ids(rng, n, 8), rng.random(n), strict=True)
    ]

    attributes = _string_map(
        {
            "gen_ai.operation.name": [m.operation for m in models],
            "gen_ai.request.model": [m.request for m in models],
            "gen_ai.usage.input_tokens": input_tokens.astype(str).tolist(),
            "app.feature": features,
        },
        n,
    )
    resource_attributes = _string_map(
        {"service.name": services, "deployment.environment.name": environments}, n
    )

    timestamp = RECORD_SCHEMA.field("ts").type
    zero = np.zeros(n, dtype=np.int64)
    columns: dict[str, pa.Array | list[object]] = {
        "ts": pa.array(ts_us, type=timestamp),
        "end_ts": pa.array(ts_us + duration_us, type=timestamp),
        "duration_ms": pa.array(duration_us / 1_000.0, type=pa.float64()),
        "trace_id": trace_ids,
        "span_id": span_ids,
        "parent_span_id": parent_ids,
        "span_name": [f"{m.operation} {m.request}" for m in models],
        "response_id": [f"resp-{span_id}" for span_id in span_ids],
        "service": services,
        "environment": environments,
        "scope_name": [
            "opentelemetry.instrumentation.openai_v2" if m.provider == "openai" else "acme.llm"
            for m in models
        ],
        "convention": ["gen_ai"] * n,
        "provider": [m.provider for m in models],
        "operation": [m.operation for m in models],
        "request_model": [m.request for m in models],
        "response_model": [m.response for m in models],
        "model": [m.catalog_id for m in models],
        "service_tier": ["standard" if m.catalog_id else None for m in models],
        "input_tokens": pa.array(input_tokens, pa.int64()),
        "output_tokens": pa.array(output_tokens, pa.int64()),
        "cache_read_tokens": pa.array(cache_read, pa.int64()),
        "cache_write_tokens": pa.array(cache_write, pa.int64()),
        "reasoning_tokens": pa.array(reasoning, pa.int64()),
        "cost_usd": pico_to_decimal_array(np.where(priced, cost, zero)),
        "input_cost_usd": pico_to_decimal_array(np.where(priced, input_cost, zero)),
        "cache_read_cost_usd": pico_to_decimal_array(np.where(priced, cache_read_cost, zero)),
        "cache_write_cost_usd": pico_to_decimal_array(np.where(priced, cache_write_cost, zero)),
        "output_cost_usd": pico_to_decimal_array(np.where(priced, output_cost, zero)),
        "reasoning_cost_usd": pico_to_decimal_array(np.where(priced, reasoning_cost, zero)),
        "effective_cost_usd": pico_to_decimal_array(np.where(priced, effective, zero)),
        "price_ref": [f"{m.catalog_id}@2026-01-01" if m.catalog_id else None for m in models],
        "pricing_status": ["priced" if m.catalog_id else "unknown_model" for m in models],
        "team": teams,
        "feature": features,
        "user_id": users,
        "tenant_id": tenants,
        "session_id": sessions,
        "project": ["atlas" if t == "data-platform" else None for t in teams],
        "cost_center": ["cc-100" if t in ("payments", "discovery") else None for t in teams],
        "workflow": ["sql-agent" if s == "analyst-agent" else None for s in services],
        "attribution_status": ["incomplete" if m else "complete" for m in missing],
        "missing_dimensions": missing,
        # Sent without an API key (auth.anonymous.ingest), so nothing is bound.
        "ingest_key": [None] * n,
        "bound_dimensions": [None] * n,
        "status": np.where(status_error, "error", "ok").tolist(),
        "error_type": [ERRORS[k] if e else None for k, e in zip(error_index, status_error, strict=True)],
        "attributes": attributes,
        "resource_attributes": resource_attributes,
        "received_at": pa.array(received_us, type=timestamp),
        # Calls: none folded into another, none an attribution change (otelcost/settle).
        "duplicate_of_trace_id": [None] * n,
        "duplicate_of_span_id": [None] * n,
        "duplicate_reason": [None] * n,
        "attribution_change": [None] * n,
        "attribution_change_reason": [None] * n,
    }
    arrays = [
        value if isinstance(value, pa.Array) else pa.array(value, type=field.type)
        for field, value in ((f, columns[f.name]) for f in RECORD_SCHEMA)
    ]
    return pa.Table.from_arrays(arrays, schema=RECORD_SCHEMA)
