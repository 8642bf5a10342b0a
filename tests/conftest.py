"""Fixtures shared by every test package."""

from __future__ import annotations

import os

import pytest

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
