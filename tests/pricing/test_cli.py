"""The pricing commands through click's CliRunner, over a real lake in tmp_path."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from otelcost.cli import main
from otelcost.lake.audit import command_actor
from otelcost.lake.layout import list_partitions
from otelcost.lake.locking import lake_lock
from otelcost.lake.publish import write_files
from otelcost.lake.query import run_query
from otelcost.pricing import Catalog, Pricer, PricingConfig
from tests.pricing.calls import at, calls_table
from tests.pricing.conftest import FIXTURES

D = Decimal


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_lookup_shows_every_tier_and_variant_with_price_refs() -> None:
    code, out = invoke("pricing", "lookup", "gpt-5.4-2026-03-05", "--at", "2026-05-01", "-f", "json")
    assert code == 0, out
    rows = json.loads(out)
    refs = [r["price_ref"] for r in rows]
    assert refs[:2] == ["openai/gpt-5.4@2026-03-05", "openai/gpt-5.4@2026-03-05#long>272000"]
    assert "openai/gpt-5.4@2026-03-05#priority" in refs
    long_context = rows[1]
    assert long_context["applies_when"] == "input tokens > 272000"
    assert D(long_context["input"]) == D("5") and D(long_context["output"]) == D("22.5")
    assert rows[0]["source"].startswith("https://developers.openai.com/api/docs/pricing (read ")


def test_lookup_at_a_date_picks_that_version() -> None:
    code, out = invoke("pricing", "lookup", "o3", "--provider", "openai", "--at", "2025-05-01", "-f", "json")
    assert code == 0 and json.loads(out)[0]["price_ref"] == "openai/o3@2025-04-16"
    assert D(json.loads(out)[0]["input"]) == D("10")


def test_lookup_failures_are_one_line_errors() -> None:
    code, out = invoke("pricing", "lookup", "gpt-9000", "--provider", "openai")
    assert code == 1 and "no catalog entry prices 'gpt-9000' for provider openai" in out
    code, out = invoke("pricing", "lookup", "gpt-5.6-luna", "--at", "2026-01-01")
    assert code == 1 and "openai/gpt-5.6-luna has no price in force at 2026-01-01" in out


def test_list_and_check() -> None:
    code, out = invoke("pricing", "list", "--provider", "x_ai", "-f", "csv")
    assert code == 0 and "x_ai,grok-4.20,chat,shipped,1,1.250000,2.500000" in out
    code, out = invoke("pricing", "check")
    assert code == 0 and out.strip().endswith("0 errors, 0 warnings")


def test_check_reports_file_and_entry_and_fails() -> None:
    bad = FIXTURES / "overlapping_dates.yaml"
    code, out = invoke("pricing", "check", str(bad), str(FIXTURES / "negative_price.yaml"))
    assert code == 1
    assert f"error: {bad}: openai/gpt-overlap: versions[0] and versions[1] overlap" in out
    assert "anthropic/claude-negative: versions[0].prices.input: a price cannot be negative" in out
    assert "2 errors" in out


def test_import_litellm_writes_a_loadable_catalog(tmp_path: Path) -> None:
    target = tmp_path / "litellm.yaml"
    code, out = invoke(
        "pricing",
        "import-litellm",
        str(FIXTURES / "litellm_sample.json"),
        "-o",
        str(target),
        "--read",
        "2026-11-22",
    )
    assert code == 0, out
    assert "skipped" in out and "already in the shipped catalog" in out
    catalog = Catalog.load(PricingConfig(catalogs=[target]))
    assert catalog.resolve("dashscope", "qwen-plus-2025-07-14") is not None
    code, out = invoke("pricing", "check", str(target))
    assert code == 0, out


# -- over a lake ---------------------------------------------------------------------------------

CONTRACT = """
provider: acme
models:
  - id: acme-summarizer-v2
    versions:
      - prices: {input: "1.00", output: "2.00"}
"""


@pytest.fixture
def lake_setup(tmp_path: Path) -> tuple[Path, Path]:
    """A lake with two days of calls priced by the shipped catalog alone (acme is unknown)."""
    data_dir = tmp_path / "data"
    calls = calls_table(
        [
            dict(
                provider="acme",
                request_model="acme-summarizer-v2",
                ts=at("2026-11-19T10:00"),
                input_tokens=1_000_000,
                output_tokens=500_000,
            ),
            dict(
                provider="acme",
                request_model="acme-summarizer-v2",
                ts=at("2026-11-20T10:00"),
                input_tokens=2_000_000,
                output_tokens=0,
            ),
            dict(
                provider="openai",
                response_model="gpt-4o-mini",
                ts=at("2026-11-20T11:00"),
                input_tokens=1_000_000,
            ),
            dict(
                provider="openai",
                request_model="gpt-99",
                ts=at("2026-11-20T12:00"),
                input_tokens=10,
                output_tokens=5,
            ),
        ]
    )
    priced = Pricer(Catalog.load(PricingConfig()), PricingConfig()).price(calls)
    lake = data_dir / "lake"
    with lake_lock(lake, shared=True):
        write_files(lake, priced)
    (tmp_path / "acme.yaml").write_text(CONTRACT, encoding="utf-8")
    config = tmp_path / "otelcost.yaml"
    config.write_text(f"data_dir: {data_dir}\npricing:\n  catalogs: [acme.yaml]\n", encoding="utf-8")
    return config, lake


def test_unknown_lists_unpriced_models_with_volumes(lake_setup: tuple[Path, Path]) -> None:
    config, _ = lake_setup
    code, out = invoke("pricing", "unknown", "--data-dir", str(config.parent / "data"), "-f", "json")
    assert code == 0, out
    rows = json.loads(out)
    assert [(r["provider"], r["model_name"], r["calls"], r["input_tokens"]) for r in rows] == [
        ("acme", "acme-summarizer-v2", 2, 3_000_000),
        ("openai", "gpt-99", 1, 10),
    ]
    assert rows[0]["priced_now_as"] is None
    # with the user's catalog, the acme model would now be priced
    code, out = invoke("pricing", "unknown", "-c", str(config), "--since", "2026-11-20", "-f", "json")
    rows = json.loads(out)
    assert [(r["model_name"], r["calls"], r["priced_now_as"]) for r in rows] == [
        ("acme-summarizer-v2", 1, "acme/acme-summarizer-v2"),
        ("gpt-99", 1, None),
    ]


def test_reprice_recomputes_costs_atomically_per_partition(lake_setup: tuple[Path, Path]) -> None:
    config, lake = lake_setup
    code, out = invoke("reprice", "-c", str(config), "--since", "2026-11-20", "--dry-run", "-f", "json")
    assert code == 0, out
    assert [(r["date"], r["changed_rows"], r["rewritten"]) for r in json.loads(out)] == [
        ("2026-11-20", 1, False)
    ]
    assert run_query(lake, "SELECT sum(cost_usd) AS usd FROM llm_calls").to_pylist()[0]["usd"] == D("0.15")

    code, out = invoke("reprice", "-c", str(config), "--since", "2026-11-20", "-f", "json")
    assert code == 0, out
    result = json.loads(out)
    assert result == [
        {
            "date": "2026-11-20",
            "rows": 3,
            "changed_rows": 1,
            "cost_before": "0.150000000000",
            "cost_after": "2.150000000000",  # + 2,000,000 x 1.00
            "effective_before": "0.150000000000",
            "effective_after": "2.150000000000",
            "rewritten": True,
        }
    ]
    rows = run_query(
        lake,
        "SELECT date, model, pricing_status, price_ref, cost_usd, input_tokens FROM llm_calls ORDER BY ts",
    ).to_pylist()
    assert [(r["model"], r["pricing_status"], r["price_ref"], r["cost_usd"]) for r in rows] == [
        (None, "unknown_model", None, D("0")),  # 2026-11-19 was not in the range
        ("acme-summarizer-v2", "priced", "acme:acme/acme-summarizer-v2@start", D("2")),
        ("gpt-4o-mini", "priced", "openai/gpt-4o-mini@2024-07-18", D("0.15")),
        (None, "unknown_model", None, D("0")),
    ]
    assert [r["input_tokens"] for r in rows] == [1_000_000, 2_000_000, 1_000_000, 10]  # tokens untouched
    assert list_partitions(lake) == [at("2026-11-19").date(), at("2026-11-20").date()]

    # nothing left to change: no partition is rewritten
    code, out = invoke(
        "reprice", "-c", str(config), "--since", "2026-11-01", "--until", "2026-11-20", "-f", "json"
    )
    assert [(r["date"], r["changed_rows"], r["rewritten"]) for r in json.loads(out)] == [
        ("2026-11-19", 1, True)
    ]
    code, out = invoke("reprice", "-c", str(config), "--since", "2026-11-01", "-f", "json")
    assert all(not r["rewritten"] for r in json.loads(out))

    # Each run that rewrote a day is one entry of the lake's audit log, by the OS user; the
    # dry run and the run that changed nothing left none.
    audit = run_query(
        lake, "SELECT actor, action, target, before, after FROM audit_log ORDER BY changed_at"
    ).to_pylist()
    assert [(e["actor"], e["action"], e["target"]) for e in audit] == [
        (command_actor(), "pricing.reprice", "2026-11-20.."),
        (command_actor(), "pricing.reprice", "2026-11-01..2026-11-20"),
    ]
    assert json.loads(audit[0]["before"]) == {
        "days": ["2026-11-20"],
        "cost_usd": "0.150000000000",
        "effective_cost_usd": "0.150000000000",
    }
    assert json.loads(audit[0]["after"])["cost_usd"] == "2.150000000000"


def test_reprice_needs_a_valid_date() -> None:
    result = CliRunner().invoke(main, ["reprice", "--since", "yesterday"])
    assert result.exit_code == 2 and "expected a date YYYY-MM-DD" in result.output
