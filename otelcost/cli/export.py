"""``otelcost export focus``: a period of the lake as a FOCUS dataset (docs/focus.md)."""

from __future__ import annotations

from pathlib import Path

import click

from otelcost.cli.common import config_options, load_cli_config, otelcost_errors
from otelcost.config import report_context
from otelcost.export import DEFAULT_VERSION, FOCUS_VERSIONS, export_focus, request_from

__all__ = ["COMMANDS", "export"]


@click.group()
def export() -> None:
    """Export the lake's spend in standard formats for FinOps tools."""


@export.command("focus")
@config_options
@click.option("--period", default=None, help="A period as the reports take it: 2026-11, 2026-Q4, 2026-11-05.")
@click.option("--since", default=None, help="Start (a date, a timestamp, or 30d ago) instead of --period.")
@click.option("--until", default=None, help="End, exclusive (a date or timestamp; default now).")
@click.option(
    "--granularity",
    type=click.Choice(["hour", "day"]),
    default="day",
    show_default=True,
    help="Length of a charge period.",
)
@click.option(
    "--focus-version",
    type=click.Choice(list(FOCUS_VERSIONS)),
    default=DEFAULT_VERSION,
    show_default=True,
    help="FOCUS version of the dataset (1.0 is the newest focus-validator 1.0.0 checks).",
)
@click.option(
    "--allocation",
    is_flag=True,
    help="Export chargeback's shared spend (reports.chargeback rules) as FOCUS 1.3 allocated charges.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Directory to write focus.parquet, focus.csv and manifest.json into.",
)
def focus(
    *,
    config_path: Path | None,
    data_dir: Path | None,
    period: str | None,
    since: str | None,
    until: str | None,
    granularity: str,
    focus_version: str,
    allocation: bool,
    out_dir: Path,
) -> None:
    """Write a FOCUS cost-and-usage dataset of the period's LLM calls (Parquet and CSV).

    A later export of the same period keeps the rows exported before and adds ChargeClass
    Correction rows for what changed (a reprice, late calls); an unchanged lake gives the same
    bytes.
    """
    config = load_cli_config(config_path, data_dir)
    with otelcost_errors():
        request = request_from(
            period=period, since=since, until=until, granularity=granularity, focus_version=focus_version
        )
        result = export_focus(
            config.lake_dir,
            config.statements_dir,
            request,
            out_dir,
            allocation=report_context(config) if allocation else None,
        )
    state = "new" if result.written_version else "unchanged, same as"
    click.echo(
        f"{result.period.label}: {result.rows} rows ({result.correction_rows} corrections), "
        f"list {result.list_cost:f} USD, effective {result.effective_cost:f} USD; "
        f"{state} ledger version {result.version} ({result.ledger_path}); wrote {result.out_dir}"
    )


COMMANDS: list[click.Command] = [export]
