"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_run import RedisServer

# litellm fetches its model price map from GitHub when first imported, retrying for seconds when
# there is no network (tests/test_errors.py imports every otelcost module, the LiteLLM hook too);
# its bundled copy is enough for the tests.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's OTELCOST_* variables from changing what the tests load."""
    for name in list(os.environ):
        if name.startswith("OTELCOST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own (tests/redis_run.py), stopped after the test."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()
