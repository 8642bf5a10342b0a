"""Anthropic's usage and cost reports (Admin API), as invoice lines.

Accepted files (docs/reconciliation.md, "Anthropic"):

* **Cost report** (``GET /v1/organizations/cost_report?group_by[]=description``): buckets
  ``{"starting_at", "ending_at", "results": [...]}``; each result has ``amount`` — a decimal
  string in the currency's lowest unit, **cents** (``"123.45"`` is 1.2345 USD) — ``currency``
  (``USD``), ``cost_type`` (``tokens``, ``web_search``, ``code_execution``, ``session_usage``),
  ``model``, ``token_type`` (``uncached_input_tokens``, ``output_tokens``,
  ``cache_read_input_tokens``, ``cache_creation.ephemeral_5m_input_tokens``,
  ``cache_creation.ephemeral_1h_input_tokens``), ``service_tier``, ``context_window``,
  ``description``, ``workspace_id``. A token cost without model or token type (the report not
  grouped by description) is an error.
* **Messages usage report** (``GET /v1/organizations/usage_report/messages?group_by[]=model``):
  results with ``uncached_input_tokens``, ``cache_read_input_tokens``, ``cache_creation``
  (``ephemeral_5m_input_tokens``, ``ephemeral_1h_input_tokens``), ``output_tokens``, ``model``.
  Tokens only. ``bucket_width`` 1d, 1h or 1m: each bucket is counted on its UTC day.
* **CSV** with the same field names as columns, one row per result plus its bucket's
  ``starting_at`` (or ``date``/``usage_date_utc``): cost rows (``model, token_type, amount``
  in cents, or ``cost_usd`` in dollars) or usage rows (``model, uncached_input_tokens, ...``).
  The console's own CSV download is not documented by Anthropic; export it in this shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from otelcost.reconcile.errors import InvoiceFormatError
from otelcost.reconcile.invoice import (
    OTHER,
    InvoiceLine,
    parse_day,
    parse_tokens,
    parse_usd,
    read_csv,
    usd_to_pico_rounded,
)
from otelcost.reconcile.jsonfile import buckets, is_json, need

__all__ = ["TOKEN_TYPES", "read_anthropic"]

TOKEN_TYPES: Final = {
    "uncached_input_tokens": "input",
    "cache_read_input_tokens": "cache_read",
    "cache_creation.ephemeral_5m_input_tokens": "cache_write",
    "cache_creation.ephemeral_1h_input_tokens": "cache_write",
    "output_tokens": "output",
}
"""The cost report's ``token_type`` values and the class each is compared as."""

_CENTS: Final = Decimal(100)


def read_anthropic(path: Path, text: str) -> list[InvoiceLine]:
    """The lines of an Anthropic cost or usage report (JSON pages or CSV)."""
    if is_json(text):
        return list(_json_lines(path, text))
    return list(_csv_lines(path, text))


def _json_lines(path: Path, text: str) -> Iterator[InvoiceLine]:
    for where, bucket in buckets(path, text):
        day = parse_day(need(path, where, bucket, "starting_at"), path, f"{where}.starting_at")
        for index, result in enumerate(bucket["results"]):
            at = f"{where}.results[{index}]"
            if not isinstance(result, dict):
                raise InvoiceFormatError(path, at, "expected an object")
            source = f"{path.name}:{at}"
            if "amount" in result:
                cents = parse_usd(result["amount"], path, f"{at}.amount")
                yield from _cost(path, at, day, result, usd=cents / _CENTS, source=source)
            elif "uncached_input_tokens" in result or "output_tokens" in result:
                yield from _usage(path, at, day, result, source)
            else:
                raise InvoiceFormatError(
                    path, at, "neither a cost result (amount) nor a usage result (uncached_input_tokens ...)"
                )


def _cost(
    path: Path, at: str, day: date, result: dict[str, Any], *, usd: Decimal, source: str
) -> Iterator[InvoiceLine]:
    currency = str(result.get("currency") or "USD").upper()
    if currency != "USD":
        raise InvoiceFormatError(path, f"{at}.currency", f"only USD is reconciled, got {currency!r}")
    cost_type = result.get("cost_type")
    token_type = result.get("token_type")
    model = result.get("model")
    if cost_type is not None and cost_type != "tokens":
        name = str(result.get("description") or cost_type)
        yield InvoiceLine(day, name, OTHER, None, usd_to_pico_rounded(usd), source)
        return
    if token_type is None or not model:
        if usd == 0:
            return
        raise InvoiceFormatError(
            path,
            at,
            "a token cost without model or token_type: export the cost report with "
            "group_by[]=description to compare per model",
        )
    token_class = TOKEN_TYPES.get(str(token_type))
    if token_class is None:
        raise InvoiceFormatError(
            path,
            f"{at}.token_type",
            f"unknown token type {token_type!r}; expected one of {', '.join(TOKEN_TYPES)}",
        )
    yield InvoiceLine(day, str(model), token_class, None, usd_to_pico_rounded(usd), source)


def _usage(path: Path, at: str, day: date, result: dict[str, Any], source: str) -> Iterator[InvoiceLine]:
    model = result.get("model")
    if not model:
        raise InvoiceFormatError(path, f"{at}.model", "null: export the usage report with group_by[]=model")
    creation = result.get("cache_creation") or {}
    if not isinstance(creation, dict):
        raise InvoiceFormatError(path, f"{at}.cache_creation", "expected an object")
    writes = sum(
        parse_tokens(creation.get(key), path, f"{at}.cache_creation.{key}")
        for key in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")
    )
    # reports saved before the 5m/1h split carry one total
    writes += parse_tokens(
        result.get("cache_creation_input_tokens"), path, f"{at}.cache_creation_input_tokens"
    )
    name = str(model)
    yield InvoiceLine(
        day,
        name,
        "input",
        parse_tokens(result.get("uncached_input_tokens"), path, f"{at}.uncached_input_tokens"),
        None,
        source,
    )
    yield InvoiceLine(
        day,
        name,
        "cache_read",
        parse_tokens(result.get("cache_read_input_tokens"), path, f"{at}.cache_read_input_tokens"),
        None,
        source,
    )
    yield InvoiceLine(day, name, "cache_write", writes, None, source)
    yield InvoiceLine(
        day,
        name,
        "output",
        parse_tokens(result.get("output_tokens"), path, f"{at}.output_tokens"),
        None,
        source,
    )


_DAY_COLUMNS: Final = ("starting_at", "date", "usage_date_utc")


def _csv_lines(path: Path, text: str) -> Iterator[InvoiceLine]:
    header = text.lstrip("\ufeff").split("\n", 1)[0]
    if "token_type" in header:
        rows = read_csv(path, text, [_DAY_COLUMNS, ("model",), ("token_type",), ("amount", "cost_usd")])
        for row in rows:
            at = f"line {row.line}"
            day = parse_day(row.get(*_DAY_COLUMNS), path, row.where(row.column(*_DAY_COLUMNS)))
            if row.get("amount") is not None:
                usd = parse_usd(row.cells["amount"], path, row.where("amount")) / _CENTS
            else:
                usd = parse_usd(row.cells["cost_usd"], path, row.where("cost_usd"))
            result: dict[str, Any] = {key: (value or None) for key, value in row.cells.items()}
            try:
                yield from _cost(path, at, day, result, usd=usd, source=f"{path.name}:{row.line}")
            except InvoiceFormatError as exc:  # name the CSV column, not a JSON path
                raise InvoiceFormatError(
                    path, exc.where.replace(f"{at}.", f"{at}, column "), exc.problem
                ) from None
        return
    if "uncached_input_tokens" in header:
        rows = read_csv(
            path, text, [_DAY_COLUMNS, ("model",), ("uncached_input_tokens",), ("output_tokens",)]
        )
        for row in rows:
            day = parse_day(row.get(*_DAY_COLUMNS), path, row.where(row.column(*_DAY_COLUMNS)))
            if not row.cells["model"]:
                raise InvoiceFormatError(path, row.where("model"), "empty: export the usage grouped by model")
            counts = {
                key: parse_tokens(value, path, row.where(key))
                for key, value in row.cells.items()
                if key.endswith("_tokens")
            }
            writes = (
                counts.get("cache_creation_input_tokens", 0)
                + counts.get("cache_creation.ephemeral_5m_input_tokens", 0)
                + counts.get("cache_creation.ephemeral_1h_input_tokens", 0)
            )
            source = f"{path.name}:{row.line}"
            model = row.cells["model"]
            yield InvoiceLine(day, model, "input", counts.get("uncached_input_tokens", 0), None, source)
            yield InvoiceLine(
                day, model, "cache_read", counts.get("cache_read_input_tokens", 0), None, source
            )
            yield InvoiceLine(day, model, "cache_write", writes, None, source)
            yield InvoiceLine(day, model, "output", counts.get("output_tokens", 0), None, source)
        return
    raise InvoiceFormatError(
        path,
        "line 1",
        "not an Anthropic export: expected cost rows (model, token_type, amount) or usage rows "
        "(model, uncached_input_tokens, output_tokens), or the JSON of /v1/organizations/cost_report or "
        "/usage_report/messages",
    )
