"""``otelcost config``: show the effective configuration, or check a file."""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from otelcost.cli.common import config_options, load_cli_config
from otelcost.errors import ConfigError
from otelcost.server import check_listener_tls

__all__ = ["COMMANDS", "config"]


@click.group()
def config() -> None:
    """Inspect and validate pipeline configuration."""


@config.command()
@config_options
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
def show(config_path: Path | None, data_dir: Path | None, fmt: str) -> None:
    """Print the effective configuration: defaults < file < OTELCOST_* env < flags."""
    loaded = load_cli_config(config_path, data_dir)
    effective = loaded.model_dump(mode="json")
    effective["budgeting"]["store"] = loaded.budgeting.store_display  # no password on screen
    if fmt == "json":
        click.echo(json.dumps(effective, indent=2))
    else:
        click.echo(yaml.safe_dump(effective, sort_keys=False), nl=False)


@config.command()
@config_options
def check(config_path: Path | None, data_dir: Path | None) -> None:
    """Validate the configuration and the listeners' TLS files; exit 1 naming the key at fault."""
    config = load_cli_config(config_path, data_dir)
    try:
        check_listener_tls(config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{config_path or 'defaults'}: ok")


COMMANDS: list[click.Command] = [config]
