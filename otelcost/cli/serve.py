"""``otelcost serve``: run the pipeline behind its OTLP receivers and API listener."""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

import click

from otelcost.cli.common import config_options, load_cli_config, otelcost_errors
from otelcost.server import Server

__all__ = ["COMMANDS", "serve"]

GC_THRESHOLD_GEN0 = 20_000


@click.command()
@config_options
@click.option("--grpc-listen", metavar="HOST:PORT", help="OTLP/gRPC listen address (default 127.0.0.1:4317).")
@click.option("--http-listen", metavar="HOST:PORT", help="OTLP/HTTP listen address (default 127.0.0.1:4318).")
@click.option(
    "--api-listen", metavar="HOST:PORT", help="Policy/metrics/health listen address (default 127.0.0.1:4320)."
)
@click.option("--flush-interval", metavar="DURATION", help="Lake flush interval, e.g. 2s (default 2s).")
@click.option(
    "--workers",
    type=click.IntRange(0, 64),
    help="Receiver worker processes sharing the OTLP ports (default 0: receive in this process).",
)
def serve(
    *,
    config_path: Path | None,
    data_dir: Path | None,
    grpc_listen: str | None,
    http_listen: str | None,
    api_listen: str | None,
    flush_interval: str | None,
    workers: int | None,
) -> None:
    """Receive OTLP spans, price LLM calls, and land them in the lake until SIGTERM/SIGINT.

    On SIGTERM or SIGINT it stops accepting, finishes requests in flight, flushes everything
    buffered to the lake, and exits 0.
    """
    overrides: dict[str, Any] = {}
    if grpc_listen:
        overrides.setdefault("receiver", {})["grpc"] = {"listen": grpc_listen}
    if http_listen:
        overrides.setdefault("receiver", {})["http"] = {"listen": http_listen}
    if api_listen:
        overrides["api"] = {"listen": api_listen}
    if workers is not None:
        overrides.setdefault("receiver", {})["workers"] = workers
    if flush_interval:
        overrides["lake"] = {"flush_interval": flush_interval}
    config = load_cli_config(config_path, data_dir, **overrides)
    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Each span keeps a dozen small containers alive until its request is done, so the default
    # generation-0 threshold (700) runs a collection every ~40 spans: ~14% of the server's CPU
    # under load (docs/benchmarks.md). Collecting less often costs a few MiB. Set here, for the
    # serve process only: a program embedding Server keeps its own GC settings.
    gc.set_threshold(GC_THRESHOLD_GEN0, 20, 20)
    with otelcost_errors():
        Server(config).run_until_signalled()


COMMANDS: list[click.Command] = [serve]
