"""Exact pricing of LLM calls from an effective-dated catalog.

``Catalog.load(config)`` reads the shipped catalog files (``otelcost/pricing/catalog/*.yaml``)
and the user's, validates them and builds lookup indexes; ``Pricer(catalog, config).price(calls)``
turns a ``CALL_SCHEMA`` batch into ``RECORD_SCHEMA`` rows with exact cost columns. See
``otelcost/pricing/README.md`` and ``docs/pricing.md``.
"""

from otelcost.pricing.catalog import Catalog, check
from otelcost.pricing.catalog_loader import CatalogIssue
from otelcost.pricing.config import Discount, PricingConfig
from otelcost.pricing.costs import CACHE_WRITE_1H_ATTRIBUTE
from otelcost.pricing.engine import PRICING_STATUSES, Pricer, PricingCounters
from otelcost.pricing.entries import Entry, Source, Version

__all__ = [
    "CACHE_WRITE_1H_ATTRIBUTE",
    "PRICING_STATUSES",
    "Catalog",
    "CatalogIssue",
    "Discount",
    "Entry",
    "Pricer",
    "PricingConfig",
    "PricingCounters",
    "Source",
    "Version",
    "check",
]
