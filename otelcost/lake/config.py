"""The ``lake`` configuration section: the live writer (``writer.py``), its background
compaction (``otelcost/jobs/compact.py``) and retention (``otelcost/jobs/retention.py``). Part
of the one ``Config`` model (``otelcost/config.py``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator

from otelcost.configtypes import ByteSize, Duration, Section

__all__ = ["CompactionConfig", "LakeConfig"]


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
    """The Parquet lake under ``<data_dir>/lake``."""

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

    @field_validator("retention")
    @classmethod
    def _whole_days(cls, value: timedelta | None) -> timedelta | None:
        # Retention drops whole UTC days, so less than one would drop today's partition.
        if value is not None and value < timedelta(days=1):
            raise ValueError("must be at least 1d (retention drops whole days)")
        return value
