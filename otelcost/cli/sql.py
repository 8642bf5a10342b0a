"""``otelcost sql``: run DuckDB SQL over the lake and print the rows.

The query sees the view ``llm_calls`` (one row per LLM call, columns in docs/schema.md) on a
connection that can read only the lake and write nothing (``otelcost/lake/query.py``).
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from otelcost.cli.common import config_options, load_cli_config
from otelcost.cli.output import emit, output_options
from otelcost.errors import LakeError
from otelcost.lake.layout import table_dir
from otelcost.lake.query import run_query
from otelcost.lake.s3 import open_s3_lake

__all__ = ["COMMANDS", "parse_params", "sql"]

_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_params(values: tuple[str, ...]) -> dict[str, object]:
    """``("team=payments", "$since=2026-03-01")`` -> ``{"team": "payments", "since": "2026-03-01"}``."""
    params: dict[str, object] = {}
    for item in values:
        name, sep, value = item.partition("=")
        name = name.strip().removeprefix("$")
        if not sep or not _PARAM_NAME.match(name):
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="'-p' / '--param'")
        params[name] = value
    return params


@click.command("sql")
@config_options
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Bind $NAME in the query to VALUE (a string; DuckDB casts it where the SQL needs). Repeatable.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=30.0,
    metavar="SECONDS",
    show_default=True,
    help="Interrupt the query after this many seconds; 0 means no limit.",
)
@output_options
@click.argument("query", metavar="SQL")
def sql(
    *,
    query: str,
    config_path: Path | None,
    data_dir: Path | None,
    params: tuple[str, ...],
    timeout: float,
    fmt: str,
) -> None:
    """Run SQL over the lake's `llm_calls` view and print the result.

    SQL is one query (or a script: the last statement's rows are printed); pass - to read it
    from standard input. Only reading is allowed; docs/sql.md has a cookbook. Example:

    \b
        otelcost sql -p team=payments 'SELECT feature, sum(cost_usd) AS usd
          FROM llm_calls WHERE team = $team AND date >= current_date - 30
          GROUP BY 1 ORDER BY usd DESC'
    """
    if query == "-":
        with click.open_file("-") as stdin:
            query = stdin.read()
    bound = parse_params(params)
    config = load_cli_config(config_path, data_dir)
    lake = open_s3_lake(config.lake.root)  # lake.root: s3://... (otelcost/lake/s3.py)
    if lake is None and not table_dir(config.lake_dir).is_dir():
        click.echo(
            f"warning: there is no lake at {config.lake_dir} yet, so llm_calls is empty "
            "(is --data-dir or OTELCOST_DATA_DIR right?)",
            err=True,
        )
    try:
        result = run_query(lake or config.lake_dir, query, bound or None, timeout=timeout or None)
    except LakeError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise click.ClickException(first_line) from exc
    emit(result, fmt)


COMMANDS: list[click.Command] = [sql]
