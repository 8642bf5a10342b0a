"""OpenAI's organization usage and cost exports, as invoice lines.

Accepted files (docs/reconciliation.md, "OpenAI"):

* **Costs API** (``GET /v1/organization/costs?group_by=line_item``, daily buckets): results
  ``{"object": "organization.costs.result", "amount": {"value", "currency"}, "line_item",
  "project_id"}``. The line item names the model and the class, ``"gpt-4o-2024-08-06, input"``,
  ``"..., cached input"``, ``"..., output"``, ``"..., cache writes"``, optionally prefixed by a
  tier (``"priority | ..."``) and suffixed ``", long context"``; a line item without a comma
  (``"web search tool calls"``, ``"Vector storage"``) is a non-token charge. A result without a
  line item (costs not grouped by line item) cannot be compared per model: an error.
* **Completions usage API** (``GET /v1/organization/usage/completions?group_by=model``):
  ``input_tokens`` (cached included), ``input_cached_tokens``, ``output_tokens``, ``model``.
  Tokens only, no dollars.
* **The usage dashboard's CSV exports** (Usage page, Export): the cost CSV (``start_time,
  end_time, start_time_iso, end_time_iso, amount_value, amount_currency, line_item,
  project_id, ...``) and the completions usage CSV (``start_time, ..., model, input_tokens,
  output_tokens, input_cached_tokens, ...``), comma or tab separated, counts as ``59200.0``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
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

__all__ = ["parse_line_item", "read_openai"]

_LINE_ITEM: Final = re.compile(
    r"^(?:(?P<tier>[a-z]+) \| )?(?P<model>[^,]+?), (?P<kind>input|cached input|output|cache writes)"
    r"(?:, long context)?$"
)
_KINDS: Final = {
    "input": "input",
    "cached input": "cache_read",
    "output": "output",
    "cache writes": "cache_write",
}


def parse_line_item(line_item: str) -> tuple[str, str]:
    """(model, token class) of a Costs API line item; class ``other`` for non-token charges."""
    match = _LINE_ITEM.match(line_item.strip())
    if match is None:
        return line_item.strip(), OTHER
    # "gpt-audio-mini audio, input": the modality word is not part of the model's name
    model = match["model"].split()[0]
    return model, _KINDS[match["kind"]]


def read_openai(path: Path, text: str) -> list[InvoiceLine]:
    """The lines of an OpenAI costs or usage export (JSON or the dashboard CSV)."""
    if is_json(text):
        return list(_json_lines(path, text))
    return list(_csv_lines(path, text))


def _bucket_day(path: Path, where: str, bucket: dict[str, Any]) -> date:
    start = parse_day(need(path, where, bucket, "start_time"), path, f"{where}.start_time")
    end_value = bucket.get("end_time")
    if end_value is not None:
        if not str(end_value).isdigit():
            raise InvoiceFormatError(path, f"{where}.end_time", f"expected Unix seconds, got {end_value!r}")
        end = parse_day(int(str(end_value)) - 1, path, f"{where}.end_time")
        if end != start:
            raise InvoiceFormatError(path, where, "a bucket spans more than one UTC day; export 1d buckets")
    return start


def _json_lines(path: Path, text: str) -> Iterator[InvoiceLine]:
    for where, bucket in buckets(path, text):
        day = _bucket_day(path, where, bucket)
        for index, result in enumerate(bucket["results"]):
            at = f"{where}.results[{index}]"
            if not isinstance(result, dict):
                raise InvoiceFormatError(path, at, "expected an object")
            kind = result.get("object")
            if kind == "organization.costs.result" or "amount" in result:
                yield from _cost_result(path, at, day, result)
            elif kind == "organization.usage.completions.result" or "input_tokens" in result:
                yield from _usage_result(path, at, day, result)
            else:
                raise InvoiceFormatError(
                    path, f"{at}.object", f"expected a costs or completions usage result, got {kind!r}"
                )


def _cost_result(path: Path, at: str, day: date, result: dict[str, Any]) -> Iterator[InvoiceLine]:
    amount = need(path, at, result, "amount")
    if not isinstance(amount, dict):
        raise InvoiceFormatError(path, f"{at}.amount", "expected {value, currency}")
    currency = str(amount.get("currency", "usd")).lower()
    if currency != "usd":
        raise InvoiceFormatError(path, f"{at}.amount.currency", f"only USD is reconciled, got {currency!r}")
    value = parse_usd(need(path, f"{at}.amount", amount, "value"), path, f"{at}.amount.value")
    line_item = result.get("line_item")
    if line_item is None:
        if value == 0:
            return
        raise InvoiceFormatError(
            path, f"{at}.line_item", "null: export the costs with group_by=line_item to compare per model"
        )
    model, token_class = parse_line_item(str(line_item))
    quantity = result.get("quantity")
    tokens = parse_tokens(quantity, path, f"{at}.quantity") if quantity is not None else None
    yield InvoiceLine(
        day,
        model,
        token_class,
        tokens if token_class != OTHER else None,
        usd_to_pico_rounded(value),
        f"{path.name}:{at}",
    )


def _usage_lines(
    day: date, model: str, *, input_tokens: int, cached: int, output: int, source: str
) -> Iterator[InvoiceLine]:
    yield InvoiceLine(day, model, "input", max(input_tokens - cached, 0), None, source)
    yield InvoiceLine(day, model, "cache_read", cached, None, source)
    yield InvoiceLine(day, model, "output", output, None, source)


def _usage_result(path: Path, at: str, day: date, result: dict[str, Any]) -> Iterator[InvoiceLine]:
    model = result.get("model")
    if not model:
        raise InvoiceFormatError(path, f"{at}.model", "null: export the usage with group_by=model")
    tokens = {
        key: parse_tokens(result.get(key), path, f"{at}.{key}")
        for key in ("input_tokens", "input_cached_tokens", "output_tokens")
    }
    need(path, at, result, "input_tokens")
    need(path, at, result, "output_tokens")
    yield from _usage_lines(
        day,
        str(model),
        input_tokens=tokens["input_tokens"],
        cached=tokens["input_cached_tokens"],
        output=tokens["output_tokens"],
        source=f"{path.name}:{at}",
    )


def _csv_lines(path: Path, text: str) -> Iterator[InvoiceLine]:
    header = text.lstrip("\ufeff").split("\n", 1)[0]
    if "amount_value" in header:
        rows = read_csv(path, text, [("start_time", "start_time_iso"), ("amount_value",), ("line_item",)])
        for row in rows:
            if not row.cells.get("amount_value"):
                continue  # a day without spend: the dashboard writes an empty row
            day = parse_day(
                row.get("start_time", "start_time_iso"), path, row.where(row.column("start_time"))
            )
            currency = (row.get("amount_currency") or "usd").lower()
            if currency != "usd":
                raise InvoiceFormatError(
                    path, row.where("amount_currency"), f"only USD is reconciled, got {currency!r}"
                )
            value = parse_usd(row.cells["amount_value"], path, row.where("amount_value"))
            line_item = row.cells["line_item"]
            if not line_item:
                if value == 0:
                    continue
                raise InvoiceFormatError(
                    path,
                    row.where("line_item"),
                    "empty: export the costs grouped by line item to compare per model",
                )
            model, token_class = parse_line_item(line_item)
            yield InvoiceLine(
                day, model, token_class, None, usd_to_pico_rounded(value), f"{path.name}:{row.line}"
            )
        return
    if "input_tokens" in header:
        rows = read_csv(
            path, text, [("start_time", "start_time_iso"), ("model",), ("input_tokens",), ("output_tokens",)]
        )
        for row in rows:
            if not row.cells.get("model"):
                if any(row.cells.get(k) for k in ("input_tokens", "output_tokens")):
                    raise InvoiceFormatError(
                        path, row.where("model"), "empty: export the usage grouped by model"
                    )
                continue
            day = parse_day(
                row.get("start_time", "start_time_iso"), path, row.where(row.column("start_time"))
            )
            counts = {
                key: parse_tokens(row.cells.get(key), path, row.where(key))
                for key in ("input_tokens", "input_cached_tokens", "output_tokens")
            }
            yield from _usage_lines(
                day,
                row.cells["model"],
                input_tokens=counts["input_tokens"],
                cached=counts["input_cached_tokens"],
                output=counts["output_tokens"],
                source=f"{path.name}:{row.line}",
            )
        return
    raise InvoiceFormatError(
        path,
        "line 1",
        "not an OpenAI export: expected a costs CSV (amount_value, line_item) or a usage CSV "
        "(model, input_tokens, output_tokens), or the JSON of /v1/organization/costs or /usage/completions",
    )
