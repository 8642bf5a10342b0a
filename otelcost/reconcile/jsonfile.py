"""Reading a provider's JSON export: one API page, several pages, or pages one per line.

The Admin/organization APIs answer in pages (``{"data": [bucket, ...], "has_more", "next_page"}``);
an export saved from them is one page, a JSON array of pages (what a script that follows
``next_page`` writes), or one page per line (JSON Lines). Numbers are read as ``Decimal`` from
their text, so an amount such as ``0.8958740000000000`` stays exact.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from otelcost.reconcile.errors import InvoiceFormatError

__all__ = ["buckets", "is_json", "load_pages", "need"]


def is_json(text: str) -> bool:
    return text.lstrip("\ufeff \t\r\n")[:1] in ("{", "[")


def _decode(path: Path, text: str, line_offset: int = 0) -> Any:
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise InvoiceFormatError(
            path, f"line {exc.lineno + line_offset}, column {exc.colno}", f"not valid JSON: {exc.msg}"
        ) from None


def load_pages(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    """The pages of the file as (JSON path prefix, page object)."""
    body = text.lstrip("\ufeff")
    try:
        document = json.loads(body, parse_float=Decimal)
    except json.JSONDecodeError:
        lines = [(n, line) for n, line in enumerate(body.splitlines()) if line.strip()]
        one_per_line = all(line.strip().startswith("{") and line.strip().endswith("}") for _, line in lines)
        if len(lines) < 2 or not one_per_line:
            _decode(path, body)  # raises with the position
        return [
            (f"line {n + 1}: ", _page(path, f"line {n + 1}", _decode(path, line, n))) for n, line in lines
        ]
    if isinstance(document, list):
        return [(f"[{i}].", _page(path, f"[{i}]", page)) for i, page in enumerate(document)]
    return [("", _page(path, "", document))]


def _page(path: Path, where: str, page: object) -> dict[str, Any]:
    if not isinstance(page, dict) or not isinstance(page.get("data"), list):
        raise InvoiceFormatError(
            path, where, 'expected an API page, an object with a "data" array of buckets'
        )
    return page


def buckets(path: Path, text: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every bucket of every page as (its JSON path, the bucket object)."""
    for prefix, page in load_pages(path, text):
        for index, bucket in enumerate(page["data"]):
            where = f"{prefix}data[{index}]"
            if not isinstance(bucket, dict) or not isinstance(bucket.get("results"), list):
                raise InvoiceFormatError(path, where, 'expected a bucket with a "results" array')
            yield where, bucket


def need(path: Path, where: str, item: dict[str, Any], key: str) -> Any:
    """``item[key]``, or an error naming the path when the export lacks it."""
    if key not in item:
        raise InvoiceFormatError(path, f"{where}.{key}", "missing")
    return item[key]
