"""``otelcost budgets status`` from a configuration file and a real lake, no server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from otelcost.cli import main
from tests.budgets.lake import land
from tests.budgets.rows import calls

CONFIG = """
budgets:
  - name: team-monthly
    scope: {team: "*"}
    window: month
    limit: 100
    thresholds: [{at: 0.8, action: notify}, {at: 1.0, action: block}]
  - name: tokens
    scope: {workflow: "*"}
    window: 1h
    metric: total_tokens
    limit: 1000
"""


def test_status_lists_every_instance(tmp_path: Path) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    data_dir = tmp_path / "data"
    now = datetime.now(UTC)
    recent = now - timedelta(seconds=1)  # inside this month's window unless run in its first second
    land(
        data_dir / "lake",
        calls(3, at=recent, cost="30", team="ml", workflow="agent", input_tokens=100, output_tokens=50),
        calls(1, at=recent, cost="12.5", team="search"),
    )
    result = CliRunner().invoke(
        main, ["budgets", "status", "-c", str(config), "--data-dir", str(data_dir), "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = {(r["budget"], r["scope"]): r for r in json.loads(result.output)}
    ml = rows[("team-monthly", "team=ml")]
    assert ml["spent"].startswith("90.") and ml["limit"].startswith("100.") and ml["percent"] == 90.0
    assert ml["action"] == "notify" and ml["calls"] == 3 and ml["unpriced_calls"] == 0
    search = rows[("team-monthly", "team=search")]
    assert search["action"] == "allow" and "projected_exhaustion" in search  # value depends on today
    tokens = rows[("tokens", "workflow=agent")]
    assert tokens["window"] == "rolling 1h" and tokens["projected_exhaustion"] is None
    assert tokens["spent"].startswith("450")
    table = CliRunner().invoke(main, ["budgets", "status", "-c", str(config), "--data-dir", str(data_dir)])
    assert table.exit_code == 0 and "team-monthly" in table.output and "team=ml" in table.output
    over = CliRunner().invoke(
        main,
        ["budgets", "status", "-c", str(config), "--data-dir", str(data_dir), "--over", "80", "-f", "json"],
    )
    assert [r["scope"] for r in json.loads(over.output)] == ["team=ml"]


def test_status_without_spend(tmp_path: Path) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    result = CliRunner().invoke(
        main, ["budgets", "status", "-c", str(config), "--data-dir", str(tmp_path / "d")]
    )
    assert result.exit_code == 0 and "No budget instance has spend" in result.output
