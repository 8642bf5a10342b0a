"""``otelcost lake ...``: maintenance of the Parquet lake.

* ``lake compact`` — merge each day's small files into one (``otelcost.jobs.compact``), what
  ``otelcost serve`` also does in the background (``lake.compaction``).
* ``lake retention`` — drop the day partitions older than ``lake.retention``
  (``otelcost.jobs.retention``), what ``otelcost serve`` also does on compaction's schedule.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import click
import pyarrow as pa
from pydantic import ValidationError

from otelcost.cli.common import (
    config_options,
    load_cli_config,
    otelcost_errors,
    parse_day,
    partition_rewrite_options,
)
from otelcost.cli.output import emit, output_options
from otelcost.jobs.compact import CompactionResult, compact_lake
from otelcost.jobs.compact_s3 import compact_s3_lake
from otelcost.jobs.retention import RetentionPlan, apply_retention, plan_retention
from otelcost.jobs.retention_s3 import apply_s3_retention, plan_s3_retention
from otelcost.lake.config import LakeConfig
from otelcost.lake.s3 import open_s3_lake

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

    On an s3:// lake.root there is no lock: run it from one place at a time (docs/durability.md).

    Files smaller than lake.compaction.target_file_size are merged once a day has at least
    lake.compaction.min_files of them; larger files are kept. Each day is swapped atomically
    (queries see the old files or the new ones) under the lake lock, so it is safe while
    otelcost serve is writing. One row per day: files before and after, rows, bytes before and
    after (empty on a dry run), seconds, and whether the day was rewritten.
    """
    config = load_cli_config(config_path, data_dir)
    settings = config.lake.compaction
    with otelcost_errors():
        s3_lake = open_s3_lake(config.lake.root)
        results = (
            compact_s3_lake(
                s3_lake,
                since=parse_day(since, "--since"),
                until=parse_day(until, "--until"),
                target_file_size=settings.target_file_size,
                min_files=min_files if min_files is not None else settings.min_files,
                compression=config.lake.compression,
                row_group_size=config.lake.row_group_size,
                dry_run=dry_run,
            )
            if s3_lake is not None
            else compact_lake(
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


@lake.command("retention")
@config_options
@click.option(
    "--retention",
    "retention_text",
    metavar="DURATION",
    default=None,
    help="Drop days older than this (e.g. 400d) instead of lake.retention.",
)
@partition_rewrite_options
@output_options
def retention_command(
    *,
    retention_text: str | None,
    dry_run: bool,
    lock_timeout: float,
    config_path: Path | None,
    data_dir: Path | None,
    fmt: str,
) -> None:
    """Drop the day partitions older than lake.retention from every lake table.

    A day goes once all of it (UTC) is older than now minus the retention, from llm_calls,
    duplicate_spans and attribution_changes alike; each day leaves the table in one rename under
    the lake lock (queries see all of it or none of it), so it is safe while otelcost serve is
    writing. Closed statements under <data_dir>/statements are never touched. One row per
    partition: table, date, files, bytes, and the action (dropped, would drop, or left alone
    for a directory not named date=YYYY-MM-DD).
    """
    config = load_cli_config(config_path, data_dir)
    retention = config.lake.retention if retention_text is None else _parse_retention(retention_text)
    if retention is None:
        raise click.UsageError("lake.retention is not set (null keeps the lake forever): pass --retention")
    now = datetime.now(UTC)
    with otelcost_errors():
        s3_lake = open_s3_lake(config.lake.root)
        if s3_lake is not None:  # no lock on S3: run it from one place at a time
            plan = (plan_s3_retention if dry_run else apply_s3_retention)(s3_lake, retention, now)
        elif dry_run:
            plan = plan_retention(config.lake_dir, retention, now)
        else:
            plan = apply_retention(config.lake_dir, retention, now, lock_timeout=lock_timeout)
    if not plan.drops and not plan.ignored and fmt == "table":
        click.echo("No partition is older than the retention.")
        return
    emit(_retention_table(plan, dry_run=dry_run), fmt)


def _parse_retention(text: str) -> timedelta:
    try:
        value = LakeConfig.model_validate({"retention": text}).retention
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise click.BadParameter(reason, param_hint="--retention") from None
    assert value is not None
    return value


def _retention_table(plan: RetentionPlan, *, dry_run: bool) -> pa.Table:
    action = "would drop" if dry_run else "dropped"
    rows: list[tuple[str, date | None, int | None, int | None, str]]
    rows = [(d.table, d.day, d.files, d.bytes, action) for d in plan.drops]
    rows += [
        (p.parent.name, None, None, None, f"left alone: {p.name} is not date=YYYY-MM-DD")
        for p in plan.ignored
    ]
    return pa.table(
        {
            "table": pa.array([r[0] for r in rows], type=pa.string()),
            "date": pa.array([r[1] for r in rows], type=pa.date32()),
            "files": pa.array([r[2] for r in rows], type=pa.int64()),
            "bytes": pa.array([r[3] for r in rows], type=pa.int64()),
            "action": pa.array([r[4] for r in rows], type=pa.string()),
        }
    )


COMMANDS: list[click.Command] = [lake]
