"""--allocation: chargeback's pooled spend as FOCUS 1.3 allocated charges, over the known lake.

The rule shares team b's calls (the Bedrock call C of conftest.py: 2,000 in, 100 out at 3.30 and
16.50 per 1M, 10% off) between teams a and x by weights 3:1, so each of C's rows becomes two
allocated charges of 3/4 and 1/4, by hand: input list 0.0066 -> 0.00495 + 0.00165, contracted
0.00594 -> 0.004455 + 0.001485, 2,000 tokens -> 1,500 + 500.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from otelcost.cli.export import export
from tests.export.conftest import DISCOUNTS, Lake

D = Decimal
RULE = {
    "name": "search-shared",
    "shared": {"where": {"team": ["b"]}},
    "spread": "weights",
    "weights": {"a": 3, "x": 1},
}


def _config(lake: Lake, path: Path, rule: dict[str, Any]) -> Path:
    data = {
        "data_dir": str(lake.config.data_dir),
        "pricing": {"discounts": DISCOUNTS},
        "reports": {"chargeback": {"rules": [rule]}},
    }
    path.write_text(yaml.safe_dump(data))
    return path


def _export(config: Path, out: Path, *extra: str) -> tuple[int, str]:
    args = ["focus", "-c", str(config), "--period", "2026-11", "--out", str(out), *extra]
    result = CliRunner().invoke(export, args, catch_exceptions=False)
    return result.exit_code, result.output


def test_pooled_rows_become_allocated_charges_that_add_up_to_the_origin(
    focus_lake: Lake, tmp_path: Path
) -> None:
    config = _config(focus_lake, tmp_path / "otelcost.yaml", RULE)
    code, output = _export(config, tmp_path / "plain")
    assert code == 0, output
    code, output = _export(config, tmp_path / "allocated", "--allocation")
    assert code == 0, output
    plain = pq.read_table(tmp_path / "plain" / "focus.parquet").to_pylist()
    allocated = pq.read_table(tmp_path / "allocated" / "focus.parquet").to_pylist()

    bedrock = {
        (row["x_TokenClass"], row["AllocatedResourceId"]): row
        for row in allocated
        if row["x_Provider"] == "aws.bedrock"
    }
    assert sorted(bedrock) == [("input", "a"), ("input", "x"), ("output", "a"), ("output", "x")]
    a, x = bedrock["input", "a"], bedrock["input", "x"]
    assert (a["ListCost"], x["ListCost"]) == (D("0.00495"), D("0.00165"))
    assert (a["ContractedCost"], x["ContractedCost"]) == (D("0.004455"), D("0.001485"))
    assert (a["EffectiveCost"], a["BilledCost"]) == (D("0.004455"), D("0.004455"))
    assert (a["ConsumedQuantity"], x["ConsumedQuantity"]) == (D(1500), D(500))
    assert (a["PricingQuantity"], x["PricingQuantity"]) == (D("0.0015"), D("0.0005"))
    out_a, out_x = bedrock["output", "a"], bedrock["output", "x"]
    assert (out_a["ListCost"], out_x["ListCost"]) == (D("0.0012375"), D("0.0004125"))
    # Dimensions, unit prices and the Tags are the origin's; the allocation columns say who and how.
    assert a["ListUnitPrice"] == x["ListUnitPrice"] == D("3.3")
    assert (
        json.loads(a["Tags"])
        == json.loads(x["Tags"])
        == {"team": "b", "feature": "search", "environment": "staging"}
    )
    assert (a["AllocatedMethodId"], a["AllocatedResourceName"]) == ("otelcost.chargeback/search-shared", "a")
    assert json.loads(x["AllocatedTags"]) == {"team": "x"}
    assert json.loads(x["AllocatedMethodDetails"]) == {
        "x_Rule": "search-shared",
        "x_Share": "1/4",
        "x_Spread": "weights",
    }
    # Rows outside the pool are untouched, and nothing is counted twice.
    others = [row for row in allocated if row["x_Provider"] != "aws.bedrock"]
    assert all(row["AllocatedMethodId"] is None for row in others)
    assert len(others) == len([row for row in plain if row["x_Provider"] != "aws.bedrock"])
    for name in ("ListCost", "ContractedCost", "EffectiveCost", "BilledCost", "ConsumedQuantity"):
        assert sum(row[name] for row in allocated) == sum(row[name] for row in plain), name
    assert sum(row["ListCost"] for row in allocated) == D("0.053775")


def test_allocation_needs_focus_1_3_and_dimensions_the_rows_keep(focus_lake: Lake, tmp_path: Path) -> None:
    config = _config(focus_lake, tmp_path / "otelcost.yaml", RULE)
    code, output = _export(config, tmp_path / "out", "--allocation", "--focus-version", "1.2")
    assert code == 1
    assert "--allocation needs --focus-version 1.3" in output
    by_user = dict(RULE, shared={"where": {"user_id": ["user-1"]}})
    config = _config(focus_lake, tmp_path / "by-user.yaml", by_user)
    code, output = _export(config, tmp_path / "out", "--allocation")
    assert code == 1
    assert "--allocation cannot export rule search-shared on 'user_id'" in output


@pytest.mark.parametrize("granularity", ["day", "hour"])
def test_allocated_exports_keep_a_ledger_of_their_own(
    focus_lake: Lake, tmp_path: Path, granularity: str
) -> None:
    config = _config(focus_lake, tmp_path / "otelcost.yaml", RULE)
    code, output = _export(config, tmp_path / "out", "--allocation", "--granularity", granularity)
    assert code == 0, output
    assert f"focus/1.3/{granularity}-allocated/2026-11/v1" in output
