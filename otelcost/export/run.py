"""``export_focus``: one period of the lake as a FOCUS dataset, with corrections, on disk.

The steps, in order:

1. resolve the period like the reports do (``--period 2026-11`` or ``--since``/``--until``);
2. compute the live rows (focus.py) under a shared lake lock;
3. under the ledger's closing lock, compare them with the latest exported version
   (ledger.py): none yet, the live rows are version 1; unchanged, the latest version is the
   answer; changed, version N+1 is version N's rows plus the correction rows
   (corrections.py);
4. with ``allocation``, pooled rows are chargeback's allocated charges (allocation.py);
5. write ``focus.parquet``, ``focus.csv`` and ``manifest.json`` into ``--out`` (writer.py).

Nothing in the files depends on the clock, so an unchanged lake exports the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from otelcost.errors import ReportError
from otelcost.export.allocation import plan_allocation
from otelcost.export.corrections import correction_rows
from otelcost.export.focus import live_rows
from otelcost.export.focus_columns import DEFAULT_VERSION, FOCUS_VERSIONS, arrow_schema
from otelcost.export.ledger import latest_version, ledger_dir, write_version
from otelcost.export.writer import csv_bytes, parquet_bytes, sort_rows
from otelcost.fsync import fsync_path
from otelcost.reports.base import ReportContext
from otelcost.reports.chargeback.store import closing_lock
from otelcost.reports.period import Period, resolve_period

__all__ = ["FILES", "ExportResult", "FocusExportRequest", "export_focus", "request_from"]

FILES: Final = ("focus.parquet", "focus.csv", "manifest.json")


class FocusExportRequest(BaseModel):
    """What to export: the period (as the reports take it), granularity and FOCUS version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    period: str | None = None
    since: str | None = None
    until: str | None = None
    granularity: Literal["hour", "day"] = "day"
    focus_version: Literal["1.0", "1.2", "1.3"] = DEFAULT_VERSION

    @field_validator("focus_version", mode="before")
    @classmethod
    def _known_version(cls, value: object) -> object:
        if value not in FOCUS_VERSIONS:
            raise ValueError(f"expected a FOCUS version of {', '.join(FOCUS_VERSIONS)}, got {value!r}")
        return value

    def resolve(self) -> Period:
        if self.since is None and self.until is None and self.period is None:
            raise ReportError("give --period (such as 2026-11) or --since/--until")
        try:
            return resolve_period(self.period, self.since, self.until)
        except ValueError as exc:
            raise ReportError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What an export wrote: the files, the ledger version and the totals of its rows."""

    period: Period
    out_dir: Path
    version: int
    written_version: bool
    rows: int
    correction_rows: int
    list_cost: Decimal
    effective_cost: Decimal
    ledger_path: Path


def _label(period: Period) -> str:
    if period.unit != "span":
        return period.label
    return f"{period.start:%Y%m%dT%H%M%SZ}-{period.end:%Y%m%dT%H%M%SZ}"


def _total(table: pa.Table, column: str) -> Decimal:
    return sum((value for value in table.column(column).to_pylist() if value is not None), Decimal(0))


def _manifest(request: FocusExportRequest, period: Period, version: int, table: pa.Table) -> dict[str, Any]:
    corrections = sum(1 for value in table.column("ChargeClass").to_pylist() if value == "Correction")
    return {
        "format": 1,
        "focus_version": request.focus_version,
        "granularity": request.granularity,
        "allocation": any(value is not None for value in table.column("AllocatedMethodId").to_pylist())
        if "AllocatedMethodId" in table.column_names
        else False,
        "period": {"label": period.label, "start": period.start.isoformat(), "end": period.end.isoformat()},
        "version": version,
        "rows": table.num_rows,
        "correction_rows": corrections,
        "totals": {
            column: format(_total(table, column), "f")
            for column in ("ListCost", "ContractedCost", "EffectiveCost", "BilledCost")
        },
    }


def _first_version(live: pa.Table, schema: pa.Schema) -> pa.Table:
    index = live.schema.get_field_index("x_ExportVersion")
    marked = live.set_column(index, "x_ExportVersion", pa.array([1] * live.num_rows, pa.int64()))
    # set_column makes the field nullable; the schema's flags are the specification's.
    return marked.cast(schema)


def _prepare_out(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ReportError(f"--out {out_dir} is a file; give a directory to write the dataset into")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot create {out_dir}: {exc.strerror or exc}") from exc


def _write_out(out_dir: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        temporary = out_dir / f".{name}.tmp"
        try:
            temporary.write_bytes(data)
            temporary.replace(out_dir / name)
        except OSError as exc:
            raise ReportError(f"cannot write {out_dir / name}: {exc.strerror or exc}") from exc
    fsync_path(out_dir)


def export_focus(
    lake_dir: Path,
    statements_dir: Path,
    request: FocusExportRequest,
    out_dir: Path,
    *,
    allocation: ReportContext | None = None,
    timeout: float | None = None,
) -> ExportResult:
    """Export ``request``'s period into ``out_dir``; see the module docstring. With
    ``allocation`` (the reports' context), chargeback's pooled spend is exported as allocated
    charges (allocation.py), FOCUS 1.3 only, in a ledger of its own."""
    period = request.resolve()
    if allocation is not None and request.focus_version != "1.3":
        raise ReportError("--allocation needs --focus-version 1.3 (allocation columns came in FOCUS 1.3)")
    out_dir = Path(out_dir)
    _prepare_out(out_dir)
    kind = f"{request.granularity}-allocated" if allocation is not None else request.granularity
    directory = ledger_dir(statements_dir, request.focus_version, kind, _label(period))
    schema = arrow_schema(request.focus_version)
    with closing_lock(directory):
        plan = plan_allocation(allocation, period) if allocation is not None else None
        live = live_rows(
            lake_dir,
            period,
            request.granularity,
            request.focus_version,
            allocation=plan,
            timeout=timeout,
        )
        latest = latest_version(directory)
        if latest is None and live.num_rows == 0:
            raise ReportError(f"the lake has no LLM calls in {period.label}: nothing to export")
        if latest is None:
            version, written = 1, True
            dataset = sort_rows(_first_version(live, schema))
        else:
            exported = latest.table.cast(schema)
            corrections = correction_rows(exported, live, latest.version + 1)
            written = corrections.num_rows > 0
            version = latest.version + 1 if written else latest.version
            dataset = sort_rows(pa.concat_tables([exported, corrections])) if written else exported
        data = parquet_bytes(dataset)
        if written:
            write_version(directory, version, data, _manifest(request, period, version, dataset))
    manifest = _manifest(request, period, version, dataset)
    _write_out(
        out_dir,
        {
            "focus.parquet": data,
            "focus.csv": csv_bytes(dataset),
            "manifest.json": (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8"),
        },
    )
    return ExportResult(
        period=period,
        out_dir=out_dir,
        version=version,
        written_version=written,
        rows=dataset.num_rows,
        correction_rows=manifest["correction_rows"],
        list_cost=_total(dataset, "ListCost"),
        effective_cost=_total(dataset, "EffectiveCost"),
        ledger_path=directory / f"v{version}",
    )


def request_from(**options: Any) -> FocusExportRequest:
    """A request from CLI options; pydantic's complaint becomes one ReportError line."""
    try:
        return FocusExportRequest(**options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ReportError(f"{where}: {first['msg']}") from None
