"""Retention: whole day partitions older than ``lake.retention`` dropped from every lake table.

A day is dropped once all of it is older than ``now - retention`` (its end, midnight UTC after
it, at or before that instant), from ``llm_calls``, ``duplicate_spans`` and
``attribution_changes`` alike (``layout.TABLE_NAMES``), so the tables never disagree about
which days exist. Nothing outside those table directories is touched: closed chargeback
statements and the FOCUS ledger live under ``<data_dir>/statements`` and outlive the rows they
were computed from, which is the point of closing a period.

**A reader never sees half a partition.** Under the exclusive lake lock (no flush, compaction
swap or reprice meanwhile) each day's directory is first renamed into ``<lake_dir>/.staging/``
(outside the ``*/*.parquet`` glob, same file system: one ``rename(2)``) and the table directory
is fsynced; only then, with the lock released, are the files deleted. A query sees the whole
day or none of it; one that had listed the files before the rename gets "No such file" and
``run_query`` runs it again. A crash after the rename leaves the directory in ``.staging/``,
which ``recovery.recover`` deletes at the next start.

A directory in a table whose name is not ``date=YYYY-MM-DD`` is left alone and reported
(:attr:`RetentionPlan.ignored`): retention only deletes what it can date.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from otelcost.fsync import fsync_path
from otelcost.lake.layout import (
    STAGING_DIR,
    TABLE_NAMES,
    data_files,
    io_error,
    partition_dir,
    scan_partitions,
    staging_name,
    table_dir,
)
from otelcost.lake.locking import lake_lock

__all__ = ["PartitionDrop", "RetentionPlan", "apply_retention", "cutoff_day", "plan_retention"]

log = logging.getLogger(__name__)


class PartitionDrop(NamedTuple):
    """One day partition of one table that retention drops (or would drop)."""

    table: str
    day: date
    files: int
    bytes: int


@dataclass(frozen=True)
class RetentionPlan:
    """What retention drops, oldest day first, and the directories it leaves alone."""

    drops: list[PartitionDrop] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)  # not named date=YYYY-MM-DD


def cutoff_day(retention: timedelta, now: datetime) -> date:
    """The first day kept: every day before it ends at or before ``now - retention`` (UTC)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if retention <= timedelta(0):
        raise ValueError("retention must be greater than zero")
    limit = (now - retention).astimezone(UTC)
    # Day d ends at midnight of d + 1, which is <= limit exactly when d + 1 <= limit's own day.
    return limit.date()


def plan_retention(lake_dir: Path, retention: timedelta, now: datetime) -> RetentionPlan:
    """The partitions of every table wholly older than ``now - retention``; reads only listings
    and ``stat``, takes no lock (the dry run; :func:`apply_retention` plans again under it)."""
    first_kept = cutoff_day(retention, now)
    drops: list[PartitionDrop] = []
    ignored: list[Path] = []
    for table in TABLE_NAMES:
        days, undated = scan_partitions(lake_dir, table)
        ignored += undated
        for day in days:
            if day < first_kept:
                files = data_files(partition_dir(lake_dir, day, table))
                drops.append(PartitionDrop(table, day, len(files), sum(_size(path) for path in files)))
    drops.sort(key=lambda drop: (drop.day, TABLE_NAMES.index(drop.table)))
    return RetentionPlan(drops, ignored)


def apply_retention(
    lake_dir: Path,
    retention: timedelta,
    now: datetime,
    *,
    lock_timeout: float | None = None,
    on_renamed: Callable[[PartitionDrop], None] | None = None,
) -> RetentionPlan:
    """Drop what :func:`plan_retention` lists: each directory renamed out of its table under
    the exclusive lake lock, then deleted once the lock is released (the deletes need no lock,
    so flushes never wait for a large first pass to unlink its files). Returns the plan as
    carried out. ``on_renamed`` is called after a day's directory has left its table and before
    its files are deleted (tests look at the glob there). Raises LakeError (or
    ``LakeLockTimeoutError``) with the days before the failing one dropped and the failing one
    whole, in its table or in ``.staging/`` (which ``recover`` clears)."""
    renamed: list[PartitionDrop] = []
    try:
        with lake_lock(lake_dir, timeout=lock_timeout):
            plan = plan_retention(lake_dir, retention, now)
            for drop in plan.drops:
                _drop_partition(lake_dir, drop)
                renamed.append(drop)
                if on_renamed is not None:
                    on_renamed(drop)
    finally:
        for drop in renamed:
            _delete_retired(lake_dir, drop)
            log.info(
                "retention dropped %s/%s (%d files, %d bytes)", drop.table, drop.day, drop.files, drop.bytes
            )
    for path in plan.ignored:
        log.warning("retention left %s alone: not a date=YYYY-MM-DD partition", path)
    return plan


_TOKEN = uuid.uuid4().hex[:12]  # per process; a day of a table is dropped once, so unique enough


def _retired_dir(lake_dir: Path, drop: PartitionDrop) -> Path:
    # recover() deletes everything in .staging/ except a swap's "new" half, so "drop" is safe.
    return Path(lake_dir) / STAGING_DIR / staging_name(drop.day, "drop", f"{drop.table}-{_TOKEN}")


def _drop_partition(lake_dir: Path, drop: PartitionDrop) -> None:
    live = partition_dir(lake_dir, drop.day, drop.table)
    retired = _retired_dir(lake_dir, drop)
    try:
        retired.parent.mkdir(parents=True, exist_ok=True)
        if retired.exists():  # left by an earlier failed deletion of the same day
            shutil.rmtree(retired)
        os.rename(live, retired)
        fsync_path(table_dir(lake_dir, drop.table))
        fsync_path(retired.parent)
    except OSError as exc:
        raise io_error(f"drop partition {live}", exc) from exc


def _delete_retired(lake_dir: Path, drop: PartitionDrop) -> None:
    retired = _retired_dir(lake_dir, drop)
    try:
        shutil.rmtree(retired)
        fsync_path(retired.parent)
    except FileNotFoundError:
        pass  # another process's recover() cleared .staging/ first: the day is gone either way
    except OSError as exc:
        raise io_error(f"delete the dropped partition {retired}", exc) from exc


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
