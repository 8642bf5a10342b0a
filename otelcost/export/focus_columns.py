"""The columns of a FOCUS cost-and-usage dataset, per FOCUS version, as otelcost writes them.

Each :class:`FocusColumn` says what the specification says of the column (its feature level,
whether it allows nulls, its data type, the values it allows, the version that introduced it
and the one that deprecated it) and which Arrow type otelcost writes it as. The requirement
levels were read from the FOCUS_Spec repository (``specification/columns/*.md`` at tag v1.2;
``specification/datasets/cost_and_usage/columns/*.md`` for 1.3); docs/focus.md cites them.

Three versions are written:

``1.0``
    the newest version the focus-validator package installable here (1.0.0) has rules for;
    the test suite runs it over this dataset.
``1.2``
    adds ServiceSubcategory, SkuMeter, SkuPriceDetails, InvoiceId, ChargeClass values as 1.0.
``1.3`` (default)
    adds ServiceProviderName and HostProviderName (ProviderName and PublisherName stay, marked
    deprecated) and the allocation columns AllocatedMethodId, AllocatedMethodDetails,
    AllocatedResourceId, AllocatedResourceName, AllocatedTags.

Columns otelcost adds of its own start with ``x_``, as the specification requires of custom
columns. Money is ``DECIMAL(38, 12)`` (the lake's type, exact to the picodollar), quantities
``DECIMAL(38, 6)`` (PricingQuantity is tokens / 1,000,000), unit prices ``DECIMAL(38, 18)`` (a
per-million rate of 6 decimals times a discount fraction of up to 8 decimals fits exactly; a
blend of rates is rounded there, far below a picodollar per row).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import pyarrow as pa

__all__ = [
    "COLUMNS",
    "DEFAULT_VERSION",
    "FOCUS_VERSIONS",
    "MONEY_TYPE",
    "QUANTITY_TYPE",
    "UNIT_PRICE_TYPE",
    "FocusColumn",
    "arrow_schema",
    "columns_for",
]

FOCUS_VERSIONS: Final = ("1.0", "1.2", "1.3")
DEFAULT_VERSION: Final = "1.3"

MONEY_TYPE: Final = pa.decimal128(38, 12)
QUANTITY_TYPE: Final = pa.decimal128(38, 6)
UNIT_PRICE_TYPE: Final = pa.decimal128(38, 18)
DATETIME_TYPE: Final = pa.timestamp("us", tz="UTC")

Kind = Literal["string", "decimal", "datetime", "json", "integer"]
Level = Literal["Mandatory", "Recommended", "Conditional", "Custom"]

_ARROW: Final[dict[str, pa.DataType]] = {
    "string": pa.string(),
    "datetime": DATETIME_TYPE,
    "json": pa.string(),
    "integer": pa.int64(),
}


@dataclass(frozen=True, slots=True)
class FocusColumn:
    """One column: the specification's constraints and how otelcost fills it."""

    name: str
    kind: Kind
    level: Level
    nullable: bool
    source: str
    introduced: str = "1.0"
    deprecated: str | None = None
    allowed: tuple[str, ...] = ()
    decimal_type: pa.DataType = MONEY_TYPE

    @property
    def arrow_type(self) -> pa.DataType:
        return self.decimal_type if self.kind == "decimal" else _ARROW[self.kind]

    def in_version(self, version: str) -> bool:
        return _key(self.introduced) <= _key(version)


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _c(
    name: str,
    kind: Kind,
    level: Level,
    nullable: bool,
    source: str,
    *,
    introduced: str = "1.0",
    deprecated: str | None = None,
    allowed: tuple[str, ...] = (),
    decimal_type: pa.DataType = MONEY_TYPE,
) -> FocusColumn:
    return FocusColumn(name, kind, level, nullable, source, introduced, deprecated, allowed, decimal_type)


_Q = QUANTITY_TYPE
_P = UNIT_PRICE_TYPE

COLUMNS: Final[tuple[FocusColumn, ...]] = (
    _c("AllocatedMethodDetails", "json", "Conditional", True, "NULL: no allocation rows", introduced="1.3"),
    _c("AllocatedMethodId", "string", "Conditional", True, "NULL: no allocation rows", introduced="1.3"),
    _c("AllocatedResourceId", "string", "Conditional", True, "NULL: no allocation rows", introduced="1.3"),
    _c("AllocatedResourceName", "string", "Conditional", True, "NULL: no allocation rows", introduced="1.3"),
    _c("AllocatedTags", "json", "Conditional", True, "NULL: no allocation rows", introduced="1.3"),
    _c("AvailabilityZone", "string", "Recommended", True, "NULL: not known for API calls"),
    _c("BilledCost", "decimal", "Mandatory", False, "sum(effective_cost_usd), split by token class"),
    _c("BillingAccountId", "string", "Mandatory", False, "provider (gen_ai.provider.name)"),
    _c("BillingAccountName", "string", "Mandatory", True, "NULL: the lake has no account names"),
    _c("BillingCurrency", "string", "Mandatory", False, "USD"),
    _c("BillingPeriodEnd", "datetime", "Mandatory", False, "first instant of the next UTC month"),
    _c("BillingPeriodStart", "datetime", "Mandatory", False, "UTC month of ChargePeriodStart"),
    _c(
        "ChargeCategory",
        "string",
        "Mandatory",
        False,
        "Usage",
        allowed=("Usage", "Purchase", "Tax", "Credit", "Adjustment"),
    ),
    _c("ChargeClass", "string", "Mandatory", True, "NULL, or Correction", allowed=("Correction",)),
    _c("ChargeDescription", "string", "Mandatory", True, "meter, model and service"),
    _c(
        "ChargeFrequency",
        "string",
        "Recommended",
        False,
        "Usage-Based",
        allowed=("One-Time", "Recurring", "Usage-Based"),
    ),
    _c("ChargePeriodEnd", "datetime", "Mandatory", False, "ChargePeriodStart + 1 hour or 1 day"),
    _c("ChargePeriodStart", "datetime", "Mandatory", False, "date_trunc(granularity, ts)"),
    _c("CommitmentDiscountCategory", "string", "Conditional", True, "NULL: no commitments"),
    _c("CommitmentDiscountId", "string", "Conditional", True, "NULL: no commitments"),
    _c("CommitmentDiscountName", "string", "Conditional", True, "NULL: no commitments"),
    _c("CommitmentDiscountStatus", "string", "Conditional", True, "NULL: no commitments"),
    _c("CommitmentDiscountType", "string", "Conditional", True, "NULL: no commitments"),
    _c("ConsumedQuantity", "decimal", "Conditional", True, "tokens of the class", decimal_type=_Q),
    _c("ConsumedUnit", "string", "Conditional", True, "Tokens"),
    _c("ContractedCost", "decimal", "Mandatory", False, "sum(effective_cost_usd), split by token class"),
    _c(
        "ContractedUnitPrice",
        "decimal",
        "Conditional",
        True,
        "ContractedCost / tokens, per 1M",
        decimal_type=_P,
    ),
    _c("EffectiveCost", "decimal", "Mandatory", False, "ContractedCost (no commitments to amortize)"),
    _c(
        "HostProviderName",
        "string",
        "Mandatory",
        False,
        "company running the infrastructure",
        introduced="1.3",
    ),
    _c("InvoiceId", "string", "Recommended", True, "NULL: not reconciled with an invoice", introduced="1.2"),
    _c("InvoiceIssuerName", "string", "Mandatory", False, "company that invoices the provider's calls"),
    _c("ListCost", "decimal", "Mandatory", False, "sum(<class>_cost_usd)"),
    _c("ListUnitPrice", "decimal", "Conditional", True, "ListCost / tokens, per 1M", decimal_type=_P),
    _c(
        "PricingCategory",
        "string",
        "Conditional",
        True,
        "Standard",
        allowed=("Standard", "Dynamic", "Committed", "Other"),
    ),
    _c("PricingQuantity", "decimal", "Mandatory", True, "tokens / 1,000,000", decimal_type=_Q),
    _c("PricingUnit", "string", "Mandatory", True, "1000000 Tokens"),
    _c("ProviderName", "string", "Mandatory", False, "company selling the service", deprecated="1.3"),
    _c("PublisherName", "string", "Mandatory", False, "model developer", deprecated="1.3"),
    _c("RegionId", "string", "Conditional", True, "NULL: not known"),
    _c("RegionName", "string", "Conditional", True, "NULL: not known"),
    _c("ResourceId", "string", "Conditional", True, "NULL: API calls are not resources"),
    _c("ResourceName", "string", "Conditional", True, "NULL: API calls are not resources"),
    _c("ResourceType", "string", "Conditional", True, "NULL: API calls are not resources"),
    _c("ServiceCategory", "string", "Mandatory", False, "AI and Machine Learning"),
    _c("ServiceName", "string", "Mandatory", False, "the provider's service (Amazon Bedrock, OpenAI API)"),
    _c("ServiceProviderName", "string", "Mandatory", False, "company selling the service", introduced="1.3"),
    _c("ServiceSubcategory", "string", "Recommended", False, "Generative AI", introduced="1.1"),
    _c("SkuId", "string", "Conditional", True, "provider/model/meter"),
    _c("SkuMeter", "string", "Conditional", True, "Input Tokens, Output Tokens ...", introduced="1.1"),
    _c(
        "SkuPriceDetails",
        "json",
        "Conditional",
        True,
        "x_ properties: model, tier, token class",
        introduced="1.1",
    ),
    _c("SkuPriceId", "string", "Conditional", True, "price_ref#meter"),
    _c("SubAccountId", "string", "Conditional", True, "NULL: no sub-accounts"),
    _c("SubAccountName", "string", "Conditional", True, "NULL: no sub-accounts"),
    _c("Tags", "json", "Conditional", True, "team, feature, tenant, environment, project ..."),
    _c("x_Calls", "integer", "Custom", True, "calls aggregated in the row (NULL on corrections)"),
    _c("x_ConsumerId", "string", "Custom", True, "tenant_id: who the calls were made for"),
    _c("x_ExportVersion", "integer", "Custom", False, "ledger version that first wrote the row"),
    _c("x_Model", "string", "Custom", True, "catalog model id, else the requested model"),
    _c("x_PriceRef", "string", "Custom", True, "price_ref of the calls"),
    _c("x_PricingStatus", "string", "Custom", False, "priced | unknown_model | no_model"),
    _c("x_Provider", "string", "Custom", True, "gen_ai.provider.name as in the lake"),
    _c("x_Service", "string", "Custom", True, "service.name of the calling service"),
    _c("x_ServiceTier", "string", "Custom", True, "standard | batch | flex | priority"),
    _c("x_TokenClass", "string", "Custom", False, "input | cache_read | cache_write | output | reasoning"),
)
"""Every column otelcost writes in some version, in name order (x_ columns last)."""


def columns_for(version: str) -> tuple[FocusColumn, ...]:
    """The columns of a dataset of FOCUS ``version`` (one of :data:`FOCUS_VERSIONS`)."""
    if version not in FOCUS_VERSIONS:
        raise ValueError(f"FOCUS version {version!r} is not one of {', '.join(FOCUS_VERSIONS)}")
    return tuple(column for column in COLUMNS if column.in_version(version))


def arrow_schema(version: str) -> pa.Schema:
    """The Arrow schema of a dataset of ``version``: the nullable flags are the specification's."""
    return pa.schema(
        [
            pa.field(column.name, column.arrow_type, nullable=column.nullable)
            for column in columns_for(version)
        ]
    )
