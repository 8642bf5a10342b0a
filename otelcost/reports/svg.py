"""Charts as inline SVG for the report pages: no script, no font or file to fetch, readable offline.

Three shapes cover the monthly report: :func:`bar_chart` (horizontal bars, largest first: spend
by team), :func:`column_chart` (one column per day, in order: the daily trend) and
:func:`change_chart` (bars left or right of zero: top movers). Every bar is a ``<rect>`` with a
``<title>`` (``"payments: $1234.50"``, what a screen reader and a mouse hover show) and
``data-label``/``data-value`` attributes (the exact amount, for anyone reading the page by
program); every chart has a text label per bar and a ``<title>``/``<desc>`` of its own, and the
page puts the same figures in a table below it. Amounts are printed exactly
(:func:`otelcost.reports.html.money_text`); only the pixel geometry is floating point.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from decimal import Decimal
from typing import Final

from otelcost.reports.html import money_text

__all__ = ["bar_chart", "change_chart", "column_chart", "dollars"]

_WIDTH: Final = 820
_LABEL_WIDTH: Final = 190
_VALUE_WIDTH: Final = 150
_ROW: Final = 26
_BAR: Final = 18


def dollars(value: Decimal, *, signed: bool = False) -> str:
    """``$1234.50`` (``-$3.20``; ``+$3.20`` when ``signed``), exact."""
    sign = "-" if value < 0 else ("+" if signed and value > 0 else "")
    return f"{sign}${money_text(abs(value))}"


def _attr(text: str) -> str:
    return html.escape(text, quote=True)


def _px(value: float) -> str:
    return f"{value:.1f}"


def _scale(value: Decimal, largest: Decimal, span: float) -> float:
    if largest <= 0 or value <= 0:
        return 0.0
    return float(value / largest) * span


def _open(key: str, title: str, description: str, height: float, css: str) -> str:
    # The ids tie <title>/<desc> to the chart for assistive technology: ``key`` must be unique
    # within the page (and is the chart's id, so a reader can link to it).
    name = _attr(key)
    return (
        f'<svg id="{name}" class="chart {css}" role="img" aria-labelledby="{name}-title {name}-desc" '
        f'xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {_px(height)}" '
        f'width="{_WIDTH}" height="{_px(height)}">'
        f'<title id="{name}-title">{html.escape(title)}</title>'
        f'<desc id="{name}-desc">{html.escape(description)}</desc>'
    )


def _bar(
    box: tuple[float, float, float, float], *, label: str, value: Decimal, title: str, css: str = ""
) -> str:
    x, y, width, height = box
    classes = f"bar {css}" if css else "bar"
    return (
        f'<rect class="{classes}" x="{_px(x)}" y="{_px(y)}" width="{_px(width)}" height="{_px(height)}" '
        f'data-label="{_attr(label)}" data-value="{money_text(value)}">'
        f"<title>{html.escape(title)}</title></rect>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start") -> str:
    where = "" if anchor == "start" else f' text-anchor="{anchor}"'
    return f'<text x="{_px(x)}" y="{_px(y)}"{where}>{html.escape(text)}</text>'


def bar_chart(bars: Sequence[tuple[str, Decimal]], *, key: str, title: str, description: str = "") -> str:
    """Horizontal bars, largest first (ties by label), each labelled with its name and amount."""
    ordered = sorted(bars, key=lambda bar: (-bar[1], bar[0]))
    largest = max((value for _, value in ordered), default=Decimal(0))
    span = _WIDTH - _LABEL_WIDTH - _VALUE_WIDTH
    parts = [_open(key, title, description or title, _ROW * len(ordered) + 8, "bars")]
    for index, (label, value) in enumerate(ordered):
        y = 4 + index * _ROW
        width = _scale(value, largest, span)
        text = dollars(value)
        parts.append(_text(_LABEL_WIDTH - 8, y + _BAR - 4, label, "end"))
        parts.append(_bar((_LABEL_WIDTH, y, width, _BAR), label=label, value=value, title=f"{label}: {text}"))
        parts.append(_text(_LABEL_WIDTH + width + 6, y + _BAR - 4, text))
    parts.append("</svg>")
    return "".join(parts)


def column_chart(
    columns: Sequence[tuple[str, Decimal]],
    *,
    key: str,
    title: str,
    description: str = "",
    ticks: Sequence[str] | None = None,
    tick_every: int = 1,
) -> str:
    """One column per point, in the order given (days), with the largest amount on the axis.

    Under the columns go ``ticks`` (default: the labels; ``05`` for the day ``2026-11-05``
    reads better), every ``tick_every``-th and the last; the ``<title>`` of every column names
    its full label and amount.
    """
    ticks = ticks if ticks is not None else [label for label, _ in columns]
    height, top, bottom, left = 220.0, 22.0, 34.0, 120.0
    plot = height - top - bottom
    baseline = top + plot
    largest = max((value for _, value in columns), default=Decimal(0))
    step = (_WIDTH - left - 10) / max(len(columns), 1)
    parts = [
        _open(key, title, description or title, height, "columns"),
        f'<line class="axis" x1="{left}" y1="{_px(baseline)}" x2="{_WIDTH - 10}" y2="{_px(baseline)}"/>',
        _text(left - 6, top + 4, dollars(largest), "end"),
        _text(left - 6, baseline, "$0", "end"),
    ]
    for index, (label, value) in enumerate(columns):
        bar_height = _scale(value, largest, plot)
        x = left + index * step
        box = (x + step * 0.1, baseline - bar_height, step * 0.8, bar_height)
        parts.append(_bar(box, label=label, value=value, title=f"{label}: {dollars(value)}"))
        if index % tick_every == 0 or index == len(columns) - 1:
            parts.append(_text(x + step / 2, baseline + 16, ticks[index], "middle"))
    parts.append("</svg>")
    return "".join(parts)


def change_chart(
    changes: Sequence[tuple[str, Decimal]], *, key: str, title: str, description: str = ""
) -> str:
    """Bars right of zero for increases, left for decreases, largest move first."""
    ordered = sorted(changes, key=lambda item: (-abs(item[1]), item[0]))
    largest = max((abs(value) for _, value in ordered), default=Decimal(0))
    label_width, margin = 220, 120  # the margins hold the amounts printed beside the bars
    half = (_WIDTH - label_width - 2 * margin) / 2
    zero = label_width + margin + half
    height = _ROW * len(ordered) + 8
    parts = [
        _open(key, title, description or title, height, "changes"),
        f'<line class="axis" x1="{_px(zero)}" y1="0" x2="{_px(zero)}" y2="{_px(height)}"/>',
    ]
    for index, (label, value) in enumerate(ordered):
        y = 4 + index * _ROW
        width = _scale(abs(value), largest, half)
        text = dollars(value, signed=True)
        x = zero if value >= 0 else zero - width
        css = "up" if value > 0 else "down"
        parts.append(_text(label_width - 8, y + _BAR - 4, label, "end"))
        parts.append(_bar((x, y, width, _BAR), label=label, value=value, title=f"{label}: {text}", css=css))
        if value >= 0:
            parts.append(_text(zero + width + 6, y + _BAR - 4, text))
        else:
            parts.append(_text(zero - width - 6, y + _BAR - 4, text, "end"))
    parts.append("</svg>")
    return "".join(parts)
