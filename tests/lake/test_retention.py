"""Retention (otelcost/jobs/retention.py): whole days past lake.retention leave every lake table,
atomically for readers, under the lake lock; closed statements stay; `otelcost lake retention`
and the server's background schedule."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from otelcost.cli.lake import lake as lake_group
from otelcost.config import Config, LakeConfig, load_config, report_context
from otelcost.jobs.compact import Compactor
from otelcost.jobs.retention import PartitionDrop, apply_retention, cutoff_day, plan_retention
from otelcost.lake.config import CompactionConfig
from otelcost.lake.layout import (
    STAGING_DIR,
    TABLE_NAMES,
    list_partitions,
    partition_dir,
    staging_name,
    table_dir,
)
from otelcost.lake.query import run_query
from otelcost.lake.recovery import recover
from otelcost.lake.writer import LakeWriter
from otelcost.reports.chargeback import close_statement
from otelcost.server import BackgroundServer
from tests.e2e.conftest import loopback_config
from tests.lake.rows import make_calls
from tests.waiting import wait_until

# November 2026 and two days of December; with NOW and 20 days of retention, the cut is
# 2026-11-16 00:00 after subtracting 20d from 2026-12-06 00:00: days up to 2026-11-15 go.
DAYS = [date(2026, 11, 1) + timedelta(days=i) for i in range(30)] + [date(2026, 12, 1), date(2026, 12, 2)]
NOW = datetime(2026, 12, 6, tzinfo=UTC)
RETENTION = timedelta(days=20)
FIRST_KEPT = date(2026, 11, 16)
ROWS_PER_DAY = 20
FOLDED_DAY, CHANGED_DAY = date(2026, 11, 3), date(2026, 11, 20)


def _day_rows(day: date, seed: int) -> pa.Table:
    """A day of calls; on FOLDED_DAY two rows are folded spans, on CHANGED_DAY two are the
    before/after rows of an attribution change, so all three tables have partitions."""
    table = make_calls(ROWS_PER_DAY, day=day, seed=seed)
    if day == FOLDED_DAY:
        folded = pa.array([table["span_id"][0].as_py()] * 2 + [None] * (ROWS_PER_DAY - 2), pa.string())
        table = table.set_column(
            table.schema.get_field_index("duplicate_of_span_id"), "duplicate_of_span_id", folded
        )
    if day == CHANGED_DAY:
        change = pa.array(["before", "after"] + [None] * (ROWS_PER_DAY - 2), pa.string())
        table = table.set_column(
            table.schema.get_field_index("attribution_change"), "attribution_change", change
        )
    return table


def _write_lake(lake_dir: Path, days: list[date] = DAYS) -> None:
    """The real live writer, one flush per day, so each day has one file per table it touches."""
    writer = LakeWriter(lake_dir=lake_dir, config=LakeConfig(flush_interval=timedelta(hours=1)))
    writer.start()
    try:
        for seed, day in enumerate(days):
            writer.consume(_day_rows(day, seed))
            writer.flush()
    finally:
        writer.shutdown()


def _all_days(lake_dir: Path) -> dict[str, list[date]]:
    return {table: list_partitions(lake_dir, table=table) for table in TABLE_NAMES}


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data" / "lake"
    _write_lake(directory)
    return directory


def test_cutoff_is_the_first_day_not_wholly_older_than_now_minus_retention() -> None:
    assert cutoff_day(timedelta(days=1), datetime(2026, 12, 6, tzinfo=UTC)) == date(2026, 12, 5)
    # 2026-12-05 ends at 12-06 00:00, later than 12-05 23:59: still kept.
    assert cutoff_day(timedelta(days=1), datetime(2026, 12, 6, 23, 59, tzinfo=UTC)) == date(2026, 12, 5)
    assert cutoff_day(timedelta(days=1, hours=12), datetime(2026, 12, 6, 11, tzinfo=UTC)) == date(2026, 12, 4)
    # The clock's zone does not matter: 01:00 in UTC+2 is 23:00 UTC the day before.
    plus_two = datetime(2026, 12, 6, 1, tzinfo=timezone(timedelta(hours=2)))
    assert cutoff_day(timedelta(days=1), plus_two) == date(2026, 12, 4)
    with pytest.raises(ValueError, match="timezone-aware"):
        cutoff_day(timedelta(days=1), datetime(2026, 12, 6))


def test_dry_run_lists_the_old_days_of_every_table_and_changes_nothing(lake_dir: Path) -> None:
    before = _snapshot(lake_dir)
    plan = plan_retention(lake_dir, RETENTION, NOW)
    assert _snapshot(lake_dir) == before
    old = [d for d in DAYS if d < FIRST_KEPT]
    assert [(d.table, d.day) for d in plan.drops] == sorted(
        [("llm_calls", d) for d in old] + [("duplicate_spans", FOLDED_DAY)],
        key=lambda t: (t[1], t[0] != "llm_calls"),
    )
    for drop in plan.drops:
        files = sorted(partition_dir(lake_dir, drop.day, drop.table).glob("*.parquet"))
        assert drop.files == len(files) == 1
        assert drop.bytes == sum(f.stat().st_size for f in files) > 0
    assert plan.ignored == []


def test_apply_drops_exactly_the_old_days_and_duckdb_sees_only_the_kept_ones(lake_dir: Path) -> None:
    sql = "SELECT date, count(*) AS n FROM llm_calls GROUP BY date ORDER BY date"
    before = run_query(lake_dir, sql)
    plan = apply_retention(lake_dir, RETENTION, NOW)

    assert len(plan.drops) == len([d for d in DAYS if d < FIRST_KEPT]) + 1  # + the folded spans' day
    assert _all_days(lake_dir) == {
        "llm_calls": [d for d in DAYS if d >= FIRST_KEPT],
        "duplicate_spans": [],
        "attribution_changes": [CHANGED_DAY],  # younger than the cut: kept
    }
    after = run_query(lake_dir, sql)
    kept = before.filter(pc.greater_equal(before["date"], pa.scalar(FIRST_KEPT)))
    assert after.equals(kept) and after.num_rows == len(DAYS) - 15
    assert run_query(lake_dir, "SELECT count(*) AS n FROM duplicate_spans")["n"][0].as_py() == 0
    assert run_query(lake_dir, "SELECT count(*) AS n FROM attribution_changes")["n"][0].as_py() == 2
    assert not any((lake_dir / STAGING_DIR).iterdir())  # nothing left behind
    assert apply_retention(lake_dir, RETENTION, NOW).drops == []  # idempotent


def test_a_reader_never_sees_half_a_partition(lake_dir: Path) -> None:
    """After the rename step (before any file is deleted) the day is wholly gone from the glob
    and from DuckDB, and its files are whole in .staging/ (where recover() clears them)."""
    seen: list[tuple[PartitionDrop, int, int, int]] = []

    def after_rename(drop: PartitionDrop) -> None:
        in_glob = len(list(table_dir(lake_dir, drop.table).glob(f"date={drop.day}/*.parquet")))
        retired = [p for p in (lake_dir / STAGING_DIR).glob(f"date={drop.day}.drop-{drop.table}-*/*.parquet")]
        rows = run_query(lake_dir, f"SELECT count(*) AS n FROM {drop.table} WHERE date = DATE '{drop.day}'")[
            "n"
        ][0].as_py()
        seen.append((drop, in_glob, len(retired), rows))

    apply_retention(lake_dir, RETENTION, NOW, on_renamed=after_rename)
    assert len(seen) == 16
    assert all(in_glob == 0 and retired == drop.files and rows == 0 for drop, in_glob, retired, rows in seen)


def test_a_failure_after_a_rename_finishes_that_day_and_a_kill_is_cleared_by_recover(lake_dir: Path) -> None:
    class CrashError(Exception):
        pass

    def crash(drop: PartitionDrop) -> None:
        raise CrashError

    with pytest.raises(CrashError):
        apply_retention(lake_dir, RETENTION, NOW, on_renamed=crash)
    assert list_partitions(lake_dir)[0] == DAYS[1]  # the first day went whole, the others stayed
    assert not any((lake_dir / STAGING_DIR).iterdir())

    # What a kill between the rename and the delete leaves behind: recover() deletes it and
    # does not mistake it for half of a swap to put back.
    leftover = lake_dir / STAGING_DIR / staging_name(DAYS[1], "drop", "llm_calls-0123456789ab")
    os.rename(partition_dir(lake_dir, DAYS[1]), leftover)
    recover(lake_dir)
    assert not leftover.exists() and not any((lake_dir / STAGING_DIR).iterdir())
    assert list_partitions(lake_dir)[0] == DAYS[2]
    apply_retention(lake_dir, RETENTION, NOW)
    assert list_partitions(lake_dir)[0] == FIRST_KEPT


def test_a_directory_not_named_like_a_day_is_left_alone_and_reported(lake_dir: Path) -> None:
    odd = table_dir(lake_dir) / "date=2020-13-45"
    odd.mkdir()
    (odd / "notes.txt").write_text("keep me", encoding="utf-8")
    plan = apply_retention(lake_dir, RETENTION, NOW)
    assert plan.ignored == [odd]
    assert (odd / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_closed_statements_stay_byte_identical_while_their_days_go(tmp_path: Path) -> None:
    config = load_config(None, overrides={"data_dir": str(tmp_path / "data")}, environ={})
    _write_lake(config.lake_dir)
    context = replace(report_context(config), now=lambda: NOW)
    info = close_statement(context, "2026-11")
    assert info.written
    statements = config.statements_dir
    assert statements is not None and statements.is_relative_to(config.data_dir)
    closed = _snapshot(statements)
    assert any(name.endswith("statement.parquet") for name in closed)

    # Sixty days later, all of November is past a 20-day retention.
    plan = apply_retention(config.lake_dir, RETENTION, NOW + timedelta(days=40))
    assert {d.day for d in plan.drops} >= set(DAYS[:30])
    assert list_partitions(config.lake_dir) == []
    assert _snapshot(statements) == closed


def test_cli_dry_run_then_apply_as_json(tmp_path: Path, lake_dir: Path) -> None:
    data_dir = lake_dir.parent
    runner = CliRunner()
    # The real clock: every day of the fixture is older than 3 days once it is 2026-12-06 or later.
    retention = (datetime.now(UTC).date() - FIRST_KEPT).days
    assert retention >= 1
    common = ["--data-dir", str(data_dir), "--retention", f"{retention}d", "-f", "json"]

    before = _snapshot(lake_dir)
    dry = runner.invoke(lake_group, ["retention", "--dry-run", *common], catch_exceptions=False)
    assert dry.exit_code == 0, dry.output
    rows = json.loads(dry.output)
    assert {r["action"] for r in rows} == {"would drop"} and len(rows) == 16
    assert rows[0] == {
        "table": "llm_calls",
        "date": "2026-11-01",
        "files": 1,
        "bytes": rows[0]["bytes"],
        "action": "would drop",
    }
    assert _snapshot(lake_dir) == before

    done = runner.invoke(lake_group, ["retention", *common], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert [r["date"] for r in json.loads(done.output)] == [r["date"] for r in rows]
    assert {r["action"] for r in json.loads(done.output)} == {"dropped"}
    assert list_partitions(lake_dir)[0] == FIRST_KEPT

    text = runner.invoke(
        lake_group, ["retention", "--data-dir", str(data_dir), "--retention", f"{retention}d"]
    )
    assert text.exit_code == 0 and "No partition is older than the retention." in text.output

    unset = runner.invoke(lake_group, ["retention", "--data-dir", str(data_dir)])
    assert unset.exit_code == 2 and "lake.retention is not set" in unset.output
    bad = runner.invoke(lake_group, ["retention", "--data-dir", str(data_dir), "--retention", "12h"])
    assert bad.exit_code == 2 and "at least 1d" in bad.output


@pytest.mark.parametrize(
    ("value", "message"), [("12h", "at least 1d"), ("0s", "at least 1d"), ("soon", "duration")]
)
def test_config_validation(value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LakeConfig.model_validate({"retention": value})


def test_config_default_keeps_forever_and_400d_parses() -> None:
    assert Config().lake.retention is None
    assert LakeConfig.model_validate({"retention": "400d"}).retention == timedelta(days=400)


def test_the_background_thread_drops_on_compactions_schedule(tmp_path: Path) -> None:
    compactor = Compactor(
        lake_dir=tmp_path / "lake",
        config=CompactionConfig(enabled=False, interval=timedelta(milliseconds=50)),
        retention=RETENTION,
        clock=lambda: NOW,
    )
    _write_lake(compactor.lake_dir)
    compactor.start()
    try:
        wait_until(lambda: compactor.partitions_dropped == 16, timeout=10, what="16 partitions dropped")
    finally:
        compactor.stop()
    assert list_partitions(compactor.lake_dir)[0] == FIRST_KEPT
    assert compactor.runs == 0  # compaction itself is off: only retention ran


def test_serve_runs_retention_in_the_background(tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    old, recent = today - timedelta(days=45), today - timedelta(days=2)
    config = loopback_config(
        tmp_path / "data",
        lake={"flush_interval": "200ms", "retention": "30d", "compaction": {"interval": "100ms"}},
    )
    _write_lake(config.lake_dir, [old, recent])
    with BackgroundServer(config) as running:
        compactor = running.server.compactor
        wait_until(
            lambda: compactor.partitions_dropped == 1, timeout=20, poll=0.05, what="the old day dropped"
        )
        assert list_partitions(config.lake_dir) == [recent]
        assert compactor.errors == 0
