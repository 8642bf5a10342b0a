"""A real Parquet lake in tmp_path, written with the lake's own writer functions."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from otelcost.lake.locking import lake_lock
from otelcost.lake.publish import write_files

__all__ = ["land"]


def land(lake_dir: Path, *tables: pa.Table) -> None:
    """Write ``tables`` to the lake as the live writer would (Hive partitions, atomic files)."""
    with lake_lock(lake_dir, shared=True):
        for table in tables:
            write_files(lake_dir, table)
