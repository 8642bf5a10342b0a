"""``otelcost report unattributed``: the SQL over real Parquet with DuckDB, and the command."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from otelcost.lake.layout import FILE_SUFFIX, table_dir
from otelcost.normalize import AttributionConfig, Normalizer
from otelcost.reports.period import parse_since
from otelcost.reports.unattributed import unattributed
from otelcost.schema import MONEY_TYPE, PRICING_COLUMN_NAMES, RECORD_SCHEMA
from tests.normalize.otlp_builders import NOW_NS, SpanSpec, merge, request

PRICE = Decimal("0.000123456789")
CALL = {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 1}


def _priced(calls: pa.Table, cost: Decimal) -> pa.Table:
    """Add the pricing columns as the pricer would, every call costing ``cost``."""
    n = calls.num_rows
    columns = {name: calls[name] for name in calls.column_names}
    for name in PRICING_COLUMN_NAMES:
        field = RECORD_SCHEMA.field(name)
        if field.type == MONEY_TYPE:
            columns[name] = pa.array([cost] * n, type=MONEY_TYPE)
        elif name == "pricing_status":
            columns[name] = pa.array(["priced"] * n)
        else:
            columns[name] = pa.array([None] * n, type=field.type)
    return pa.table({f.name: columns[f.name] for f in RECORD_SCHEMA}, schema=RECORD_SCHEMA)


def write_lake(lake: Path) -> None:
    """Real Parquet in the lake's layout (``llm_calls/date=YYYY-MM-DD/*.parquet``)."""
    normalizer = Normalizer(AttributionConfig(required=["team", "tenant_id"]))
    req = merge(
        request(
            [
                SpanSpec(CALL),
                SpanSpec({**CALL, "app.team": "a"}),
                SpanSpec({**CALL, "app.team": "a", "tenant.id": "t"}),
            ],
            resource={"service.name": "checkout"},
        ),
        request([SpanSpec({**CALL, "app.team": "b", "tenant.id": "t"})], resource={"service.name": "search"}),
        request([SpanSpec(CALL)], resource={}),
    )
    calls = normalizer.normalize(req, received_at_ns=NOW_NS).calls
    table = _priced(calls, PRICE)
    day = table["ts"][0].as_py().date()
    directory = table_dir(lake) / f"date={day.isoformat()}"
    directory.mkdir(parents=True)
    pq.write_table(table, directory / f"part-0{FILE_SUFFIX}")


def run_sql(lake: Path, since: datetime) -> list[dict[str, object]]:
    table: list[dict[str, object]] = unattributed(lake, since=since).to_pylist()
    return table


def test_sql_groups_incomplete_calls_by_service(tmp_path: Path) -> None:
    write_lake(tmp_path / "lake")
    rows = run_sql(tmp_path / "lake", datetime(2020, 1, 1, tzinfo=UTC))
    price = PRICE
    assert rows == [
        {
            "service": "checkout",
            "incomplete_calls": 2,
            "calls": 3,
            "incomplete_cost_usd": 2 * price,
            "cost_usd": 3 * price,
            "missing": "tenant_id (2), team (1)",
        },
        {
            "service": "(no service.name)",
            "incomplete_calls": 1,
            "calls": 1,
            "incomplete_cost_usd": price,
            "cost_usd": price,
            "missing": "team (1), tenant_id (1)",
        },
    ]
    assert run_sql(tmp_path / "lake", datetime(2030, 1, 1, tzinfo=UTC)) == []


def test_parse_since() -> None:
    now = datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert parse_since("7d", now=now) == datetime(2026, 1, 24, 12, tzinfo=UTC)
    assert parse_since("2h", now=now) == datetime(2026, 1, 31, 10, tzinfo=UTC)
    assert parse_since("2026-01-02") == datetime(2026, 1, 2, tzinfo=UTC)
    with pytest.raises(ValueError, match="expected a duration"):
        parse_since("yesterday")


def test_command_over_the_lake(tmp_path: Path) -> None:
    # The command group imports every command module, among them users of otelcost.cli.output.
    pytest.importorskip("otelcost.cli.output")
    from otelcost.cli.report import report  # noqa: PLC0415 - after that check

    write_lake(tmp_path / "data" / "lake")  # Config.lake_dir is <data_dir>/lake
    runner = CliRunner()
    args = ["unattributed", "--data-dir", str(tmp_path / "data"), "--since", "2020-01-01"]
    result = runner.invoke(report, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["report"] == "unattributed"
    rows = document["sections"]["services"]
    assert [(r["service"], r["incomplete_calls"], r["missing"]) for r in rows] == [
        ("checkout", 2, "tenant_id (2), team (1)"),
        ("(no service.name)", 1, "team (1), tenant_id (1)"),
    ]
    table = runner.invoke(report, args)
    assert table.exit_code == 0 and "checkout" in table.output and "tenant_id (2)" in table.output
    csv_out = runner.invoke(report, [*args, "--format", "csv"])
    assert (
        csv_out.output.splitlines()[0]
        == "service,incomplete_calls,calls,incomplete_cost_usd,cost_usd,missing"
    )
