"""Hand-computed costs from the published price sheets, per provider family.

Each case is one call priced by the shipped catalog; the expected amounts are worked out by
hand in the comments (tokens x USD per 1M / 1,000,000) from the rates on the provider's sheet,
never from the engine. Cases cover plain input/output, cache reads, cache writes (5-minute and
1-hour), reasoning, long-context tiers and their exact thresholds, batch / flex / priority
tiers, time-of-day rates, and prices before and after a change date.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from otelcost.pricing import Pricer
from tests.pricing.calls import at, calls_table

D = Decimal


def price_one(pricer: Pricer, **row: Any) -> dict[str, Any]:
    result: dict[str, Any] = pricer.price(calls_table([row])).to_pylist()[0]
    assert result["cost_usd"] == (
        result["input_cost_usd"]
        + result["cache_read_cost_usd"]
        + result["cache_write_cost_usd"]
        + result["output_cost_usd"]
        + result["reasoning_cost_usd"]
    )
    return result


# (id, call, {column: expected}) — money in USD, exact.
CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # -- OpenAI ------------------------------------------------------------------------------------
    (
        "openai plain + cached read: gpt-4o-2024-08-06 at 2.50 / 1.25 / 10.00",
        dict(
            provider="openai",
            request_model="gpt-4o",
            response_model="gpt-4o-2024-08-06",
            ts=at("2026-11-20T23:59:59"),
            input_tokens=1000,
            cache_read_tokens=200,
            output_tokens=500,
        ),
        # 800 x 2.50 = 0.002; 200 x 1.25 = 0.00025; 500 x 10.00 = 0.005
        dict(
            input_cost_usd=D("0.002"),
            cache_read_cost_usd=D("0.00025"),
            output_cost_usd=D("0.005"),
            cost_usd=D("0.00725"),
            model="gpt-4o-2024-08-06",
            price_ref="openai/gpt-4o-2024-08-06@2024-08-06",
        ),
    ),
    (
        "openai reasoning at the output rate, o3 before the 2025-06-10 price cut (10 / 2.50 / 40)",
        dict(
            provider="openai",
            response_model="o3-2025-04-16",
            ts=at("2025-06-09T23:59:59"),
            input_tokens=10_000,
            cache_read_tokens=2_000,
            output_tokens=3_000,
            reasoning_tokens=2_500,
        ),
        # 8000 x 10 = 0.08; 2000 x 2.50 = 0.005; 500 x 40 = 0.02; 2500 x 40 = 0.1
        dict(
            input_cost_usd=D("0.08"),
            cache_read_cost_usd=D("0.005"),
            output_cost_usd=D("0.02"),
            reasoning_cost_usd=D("0.1"),
            cost_usd=D("0.205"),
            price_ref="openai/o3@2025-04-16",
        ),
    ),
    (
        "openai o3 after the 2025-06-10 price cut (2 / 0.50 / 8)",
        dict(
            provider="openai",
            response_model="o3-2025-04-16",
            ts=at("2025-06-10T00:00:00"),
            input_tokens=10_000,
            cache_read_tokens=2_000,
            output_tokens=3_000,
            reasoning_tokens=2_500,
        ),
        # 8000 x 2 = 0.016; 2000 x 0.5 = 0.001; 500 x 8 = 0.004; 2500 x 8 = 0.02
        dict(
            input_cost_usd=D("0.016"),
            cache_read_cost_usd=D("0.001"),
            output_cost_usd=D("0.004"),
            reasoning_cost_usd=D("0.02"),
            cost_usd=D("0.041"),
            price_ref="openai/o3@2025-06-10",
        ),
    ),
    (
        "openai long context: gpt-5.4 above 272K bills every token at 5.00 / 0.50 / 22.50",
        dict(
            provider="openai",
            response_model="gpt-5.4-2026-03-05",
            ts=at("2026-06-01T12:00"),
            input_tokens=300_000,
            cache_read_tokens=100_000,
            output_tokens=2_000,
        ),
        # 200000 x 5 = 1.0; 100000 x 0.5 = 0.05; 2000 x 22.5 = 0.045
        dict(
            input_cost_usd=D("1"),
            cache_read_cost_usd=D("0.05"),
            output_cost_usd=D("0.045"),
            cost_usd=D("1.095"),
            price_ref="openai/gpt-5.4@2026-03-05#long>272000",
        ),
    ),
    (
        "openai long-context threshold is strict: exactly 272,000 input tokens is short context",
        dict(provider="openai", response_model="gpt-5.4", ts=at("2026-06-01T12:00"), input_tokens=272_000),
        # 272000 x 2.50 = 0.68
        dict(input_cost_usd=D("0.68"), cost_usd=D("0.68"), price_ref="openai/gpt-5.4@2026-03-05"),
    ),
    (
        "openai batch tier: gpt-5 at half price (0.625 / 5.00)",
        dict(
            provider="openai",
            response_model="gpt-5-2025-08-07",
            service_tier="batch",
            ts=at("2026-01-05T08:00"),
            input_tokens=1_000_000,
            output_tokens=100_000,
        ),
        # 1e6 x 0.625 = 0.625; 1e5 x 5 = 0.5
        dict(
            input_cost_usd=D("0.625"),
            output_cost_usd=D("0.5"),
            cost_usd=D("1.125"),
            price_ref="openai/gpt-5@2025-08-07#batch",
        ),
    ),
    (
        "openai priority tier: gpt-5 at 2.50 / 20.00",
        dict(
            provider="openai",
            response_model="gpt-5",
            service_tier="priority",
            ts=at("2026-01-05T08:00"),
            input_tokens=1_000,
            output_tokens=1_000,
        ),
        # 1000 x 2.5 = 0.0025; 1000 x 20 = 0.02
        dict(cost_usd=D("0.0225"), price_ref="openai/gpt-5@2025-08-07#priority"),
    ),
    (
        "openai batch + long context: gpt-5.4 batch above 272K (2.50 / 11.25)",
        dict(
            provider="openai",
            response_model="gpt-5.4",
            service_tier="batch",
            ts=at("2026-06-01"),
            input_tokens=400_000,
            output_tokens=10_000,
        ),
        # 400000 x 2.5 = 1.0; 10000 x 11.25 = 0.1125
        dict(
            input_cost_usd=D("1"),
            output_cost_usd=D("0.1125"),
            cost_usd=D("1.1125"),
            price_ref="openai/gpt-5.4@2026-03-05#batch,long>272000",
        ),
    ),
    (
        "openai alias history: bare gpt-4o served 2024-05-13 (5 / 15) before 2024-10-02",
        dict(
            provider="openai",
            request_model="gpt-4o",
            ts=at("2024-09-01"),
            input_tokens=1_000,
            output_tokens=1_000,
        ),
        dict(cost_usd=D("0.02"), model="gpt-4o", price_ref="openai/gpt-4o@2024-05-13"),
    ),
    (
        "openai alias history: bare gpt-4o from 2024-10-02 (2.50 / 10)",
        dict(
            provider="openai",
            request_model="gpt-4o",
            ts=at("2024-10-02"),
            input_tokens=1_000,
            output_tokens=1_000,
        ),
        dict(cost_usd=D("0.0125"), price_ref="openai/gpt-4o@2024-10-02"),
    ),
    (
        "openai cache write: gpt-5.6-terra before its 2026-07-30 cut (2.50 / 0.25 / 3.125 / 15)",
        dict(
            provider="openai",
            response_model="gpt-5.6-terra",
            ts=at("2026-07-29T23:00"),
            input_tokens=10_000,
            cache_read_tokens=1_000,
            cache_write_tokens=4_000,
            output_tokens=1_000,
        ),
        # 5000 x 2.5 = 0.0125; 1000 x 0.25 = 0.00025; 4000 x 3.125 = 0.0125; 1000 x 15 = 0.015
        dict(
            input_cost_usd=D("0.0125"),
            cache_read_cost_usd=D("0.00025"),
            cache_write_cost_usd=D("0.0125"),
            output_cost_usd=D("0.015"),
            cost_usd=D("0.04025"),
            price_ref="openai/gpt-5.6-terra@2026-06-26",
        ),
    ),
    (
        "openai cache write: gpt-5.6-terra after the cut (2 / 0.20 / 2.50 / 12)",
        dict(
            provider="openai",
            response_model="gpt-5.6-terra",
            ts=at("2026-07-30T00:00"),
            input_tokens=10_000,
            cache_read_tokens=1_000,
            cache_write_tokens=4_000,
            output_tokens=1_000,
        ),
        # 5000 x 2 = 0.01; 1000 x 0.2 = 0.0002; 4000 x 2.5 = 0.01; 1000 x 12 = 0.012
        dict(
            cache_write_cost_usd=D("0.01"), cost_usd=D("0.0322"), price_ref="openai/gpt-5.6-terra@2026-07-30"
        ),
    ),
    (
        "openai embeddings: text-embedding-3-small at 0.02",
        dict(
            provider="openai",
            operation="embeddings",
            response_model="text-embedding-3-small",
            ts=at("2026-03-01"),
            input_tokens=12_345,
        ),
        # 12345 x 0.02 = 0.0002469
        dict(input_cost_usd=D("0.0002469"), cost_usd=D("0.0002469")),
    ),
    (
        "openai fine-tune: ft:gpt-4o-mini at 0.30 / 0.15 / 1.20",
        dict(
            provider="openai",
            response_model="ft:gpt-4o-mini-2024-07-18:acme:support:9xYz",
            ts=at("2026-03-01"),
            input_tokens=2_000,
            cache_read_tokens=1_000,
            output_tokens=500,
        ),
        # 1000 x 0.3 = 0.0003; 1000 x 0.15 = 0.00015; 500 x 1.2 = 0.0006
        dict(cost_usd=D("0.00105"), model="ft:gpt-4o-mini-2024-07-18"),
    ),
    # -- Anthropic ---------------------------------------------------------------------------------
    (
        "anthropic cache read + 5-minute cache write: claude-sonnet-4-5 (3 / 0.30 / 3.75 / 15)",
        dict(
            provider="anthropic",
            response_model="claude-sonnet-4-5-20250929",
            ts=at("2025-12-01"),
            input_tokens=10_000,
            cache_read_tokens=6_000,
            cache_write_tokens=2_000,
            output_tokens=800,
        ),
        # 2000 x 3 = 0.006; 6000 x 0.3 = 0.0018; 2000 x 3.75 = 0.0075; 800 x 15 = 0.012
        dict(
            input_cost_usd=D("0.006"),
            cache_read_cost_usd=D("0.0018"),
            cache_write_cost_usd=D("0.0075"),
            output_cost_usd=D("0.012"),
            cost_usd=D("0.0273"),
            price_ref="anthropic/claude-sonnet-4-5@2025-09-29",
        ),
    ),
    (
        "anthropic 1-hour cache writes (6.00) reported by the span attribute",
        dict(
            provider="anthropic",
            response_model="claude-sonnet-4-5-20250929",
            ts=at("2025-12-01"),
            input_tokens=10_000,
            cache_read_tokens=6_000,
            cache_write_tokens=2_000,
            output_tokens=800,
            attributes={"otelcost.cache_write_1h_tokens": "500"},
        ),
        # 1500 x 3.75 = 0.005625; 500 x 6 = 0.003
        dict(cache_write_cost_usd=D("0.008625"), cost_usd=D("0.028425")),
    ),
    (
        "anthropic long context: sonnet 4.5 above 200K input (cache included) at 6 / 0.60 / 22.50",
        dict(
            provider="anthropic",
            response_model="claude-sonnet-4-5-20250929",
            ts=at("2025-12-01"),
            input_tokens=250_000,
            cache_read_tokens=50_000,
            output_tokens=1_000,
        ),
        # 200000 x 6 = 1.2; 50000 x 0.6 = 0.03; 1000 x 22.5 = 0.0225
        dict(
            input_cost_usd=D("1.2"),
            cache_read_cost_usd=D("0.03"),
            output_cost_usd=D("0.0225"),
            cost_usd=D("1.2525"),
            price_ref="anthropic/claude-sonnet-4-5@2025-09-29#long>200000",
        ),
    ),
    (
        "anthropic threshold: exactly 200,000 input tokens is standard",
        dict(
            provider="anthropic",
            response_model="claude-sonnet-4-5",
            ts=at("2025-12-01"),
            input_tokens=200_000,
        ),
        dict(cost_usd=D("0.6"), price_ref="anthropic/claude-sonnet-4-5@2025-09-29"),
    ),
    (
        "anthropic batch: haiku 4.5 at half price (0.50 / 2.50)",
        dict(
            provider="anthropic",
            response_model="claude-haiku-4-5-20251001",
            service_tier="batch",
            ts=at("2026-02-01"),
            input_tokens=1_000_000,
            output_tokens=1_000_000,
        ),
        dict(
            input_cost_usd=D("0.5"),
            output_cost_usd=D("2.5"),
            cost_usd=D("3"),
            price_ref="anthropic/claude-haiku-4-5@2025-10-15#batch",
        ),
    ),
    (
        "anthropic opus 4.6 long-context surcharge before it was removed (10 / 37.50)",
        dict(
            provider="anthropic",
            response_model="claude-opus-4-6",
            ts=at("2026-03-12T23:59:59"),
            input_tokens=300_000,
            output_tokens=10_000,
        ),
        # 300000 x 10 = 3; 10000 x 37.5 = 0.375
        dict(cost_usd=D("3.375"), price_ref="anthropic/claude-opus-4-6@2026-02-05#long>200000"),
    ),
    (
        "anthropic opus 4.6 after 2026-03-13: flat 5 / 25 at any length",
        dict(
            provider="anthropic",
            response_model="claude-opus-4-6",
            ts=at("2026-03-13"),
            input_tokens=300_000,
            output_tokens=10_000,
        ),
        # 300000 x 5 = 1.5; 10000 x 25 = 0.25
        dict(cost_usd=D("1.75"), price_ref="anthropic/claude-opus-4-6@2026-03-13"),
    ),
    (
        "anthropic thinking tokens at the output rate: opus 4.1 (75)",
        dict(
            provider="anthropic",
            response_model="claude-opus-4-1-20250805",
            ts=at("2025-09-01"),
            input_tokens=1_000,
            output_tokens=2_000,
            reasoning_tokens=1_500,
        ),
        # 1000 x 15 = 0.015; 500 x 75 = 0.0375; 1500 x 75 = 0.1125
        dict(
            input_cost_usd=D("0.015"),
            output_cost_usd=D("0.0375"),
            reasoning_cost_usd=D("0.1125"),
            cost_usd=D("0.165"),
        ),
    ),
    (
        "anthropic: a tier the model has no price for (priority) is billed at standard",
        dict(
            provider="anthropic",
            response_model="claude-haiku-4-5",
            service_tier="priority",
            ts=at("2026-02-01"),
            input_tokens=1_000_000,
        ),
        dict(cost_usd=D("1"), price_ref="anthropic/claude-haiku-4-5@2025-10-15"),
    ),
    (
        "anthropic sonnet 5 launch price until 2026-08-31 (2 / 10)",
        dict(
            provider="anthropic",
            response_model="claude-sonnet-5",
            ts=at("2026-08-31T23:59:59"),
            input_tokens=1_000_000,
            output_tokens=100_000,
        ),
        dict(cost_usd=D("3"), price_ref="anthropic/claude-sonnet-5@start"),
    ),
    (
        "anthropic sonnet 5 list price from 2026-09-01 (3 / 15)",
        dict(
            provider="anthropic",
            response_model="claude-sonnet-5",
            ts=at("2026-09-01"),
            input_tokens=1_000_000,
            output_tokens=100_000,
        ),
        dict(cost_usd=D("4.5"), price_ref="anthropic/claude-sonnet-5@2026-09-01"),
    ),
    (
        "anthropic on Vertex AI: claude-sonnet-4-5@20250929 at Anthropic's rates",
        dict(
            provider="gcp.vertex_ai",
            response_model="claude-sonnet-4-5@20250929",
            ts=at("2025-12-01"),
            input_tokens=1_000,
            output_tokens=1_000,
        ),
        # 1000 x 3 + 1000 x 15
        dict(cost_usd=D("0.018"), model="claude-sonnet-4-5"),
    ),
    # -- Google Gemini -----------------------------------------------------------------------------
    (
        "gemini plain + cache + thinking at the output rate: 2.5 pro (1.25 / 0.125 / 10)",
        dict(
            provider="gcp.gemini",
            response_model="gemini-2.5-pro",
            ts=at("2025-08-01"),
            input_tokens=100_000,
            cache_read_tokens=20_000,
            output_tokens=5_000,
            reasoning_tokens=3_000,
        ),
        # 80000 x 1.25 = 0.1; 20000 x 0.125 = 0.0025; 2000 x 10 = 0.02; 3000 x 10 = 0.03
        dict(
            input_cost_usd=D("0.1"),
            cache_read_cost_usd=D("0.0025"),
            output_cost_usd=D("0.02"),
            reasoning_cost_usd=D("0.03"),
            cost_usd=D("0.1525"),
        ),
    ),
    (
        "gemini long context: 2.5 pro above 200K (2.50 / 0.25 / 15)",
        dict(
            provider="gcp.gemini",
            response_model="gemini-2.5-pro",
            ts=at("2025-08-01"),
            input_tokens=250_000,
            cache_read_tokens=50_000,
            output_tokens=10_000,
        ),
        # 200000 x 2.5 = 0.5; 50000 x 0.25 = 0.0125; 10000 x 15 = 0.15
        dict(cost_usd=D("0.6625"), price_ref="gcp.gemini/gemini-2.5-pro@2025-03-25#long>200000"),
    ),
    (
        "gemini batch + long context: 2.5 pro batch above 200K (1.25 / 0.25 / 7.50)",
        dict(
            provider="gcp.gemini",
            response_model="gemini-2.5-pro",
            service_tier="batch",
            ts=at("2025-08-01"),
            input_tokens=250_000,
            cache_read_tokens=50_000,
            output_tokens=10_000,
        ),
        # 200000 x 1.25 = 0.25; 50000 x 0.25 = 0.0125; 10000 x 7.5 = 0.075
        dict(cost_usd=D("0.3375"), price_ref="gcp.gemini/gemini-2.5-pro@2025-03-25#batch,long>200000"),
    ),
    (
        "gemini priority: 2.5 flash at 1.8x (0.54 / 4.50)",
        dict(
            provider="gcp.gemini",
            response_model="gemini-2.5-flash",
            service_tier="priority",
            ts=at("2026-05-01"),
            input_tokens=1_000_000,
            output_tokens=1_000_000,
        ),
        dict(cost_usd=D("5.04"), price_ref="gcp.gemini/gemini-2.5-flash@2025-06-17#priority"),
    ),
    (
        "gemini 1.5 flash before its 2024-08-12 price cut (0.35 / 1.05)",
        dict(
            provider="gcp.gemini",
            response_model="gemini-1.5-flash-002",
            ts=at("2024-08-11T23:59:59"),
            input_tokens=100_000,
            output_tokens=10_000,
        ),
        # 100000 x 0.35 = 0.035; 10000 x 1.05 = 0.0105
        dict(cost_usd=D("0.0455"), price_ref="gcp.gemini/gemini-1.5-flash@2024-05-14"),
    ),
    (
        "gemini 1.5 flash after the cut (0.075 / 0.30)",
        dict(
            provider="gcp.gemini",
            response_model="gemini-1.5-flash-002",
            ts=at("2024-08-12"),
            input_tokens=100_000,
            output_tokens=10_000,
        ),
        # 100000 x 0.075 = 0.0075; 10000 x 0.3 = 0.003
        dict(cost_usd=D("0.0105"), price_ref="gcp.gemini/gemini-1.5-flash@2024-08-12"),
    ),
    (
        "gemini 1.5 pro long context at launch prices, above 128K (7 / 21)",
        dict(
            provider="gcp.gemini",
            response_model="gemini-1.5-pro",
            ts=at("2024-06-01"),
            input_tokens=200_000,
            output_tokens=1_000,
        ),
        # 200000 x 7 = 1.4; 1000 x 21 = 0.021
        dict(cost_usd=D("1.421"), price_ref="gcp.gemini/gemini-1.5-pro@2024-05-14#long>128000"),
    ),
    (
        "gemini 3.6 flash list price from 2027-01-01 (1.50)",
        dict(
            provider="gcp.gemini",
            response_model="gemini-3.6-flash-001",
            ts=at("2027-01-01"),
            input_tokens=1_000_000,
        ),
        dict(cost_usd=D("1.5"), price_ref="gcp.gemini/gemini-3.6-flash@2027-01-01"),
    ),
    (
        "gemini on Vertex AI with a resource path",
        dict(
            provider="gcp.vertex_ai",
            response_model="projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash",
            ts=at("2026-05-01"),
            input_tokens=1_000_000,
            output_tokens=100_000,
        ),
        # 1e6 x 0.30 + 1e5 x 2.50
        dict(cost_usd=D("0.55"), model="gemini-2.5-flash"),
    ),
    # -- Mistral -----------------------------------------------------------------------------------
    (
        "mistral plain + cache read: mistral-large-2512 (0.50 / 0.05 / 1.50)",
        dict(
            provider="mistral_ai",
            response_model="mistral-large-2512",
            ts=at("2026-04-01"),
            input_tokens=10_000,
            cache_read_tokens=4_000,
            output_tokens=2_000,
        ),
        # 6000 x 0.5 = 0.003; 4000 x 0.05 = 0.0002; 2000 x 1.5 = 0.003
        dict(cost_usd=D("0.0062")),
    ),
    (
        "mistral embeddings: mistral-embed (0.10)",
        dict(provider="mistral_ai", response_model="mistral-embed", ts=at("2026-04-01"), input_tokens=12_345),
        dict(cost_usd=D("0.0012345")),
    ),
    # -- DeepSeek ----------------------------------------------------------------------------------
    (
        "deepseek standard hours in 2025 (0.27 / 0.07 / 1.10)",
        dict(
            provider="deepseek",
            response_model="deepseek-chat",
            ts=at("2025-03-01T12:00"),
            input_tokens=10_000,
            cache_read_tokens=6_000,
            output_tokens=1_000,
        ),
        # 4000 x 0.27 = 0.00108; 6000 x 0.07 = 0.00042; 1000 x 1.10 = 0.0011
        dict(cost_usd=D("0.0026"), price_ref="deepseek/deepseek-chat@2025-02-26T16:30Z"),
    ),
    (
        "deepseek off-peak 16:30-00:30 UTC in 2025 (0.135 / 0.035 / 0.55)",
        dict(
            provider="deepseek",
            response_model="deepseek-chat",
            ts=at("2025-03-01T17:00"),
            input_tokens=10_000,
            cache_read_tokens=6_000,
            output_tokens=1_000,
        ),
        # 4000 x 0.135 = 0.00054; 6000 x 0.035 = 0.00021; 1000 x 0.55 = 0.00055
        dict(cost_usd=D("0.0013"), price_ref="deepseek/deepseek-chat@2025-02-26T16:30Z#off_peak"),
    ),
    (
        "deepseek off-peak window wraps past midnight: 00:15 UTC is off-peak",
        dict(
            provider="deepseek",
            response_model="deepseek-chat",
            ts=at("2025-03-02T00:15"),
            input_tokens=10_000,
            cache_read_tokens=6_000,
            output_tokens=1_000,
        ),
        dict(cost_usd=D("0.0013")),
    ),
    (
        "deepseek after the 2025-09-05 16:00 UTC standardisation: no off-peak (0.56 / 0.07 / 1.68)",
        dict(
            provider="deepseek",
            response_model="deepseek-chat",
            ts=at("2025-09-06T17:00"),
            input_tokens=10_000,
            cache_read_tokens=6_000,
            output_tokens=1_000,
        ),
        # 4000 x 0.56 = 0.00224; 6000 x 0.07 = 0.00042; 1000 x 1.68 = 0.00168
        dict(cost_usd=D("0.00434"), price_ref="deepseek/deepseek-chat@2025-09-05T16:00Z"),
    ),
    (
        "deepseek after the 2025-09-29 cut (0.28 / 0.028 / 0.42); reasoning at the output rate",
        dict(
            provider="deepseek",
            response_model="deepseek-reasoner",
            ts=at("2025-10-01"),
            input_tokens=10_000,
            cache_read_tokens=6_000,
            output_tokens=1_000,
            reasoning_tokens=800,
        ),
        # 4000 x 0.28 = 0.00112; 6000 x 0.028 = 0.000168; 200 x 0.42 = 0.000084; 800 x 0.42 = 0.000336
        dict(
            input_cost_usd=D("0.00112"),
            cache_read_cost_usd=D("0.000168"),
            output_cost_usd=D("0.000084"),
            reasoning_cost_usd=D("0.000336"),
            cost_usd=D("0.001708"),
        ),
    ),
    (
        "deepseek V4 peak hours on a weekday (1.32 / 0.044 / 3.96)",
        dict(
            provider="deepseek",
            response_model="deepseek-v4-pro",
            ts=at("2026-11-18T02:00"),  # a Wednesday
            input_tokens=1_000_000,
            cache_read_tokens=500_000,
            output_tokens=100_000,
        ),
        # 500000 x 1.32 = 0.66; 500000 x 0.044 = 0.022; 100000 x 3.96 = 0.396
        dict(cost_usd=D("1.078"), price_ref="deepseek/deepseek-v4-pro@2026-08-16T16:00Z#peak"),
    ),
    (
        "deepseek V4 the same hour on a Saturday is off-peak (0.66 / 0.022 / 1.98)",
        dict(
            provider="deepseek",
            response_model="deepseek-v4-pro",
            ts=at("2026-11-21T02:00"),
            input_tokens=1_000_000,
            cache_read_tokens=500_000,
            output_tokens=100_000,
        ),
        dict(cost_usd=D("0.539"), price_ref="deepseek/deepseek-v4-pro@2026-08-16T16:00Z"),
    ),
    # -- xAI ---------------------------------------------------------------------------------------
    (
        "xai long context is inclusive: exactly 200,000 input tokens is long (2.50)",
        dict(provider="x_ai", response_model="grok-4.20", ts=at("2026-05-01"), input_tokens=200_000),
        dict(cost_usd=D("0.5"), price_ref="x_ai/grok-4.20@start#long>=200000"),
    ),
    (
        "xai 199,999 input tokens is standard (1.25)",
        dict(provider="x_ai", response_model="grok-4.20", ts=at("2026-05-01"), input_tokens=199_999),
        dict(cost_usd=D("0.24999875"), price_ref="x_ai/grok-4.20@start"),
    ),
    (
        "xai batch: grok-4.3 at 80% (1.00 / 2.00)",
        dict(
            provider="x_ai",
            response_model="grok-4.3",
            service_tier="batch",
            ts=at("2026-06-01"),
            input_tokens=100_000,
            output_tokens=1_000_000,
        ),
        # 100000 x 1.00 = 0.1; 1e6 x 2.00 = 2.0
        dict(cost_usd=D("2.1"), price_ref="x_ai/grok-4.3@start#batch"),
    ),
    (
        "xai batch + long context: grok-4.3 batch from 200K (2.00 / 4.00)",
        dict(
            provider="x_ai",
            response_model="grok-4.3",
            service_tier="batch",
            ts=at("2026-06-01"),
            input_tokens=1_000_000,
            output_tokens=1_000_000,
        ),
        # 1e6 x 2.00 = 2; 1e6 x 4.00 = 4
        dict(cost_usd=D("6"), price_ref="x_ai/grok-4.3@start#batch,long>=200000"),
    ),
    # -- Cohere ------------------------------------------------------------------------------------
    (
        "cohere plain: command-a (2.50 / 10)",
        dict(
            provider="cohere",
            response_model="command-a-03-2025",
            ts=at("2026-01-01"),
            input_tokens=5_000,
            output_tokens=1_000,
        ),
        dict(cost_usd=D("0.0225")),
    ),
    (
        "cohere embeddings: embed-v4.0 (0.12)",
        dict(provider="cohere", response_model="embed-v4.0", ts=at("2026-01-01"), input_tokens=1_000),
        dict(cost_usd=D("0.00012")),
    ),
    # -- AWS Bedrock -------------------------------------------------------------------------------
    (
        "bedrock regional inference profile: +10% for Sonnet 4.5 (3.30)",
        dict(
            provider="aws.bedrock",
            response_model="us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            ts=at("2026-01-01"),
            input_tokens=1_000_000,
        ),
        dict(cost_usd=D("3.3"), price_ref="aws.bedrock/claude-sonnet-4-5@2025-09-29"),
    ),
    (
        "bedrock global endpoint: Anthropic's price (3.00)",
        dict(
            provider="aws.bedrock",
            response_model="global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            ts=at("2026-01-01"),
            input_tokens=1_000_000,
        ),
        dict(cost_usd=D("3"), price_ref="aws.bedrock/global.claude-sonnet-4-5@2025-09-29"),
    ),
    (
        "bedrock ARN of a foundation model",
        dict(
            provider="aws.bedrock",
            request_model="arn:aws:bedrock:eu-west-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
            ts=at("2025-01-01"),
            input_tokens=1_000_000,
            output_tokens=1_000_000,
        ),
        dict(cost_usd=D("1.5"), model="claude-3-haiku"),
    ),
    # -- Azure OpenAI ------------------------------------------------------------------------------
    (
        "azure openai global deployment: OpenAI's prices (a deployment name as request model)",
        dict(
            provider="azure.ai.openai",
            request_model="my-prod-4o",
            response_model="gpt-4o-2024-11-20",
            ts=at("2026-01-01"),
            input_tokens=1_000,
            cache_read_tokens=200,
            output_tokens=500,
        ),
        dict(cost_usd=D("0.00725"), price_ref="azure.ai.openai/gpt-4o-2024-08-06@2024-08-06"),
    ),
    (
        "azure openai batch is inherited (half price)",
        dict(
            provider="azure.ai.openai",
            response_model="gpt-4.1",
            service_tier="batch",
            ts=at("2026-01-01"),
            input_tokens=1_000_000,
            output_tokens=1_000_000,
        ),
        dict(cost_usd=D("5"), price_ref="azure.ai.openai/gpt-4.1@2025-04-14#batch"),
    ),
    (
        "azure openai priority is not inherited: standard rates",
        dict(
            provider="azure.ai.openai",
            response_model="gpt-4.1",
            service_tier="priority",
            ts=at("2026-01-01"),
            input_tokens=1_000_000,
            output_tokens=1_000_000,
        ),
        dict(cost_usd=D("10"), price_ref="azure.ai.openai/gpt-4.1@2025-04-14"),
    ),
    # -- reasoning priced apart --------------------------------------------------------------------
    (
        "perplexity sonar-deep-research prices reasoning apart (output 8, reasoning 3)",
        dict(
            provider="perplexity",
            response_model="sonar-deep-research",
            ts=at("2026-01-01"),
            input_tokens=1_000,
            output_tokens=10_000,
            reasoning_tokens=6_000,
        ),
        # 1000 x 2 = 0.002; 4000 x 8 = 0.032; 6000 x 3 = 0.018
        dict(output_cost_usd=D("0.032"), reasoning_cost_usd=D("0.018"), cost_usd=D("0.052")),
    ),
]


@pytest.mark.parametrize(("call", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hand_computed_cost(pricer: Pricer, call: dict[str, Any], expected: dict[str, Any]) -> None:
    result = price_one(pricer, **call)
    assert result["pricing_status"] == "priced"
    assert result["effective_cost_usd"] == result["cost_usd"]  # no discounts configured
    for column, value in expected.items():
        assert result[column] == value, column


def test_every_provider_family_is_covered() -> None:
    families = {call["provider"] for _, call, _ in CASES}
    assert families >= {
        "openai",
        "anthropic",
        "gcp.gemini",
        "gcp.vertex_ai",
        "mistral_ai",
        "deepseek",
        "x_ai",
        "cohere",
        "aws.bedrock",
        "azure.ai.openai",
    }
