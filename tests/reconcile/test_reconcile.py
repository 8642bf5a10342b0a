"""Reconciliation of hand-written invoices against the lake of known traffic (conftest.py).

Every expected amount is computed by hand from the traffic and the published prices listed in
conftest.py; the invoices in fixtures/ are written from the same arithmetic, with planted gaps.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from otelcost.pricing.catalog import Catalog
from otelcost.pricing.config import PricingConfig
from otelcost.reconcile import ReconcileError, ReconcileResult, reconcile
from tests.reconcile.conftest import FIXTURES, NOVEMBER, Lake

D = Decimal


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(PricingConfig())


def nov(day: int) -> date:
    return date(2026, 11, day)


def run(lake: Lake, catalog: Catalog, provider: str, *files: str, **options: Any) -> ReconcileResult:
    return reconcile(lake.dir, provider, [FIXTURES / f for f in files], *NOVEMBER, catalog=catalog, **options)


def findings(result: ReconcileResult) -> list[tuple[Any, ...]]:
    keys = ("kind", "cause", "model", "token_class", "first_day", "last_day", "usd", "tokens")
    return [tuple(row[k] for k in keys) for row in result.sections["findings"].to_pylist()]


def assert_conserved(result: ReconcileResult) -> None:
    s = result.summary
    assert s["billed_usd"] == s["explained_usd"] + s["unexplained_usd"]
    assert s["lake_usd"] == s["explained_usd"] + s["over_attributed_usd"]
    cells = result.sections["cells"].to_pylist()
    for cell in cells:
        assert cell["billed_usd"] == cell["explained_usd"] + cell["unexplained_usd"], cell
        assert cell["lake_usd"] == cell["explained_usd"] + cell["over_attributed_usd"], cell
    assert sum(c["billed_usd"] for c in cells) == s["billed_usd"]
    assert sum(c["lake_usd"] for c in cells) == s["lake_usd"]


@pytest.mark.parametrize(
    ("provider", "files", "billed"),
    [
        # 3 days x (gpt-4o-mini 0.195 + gpt-4o 0.40) + the eval-runner's 0.07 on 2026-11-03
        ("openai", ("openai-costs.json", "openai-usage.json"), D("1.855")),
        # the costs export alone: dollars without tokens, compared per cell in dollars
        ("openai", ("openai-costs.json",), D("1.855")),
        # regional 0.1056 + 0.00264 + 0.066 and global 0.06 + 0.03; tax and EC2 rows left out
        ("bedrock", ("bedrock-cur2.csv",), D("0.1056") + D("0.00264") + D("0.066") + D("0.06") + D("0.03")),
        ("azure-openai", ("azure-actual-cost.csv",), D("0.045") + D("0.015") + D("0.03")),
    ],
)
def test_a_bill_of_exactly_the_traffic_is_fully_explained(
    lake: Lake, catalog: Catalog, provider: str, files: tuple[str, ...], billed: Decimal
) -> None:
    result = run(lake, catalog, provider, *files)
    summary = result.summary
    assert summary["billed_usd"] == billed
    assert summary["lake_usd"] == billed
    assert summary["explained_usd"] == billed
    assert summary["unexplained_usd"] == 0
    assert summary["over_attributed_usd"] == 0
    assert summary["explained_share"] == 1.0
    assert result.passed
    assert findings(result) == []
    assert_conserved(result)


def test_the_usage_export_alone_is_compared_in_tokens(lake: Lake, catalog: Catalog) -> None:
    result = run(lake, catalog, "openai", "openai-usage.json")
    summary = result.summary
    # mini 3 x (800,000 + 200,000 + 100,000); gpt-4o 100,000 + 122,000 + 100,000
    assert summary["basis"] == "tokens"
    assert summary["billed_tokens"] == 3 * 1_100_000 + 100_000 + 122_000 + 100_000
    assert summary["explained_tokens"] == summary["billed_tokens"]
    assert summary["billed_usd"] is None
    assert result.passed
    assert any("compared in tokens" in note for note in result.notes)


def test_planted_gaps_are_found_sized_and_named(lake: Lake, catalog: Catalog) -> None:
    # fixtures/openai-gaps-*: the dashboard's CSV exports (costs comma-separated, usage TSV).
    result = run(lake, catalog, "openai", "openai-gaps-costs.csv", "openai-gaps-usage.tsv")
    summary = result.summary
    # billed: mini 4 days x 0.195 + gpt-4o 3 days x 0.36 (10% below list) + gpt-4.1 0.20 + 0.08
    assert summary["billed_usd"] == D("2.14")
    assert summary["lake_usd"] == D("1.855")
    # explained: mini 3 x 0.195 + gpt-4o 6 cells x 0.18 (the lower price)
    assert summary["explained_usd"] == D("1.665")
    assert summary["unexplained_usd"] == D("0.475")
    assert summary["unexplained_price_usd"] == 0
    # over: price 6 cells x 0.02, volume the eval-runner's 0.05 + 0.02 on 2026-11-03
    assert summary["over_attributed_usd"] == D("0.19")
    assert summary["over_attributed_price_usd"] == D("0.12")
    assert summary["explained_share"] == round(1.665 / 2.14, 6)
    assert not result.passed  # under the default 0.98
    assert findings(result) == [
        ("unexplained", "model_not_in_lake", "gpt-4.1", None, nov(3), nov(3), D("0.28"), 110_000),
        ("unexplained", "day_missing", None, None, nov(5), nov(5), D("0.195"), 1_100_000),
        ("over_attributed", "more_spans", "gpt-4o-2024-08-06", None, nov(3), nov(3), D("0.07"), 22_000),
        ("price", "price_lower_on_bill", "gpt-4o-2024-08-06", "input", nov(2), nov(4), D("0.06"), 240_000),
        ("price", "price_lower_on_bill", "gpt-4o-2024-08-06", "output", nov(2), nov(4), D("0.06"), 60_000),
    ]
    price = result.sections["findings"].to_pylist()[3]
    assert price["billed_usd_per_mtok"] == D("2.25")
    assert price["lake_usd_per_mtok"] == D("2.5")
    assert "-10.00%" in price["likely_cause"]
    assert_conserved(result)


def test_an_unpriced_model_and_a_non_token_charge(lake: Lake, catalog: Catalog) -> None:
    result = run(lake, catalog, "anthropic", "anthropic-cost-report.json", "anthropic-usage-report.json")
    summary = result.summary
    # cents: 2 x (19.5 + 0.75 + 3.75 + 15) + 20 + 10 + 1 = 109 -> 1.09 USD
    assert summary["billed_usd"] == D("1.09")
    assert summary["lake_usd"] == D("0.78")
    assert summary["explained_usd"] == D("0.78")
    assert summary["unexplained_usd"] == D("0.31")
    assert summary["unexplained_price_usd"] == D("0.30")
    assert findings(result) == [
        (
            "price",
            "unpriced",
            "claude-mythos-9",
            None,
            date(2026, 11, 2),
            date(2026, 11, 2),
            D("0.30"),
            22_000,
        ),
        (
            "unexplained",
            "non_token_charge",
            "Web Search",
            None,
            date(2026, 11, 2),
            date(2026, 11, 2),
            D("0.01"),
            0,
        ),
    ]
    assert_conserved(result)


def test_min_explained_decides_passed_exactly(lake: Lake, catalog: Catalog) -> None:
    files = ("openai-gaps-costs.csv", "openai-gaps-usage.tsv")
    # 1.665 / 2.14 = 0.77803738...: 0.778 passes, 0.7781 does not
    assert run(lake, catalog, "openai", *files, min_explained=D("0.778")).passed
    assert not run(lake, catalog, "openai", *files, min_explained=D("0.7781")).passed


def test_small_findings_are_left_out_of_the_list_not_the_totals(lake: Lake, catalog: Catalog) -> None:
    result = run(
        lake, catalog, "openai", "openai-gaps-costs.csv", "openai-gaps-usage.tsv", min_finding=D("0.1")
    )
    assert [row[1] for row in findings(result)] == ["model_not_in_lake", "day_missing"]
    assert result.summary["over_attributed_usd"] == D("0.19")
    assert any("3 findings under 0.1 USD" in note for note in result.notes)


def test_a_model_map_joins_names_the_catalog_cannot(lake: Lake, catalog: Catalog) -> None:
    # Without a catalog the bill's gpt-4o-mini-2024-07-18 is not the lake's gpt-4o-mini: only
    # gpt-4o (spelled alike on both sides: 0.40 + 0.47 + 0.40) is explained.
    plain = reconcile(lake.dir, "openai", [FIXTURES / "openai-costs.json"], *NOVEMBER)
    assert plain.summary["explained_usd"] == D("1.27")
    causes = {(row[1], row[2], row[6]) for row in findings(plain)}
    assert causes == {
        ("model_not_in_lake", "gpt-4o-mini-2024-07-18", D("0.585")),
        ("model_not_on_bill", "gpt-4o-mini", D("0.585")),
    }
    hints = [row["likely_cause"] for row in plain.sections["findings"].to_pylist()]
    assert any("the lake has models the bill never names: gpt-4o-mini" in hint for hint in hints)
    mapped = reconcile(
        lake.dir,
        "openai",
        [FIXTURES / "openai-costs.json"],
        *NOVEMBER,
        model_map={"gpt-4o-mini-2024-07-18": "gpt-4o-mini"},
    )
    assert mapped.summary["explained_usd"] == D("1.855")


def test_lines_outside_the_period_are_not_compared(lake: Lake, catalog: Catalog) -> None:
    start, end = datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC)
    result = reconcile(lake.dir, "openai", [FIXTURES / "openai-costs.json"], start, end, catalog=catalog)
    assert result.summary["billed_usd"] == D("0.595")
    assert result.passed
    assert any("10 invoice lines fall outside" in note for note in result.notes)


def test_the_period_must_be_whole_days(lake: Lake) -> None:
    with pytest.raises(ReconcileError, match="UTC midnight"):
        reconcile(
            lake.dir,
            "openai",
            [FIXTURES / "openai-costs.json"],
            datetime(2026, 11, 2, 12, tzinfo=UTC),
            datetime(2026, 11, 3, tzinfo=UTC),
        )
    with pytest.raises(ReconcileError, match="no provider 'vertex'"):
        reconcile(lake.dir, "vertex", [FIXTURES / "openai-costs.json"], *NOVEMBER)


def test_a_day_the_bill_lacks_is_over_attributed(lake: Lake, catalog: Catalog, tmp_path: Path) -> None:
    # The explained bill without its last bucket (2026-11-04): that day's 0.195 + 0.40 of spans
    # have no bill line at all.
    page = json.loads((FIXTURES / "openai-costs.json").read_text())
    page["data"] = page["data"][:2]
    short = tmp_path / "costs-without-nov-4.json"
    short.write_text(json.dumps(page))
    result = reconcile(lake.dir, "openai", [short], *NOVEMBER, catalog=catalog)
    assert result.summary["billed_usd"] == D("1.26")
    assert result.summary["explained_usd"] == D("1.26")
    assert result.summary["over_attributed_usd"] == D("0.595")
    assert result.passed  # every billed dollar is explained; the lake has more
    assert findings(result) == [
        ("over_attributed", "day_not_billed", None, None, nov(4), nov(4), D("0.595"), 1_100_000 + 100_000)
    ]
