"""The errors of reconciliation: an invoice file that cannot be read, a request that cannot be met.

``InvoiceFormatError`` names the file, the line and the column (or JSON path) of the first
problem, so a FinOps engineer can open the export at the right place; the CLI prints it as one
line and exits with status 1 (docs/reconciliation.md, "Exit status").
"""

from __future__ import annotations

from pathlib import Path

from otelcost.errors import OtelcostError

__all__ = ["InvoiceFormatError", "ReconcileError"]


class ReconcileError(OtelcostError):
    """A reconciliation cannot be made from what it was given (provider, period, files)."""


class InvoiceFormatError(ReconcileError):
    """An invoice file is not in a format its provider's parser accepts.

    ``where`` is ``line N, column NAME`` for CSV, a JSON path such as ``data[3].results[0].amount``
    for JSON, or empty for a problem with the whole file.
    """

    def __init__(self, path: Path, where: str, problem: str) -> None:
        self.path = path
        self.where = where
        self.problem = problem
        place = f"{path}: {where}" if where else str(path)
        super().__init__(f"{place}: {problem}")
