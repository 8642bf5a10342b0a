"""FOCUS export: the lake's LLM spend as a FinOps cost-and-usage dataset (docs/focus.md).

``export_focus(lake_dir, statements_dir, request, out_dir)`` writes ``focus.parquet``,
``focus.csv`` and ``manifest.json`` for one period, and keeps a ledger of what it exported so a
later export of the same period adds correction rows instead of rewriting history. The
modules, in the order data flows through them: ``focus_columns`` (the columns per FOCUS
version), ``providers`` (who sells, hosts and made the model), ``focus`` (live rows from the
lake), ``corrections`` (rows for what changed), ``ledger`` (versions on disk), ``writer``
(deterministic bytes), ``run`` (the steps).
"""

from __future__ import annotations

from otelcost.export.focus_columns import COLUMNS, DEFAULT_VERSION, FOCUS_VERSIONS, FocusColumn, columns_for
from otelcost.export.run import FILES, ExportResult, FocusExportRequest, export_focus, request_from

__all__ = [
    "COLUMNS",
    "DEFAULT_VERSION",
    "FILES",
    "FOCUS_VERSIONS",
    "ExportResult",
    "FocusColumn",
    "FocusExportRequest",
    "columns_for",
    "export_focus",
    "request_from",
]
