"""The lake's effective cost (after ``pricing.discounts``) against a discounted bill.

A lake of its own (this module), priced with a 10% contract discount on gpt-4o: 3 calls on
2026-11-10 of 20,000 input and 5,000 output tokens at 2.50 / 10.00 per 1M list, so input 60,000
= 0.15 and output 15,000 = 0.15 at list, 0.135 each after the discount. The bill
(fixtures/openai-discounted-costs.json, a Costs API page with ``quantity``) charges 0.135 each.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from otelcost.pricing.catalog import Catalog
from otelcost.pricing.config import PricingConfig
from otelcost.reconcile import reconcile
from tests.reconcile.conftest import FIXTURES, NOVEMBER
from tests.reports.traffic import Call, build_lake, day_start

DISCOUNT = {"discounts": [{"provider": "openai", "model": "gpt-4o-2024-08-06", "percent": 10}]}


@pytest.fixture(scope="module")
def lake_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    calls = [
        Call(
            day_start(date(2026, 11, 10)) + timedelta(hours=10, minutes=i),
            "checkout",
            "payments",
            "explain",
            model="gpt-4o",
            input_tokens=20_000,
            output_tokens=5_000,
        )
        for i in range(3)
    ]
    return build_lake(tmp_path_factory.mktemp("discounts") / "data", calls, pricing=DISCOUNT).lake_dir


def test_the_effective_cost_explains_a_discounted_bill(lake_dir: Path) -> None:
    result = reconcile(
        lake_dir,
        "openai",
        [FIXTURES / "openai-discounted-costs.json"],
        *NOVEMBER,
        catalog=Catalog.load(PricingConfig()),
    )
    assert result.summary["explained_usd"] == Decimal("0.27")
    assert result.summary["lake_usd"] == Decimal("0.27")
    assert result.passed
    assert result.sections["findings"].num_rows == 0


def test_the_list_cost_shows_the_discount_as_a_price_disagreement(lake_dir: Path) -> None:
    result = reconcile(
        lake_dir,
        "openai",
        [FIXTURES / "openai-discounted-costs.json"],
        datetime(2026, 11, 10, tzinfo=UTC),
        datetime(2026, 11, 11, tzinfo=UTC),
        catalog=Catalog.load(PricingConfig()),
        cost="list",
    )
    summary = result.summary
    assert (summary["billed_usd"], summary["lake_usd"], summary["explained_usd"]) == (
        Decimal("0.27"),
        Decimal("0.30"),
        Decimal("0.27"),
    )
    assert summary["over_attributed_price_usd"] == Decimal("0.03")
    rows = result.sections["findings"].to_pylist()
    assert [(r["cause"], r["token_class"], r["usd"]) for r in rows] == [
        ("price_lower_on_bill", "input", Decimal("0.015")),
        ("price_lower_on_bill", "output", Decimal("0.015")),
    ]
    assert "(-10.00%)" in rows[0]["likely_cause"]
    assert result.passed  # all of the bill is explained; the lake is what is too high
