"""A running otelcost server on free loopback ports, for end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from otelcost.config import Config, load_config
from otelcost.server import BackgroundServer


def loopback_config(data_dir: Path, **overrides: object) -> Config:
    layer: dict[str, object] = {
        "data_dir": str(data_dir),
        "receiver": {"grpc": {"listen": "127.0.0.1:0"}, "http": {"listen": "127.0.0.1:0"}},
        "api": {"listen": "127.0.0.1:0"},
        "lake": {"flush_interval": "200ms"},
    }
    layer.update(overrides)
    return load_config(None, overrides=layer, environ={})


@pytest.fixture
def running(tmp_path: Path) -> Iterator[BackgroundServer]:
    with BackgroundServer(loopback_config(tmp_path / "data")) as server:
        yield server
