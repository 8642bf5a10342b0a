"""emit(): every output format, exact money, NULLs, timestamps, nested values."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import click
import pyarrow as pa
import pytest
from click.testing import CliRunner

from otelcost.cli.output import FORMATS, emit, output_options
from otelcost.schema import MONEY_TYPE


def render(table: pa.Table, fmt: str) -> str:
    out = io.StringIO()
    emit(table, fmt, file=out)
    return out.getvalue()


SAMPLE = pa.table(
    {
        "team": pa.array(["payments", None, "search"]),
        "calls": pa.array([12, 3, None], pa.int64()),
        "usd": pa.array([Decimal("0.00725"), Decimal("12.5"), None], MONEY_TYPE),
        "share": pa.array([0.5, float("nan"), 1 / 3]),
        "first": pa.array(
            [datetime(2026, 3, 14, 10, 15, 2, 123456, tzinfo=UTC), None, datetime(2026, 3, 14, tzinfo=UTC)],
            pa.timestamp("us", tz="UTC"),
        ),
        "day": pa.array([date(2026, 3, 14), None, date(2026, 3, 15)], pa.date32()),
        "attrs": pa.array([[("app.team", "payments")], None, []], pa.map_(pa.string(), pa.string())),
        "missing": pa.array([[], ["team"], None], pa.list_(pa.string())),
        "ok": pa.array([True, False, None]),
    }
)


def test_table_aligns_columns_and_shows_money_exactly() -> None:
    assert render(SAMPLE, "table").splitlines() == [
        "team      calls       usd               share  first                             day         "
        "attrs                     missing   ok",
        "--------  -----  --------  ------------------  --------------------------------  ----------  "
        "------------------------  --------  -----",
        "payments     12   0.00725                 0.5  2026-03-14T10:15:02.123456+00:00  2026-03-14  "
        '{"app.team": "payments"}  []        true',
        "NULL          3  12.50000                 NaN  NULL                              NULL        "
        'NULL                      ["team"]  false',
        "search     NULL      NULL  0.3333333333333333  2026-03-14T00:00:00+00:00         2026-03-15  "
        "{}                        NULL      NULL",
    ]


@pytest.mark.parametrize(
    ("values", "cells"),
    [
        (["1", "2.5"], ["1.00", "2.50"]),  # at least two decimals for money
        (["0.000000000001", "1"], ["0.000000000001", "1.000000000000"]),  # never rounded
        (["12345678901234567890123456.123456789012"], ["12345678901234567890123456.123456789012"]),
        (["-0.10", "0"], ["-0.10", "0.00"]),
    ],
)
def test_decimal_cells_are_exact_with_one_scale_per_column(values: list[str], cells: list[str]) -> None:
    table = pa.table({"usd": pa.array([Decimal(v) for v in values], MONEY_TYPE)})
    lines = render(table, "table").splitlines()[2:]
    assert [line.strip() for line in lines] == cells


def test_table_keeps_one_line_per_row() -> None:
    table = pa.table({"text": ["two\nlines"], "n": [1]})
    assert render(table, "table").splitlines()[2] == "two\\nlines  1"


def test_csv_uses_full_scale_decimals_empty_nulls_and_json_for_nested_values() -> None:
    assert render(SAMPLE, "csv") == (
        "team,calls,usd,share,first,day,attrs,missing,ok\n"
        "payments,12,0.007250000000,0.5,2026-03-14T10:15:02.123456+00:00,2026-03-14,"
        '"{""app.team"": ""payments""}",[],true\n'
        ',3,12.500000000000,NaN,,,,"[""team""]",false\n'
        "search,,,0.3333333333333333,2026-03-14T00:00:00+00:00,2026-03-15,{},,\n"
    )


def test_json_is_an_array_of_objects_with_exact_decimal_strings() -> None:
    rows = json.loads(render(SAMPLE, "json"))
    assert rows[0] == {
        "team": "payments",
        "calls": 12,
        "usd": "0.007250000000",
        "share": 0.5,
        "first": "2026-03-14T10:15:02.123456+00:00",
        "day": "2026-03-14",
        "attrs": {"app.team": "payments"},
        "missing": [],
        "ok": True,
    }
    assert rows[1]["share"] == "NaN" and rows[1]["team"] is None and rows[1]["attrs"] is None
    assert Decimal(rows[1]["usd"]) == Decimal("12.5")
    assert datetime.fromisoformat(rows[2]["first"]) == datetime(2026, 3, 14, tzinfo=UTC)


def test_jsonl_is_one_object_per_line() -> None:
    lines = render(SAMPLE, "jsonl").splitlines()
    assert len(lines) == 3
    assert [json.loads(line)["team"] for line in lines] == ["payments", None, "search"]


def test_many_rows_stream_in_batches() -> None:
    table = pa.table({"n": pa.array(range(25_000), pa.int64())})
    assert [row["n"] for row in json.loads(render(table, "json"))] == list(range(25_000))
    assert render(table, "jsonl").count("\n") == 25_000
    assert render(table, "csv").count("\n") == 25_001


@pytest.mark.parametrize(
    ("fmt", "text"), [("table", "n\n-\n"), ("csv", "n\n"), ("json", "[]\n"), ("jsonl", "")]
)
def test_no_rows(fmt: str, text: str) -> None:
    assert render(pa.table({"n": pa.array([], pa.int64())}), fmt) == text


def test_intervals_binary_and_infinities() -> None:
    table = pa.table(
        {
            "i": pa.array(
                [pa.MonthDayNano([0, 0, 5_400_000_000_000]), pa.MonthDayNano([14, 3, 1_250_000_000])],
                pa.month_day_nano_interval(),
            ),
            "b": pa.array([b"\x00\xff", None]),
            "f": pa.array([float("inf"), float("-inf")]),
        }
    )
    assert json.loads(render(table, "json")) == [
        {"i": "PT1H30M", "b": "00ff", "f": "Infinity"},
        {"i": "P1Y2M3DT1.25S", "b": None, "f": "-Infinity"},
    ]


def test_unknown_format_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="unknown output format 'xml'"):
        emit(SAMPLE, "xml")


def test_output_options_adds_the_shared_format_flag() -> None:
    @click.command()
    @output_options
    def rows(fmt: str) -> None:
        emit(pa.table({"x": [1]}), fmt)

    runner = CliRunner()
    assert runner.invoke(rows, ["-f", "csv"]).output == "x\n1\n"
    assert runner.invoke(rows, ["--format", "jsonl"]).output == '{"x": 1}\n'
    assert runner.invoke(rows, []).output == "x\n-\n1\n"
    bad = runner.invoke(rows, ["-f", "xml"])
    assert bad.exit_code == 2 and "table" in bad.output
    assert set(FORMATS) == {"table", "csv", "json", "jsonl"}
