"""What the live writer does differently on a directory and on S3: publishing a flush, and the
replay filter, and the numbering check of a start. Everything else of ``writer.py`` is the same
for both."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path

import pyarrow as pa

from otelcost.lake.layout import TABLE_NAMES
from otelcost.lake.locking import lake_lock
from otelcost.lake.publish import write_files
from otelcost.lake.recovery import ReplayFilter, highest_recorded_seq
from otelcost.lake.s3 import S3Lake, S3ReplayFilter
from otelcost.lake.seqs import SeqSet

__all__ = ["highest_seq", "publish", "replay_filter"]


def publish(
    lake: Path | S3Lake,
    table: pa.Table,
    *,
    compression: str,
    row_group_size: int,
    spool_seqs: Mapping[date, SeqSet],
    writer: str,
    lock_timeout: float | None,
) -> list[Path]:
    """One flush: ``publish.write_files`` under the shared lake lock, or on S3 the upload of
    new objects, which needs no lock (``s3.py``; the keys are returned as paths)."""
    if isinstance(lake, S3Lake):
        keys = lake.write_files(
            table,
            compression=compression,
            row_group_size=row_group_size,
            spool_seqs=spool_seqs,
            writer=writer,
        )
        return [Path(key) for key in keys]
    with lake_lock(lake, shared=True, timeout=lock_timeout):
        return write_files(
            lake,
            table,
            compression=compression,
            row_group_size=row_group_size,
            spool_seqs=spool_seqs,
            writer=writer,
        )


def replay_filter(lake: Path | S3Lake, *, writer: str) -> ReplayFilter | S3ReplayFilter:
    """Which rows of a replayed spool record ``writer``'s footers say the lake lacks."""
    if isinstance(lake, S3Lake):
        return S3ReplayFilter(lake, writer=writer)
    return ReplayFilter(lake, writer=writer)


def highest_seq(lake: Path | S3Lake, *, writer: str) -> int:
    """The highest seq of ``writer``'s spool any footer names (the numbering check at start)."""
    if isinstance(lake, S3Lake):
        return lake.highest_recorded_seq(TABLE_NAMES, writer=writer)
    return highest_recorded_seq(lake, writer=writer)
