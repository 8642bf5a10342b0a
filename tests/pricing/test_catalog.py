"""The catalog: the shipped files are valid and sourced, bad files fail naming file and entry."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from otelcost.errors import PricingError
from otelcost.pricing import Catalog, PricingConfig, check
from otelcost.pricing.catalog_loader import shipped_catalog_files
from otelcost.pricing.catalog_models import PriceSetModel
from otelcost.pricing.catalog_values import load_yaml
from otelcost.pricing.names import candidates
from otelcost.pricing.price_sets import price_set
from otelcost.pricing.rates import PriceSet
from tests.pricing.calls import at
from tests.pricing.conftest import FIXTURES


def parse_price_set(spec: object) -> PriceSet:
    return price_set(PriceSetModel.model_validate(spec))


REQUIRED_PROVIDERS = {
    "openai",
    "anthropic",
    "gcp.gemini",
    "mistral_ai",
    "deepseek",
    "x_ai",
    "cohere",
    "aws.bedrock",
    "azure.ai.openai",
}


def test_shipped_catalog_is_valid_and_every_version_is_sourced(shipped: Catalog) -> None:
    _, issues = check(PricingConfig())
    assert issues == []
    assert {path.name for path in shipped_catalog_files()} >= {
        "openai.yaml",
        "anthropic.yaml",
        "gemini.yaml",
        "mistral.yaml",
        "deepseek.yaml",
        "xai.yaml",
        "cohere.yaml",
        "bedrock.yaml",
        "azure.yaml",
    }
    for entry in shipped.entries:
        for version in entry.versions:
            assert version.source is not None and version.source.url.startswith("https://"), entry.key
            assert version.source.read is not None, entry.key


def test_shipped_catalog_covers_chat_and_embeddings_of_every_required_provider(shipped: Catalog) -> None:
    kinds: dict[str, set[str]] = {}
    for entry in shipped.entries:
        kinds.setdefault(entry.provider, set()).add(entry.kind)
    assert set(kinds) >= REQUIRED_PROVIDERS
    for provider in REQUIRED_PROVIDERS:
        assert "chat" in kinds[provider], provider
    for provider in ("openai", "gcp.gemini", "mistral_ai", "cohere", "aws.bedrock", "azure.ai.openai"):
        assert "embedding" in kinds[provider], provider


def test_shipped_catalog_exercises_effective_dating(shipped: Catalog) -> None:
    changed = [e.key for e in shipped.entries if len(e.versions) > 1]
    assert {"openai/o3", "openai/gpt-4o", "gcp.gemini/gemini-1.5-flash", "deepseek/deepseek-chat"} <= set(
        changed
    )


def test_yaml_numbers_are_read_as_exact_decimals() -> None:
    data = load_yaml("a: 0.1\nb: 2.50\nc: 1.5e-6\nd: '0.3'\n")
    assert data == {"a": Decimal("0.1"), "b": Decimal("2.50"), "c": Decimal("0.0000015"), "d": "0.3"}
    prices = parse_price_set(load_yaml("{input: 0.1, output: 0.3}"))
    assert prices.base.input == 100_000 and prices.base.output == 300_000  # picodollars per token


@pytest.mark.parametrize(
    ("fixture", "entry", "message"),
    [
        ("overlapping_dates.yaml", "openai/gpt-overlap", "versions[0] and versions[1] overlap"),
        (
            "duplicate_alias.yaml",
            "openai/model-b",
            "duplicate alias 'shared-name' for openai: also openai/model-a",
        ),
        (
            "negative_price.yaml",
            "anthropic/claude-negative",
            "versions[0].prices.input: a price cannot be negative",
        ),
        ("missing_price.yaml", "mistral_ai/mistral-no-output", "the output rate is missing"),
        ("unordered_versions.yaml", "deepseek/deepseek-backwards", "increasing effective_from order"),
        ("too_precise.yaml", "x_ai/grok-precise", "finer than a picodollar per token"),
        ("unknown_key.yaml", "cohere/command-typo", "unknown key 'ouput'"),
        ("duplicate_entry.yaml", "openai/twin", "duplicate entry"),
        (
            "dangling_prices_from.yaml",
            "azure.ai.openai/my-deployment",
            "prices_from: no entry openai/no-such-model",
        ),
        ("bad_currency.yaml", None, "currency: only USD is supported"),
    ],
)
def test_invalid_catalog_errors_name_the_file_and_the_entry(
    fixture: str, entry: str | None, message: str
) -> None:
    path = FIXTURES / fixture
    _, issues = check(PricingConfig(shipped_catalog=False), [path])
    errors = [i for i in issues if i.severity == "error"]
    assert len(errors) == 1, errors
    error = errors[0]
    assert error.file == str(path)
    assert error.entry == entry
    assert message in error.message
    assert str(path) in str(error) and (entry is None or entry in str(error))
    with pytest.raises(PricingError) as raised:
        Catalog.load(PricingConfig(shipped_catalog=False, catalogs=[path]))
    assert str(path) in str(raised.value) and message in str(raised.value)


def test_catalog_directory_and_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "provider: acme\nmodels:\n  - id: m\n    versions:\n      - prices: {input: 1, output: 2}\n"
    )
    (tmp_path / "notes.txt").write_text("ignored")
    catalog = Catalog.load(PricingConfig(shipped_catalog=False, catalogs=[tmp_path]))
    assert [e.key for e in catalog.entries] == ["acme/m"]
    _, issues = check(PricingConfig(shipped_catalog=False), [tmp_path / "missing.yaml"])
    assert "cannot read" in issues[0].message


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("models: [unclosed\n")
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    _, issues = check(PricingConfig(shipped_catalog=False), [broken, listed])
    assert [i.file for i in issues] == [str(broken), str(listed)]
    assert "not valid YAML" in issues[0].message and "mapping" in issues[1].message


def test_rate_parsing_rules() -> None:
    prices = parse_price_set({"input": "2", "output": "8"})
    # fallbacks: cache reads and writes at the input rate, 1h writes at the write rate,
    # reasoning at the output rate
    assert prices.base.per_million() == {
        "input": 2,
        "cache_read": 2,
        "cache_write": 2,
        "cache_write_1h": 2,
        "output": 8,
        "reasoning": 8,
    }
    lc = parse_price_set(
        {
            "input": "3",
            "cache_write": "3.75",
            "output": "15",
            "long_context": [{"above": 200000, "input": "6", "output": "22.5"}],
        }
    )
    level = lc.long_context[0].rates.per_million()
    # a class the level names is its own; one the base declared stays; the rest follow the level
    assert (level["input"], level["cache_write"], level["cache_read"], level["reasoning"]) == (
        Decimal(6),
        Decimal("3.75"),
        Decimal(6),
        Decimal("22.5"),
    )
    with pytest.raises(ValidationError, match="increasing threshold"):
        parse_price_set(
            {"input": 1, "output": 1, "long_context": [{"above": 5, "input": 2}, {"above": 3, "input": 3}]}
        )
    with pytest.raises(ValidationError, match="exactly one of above"):
        parse_price_set({"input": 1, "output": 1, "long_context": [{"input": 2}]})
    with pytest.raises(ValidationError, match="cannot be combined"):
        parse_price_set(
            {
                "input": 1,
                "output": 1,
                "long_context": [{"above": 5, "input": 2}],
                "time_of_day": [{"name": "x", "windows": ["01:00-02:00"], "input": 1}],
            }
        )
    with pytest.raises(ValidationError, match="HH:MM"):
        parse_price_set({"input": 1, "output": 1, "time_of_day": [{"name": "x", "windows": ["1am-2am"]}]})


def test_scaled_tier_must_stay_whole_picodollars(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "provider: acme\nmodels:\n  - id: m\n    versions:\n      - prices: {input: '0.000003', output: 1}\n"
        "        tiers: {batch: {scale: '0.5'}}\n"
    )
    _, issues = check(PricingConfig(shipped_catalog=False), [path])
    assert "finer than a picodollar" in issues[0].message and issues[0].entry == "acme/m"


def test_model_name_candidates() -> None:
    assert candidates(" OpenAI/GPT-4o ") == ("openai/gpt-4o", "gpt-4o")
    assert candidates("claude-sonnet-4-5@20250929") == (
        "claude-sonnet-4-5@20250929",
        "claude-sonnet-4-5-20250929",
    )
    assert candidates("us.anthropic.claude-3-haiku-20240307-v1:0") == (
        "us.anthropic.claude-3-haiku-20240307-v1:0",
        "anthropic.claude-3-haiku-20240307-v1:0",
    )
    assert candidates("gpt-4.1") == ("gpt-4.1",)  # a dot in a plain name is not a geography
    assert candidates("") == ()


def test_user_override_keeps_the_names_of_the_shipped_entry(shipped: Catalog) -> None:
    catalog = Catalog.load(PricingConfig(catalogs=[FIXTURES / "self_hosted.yaml"]))
    entry = catalog.resolve("openai", "gpt-4o-2024-11-20")
    assert entry is not None and entry.catalog == "self_hosted"
    assert len(entry.versions) == 1 and entry.versions[0].effective_from == at("2025-01-01")
    assert shipped.resolve("openai", "gpt-4o-2024-11-20") is not None
    assert len(catalog.entries) == len(shipped.entries) + 3  # two acme models and one Azure deployment


def test_without_shipped_catalog_only_user_entries(tmp_path: Path) -> None:
    catalog = Catalog.load(PricingConfig(shipped_catalog=False, catalogs=[FIXTURES / "self_hosted.yaml"]))
    # prices_from openai/gpt-4o-2024-08-06 resolves to the user's own override entry
    assert sorted(e.key for e in catalog.entries) == [
        "acme/acme-ft-llama",
        "acme/acme-summarizer-v2",
        "azure.ai.openai/prod-gpt4o-eastus",
        "openai/gpt-4o-2024-08-06",
    ]
    assert catalog.resolve(None, "acme-summarizer-v2") is None  # acme is not matched without a provider
