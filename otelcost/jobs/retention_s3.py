"""``lake.retention`` on a lake on S3 (``lake.root: s3://...``): old days dropped all at once.

Deleting a day's objects one by one would show a query part of the day. So a day is first
retired by one upload: a zero-row file in the partition whose footer names every file of the day
as replaced (``otelcost.replaces``, ``lake/s3.py``). From then on the lake's S3 readers leave the
whole day out; the files are deleted next, then the marker. A crash in between leaves a day
that reads as dropped, and the next run drops what is left. A file flushed into that day after
the marker (a very late span) is not named by it and stays until the next run. Which days go is
the same rule as on disk (``retention.cutoff_day``), in every table; like compaction on S3 it
takes no lock and runs from one place at a time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from otelcost.errors import LakeError
from otelcost.jobs.retention import PartitionDrop, RetentionPlan, cutoff_day
from otelcost.lake.layout import TABLE_NAMES, new_file_name
from otelcost.lake.publish import DEFAULT_COMPRESSION, DEFAULT_ROW_GROUP_SIZE
from otelcost.lake.s3 import REPLACES_KEY, S3Lake
from otelcost.schema import RECORD_SCHEMA

__all__ = ["apply_s3_retention", "plan_s3_retention"]

log = logging.getLogger(__name__)


def plan_s3_retention(lake: S3Lake, retention: timedelta, now: datetime) -> RetentionPlan:
    """The partitions of every table wholly older than ``now - retention`` (listing only)."""
    first_kept = cutoff_day(retention, now)
    drops = []
    for table in TABLE_NAMES:
        for day in lake.list_partitions(table):
            if day < first_kept:
                files = lake.data_files(table, day)
                infos = lake.fs.get_file_info(files) if files else []
                drops.append(PartitionDrop(table, day, len(files), sum(info.size or 0 for info in infos)))
    drops.sort(key=lambda drop: (drop.day, TABLE_NAMES.index(drop.table)))
    return RetentionPlan(drops, [])


def apply_s3_retention(
    lake: S3Lake,
    retention: timedelta,
    now: datetime,
    *,
    after_marker: Callable[[PartitionDrop], None] | None = None,
) -> RetentionPlan:
    """Drop what :func:`plan_s3_retention` lists (module docstring); ``after_marker`` is called
    once a day reads as dropped and before its files are deleted (tests stop there)."""
    plan = plan_s3_retention(lake, retention, now)
    for drop in plan.drops:
        files = lake.data_files(drop.table, drop.day)
        names = [path.rsplit("/", 1)[1] for path in files]
        marker = f"{lake.partition_path(drop.table, drop.day)}/{new_file_name()}"
        empty = RECORD_SCHEMA.empty_table().replace_schema_metadata(
            {REPLACES_KEY: json.dumps(names).encode()}
        )
        try:
            lake.upload(marker, empty, compression=DEFAULT_COMPRESSION, row_group_size=DEFAULT_ROW_GROUP_SIZE)
            if after_marker is not None:
                after_marker(drop)
            lake.delete([*files, marker])
        except OSError as exc:
            raise LakeError(f"cannot drop s3://{lake.partition_path(drop.table, drop.day)}: {exc}") from exc
        log.info("retention dropped %s/%s (%d files, %d bytes)", drop.table, drop.day, drop.files, drop.bytes)
    return plan
