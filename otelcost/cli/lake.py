"""``otelcost lake ...``: maintenance of the Parquet lake.

* ``lake compact`` — merge each day's small files into one (``otelcost.jobs.compact``), what
  ``otelcost serve`` also does in the background (``lake.compaction``).
"""

from __future__ import annotations

from pathlib import Path

import click
import pyarrow as pa

from otelcost.cli.common import (
    config_options,
    load_cli_config,
    otelcost_errors,
    parse_day,
    partition_rewrite_options,
)
from otelcost.cli.output import emit, output_options
from otelcost.jobs.compact import CompactionResult, compact_lake

__all__ = ["COMMANDS", "lake"]


@click.group("lake")
def lake() -> None:
    """Maintenance of the Parquet lake."""


@lake.command("compact")
@config_options
@click.option("--since", metavar="DATE", help="First day (UTC) to compact; default: the oldest partition.")
@click.option("--until", metavar="DATE", help="Stop before this day (UTC); default: up to today included.")
@click.option(
    "--min-files",
    type=click.IntRange(min=2),
    default=None,
    help="Compact a day once it has this many small files [default: lake.compaction.min_files].",
)
@partition_rewrite_options
@output_options
def compact_command(
    *,
    since: str | None,
    until: str | None,
    min_files: int | None,
    dry_run: bool,
    lock_timeout: float,
    config_path: Path | None,
    data_dir: Path | None,
    fmt: str,
) -> None:
    """Merge each day's small files into one file sorted by ts.

    Files smaller than lake.compaction.target_file_size are merged once a day has at least
    lake.compaction.min_files of them; larger files are kept. Each day is swapped atomically
    (queries see the old files or the new ones) under the lake lock, so it is safe while
    otelcost serve is writing. One row per day: files before and after, rows, bytes before and
    after (empty on a dry run), seconds, and whether the day was rewritten.
    """
    config = load_cli_config(config_path, data_dir)
    settings = config.lake.compaction
    with otelcost_errors():
        results = compact_lake(
            config.lake_dir,
            since=parse_day(since, "--since"),
            until=parse_day(until, "--until"),
            target_file_size=settings.target_file_size,
            min_files=min_files if min_files is not None else settings.min_files,
            compression=config.lake.compression,
            row_group_size=config.lake.row_group_size,
            dry_run=dry_run,
            lock_timeout=lock_timeout,
        )
    if not results and fmt == "table":
        click.echo("The lake has no partitions in that range.")
        return
    emit(_results_table(results), fmt)


def _results_table(results: list[CompactionResult]) -> pa.Table:
    def ints(values: list[int | None]) -> pa.Array:
        return pa.array(values, type=pa.int64())

    return pa.table(
        {
            "date": pa.array([r.day for r in results], type=pa.date32()),
            "files_before": ints([r.files_before for r in results]),
            "files_after": ints([r.files_after for r in results]),
            "rows": ints([r.rows for r in results]),
            "bytes_before": ints([r.bytes_before for r in results]),
            "bytes_after": ints([r.bytes_after for r in results]),
            "seconds": pa.array([round(r.seconds, 3) for r in results], type=pa.float64()),
            "compacted": pa.array([r.rewritten for r in results], type=pa.bool_()),
        }
    )


COMMANDS: list[click.Command] = [lake]
