"""Reports as one self-contained HTML page: no script, no external file, readable offline.

:func:`render_result` turns any :class:`~otelcost.reports.base.ReportResult` into a page of
tables (``otelcost report NAME --format html``). Money is printed exactly, as the text formats
do (at least two decimals, as many as the value needs). The monthly report composes its own page
with charts from the pieces here (``otelcost/reports/monthly.py``).
"""

from __future__ import annotations

import html
from decimal import Decimal
from typing import Final

import pyarrow as pa

from otelcost.arrowjson import decimals_needed, json_converter
from otelcost.reports.base import ReportResult

__all__ = ["STYLE", "money_text", "page", "render_result", "table_html"]

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
"""


def money_text(value: Decimal | None) -> str:
    """Exact money text: at least two decimals, as many as the value needs, never rounded."""
    if value is None:
        return ""
    return format(value, f".{max(2, decimals_needed(value))}f")


def _cell(value: object, arrow_type: pa.DataType) -> tuple[str, bool]:
    if value is None:
        return "", False
    if pa.types.is_decimal(arrow_type):
        return (money_text(value) if arrow_type.scale else str(value)), True  # type: ignore[arg-type]
    if pa.types.is_floating(arrow_type):
        return f"{value:.6g}", True
    if pa.types.is_integer(arrow_type):
        return f"{value:,}", True
    converted = json_converter(arrow_type)(value)
    return str(converted), False


def table_html(table: pa.Table, *, caption: str | None = None) -> str:
    """One ``<table>`` of every row of ``table``; numbers right-aligned."""
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
            text, is_number = _cell(value, field.type)
            css = ' class="num"' if is_number else ""
            cells.append(f"<td{css}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption_html = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{caption_html}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def page(title: str, subtitle: str, body: str) -> str:
    """A complete HTML document with the shared style."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
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
