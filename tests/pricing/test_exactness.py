"""Money stays exact from the price sheet to a SQL sum over the lake.

The issue's yardstick: 10^9 calls at 1.5e-6 USD each must sum to exactly 1500 USD in the lake.
What is shown here, honestly:

* the pricer turns "1.5 USD per 1M tokens" x 1 token into exactly 1,500,000 picodollars
  (0.0000015 USD) per row, as DECIMAL(38, 12);
* one million such rows, written to the lake as real Parquet by ``otelcost.lake.publish`` and
  summed by DuckDB through the ``llm_calls`` view, give exactly 1.500000000000 — where binary
  floating point already drifts (``sum([1.5e-6] * 10**6) == 1.4999999999887617``);
* (slow) DuckDB sums those rows cross-joined with ``range(1000)`` — an actual aggregate over
  10^9 rows — to exactly 1500.000000000000. DECIMAL(38, 12) sums are 128-bit integer sums, so
  nothing can overflow before 1.7e26 USD.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from otelcost.lake.locking import lake_lock
from otelcost.lake.publish import write_files
from otelcost.lake.query import run_query
from otelcost.pricing import Catalog, Pricer, PricingConfig
from otelcost.schema import CALL_SCHEMA
from tests.pricing.calls import DEFAULTS, at

ROWS = 1_000_000


@pytest.fixture(scope="module")
def lake_with_a_million_calls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("exact")
    catalog_file = root / "catalog.yaml"
    catalog_file.write_text(
        "provider: acme\nmodels:\n  - id: one-and-a-half\n"
        '    versions:\n      - prices: {input: "1.5", output: "0"}\n',
        encoding="utf-8",
    )
    config = PricingConfig(shipped_catalog=False, catalogs=[catalog_file])
    pricer = Pricer(Catalog.load(config), config)
    ts = at("2026-11-21T12:00")
    columns = {}
    for field in CALL_SCHEMA:
        value = {
            "ts": ts,
            "trace_id": "a" * 32,
            "span_id": "b" * 16,
            "provider": "acme",
            "request_model": "one-and-a-half",
            "input_tokens": 1,
        }.get(field.name, DEFAULTS.get(field.name))
        columns[field.name] = pa.repeat(pa.scalar(value, type=field.type), ROWS)
    calls = pa.Table.from_pydict(columns, schema=CALL_SCHEMA)
    priced = pricer.price(calls)
    assert priced["cost_usd"][0].as_py() == Decimal("0.0000015")
    lake = root / "lake"
    with lake_lock(lake, shared=True):
        write_files(lake, priced)
    return lake


def test_a_million_calls_sum_exactly_in_duckdb(lake_with_a_million_calls: Path) -> None:
    table = run_query(
        lake_with_a_million_calls,
        "SELECT count(*) AS calls, sum(cost_usd) AS usd, sum(effective_cost_usd) AS eff FROM llm_calls",
    )
    row = table.to_pylist()[0]
    assert row["calls"] == ROWS
    assert row["usd"] == Decimal("1.500000000000")
    assert row["eff"] == Decimal("1.500000000000")
    assert sum([1.5e-6] * ROWS) != 1.5  # what a float column would have stored


@pytest.mark.slow
def test_a_billion_calls_sum_to_exactly_1500_usd(lake_with_a_million_calls: Path) -> None:
    table = run_query(
        lake_with_a_million_calls,
        "SELECT count(*) AS calls, sum(c.cost_usd) AS usd FROM llm_calls AS c, range(1000)",
        timeout=300,
    )
    row = table.to_pylist()[0]
    assert row["calls"] == 10**9
    assert row["usd"] == Decimal("1500.000000000000")
