"""The lake's side: a provider's calls of a period, per (day, model, token class), in picodollars.

One DuckDB query over the ``llm_calls`` view (docs/sql.md) sums the calls of the provider by
UTC day and model key (the catalog model id; for unpriced calls the response, else request,
model as written), each token class with its tokens and its list cost:

=============  ==================================================  ===============================
class          tokens                                              list cost
=============  ==================================================  ===============================
input          input_tokens - cache_read - cache_write (>= 0)      input_cost_usd
cache_read     cache_read_tokens                                   cache_read_cost_usd
cache_write    cache_write_tokens (5-minute and 1-hour)            cache_write_cost_usd
output         output_tokens (reasoning included)                  output_cost_usd + reasoning_cost_usd
=============  ==================================================  ===============================

With ``cost="effective"`` (the default: what the bill should say after contract discounts)
each (day, model)'s ``effective_cost_usd`` is spread over its classes in proportion to their
list cost, in integer picodollars, rounded down, the leftover picodollars to the costliest
class: the classes add up to the effective total exactly. A discount is one percentage per
call (docs/pricing.md), so this equals the discount applied class by class, to the picodollar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Final

from otelcost.lake.query import run_query
from otelcost.money import PICO_PER_USD
from otelcost.reconcile.invoice import TOKEN_CLASSES

__all__ = ["LAKE_SQL", "LakeCell", "lake_cells"]

LAKE_SQL: Final = """
SELECT date AS day,
       coalesce(model, lower(trim(coalesce(response_model, request_model))), '(no model)') AS model,
       count(*) AS calls,
       count(*) FILTER (WHERE pricing_status <> 'priced') AS unpriced_calls,
       sum(greatest(input_tokens - cache_read_tokens - cache_write_tokens, 0)) AS input_tokens,
       sum(cache_read_tokens) AS cache_read_tokens,
       sum(cache_write_tokens) AS cache_write_tokens,
       sum(output_tokens) AS output_tokens,
       sum(input_cost_usd) AS input_cost,
       sum(cache_read_cost_usd) AS cache_read_cost,
       sum(cache_write_cost_usd) AS cache_write_cost,
       sum(output_cost_usd + reasoning_cost_usd) AS output_cost,
       sum(cost_usd) AS cost_usd,
       sum(effective_cost_usd) AS effective_cost_usd
FROM llm_calls
WHERE provider = $provider
  AND date BETWEEN $first_day AND $last_day AND ts >= $start AND ts < $end
GROUP BY ALL
ORDER BY day, model
"""


@dataclass(frozen=True, slots=True)
class LakeCell:
    """The lake's tokens and cost (picodollars) of one day, model and class."""

    day: date
    model: str
    token_class: str
    tokens: int
    pico: int
    calls: int
    unpriced_calls: int


def _pico(value: Decimal | None) -> int:
    return int((value or Decimal(0)) * PICO_PER_USD)


def _spread(total: int, weights: list[int]) -> list[int]:
    """``total`` over ``weights`` in proportion, rounded down, leftover to the largest weight."""
    whole = sum(weights)
    if whole == 0:
        return [total if i == 0 else 0 for i in range(len(weights))]
    shares = [total * w // whole for w in weights]
    shares[max(range(len(weights)), key=lambda i: (weights[i], -i))] += total - sum(shares)
    return shares


def lake_cells(
    lake_dir: Path,
    provider: str,
    start: datetime,
    end: datetime,
    *,
    cost: str = "effective",
    timeout: float | None = None,
) -> list[LakeCell]:
    """The lake's cells of ``provider``'s calls with ``start <= ts < end``."""
    if cost not in ("effective", "list"):
        raise ValueError(f"cost is effective or list, got {cost!r}")
    last = (end - timedelta(microseconds=1)).date()
    params = {"provider": provider, "first_day": start.date(), "last_day": last, "start": start, "end": end}
    table = run_query(lake_dir, LAKE_SQL, params, timeout=timeout)
    cells: list[LakeCell] = []
    for row in table.to_pylist():
        list_costs = [_pico(row[f"{c}_cost"]) for c in TOKEN_CLASSES]
        costs = _spread(_pico(row["effective_cost_usd"]), list_costs) if cost == "effective" else list_costs
        for index, token_class in enumerate(TOKEN_CLASSES):
            tokens = int(row[f"{token_class}_tokens"] or 0)
            if tokens == 0 and costs[index] == 0:
                continue
            cells.append(
                LakeCell(
                    row["day"],
                    row["model"],
                    token_class,
                    tokens,
                    costs[index],
                    row["calls"],
                    row["unpriced_calls"],
                )
            )
    return cells
