"""The ``spool`` configuration section: the write-ahead log that makes an acknowledgement durable."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator, model_validator

from otelcost.configtypes import ByteSize, Duration, Section

__all__ = ["SpoolConfig"]

MAX_COMMIT_INTERVAL = timedelta(milliseconds=100)
"""A longer group-commit window would add its whole length to every acknowledgement."""


class SpoolConfig(Section):
    """The durable spool under ``<data_dir>/spool`` (docs/durability.md)."""

    enabled: bool = Field(
        True,
        description="Append every priced batch to the spool before acknowledging the request. "
        "Off: a crash loses the rows the lake writer has buffered but not yet flushed.",
    )
    max_size: ByteSize = Field(
        2**30,
        description="Bytes of records not yet confirmed by the lake. Beyond it appends are refused "
        "with a retryable error (gRPC UNAVAILABLE / HTTP 503) until the lake catches up.",
    )
    segment_size: ByteSize = Field(
        64 * 2**20,
        description="The log rolls to a new segment file past this size; whole segments are deleted "
        "once the lake has confirmed every record in them.",
    )
    commit_interval: Duration = Field(
        timedelta(0),
        description="Group-commit window: how long the committer waits after the first unsynced "
        "append for more to share its fsync. 0 syncs at once; appends that arrive while an fsync "
        "runs still share the next one.",
    )
    fsync: bool = Field(
        True,
        description="fsync before acknowledging. Off: a process crash loses nothing (the data is in "
        "the kernel's page cache) but a power loss or kernel crash can lose the last ~30 s.",
    )

    @field_validator("commit_interval")
    @classmethod
    def _bounded_window(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("must not be negative")
        if value > MAX_COMMIT_INTERVAL:
            raise ValueError("must be at most 100ms: the window is added to every acknowledgement")
        return value

    @model_validator(mode="after")
    def _segment_fits(self) -> SpoolConfig:
        if self.segment_size > self.max_size:
            raise ValueError("spool.segment_size must not be larger than spool.max_size")
        return self
