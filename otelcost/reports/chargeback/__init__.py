"""chargeback: who pays what, with shared spend allocated by rules, and closed statements.

* report.py: the ``chargeback`` report (sections ``statement``, ``summary``, ``rules``) and
  :func:`compute_chargeback`, the computation it and a close share;
* allocate.py: the integer-picodollar arithmetic (largest-remainder split, monthly proration);
* statements.py: closing a period into an immutable, versioned statement, and reading it back;
* store.py: the on-disk layout of statements (atomic versions, manifest, sha256).

The rules are ``reports.chargeback`` of the pipeline configuration (otelcost/reports/config.py);
docs/reports.md explains the method for a FinOps reader.
"""

from otelcost.reports.chargeback.report import Chargeback, chargeback, compute_chargeback
from otelcost.reports.chargeback.statements import (
    close_statement,
    diff_statements,
    latest_statement,
    read_statement,
    statement_versions,
)
from otelcost.reports.chargeback.store import ClosedStatement, StatementInfo

__all__ = [
    "Chargeback",
    "ClosedStatement",
    "StatementInfo",
    "chargeback",
    "close_statement",
    "compute_chargeback",
    "diff_statements",
    "latest_statement",
    "read_statement",
    "statement_versions",
]
