"""``otelcost spool info DIR`` and ``otelcost spool repair DIR``: look at and mend a spool offline.

The click group is exposed as ``COMMANDS`` like the modules in ``otelcost/cli/``, which register it.
"""

from __future__ import annotations

from pathlib import Path

import click

from otelcost.errors import OtelcostError
from otelcost.spool.errors import SpoolError
from otelcost.spool.lockfile import DirectoryLock
from otelcost.spool.repair import repair
from otelcost.spool.scan import read_checkpoint, scan

__all__ = ["COMMANDS", "spool"]

_DIRECTORY = click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))


# The same help options as the `otelcost` group, also when this group is invoked on its own
# (tests do): click caches a command's help option from the first context it sees, and the
# generated docs/cli.md must not depend on which came first.
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def spool() -> None:
    """Inspect or repair a spool directory (the write-ahead log, <data_dir>/spool)."""


@spool.command()
@_DIRECTORY
def info(directory: Path) -> None:
    """Show the checkpoint, the segments, and any damage, without changing anything."""
    try:
        in_use = _in_use(directory)
        checkpoint = read_checkpoint(directory)
        result = scan(directory, checkpoint=checkpoint)
    except OtelcostError as exc:
        raise click.ClickException(str(exc)) from exc
    pending = sum(result.record_sizes)
    click.echo(f"directory:       {directory}{' (in use by a running otelcost)' if in_use else ''}")
    click.echo(f"checkpoint:      {result.checkpoint}")
    click.echo(f"last seq:        {result.last_seq}")
    click.echo(f"to replay:       {len(result.record_sizes)} record(s), {pending} bytes")
    click.echo(f"segments:        {len(result.segments)} live, {len(result.stale)} stale")
    if result.missing is not None:
        click.echo(f"missing:         records {result.missing[0]}..{result.missing[1]}")
    damage = result.damage
    if damage is None:
        click.echo("damage:          none")
    elif damage.torn_tail:
        note = " (may be an append in progress)" if in_use else "; start() cuts it"
        click.echo(f"torn tail:       {damage.describe()}{note}")
    else:
        click.echo(f"DAMAGE:          {damage.describe()}; {damage.intact_after} intact record(s) follow")
        click.echo(f"                 otelcost will not start; see `otelcost spool repair {directory}`")


@spool.command(name="repair")
@_DIRECTORY
@click.option("--dry-run", is_flag=True, help="Only say what would be done.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def repair_command(directory: Path, dry_run: bool, yes: bool) -> None:
    """Cut a damaged spool at its first bad byte so that otelcost can start again.

    The cut bytes and any later segments are moved to DIRECTORY/quarantine/, never deleted; the
    intact records among them are NOT replayed. Stop otelcost and copy the directory first.
    """
    try:
        preview = repair(directory, dry_run=True)
        click.echo(preview.describe())
        if dry_run or not preview.problems:
            return
        if not yes:
            click.confirm("Repair the spool as described?", abort=True)
        click.echo(repair(directory).describe())
    except OtelcostError as exc:
        raise click.ClickException(str(exc)) from exc


def _in_use(directory: Path) -> bool:
    lock = DirectoryLock(directory)
    try:
        lock.acquire()
    except SpoolError:
        return True
    lock.release()
    return False


COMMANDS: list[click.Command] = [spool]
