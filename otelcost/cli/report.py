"""``otelcost report``: ready-made FinOps reports over the lake.

``otelcost report unattributed`` lists, per service, the calls that lack a required attribution
dimension, their spend, and which dimensions are missing (``otelcost.reports.unattributed``).
"""

from __future__ import annotations

from pathlib import Path

import click

from otelcost.cli.common import config_options, load_cli_config, otelcost_errors
from otelcost.cli.output import emit, output_options
from otelcost.reports.unattributed import parse_since, unattributed

__all__ = ["COMMANDS", "report"]


@click.group()
def report() -> None:
    """Ready-made FinOps reports over the lake."""


@report.command("unattributed")
@config_options
@click.option(
    "--since",
    default="30d",
    show_default=True,
    help="Calls starting at or after this: a duration ago (7d, 24h) or a date/time (2026-01-31).",
)
@output_options
def unattributed_command(config_path: Path | None, data_dir: Path | None, since: str, fmt: str) -> None:
    """Spend and calls by service that lack required attribution, and what is missing.

    A call is incomplete when a dimension listed in attribution.required has no value
    (docs/attribution.md). One row per service with incomplete calls, most incomplete spend first:
    incomplete calls of all calls, incomplete cost of all cost (exact USD), and the missing
    dimensions with how many calls miss each.
    """
    config = load_cli_config(config_path, data_dir)
    try:
        start = parse_since(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    with otelcost_errors():
        table = unattributed(config.lake_dir, since=start)
    if table.num_rows == 0 and fmt == "table":
        click.echo(f"No incomplete calls since {start.isoformat()}.")
        return
    emit(table, fmt)


COMMANDS: list[click.Command] = [report]
