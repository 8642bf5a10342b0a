"""The live FOCUS rows of a period: the lake's calls summed per charge period and SKU meter.

One DuckDB query (:data:`GROUPS_SQL`) sums the period's calls of the ``llm_calls`` view by
charge period (hour or day, UTC), provider, model, price_ref, service tier, pricing status,
calling service and the attribution tags; each group becomes up to five rows, one per token
class with tokens or cost (:data:`TOKEN_CLASSES`, the lake's five cost parts):

=============  ==========================================  ======================
token class    ConsumedQuantity (tokens)                   ListCost
=============  ==========================================  ======================
input          input - cache read - cache write (>= 0)     input_cost_usd
cache_read     cache_read_tokens                           cache_read_cost_usd
cache_write    cache_write_tokens                          cache_write_cost_usd
output         output - reasoning (>= 0)                   output_cost_usd
reasoning      reasoning_tokens                            reasoning_cost_usd
=============  ==========================================  ======================

The lake keeps ``effective_cost_usd`` (after contract discounts) per call, not per class, so
the group's effective total is split over its classes in proportion to their list cost, in
integer picodollars by largest remainder: the classes add up to the lake's total exactly.
ContractedCost, EffectiveCost and BilledCost are that amount (otelcost knows no commitments
to amortize, and bills nothing itself: see docs/focus.md). The unit prices are cost / tokens
per 1M tokens (FOCUS: unit price x PricingQuantity must match the cost): ListUnitPrice is the
catalog rate, exactly, since a group has one price_ref (a group that mixes 5-minute and 1-hour
cache writes gets their blend, to 18 decimals); ContractedUnitPrice is the discounted rate the
lake's rounded per-call amounts add up to. An unpriced call's rows cost 0 at a unit price of 0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from otelcost.export.allocation import AllocationPlan, allocate_row
from otelcost.export.focus_columns import arrow_schema, columns_for
from otelcost.export.providers import entities
from otelcost.lake.locking import lake_lock
from otelcost.lake.query import run_query
from otelcost.money import pico_to_decimal
from otelcost.reports.chargeback.allocate import split
from otelcost.reports.period import Period

__all__ = ["GRANULARITIES", "GROUPS_SQL", "TAG_KEYS", "TOKEN_CLASSES", "TokenClass", "live_rows"]

GRANULARITIES: Final[dict[str, timedelta]] = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


@dataclass(frozen=True, slots=True)
class TokenClass:
    """One SKU meter: its lake columns and how FOCUS names it."""

    name: str
    meter: str
    direction: str
    cache_action: str | None


TOKEN_CLASSES: Final = (
    TokenClass("input", "Input Tokens", "Input", "Uncached"),
    TokenClass("cache_read", "Cache Read Input Tokens", "Input", "Read"),
    TokenClass("cache_write", "Cache Write Input Tokens", "Input", "Write"),
    TokenClass("output", "Output Tokens", "Output", None),
    TokenClass("reasoning", "Reasoning Output Tokens", "Output", None),
)

TAG_KEYS: Final = {
    "team": "team",
    "feature": "feature",
    "tenant": "tenant_id",
    "environment": "environment",
    "project": "project",
    "cost_center": "cost_center",
    "workflow": "workflow",
}
"""Tags key -> lake column. user_id and session_id are left out: they are personal or
per-conversation and would multiply the rows (docs/focus.md, "What is not exported")."""

GROUPS_SQL: Final = """
SELECT date_trunc('{unit}', ts) AS charge_period_start,
       provider,
       model,
       coalesce(model, nullif(response_model, ''), request_model) AS model_name,
       service_tier, price_ref, pricing_status, service,
       team, feature, tenant_id, environment, project, cost_center, workflow,
       count(*) AS calls,
       CAST(sum(greatest(input_tokens - cache_read_tokens - cache_write_tokens, 0)) AS BIGINT) AS q_input,
       CAST(sum(cache_read_tokens) AS BIGINT) AS q_cache_read,
       CAST(sum(cache_write_tokens) AS BIGINT) AS q_cache_write,
       CAST(sum(greatest(output_tokens - reasoning_tokens, 0)) AS BIGINT) AS q_output,
       CAST(sum(reasoning_tokens) AS BIGINT) AS q_reasoning,
       sum(input_cost_usd) AS c_input,
       sum(cache_read_cost_usd) AS c_cache_read,
       sum(cache_write_cost_usd) AS c_cache_write,
       sum(output_cost_usd) AS c_output,
       sum(reasoning_cost_usd) AS c_reasoning,
       sum(effective_cost_usd) AS effective
FROM llm_calls
WHERE ts >= CAST($start AS TIMESTAMPTZ) AND ts < CAST($end AS TIMESTAMPTZ)
  AND date >= CAST($first_day AS DATE) AND date <= CAST($last_day AS DATE)
GROUP BY ALL
"""
"""The one query: the period's calls by charge period and every dimension a row keeps."""

_MILLION: Final = 1_000_000


def _pico(amount: Decimal | None) -> int:
    return 0 if amount is None else int(amount.scaleb(12))


def _json(mapping: Mapping[str, object]) -> str | None:
    values = {key: value for key, value in mapping.items() if value is not None and value != ""}
    return json.dumps(values, sort_keys=True, separators=(",", ":")) if values else None


def _month_bounds(moment: datetime) -> tuple[datetime, datetime]:
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    end = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def _unit_price(cost_pico: int, tokens: int) -> Decimal:
    """USD per 1M tokens: exact for one rate, else rounded half-even to 18 decimals."""
    if tokens <= 0:
        return Decimal(0)
    with localcontext() as context:
        context.prec = 60
        per_million = Decimal(cost_pico) / tokens / _MILLION
    return per_million.quantize(Decimal("1e-18"), rounding=ROUND_HALF_EVEN)


def _quantity(tokens: int, per: int = 1) -> Decimal:
    return (Decimal(tokens) / per).quantize(Decimal("1e-6"))


def _group_rows(
    group: dict[str, Any],
    granularity: timedelta,
    allocation: AllocationPlan | None,
) -> list[dict[str, Any]]:
    start: datetime = group["charge_period_start"].astimezone(UTC)
    billing_start, billing_end = _month_bounds(start)
    provider = group["provider"]
    names = entities(provider, group["model_name"])
    list_pico = {tc.name: _pico(group[f"c_{tc.name}"]) for tc in TOKEN_CLASSES}
    tokens = {tc.name: int(group[f"q_{tc.name}"] or 0) for tc in TOKEN_CLASSES}
    effective_pico = _pico(group["effective"])
    weights = {name: Fraction(value) for name, value in list_pico.items()}
    shares = {share.receiver: share.pico for share in split(effective_pico, weights)}
    tags = _json({key: group[column] for key, column in TAG_KEYS.items()})
    rows = []
    for tc in TOKEN_CLASSES:
        if tokens[tc.name] == 0 and list_pico[tc.name] == 0:
            continue
        contracted_pico = shares.get(tc.name, 0)
        contracted = pico_to_decimal(contracted_pico)
        sku = f"{provider or 'unknown'}/{group['model'] or group['model_name'] or 'unknown'}/{tc.name}"
        details = _json(
            {
                "x_ModelDeveloper": names.developer,
                "x_ModelId": group["model_name"],
                "x_ServiceTier": group["service_tier"],
                "x_TokenCacheAction": tc.cache_action,
                "x_TokenClass": tc.name,
                "x_TokenDirection": tc.direction,
            }
        )
        model_label = group["model_name"] or "an unnamed model"
        rows.append(
            {
                "BilledCost": contracted,
                "BillingAccountId": provider or "unknown",
                "BillingCurrency": "USD",
                "BillingPeriodEnd": billing_end,
                "BillingPeriodStart": billing_start,
                "ChargeCategory": "Usage",
                "ChargeClass": None,
                "ChargeDescription": f"{tc.meter} of {model_label} through {names.service_name}",
                "ChargeFrequency": "Usage-Based",
                "ChargePeriodEnd": start + granularity,
                "ChargePeriodStart": start,
                "ConsumedQuantity": _quantity(tokens[tc.name]),
                "ConsumedUnit": "Tokens",
                "ContractedCost": contracted,
                "ContractedUnitPrice": _unit_price(contracted_pico, tokens[tc.name]),
                "EffectiveCost": contracted,
                "HostProviderName": names.host_provider,
                "InvoiceIssuerName": names.invoice_issuer,
                "ListCost": pico_to_decimal(list_pico[tc.name]),
                "ListUnitPrice": _unit_price(list_pico[tc.name], tokens[tc.name]),
                "PricingCategory": "Standard",
                "PricingQuantity": _quantity(tokens[tc.name], _MILLION),
                "PricingUnit": "1000000 Tokens",
                "ProviderName": names.invoice_issuer,
                "PublisherName": names.developer,
                "ServiceCategory": "AI and Machine Learning",
                "ServiceName": names.service_name,
                "ServiceProviderName": names.service_provider,
                "ServiceSubcategory": "Generative AI",
                "SkuId": sku,
                "SkuMeter": tc.meter,
                "SkuPriceDetails": details,
                "SkuPriceId": f"{group['price_ref']}/{tc.name}" if group["price_ref"] else f"unpriced:{sku}",
                "Tags": tags,
                "x_Calls": int(group["calls"]),
                "x_ConsumerId": group["tenant_id"],
                "x_ExportVersion": 0,
                "x_Model": group["model_name"],
                "x_PriceRef": group["price_ref"],
                "x_PricingStatus": group["pricing_status"],
                "x_Provider": provider,
                "x_Service": group["service"],
                "x_ServiceTier": group["service_tier"],
                "x_TokenClass": tc.name,
            }
        )
    if allocation is None:
        return rows
    pool = allocation.pool_of(group)
    return [part for row in rows for part in allocate_row(row, pool, allocation.charge_to)]


def live_rows(
    lake_dir: Path,
    period: Period,
    granularity: str,
    version: str,
    *,
    allocation: AllocationPlan | None = None,
    timeout: float | None = None,
) -> pa.Table:
    """The FOCUS rows of ``period`` as the lake says now (``x_ExportVersion`` 0, no
    ChargeClass), in the schema of FOCUS ``version``, unsorted; with ``allocation``, pooled
    rows are replaced by their allocated charges (allocation.py)."""
    step = GRANULARITIES[granularity]
    days = period.days
    params = {
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "first_day": days[0].isoformat(),
        "last_day": days[-1].isoformat(),
    }
    with lake_lock(lake_dir, shared=True, timeout=timeout):
        groups = run_query(lake_dir, GROUPS_SQL.format(unit=granularity), params, timeout=timeout)
    rows = [row for group in groups.to_pylist() for row in _group_rows(group, step, allocation)]
    names = [column.name for column in columns_for(version)]
    return pa.Table.from_pylist(
        [{name: row.get(name) for name in names} for row in rows], arrow_schema(version)
    )
