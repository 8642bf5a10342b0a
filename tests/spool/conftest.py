"""Fixtures for the spool tests: real spool directories under tmp_path, shut down after each test."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from otelcost.spool import Spool, SpoolConfig

SpoolFactory = Callable[..., Spool]


def payload_for(key: int, size: int | None = None) -> bytes:
    """Deterministic bytes from ``key``: a test can tell every payload from every other."""
    return random.Random(key).randbytes(size if size is not None else 100 + key % 3000)


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def open_spool(spool_dir: Path) -> Iterator[SpoolFactory]:
    """``open_spool(**config)`` starts a Spool on ``spool_dir``; every one is shut down at the end."""
    opened: list[Spool] = []

    def factory(directory: Path | None = None, **config: Any) -> Spool:
        spool = Spool(directory or spool_dir, config=SpoolConfig(**config))
        opened.append(spool)
        spool.start()
        return spool

    yield factory
    for spool in opened:
        spool.shutdown()
