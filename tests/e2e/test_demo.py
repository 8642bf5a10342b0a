"""``otelcost demo`` runs the whole pipeline through the real SDK and shows spend from the lake."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from otelcost.cli import main
from otelcost.demo import SERVICES
from otelcost.lake.query import run_query

pytestmark = pytest.mark.slow


def test_demo_lands_every_call_and_prints_spend(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--data-dir", str(tmp_path), "--calls", "400", "--seed", "3"])
    assert result.exit_code == 0, result.output
    for team in {service.team for service in SERVICES}:
        assert team in result.stdout
    assert "unknown_model" in result.stdout  # the in-house model is stored, visible, and unpriced

    totals = run_query(
        tmp_path / "lake",
        "SELECT count(*) AS calls, count(DISTINCT span_id) AS spans, sum(cost_usd) > 0 AS spent, "
        "count(*) FILTER (WHERE team IS NULL) AS unattributed FROM llm_calls",
    ).to_pylist()
    assert totals == [{"calls": 400, "spans": 400, "spent": True, "unattributed": 0}]
