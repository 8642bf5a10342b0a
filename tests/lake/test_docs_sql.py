"""Every query and command in docs/sql.md runs against a generated lake, so the page cannot rot.

The lake is written where the page says it is (``./otelcost-data/lake``, relative to the working
directory), with calls spread over the last 40 days and some today, so that "this month" and
"last 7 days" queries have rows whatever the date.
"""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from click.testing import CliRunner

from otelcost.cli import main
from otelcost.lake.publish import write_files
from otelcost.lake.query import run_query
from tests.lake.rows import make_calls

PAGE = Path(__file__).resolve().parents[2] / "docs" / "sql.md"
TEXT = PAGE.read_text(encoding="utf-8")
SQL_BLOCKS = re.findall(r"```sql\n(.*?)```", TEXT, flags=re.DOTALL)
SHELL_LINES = [
    line for block in re.findall(r"```sh\n(.*?)```", TEXT, flags=re.DOTALL) for line in block.splitlines()
]
VIEW_BLOCKS = [block for block in SQL_BLOCKS if block.lstrip().upper().startswith("CREATE VIEW")]
COOKBOOK = [block for block in SQL_BLOCKS if block not in VIEW_BLOCKS]


def _title(sql: str) -> str:
    return " ".join(sql.split())[:60]


@pytest.fixture(scope="module")
def lake_cwd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory holding ./otelcost-data/lake with recent calls."""
    cwd = tmp_path_factory.mktemp("analyst")
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    lake_dir = cwd / "otelcost-data" / "lake"
    write_files(
        lake_dir, make_calls(4_000, seed=21, start=now - timedelta(days=40), spread=timedelta(days=40))
    )
    write_files(
        lake_dir, make_calls(200, seed=22, start=midnight, spread=max(now - midnight, timedelta(seconds=1)))
    )
    return cwd


def test_the_page_has_the_promised_content() -> None:
    assert len(COOKBOOK) >= 10
    assert len(VIEW_BLOCKS) == 1
    assert any(line.startswith("duckdb -c ") for line in SHELL_LINES)
    assert any(line.startswith("otelcost sql ") for line in SHELL_LINES)


@pytest.mark.parametrize("sql", COOKBOOK, ids=_title)
def test_cookbook_query_runs_and_finds_rows(
    lake_cwd: Path, sql: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(lake_cwd)
    result = run_query(Path("otelcost-data/lake"), sql, timeout=30)
    assert result.num_rows > 0


def _rows(table: pa.Table) -> list[str]:
    return sorted(repr(sorted(row.items())) for row in table.to_pylist())


@pytest.mark.parametrize("sql", COOKBOOK, ids=_title)
def test_plain_duckdb_with_the_documented_view_gives_the_same_answers(
    lake_cwd: Path, sql: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(lake_cwd)
    plain = duckdb.connect()
    try:
        plain.execute("SET TimeZone = 'UTC'")
        plain.execute(VIEW_BLOCKS[0])
        relation = plain.sql(sql)
        assert relation is not None
        ours = run_query(Path("otelcost-data/lake"), sql)
        assert _rows(relation.to_arrow_table()) == _rows(ours)
    finally:
        plain.close()


def test_the_analyst_one_liners_work_with_plain_duckdb(
    lake_cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(lake_cwd)
    ran = 0
    for line in SHELL_LINES:
        if line.startswith("duckdb -c "):
            [_, _, sql] = shlex.split(line)
            rows = duckdb.connect().sql(sql).fetchall()
            assert len(rows) >= 5
            ran += 1
        elif line.startswith("python -c "):
            [_, _, code] = shlex.split(line)
            exec(code, {})
            assert "calls" in capsys.readouterr().out
            ran += 1
    assert ran == 2


def test_the_otelcost_sql_examples_run(lake_cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(lake_cwd)
    ran = 0
    for line in SHELL_LINES:
        stdin = None
        command = line
        if " | otelcost sql " in line:
            producer, command = line.split(" | ", 1)
            stdin = shlex.split(producer)[1] + "\n"
        if not command.startswith("otelcost sql "):
            continue
        args = shlex.split(command)[1:]
        result = CliRunner().invoke(main, args, input=stdin)
        assert result.exit_code == 0, f"{line}\n{result.output}"
        assert result.stdout.count("\n") >= 2, result.stdout
        ran += 1
    assert ran == 3


def test_the_python_example_runs(lake_cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(lake_cwd)
    [code] = re.findall(r"```python\n(.*?)```", TEXT, flags=re.DOTALL)
    namespace: dict[str, object] = {}
    exec(code, namespace)
    table = namespace["table"]
    assert isinstance(table, pa.Table) and table.num_rows >= 5
    connection = namespace["connection"]
    assert isinstance(connection, duckdb.DuckDBPyConnection)
    connection.close()
