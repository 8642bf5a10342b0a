"""Fixtures of the lake tests: a lake directory in tmp_path and a fast-flushing configuration."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from otelcost.config import LakeConfig
from otelcost.lake.writer import LakeWriter


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "lake"


@pytest.fixture
def fast_config() -> LakeConfig:
    """Flushes every 50 ms; small buffers so the bounds are reached with little data."""
    return LakeConfig(flush_interval=timedelta(milliseconds=50), max_buffer_rows=1_000, row_group_size=1_024)


@pytest.fixture
def writer(lake_dir: Path, fast_config: LakeConfig) -> Iterator[LakeWriter]:
    lake = LakeWriter(lake_dir=lake_dir, config=fast_config)
    lake.start()
    yield lake
    lake.shutdown()
