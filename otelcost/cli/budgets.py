"""``otelcost budgets``: look at budgets without a running server.

``otelcost budgets status`` evaluates every budget instance over the lake (the configuration's
budgets plus the admin API's stored changes) and prints spend, limit, percent, the action a
gateway would get, and the projected exhaustion date (``otelcost.budgets.status``).
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import click

from otelcost.budgets.config import BudgetingConfig
from otelcost.budgets.rebuild import lake_query
from otelcost.budgets.status import budget_status, status_table
from otelcost.cli.common import config_options, load_cli_config, otelcost_errors
from otelcost.cli.output import emit, output_options

__all__ = ["COMMANDS", "budgets"]


@click.group()
def budgets() -> None:
    """Spend budgets: status of every budget instance."""


@budgets.command("status")
@config_options
@click.option("--budget", "names", multiple=True, help="Only this budget (repeatable).")
@click.option("--over", type=float, default=None, help="Only instances at or above this percent, e.g. 80.")
@output_options
def status_command(
    config_path: Path | None, data_dir: Path | None, names: tuple[str, ...], over: float | None, fmt: str
) -> None:
    """Every budget instance with spend: spent, limit, percent, action, projected exhaustion.

    Computed from the lake and the configuration (no server needed); calls not yet flushed to
    the lake are not included. The projection assumes the window's average rate so far
    continues; it is empty when the limit is already reached or would not be within the window.
    """
    config = load_cli_config(config_path, data_dir)
    settings = getattr(config, "budgeting", None) or BudgetingConfig()
    with otelcost_errors():
        rows = budget_status(
            budgets=config.budgets,
            settings=settings,
            lake=lake_query(config.lake_dir),
            state_dir=config.data_dir / "budgets",
            now_ns=time.time_ns(),
        )
    if names:
        unknown = sorted(set(names) - {b.name for b in config.budgets} - {r.budget for r in rows})
        if unknown:
            raise click.BadParameter(f"no budget named {unknown[0]!r}", param_hint="--budget")
        rows = [r for r in rows if r.budget in names]
    if over is not None:
        floor = Decimal(str(over))
        rows = [r for r in rows if r.spent * 100 >= r.limit * floor]
    if not rows and fmt == "table":
        click.echo("No budget instance has spend in its current window.")
        return
    emit(status_table(rows), fmt)


COMMANDS: list[click.Command] = [budgets]
