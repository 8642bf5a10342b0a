"""The comparison of the bill and the lake, cell by cell, in integer picodollars and tokens.

A cell is (UTC day, model key, token class). Per cell, with ``B`` the billed and ``L`` the
lake's tokens (``Bt``, ``Lt``) and dollars (``Bc``, ``Lc``):

* matched tokens ``m = min(Bt, Lt)``;
* the bill's dollars of the matched tokens ``Bm = round(Bc * m / Bt)`` (half to even, to the
  picodollar; ``Bc`` when ``m = Bt``), the lake's ``Lm = round(Lc * m / Lt)``;
* **explained** ``= min(Bm, Lm)``: billed dollars a span accounts for, at the lower price;
* **unexplained** ``= Bc - explained``, of it *volume* ``Bc - Bm`` (tokens billed that no span
  has) and *price* ``Bm - explained`` (the bill's price above the lake's on matched tokens);
* **over-attributed** ``= Lc - explained``, of it *volume* ``Lc - Lm`` (tokens in spans the
  bill does not have) and *price* ``Lm - explained`` (the lake's price above the bill's).

So ``Bc = explained + unexplained`` and ``Lc = explained + over_attributed`` in every cell and in
every sum, to the picodollar. When the bill has dollars but no tokens for a cell (a costs
export alone, or a cell the usage export given with it lacks)
``m`` cannot be known: explained is ``min(Bc, Lc)`` and the rest is volume with the cause
``dollars_only``. When it has tokens but no dollars (a usage export alone) only the token
measures are made: explained tokens ``m``, unexplained ``Bt - m``, over-attributed ``Lt - m``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from otelcost.reconcile.invoice import OTHER, InvoiceLine
from otelcost.reconcile.lake import LakeCell
from otelcost.reconcile.mapping import ModelResolver

__all__ = ["Cell", "compare"]


@dataclass(slots=True)
class Cell:
    """One (day, model, class) with both sides and the measures (picodollars, tokens)."""

    day: date
    model: str
    token_class: str
    billed_tokens: int | None = None
    billed_pico: int | None = None
    lake_tokens: int = 0
    lake_pico: int = 0
    lake_unpriced_calls: int = 0
    in_bill: bool = False
    in_lake: bool = False
    explained_pico: int | None = None
    unexplained_volume_pico: int | None = None
    unexplained_price_pico: int | None = None
    over_volume_pico: int | None = None
    over_price_pico: int | None = None
    explained_tokens: int | None = None
    cause: str | None = None
    sources: tuple[str, ...] = ()

    @property
    def unexplained_pico(self) -> int | None:
        if self.unexplained_volume_pico is None or self.unexplained_price_pico is None:
            return None
        return self.unexplained_volume_pico + self.unexplained_price_pico

    @property
    def over_pico(self) -> int | None:
        if self.over_volume_pico is None or self.over_price_pico is None:
            return None
        return self.over_volume_pico + self.over_price_pico

    @property
    def unexplained_tokens(self) -> int | None:
        if self.billed_tokens is None or self.explained_tokens is None:
            return None
        return self.billed_tokens - self.explained_tokens

    @property
    def over_tokens(self) -> int | None:
        if self.explained_tokens is None:  # a bill without tokens: known only where it has no line
            return None if self.in_bill else self.lake_tokens
        return self.lake_tokens - self.explained_tokens


def _share(amount: int, part: int, whole: int) -> int:
    if part == whole:
        return amount
    return int((Decimal(amount) * part / whole).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _measure(cell: Cell, bill_has_dollars: bool, bill_has_tokens: bool) -> None:
    billed_tokens = cell.billed_tokens
    if cell.token_class == OTHER:
        billed_tokens = None
    elif billed_tokens is None and not cell.in_bill and bill_has_tokens:
        billed_tokens = 0  # a cell only the lake has: the bill's tokens are known to be none
    # (a billed cell whose lines give dollars only stays None: compared in dollars only)
    cell.billed_tokens = billed_tokens
    if billed_tokens is not None:
        cell.explained_tokens = min(billed_tokens, cell.lake_tokens)
    if not bill_has_dollars:
        return
    bc = cell.billed_pico or 0
    cell.billed_pico = bc
    lc = cell.lake_pico
    if billed_tokens is None:
        explained = min(bc, lc)
        cell.explained_pico = explained
        cell.unexplained_volume_pico, cell.unexplained_price_pico = bc - explained, 0
        cell.over_volume_pico, cell.over_price_pico = lc - explained, 0
        return
    matched = min(billed_tokens, cell.lake_tokens)
    bill_matched = _share(bc, matched, billed_tokens) if billed_tokens else 0
    lake_matched = _share(lc, matched, cell.lake_tokens) if cell.lake_tokens else 0
    explained = min(bill_matched, lake_matched)
    cell.explained_pico = explained
    cell.unexplained_volume_pico = bc - bill_matched
    cell.unexplained_price_pico = bill_matched - explained
    cell.over_volume_pico = lc - lake_matched
    cell.over_price_pico = lake_matched - explained


def compare(
    lines: Sequence[InvoiceLine], lake: Iterable[LakeCell], resolver: ModelResolver
) -> tuple[list[Cell], bool, bool]:
    """The cells of both sides with their measures, and whether the bill has dollars / tokens."""
    cells: dict[tuple[date, str, str], Cell] = {}
    sources: dict[tuple[date, str, str], list[str]] = defaultdict(list)
    bill_has_dollars = any(line.pico is not None for line in lines)
    bill_has_tokens = any(line.tokens is not None for line in lines)
    for line in lines:
        if not line.tokens and not line.pico:
            continue  # a usage row's zero classes: nothing billed, nothing to compare
        key = (line.day, resolver.key(line).key, line.token_class)
        cell = cells.setdefault(key, Cell(*key))
        cell.in_bill = True
        if line.tokens is not None:
            cell.billed_tokens = (cell.billed_tokens or 0) + line.tokens
        if line.pico is not None:
            cell.billed_pico = (cell.billed_pico or 0) + line.pico
        sources[key].append(line.source)
    for lake_cell in lake:
        key = (lake_cell.day, lake_cell.model, lake_cell.token_class)
        cell = cells.setdefault(key, Cell(*key))
        cell.in_lake = True
        cell.lake_tokens += lake_cell.tokens
        cell.lake_pico += lake_cell.pico
        cell.lake_unpriced_calls = max(cell.lake_unpriced_calls, lake_cell.unpriced_calls)
    ordered = [cells[key] for key in sorted(cells)]
    for cell in ordered:
        cell.sources = tuple(sources.get((cell.day, cell.model, cell.token_class), ()))
        _measure(cell, bill_has_dollars, bill_has_tokens)
    return ordered, bill_has_dollars, bill_has_tokens
