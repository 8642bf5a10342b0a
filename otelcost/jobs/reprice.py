"""Re-pricing the lake's partitions, and listing the models no catalog entry priced.

``reprice`` re-runs the pricer over stored calls after a catalog correction. Tokens are the
truth: every pricing input (provider, request and response model, service tier, ``ts``, token
counts, attributes) is in the lake, so the cost columns are recomputed from the stored rows
(``CALL_SCHEMA`` columns) and nothing else changes. Each partition is rewritten atomically under
the lake's exclusive lock (``otelcost.lake.locking``) with ``otelcost.lake.swap.replace_partition``:
readers see the old day or the new day, never a mix, and the live writer waits only for the
partition being swapped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from otelcost.lake.audit import AuditEntry, append_entries, command_actor
from otelcost.lake.layout import list_partitions, read_partition
from otelcost.lake.locking import lake_lock
from otelcost.lake.query import run_query
from otelcost.lake.swap import replace_partition
from otelcost.money import decimal_array_to_pico, pico_to_decimal
from otelcost.pricing.catalog import Catalog
from otelcost.pricing.engine import Pricer
from otelcost.schema import CALL_SCHEMA, PRICING_COLUMN_NAMES

__all__ = ["PartitionResult", "reprice", "unknown_models"]

_MONEY_COLUMNS = tuple(name for name in PRICING_COLUMN_NAMES if name.endswith("_usd"))
_TEXT_COLUMNS = ("model", "price_ref", "pricing_status")


@dataclass(frozen=True, slots=True)
class PartitionResult:
    """What re-pricing one day changed (``rewritten`` is False on a dry run or when nothing did)."""

    day: date
    rows: int
    changed_rows: int
    cost_before: Decimal
    cost_after: Decimal
    effective_before: Decimal
    effective_after: Decimal
    rewritten: bool


def _changed(old: pa.Table, new: pa.Table) -> np.ndarray:
    changed = np.zeros(old.num_rows, dtype=bool)
    for name in _MONEY_COLUMNS:
        changed |= decimal_array_to_pico(old[name]) != decimal_array_to_pico(new[name])
    for name in _TEXT_COLUMNS:
        before = pc.fill_null(old[name], "\x00").combine_chunks()
        after = pc.fill_null(new[name], "\x00").combine_chunks()
        changed |= ~np.asarray(pc.equal(before, after).to_numpy(zero_copy_only=False), dtype=bool)
    return changed


def _total(column: pa.ChunkedArray) -> Decimal:
    return (
        pico_to_decimal(int(decimal_array_to_pico(column).astype(object).sum()))
        if len(column)
        else Decimal(0)
    )


def reprice(
    lake_dir: Path,
    pricer: Pricer,
    *,
    since: date,
    until: date | None = None,
    dry_run: bool = False,
    lock_timeout: float | None = None,
    on_partition: Callable[[PartitionResult], None] | None = None,
    actor: str | None = None,
) -> list[PartitionResult]:
    """Recompute the cost columns of every partition from ``since`` (inclusive) to ``until``
    (exclusive); rewrite a partition only if a row changed. Returns one result per partition.

    A run that rewrote partitions is an entry of the lake's audit log (``pricing.reprice`` by
    ``actor``, ``cli:<os user>`` when None): the days rewritten and their totals before and after."""
    results = []
    for day in list_partitions(lake_dir, since, until):
        with lake_lock(lake_dir, timeout=lock_timeout):
            stored = read_partition(lake_dir, day)
            priced = pricer.price(stored.select(CALL_SCHEMA.names))
            changed = _changed(stored, priced) if stored.num_rows else np.zeros(0, dtype=bool)
            rewrite = bool(changed.any()) and not dry_run
            if rewrite:
                replace_partition(lake_dir, day, priced)
        result = PartitionResult(
            day=day,
            rows=stored.num_rows,
            changed_rows=int(changed.sum()),
            cost_before=_total(stored["cost_usd"]),
            cost_after=_total(priced["cost_usd"]),
            effective_before=_total(stored["effective_cost_usd"]),
            effective_after=_total(priced["effective_cost_usd"]),
            rewritten=rewrite,
        )
        results.append(result)
        if on_partition is not None:
            on_partition(result)
    _audit(lake_dir, results, since, until, actor)
    return results


def _audit(
    lake_dir: Path, results: list[PartitionResult], since: date, until: date | None, actor: str | None
) -> None:
    rewritten = [result for result in results if result.rewritten]
    if not rewritten:
        return
    days = [result.day.isoformat() for result in rewritten]
    before = {
        "days": days,
        "cost_usd": str(sum((r.cost_before for r in rewritten), Decimal(0))),
        "effective_cost_usd": str(sum((r.effective_before for r in rewritten), Decimal(0))),
    }
    after = {
        "days": days,
        "cost_usd": str(sum((r.cost_after for r in rewritten), Decimal(0))),
        "effective_cost_usd": str(sum((r.effective_after for r in rewritten), Decimal(0))),
    }
    target = f"{since.isoformat()}..{until.isoformat() if until else ''}"
    entry = AuditEntry(
        actor or command_actor(),
        "pricing.reprice",
        target,
        before=before,
        after=after,
    )
    append_entries(lake_dir, [entry])


UNKNOWN_MODELS_SQL = """
SELECT provider,
       coalesce(nullif(response_model, ''), request_model) AS model_name,
       count(*) AS calls,
       CAST(sum(input_tokens) AS BIGINT) AS input_tokens,
       CAST(sum(output_tokens) AS BIGINT) AS output_tokens,
       CAST(sum(cache_read_tokens) AS BIGINT) AS cache_read_tokens,
       CAST(sum(cache_write_tokens) AS BIGINT) AS cache_write_tokens,
       CAST(sum(reasoning_tokens) AS BIGINT) AS reasoning_tokens,
       min(ts) AS first_seen,
       max(ts) AS last_seen
FROM llm_calls
WHERE pricing_status = 'unknown_model'
  AND ts >= CAST($since AS TIMESTAMPTZ)
  AND ts < CAST($until AS TIMESTAMPTZ)
GROUP BY ALL
ORDER BY calls DESC, input_tokens DESC, provider, model_name
"""


def unknown_models(
    lake_dir: Path,
    *,
    since: date | None = None,
    until: date | None = None,
    catalog: Catalog | None = None,
    timeout: float | None = 60.0,
) -> pa.Table:
    """Models seen in the lake that no catalog entry priced, with their token volumes.

    With ``catalog``, the column ``priced_now_as`` tells which entry the current catalog would
    price them as (run ``otelcost reprice`` to apply it), NULL if still none.
    """
    params = {
        "since": (since or date(1970, 1, 1)).isoformat(),
        "until": (until or date(9999, 12, 31)).isoformat(),
    }
    table = run_query(lake_dir, UNKNOWN_MODELS_SQL, params, timeout=timeout)
    if catalog is None:
        return table
    now = []
    for provider, name in zip(table["provider"].to_pylist(), table["model_name"].to_pylist(), strict=True):
        entry = catalog.resolve(provider, name) if name else None
        now.append(entry.key if entry is not None else None)
    return table.append_column("priced_now_as", pa.array(now, type=pa.string()))
