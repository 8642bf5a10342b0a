"""optimize over the lake of known traffic: each what-if against the providers' prices by hand."""

from __future__ import annotations

from decimal import Decimal

from otelcost.reports import ReportRequest, run_report
from tests.reports.conftest import Company
from tests.reports.traffic import PRICES, Call, cost_of

MILLION = Decimal(1_000_000)


def cost_on(call: Call, model: str, scale: Decimal = Decimal(1)) -> Decimal:
    _, _, input_price, _, output_price = PRICES[model]
    return scale * (call.input_tokens * input_price + call.output_tokens * output_price) / MILLION


def test_a_short_answer_job_on_a_frontier_model_is_a_right_sizing_and_a_batch_candidate(
    company: Company,
) -> None:
    result = run_report("optimize", company.context, ReportRequest(period="2026-11"))
    tagger = [c for c in company.in_month(11) if c.feature == "sku-tagger"]
    now = sum((cost_of(c) for c in tagger), Decimal(0))

    (right,) = result.sections["right_size"].to_pylist()
    on_mini = sum((cost_on(c, "gpt-4o-mini") for c in tagger), Decimal(0))
    assert (right["feature"], right["cheaper_model"], right["calls"]) == (
        "sku-tagger",
        "openai/gpt-4o-mini",
        60,
    )
    assert (right["cost_usd"], right["what_if_cost_usd"], right["saving_usd"]) == (
        now,
        on_mini,
        now - on_mini,
    )

    batch = {r["feature"]: r for r in result.sections["batch"].to_pylist()}
    assert set(batch) == {"sku-tagger", "blarney"}  # the features whose calls name no user or session
    assert batch["sku-tagger"]["saving_usd"] == now / 2  # OpenAI's batch tier is half price
    blarney = sum((cost_of(c) for c in company.in_month(11) if c.feature == "blarney"), Decimal(0))

    summary = {r["opportunity"]: r for r in result.sections["summary"].to_pylist()}
    assert summary["right_size"]["saving_usd"] == now - on_mini
    assert summary["batch"]["saving_usd"] == (now + blarney) / 2


def test_long_uncached_prompts_are_caching_candidates(company: Company) -> None:
    caching = run_report("optimize", company.context, ReportRequest(period="2026-11")).sections["caching"]
    rows = {r["feature"]: r for r in caching.to_pylist()}
    review = [c for c in company.in_month(11) if c.feature == "pr-review"]
    _, _, input_price, cache_price, _ = PRICES["claude-sonnet-4-5"]
    movable = int(sum(c.input_tokens for c in review) * Decimal("0.5"))
    assert rows["pr-review"]["saving_usd"] == movable * (input_price - cache_price) / MILLION
    assert rows["pr-review"]["cache_hit_rate"] == 0.0
    assert "query-rewrite" not in rows  # 600-token prompts are below the providers' cacheable minimum


def test_context_bloat_lists_the_longest_prompts_first(company: Company) -> None:
    bloat = run_report("optimize", company.context, ReportRequest(period="2026-11", top=2)).sections[
        "context_bloat"
    ]
    assert [r["feature"] for r in bloat.to_pylist()] == ["pr-review", "auto-triage"]
