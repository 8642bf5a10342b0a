"""Fixtures shared by every test package."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's OTELCOST_* variables from changing what the tests load."""
    for name in list(os.environ):
        if name.startswith("OTELCOST_"):
            monkeypatch.delenv(name)
