"""``otelcost demo``: see the whole pipeline work in a minute, with nothing else running."""

from __future__ import annotations

import time
from pathlib import Path

import click

from otelcost.cli.common import load_cli_config, otelcost_errors
from otelcost.cli.output import emit
from otelcost.demo import exporting_providers, simulate
from otelcost.lake.query import run_query
from otelcost.server import BackgroundServer

__all__ = ["COMMANDS", "demo"]

SPEND_BY_TEAM = """
SELECT team, count(*) AS calls, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
       sum(cost_usd) AS cost_usd
FROM llm_calls GROUP BY team ORDER BY cost_usd DESC
"""
SPEND_BY_MODEL = """
SELECT provider, coalesce(model, response_model) AS model, pricing_status, count(*) AS calls,
       sum(cost_usd) AS cost_usd
FROM llm_calls GROUP BY ALL ORDER BY cost_usd DESC, calls DESC
"""


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("otelcost-demo"),
    show_default=True,
    help="Where the demo's lake goes (kept afterwards, for `otelcost sql --data-dir`).",
)
@click.option("--calls", type=click.IntRange(1, 1_000_000), default=3_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the simulated traffic.")
def demo(data_dir: Path, calls: int, seed: int) -> None:
    """Start the pipeline, send it a simulated company's LLM traffic, and show the spend.

    The traffic goes through the real OpenTelemetry SDK and OTLP exporters (gRPC and HTTP) to
    an otelcost server on free loopback ports; the tables are queried from the Parquet lake.
    """
    loopback = "127.0.0.1:0"
    config = load_cli_config(
        None,
        data_dir,
        receiver={"grpc": {"listen": loopback}, "http": {"listen": loopback}},
        api={"listen": loopback},
        lake={"flush_interval": "500ms"},
    )
    started = time.perf_counter()
    with otelcost_errors():
        with BackgroundServer(config) as running:
            server = running.server
            assert server.grpc is not None and server.http is not None
            click.echo(f"otelcost is listening: {server.describe()}", err=True)
            with exporting_providers(
                f"127.0.0.1:{server.grpc.port}", f"http://127.0.0.1:{server.http.port}"
            ) as providers:
                simulate(providers, calls=calls, seed=seed)
        elapsed = time.perf_counter() - started
        click.echo(f"sent {calls} LLM calls through OTLP/gRPC and OTLP/HTTP in {elapsed:.1f}s\n", err=True)
        click.echo("Spend by team:")
        emit(run_query(config.lake_dir, SPEND_BY_TEAM), "table")
        click.echo("\nSpend by model:")
        emit(run_query(config.lake_dir, SPEND_BY_MODEL), "table")
    click.echo(
        f"\nThe lake is in {config.lake_dir}. Ask it anything, for example:\n"
        f'  otelcost sql --data-dir {data_dir} "SELECT feature, sum(cost_usd) FROM llm_calls GROUP BY 1"',
        err=True,
    )


COMMANDS: list[click.Command] = [demo]
