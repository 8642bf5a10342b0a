"""Closing a period: the chargeback of a finished period, frozen as a numbered statement.

``close_statement(context, "2026-11")`` computes the chargeback of the whole period, exactly
as the report does, and compares it with the latest closed version (store.py):

* never closed: it writes ``v1``;
* the statement rows are identical: it writes nothing and answers the latest version with
  ``written=False``;
* they differ (the lake was repriced, late calls arrived, the rules changed): it writes the next
  version with a ``diff.csv`` of every receiver and rule whose amount changed.

A closed version is never rewritten or removed, so what finance booked stays readable next to
what the lake says now. Only a period that has ended can be closed. The computation holds the
lake lock shared, so a reprice or compaction cannot swap a day out from under the query.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from otelcost.errors import LakeError, StatementError
from otelcost.lake.audit import AuditEntry, append_entries, command_actor
from otelcost.lake.locking import lake_lock
from otelcost.money import pico_to_decimal
from otelcost.reports.base import ReportContext
from otelcost.reports.chargeback.report import Chargeback, compute_chargeback
from otelcost.reports.chargeback.store import (
    ClosedStatement,
    StatementInfo,
    closing_lock,
    latest_statement,
    parquet_bytes,
    period_dir,
    read_statement,
    statement_csv,
    statement_versions,
    table_csv,
    write_version,
)
from otelcost.reports.period import Period, parse_period
from otelcost.schema import MONEY_TYPE

__all__ = [
    "DIFF_SCHEMA",
    "close_statement",
    "diff_statements",
    "latest_statement",
    "read_statement",
    "statement_versions",
]

DIFF_SCHEMA = pa.schema(
    [
        pa.field("receiver", pa.string()),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("rule", pa.string()),
        pa.field("before", MONEY_TYPE, nullable=False),
        pa.field("after", MONEY_TYPE, nullable=False),
        pa.field("change", MONEY_TYPE, nullable=False),
    ]
)
"""``diff.csv``: one row per (receiver, rule) whose amount changed; a row only one side has
counts as 0 on the other."""

_LAKE_LOCK_TIMEOUT_S = 300.0


def diff_statements(before: pa.Table, after: pa.Table) -> pa.Table:
    """The rows of two statements whose ``cost_usd`` differ, keyed by (receiver, rule).

    Direct rows have rule NULL, unallocated ones receiver NULL, so the key is unique."""

    def amounts(table: pa.Table) -> dict[tuple[str | None, str | None], tuple[str, Decimal]]:
        return {(row["receiver"], row["rule"]): (row["kind"], row["cost_usd"]) for row in table.to_pylist()}

    old, new = amounts(before), amounts(after)
    zero = Decimal(0)
    keys = sorted(
        set(old) | set(new),
        key=lambda key: (key[0] is None, key[0] or "", key[1] is not None, key[1] or ""),
    )
    rows = []
    for key in keys:
        kind = (new.get(key) or old[key])[0]
        was = old[key][1] if key in old else zero
        now = new[key][1] if key in new else zero
        if was != now:
            rows.append(
                {
                    "receiver": key[0],
                    "kind": kind,
                    "rule": key[1],
                    "before": was,
                    "after": now,
                    "change": now - was,
                }
            )
    return pa.Table.from_pylist(rows, schema=DIFF_SCHEMA)


def _manifest(result: Chargeback, version: int, created_at: str, previous: int | None) -> dict[str, Any]:
    return {
        "format": 1,
        "report": "chargeback",
        "period": {
            "label": result.period.label,
            "start": result.period.start.isoformat(),
            "end": result.period.end.isoformat(),
        },
        "version": version,
        "previous_version": previous,
        "created_at": created_at,
        "charge_to": result.config.charge_to,
        "cost": result.config.cost,
        "rules": [rule.model_dump(mode="json") for rule in result.config.rules],
        "totals": result.totals.as_json(),
    }


def _resolve(period: str | Period) -> Period:
    if isinstance(period, Period):
        if period.unit == "span":
            raise StatementError("a statement closes a named period (2026-11, 2026-Q4 ...), not a span")
        return period
    try:
        return parse_period(period)
    except ValueError as exc:
        raise StatementError(str(exc)) from None


def close_statement(
    context: ReportContext, period: str | Period, *, actor: str | None = None
) -> StatementInfo:
    """Close ``period`` (``"2026-11"``): write its next statement version if the numbers changed
    since the latest one (or it was never closed); StatementError if it cannot.

    A version written is an entry of the lake's audit log (``statement.close`` by ``actor``,
    ``cli:<os user>`` when None), after the version is in place.

    The answer's ``written`` tells whether a version was written; ``diff_path`` is the
    ``diff.csv`` against the version before, from v2 on.
    """
    if context.statements_dir is None:
        raise StatementError("no statements directory is configured (data_dir/statements)")
    resolved = _resolve(period)
    now = context.now()
    if resolved.end > now:
        raise StatementError(
            f"{resolved.label} has not ended (it ends {resolved.end.isoformat()}); only a finished "
            "period can be closed"
        )
    statements_dir = Path(context.statements_dir)
    with closing_lock(period_dir(statements_dir, resolved.label)):
        try:
            with lake_lock(context.lake_dir, shared=True, timeout=_LAKE_LOCK_TIMEOUT_S):
                result = compute_chargeback(context, resolved)
        except LakeError as exc:
            raise StatementError(f"cannot compute the statement of {resolved.label}: {exc}") from exc
        text = statement_csv(result.statement)
        latest: ClosedStatement | None = latest_statement(statements_dir, resolved.label)
        if latest is not None and latest.csv == text:
            return latest.info
        version = 1 if latest is None else latest.info.version + 1
        previous = None if latest is None else latest.info.version
        files = {"statement.parquet": parquet_bytes(result.statement), "statement.csv": text}
        if latest is not None:
            files["diff.csv"] = table_csv(diff_statements(latest.table, result.statement))
        created_at = now.isoformat()
        path = write_version(
            statements_dir, resolved.label, version, files, _manifest(result, version, created_at, previous)
        )
        charged = pico_to_decimal(result.totals.charged)
        append_entries(
            Path(context.lake_dir),
            [
                AuditEntry(
                    actor or command_actor(),
                    "statement.close",
                    resolved.label,
                    before=None if latest is None else {"version": previous},
                    after={"version": version, "charged_usd": str(charged), "path": str(path)},
                )
            ],
        )
    return StatementInfo(
        period=resolved.label,
        version=version,
        path=path,
        created_at=now,
        charged_usd=charged,
        previous_version=previous,
        diff_path=path / "diff.csv" if latest is not None else None,
        written=True,
    )
