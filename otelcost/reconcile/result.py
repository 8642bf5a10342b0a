"""The reconciliation as named Arrow tables: summary, findings, cells, models, skipped.

Money columns are DECIMAL(38, 12) (exact; JSON writes them as strings, ``otelcost.arrowjson``),
token columns int64, the share a DOUBLE rounded to six places (as the reports do). The
``passed`` flag of the summary is decided exactly: ``explained >= min_explained x billed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa

from otelcost.money import pico_to_decimal
from otelcost.reconcile.compare import Cell
from otelcost.reconcile.findings import Finding
from otelcost.reconcile.mapping import ModelKey
from otelcost.schema import MONEY_TYPE

__all__ = ["ReconcileResult", "build_result"]

_TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    """The sections (``summary`` first), whether the check passed, and notes for the reader."""

    sections: dict[str, pa.Table]
    passed: bool
    share: Decimal | None
    notes: tuple[str, ...] = ()

    @property
    def summary(self) -> dict[str, Any]:
        return dict(self.sections["summary"].to_pylist()[0])


def _money(values: list[int | None]) -> pa.Array:
    return pa.array([None if v is None else pico_to_decimal(v) for v in values], MONEY_TYPE)


def _sum(values: list[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _summary(
    provider: str,
    start: datetime,
    end: datetime,
    cells: list[Cell],
    *,
    dollars: bool,
    tokens: bool,
    min_explained: Decimal,
) -> tuple[pa.Table, bool, Decimal | None]:
    billed = _sum([c.billed_pico for c in cells]) if dollars else None
    lake = sum(c.lake_pico for c in cells)
    explained = _sum([c.explained_pico for c in cells]) if dollars else None
    billed_tokens = _sum([c.billed_tokens for c in cells]) if tokens else None
    lake_tokens = sum(c.lake_tokens for c in cells)
    explained_tokens = _sum([c.explained_tokens for c in cells]) if tokens else None
    whole, part = (billed, explained) if dollars else (billed_tokens, explained_tokens)
    share = None if not whole or part is None else Decimal(part) / Decimal(whole)
    if whole:
        passed = part is not None and part >= min_explained * whole
    else:  # nothing billed: fine when the lake has nothing either
        passed = (lake if dollars else lake_tokens) == 0
    row = {
        "provider": pa.array([provider]),
        "start": pa.array([start], _TS),
        "end": pa.array([end], _TS),
        "basis": pa.array(["usd" if dollars else "tokens"]),
        "billed_usd": _money([billed]),
        "lake_usd": _money([lake if dollars else None]),
        "explained_usd": _money([explained]),
        "unexplained_usd": _money([_sum([c.unexplained_pico for c in cells]) if dollars else None]),
        "unexplained_price_usd": _money(
            [_sum([c.unexplained_price_pico for c in cells]) if dollars else None]
        ),
        "over_attributed_usd": _money([_sum([c.over_pico for c in cells]) if dollars else None]),
        "over_attributed_price_usd": _money([_sum([c.over_price_pico for c in cells]) if dollars else None]),
        "billed_tokens": pa.array([billed_tokens], pa.int64()),
        "lake_tokens": pa.array([lake_tokens if tokens else None], pa.int64()),
        "explained_tokens": pa.array([explained_tokens], pa.int64()),
        "explained_share": pa.array([None if share is None else round(float(share), 6)], pa.float64()),
        "min_explained": pa.array([float(min_explained)], pa.float64()),
        "passed": pa.array([passed]),
    }
    return pa.table(row), passed, share


def _findings(found: list[Finding]) -> pa.Table:
    prices = [f.unit_prices() for f in found]
    return pa.table(
        {
            "kind": pa.array([f.kind for f in found], pa.string()),
            "cause": pa.array([f.cause for f in found], pa.string()),
            "model": pa.array([f.model for f in found], pa.string()),
            "token_class": pa.array([f.token_class for f in found], pa.string()),
            "first_day": pa.array([min(f.days) for f in found], pa.date32()),
            "last_day": pa.array([max(f.days) for f in found], pa.date32()),
            "days": pa.array([len(f.days) for f in found], pa.int64()),
            "usd": _money([f.pico for f in found]),
            "tokens": pa.array([f.tokens for f in found], pa.int64()),
            "billed_usd_per_mtok": pa.array([p[0] for p in prices], MONEY_TYPE),
            "lake_usd_per_mtok": pa.array([p[1] for p in prices], MONEY_TYPE),
            "likely_cause": pa.array([f.detail() for f in found], pa.string()),
        }
    )


def _cells(cells: list[Cell]) -> pa.Table:
    return pa.table(
        {
            "day": pa.array([c.day for c in cells], pa.date32()),
            "model": pa.array([c.model for c in cells], pa.string()),
            "token_class": pa.array([c.token_class for c in cells], pa.string()),
            "billed_tokens": pa.array([c.billed_tokens for c in cells], pa.int64()),
            "lake_tokens": pa.array([c.lake_tokens for c in cells], pa.int64()),
            "billed_usd": _money([c.billed_pico for c in cells]),
            "lake_usd": _money([c.lake_pico for c in cells]),
            "explained_usd": _money([c.explained_pico for c in cells]),
            "unexplained_usd": _money([c.unexplained_pico for c in cells]),
            "over_attributed_usd": _money([c.over_pico for c in cells]),
            "price_gap_usd": _money(
                [
                    None
                    if c.unexplained_price_pico is None or c.over_price_pico is None
                    else c.unexplained_price_pico - c.over_price_pico
                    for c in cells
                ]
            ),
            "cause": pa.array([c.cause for c in cells], pa.string()),
            "sources": pa.array(
                [", ".join(c.sources[:3]) + (" ..." if len(c.sources) > 3 else "") or None for c in cells],
                pa.string(),
            ),
        }
    )


def _models(mapped: dict[str, ModelKey]) -> pa.Table:
    names = sorted(mapped)
    return pa.table(
        {
            "invoice_model": pa.array(names, pa.string()),
            "model": pa.array([mapped[n].key for n in names], pa.string()),
            "resolved_by": pa.array([mapped[n].how for n in names], pa.string()),
            "catalog_entry": pa.array([mapped[n].entry for n in names], pa.string()),
        }
    )


def _skipped(skipped: dict[str, tuple[int, Decimal]]) -> pa.Table:
    reasons = sorted(skipped)
    return pa.table(
        {
            "left_out": pa.array(reasons, pa.string()),
            "rows": pa.array([skipped[r][0] for r in reasons], pa.int64()),
            "usd": pa.array([skipped[r][1].quantize(Decimal("1e-12")) for r in reasons], MONEY_TYPE),
        }
    )


def build_result(
    provider: str,
    start: datetime,
    end: datetime,
    cells: list[Cell],
    found: list[Finding],
    *,
    dollars: bool,
    tokens: bool,
    min_explained: Decimal,
    mapped: dict[str, ModelKey],
    skipped: dict[str, tuple[int, Decimal]],
    notes: list[str],
) -> ReconcileResult:
    summary, passed, share = _summary(
        provider, start, end, cells, dollars=dollars, tokens=tokens, min_explained=min_explained
    )
    sections = {
        "summary": summary,
        "findings": _findings(found),
        "cells": _cells(cells),
        "models": _models(mapped),
        "left_out": _skipped(skipped),
    }
    return ReconcileResult(sections, passed, share, tuple(notes))
