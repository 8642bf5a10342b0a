"""The ``lake`` configuration section: the live writer (``writer.py``), its background
compaction (``otelcost/jobs/compact.py``) and retention (``otelcost/jobs/retention.py``). Part
of the one ``Config`` model (``otelcost/config.py``)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final, Literal

from pydantic import Field, field_validator

from otelcost.configtypes import ByteSize, Duration, Section
from otelcost.lake.location import S3Root, is_s3_url

__all__ = ["WRITER_ID_PATTERN", "CompactionConfig", "LakeConfig"]

WRITER_ID_PATTERN: Final = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
"""A writer id (``lake.writer_id``, ``lake/writers.py``): it is a JSON key in every footer."""


class CompactionConfig(Section):
    """Background compaction of ``otelcost serve`` (``otelcost lake compact`` does it by hand)."""

    enabled: bool = Field(
        True,
        description="Merge each day's small files in the background while the server runs.",
    )
    interval: Duration = Field(
        timedelta(minutes=5),
        description="How often the partitions are checked (the first check "
        "comes one interval after the start).",
    )
    min_files: int = Field(
        32,
        ge=2,
        description="A day is compacted once it holds at least this many files smaller than "
        "target_file_size.",
    )
    target_file_size: ByteSize = Field(
        256 * 2**20,
        description="Files at least this large are left as they are; the smaller ones are merged "
        "into one file sorted by ts.",
    )

    @field_validator("interval")
    @classmethod
    def _positive_interval(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be greater than zero")
        return value


class LakeConfig(Section):
    """The Parquet lake: ``<data_dir>/lake``, or ``lake.root`` shared by several writers."""

    root: str | None = Field(
        None,
        description="Where the lake lives; null: <data_dir>/lake. Several otelcost serve "
        "processes (each with its own data_dir and spool) may share one root: each keeps its "
        "spool seqs under its writer id (docs/durability.md). A relative path in the YAML file is "
        "resolved against the file's folder, from the environment against the working directory. "
        "s3://bucket/prefix: read by otelcost sql, rewritten by otelcost lake compact and lake "
        "retention; serve, the reports and the other jobs refuse it for now (docs/durability.md, "
        "'The lake on S3').",
    )
    writer_id: str | None = Field(
        None,
        description="This process's name among the writers of a shared lake.root; null: generated "
        "once and kept in <data_dir>/lake-writer-id (or, without lake.root, the unnamed single "
        "writer). Change it only after a clean stop: the spool replays under it.",
    )

    flush_interval: Duration = Field(
        timedelta(seconds=2), description="Buffered rows are written at least this often."
    )
    max_buffer_rows: int = Field(100_000, gt=0, description="Rows buffered before an early flush.")
    compression: Literal["zstd", "snappy", "lz4", "gzip", "none"] = "zstd"
    row_group_size: int = Field(122_880, ge=1024, description="Rows per Parquet row group.")
    compaction: CompactionConfig = CompactionConfig()
    retention: Duration | None = Field(
        None,
        description="Day partitions wholly older than this are dropped from every lake table "
        "(otelcost/jobs/retention.py); null keeps them forever. Closed statements are never dropped.",
    )

    @field_validator("flush_interval")
    @classmethod
    def _positive_interval(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be greater than zero")
        return value

    @field_validator("root")
    @classmethod
    def _local_root(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("must not be empty (null keeps the lake in <data_dir>/lake)")
        if is_s3_url(value):
            S3Root.parse(value)  # ValueError names what is wrong
            return value
        scheme, separator, _ = value.partition("://")
        if separator:
            raise ValueError(f"unsupported scheme {scheme!r}: give a file system path")
        return value

    @field_validator("writer_id")
    @classmethod
    def _valid_writer_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(WRITER_ID_PATTERN, value):
            raise ValueError("must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("retention")
    @classmethod
    def _whole_days(cls, value: timedelta | None) -> timedelta | None:
        # Retention drops whole UTC days, so less than one would drop today's partition.
        if value is not None and value < timedelta(days=1):
            raise ValueError("must be at least 1d (retention drops whole days)")
        return value
