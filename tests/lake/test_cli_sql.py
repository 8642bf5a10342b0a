"""``otelcost sql`` through click's CliRunner, over a lake written by the real writer."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from otelcost.cli import main
from otelcost.config import LakeConfig
from otelcost.lake.writer import LakeWriter
from tests.lake.rows import make_calls

SPEND_BY_TEAM = (
    "SELECT team, count(*) AS calls, sum(cost_usd) AS usd FROM llm_calls GROUP BY 1 ORDER BY usd DESC"
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("data")
    writer = LakeWriter(lake_dir=data / "lake", config=LakeConfig())
    writer.start()
    writer.consume(make_calls(800, seed=11))
    writer.shutdown()
    return data


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["sql", *args], input=input, env=env)


def expected_spend(data_dir: Path) -> dict[str | None, Decimal]:
    calls = make_calls(800, seed=11)
    totals: dict[str | None, Decimal] = {}
    for team, cost in zip(calls["team"].to_pylist(), calls["cost_usd"].to_pylist(), strict=True):
        totals[team] = totals.get(team, Decimal(0)) + cost
    return totals


def test_table_output(data_dir: Path) -> None:
    result = run("--data-dir", str(data_dir), SPEND_BY_TEAM)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["team", "calls", "usd"]
    assert set(lines[1]) == {"-", " "}
    assert len(lines) == 2 + len(expected_spend(data_dir))
    assert any(line.startswith("NULL ") for line in lines[2:])  # the team-less legacy service
    widths = {len(line) for line in lines[:2]}
    assert len(widths) == 1


def test_json_output_is_exact(data_dir: Path) -> None:
    result = run("--data-dir", str(data_dir), "-f", "json", SPEND_BY_TEAM)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {row["team"]: Decimal(row["usd"]) for row in rows} == expected_spend(data_dir)
    assert all(isinstance(row["calls"], int) for row in rows)


def test_jsonl_and_csv_output(data_dir: Path) -> None:
    jsonl = run("--data-dir", str(data_dir), "--format", "jsonl", SPEND_BY_TEAM)
    assert jsonl.exit_code == 0, jsonl.output
    from_jsonl = [json.loads(line) for line in jsonl.stdout.splitlines()]
    as_csv = run("--data-dir", str(data_dir), "-f", "csv", SPEND_BY_TEAM)
    assert as_csv.exit_code == 0, as_csv.output
    from_csv = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["usd"] for r in from_csv] == [r["usd"] for r in from_jsonl]
    assert [r["team"] or None for r in from_csv] == [r["team"] for r in from_jsonl]


def test_sql_from_stdin(data_dir: Path) -> None:
    result = run(
        "--data-dir", str(data_dir), "-f", "jsonl", "-", input="SELECT count(*) AS n\nFROM llm_calls;\n"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"n": 800}


def test_named_parameters(data_dir: Path) -> None:
    result = run(
        "--data-dir",
        str(data_dir),
        "-f",
        "json",
        "-p",
        "team=payments",
        "--param",
        "$since=2026-03-14 12:00:00+00",
        "SELECT count(*) AS n FROM llm_calls WHERE team = $team AND ts >= $since",
    )
    assert result.exit_code == 0, result.output
    calls = make_calls(800, seed=11).to_pylist()
    expected = sum(1 for c in calls if c["team"] == "payments" and c["ts"].hour >= 12)
    assert json.loads(result.stdout) == [{"n": expected}]


def test_a_malformed_parameter_is_a_usage_error(data_dir: Path) -> None:
    result = run("--data-dir", str(data_dir), "-p", "team", "SELECT 1")
    assert result.exit_code == 2
    assert "expected NAME=VALUE, got 'team'" in result.output


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELEC team FROM llm_calls", 'Error: Parser Error: syntax error at or near "SELEC"'),
        ("SELECT nope FROM llm_calls", 'Error: Binder Error: Referenced column "nope" not found'),
        ("COPY llm_calls TO 'out.csv'", "Error: COPY statements are not allowed here: the lake is read-only"),
    ],
)
def test_a_bad_query_is_one_line_and_a_non_zero_exit(data_dir: Path, sql: str, message: str) -> None:
    result = run("--data-dir", str(data_dir), sql)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_the_time_limit(data_dir: Path) -> None:
    result = run("--data-dir", str(data_dir), "--timeout", "0.2", "SELECT count(*) FROM range(1000000000000)")
    assert result.exit_code == 1
    assert result.stderr == "Error: query exceeded the 0.2 s time limit\n"


def test_data_dir_from_the_environment_and_flag_over_config(data_dir: Path, tmp_path: Path) -> None:
    from_env = run(
        "-f", "jsonl", "SELECT count(*) AS n FROM llm_calls", env={"OTELCOST_DATA_DIR": str(data_dir)}
    )
    assert from_env.exit_code == 0, from_env.output
    assert json.loads(from_env.stdout) == {"n": 800}

    config = tmp_path / "otelcost.yaml"
    config.write_text(f"data_dir: {tmp_path / 'elsewhere'}\n")
    from_config = run("-c", str(config), "-f", "jsonl", "SELECT count(*) AS n FROM llm_calls")
    assert json.loads(from_config.stdout) == {"n": 0}
    assert "warning: there is no lake at" in from_config.stderr
    flag_wins = run(
        "-c", str(config), "--data-dir", str(data_dir), "-f", "jsonl", "SELECT count(*) AS n FROM llm_calls"
    )
    assert json.loads(flag_wins.stdout) == {"n": 800}


def test_no_lake_yet_is_an_empty_view_and_a_warning(tmp_path: Path) -> None:
    result = run(
        "--data-dir", str(tmp_path / "nothing"), "-f", "json", "SELECT team, cost_usd FROM llm_calls"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "[]\n"
    assert "no lake at" in result.stderr
