"""Catalog problems name the file, the entry and the key path inside it; numbers stay exact."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from otelcost.pricing import Catalog, PricingConfig, check
from otelcost.pricing.catalog_models import CatalogEntry, PriceSetModel, RatesModel
from otelcost.pricing.rates import RATE_CLASSES

ENTRY = "provider: acme\nmodels:\n  - id: m\n    versions:\n"
ONE_VERSION = "    versions: [{prices: {input: 1, output: 1}}]\n"


def problems(tmp_path: Path, text: str) -> list[tuple[str | None, str]]:
    path = tmp_path / "acme.yaml"
    path.write_text(text)
    _, issues = check(PricingConfig(shipped_catalog=False), [path])
    assert all(issue.file == str(path) for issue in issues)
    return [(issue.entry, issue.message) for issue in issues if issue.severity == "error"]


@pytest.mark.parametrize(
    ("versions", "message"),
    [
        (
            "      - prices: {input: 1, output: 2, long_context: [{above: 10, input: -1}]}\n",
            "versions[0].prices.long_context[0].input: a price cannot be negative (-1)",
        ),
        (
            "      - prices: {input: 1, output: 2}\n        tiers: {batch: {scale: '0.5', inptu: 1}}\n",
            "versions[0].tiers.batch: unknown key 'inptu'",
        ),
        (
            "      - prices: {input: 1, output: 2}\n        tiers: {batch: {input: 1}}\n",
            "versions[0].tiers.batch: the output rate is missing (write output: 0 for input-only models)",
        ),
        (
            "      - prices: {input: 1, output: 2,\n"
            "                 time_of_day: [{name: peak, windows: ['01:00-02:00', '0100']}]}\n",
            "versions[0].prices.time_of_day[0].windows[1]: expected HH:MM-HH:MM, got '0100'",
        ),
        (
            "      - prices: {input: 1, output: 2}\n      - effective_from: 2025-01-01\n"
            "        prices: {input: 1, output: 2}\n        source: {url: 'https://x', read: yesterday}\n",
            "versions[1].source.read: expected a date, got 'yesterday'",
        ),
        (
            "      - effective_from: soon\n        prices: {input: 1, output: 2}\n",
            "versions[0].effective_from: expected a date (2024-10-02) or an ISO date-time, got 'soon'",
        ),
        (
            "      - prices: {amortized: {usd_per_hour: 1, input_tokens_per_hour: 10, output_weight: 0}}\n",
            "versions[0].prices.amortized.output_weight: must be greater than zero",
        ),
        (
            "      - prices: '2.50'\n",
            "versions[0].prices: expected a mapping of rates (input, output, cache_read ...), got '2.50'",
        ),
        ("      - prices: {input: 0.0000001, output: 1}\n", "finer than a picodollar per token"),
    ],
)
def test_a_problem_in_a_version_names_the_entry_and_the_key_path(
    tmp_path: Path, versions: str, message: str
) -> None:
    ((entry, found),) = problems(tmp_path, ENTRY + versions)
    assert entry == "acme/m"
    assert message in found


def test_the_whole_message_reads_file_entry_key_problem(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(ENTRY + "      - prices: {input: '-2', output: 1}\n")
    _, (issue,) = check(PricingConfig(shipped_catalog=False), [path])
    assert str(issue) == f"{path}: acme/m: versions[0].prices.input: a price cannot be negative (-2)"


@pytest.mark.parametrize(
    ("text", "entry", "message"),
    [
        ("provider: acme\nsource: {url: 'https://x', read: never}\nmodels: []\n", None, "source.read:"),
        ("provider: acme\nmodel: []\n", None, "unknown key 'model'"),
        ("provider: acme\n", None, "missing key 'models'"),
        (
            "provider: acme\nmodels:\n  - id: m\n    kind: image\n" + ONE_VERSION,
            "acme/m",
            "kind: expected one of chat, embedding, completion, got 'image'",
        ),
        (
            "provider: acme\nmodels:\n  - id: m\n    aliases: ['  ']\n" + ONE_VERSION,
            "acme/m",
            "aliases: a name is empty",
        ),
        (
            "models:\n  - id: m\n    versions: [{prices: {input: 1, output: 1}}]\n",
            "models[0] (m)",
            "no provider",
        ),
        ("provider: acme\nmodels:\n  - versions: []\n", "models[0]", "missing key 'id'"),
        # A typo explains the problems inside its mapping: it is the one reported.
        (
            "provider: acme\nmodels:\n  - id: m\n    verions: []\n    versions: [{prices: {input: -1}}]\n",
            "acme/m",
            "unknown key 'verions'",
        ),
    ],
)
def test_file_and_entry_problems_name_their_key(
    tmp_path: Path, text: str, entry: str | None, message: str
) -> None:
    ((found_entry, found),) = problems(tmp_path, text)
    assert found_entry == entry
    assert message in found


def test_one_bad_entry_does_not_hide_the_others(tmp_path: Path) -> None:
    text = (
        "provider: acme\nmodels:\n"
        "  - id: a\n    versions: [{prices: {input: x, output: 1}}]\n"
        "  - id: b\n    versions: [{prices: {input: 1, output: 1}}]\n"
        "  - id: c\n    versions: [{prices: {input: 1, output: 1}, tiers: {standard: {scale: 1}}}]\n"
    )
    assert problems(tmp_path, text) == [
        ("acme/a", "versions[0].prices.input: expected a number of USD per 1M tokens, got 'x'"),
        (
            "acme/c",
            "versions[0].tiers: unknown tier 'standard' (batch, flex or priority; standard is prices)",
        ),
    ]
    path = tmp_path / "acme.yaml"
    catalog, _ = check(PricingConfig(shipped_catalog=False), [path])
    assert [entry.key for entry in catalog.entries] == ["acme/b"]


def test_unquoted_yaml_decimals_are_read_from_their_text(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(ENTRY + "      - prices: {input: 0.0375, cache_read: 1.5e-2, output: 0.1}\n")
    (entry,) = Catalog.load(PricingConfig(shipped_catalog=False, catalogs=[path])).entries
    base = entry.versions[0].prices.base
    assert dict(base.declared) == {
        "input": Decimal("0.0375"),
        "cache_read": Decimal("0.015"),
        "output": Decimal("0.1"),
    }
    assert (base.input, base.cache_read, base.output) == (37_500, 15_000, 100_000)  # picodollars per token


def test_file_models_forbid_unknown_keys_and_are_immutable() -> None:
    prices = PriceSetModel.model_validate({"input": "2.50", "output": 10})
    assert prices.input == Decimal("2.50") and isinstance(prices.output, Decimal)
    with pytest.raises(ValidationError):
        prices.input = Decimal(1)  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs"):
        CatalogEntry.model_validate({"id": "m", "versions": [{"prices": {"input": 1, "output": 1}}], "x": 1})
    assert tuple(RatesModel.model_fields) == RATE_CLASSES
