"""The llm_calls view and run_query: types, empty lakes, schema evolution, limits, safety."""

from __future__ import annotations

import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from otelcost.errors import LakeError
from otelcost.lake import query
from otelcost.lake.layout import partition_dir
from otelcost.lake.publish import write_files
from otelcost.lake.query import connect, duckdb_type, lake_glob, run_query
from otelcost.money import pico_to_decimal_array
from otelcost.schema import PARTITION_COLUMN, RECORD_SCHEMA
from tests.lake.rows import DEFAULT_DAY, make_calls

EXPECTED_COLUMNS = [*RECORD_SCHEMA.names, PARTITION_COLUMN]


def describe(lake_dir: Path) -> list[tuple[str, str]]:
    connection = connect(lake_dir)
    try:
        return [(name, kind) for name, kind, *_ in connection.sql("DESCRIBE llm_calls").fetchall()]
    finally:
        connection.close()


def test_the_view_has_the_contract_types(lake_dir: Path) -> None:
    write_files(lake_dir, make_calls(20))
    types = dict(describe(lake_dir))
    assert list(types) == EXPECTED_COLUMNS
    assert types["ts"] == types["received_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["cost_usd"] == types["effective_cost_usd"] == "DECIMAL(38,12)"
    assert types["attributes"] == types["resource_attributes"] == "MAP(VARCHAR, VARCHAR)"
    assert types["missing_dimensions"] == "VARCHAR[]"
    assert types["input_tokens"] == "BIGINT"
    assert types["duration_ms"] == "DOUBLE"
    assert types[PARTITION_COLUMN] == "DATE"


@pytest.mark.parametrize("state", ["missing", "empty directory"])
def test_an_empty_lake_has_the_same_view_with_no_rows(tmp_path: Path, lake_dir: Path, state: str) -> None:
    full = tmp_path / "full"
    write_files(full, make_calls(5))
    if state == "empty directory":
        (lake_dir / "llm_calls" / "date=2026-03-14").mkdir(parents=True)
    assert describe(lake_dir) == describe(full)
    result = run_query(lake_dir, "SELECT * FROM llm_calls")
    assert result.num_rows == 0
    assert result.schema.equals(run_query(full, "SELECT * FROM llm_calls LIMIT 0").schema)
    totals = run_query(lake_dir, "SELECT count(*) AS n, sum(cost_usd) AS usd FROM llm_calls")
    assert totals.to_pylist() == [{"n": 0, "usd": None}]


def test_duckdb_type_covers_every_record_column() -> None:
    assert [duckdb_type(f.type) for f in RECORD_SCHEMA][:3] == ["TIMESTAMPTZ", "TIMESTAMPTZ", "DOUBLE"]
    with pytest.raises(TypeError, match="no DuckDB type"):
        duckdb_type(pa.float16())


def test_older_files_without_a_newer_column_still_read(lake_dir: Path) -> None:
    old = make_calls(10, seed=1).drop_columns(["convention", "missing_dimensions"])
    directory = partition_dir(lake_dir, DEFAULT_DAY)
    directory.mkdir(parents=True)
    pq.write_table(old, directory / "part-20260314T000000000000Z-aaaaaaaaaaaa.parquet")

    only_old = run_query(lake_dir, "SELECT convention, missing_dimensions, team FROM llm_calls")
    assert only_old["convention"].to_pylist() == [None] * 10
    assert only_old.schema.field("missing_dimensions").type == pa.list_(pa.string())
    assert only_old["team"].to_pylist() == old["team"].to_pylist()

    write_files(lake_dir, make_calls(5, seed=2))
    mixed = run_query(
        lake_dir, "SELECT convention, count(*) AS n FROM llm_calls GROUP BY 1 ORDER BY 1 NULLS FIRST"
    )
    assert mixed.to_pylist() == [{"convention": None, "n": 10}, {"convention": "gen_ai", "n": 5}]


def test_columns_from_a_newer_version_show_up_after_the_known_ones(lake_dir: Path) -> None:
    newer = make_calls(3).append_column("carbon_grams", pa.array([0.5, 1.5, 2.5]))
    directory = partition_dir(lake_dir, DEFAULT_DAY)
    directory.mkdir(parents=True)
    pq.write_table(newer, directory / "part-20260314T000000000000Z-bbbbbbbbbbbb.parquet")
    assert [name for name, _ in describe(lake_dir)] == [*EXPECTED_COLUMNS, "carbon_grams"]
    assert run_query(lake_dir, "SELECT sum(carbon_grams) AS g FROM llm_calls")["g"][0].as_py() == 4.5


def test_money_sums_are_exact(lake_dir: Path) -> None:
    """100,000 calls of 0.0000015 USD: exactly 0.15, which no binary float sum gives."""
    calls = pa.concat_tables([make_calls(1_000, seed=4)] * 100)
    each = pico_to_decimal_array(np.full(calls.num_rows, 1_500_000, dtype=np.int64))  # 1.5e-6 USD
    calls = calls.set_column(calls.schema.get_field_index("cost_usd"), RECORD_SCHEMA.field("cost_usd"), each)
    write_files(lake_dir, calls)
    result = run_query(
        lake_dir, "SELECT sum(cost_usd) AS exact, sum(cost_usd::DOUBLE) AS approx FROM llm_calls"
    )
    assert result.schema.field("exact").type == pa.decimal128(38, 12)
    assert result["exact"][0].as_py() == Decimal("0.15")
    assert result["approx"][0].as_py() != 0.15  # what float money would have reported


def test_sums_by_team_match_the_rows_to_the_picodollar(lake_dir: Path) -> None:
    calls = make_calls(3_000, seed=5)
    write_files(lake_dir, calls)
    expected: dict[str | None, Decimal] = {}
    for team, cost in zip(calls["team"].to_pylist(), calls["cost_usd"].to_pylist(), strict=True):
        expected[team] = expected.get(team, Decimal(0)) + cost
    result = run_query(lake_dir, "SELECT team, sum(cost_usd) AS usd FROM llm_calls GROUP BY team")
    assert {row["team"]: row["usd"] for row in result.to_pylist()} == expected


def test_named_parameters_bind_strings_that_duckdb_casts(lake_dir: Path) -> None:
    write_files(lake_dir, make_calls(500, seed=6))
    result = run_query(
        lake_dir,
        "SELECT count(*) AS n FROM llm_calls "
        "WHERE team = $team AND ts >= $since AND date = $day LIMIT $limit",
        {"team": "payments", "since": "2026-03-14 12:00:00+00", "day": "2026-03-14", "limit": "5"},
    )
    expected = run_query(
        lake_dir,
        "SELECT count(*) AS n FROM llm_calls "
        "WHERE team = 'payments' AND ts >= TIMESTAMPTZ '2026-03-14 12:00:00+00'",
    )
    assert result.to_pylist() == expected.to_pylist()
    assert 0 < result["n"][0].as_py() < 500


@pytest.mark.parametrize(
    ("sql", "params", "message"),
    [
        ("SELECT $team", None, "Values were not provided for the following parameters: team"),
        ("SELECT $team", {"team": "a", "extra": "b"}, "excess parameters: extra"),
        ("SELECT 1", {"team": "a"}, "the query has no $parameters, but values were given for: team"),
        ("SELEC 1", None, 'syntax error at or near "SELEC"'),
        ("SELECT nope FROM llm_calls", None, 'Referenced column "nope" not found'),
        ("", None, "no SQL statement given"),
    ],
)
def test_errors_carry_duckdbs_message(
    lake_dir: Path, sql: str, params: dict[str, object] | None, message: str
) -> None:
    with pytest.raises(LakeError) as caught:
        run_query(lake_dir, sql, params)
    assert message in str(caught.value)
    assert caught.value.__cause__ is None or isinstance(caught.value.__cause__, duckdb.Error)


def test_a_slow_query_is_interrupted_at_the_time_limit(lake_dir: Path) -> None:
    started = time.monotonic()
    with pytest.raises(LakeError, match=r"query exceeded the 0\.2 s time limit"):
        run_query(lake_dir, "SELECT count(*) FROM range(1000000000000) a, range(10) b", timeout=0.2)
    assert time.monotonic() - started < 5
    # ... also in a script, whatever statement is running when time is up
    with pytest.raises(LakeError, match="time limit"):
        run_query(lake_dir, "SELECT 1; SELECT sum(range) FROM range(1000000000000)", timeout=0.2)
    assert run_query(lake_dir, "SELECT 42 AS x", timeout=5)["x"].to_pylist() == [42]


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "COPY (SELECT 1) TO '{lake}/llm_calls/date=2026-03-14/evil.parquet'",
            "COPY statements are not allowed",
        ),
        ("SELECT 1; COPY (SELECT 1) TO '{lake}/x.csv'", "COPY statements are not allowed"),
        ("EXPORT DATABASE '{lake}/export'", "EXPORT statements are not allowed"),
        ("ATTACH '{lake}/x.duckdb'", "ATTACH statements are not allowed"),
        ("INSTALL httpfs", "LOAD statements are not allowed"),
        ("SELECT * FROM read_csv('/etc/passwd')", "file system operations are disabled"),
        ("SELECT * FROM read_text('/etc/hostname')", "file system operations are disabled"),
        ("SET enable_external_access = true", "the configuration has been locked"),
    ],
)
def test_the_lake_is_read_only_and_nothing_else_is_reachable(lake_dir: Path, sql: str, message: str) -> None:
    write_files(lake_dir, make_calls(3))
    before = sorted(p.relative_to(lake_dir) for p in lake_dir.rglob("*"))
    with pytest.raises(LakeError, match=message):
        run_query(lake_dir, sql.format(lake=lake_dir.resolve()))
    assert sorted(p.relative_to(lake_dir) for p in lake_dir.rglob("*")) == before


def test_scratch_tables_in_memory_are_allowed(lake_dir: Path) -> None:
    write_files(lake_dir, make_calls(30))
    result = run_query(
        lake_dir,
        "CREATE TEMP TABLE t AS SELECT team, cost_usd FROM llm_calls; "
        "SET VARIABLE floor = 0.01; "
        "SELECT count(*) AS n FROM t WHERE cost_usd > getvariable('floor')",
    )
    assert result["n"][0].as_py() > 0


def test_a_statement_without_rows_gives_an_empty_table(lake_dir: Path) -> None:
    assert run_query(lake_dir, "CREATE TABLE t (x INTEGER)").num_columns in (0, 1)


def test_timestamps_come_back_in_utc(lake_dir: Path) -> None:
    calls = make_calls(3)
    write_files(lake_dir, calls)
    result = run_query(lake_dir, "SELECT min(ts) AS first, min(date) AS day FROM llm_calls")
    assert result.schema.field("first").type == pa.timestamp("us", tz="UTC")
    first = result["first"][0].as_py()
    assert isinstance(first, datetime)
    offset = first.utcoffset()
    assert offset is not None and offset.total_seconds() == 0
    assert first == min(calls["ts"].to_pylist())
    assert result["day"][0].as_py() == date(2026, 3, 14)


def test_a_lake_path_with_quotes_and_spaces(tmp_path: Path) -> None:
    lake_dir = tmp_path / "it's a lake" / "lake"
    write_files(lake_dir, make_calls(4))
    assert run_query(lake_dir, "SELECT count(*) AS n FROM llm_calls")["n"].to_pylist() == [4]
    assert "it's a lake" in lake_glob(lake_dir)


def test_a_query_that_trips_over_a_replaced_file_is_run_again(
    lake_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_files(lake_dir, make_calls(6))
    gone = partition_dir(lake_dir.resolve(), DEFAULT_DAY) / "part-gone.parquet"
    with pytest.raises(duckdb.IOException) as real:  # the error DuckDB gives for a vanished file
        duckdb.execute(f"SELECT * FROM read_parquet('{gone}')").fetchall()
    assert query._is_vanished_file(real.value, lake_dir.resolve())

    real_check = query._check_statements
    calls: list[int] = []

    def vanish_once(connection: duckdb.DuckDBPyConnection, sql: str) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise real.value
        real_check(connection, sql)

    monkeypatch.setattr(query, "_check_statements", vanish_once)
    assert run_query(lake_dir, "SELECT count(*) AS n FROM llm_calls")["n"].to_pylist() == [6]
    assert len(calls) == 2


def test_a_query_that_keeps_failing_over_vanished_files_gives_up(
    lake_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_files(lake_dir, make_calls(2))
    gone = partition_dir(lake_dir.resolve(), DEFAULT_DAY) / "part-gone.parquet"
    with pytest.raises(duckdb.IOException) as real:
        duckdb.execute(f"SELECT * FROM read_parquet('{gone}')").fetchall()

    def always_vanished(connection: duckdb.DuckDBPyConnection, sql: str) -> None:
        raise real.value

    monkeypatch.setattr(query, "_check_statements", always_vanished)
    with pytest.raises(LakeError, match="No files found that match"):
        run_query(lake_dir, "SELECT 1")
