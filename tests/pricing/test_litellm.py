"""Importing LiteLLM's price map (a sample in the real format) gives exact, loadable catalogs."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from otelcost.errors import PricingError
from otelcost.pricing import Catalog, Pricer, PricingConfig
from otelcost.pricing.litellm import convert_file_text
from tests.pricing.calls import at, calls_table
from tests.pricing.conftest import FIXTURES

D = Decimal
SAMPLE = (FIXTURES / "litellm_sample.json").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Catalog, str]:
    text, report = convert_file_text(SAMPLE, read=date(2026, 11, 22))
    assert report.imported == 8
    assert report.skipped["mode image_generation"] == 1
    assert report.skipped["not a model"] == 2  # sample_spec and rules
    assert report.dropped_fields["cache_creation_input_token_cost_above_12hr"] == 1
    assert report.dropped_fields["input_cost_per_token_balanced"] == 1
    assert report.dropped_fields["search_context_cost_per_query"] == 1
    assert report.rounded == ["together_ai/odd-model.input_cost_per_token"]
    path = tmp_path_factory.mktemp("litellm") / "litellm.yaml"
    path.write_text(text, encoding="utf-8")
    return Catalog.load(PricingConfig(shipped_catalog=False, catalogs=[path])), text


def rates(catalog: Catalog, provider: str, model: str, tier: str = "standard") -> dict[str, Decimal]:
    entry = catalog.resolve(provider, model)
    assert entry is not None, model
    version = entry.versions[-1]
    applied, prices = version.price_set(tier)
    assert applied == tier
    return prices.base.per_million()


def test_floats_become_exact_per_million_rates(imported: tuple[Catalog, str]) -> None:
    catalog, text = imported
    gpt = rates(catalog, "openai", "gpt-4o-2024-08-06")
    assert (gpt["input"], gpt["cache_read"], gpt["output"]) == (D("2.5"), D("1.25"), D(10))
    batch = rates(catalog, "openai", "gpt-4o-2024-08-06", "batch")
    # the batch tier lacks a cache rate: it falls back to the base one, as LiteLLM does
    assert (batch["input"], batch["cache_read"], batch["output"]) == (D("1.25"), D("1.25"), D(5))
    priority = rates(catalog, "openai", "gpt-4o-2024-08-06", "priority")
    assert (priority["input"], priority["cache_read"], priority["output"]) == (D("4.25"), D("2.125"), D(17))
    assert '"2.5"' in text and "e-0" not in text  # quoted decimals, never floats


def test_ttl_cache_writes_thresholds_and_providers(imported: tuple[Catalog, str]) -> None:
    catalog, _ = imported
    claude = rates(catalog, "anthropic", "claude-sonnet-4-5-20250929")
    assert (claude["cache_write"], claude["cache_write_1h"], claude["cache_read"]) == (
        D("3.75"),
        D(6),
        D("0.3"),
    )
    gemini = catalog.resolve("gcp.gemini", "gemini-2.5-pro")  # "gemini/" route prefix stripped
    assert gemini is not None and gemini.id == "gemini-2.5-pro" and "gemini/gemini-2.5-pro" in gemini.aliases
    level = gemini.versions[0].prices.long_context[0]
    assert (level.threshold, level.inclusive) == (200_000, False)
    assert level.rates.per_million()["input"] == D("2.5")
    batch_level = gemini.versions[0].tiers["batch"].long_context[0]
    assert batch_level.rates.per_million()["output"] == D("7.5")
    grok = catalog.resolve("x_ai", "grok-4.20")
    assert grok is not None and grok.versions[0].prices.long_context[0].inclusive  # xAI counts from 200K
    deepseek = rates(catalog, "deepseek", "deepseek-v3")
    assert deepseek["cache_read"] == D("0.07")  # legacy input_cost_per_token_cache_hit
    odd = rates(catalog, "together_ai", "odd-model")
    assert odd["input"] == D("0.333333")  # 3.33333333e-07 rounded half-even to 6 decimals per 1M


def test_tiered_pricing_becomes_long_context(imported: tuple[Catalog, str]) -> None:
    catalog, _ = imported
    qwen = catalog.resolve("dashscope", "qwen-plus-2025-07-14")
    assert qwen is not None
    prices = qwen.versions[0].prices
    assert prices.base.per_million()["input"] == D("0.4")
    assert prices.base.per_million()["reasoning"] == D(4)
    assert prices.long_context[0].threshold == 256_000
    assert prices.long_context[0].rates.per_million()["output"] == D("3.6")


def test_imported_catalog_prices_calls(imported: tuple[Catalog, str]) -> None:
    catalog, _ = imported
    pricer = Pricer(catalog, PricingConfig(shipped_catalog=False))
    rows = pricer.price(
        calls_table(
            [
                dict(
                    provider="gcp.gemini",
                    request_model="gemini/gemini-2.5-pro",
                    ts=at("2026-01-01"),
                    input_tokens=250_000,
                    output_tokens=1_000,
                ),
                dict(
                    provider="openai",
                    response_model="text-embedding-3-small",
                    ts=at("2026-01-01"),
                    input_tokens=1_000,
                ),
            ]
        )
    ).to_pylist()
    # 250000 x 2.50 = 0.625; 1000 x 15 = 0.015
    assert rows[0]["cost_usd"] == D("0.64")
    assert rows[0]["price_ref"].startswith("litellm:gcp.gemini/gemini-2.5-pro@start#long>200000")
    assert rows[1]["cost_usd"] == D("0.00002")


def test_models_in_the_shipped_catalog_are_skipped_by_default(shipped: Catalog) -> None:
    _, report = convert_file_text(SAMPLE, read=date(2026, 11, 22), skip_catalog=shipped)
    assert report.skipped["already in the shipped catalog"] >= 3  # gpt-4o, claude, gemini, embeddings
    assert report.imported < 8


def test_not_a_price_map() -> None:
    with pytest.raises(PricingError, match="invalid JSON"):
        convert_file_text("{", read=date(2026, 1, 1))
    with pytest.raises(PricingError, match="top level"):
        convert_file_text("[]", read=date(2026, 1, 1))


@pytest.mark.slow
def test_real_map_converts_when_available(tmp_path: Path) -> None:
    """The full map from a LiteLLM download, if one sits at the conventional path (not in CI)."""
    source = Path("/tmp/llm/litellm/model_prices_and_context_window_backup.json")
    if not source.exists():
        pytest.skip("no local copy of LiteLLM's full price map")
    text, report = convert_file_text(source.read_text(encoding="utf-8"), read=date(2026, 11, 22))
    path = tmp_path / "full.yaml"
    path.write_text(text, encoding="utf-8")
    catalog = Catalog.load(PricingConfig(shipped_catalog=False, catalogs=[path]))
    assert len(catalog.entries) == report.imported > 2000
