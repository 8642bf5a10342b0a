"""The record schema of an LLM call: the lake's contract with analysts.

Every row in the lake is one LLM call (one LLM span). Column names are a public API: analysts
write SQL against them, so a column is never renamed or retyped once it has landed; new columns
are added instead (readers use ``union_by_name`` so old files simply show NULL for them).

This module is the single registry of columns. The Arrow schema written to Parquet, the DuckDB
view, ``docs/schema.md`` and the column pin test all derive from :data:`COLUMNS`.

Token semantics follow the OpenTelemetry GenAI conventions whatever the source convention:
``input_tokens`` counts all input tokens, with ``cache_read_tokens`` and ``cache_write_tokens``
as parts of it; ``output_tokens`` counts all output, with ``reasoning_tokens`` as a part of it.

Money columns are ``DECIMAL(38, 12)``: exact to the picodollar, so sums never drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "ATTRIBUTION_DIMENSIONS",
    "CALL_SCHEMA",
    "CHANGE_AFTER",
    "CHANGE_BEFORE",
    "CHANGE_PROPOSED",
    "COLUMNS",
    "COLUMN_NAMES",
    "MONEY_SCALE",
    "MONEY_TYPE",
    "PARTITION_COLUMN",
    "PRICING_COLUMN_NAMES",
    "REASON_FOLDED_SPAN",
    "REASON_LATE_ANCESTOR",
    "RECORD_SCHEMA",
    "SETTLEMENT_COLUMN_NAMES",
    "Column",
    "calls_only",
    "empty_table",
    "without_folded",
]

MONEY_SCALE: Final = 12
"""Decimal places of every money column: amounts are exact multiples of 1e-12 USD."""

MONEY_TYPE: Final = pa.decimal128(38, MONEY_SCALE)
TIMESTAMP_TYPE: Final = pa.timestamp("us", tz="UTC")
STRING_MAP_TYPE: Final = pa.map_(pa.string(), pa.string())

PARTITION_COLUMN: Final = "date"
"""Hive partition key (``date=YYYY-MM-DD``, the UTC day of ``ts``). It lives in the directory
name, not inside the Parquet files; DuckDB exposes it as a column when reading the lake."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: pa.DataType
    group: str
    description: str
    nullable: bool = True


def _c(name: str, type_: pa.DataType, group: str, description: str, *, nullable: bool = True) -> Column:
    return Column(name, type_, group, description, nullable)


ATTRIBUTION_DIMENSIONS: Final = (
    "team",
    "feature",
    "user_id",
    "tenant_id",
    "session_id",
    "project",
    "cost_center",
    "workflow",
    "environment",
)
"""Dimensions that attribution rules can fill. ``environment`` is also a source column."""

COLUMNS: Final[tuple[Column, ...]] = (
    # time
    _c("ts", TIMESTAMP_TYPE, "time", "Span start time, UTC, microseconds.", nullable=False),
    _c("end_ts", TIMESTAMP_TYPE, "time", "Span end time, UTC, microseconds."),
    _c("duration_ms", pa.float64(), "time", "end_ts - ts in milliseconds."),
    # identity
    _c("trace_id", pa.string(), "identity", "Trace id, 32 lower-case hex digits.", nullable=False),
    _c("span_id", pa.string(), "identity", "Span id, 16 lower-case hex digits.", nullable=False),
    _c("parent_span_id", pa.string(), "identity", "Parent span id (lower-case hex), NULL for a root span."),
    _c("span_name", pa.string(), "identity", "Span name as sent."),
    _c(
        "response_id",
        pa.string(),
        "identity",
        "The provider's id of the response (gen_ai.response.id and equivalents), when a span carries it.",
    ),
    # source
    _c("service", pa.string(), "source", "Resource attribute service.name."),
    _c(
        "environment",
        pa.string(),
        "source",
        "Deployment environment (attribution rule; default from deployment.environment.name).",
    ),
    _c("scope_name", pa.string(), "source", "Instrumentation scope name (which library emitted the span)."),
    _c(
        "convention",
        pa.string(),
        "source",
        "Telemetry convention the call was recognized by (gen_ai, openinference, ...).",
    ),
    # model
    _c(
        "provider",
        pa.string(),
        "model",
        "Provider, OpenTelemetry gen_ai.provider.name values (openai, anthropic, gcp.gemini ...).",
    ),
    _c(
        "operation",
        pa.string(),
        "model",
        "Operation (chat, text_completion, embeddings, generate_content ...).",
    ),
    _c("request_model", pa.string(), "model", "Model name the caller asked for."),
    _c("response_model", pa.string(), "model", "Model name the provider answered with."),
    _c(
        "model",
        pa.string(),
        "model",
        "Catalog model id the call was priced as; NULL when no catalog entry matched.",
    ),
    _c("service_tier", pa.string(), "model", "Pricing tier: standard, batch, flex or priority."),
    # usage
    _c(
        "input_tokens",
        pa.int64(),
        "usage",
        "All input tokens, cache reads and writes included.",
        nullable=False,
    ),
    _c("output_tokens", pa.int64(), "usage", "All output tokens, reasoning included.", nullable=False),
    _c(
        "cache_read_tokens",
        pa.int64(),
        "usage",
        "Input tokens read from the prompt cache (part of input_tokens).",
        nullable=False,
    ),
    _c(
        "cache_write_tokens",
        pa.int64(),
        "usage",
        "Input tokens written to the prompt cache (part of input_tokens).",
        nullable=False,
    ),
    _c("reasoning_tokens", pa.int64(), "usage", "Reasoning tokens (part of output_tokens).", nullable=False),
    # money
    _c(
        "cost_usd",
        MONEY_TYPE,
        "money",
        "List-price cost in USD: the sum of the five *_cost_usd parts.",
        nullable=False,
    ),
    _c("input_cost_usd", MONEY_TYPE, "money", "Cost of uncached input tokens.", nullable=False),
    _c("cache_read_cost_usd", MONEY_TYPE, "money", "Cost of cache-read input tokens.", nullable=False),
    _c("cache_write_cost_usd", MONEY_TYPE, "money", "Cost of cache-write input tokens.", nullable=False),
    _c("output_cost_usd", MONEY_TYPE, "money", "Cost of output tokens other than reasoning.", nullable=False),
    _c("reasoning_cost_usd", MONEY_TYPE, "money", "Cost of reasoning tokens.", nullable=False),
    _c("effective_cost_usd", MONEY_TYPE, "money", "Cost after contract discounts.", nullable=False),
    _c(
        "price_ref",
        pa.string(),
        "money",
        "Catalog entry and version that priced the call; NULL when unpriced.",
    ),
    _c("pricing_status", pa.string(), "money", "priced | unknown_model | no_model.", nullable=False),
    # attribution
    _c("team", pa.string(), "attribution", "Owning team."),
    _c("feature", pa.string(), "attribution", "Product feature that made the call."),
    _c("user_id", pa.string(), "attribution", "End user."),
    _c("tenant_id", pa.string(), "attribution", "Customer / tenant."),
    _c("session_id", pa.string(), "attribution", "Session or conversation."),
    _c("project", pa.string(), "attribution", "Project."),
    _c("cost_center", pa.string(), "attribution", "Cost center for chargeback."),
    _c("workflow", pa.string(), "attribution", "Workflow or agent name."),
    _c(
        "attribution_status",
        pa.string(),
        "attribution",
        "complete | incomplete (a required dimension is missing).",
        nullable=False,
    ),
    _c(
        "missing_dimensions", pa.list_(pa.string()), "attribution", "Required dimensions that no rule filled."
    ),
    _c(
        "ingest_key",
        pa.string(),
        "attribution",
        "Name of the API key the call was sent with (auth.keys); NULL for anonymous ingest.",
    ),
    _c(
        "bound_dimensions",
        STRING_MAP_TYPE,
        "attribution",
        "Dimensions the ingest key is bound to, each mapped to what the span itself had claimed "
        "(NULL: it claimed nothing); the key's value is in the dimension's column.",
    ),
    # outcome
    _c("status", pa.string(), "outcome", "ok | error (span status).", nullable=False),
    _c("error_type", pa.string(), "outcome", "error.type attribute or the span status message on error."),
    # rest
    _c(
        "attributes",
        STRING_MAP_TYPE,
        "rest",
        "Every span attribute, values as strings (arrays and maps as JSON).",
    ),
    _c("resource_attributes", STRING_MAP_TYPE, "rest", "Every resource attribute, values as strings."),
    _c("received_at", TIMESTAMP_TYPE, "rest", "When otelcost received the span, UTC.", nullable=False),
    # settlement (otelcost/settle): NULL in llm_calls; set in the audit tables
    _c(
        "duplicate_of_trace_id",
        pa.string(),
        "settlement",
        "duplicate_spans: trace id of the call this span was folded into.",
    ),
    _c(
        "duplicate_of_span_id",
        pa.string(),
        "settlement",
        "duplicate_spans: span id of the call this span was folded into.",
    ),
    _c(
        "duplicate_reason",
        pa.string(),
        "settlement",
        "duplicate_spans: the rule that folded it, response_id | fingerprint.",
    ),
    _c(
        "attribution_change",
        pa.string(),
        "settlement",
        "attribution_changes: before | after, the call's attribution either side of a change.",
    ),
    _c(
        "attribution_change_reason",
        pa.string(),
        "settlement",
        "attribution_changes: late_ancestor | folded_span, what brought the change.",
    ),
)

COLUMN_NAMES: Final = tuple(c.name for c in COLUMNS)

RECORD_SCHEMA: Final = pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in COLUMNS])
"""Arrow schema of a record batch between stages and of every Parquet file in the lake."""


PRICING_COLUMN_NAMES: Final = (
    "model",
    *(c.name for c in COLUMNS if c.group == "money"),
)
"""Columns the pricing stage fills; every other column comes from decoding and attribution."""

CHANGE_BEFORE: Final = "before"
CHANGE_AFTER: Final = "after"
CHANGE_PROPOSED: Final = "proposed"
"""``attribution_change`` of a row the normalizer sends when ancestors of a call it emitted
arrived afterwards and changed its attribution: the call with the new attribution. The settle
stage (``otelcost/settle``) turns it into a before/after pair; it is never stored."""
REASON_LATE_ANCESTOR: Final = "late_ancestor"
REASON_FOLDED_SPAN: Final = "folded_span"

SETTLEMENT_COLUMN_NAMES: Final = tuple(c.name for c in COLUMNS if c.group == "settlement")
"""Columns that mark a row as a folded span or an attribution change (``otelcost/settle``):
NULL for every call, so every row of ``llm_calls``."""

CALL_SCHEMA: Final = pa.schema([f for f in RECORD_SCHEMA if f.name not in PRICING_COLUMN_NAMES])
"""Schema of a batch of normalized, attributed but not yet priced calls (the normalizer's output,
the pricing stage's input). Same column order as RECORD_SCHEMA, pricing columns left out."""


def calls_only(batch: pa.Table) -> pa.Table:
    """The rows of a RECORD_SCHEMA batch that are calls, not a folded span nor an attribution
    change (``otelcost/settle``). Returns ``batch`` itself when all are."""
    folded, change = batch["duplicate_of_span_id"], batch["attribution_change"]
    n = batch.num_rows
    if folded.null_count == n and change.null_count == n:
        return batch
    return batch.filter(pc.and_(pc.is_null(folded), pc.is_null(change)))


def without_folded(batch: pa.Table) -> pa.Table:
    """The rows of a RECORD_SCHEMA batch that count: calls and attribution changes, not the
    spans folded into another call. Returns ``batch`` itself when none is folded."""
    folded = batch["duplicate_of_span_id"]
    if folded.null_count == batch.num_rows:
        return batch
    return batch.filter(pc.is_null(folded))


def empty_table() -> pa.Table:
    """A zero-row table with the record schema."""
    return RECORD_SCHEMA.empty_table()
