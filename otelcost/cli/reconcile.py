"""``otelcost reconcile``: does the provider's bill agree with the lake?

Reads one provider's own usage or cost export (``--invoice``, repeatable: a usage export and a
cost export complete each other), compares it with the lake per UTC day, model and token class
(``otelcost.reconcile``) and prints the summary, the findings (each gap sized and with its
likely cause), the cells and the model mapping. docs/reconciliation.md describes the files,
the measures and the exit status.

Exit status: 0 when the explained share of the bill is at least ``--min-explained``; 3 when it
is under it (the scheduled check failed; the report is still printed); 1 when the
reconciliation cannot be made (an invoice row that does not parse names its file, line and
column; a lake that cannot be read); 2 for a wrong command line.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Final

import click

from otelcost.arrowjson import json_rows
from otelcost.cli.common import config_options, load_cli_config, otelcost_errors
from otelcost.cli.output import emit, emit_sections
from otelcost.pricing.catalog import Catalog
from otelcost.reconcile import DEFAULT_MIN_EXPLAINED, DEFAULT_MIN_FINDING, PROVIDERS, ReconcileResult
from otelcost.reconcile import reconcile as run_reconciliation
from otelcost.reports.period import Period, resolve_period

__all__ = ["COMMANDS", "EXIT_UNDER_THRESHOLD", "reconcile"]

EXIT_UNDER_THRESHOLD: Final = 3
FORMATS: Final = ("table", "csv", "json")
SECTIONS: Final = ("summary", "findings", "cells", "models", "left_out")


def _decimal(value: str, name: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"expected a number, got {value!r}", param_hint=name) from None


def _model_map(items: tuple[str, ...]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in items:
        name, sep, model = item.partition("=")
        if not sep or not name.strip() or not model.strip():
            raise click.BadParameter(f"expected INVOICE_NAME=MODEL, got {item!r}", param_hint="--model-map")
        mapping[name.strip()] = model.strip()
    return mapping


def _period(period: str | None, since: str | None, until: str | None, now: datetime) -> Period:
    if period is None and since is None and until is None:
        # The last finished month: the bill of a month under way is not final.
        period = (now.date().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    if since is not None and until is None and period is None:
        until = now.date().isoformat()  # up to today's UTC midnight: today is not billed yet
    try:
        chosen = resolve_period(period, since, until, now=now)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    for moment in (chosen.start, chosen.end):
        if moment.astimezone(UTC).time() != time(0):
            raise click.UsageError(
                f"bills are per UTC day: {moment.isoformat()} is not a midnight; give dates"
            )
    return chosen


def _document(result: ReconcileResult) -> dict[str, object]:
    return {
        "passed": result.passed,
        "sections": {name: json_rows(table) for name, table in result.sections.items()},
        "notes": list(result.notes),
    }


def _write(result: ReconcileResult, fmt: str, section: str | None, out: Path | None) -> None:
    with click.open_file(str(out) if out else "-", "w", encoding="utf-8") as stream:
        if fmt == "json":
            stream.write(json.dumps(_document(result), ensure_ascii=False, indent=2) + "\n")
        elif fmt == "csv":
            emit(result.sections[section or "findings"], "csv", file=stream)
        else:
            names = section.split(",") if section else SECTIONS[:2]
            emit_sections({name: result.sections[name] for name in names}, file=stream)
    if fmt == "table":
        for note in result.notes:
            click.echo(f"note: {note}", err=True)


@click.command("reconcile")
@click.option("--provider", required=True, type=click.Choice(tuple(PROVIDERS)), help="Whose bill it is.")
@click.option(
    "--invoice",
    "invoices",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The provider's usage or cost export (repeatable: usage and cost files complete each other).",
)
@click.option(
    "--period", help="2026-11 (month), 2026-Q4, 2026-W45, 2026-11-05. Default: the last finished month."
)
@click.option("--since", help="Instead of --period: from this date (2026-11-01), a UTC midnight.")
@click.option("--until", help="With --since: up to this date (exclusive). Default: today (UTC).")
@click.option(
    "--min-explained",
    default=str(DEFAULT_MIN_EXPLAINED),
    show_default=True,
    help="Exit with status 3 when the explained share of the bill is under this (0 to 1).",
)
@click.option(
    "--model-map",
    "model_map",
    multiple=True,
    metavar="INVOICE_NAME=MODEL",
    help="Compare the bill's model INVOICE_NAME as the lake's MODEL; repeatable.",
)
@click.option(
    "--cost",
    type=click.Choice(("effective", "list")),
    default="effective",
    show_default=True,
    help="The lake's cost to compare: after contract discounts (effective) or list price.",
)
@click.option(
    "--min-finding",
    default=str(DEFAULT_MIN_FINDING),
    show_default=True,
    help="Leave findings under this many USD out of the list (never out of the totals).",
)
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="table (summary and findings), csv (one section), json (every section, money as strings).",
)
@click.option(
    "--section", help=f"The section(s) to print: {', '.join(SECTIONS)} (csv: one; default findings)."
)
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
@config_options
@click.pass_context
def reconcile(  # noqa: PLR0917 - one parameter per command-line option
    ctx: click.Context,
    provider: str,
    invoices: tuple[Path, ...],
    period: str | None,
    since: str | None,
    until: str | None,
    min_explained: str,
    model_map: tuple[str, ...],
    cost: str,
    min_finding: str,
    fmt: str,
    section: str | None,
    out: Path | None,
    config_path: Path | None,
    data_dir: Path | None,
) -> None:
    """Compare a provider's bill with the lake: explained share, unexplained and over-attributed
    dollars, price disagreements, each with its likely cause (docs/reconciliation.md).

    Exit status: 0 explained share >= --min-explained, 3 under it, 1 the invoice or the lake
    cannot be read, 2 a wrong command line.
    """
    threshold = _decimal(min_explained, "--min-explained")
    if not Decimal(0) <= threshold <= Decimal(1):
        raise click.BadParameter("a share between 0 and 1", param_hint="--min-explained")
    smallest = _decimal(min_finding, "--min-finding")
    for name in (section or "").split(","):
        if name and name not in SECTIONS:
            raise click.BadParameter(
                f"no section {name!r}; the sections are: {', '.join(SECTIONS)}", param_hint="--section"
            )
    if fmt == "csv" and section and "," in section:
        raise click.BadParameter("csv prints one section", param_hint="--section")
    config = load_cli_config(config_path, data_dir)
    chosen = _period(period, since, until, datetime.now(UTC))
    with otelcost_errors():
        catalog = Catalog.load(config.pricing)
        result = run_reconciliation(
            config.lake_dir,
            provider,
            invoices,
            chosen.start,
            chosen.end,
            catalog=catalog,
            model_map=_model_map(model_map),
            cost=cost,
            min_explained=threshold,
            min_finding=smallest,
        )
    _write(result, fmt, section, out)
    if not result.passed:
        share = "none" if result.share is None else f"{result.share * 100:.2f}%"
        click.echo(f"explained share {share} is under --min-explained {threshold}", err=True)
        ctx.exit(EXIT_UNDER_THRESHOLD)


COMMANDS: list[click.Command] = [reconcile]
