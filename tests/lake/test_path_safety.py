"""Paths built from input stay where they belong: span values never name a file or directory.

The lake partitions by the UTC day of ``ts`` only (``date=YYYY-MM-DD``); no attribute value takes
part in a path. Chargeback statements and FOCUS export ledgers are named by a period label that
must match a strict pattern. These tests send spans with hostile values through a real server
and try hostile period labels on every path builder.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from otelcost.errors import ReportError, StatementError
from otelcost.export.ledger import ledger_dir
from otelcost.lake.layout import TABLE_NAMES
from otelcost.lake.query import run_query
from otelcost.reports import ReportRequest
from otelcost.reports.chargeback.store import period_dir
from tests.reports.traffic import Call, build_lake, day_start

pytestmark = pytest.mark.slow

HOSTILE = ("../../etc", "date=../", "/etc/passwd", "..", "date=2026-01-01/../../x", "..\\..\\win", "a/b")
_PARTITION = re.compile(r"^date=\d{4}-\d{2}-\d{2}$")


def test_hostile_span_values_end_up_inside_the_lake_only(tmp_path: Path) -> None:
    sandbox = tmp_path / "sandbox"
    data_dir = sandbox / "data"
    calls = [
        Call(
            ts=day_start(date(2026, 11, 2)) + timedelta(hours=index),
            service=value,
            team=value,
            feature=value,
            model="gpt-4o-mini",
            input_tokens=100,
            output_tokens=10,
            tenant=value,
            environment=value,
            attributes=(("date", value), ("app.partition", value)),
        )
        for index, value in enumerate(HOSTILE)
    ]
    config = build_lake(data_dir, calls)
    # Nothing was written beside the data directory ...
    assert sorted(path.name for path in sandbox.iterdir()) == ["data"]
    # ... and inside the lake every table directory holds day partitions only.
    lake_dir = config.lake_dir.resolve()
    for path in lake_dir.rglob("*"):
        assert path.resolve().is_relative_to(lake_dir), path
        assert not path.is_symlink(), path
    for table in TABLE_NAMES:
        directory = lake_dir / table
        if directory.exists():
            assert all(_PARTITION.match(child.name) for child in directory.iterdir()), list(
                directory.iterdir()
            )
    assert [p.name for p in (lake_dir / "llm_calls").iterdir()] == ["date=2026-11-02"]
    # The values are kept as data, exactly.
    rows = run_query(config.lake_dir, "SELECT team, service FROM llm_calls ORDER BY ts").to_pylist()
    assert [row["team"] for row in rows] == list(HOSTILE)
    assert [row["service"] for row in rows] == list(HOSTILE)


@pytest.mark.parametrize(
    "label", ["../../x", "..", "2026-11/../../x", "/etc", "2026-11\x00", "", ".hidden", "a b"]
)
def test_a_hostile_period_names_no_directory(label: str, tmp_path: Path) -> None:
    with pytest.raises(StatementError, match="is not a period"):
        period_dir(tmp_path, label)
    with pytest.raises(ReportError, match="cannot name a FOCUS export ledger directory"):
        ledger_dir(tmp_path, "1.2", "monthly", label)
    with pytest.raises(ReportError, match="cannot name a FOCUS export ledger directory"):
        ledger_dir(tmp_path, label, "monthly", "2026-11")
    assert list(tmp_path.iterdir()) == []


def test_a_hostile_period_is_refused_before_any_report_runs() -> None:
    for label in ("../../x", "2026-11/../../etc", "/etc/passwd"):
        with pytest.raises(ValueError, match="expected a period"):
            ReportRequest(period=label).resolved_period(datetime(2026, 12, 6, tzinfo=UTC))
