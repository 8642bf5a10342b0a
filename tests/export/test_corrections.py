"""Repricing after an export: the next export keeps what was exported and adds Correction rows.

The lake (its own: reprice rewrites it) has, on 2026-11-05, two gpt-4o calls (1,000 in, 200 out:
2.50 and 10 per 1M) with 10% off OpenAI, and one claude-sonnet-4-5 call (1,000 in, 100 out: 3
and 15 per 1M). Between two exports the discount becomes 20% and a user catalog prices Claude
Sonnet 4.5 at 4 and 20 from 2026-11-01, and the real ``otelcost reprice`` rewrites the lake.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from otelcost.cli import main
from otelcost.cli.export import export
from tests.export.conftest import write_config
from tests.reports.traffic import Call, build_lake

D = Decimal
T = datetime(2026, 11, 5, 9, tzinfo=UTC)
CATALOG = {
    "provider": "anthropic",
    "source": {"url": "https://example.invalid/contract", "read": "2026-11-01"},
    "models": [
        {
            "id": "claude-sonnet-4-5",
            "versions": [{"effective_from": "2026-11-01", "prices": {"input": "4.00", "output": "20.00"}}],
        }
    ],
}


def _calls() -> list[Call]:
    gpt = [
        Call(ts=T + timedelta(minutes=i), service="app", team="a", feature="chat", model="gpt-4o",
             input_tokens=1_000, output_tokens=200)
        for i in range(2)
    ]  # fmt: skip
    claude = Call(ts=T, service="app", team="a", feature="chat", model="claude-sonnet-4-5",
                  input_tokens=1_000, output_tokens=100)  # fmt: skip
    return [*gpt, claude]


def _export(config_file: Path, out: Path) -> str:
    args = ["focus", "-c", str(config_file), "--period", "2026-11", "--out", str(out)]
    result = CliRunner().invoke(export, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _rows(out: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(out / "focus.parquet").to_pylist()
    return rows


@pytest.fixture(scope="module")
def repriced(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reprice")
    data = root / "data"
    build_lake(data, _calls(), pricing={"discounts": [{"provider": "openai", "percent": "10"}]})
    before = write_config(root / "before.yaml", data, [{"provider": "openai", "percent": "10"}])
    _export(before, root / "v1")
    (root / "prices.yaml").write_text(yaml.safe_dump(CATALOG))
    after = root / "after.yaml"
    after.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(data),
                "pricing": {
                    "discounts": [{"provider": "openai", "percent": "20"}],
                    "catalogs": [str(root / "prices.yaml")],
                },
            }
        )
    )
    result = CliRunner().invoke(
        main, ["reprice", "-c", str(after), "--since", "2026-11-01"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    _export(after, root / "v2")
    return {"root": root, "data": data, "after": after, "v1": root / "v1", "v2": root / "v2"}


def test_the_second_export_keeps_the_first_rows_and_adds_corrections(repriced: dict[str, Path]) -> None:
    first = _rows(repriced["v1"])
    second = _rows(repriced["v2"])
    assert [row for row in second if row["x_ExportVersion"] == 1] == first
    corrections = [row for row in second if row["x_ExportVersion"] == 2]
    assert corrections and all(row["ChargeClass"] == "Correction" for row in corrections)
    assert all(row["ListUnitPrice"] is None and row["ContractedUnitPrice"] is None for row in corrections)

    def delta(provider: str, meter: str, price_ref_contains: str) -> tuple[Any, ...]:
        (row,) = [
            row
            for row in corrections
            if row["x_Provider"] == provider
            and row["x_TokenClass"] == meter
            and price_ref_contains in row["x_PriceRef"]
        ]
        return (
            row["ConsumedQuantity"],
            row["ListCost"],
            row["ContractedCost"],
            row["EffectiveCost"],
            row["BilledCost"],
        )

    # gpt-4o: same tokens, same list price; 20% off instead of 10% on 0.005 and 0.004 of list.
    assert delta("openai", "input", "gpt-4o") == (D(0), D(0), D("-0.0005"), D("-0.0005"), D("-0.0005"))
    assert delta("openai", "output", "gpt-4o") == (D(0), D(0), D("-0.0004"), D("-0.0004"), D("-0.0004"))
    # Claude: the old price version is taken out and the new one put in (a new SkuPriceId).
    assert delta("anthropic", "input", "@2025-09-29") == (
        D(-1000),
        D("-0.003"),
        D("-0.003"),
        D("-0.003"),
        D("-0.003"),
    )
    assert delta("anthropic", "output", "@2025-09-29") == (
        D(-100),
        D("-0.0015"),
        D("-0.0015"),
        D("-0.0015"),
        D("-0.0015"),
    )
    assert delta("anthropic", "input", "@2026-11-01") == (
        D(1000),
        D("0.004"),
        D("0.004"),
        D("0.004"),
        D("0.004"),
    )
    assert delta("anthropic", "output", "@2026-11-01") == (
        D(100),
        D("0.002"),
        D("0.002"),
        D("0.002"),
        D("0.002"),
    )
    assert len(corrections) == 6
    # Everything summed is what the lake says now.
    assert sum(row["ListCost"] for row in second) == D("0.015")  # 0.009 gpt-4o + 0.006 Claude
    assert sum(row["EffectiveCost"] for row in second) == D("0.0132")  # 0.0072 + 0.006
    assert sum(row["EffectiveCost"] for row in first) == D("0.0126")  # 0.0081 + 0.0045


def test_the_ledger_keeps_every_version_and_an_unchanged_lake_adds_none(repriced: dict[str, Path]) -> None:
    ledger = repriced["data"] / "statements" / "focus" / "1.3" / "day" / "2026-11"
    assert sorted(p.name for p in ledger.iterdir() if p.name.startswith("v")) == ["v1", "v2"]
    v1 = (ledger / "v1" / "focus.parquet").read_bytes()
    assert v1 == (repriced["v1"] / "focus.parquet").read_bytes()
    assert (ledger / "v2" / "focus.parquet").read_bytes() == (repriced["v2"] / "focus.parquet").read_bytes()
    again = repriced["root"] / "v2-again"
    output = _export(repriced["after"], again)
    assert "unchanged, same as ledger version 2" in output
    for name in ("focus.parquet", "focus.csv", "manifest.json"):
        assert (again / name).read_bytes() == (repriced["v2"] / name).read_bytes(), name
    assert sorted(p.name for p in ledger.iterdir() if p.name.startswith("v")) == ["v1", "v2"]
    assert (
        hashlib.sha256((ledger / "v1" / "focus.parquet").read_bytes()).digest() == hashlib.sha256(v1).digest()
    )


def test_a_tampered_ledger_is_refused(repriced: dict[str, Path], tmp_path: Path) -> None:
    ledger = repriced["data"] / "statements" / "focus" / "1.3" / "day" / "2026-11" / "v2" / "focus.parquet"
    original = ledger.read_bytes()
    try:
        ledger.write_bytes(original[:-1] + b"!")
        result = CliRunner().invoke(
            export, ["focus", "-c", str(repriced["after"]), "--period", "2026-11", "--out", str(tmp_path)]
        )
        assert result.exit_code == 1
        assert "does not match the sha256 in its manifest" in result.output
    finally:
        ledger.write_bytes(original)


def test_a_late_call_is_a_correction_of_its_tokens_and_cost(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = write_config(tmp_path / "otelcost.yaml", data, [])
    build_lake(data, _calls()[:1])
    _export(config, tmp_path / "v1")
    build_lake(
        data, [Call(ts=T + timedelta(minutes=40), service="app", team="a", feature="chat", model="gpt-4o")]
    )
    output = _export(config, tmp_path / "v2")
    assert "new ledger version 2" in output
    corrections = [row for row in _rows(tmp_path / "v2") if row["ChargeClass"] == "Correction"]
    # The late call: 1,000 in and 200 out of gpt-4o (the Call defaults), at 2.50 and 10 per 1M.
    assert {
        row["x_TokenClass"]: (row["x_Calls"], row["ConsumedQuantity"], row["ListCost"]) for row in corrections
    } == {
        "input": (1, D(1000), D("0.0025")),
        "output": (1, D(200), D("0.002")),
    }
