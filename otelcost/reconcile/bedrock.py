"""AWS Cost and Usage Report rows for Amazon Bedrock (CUR 2.0, legacy CUR, FOCUS), as invoice lines.

Accepted files (CSV, comma separated, as the Data Exports write them; docs/reconciliation.md,
"Amazon Bedrock"):

* **CUR 2.0** columns: ``line_item_usage_start_date``, ``line_item_line_item_type``,
  ``line_item_usage_type``, ``line_item_usage_amount``, ``line_item_unblended_cost``, and the
  model from ``line_item_resource_id`` (a ``foundation-model/`` or ``inference-profile/`` ARN),
  else ``product_product_name`` or the ``product`` map column's ``product_name``
  (``"Claude Sonnet 4.5 (Amazon Bedrock Edition)"``); optional ``pricing_unit``,
  ``line_item_product_code``, ``line_item_currency_code``.
* **Legacy CUR** headers: ``lineItem/UsageStartDate``, ``lineItem/LineItemType``,
  ``lineItem/UsageType``, ``lineItem/UsageAmount``, ``lineItem/UnblendedCost``,
  ``lineItem/ResourceId``, ``product/ProductName``, ``pricing/unit``.
* **FOCUS** (the AWS FOCUS export): ``ChargePeriodStart``, ``ChargeCategory``, ``x_UsageType``,
  ``ConsumedQuantity``, ``ConsumedUnit``, ``BilledCost``, ``ResourceId``, ``ServiceName``.

The usage type carries the token class: ``USE1-MP:USE1_InputTokenCount-Units``,
``..._OutputTokenCount...``, ``..._CacheReadInputTokenCount...``,
``..._CacheWriteInputTokenCount...``, and the snake-case spelling of newer models
(``USW2-MP:USW2_input_tokens_global_standard-Units``); ``_Global`` / ``global`` marks the
global cross-region rate. Only ``Usage`` rows (and ``SavingsPlanCoveredUsage``,
``DiscountedUsage``) of Bedrock are read; other services and other line item types (tax,
credits, refunds, EDP discounts) are counted in the notes, not reconciled.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Final

from otelcost.reconcile.errors import InvoiceFormatError
from otelcost.reconcile.invoice import (
    CsvRow,
    InvoiceLine,
    ParsedFile,
    parse_day,
    parse_usd,
    read_csv,
    usd_to_pico_rounded,
)

__all__ = ["read_bedrock", "usage_type_class"]

_COLUMNS: Final = {
    "start": ("line_item_usage_start_date", "lineItem/UsageStartDate", "ChargePeriodStart"),
    "type": ("line_item_line_item_type", "lineItem/LineItemType", "ChargeCategory"),
    "usage_type": ("line_item_usage_type", "lineItem/UsageType", "x_UsageType"),
    "amount": ("line_item_usage_amount", "lineItem/UsageAmount", "ConsumedQuantity"),
    "cost": ("line_item_unblended_cost", "lineItem/UnblendedCost", "BilledCost"),
    "resource": ("line_item_resource_id", "lineItem/ResourceId", "ResourceId"),
    "product_name": ("product_product_name", "product/ProductName", "ServiceName"),
    "product_map": ("product",),
    "product_code": ("line_item_product_code", "lineItem/ProductCode", "x_ServiceCode"),
    "unit": ("pricing_unit", "pricing/unit", "ConsumedUnit"),
    "currency": ("line_item_currency_code", "lineItem/CurrencyCode", "BillingCurrency"),
}
_USAGE_TYPES: Final = frozenset({"usage", "savingsplancoveredusage", "discountedusage"})
_CLASS_PATTERNS: Final = (  # most specific first: "CacheReadInputTokenCount" also says "Input"
    (re.compile(r"cache[_-]?read", re.I), "cache_read"),
    (re.compile(r"cache[_-]?write", re.I), "cache_write"),
    (re.compile(r"input[_-]?token", re.I), "input"),
    (re.compile(r"output[_-]?token", re.I), "output"),
)
_GLOBAL: Final = re.compile(r"global", re.I)
_UNITS: Final = {
    "tokens": 1,
    "token": 1,
    "units": 1,
    "unit": 1,
    "count": 1,
    "1k tokens": 1_000,
    "1000 tokens": 1_000,
    "1k": 1_000,
    "1m tokens": 1_000_000,
    "1000000 tokens": 1_000_000,
    "1m": 1_000_000,
}
_ARN_MODEL: Final = re.compile(r"(?:foundation-model|inference-profile)/([^/]+)$")
_EDITION: Final = " (Amazon Bedrock Edition)"


def usage_type_class(usage_type: str) -> str | None:
    """The token class a Bedrock usage type bills, or None when it is not a token meter."""
    tail = usage_type.rsplit(":", maxsplit=1)[-1]
    for pattern, token_class in _CLASS_PATTERNS:
        if pattern.search(tail):
            return token_class
    return None


def _model_of(row: CsvRow, usage_type: str) -> str:
    resource = row.get(*_COLUMNS["resource"]) or ""
    if match := _ARN_MODEL.search(resource):
        return match[1]
    name = row.get(*_COLUMNS["product_name"]) or ""
    product_map = row.get(*_COLUMNS["product_map"])
    if not name and product_map:
        try:
            mapping = json.loads(product_map)
        except json.JSONDecodeError:
            raise InvoiceFormatError(
                row.path, row.where("product"), "expected the product map as JSON"
            ) from None
        if isinstance(mapping, dict):
            name = str(mapping.get("product_name") or mapping.get("productName") or "")
    if name and name not in ("Amazon Bedrock", "Bedrock"):
        return name.removesuffix(_EDITION).strip()
    # First-party models: the model is in the usage type, "USE1-Nova-Lite-input-tokens"
    tail = usage_type.rsplit(":", maxsplit=1)[-1].split("-", 1)[-1]
    return re.sub(r"[-_]?(cache[-_]?(read|write)[-_]?)?(input|output)[-_]?tokens?.*$", "", tail, flags=re.I)


def _tokens(row: CsvRow, amount_text: str) -> int:
    column = row.column(*_COLUMNS["amount"])
    amount = parse_usd(amount_text, row.path, row.where(column))
    unit_text = (row.get(*_COLUMNS["unit"]) or "tokens").strip().lower()
    multiplier = _UNITS.get(unit_text)
    if multiplier is None:
        raise InvoiceFormatError(
            row.path,
            row.where(row.column(*_COLUMNS["unit"])),
            f"unknown unit {unit_text!r}; expected Tokens, 1K tokens or 1M tokens",
        )
    tokens = amount * multiplier
    if tokens != tokens.to_integral_value() or tokens < 0:
        raise InvoiceFormatError(
            row.path, row.where(column), f"{amount_text} {unit_text} is not a whole token count"
        )
    return int(tokens)


def read_bedrock(path: Path, text: str) -> ParsedFile:
    """The Bedrock token lines of a CUR 2.0 / legacy CUR / FOCUS CSV."""
    required = [_COLUMNS[key] for key in ("start", "usage_type", "amount", "cost")]
    result = ParsedFile()
    for row in read_csv(path, text, required):
        cost_column = row.column(*_COLUMNS["cost"])
        cost = parse_usd(row.get(*_COLUMNS["cost"]) or "0", path, row.where(cost_column))
        usage_type = row.get(*_COLUMNS["usage_type"]) or ""
        product = (
            (row.get(*_COLUMNS["product_code"]) or "") + " " + (row.get(*_COLUMNS["product_name"]) or "")
        )
        product += " " + (row.get(*_COLUMNS["product_map"]) or "")
        token_class = usage_type_class(usage_type)
        if "bedrock" not in product.lower() and token_class is None:
            result.skip("other AWS services", cost)
            continue
        kind = (row.get(*_COLUMNS["type"]) or "Usage").replace(" ", "").lower()
        if kind not in _USAGE_TYPES:
            result.skip(f"line item type {row.get(*_COLUMNS['type'])}", cost)
            continue
        if token_class is None:
            result.skip("Bedrock charges that are not tokens (provisioned throughput, storage ...)", cost)
            continue
        currency = (row.get(*_COLUMNS["currency"]) or "USD").upper()
        if currency != "USD":
            raise InvoiceFormatError(
                path,
                row.where(row.column(*_COLUMNS["currency"])),
                f"only USD is reconciled, got {currency!r}",
            )
        start_column = row.column(*_COLUMNS["start"])
        day = parse_day(row.get(*_COLUMNS["start"]), path, row.where(start_column))
        tokens = _tokens(row, row.get(*_COLUMNS["amount"]) or "0")
        result.lines.append(
            InvoiceLine(
                day,
                _model_of(row, usage_type),
                token_class,
                tokens,
                usd_to_pico_rounded(cost),
                f"{path.name}:{row.line}",
                host_global=bool(_GLOBAL.search(usage_type.split(":")[-1])),
            )
        )
    return result
