"""otelcost export focus over the known lake (conftest.py): rows, money, providers, columns, errors.

Every expected amount is hand arithmetic on the price pages' rates (per 1M tokens), never a
number read from the export: gpt-4o 2.50 in / 1.25 cache read / 10 out with 12.5% off; Claude
Sonnet 4.5 3 / 0.30 / 3.75 cache write / 15 out (reasoning billed as output); Bedrock's regional
Claude Sonnet 4.5 3.30 in / 16.50 out with 10% off.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from otelcost.cli.export import export
from otelcost.errors import ReportError
from otelcost.export import FocusExportRequest, columns_for, export_focus
from otelcost.export.focus_columns import MONEY_TYPE, QUANTITY_TYPE, UNIT_PRICE_TYPE
from otelcost.export.providers import entities
from tests.export.conftest import DISCOUNTS, Lake

D = Decimal


def run_cli(lake: Lake, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(export, ["focus", "-c", str(lake.config_file), *args], catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def day_export(focus_lake: Lake, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("day") / "out"
    code, output = run_cli(focus_lake, "--period", "2026-11", "--out", str(out))
    assert code == 0, output
    return out


def rows_of(out: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(out / "focus.parquet").to_pylist()
    return rows


def by_meter(rows: list[dict[str, Any]], provider: str) -> dict[str, dict[str, Any]]:
    return {row["x_TokenClass"]: row for row in rows if row["x_Provider"] == provider}


def test_token_quantities_and_costs_per_meter_are_the_hand_arithmetic(day_export: Path) -> None:
    rows = rows_of(day_export)
    gpt = by_meter(rows, "openai")
    # Three gpt-4o calls on 2026-11-03 (A, D, E): 2,000 uncached + 1,000 cache reads + 400 output each.
    expected_gpt = {
        "input": (D(6000), D("0.015"), D("0.013125"), D("2.5"), D("2.1875")),
        "cache_read": (D(3000), D("0.00375"), D("0.00328125"), D("1.25"), D("1.09375")),
        "output": (D(1200), D("0.012"), D("0.0105"), D(10), D("8.75")),
    }
    assert set(gpt) == set(expected_gpt)
    for meter, (tokens, list_cost, contracted, list_price, contracted_price) in expected_gpt.items():
        row = gpt[meter]
        assert (row["ConsumedQuantity"], row["ConsumedUnit"]) == (tokens, "Tokens")
        assert (row["PricingQuantity"], row["PricingUnit"]) == (tokens / 1_000_000, "1000000 Tokens")
        assert row["ListCost"] == list_cost
        assert row["ContractedCost"] == row["EffectiveCost"] == row["BilledCost"] == contracted
        assert (row["ListUnitPrice"], row["ContractedUnitPrice"]) == (list_price, contracted_price)
        assert row["x_Calls"] == 3
        assert row["ChargePeriodStart"] == datetime(2026, 11, 3, tzinfo=UTC)
        assert row["ChargePeriodEnd"] == datetime(2026, 11, 4, tzinfo=UTC)
        assert row["BillingPeriodStart"] == datetime(2026, 11, 1, tzinfo=UTC)
        assert row["BillingPeriodEnd"] == datetime(2026, 12, 1, tzinfo=UTC)

    claude = by_meter(rows, "anthropic")
    expected_claude = {  # 1,000 uncached, 500 cache reads, 1,500 cache writes, 300 output, 100 reasoning
        "input": (D(1000), D("0.003"), D(3)),
        "cache_read": (D(500), D("0.00015"), D("0.3")),
        "cache_write": (D(1500), D("0.005625"), D("3.75")),
        "output": (D(300), D("0.0045"), D(15)),
        "reasoning": (D(100), D("0.0015"), D(15)),
    }
    assert set(claude) == set(expected_claude)
    for meter, (tokens, list_cost, list_price) in expected_claude.items():
        row = claude[meter]
        assert row["ConsumedQuantity"] == tokens
        assert row["ListCost"] == row["ContractedCost"] == row["EffectiveCost"] == list_cost  # no discount
        assert row["ListUnitPrice"] == row["ContractedUnitPrice"] == list_price

    bedrock = by_meter(rows, "aws.bedrock")
    assert {meter: (row["ListCost"], row["ContractedCost"]) for meter, row in bedrock.items()} == {
        "input": (D("0.0066"), D("0.00594")),
        "output": (D("0.00165"), D("0.001485")),
    }
    assert (bedrock["input"]["ListUnitPrice"], bedrock["input"]["ContractedUnitPrice"]) == (
        D("3.3"),
        D("2.97"),
    )

    # The two calls just outside November are not in it; the totals are the sum of the above.
    assert sum(row["ListCost"] for row in rows) == D("0.053775")
    assert sum(row["EffectiveCost"] for row in rows) == D("0.04910625")
    assert all(row["ChargeClass"] is None and row["x_ExportVersion"] == 1 for row in rows)


def test_hour_granularity_splits_the_charge_periods(focus_lake: Lake, tmp_path: Path) -> None:
    code, output = run_cli(focus_lake, "--period", "2026-11", "--granularity", "hour", "--out", str(tmp_path))
    assert code == 0, output
    gpt_input = {
        row["ChargePeriodStart"]: (row["x_Calls"], row["ConsumedQuantity"], row["ChargePeriodEnd"])
        for row in rows_of(tmp_path)
        if row["x_Provider"] == "openai" and row["x_TokenClass"] == "input"
    }
    assert gpt_input == {
        datetime(2026, 11, 3, 10, tzinfo=UTC): (2, D(4000), datetime(2026, 11, 3, 11, tzinfo=UTC)),
        datetime(2026, 11, 3, 14, tzinfo=UTC): (1, D(2000), datetime(2026, 11, 3, 15, tzinfo=UTC)),
    }


def test_claude_on_bedrock_is_sold_by_anthropic_hosted_and_invoiced_by_aws(day_export: Path) -> None:
    rows = rows_of(day_export)
    bedrock = by_meter(rows, "aws.bedrock")["input"]
    assert (bedrock["ServiceProviderName"], bedrock["HostProviderName"], bedrock["InvoiceIssuerName"]) == (
        "Anthropic",
        "Amazon Web Services",
        "Amazon Web Services",
    )
    assert (bedrock["ServiceName"], bedrock["ProviderName"], bedrock["PublisherName"]) == (
        "Amazon Bedrock",
        "Amazon Web Services",
        "Anthropic",
    )
    assert json.loads(bedrock["SkuPriceDetails"])["x_ModelDeveloper"] == "Anthropic"
    assert (bedrock["SkuId"], bedrock["BillingAccountId"]) == (
        "aws.bedrock/claude-sonnet-4-5/input",
        "aws.bedrock",
    )
    direct = next(row for row in rows if row["x_Provider"] == "anthropic")
    assert {direct[name] for name in ("ServiceProviderName", "HostProviderName", "PublisherName")} == {
        "Anthropic"
    }
    assert direct["ServiceName"] == "Claude API"
    assert all(row["ServiceCategory"] == "AI and Machine Learning" for row in rows)
    assert all(row["ServiceSubcategory"] == "Generative AI" for row in rows)


def test_tags_and_requester_columns_carry_the_attribution(day_export: Path) -> None:
    rows = rows_of(day_export)
    gpt = by_meter(rows, "openai")["input"]
    assert json.loads(gpt["Tags"]) == {
        "team": "a",
        "feature": "chat",
        "tenant": "t1",
        "environment": "production",
    }
    assert (gpt["x_ConsumerId"], gpt["x_Service"]) == ("t1", "assistant")
    bedrock = by_meter(rows, "aws.bedrock")["input"]
    assert json.loads(bedrock["Tags"]) == {"team": "b", "feature": "search", "environment": "staging"}
    assert bedrock["x_ConsumerId"] is None
    assert "user" not in gpt["Tags"]  # user ids are not exported


def test_parquet_money_is_decimal_and_csv_is_the_same_plain_decimals(day_export: Path) -> None:
    table = pq.read_table(day_export / "focus.parquet")
    for name in ("ListCost", "ContractedCost", "EffectiveCost", "BilledCost"):
        assert table.schema.field(name).type == MONEY_TYPE
    assert table.schema.field("ConsumedQuantity").type == QUANTITY_TYPE
    assert table.schema.field("ListUnitPrice").type == UNIT_PRICE_TYPE
    assert table.schema.field("ChargePeriodStart").type == pa.timestamp("us", tz="UTC")
    text = (day_export / "focus.csv").read_text(encoding="utf-8")
    csv_rows = list(csv.DictReader(io.StringIO(text)))
    assert len(csv_rows) == table.num_rows
    for parquet_row, csv_row in zip(table.to_pylist(), csv_rows, strict=True):
        assert D(csv_row["ListCost"]) == parquet_row["ListCost"]
        assert "E" not in csv_row["ListCost"] and "e" not in csv_row["ListCost"]
        assert csv_row["ChargePeriodStart"] == "2026-11-03T00:00:00Z"
    assert list(csv_rows[0]) == table.column_names


def test_every_column_of_each_version_is_in_the_spec_and_every_mandatory_one_is_written(
    focus_lake: Lake, tmp_path: Path
) -> None:
    # Read from FOCUS_Spec: specification/columns/*.md at tags v1.0 and v1.2, and
    # specification/datasets/cost_and_usage/columns/ (columns.mdpp, publishername.md) for 1.3.
    mandatory_10 = {
        "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
        "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodEnd",
        "ChargePeriodStart", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost",
        "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
    }  # fmt: skip
    optional_10 = {
        "AvailabilityZone", "ChargeFrequency", "CommitmentDiscountCategory", "CommitmentDiscountId",
        "CommitmentDiscountName", "CommitmentDiscountStatus", "CommitmentDiscountType", "ConsumedQuantity",
        "ConsumedUnit", "ContractedUnitPrice", "ListUnitPrice", "PricingCategory", "RegionId", "RegionName",
        "ResourceId", "ResourceName", "ResourceType", "SkuId", "SkuPriceId", "SubAccountId", "SubAccountName",
        "Tags",
    }  # fmt: skip
    added_12 = {"ServiceSubcategory", "SkuMeter", "SkuPriceDetails", "InvoiceId"}
    added_13 = {
        "ServiceProviderName", "HostProviderName", "AllocatedMethodId", "AllocatedMethodDetails",
        "AllocatedResourceId", "AllocatedResourceName", "AllocatedTags",
    }  # fmt: skip
    spec = {
        "1.0": (mandatory_10, optional_10),
        "1.2": (mandatory_10, optional_10 | added_12),
        "1.3": (
            mandatory_10 | {"ServiceProviderName", "HostProviderName"},
            optional_10 | added_12 | added_13,
        ),
    }
    not_null = {"BilledCost", "BillingAccountId", "BillingCurrency", "ChargeCategory", "ContractedCost",
                "EffectiveCost", "InvoiceIssuerName", "ListCost", "ProviderName", "PublisherName",
                "ServiceCategory", "ServiceName", "ServiceProviderName", "HostProviderName"}  # fmt: skip
    for version, (mandatory, optional) in spec.items():
        out = tmp_path / version
        code, output = run_cli(
            focus_lake, "--period", "2026-11", "--focus-version", version, "--out", str(out)
        )
        assert code == 0, output
        table = pq.read_table(out / "focus.parquet")
        names = set(table.column_names)
        assert mandatory <= names, (version, mandatory - names)
        assert {name for name in names if not name.startswith("x_")} <= mandatory | optional, version
        assert [column.name for column in columns_for(version)] == table.column_names
        for name in not_null & names:
            assert table.column(name).null_count == 0, (version, name)
        allowed = {
            "ChargeCategory": {"Usage"},
            "ChargeFrequency": {"Usage-Based"},
            "PricingCategory": {"Standard"},
        }
        for name, values in allowed.items():
            assert set(table.column(name).to_pylist()) == values


def test_the_same_lake_exports_the_same_bytes(focus_lake: Lake, day_export: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    code, output = run_cli(focus_lake, "--period", "2026-11", "--out", str(again))
    assert code == 0, output
    assert "unchanged, same as ledger version 1" in output
    # A copy of the lake with no ledger at all: the export is a function of the lake alone.
    copy = tmp_path / "copy"
    shutil.copytree(focus_lake.config.lake_dir, copy / "lake")
    request = FocusExportRequest(period="2026-11")
    export_focus(copy / "lake", copy / "statements", request, tmp_path / "fresh")
    for name in ("focus.parquet", "focus.csv", "manifest.json"):
        first = (day_export / name).read_bytes()
        assert (again / name).read_bytes() == first, name
        assert (tmp_path / "fresh" / name).read_bytes() == first, name
    assert b"created" not in (day_export / "manifest.json").read_bytes()
    assert len(DISCOUNTS) == 2


def test_since_until_exports_the_same_rows_as_the_period(
    focus_lake: Lake, day_export: Path, tmp_path: Path
) -> None:
    code, output = run_cli(
        focus_lake, "--since", "2026-11-01", "--until", "2026-12-01", "--out", str(tmp_path)
    )
    assert code == 0, output
    assert (tmp_path / "focus.parquet").read_bytes() == (day_export / "focus.parquet").read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--period", "2026-11", "--granularity", "week"], "Invalid value for '--granularity'"),
        (["--period", "2026-09"], "the lake has no LLM calls in 2026-09: nothing to export"),
        (["--period", "2026-13"], "expected a period such as 2026-11"),
        (["--period", "2026-11", "--since", "2026-11-01"], "give either a period or since/until, not both"),
        (["--period", "2026-11", "--focus-version", "1.1"], "Invalid value for '--focus-version'"),
        ([], "give --period (such as 2026-11) or --since/--until"),
    ],
)
def test_bad_input_is_a_one_line_error(
    focus_lake: Lake, tmp_path: Path, args: list[str], message: str
) -> None:
    code, output = run_cli(focus_lake, *args, "--out", str(tmp_path / "out"))
    assert code != 0
    assert message in output
    assert "Traceback" not in output


def test_out_must_be_a_directory(focus_lake: Lake, tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("not a directory")
    code, output = run_cli(focus_lake, "--period", "2026-11", "--out", str(target))
    assert code == 1
    assert f"--out {target} is a file; give a directory" in output
    assert target.read_text() == "not a directory"
    with pytest.raises(ReportError, match="is a file"):
        export_focus(
            focus_lake.config.lake_dir,
            focus_lake.config.statements_dir,
            FocusExportRequest(period="2026-11"),
            target,
        )


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        (
            "aws.bedrock",
            "claude-sonnet-4-5",
            ("Anthropic", "Amazon Web Services", "Amazon Bedrock", "Anthropic"),
        ),
        (
            "aws.bedrock",
            "global.claude-haiku-4-5",
            ("Anthropic", "Amazon Web Services", "Amazon Bedrock", "Anthropic"),
        ),
        (
            "aws.bedrock",
            "amazon.nova-pro-v1:0",
            ("Amazon Web Services", "Amazon Web Services", "Amazon Bedrock", "Amazon"),
        ),
        ("gcp.vertex_ai", "claude-sonnet-4-5", ("Anthropic", "Google Cloud", "Vertex AI", "Anthropic")),
        ("gcp.vertex_ai", "gemini-2.5-pro", ("Google Cloud", "Google Cloud", "Vertex AI", "Google")),
        ("azure.ai.openai", "gpt-4o", ("Microsoft", "Microsoft", "Azure OpenAI", "OpenAI")),
        ("openai", "o3", ("OpenAI", "OpenAI", "OpenAI API", "OpenAI")),
        ("acme", "acme-ft-llama", ("acme", "acme", "acme", "acme")),
    ],
)
def test_entity_names_of_providers_and_models(provider: str, model: str, expected: tuple[str, ...]) -> None:
    names = entities(provider, model)
    assert (names.service_provider, names.host_provider, names.service_name, names.developer) == expected
    assert names.invoice_issuer == names.host_provider


def test_unpriced_calls_keep_their_tokens_at_cost_zero(day_export: Path) -> None:
    acme = by_meter(rows_of(day_export), "acme")
    assert {meter: row["ConsumedQuantity"] for meter, row in acme.items()} == {
        "input": D(1200),
        "output": D(300),
    }
    for row in acme.values():
        assert (row["x_PricingStatus"], row["x_Model"]) == ("unknown_model", "acme-chat")
        assert row["ListCost"] == row["EffectiveCost"] == D(0)
        # FOCUS: unit prices and SKU ids are not null on usage rows; 0 x quantity is the cost.
        assert row["ListUnitPrice"] == row["ContractedUnitPrice"] == D(0)
        assert row["SkuId"] == f"acme/acme-chat/{row['x_TokenClass']}"
        assert row["SkuPriceId"] == f"unpriced:acme/acme-chat/{row['x_TokenClass']}"
        assert (row["ServiceProviderName"], row["ServiceName"]) == ("acme", "acme")


def test_focus_1_2_row_rules_hold_on_every_usage_row(day_export: Path) -> None:
    # specification/columns/{listunitprice,contractedunitprice,skuid,skupriceid}.md at v1.2: not
    # NULL on Usage rows that are not corrections, and unit price x PricingQuantity = cost.
    for row in rows_of(day_export):
        assert row["ChargeCategory"] == "Usage" and row["ChargeClass"] is None
        for name in ("ListUnitPrice", "ContractedUnitPrice", "SkuId", "SkuPriceId", "SkuMeter"):
            assert row[name] is not None, name
        assert (row["ListUnitPrice"] * row["PricingQuantity"]).quantize(D("1e-12")) == row["ListCost"]
        assert (row["ContractedUnitPrice"] * row["PricingQuantity"]).quantize(D("1e-12")) == row[
            "ContractedCost"
        ]
        assert row["ConsumedQuantity"] == row["PricingQuantity"] * 1_000_000
