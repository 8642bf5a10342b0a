"""Invoice reconciliation: does the provider's bill agree with the lake?

``reconcile(lake_dir, provider, invoices, start, end, catalog=...)`` reads a provider's own
usage or cost export (OpenAI, Anthropic, AWS CUR / FOCUS for Bedrock, Azure cost exports for
Azure OpenAI), compares it with the lake's calls per (UTC day, model, token class) in exact
picodollars and tokens, and answers named Arrow tables: the explained share of the bill, the
unexplained dollars (billed, no span), the over-attributed dollars (spans, not billed) and the
price disagreements, each gap with its likely cause. docs/reconciliation.md is the user page.
"""

from otelcost.reconcile.errors import InvoiceFormatError, ReconcileError
from otelcost.reconcile.providers import PROVIDERS, read_invoice
from otelcost.reconcile.result import ReconcileResult
from otelcost.reconcile.run import DEFAULT_MIN_EXPLAINED, DEFAULT_MIN_FINDING, reconcile

__all__ = [
    "DEFAULT_MIN_EXPLAINED",
    "DEFAULT_MIN_FINDING",
    "PROVIDERS",
    "InvoiceFormatError",
    "ReconcileError",
    "ReconcileResult",
    "read_invoice",
    "reconcile",
]
