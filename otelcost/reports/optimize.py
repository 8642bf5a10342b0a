"""optimize: money on the table, each opportunity with its what-if priced from the catalog.

Per feature and model of the period (sections, each with ``saving_usd``):

``right_size``
    Features on a model that ``reports.optimize.cheaper_models`` maps to a cheaper entry of the
    same provider (``openai/gpt-4o`` -> ``openai/gpt-4o-mini`` ...; a dated snapshot such as
    ``openai/gpt-4o-2024-08-06`` is matched by its family), whose mean output per call
    is at most ``short_output_tokens``: short answers rarely need the frontier model. The
    what-if prices the same tokens on the cheaper entry.
``caching``
    Features with a cache hit rate (cache_read / input tokens) under ``max_cache_hit_rate`` and
    long prompts (mean input at least ``min_cacheable_input_tokens``): the what-if reads
    ``cacheable_share`` of their uncached input at the model's cache-read price instead.
``batch``
    Features whose calls are almost all non-interactive (no user and no session on at least
    ``non_interactive_share`` of them) on the standard tier of a model with a batch tier: the
    what-if prices them at the batch tier.
``context_bloat``
    The ``--top`` features by mean input tokens per call, with their input cost: where prompt
    trimming or retrieval pays most.
``summary``
    The saving of each kind, summed.

What-ifs use the version of each entry in force at the end of the period and its base rates
(long-context and time-of-day variants are not modelled: the saving is an estimate of that
size, stated in the notes). Amounts are exact: tokens times integer picodollar rates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import pyarrow as pa

from otelcost.money import pico_to_decimal
from otelcost.pricing import Catalog, PricingConfig
from otelcost.pricing.entries import Entry
from otelcost.pricing.rates import Rates
from otelcost.reports.base import ReportContext, ReportRequest, ReportResult, register
from otelcost.reports.dimensions import calls_where
from otelcost.schema import MONEY_TYPE

__all__ = ["Tokens", "optimize", "tokens_cost_pico"]

USAGE_SQL: Final = """
SELECT coalesce(feature, '(no feature)') AS feature, provider, model,
       coalesce(service_tier, 'standard') AS service_tier,
       count(*) AS calls,
       sum(input_tokens)::BIGINT AS input_tokens,
       sum(output_tokens)::BIGINT AS output_tokens,
       sum(cache_read_tokens)::BIGINT AS cache_read_tokens,
       sum(cache_write_tokens)::BIGINT AS cache_write_tokens,
       sum(reasoning_tokens)::BIGINT AS reasoning_tokens,
       sum(cost_usd) AS cost_usd,
       count(*) FILTER (WHERE user_id IS NULL AND session_id IS NULL) AS non_interactive_calls
FROM llm_calls
WHERE {where} AND pricing_status = 'priced'
GROUP BY ALL
ORDER BY cost_usd DESC
"""


@dataclass(frozen=True, slots=True)
class Tokens:
    """Token sums of one group of calls, in the lake's semantics (input includes the cache
    parts, output includes reasoning)."""

    input: int
    output: int
    cache_read: int
    cache_write: int
    reasoning: int

    @classmethod
    def of(cls, row: dict[str, Any]) -> Tokens:
        return cls(
            row["input_tokens"],
            row["output_tokens"],
            row["cache_read_tokens"],
            row["cache_write_tokens"],
            row["reasoning_tokens"],
        )


def tokens_cost_pico(tokens: Tokens, rates: Rates) -> int:
    """What ``tokens`` cost at ``rates``, in picodollars (exact integers)."""
    uncached = tokens.input - tokens.cache_read - tokens.cache_write
    return (
        uncached * rates.input
        + tokens.cache_read * rates.cache_read
        + tokens.cache_write * rates.cache_write
        + (tokens.output - tokens.reasoning) * rates.output
        + tokens.reasoning * rates.reasoning
    )


class _Prices:
    """Base rates of catalog entries at one instant, per tier."""

    def __init__(self, catalog: Catalog, at: datetime) -> None:
        self.catalog = catalog
        self._at = at

    def entry(self, provider: str | None, model: str | None) -> Entry | None:
        return self.catalog.resolve(provider, model)

    def rates(self, entry: Entry | None, tier: str = "standard") -> tuple[str, Rates] | None:
        if entry is None:
            return None
        version = entry.version_at(self._at)
        if version is None:
            return None
        applied, prices = version.price_set(tier)
        return applied, prices.base


def _money(values: list[Decimal]) -> pa.Array:
    return pa.array(values, MONEY_TYPE)


_TYPES: Final = {
    "feature": pa.string(),
    "model": pa.string(),
    "cheaper_model": pa.string(),
    "calls": pa.int64(),
    "mean_output_tokens": pa.float64(),
    "mean_input_tokens": pa.float64(),
    "cache_hit_rate": pa.float64(),
    "non_interactive_share": pa.float64(),
    "cost_usd": MONEY_TYPE,
    "what_if_cost_usd": MONEY_TYPE,
    "saving_usd": MONEY_TYPE,
}


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> pa.Table:
    schema = pa.schema([(name, _TYPES[name]) for name in columns])
    return pa.Table.from_pylist([{name: row[name] for name in columns} for row in rows], schema=schema)


_SNAPSHOT_RE: Final = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$")


def _cheaper_of(entry: Entry, cheaper_models: dict[str, str]) -> str | None:
    """The cheaper entry configured for ``entry``, or for its family when ``entry`` is a dated
    snapshot (``openai/gpt-4o-2024-08-06`` is matched by ``openai/gpt-4o``)."""
    return cheaper_models.get(entry.key) or cheaper_models.get(_SNAPSHOT_RE.sub("", entry.key))


def _right_size(usage: list[dict[str, Any]], prices: _Prices, context: ReportContext) -> list[dict[str, Any]]:
    config = context.config.optimize
    rows = []
    for row in usage:
        entry = prices.entry(row["provider"], row["model"])
        cheaper_key = None if entry is None else _cheaper_of(entry, config.cheaper_models)
        if entry is None or cheaper_key is None:
            continue
        mean_output = row["output_tokens"] / row["calls"]
        if mean_output > config.short_output_tokens:
            continue
        target = prices.catalog.entry(cheaper_key)
        current, cheaper = prices.rates(entry, row["service_tier"]), prices.rates(target, row["service_tier"])
        if current is None or cheaper is None:
            continue
        tokens = Tokens.of(row)
        now_cost = pico_to_decimal(tokens_cost_pico(tokens, current[1]))
        what_if = pico_to_decimal(tokens_cost_pico(tokens, cheaper[1]))
        if what_if >= now_cost:
            continue
        rows.append(
            {
                "feature": row["feature"],
                "model": entry.key,
                "cheaper_model": cheaper_key,
                "calls": row["calls"],
                "mean_output_tokens": round(mean_output, 1),
                "cost_usd": now_cost,
                "what_if_cost_usd": what_if,
                "saving_usd": now_cost - what_if,
            }
        )
    return sorted(rows, key=lambda r: (-r["saving_usd"], r["feature"]))


def _caching(usage: list[dict[str, Any]], prices: _Prices, context: ReportContext) -> list[dict[str, Any]]:
    config = context.config.optimize
    rows = []
    for row in usage:
        if row["input_tokens"] == 0:
            continue
        hit_rate = row["cache_read_tokens"] / row["input_tokens"]
        mean_input = row["input_tokens"] / row["calls"]
        if hit_rate >= config.max_cache_hit_rate or mean_input < config.min_cacheable_input_tokens:
            continue
        rated = prices.rates(prices.entry(row["provider"], row["model"]), row["service_tier"])
        if rated is None or rated[1].cache_read >= rated[1].input:
            continue
        uncached = row["input_tokens"] - row["cache_read_tokens"] - row["cache_write_tokens"]
        movable = int(Decimal(uncached) * config.cacheable_share)
        saving = pico_to_decimal(movable * (rated[1].input - rated[1].cache_read))
        if saving <= 0:
            continue
        rows.append(
            {
                "feature": row["feature"],
                "model": row["model"],
                "calls": row["calls"],
                "cache_hit_rate": round(hit_rate, 4),
                "mean_input_tokens": round(mean_input, 1),
                "cost_usd": row["cost_usd"],
                "saving_usd": saving,
            }
        )
    return sorted(rows, key=lambda r: (-r["saving_usd"], r["feature"]))


def _batch(usage: list[dict[str, Any]], prices: _Prices, context: ReportContext) -> list[dict[str, Any]]:
    config = context.config.optimize
    rows = []
    for row in usage:
        share = row["non_interactive_calls"] / row["calls"]
        if row["service_tier"] != "standard" or share < config.non_interactive_share:
            continue
        entry = prices.entry(row["provider"], row["model"])
        standard, batch = prices.rates(entry, "standard"), prices.rates(entry, "batch")
        if standard is None or batch is None or batch[0] != "batch":
            continue
        tokens = Tokens.of(row)
        now_cost = pico_to_decimal(tokens_cost_pico(tokens, standard[1]))
        what_if = pico_to_decimal(tokens_cost_pico(tokens, batch[1]))
        if what_if >= now_cost:
            continue
        rows.append(
            {
                "feature": row["feature"],
                "model": row["model"],
                "calls": row["calls"],
                "non_interactive_share": round(share, 4),
                "cost_usd": now_cost,
                "what_if_cost_usd": what_if,
                "saving_usd": now_cost - what_if,
            }
        )
    return sorted(rows, key=lambda r: (-r["saving_usd"], r["feature"]))


CONTEXT_BLOAT_SQL: Final = """
SELECT coalesce(feature, '(no feature)') AS feature,
       count(*) AS calls,
       round(avg(input_tokens), 1) AS mean_input_tokens,
       round(avg(output_tokens), 1) AS mean_output_tokens,
       sum(input_cost_usd + cache_read_cost_usd + cache_write_cost_usd) AS input_cost_usd,
       sum(cost_usd) AS cost_usd
FROM llm_calls
WHERE {where}
GROUP BY 1
ORDER BY mean_input_tokens DESC, feature
LIMIT $top
"""


@register(
    "optimize", "Money on the table: right-sizing, prompt caching, batch tier and context bloat what-ifs."
)
def optimize(context: ReportContext, request: ReportRequest) -> ReportResult:
    """The optimize sections of ``request`` (see the module docstring)."""
    now = context.now()
    period = request.resolved_period(now).cut(now)
    where, params = calls_where(period, request.filters)
    usage = context.query(USAGE_SQL.format(where=where), params).to_pylist()
    prices = _Prices(Catalog.load(context.pricing or PricingConfig()), period.end - timedelta(microseconds=1))
    right = _right_size(usage, prices, context)
    caching = _caching(usage, prices, context)
    batch = _batch(usage, prices, context)
    sections = {
        "summary": pa.table(
            {
                "opportunity": ["right_size", "caching", "batch"],
                "features": pa.array(
                    [len({r["feature"] for r in rows}) for rows in (right, caching, batch)], pa.int64()
                ),
                "saving_usd": _money(
                    [sum((r["saving_usd"] for r in rows), Decimal(0)) for rows in (right, caching, batch)]
                ),
            }
        ),
        "right_size": _table(
            right,
            (
                "feature",
                "model",
                "cheaper_model",
                "calls",
                "mean_output_tokens",
                "cost_usd",
                "what_if_cost_usd",
                "saving_usd",
            ),
        ),
        "caching": _table(
            caching,
            ("feature", "model", "calls", "cache_hit_rate", "mean_input_tokens", "cost_usd", "saving_usd"),
        ),
        "batch": _table(
            batch,
            (
                "feature",
                "model",
                "calls",
                "non_interactive_share",
                "cost_usd",
                "what_if_cost_usd",
                "saving_usd",
            ),
        ),
        "context_bloat": context.query(CONTEXT_BLOAT_SQL.format(where=where), params | {"top": request.top}),
    }
    notes = (
        "what-ifs price the same tokens at base rates of the catalog version in force at the end of "
        "the period (long-context and time-of-day variants are not modelled)",
        f"caching assumes {context.config.optimize.cacheable_share} of uncached input could be cache reads",
    )
    return ReportResult("optimize", period, sections, notes)
