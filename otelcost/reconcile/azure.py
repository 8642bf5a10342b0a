"""Azure cost export rows for Azure OpenAI (Cost Management exports), as invoice lines.

Accepted files (CSV; docs/reconciliation.md, "Azure OpenAI"): the actual-cost (or amortized)
exports of Cost Management, EA, MCA and pay-as-you-go layouts alike. Columns read:

* the day: ``Date`` (``MM/DD/YYYY`` or ISO), ``date``, ``UsageDate`` or ``UsageDateTime``;
* the meter: ``MeterName`` (``meterName``), with ``MeterSubCategory`` / ``MeterCategory`` /
  ``ProductName`` to recognize Azure OpenAI rows;
* the quantity: ``Quantity`` in ``UnitOfMeasure`` (``1K``, ``1K Tokens``, ``1M``,
  ``1M Tokens``, ``Tokens``), so ``12.5`` of ``1K`` is 12,500 tokens;
* the cost: ``CostInUsd``, ``CostInBillingCurrency``, ``Cost`` or ``PreTaxCost`` (first
  present), in ``BillingCurrency`` / ``BillingCurrencyCode`` / ``Currency`` (must be USD unless
  ``CostInUsd`` is used).

The meter name names the model, its version (``MMDD``), the class and the deployment type, in
the spellings Azure uses: ``gpt-4o-mini-0718-Inp-glbl Tokens``, ``gpt 4o 0513 Input global
Tokens``, ``gpt 4o 1120 cached Inp glbl``, ``gpt-4o-0806-Outp-glbl``, ``GPT 5 Inpt Glbl``,
``gpt-4-8K-Batch-Inp-glbl``. Rows of other services, and Azure OpenAI meters that are not
tokens (fine-tuning hosting, provisioned units), are counted in the notes, not reconciled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from otelcost.reconcile.errors import InvoiceFormatError
from otelcost.reconcile.invoice import (
    InvoiceLine,
    ParsedFile,
    parse_day,
    parse_usd,
    read_csv,
    usd_to_pico_rounded,
)

__all__ = ["AzureMeter", "parse_meter", "read_azure"]

_DAY: Final = ("Date", "date", "UsageDate", "UsageDateTime", "usageDate")
_METER: Final = ("MeterName", "meterName")
_QUANTITY: Final = ("Quantity", "quantity", "UsageQuantity")
_UNIT: Final = ("UnitOfMeasure", "unitOfMeasure")
_COST_USD: Final = ("CostInUsd", "costInUsd")
_COST: Final = ("CostInBillingCurrency", "costInBillingCurrency", "Cost", "cost", "PreTaxCost")
_CURRENCY: Final = ("BillingCurrency", "BillingCurrencyCode", "billingCurrency", "Currency")
_CONTEXT: Final = (
    "MeterSubCategory",
    "meterSubCategory",
    "MeterCategory",
    "meterCategory",
    "ProductName",
    "productName",
    "ServiceName",
    "serviceName",
)
_UNITS: Final = {
    "tokens": 1,
    "1 tokens": 1,
    "1k": 1_000,
    "1k tokens": 1_000,
    "1000 tokens": 1_000,
    "1m": 1_000_000,
    "1m tokens": 1_000_000,
    "1000000 tokens": 1_000_000,
}
_INPUT: Final = frozenset({"inp", "input", "inpt", "in"})
_OUTPUT: Final = frozenset({"outp", "output", "out", "outpt", "opt"})
_CACHED: Final = frozenset({"cached", "cchd", "cache", "cached-inp"})
_DEPLOYMENT: Final = {
    "glbl": "global",
    "global": "global",
    "gl": "global",
    "regnl": "regional",
    "regional": "regional",
    "rgnl": "regional",
    "dzone": "data_zone",
    "dz": "data_zone",
    "datazone": "data_zone",
}
_NOISE: Final = frozenset({"tokens", "token", "1k", "1m", "txt", "text", "batch", "aud", "audio"})
_VERSION: Final = re.compile(r"^\d{4}$")


@dataclass(frozen=True, slots=True)
class AzureMeter:
    """What a token meter's name says: model words, version (MMDD), class, deployment, batch."""

    model: str
    version: str | None
    token_class: str
    deployment: str | None
    batch: bool

    @property
    def name(self) -> str:
        """``gpt-4o-mini@0718``: the model and its Azure version, as the mapping reads it."""
        return f"{self.model}@{self.version}" if self.version else self.model


def parse_meter(meter: str) -> AzureMeter | None:
    """The token meter a MeterName describes, or None when it is not an input/output meter."""
    words = [w for w in re.split(r"[\s_-]+", meter.strip().lower()) if w]
    token_class = None
    cut = len(words)
    for index, word in enumerate(words):
        if word in _INPUT or word in _OUTPUT:
            token_class = "output" if word in _OUTPUT else "input"
            cut = index
            break
    if token_class is None:
        return None
    cached = any(w in _CACHED for w in words)
    deployment = next((_DEPLOYMENT[w] for w in words if w in _DEPLOYMENT), None)
    batch = "batch" in words
    model_words = [w for w in words[:cut] if w not in _CACHED and w not in _NOISE and w not in _DEPLOYMENT]
    version = None
    if model_words and _VERSION.match(model_words[-1]):
        version = model_words.pop()
    if not model_words:
        return None
    if cached and token_class == "input":
        token_class = "cache_read"
    return AzureMeter("-".join(model_words), version, token_class, deployment, batch)


def read_azure(path: Path, text: str) -> ParsedFile:
    """The Azure OpenAI token lines of a Cost Management export."""
    result = ParsedFile()
    for row in read_csv(path, text, [_DAY, _METER, _QUANTITY, _COST_USD + _COST]):
        usd_column = row.column(*_COST_USD) if row.get(*_COST_USD) is not None else row.column(*_COST)
        cost = parse_usd(row.cells[usd_column] or "0", path, row.where(usd_column))
        context = " ".join(row.get(name) or "" for name in _CONTEXT).lower()
        meter_name = row.get(*_METER) or ""
        meter = parse_meter(meter_name)
        openai_row = "openai" in context
        if meter is None or not (
            openai_row or "foundry models" in context or "cognitive services" in context
        ):
            if openai_row:
                result.skip("Azure OpenAI meters that are not tokens (hosting, provisioned units ...)", cost)
            else:
                result.skip("other Azure services", cost)
            continue
        if usd_column not in _COST_USD:
            currency = (row.get(*_CURRENCY) or "USD").upper()
            if currency != "USD":
                raise InvoiceFormatError(
                    path,
                    row.where(row.column(*_CURRENCY)),
                    f"only USD is reconciled, got {currency!r} (export CostInUsd)",
                )
        unit_text = (row.get(*_UNIT) or "tokens").strip().lower()
        multiplier = _UNITS.get(unit_text)
        if multiplier is None:
            raise InvoiceFormatError(
                path, row.where(row.column(*_UNIT)), f"unknown unit {unit_text!r}; expected 1K, 1M or Tokens"
            )
        quantity_column = row.column(*_QUANTITY)
        tokens = parse_usd(row.cells[quantity_column] or "0", path, row.where(quantity_column)) * multiplier
        if tokens != tokens.to_integral_value() or tokens < 0:
            raise InvoiceFormatError(
                path,
                row.where(quantity_column),
                f"{row.cells[quantity_column]} x {unit_text} is not a whole token count",
            )
        day = parse_day(row.get(*_DAY), path, row.where(row.column(*_DAY)))
        result.lines.append(
            InvoiceLine(
                day,
                meter.name,
                meter.token_class,
                int(tokens),
                usd_to_pico_rounded(cost),
                f"{path.name}:{row.line}",
            )
        )
    return result
