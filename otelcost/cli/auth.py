"""``otelcost auth``: make API keys and their digests (docs/security.md, "API keys").

A key is shown once, when it is made; the configuration holds only its ``sha256:`` digest. With
``--keys-file`` the new entry is added to ``auth.keys_file`` (written whole to a temporary file
and renamed, so a serve process reloading at the same moment reads the old or the new file),
then ``kill -HUP`` the serve process or ``POST /v1/admin/auth/reload`` puts it in force.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click
import yaml

from otelcost.auth.config import BINDABLE_DIMENSIONS, ROLES
from otelcost.auth.keys import key_digest, load_keys_file, new_key
from otelcost.errors import ConfigError

__all__ = ["COMMANDS", "auth"]


@click.group()
def auth() -> None:
    """Make API keys for OTLP ingest and the API, and hash existing ones."""


def _parse_bind(values: tuple[str, ...]) -> dict[str, str]:
    bind: dict[str, str] = {}
    for item in values:
        dimension, sep, value = item.partition("=")
        if not sep or dimension not in BINDABLE_DIMENSIONS or not value.strip():
            raise click.BadParameter(
                f"expected DIMENSION=VALUE with DIMENSION one of "
                f"{', '.join(BINDABLE_DIMENSIONS)}, got {item!r}",
                param_hint="--bind",
            )
        bind[dimension] = value.strip()
    return bind


@auth.command("new-key")
@click.argument("name")
@click.option(
    "--role",
    "roles",
    type=click.Choice(ROLES),
    multiple=True,
    help="Role of the key (repeatable); default ingest.",
)
@click.option(
    "--bind", "binds", multiple=True, metavar="DIMENSION=VALUE", help="Fix a dimension (repeatable)."
)
@click.option(
    "--keys-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Add the entry to this auth.keys_file (created if absent) instead of printing it.",
)
def new_key_command(
    name: str, roles: tuple[str, ...], binds: tuple[str, ...], keys_file: Path | None
) -> None:
    """Make a key named NAME: print the key once, and its configuration entry."""
    bind = _parse_bind(binds)
    key = new_key()
    entry: dict[str, object] = {"name": name, "digest": key_digest(key), "roles": list(roles or ("ingest",))}
    if bind:
        entry["bind"] = bind
    if keys_file is not None:
        _append_entry(keys_file, entry)
        click.echo(f"added key {name!r} to {keys_file}; reload otelcost to use it", err=True)
    else:
        click.echo("# add to auth.keys (or auth.keys_file):", err=True)
        click.echo(yaml.safe_dump([entry], sort_keys=False), nl=False, err=True)
    click.echo("# the key, shown once (give it to the sender; otelcost keeps only its digest):", err=True)
    click.echo(key)


def _append_entry(path: Path, entry: dict[str, object]) -> None:
    existing = load_keys_file(path) if path.exists() else ()
    entries = [key.model_dump(mode="json", exclude_defaults=False) for key in existing]
    if any(item["name"] == entry["name"] for item in entries):
        raise click.ClickException(f"{path} already has a key named {entry['name']!r}")
    entries.append(entry)
    text = yaml.safe_dump(entries, sort_keys=False)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    try:
        load_keys_file(path)
    except ConfigError as exc:  # cannot happen for a file this command wrote; say so if it does
        raise click.ClickException(str(exc)) from exc


@auth.command("hash-key")
def hash_key() -> None:
    """Read a key on standard input and print its digest (for auth.keys[].digest).

    The key is read from standard input, not an argument, so it stays out of shell history.
    """
    key = sys.stdin.readline().strip()
    if not key:
        raise click.ClickException("no key on standard input")
    click.echo(key_digest(key))


COMMANDS: list[click.Command] = [auth]
