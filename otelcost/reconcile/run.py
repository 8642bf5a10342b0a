"""Reconcile one provider's invoice files with the lake over a period: the library entry point.

``reconcile`` reads the files (``providers.read_invoice``), keeps the lines of the period, maps
bill names to model keys (``mapping.py``), reads the lake's cells (``lake.py``), compares them
(``compare.py``), names the gaps (``findings.py``) and returns the tables (``result.py``). The
command (``otelcost reconcile``) and the monthly report both call it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from otelcost.money import PICO_PER_USD
from otelcost.pricing.catalog import Catalog
from otelcost.reconcile.compare import compare
from otelcost.reconcile.errors import ReconcileError
from otelcost.reconcile.findings import find
from otelcost.reconcile.invoice import InvoiceLine
from otelcost.reconcile.lake import lake_cells
from otelcost.reconcile.mapping import ModelKey, ModelResolver
from otelcost.reconcile.providers import provider as find_provider
from otelcost.reconcile.providers import read_invoice
from otelcost.reconcile.result import ReconcileResult, build_result

__all__ = ["DEFAULT_MIN_EXPLAINED", "DEFAULT_MIN_FINDING", "reconcile"]

DEFAULT_MIN_EXPLAINED = Decimal("0.98")
DEFAULT_MIN_FINDING = Decimal("0.01")


def reconcile(
    lake_dir: Path,
    provider: str,
    invoices: Sequence[Path],
    start: datetime,
    end: datetime,
    *,
    catalog: Catalog | None = None,
    model_map: Mapping[str, str] | None = None,
    cost: str = "effective",
    min_explained: Decimal = DEFAULT_MIN_EXPLAINED,
    min_finding: Decimal = DEFAULT_MIN_FINDING,
    timeout: float | None = None,
) -> ReconcileResult:
    """Compare ``provider``'s bill in ``invoices`` with the lake's calls of ``[start, end)``.

    ``start`` and ``end`` must be UTC midnights (bills are per day). ``catalog`` resolves bill
    model names to the lake's model ids (without it names are compared as written); ``cost`` is
    the lake's ``effective`` (default) or ``list`` cost; findings smaller than ``min_finding``
    USD are left out of the findings table (never out of the totals).
    """
    chosen = find_provider(provider)
    if not invoices:
        raise ReconcileError("give at least one invoice file")
    for moment, name in ((start, "start"), (end, "end")):
        if moment.utcoffset() != timedelta(0) or moment.time() != time(0):
            raise ReconcileError(
                f"the period's {name} must be a UTC midnight (bills are per day), got {moment}"
            )
    if not Decimal(0) <= min_explained <= Decimal(1):
        raise ReconcileError(f"min_explained is a share between 0 and 1, got {min_explained}")
    lines: list[InvoiceLine] = []
    skipped: dict[str, tuple[int, Decimal]] = {}
    outside = 0
    for path in invoices:
        parsed = read_invoice(chosen, path)
        for reason, (count, usd) in parsed.skipped.items():
            before = skipped.get(reason, (0, Decimal(0)))
            skipped[reason] = (before[0] + count, before[1] + usd)
        for line in parsed.lines:
            if start.date() <= line.day < end.date():
                lines.append(line)
            else:
                outside += 1
    notes = []
    if outside:
        notes.append(
            f"{outside} invoice lines fall outside {start.date()} to {end.date()} and are not compared"
        )
    for reason, (count, usd) in sorted(skipped.items()):
        notes.append(f"left out: {count} rows of {reason} ({usd.normalize():f} USD)")
    resolver = ModelResolver(catalog, chosen.name, chosen.lake_provider, model_map or {})
    mapped: dict[str, ModelKey] = {
        f"{line.model} (global)" if line.host_global else line.model: resolver.key(line) for line in lines
    }
    cells, dollars, tokens = compare(
        lines, lake_cells(lake_dir, chosen.lake_provider, start, end, cost=cost, timeout=timeout), resolver
    )
    if not dollars:
        notes.append("the invoice has tokens but no dollars: compared in tokens (add the cost export)")
    found = find(cells, dollars)
    threshold = int(min_finding * PICO_PER_USD)
    shown = [f for f in found if (f.pico >= threshold if dollars else f.tokens > 0)]
    if len(shown) < len(found):
        notes.append(f"{len(found) - len(shown)} findings under {min_finding} USD are left out of the list")
    return build_result(
        chosen.name,
        start,
        end,
        cells,
        shown,
        dollars=dollars,
        tokens=tokens,
        min_explained=min_explained,
        mapped=mapped,
        skipped=skipped,
        notes=notes,
    )
