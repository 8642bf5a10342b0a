"""The ``otelcost`` command line: a thin click layer over the library.

Each command lives in its own module in this package and is registered below. Commands parse
arguments, call ``otelcost.*`` and print; domain errors (``OtelcostError``) become a one-line
message and a non-zero exit here, and nowhere below this package calls ``sys.exit``.
"""

from __future__ import annotations

import click

from otelcost import __version__

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="otelcost")
def main() -> None:
    """OpenTelemetry-native cost attribution for LLM traffic.

    Receive OTLP spans, price every LLM call exactly, land it in a Parquet lake, query it with SQL.
    """


def _register() -> None:
    # Imported here because the command modules import `main` from this module.
    from otelcost.cli import (  # noqa: PLC0415
        auth,
        budgets,
        config_cmd,
        demo,
        doctor,
        export,
        lake,
        pricing,
        reconcile,
        report,
        serve,
        sql,
    )
    from otelcost.spool import commands as spool  # noqa: PLC0415

    for module in (
        serve,
        config_cmd,
        sql,
        lake,
        pricing,
        report,
        export,
        reconcile,
        budgets,
        doctor,
        demo,
        spool,
        auth,
    ):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
