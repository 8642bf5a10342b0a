"""Why the bill and the lake differ: a cause for each gap, from the evidence, and the findings.

Each cell's gap is split (``compare.py``) into volume and price; each part gets the cause the
evidence supports, checked in this order:

=====================  ==============  =====================================================
cause                  kind            evidence
=====================  ==============  =====================================================
non_token_charge       unexplained     the bill's line is not tokens (web search, storage)
day_missing            unexplained     the lake has no call of the provider on a billed day
model_not_in_lake      unexplained     the lake never saw the model in the period
day_not_billed         over_attributed the bill has nothing on a day the lake has calls
model_not_on_bill      over_attributed the bill never names the model in the period
dollars_only           either          both have the cell, the bill gives dollars without tokens
fewer_spans            unexplained     both have the cell, the bill has more tokens
more_spans             over_attributed both have the cell, the lake has more tokens
unpriced               price           same tokens, the lake has no price (unknown model)
price_higher_on_bill   price           same tokens, the bill's unit price is higher
price_lower_on_bill    price           same tokens, the bill's unit price is lower
=====================  ==============  =====================================================

Findings group the cells of one cause: per day for the day causes, per model for the model
causes and ``unpriced``, per (model, class) for the other price causes, with the first and
last day, the number of days, the dollars and the tokens, and a sentence saying what most
likely happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Final

from otelcost.reconcile.compare import Cell
from otelcost.reconcile.invoice import OTHER

__all__ = ["CAUSES", "Finding", "find"]

CAUSES: Final = {
    "non_token_charge": "a charge that is not tokens (tools, storage): the lake records tokens only",
    "day_missing": "no span at all that day: lost telemetry, or the pipeline was down",
    "model_not_in_lake": "billed model never seen in the lake: an uninstrumented service, or a "
    "model name that maps differently (--model-map)",
    "fewer_spans": "the bill has more tokens than the spans: an uninstrumented service or lost spans",
    "dollars_only": "the bill gives dollars only: add the usage export to tell volume from price",
    "day_not_billed": "calls on a day the bill has nothing: the export does not cover it, or the "
    "traffic was billed elsewhere",
    "model_not_on_bill": "spans of a model the bill never names: a wrong model mapping, or traffic "
    "billed elsewhere (a proxy, test traffic, another account)",
    "more_spans": "the spans have more tokens than the bill: test traffic through a proxy, "
    "duplicate spans or another account's calls",
    "unpriced": "the catalog has no price for this model: the lake counts its calls at 0 "
    "(otelcost pricing unknown)",
    "price_higher_on_bill": "same tokens, the bill's price is higher: a stale catalog, another tier "
    "or a regional/long-context rate",
    "price_lower_on_bill": "same tokens, the bill's price is lower: a missing contract discount "
    "(pricing.discounts) or a stale catalog",
}
"""Cause -> the likely explanation printed with each finding."""

_BY_DAY: Final = frozenset({"day_missing", "day_not_billed"})
_PRICE: Final = frozenset({"unpriced", "price_higher_on_bill", "price_lower_on_bill"})


@dataclass(slots=True)
class Finding:
    """Cells of one cause added up."""

    kind: str
    cause: str
    model: str | None
    token_class: str | None
    days: set[date] = field(default_factory=set)
    pico: int = 0
    tokens: int = 0
    billed_pico: int = 0
    billed_tokens: int = 0
    lake_pico: int = 0
    lake_tokens: int = 0
    hint: str | None = None

    def unit_prices(self) -> tuple[Decimal | None, Decimal | None]:
        """USD per 1M tokens on the bill and in the lake (price findings of one token class)."""
        if self.kind != "price" or self.token_class is None:
            return None, None

        def per_million(pico: int, tokens: int) -> Decimal | None:
            if tokens == 0:
                return None
            return (Decimal(pico) * 1_000_000 / tokens / 10**12).quantize(Decimal("1e-12"))

        return per_million(self.billed_pico, self.billed_tokens), per_million(
            self.lake_pico, self.lake_tokens
        )

    def detail(self) -> str:
        text = CAUSES[self.cause] + (f"; {self.hint}" if self.hint else "")
        if self.cause in _PRICE:
            billed, lake = self.unit_prices()
            if billed is not None and lake is not None:
                text += f"; billed {billed.normalize():f} vs lake {lake.normalize():f} USD per 1M tokens"
                if lake:
                    ratio = (billed - lake) / lake * 100
                    text += f" ({ratio.quantize(Decimal('0.01')):+f}%)"
        return text


def _volume_cause(cell: Cell, unexplained: bool, context: _Context) -> str:
    if cell.token_class == OTHER:
        return "non_token_charge"
    if unexplained:
        if cell.day not in context.lake_days:
            return "day_missing"
        if cell.model not in context.lake_models:
            return "model_not_in_lake"
    else:
        if cell.day not in context.bill_days:
            return "day_not_billed"
        if cell.model not in context.bill_models:
            return "model_not_on_bill"
    if cell.billed_tokens is None:
        return "dollars_only"  # both sides have the cell: volume or price, the bill cannot tell
    return "fewer_spans" if unexplained else "more_spans"


def _price_cause(cell: Cell, bill_higher: bool) -> str:
    if bill_higher and cell.lake_pico == 0 and cell.lake_unpriced_calls:
        return "unpriced"
    return "price_higher_on_bill" if bill_higher else "price_lower_on_bill"


@dataclass(frozen=True, slots=True)
class _Context:
    lake_days: frozenset[date]
    bill_days: frozenset[date]
    lake_models: frozenset[str]
    bill_models: frozenset[str]


def _context(cells: list[Cell]) -> _Context:
    return _Context(
        frozenset(c.day for c in cells if c.in_lake and c.lake_tokens),
        frozenset(c.day for c in cells if c.in_bill),
        frozenset(c.model for c in cells if c.in_lake and c.lake_tokens),
        frozenset(c.model for c in cells if c.in_bill),
    )


def find(cells: list[Cell], dollars: bool) -> list[Finding]:
    """The findings of ``cells`` (sets ``cell.cause`` to the cause of its largest gap)."""
    context = _context(cells)
    groups: dict[tuple[str, str, str | None, str | None], Finding] = {}

    def add(cell: Cell, kind: str, cause: str, pico: int, tokens: int) -> None:
        by_day = cause in _BY_DAY
        model = None if by_day else cell.model
        token_class = cell.token_class if cause in _PRICE and cause != "unpriced" else None
        key = (kind, cause, model, token_class if not by_day else cell.day.isoformat())
        finding = groups.get(key)
        if finding is None:
            finding = groups[key] = Finding(kind, cause, model, token_class)
        finding.days.add(cell.day)
        finding.pico += pico
        finding.tokens += tokens
        finding.billed_pico += cell.billed_pico or 0
        finding.billed_tokens += cell.billed_tokens or 0
        finding.lake_pico += cell.lake_pico
        finding.lake_tokens += cell.lake_tokens

    for cell in cells:
        gaps: list[tuple[int, str]] = []
        if dollars:
            volume_u, price_u = cell.unexplained_volume_pico or 0, cell.unexplained_price_pico or 0
            volume_o, price_o = cell.over_volume_pico or 0, cell.over_price_pico or 0
            tokens_u, tokens_o = cell.unexplained_tokens or 0, cell.over_tokens or 0
            if volume_u:
                cause = _volume_cause(cell, True, context)
                add(cell, "unexplained", cause, volume_u, tokens_u)
                gaps.append((volume_u, cause))
            if volume_o:
                cause = _volume_cause(cell, False, context)
                add(cell, "over_attributed", cause, volume_o, tokens_o)
                gaps.append((volume_o, cause))
            matched = cell.explained_tokens or 0
            if price_u:
                cause = _price_cause(cell, True)
                add(cell, "price", cause, price_u, matched)
                gaps.append((price_u, cause))
            if price_o:
                cause = _price_cause(cell, False)
                add(cell, "price", cause, price_o, matched)
                gaps.append((price_o, cause))
        else:
            if cell.unexplained_tokens:
                cause = _volume_cause(cell, True, context)
                add(cell, "unexplained", cause, 0, cell.unexplained_tokens)
                gaps.append((cell.unexplained_tokens, cause))
            if cell.over_tokens:
                cause = _volume_cause(cell, False, context)
                add(cell, "over_attributed", cause, 0, cell.over_tokens)
                gaps.append((cell.over_tokens, cause))
        if gaps:
            cell.cause = max(gaps)[1]
    found = list(groups.values())
    _hint_mappings(found)
    found.sort(key=lambda f: (-f.pico, -f.tokens, f.kind, f.cause, f.model or "", min(f.days)))
    return found


def _hint_mappings(found: list[Finding]) -> None:
    """A model only the bill names beside a model only the lake has: perhaps one model, two names."""
    billed_only = sorted({f.model for f in found if f.cause == "model_not_in_lake" and f.model})
    lake_only = sorted({f.model for f in found if f.cause == "model_not_on_bill" and f.model})
    if not billed_only or not lake_only:
        return
    for finding in found:
        if finding.cause == "model_not_in_lake":
            finding.hint = f"the lake has models the bill never names: {', '.join(lake_only)}"
        elif finding.cause == "model_not_on_bill":
            finding.hint = f"the bill has models the lake never saw: {', '.join(billed_only)}"
