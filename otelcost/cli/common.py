"""Options and helpers shared by the commands: where the configuration and the lake are."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click

from otelcost.config import Config, load_config
from otelcost.errors import OtelcostError

__all__ = ["config_options", "load_cli_config", "otelcost_errors", "parse_day", "partition_rewrite_options"]

F = TypeVar("F", bound=Callable[..., Any])


def config_options(fn: F) -> F:
    """Add ``-c/--config FILE`` and ``--data-dir DIR`` (flags beat env, env beats the file)."""
    fn = click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Data directory (lake and state). Default: data_dir from the config, else ./otelcost-data.",
    )(fn)
    fn = click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        envvar="OTELCOST_CONFIG",
        help="Pipeline configuration YAML (env OTELCOST_CONFIG).",
    )(fn)
    return fn


def parse_day(value: str | None, name: str) -> date | None:
    """A ``YYYY-MM-DD`` option value as a date (None stays None); a bad one names the option."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a date YYYY-MM-DD, got {value!r}", param_hint=name) from None


def partition_rewrite_options(fn: F) -> F:
    """Add ``--dry-run`` and ``--lock-timeout`` to a command that rewrites lake partitions."""
    fn = click.option(
        "--lock-timeout",
        type=click.FloatRange(min=0),
        default=60.0,
        show_default=True,
        help="Seconds to wait for the lake lock per partition.",
    )(fn)
    fn = click.option("--dry-run", is_flag=True, help="Report what would change without writing anything.")(
        fn
    )
    return fn


def load_cli_config(config_path: Path | None, data_dir: Path | None, **overrides: Any) -> Config:
    """Load the configuration with command-line overrides; errors become one-line CLI errors."""
    layer: dict[str, Any] = dict(overrides)
    if data_dir is not None:
        layer["data_dir"] = str(data_dir)
    try:
        return load_config(config_path, overrides=layer)
    except OtelcostError as exc:
        raise click.ClickException(str(exc)) from exc


class otelcost_errors:  # noqa: N801 - used as a lower-case context manager, like contextlib's
    """Turn an ``OtelcostError`` raised inside the block into a one-line CLI error."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, OtelcostError):
            raise click.ClickException(str(exc)) from exc
