"""Reports as one self-contained HTML page: no script, no external file, readable offline.

:func:`render_result` turns any :class:`~otelcost.reports.base.ReportResult` into a page of
tables (``otelcost report NAME --format html``). Money is printed exactly, as the text formats
do (at least two decimals, as many as the value needs). The monthly report composes its own page
with charts from the pieces here (``otelcost/reports/monthly.py``, ``otelcost/reports/svg.py``).

Every page carries a Content-Security-Policy that allows nothing but its own inline style: a
page that tried to load a script, a font or an image from anywhere would be refused by the
browser (and say so in its console), so "works offline" is enforced, not hoped for.
"""

from __future__ import annotations

import html
from collections.abc import Collection
from decimal import Decimal
from typing import Final

import pyarrow as pa

from otelcost.arrowjson import decimals_needed, json_converter
from otelcost.reports.base import ReportResult

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "STYLE",
    "money_text",
    "page",
    "percent_text",
    "render_result",
    "table_html",
]

CONTENT_SECURITY_POLICY: Final = "default-src 'none'; style-src 'unsafe-inline'"
"""Nothing may load; only the page's own <style> applies (the pages have no script)."""

STYLE: Final = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d232a;
       max-width: 1100px; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
.meta { color: #5b6570; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-variant-numeric: tabular-nums; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid #e3e7eb; text-align: left; }
td.num, th.num { text-align: right; }
th { background: #f4f6f8; font-weight: 600; }
.note { color: #5b6570; font-size: .9rem; }
svg text { font: 12px system-ui, sans-serif; fill: #1d232a; }
svg.chart { display: block; max-width: 100%; height: auto; margin: .5rem 0; }
svg .bar { fill: #3a6ea5; } svg .bar.up { fill: #c0392b; } svg .bar.down { fill: #2e8b57; }
svg .axis { stroke: #8a949e; stroke-width: 1; }
table.wrap-last td:not(:last-child) { white-space: nowrap; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; margin: 1rem 0; padding: 0; }
.figures div { border: 1px solid #e3e7eb; border-radius: 6px; padding: .6rem .9rem; min-width: 11rem; }
.figures dt { color: #5b6570; font-size: .85rem; } .figures dd { margin: 0; font-size: 1.25rem;
  font-weight: 600; font-variant-numeric: tabular-nums; }
"""


def money_text(value: Decimal | None) -> str:
    """Exact money text: at least two decimals, as many as the value needs, never rounded."""
    if value is None:
        return ""
    return format(value, f".{max(2, decimals_needed(value))}f")


def percent_text(share: float | None) -> str:
    """A share (0.253) as ``25.3%``; empty when unknown."""
    return "" if share is None else f"{share * 100:.1f}%"


def _cell(value: object, arrow_type: pa.DataType, *, percent: bool = False) -> tuple[str, bool]:
    if value is None:
        return "", False
    if percent and isinstance(value, float | int | Decimal):
        return percent_text(float(value)), True
    if pa.types.is_decimal(arrow_type):
        return (money_text(value) if arrow_type.scale else str(value)), True  # type: ignore[arg-type]
    if pa.types.is_floating(arrow_type):
        return f"{value:.6g}", True
    if pa.types.is_integer(arrow_type):
        return f"{value:,}", True
    converted = json_converter(arrow_type)(value)
    return str(converted), False


def table_html(
    table: pa.Table, *, caption: str | None = None, percent: Collection[str] = (), css: str | None = None
) -> str:
    """One ``<table>`` of every row of ``table``; numbers right-aligned, ``percent`` columns
    (shares such as 0.25) as ``25.0%``."""
    numeric = [
        pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_decimal(f.type)
        for f in table.schema
    ]
    head = "".join(
        f'<th class="num">{html.escape(n)}</th>' if num else f"<th>{html.escape(n)}</th>"
        for n, num in zip(table.column_names, numeric, strict=True)
    )
    body = []
    columns = [column.to_pylist() for column in table.columns]
    for row in zip(*columns, strict=True):
        cells = []
        for value, field in zip(row, table.schema, strict=True):
            text, is_number = _cell(value, field.type, percent=field.name in percent)
            css = ' class="num"' if is_number else ""
            cells.append(f"<td{css}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption_html = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    css_html = f' class="{html.escape(css)}"' if css else ""
    return (
        f"<table{css_html}>{caption_html}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def page(title: str, subtitle: str, body: str) -> str:
    """A complete HTML document with the shared style."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f'<h1>{html.escape(title)}</h1><p class="meta">{html.escape(subtitle)}</p>{body}</body></html>\n'
    )


def render_result(result: ReportResult) -> str:
    """A page with one table per section of ``result``, and its notes."""
    parts = []
    for name, table in result.sections.items():
        parts.append(f"<h2>{html.escape(name.replace('_', ' '))}</h2>")
        parts.append(table_html(table) if table.num_rows else '<p class="note">No rows.</p>')
    parts.extend(f'<p class="note">{html.escape(note)}</p>' for note in result.notes)
    return page(f"otelcost {result.name}", f"Period {result.period.label}", "".join(parts))
