"""The vectorised pricer: statuses, schema, discounts, exactness, user catalogs, throughput."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from otelcost.errors import PricingError
from otelcost.pricing import Catalog, Discount, Pricer, PricingConfig
from otelcost.schema import CALL_SCHEMA, RECORD_SCHEMA
from tests.pricing.calls import at, calls_table
from tests.pricing.conftest import FIXTURES
from tests.pricing.reference import price_row

D = Decimal


def user_catalog(tmp_path: Path, text: str, name: str = "contract.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- statuses, schema, counters ------------------------------------------------------------------


def test_unknown_model_is_kept_with_its_tokens_and_zero_cost(pricer: Pricer) -> None:
    calls = calls_table(
        [
            dict(
                provider="openai",
                request_model="gpt-9-ultra",
                ts=at("2026-11-01"),
                input_tokens=123,
                output_tokens=45,
            ),
            dict(provider="acme", request_model="acme-summarizer-v2", ts=at("2026-11-01"), input_tokens=7),
            dict(provider="openai", ts=at("2026-11-01"), input_tokens=9, output_tokens=1),
            dict(
                provider="openai", request_model="  ", response_model="", ts=at("2026-11-01"), input_tokens=1
            ),
            dict(
                provider="openai", response_model="gpt-4o-mini", ts=at("2026-11-01"), input_tokens=1_000_000
            ),
        ]
    )
    rows = pricer.price(calls).to_pylist()
    assert [r["pricing_status"] for r in rows] == [
        "unknown_model",
        "unknown_model",
        "no_model",
        "no_model",
        "priced",
    ]
    for row in rows[:4]:
        assert row["model"] is None and row["price_ref"] is None
        assert row["cost_usd"] == row["effective_cost_usd"] == 0
    assert rows[0]["input_tokens"] == 123 and rows[0]["output_tokens"] == 45
    assert rows[4]["cost_usd"] == D("0.15")
    counts = pricer.counters
    assert counts.by_status == {"priced": 1, "unknown_model": 2, "no_model": 2}
    assert counts.rows == 5 and counts.batches == 1


def test_a_call_before_the_first_version_is_unknown(pricer: Pricer) -> None:
    # gpt-5.6-luna's first price is from 2026-06-26: nothing prices an earlier call.
    rows = pricer.price(
        calls_table(
            [
                dict(
                    provider="openai",
                    response_model="gpt-5.6-luna",
                    ts=at("2026-06-25T23:59:59"),
                    input_tokens=5,
                )
            ]
        )
    ).to_pylist()
    assert rows[0]["pricing_status"] == "unknown_model"


def test_a_retired_model_is_unknown_after_its_effective_to(pricer: Pricer) -> None:
    rows = pricer.price(
        calls_table(
            [
                dict(
                    provider="deepseek",
                    response_model="deepseek-chat",
                    ts=at("2026-07-23T23:59:59"),
                    input_tokens=5,
                ),
                dict(
                    provider="deepseek", response_model="deepseek-chat", ts=at("2026-07-24"), input_tokens=5
                ),
            ]
        )
    ).to_pylist()
    assert [r["pricing_status"] for r in rows] == ["priced", "unknown_model"]


def test_output_is_record_schema_and_other_columns_pass_through(pricer: Pricer) -> None:
    calls = calls_table(
        [
            dict(
                provider="anthropic",
                response_model="claude-haiku-4-5",
                ts=at("2026-02-01"),
                input_tokens=10,
                team="payments",
                attributes={"app.team": "payments"},
            ),
            dict(provider=None, request_model="gemini-2.5-flash", ts=at("2026-02-01"), input_tokens=10),
        ]
    )
    priced = pricer.price(calls)
    assert priced.schema.equals(RECORD_SCHEMA)
    for name in CALL_SCHEMA.names:
        assert priced[name].equals(calls[name]), name
    # no provider: the model makers' own catalogs are searched
    assert priced["model"].to_pylist() == ["claude-haiku-4-5", "gemini-2.5-flash"]


def test_empty_batch(pricer: Pricer) -> None:
    priced = pricer.price(CALL_SCHEMA.empty_table())
    assert priced.num_rows == 0 and priced.schema.equals(RECORD_SCHEMA)


def test_multi_chunk_input_and_service_tier_spellings(pricer: Pricer) -> None:
    first = calls_table(
        [
            dict(
                provider="openai",
                response_model="gpt-5",
                service_tier="Batch",
                ts=at("2026-01-01"),
                input_tokens=1_000_000,
            )
        ]
    )
    second = calls_table(
        [
            dict(
                provider="OpenAI",
                response_model="GPT-5-2025-08-07",
                service_tier="weird",
                ts=at("2026-01-01"),
                input_tokens=1_000_000,
            )
        ]
    )
    calls = pa.concat_tables([first, second])
    assert calls["provider"].num_chunks == 2
    rows = pricer.price(calls).to_pylist()
    assert [r["cost_usd"] for r in rows] == [D("0.625"), D("1.25")]  # unknown tier -> standard
    assert rows[1]["price_ref"] == "openai/gpt-5@2025-08-07"


def test_response_model_first_then_request_model(pricer: Pricer) -> None:
    rows = pricer.price(
        calls_table(
            [
                # response model unknown to the catalog (a router's name): the request model prices it
                dict(
                    provider="openai",
                    request_model="gpt-4o-mini",
                    response_model="router-xyz",
                    ts=at("2026-01-01"),
                    input_tokens=1_000_000,
                ),
                # both known: the dated response model wins
                dict(
                    provider="openai",
                    request_model="gpt-4o",
                    response_model="gpt-4o-2024-05-13",
                    ts=at("2026-01-01"),
                    input_tokens=1_000_000,
                ),
            ]
        )
    ).to_pylist()
    assert [r["model"] for r in rows] == ["gpt-4o-mini", "gpt-4o-2024-05-13"]
    assert [r["cost_usd"] for r in rows] == [D("0.15"), D("5")]


def test_token_counts_are_clamped_not_trusted_blindly(pricer: Pricer) -> None:
    # cache reads larger than input (a broken instrumentation) never make input cost negative
    rows = pricer.price(
        calls_table(
            [
                dict(
                    provider="openai",
                    response_model="gpt-4o-mini",
                    ts=at("2026-01-01"),
                    input_tokens=100,
                    cache_read_tokens=400,
                    output_tokens=10,
                    reasoning_tokens=50,
                )
            ]
        )
    ).to_pylist()
    assert rows[0]["input_cost_usd"] == 0
    assert rows[0]["cache_read_cost_usd"] == D("0.00003")  # 400 x 0.075
    assert rows[0]["output_cost_usd"] == 0
    assert rows[0]["reasoning_cost_usd"] == D("0.00003")  # 50 x 0.60


# -- exactness -----------------------------------------------------------------------------------


def test_costs_beyond_int64_picodollars_are_exact(pricer: Pricer) -> None:
    # 10^12 output tokens of o1 at 60 USD/1M = 60,000,000 USD: 6e19 picodollars overflow int64.
    rows = pricer.price(
        calls_table(
            [
                dict(provider="openai", response_model="o1", ts=at("2026-01-01"), output_tokens=10**12),
                dict(provider="openai", response_model="o1", ts=at("2026-01-01"), output_tokens=1),
            ]
        )
    ).to_pylist()
    assert rows[0]["cost_usd"] == D("60000000")
    assert rows[1]["cost_usd"] == D("0.00006")


# -- discounts -----------------------------------------------------------------------------------


def test_discount_specificity_and_dates(shipped: Catalog) -> None:
    config = PricingConfig(
        discounts=[
            Discount(provider="openai", percent=D("10")),
            Discount(provider="openai", model="gpt-4o*", percent=D("15")),
            Discount(provider="openai", model="gpt-4o-mini", percent=D("20")),
            Discount(provider="anthropic", percent=D("12.5"), effective_from=at("2026-01-01").date()),
            Discount(
                provider="*", model="gemini-2.5-*", percent=D("5"), effective_to=at("2026-01-01").date()
            ),
        ]
    )
    pricer = Pricer(shipped, config)
    rows = pricer.price(
        calls_table(
            [
                dict(provider="openai", response_model="gpt-5", ts=at("2026-02-01"), input_tokens=1_000_000),
                dict(
                    provider="openai",
                    response_model="gpt-4o-2024-08-06",
                    ts=at("2026-02-01"),
                    input_tokens=1_000_000,
                ),
                dict(
                    provider="openai",
                    response_model="gpt-4o-mini",
                    ts=at("2026-02-01"),
                    input_tokens=1_000_000,
                ),
                dict(
                    provider="anthropic",
                    response_model="claude-haiku-4-5",
                    ts=at("2025-12-31T23:59:59"),
                    input_tokens=1_000_000,
                ),
                dict(
                    provider="anthropic",
                    response_model="claude-haiku-4-5",
                    ts=at("2026-01-01"),
                    input_tokens=1_000_000,
                ),
                dict(
                    provider="gcp.vertex_ai",
                    response_model="gemini-2.5-flash",
                    ts=at("2025-12-31"),
                    input_tokens=1_000_000,
                ),
                dict(
                    provider="gcp.vertex_ai",
                    response_model="gemini-2.5-flash",
                    ts=at("2026-01-01"),
                    input_tokens=1_000_000,
                ),
            ]
        )
    ).to_pylist()
    assert [r["cost_usd"] for r in rows] == [
        D("1.25"),
        D("2.5"),
        D("0.15"),
        D("1"),
        D("1"),
        D("0.3"),
        D("0.3"),
    ]
    assert [r["effective_cost_usd"] for r in rows] == [
        D("1.125"),  # 10% off gpt-5
        D("2.125"),  # 15% (glob gpt-4o*) off 2.50
        D("0.12"),  # 20% (exact id) beats the glob
        D("1"),  # the anthropic discount starts on 2026-01-01
        D("0.875"),  # 12.5% off
        D("0.285"),  # 5% off, any provider
        D("0.3"),  # that discount ended
    ]


def test_discount_rounds_half_to_even_at_the_picodollar(tmp_path: Path) -> None:
    catalog_file = user_catalog(
        tmp_path,
        """
provider: acme
models:
  - id: pico-model
    versions:
      - prices: {input: "0.000001", output: "0"}   # exactly one picodollar per token
""",
    )
    config = PricingConfig(
        shipped_catalog=False, catalogs=[catalog_file], discounts=[Discount(provider="acme", percent=D("50"))]
    )
    pricer = Pricer(Catalog.load(config), config)
    tokens = [1, 2, 3, 5, 7, 9]
    rows = pricer.price(
        calls_table(
            [
                dict(provider="acme", request_model="pico-model", ts=at("2026-01-01"), input_tokens=n)
                for n in tokens
            ]
        )
    ).to_pylist()
    pico = [int(r["effective_cost_usd"] * 10**12) for r in rows]
    # 0.5 -> 0, 1 -> 1, 1.5 -> 2, 2.5 -> 2, 3.5 -> 4, 4.5 -> 4
    assert pico == [0, 1, 2, 2, 4, 4]
    assert [r["cost_usd"] for r in rows] == [D(n) / 10**12 for n in tokens]


def test_discount_with_fractional_percent_is_exact(pricer: Pricer, shipped: Catalog) -> None:
    config = PricingConfig(discounts=[Discount(provider="openai", percent=D("33.333333"))])
    discounted = Pricer(shipped, config)
    row = discounted.price(
        calls_table(
            [dict(provider="openai", response_model="gpt-4o-mini", ts=at("2026-01-01"), input_tokens=7)]
        )
    ).to_pylist()[0]
    # 7 x 0.15 = 0.00000105 USD = 1,050,000 pico; x 0.66666667 = 700,000.0035 -> 700,000
    assert row["effective_cost_usd"] == D("0.0000007")


# -- user catalogs -------------------------------------------------------------------------------


def test_user_catalog_amortized_override_and_deployment_alias() -> None:
    config = PricingConfig(catalogs=[FIXTURES / "self_hosted.yaml"])
    pricer = Pricer(Catalog.load(config), config)
    rows = pricer.price(
        calls_table(
            [
                dict(
                    provider="acme",
                    response_model="acme-summarizer-v2",
                    ts=at("2026-03-01"),
                    input_tokens=1_000_000,
                    output_tokens=100_000,
                ),
                dict(
                    provider="acme",
                    response_model="acme-ft-llama-7b-support",
                    ts=at("2026-03-01"),
                    input_tokens=1_000_000,
                    output_tokens=1_000_000,
                ),
                # a negotiated price overrides the shipped one from 2025-01-01 ...
                dict(
                    provider="openai",
                    response_model="gpt-4o-2024-11-20",
                    ts=at("2026-03-01"),
                    input_tokens=1_000_000,
                    output_tokens=1_000_000,
                ),
                # ... and the override has no price before that
                dict(
                    provider="openai", response_model="gpt-4o-2024-08-06", ts=at("2024-12-31"), input_tokens=1
                ),
                dict(
                    provider="azure.ai.openai",
                    request_model="prod-gpt4o-eastus",
                    ts=at("2026-03-01"),
                    input_tokens=1_000_000,
                ),
            ]
        )
    ).to_pylist()
    # 32.77 USD/hour / (400M + 5 x 20M) = 65,540 pico per input token, x 5 = 327,700 per output
    # 1e6 x 65,540 pico = 0.06554; 1e5 x 327,700 pico = 0.03277
    assert rows[0]["cost_usd"] == D("0.09831")
    assert rows[0]["price_ref"] == "self_hosted:acme/acme-summarizer-v2@2026-01-01"
    assert rows[1]["cost_usd"] == D("0.8")
    assert rows[2]["cost_usd"] == D("10")
    assert rows[2]["price_ref"] == "self_hosted:openai/gpt-4o-2024-08-06@2025-01-01"
    assert rows[3]["pricing_status"] == "unknown_model"
    assert rows[4]["cost_usd"] == D("2")
    assert rows[4]["model"] == "prod-gpt4o-eastus"


def test_an_hour_of_the_measured_traffic_costs_exactly_the_hour(tmp_path: Path) -> None:
    """docs/pricing.md's example: 32.77 USD/hour, 400M input + 20M output tokens measured in the
    same hour, an output token worth five input tokens of GPU time."""
    path = user_catalog(
        tmp_path,
        "provider: acme\nmodels:\n  - id: acme-summarizer-v2\n    versions:\n      - prices:\n"
        '          amortized: {usd_per_hour: "32.77", input_tokens_per_hour: 400000000,'
        " output_tokens_per_hour: 20000000, output_weight: 5}\n",
        "acme.yaml",
    )
    config = PricingConfig(shipped_catalog=False, catalogs=[path])
    hour = dict(provider="acme", request_model="acme-summarizer-v2", ts=at("2026-11-20T10:00"))
    rows = (
        Pricer(Catalog.load(config), config)
        .price(
            calls_table(
                [
                    {**hour, "input_tokens": 400_000_000, "output_tokens": 20_000_000},
                    {**hour, "input_tokens": 1_000_000, "output_tokens": 0},
                ]
            )
        )
        .to_pylist()
    )
    # 400M x 65,540 pico = 26.216; 20M x 327,700 pico = 6.554: the hour, once
    assert (rows[0]["input_cost_usd"], rows[0]["output_cost_usd"]) == (D("26.216"), D("6.554"))
    assert rows[0]["cost_usd"] == D("32.77")
    assert rows[1]["cost_usd"] == D("0.06554")  # the per-1M rate docs/pricing.md shows


@pytest.mark.parametrize(
    ("amortized", "message"),
    [
        ({"usd_per_hour": "1"}, "input_tokens_per_hour are required"),
        ({"usd_per_hour": "1", "input_tokens_per_hour": 0}, "must serve some tokens"),
        ({"usd_per_hour": "1", "input_tokens_per_hour": 10, "output_weight": 0}, "greater than zero"),
        ({"usd_per_hour": "1", "input_tokens_per_hour": 10, "gpus": 8}, "unknown key 'gpus'"),
    ],
)
def test_amortized_prices_are_validated(tmp_path: Path, amortized: dict[str, object], message: str) -> None:
    path = user_catalog(
        tmp_path,
        yaml.safe_dump(
            {"provider": "acme", "models": [{"id": "m", "versions": [{"prices": {"amortized": amortized}}]}]}
        ),
        "acme.yaml",
    )
    config = PricingConfig(shipped_catalog=False, catalogs=[path])
    with pytest.raises(PricingError, match=message):
        Catalog.load(config)


# -- against an independent reference ------------------------------------------------------------

MODELS = [
    ("openai", "gpt-4o-2024-08-06"),
    ("openai", "gpt-5.4"),
    ("openai", "o3"),
    ("openai", "gpt-5.6-luna"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-opus-4-6"),
    ("anthropic", "claude-sonnet-5"),
    ("gcp.gemini", "gemini-2.5-pro"),
    ("gcp.gemini", "gemini-1.5-pro"),
    ("deepseek", "deepseek-chat"),
    ("deepseek", "deepseek-v4-flash"),
    ("x_ai", "grok-4.20"),
    ("aws.bedrock", "us.anthropic.claude-opus-4-5-v1:0"),
    ("azure.ai.openai", "o3"),
    ("perplexity", "sonar-deep-research"),
    ("mistral_ai", "mistral-large-2512"),
    ("openai", "not-a-model"),
    ("cohere", None),
]

call_strategy = st.fixed_dictionaries(
    {
        "model": st.sampled_from(MODELS),
        "ts": st.datetimes(
            min_value=at("2024-01-01").replace(tzinfo=None), max_value=at("2027-06-01").replace(tzinfo=None)
        ),
        "tier": st.sampled_from([None, "standard", "batch", "flex", "priority"]),
        "input": st.integers(0, 1_200_000),
        "cache_read": st.integers(0, 300_000),
        "cache_write": st.integers(0, 100_000),
        "write_1h": st.integers(0, 100_000),
        "output": st.integers(0, 200_000),
        "reasoning": st.integers(0, 200_000),
    }
)


@settings(max_examples=60, deadline=None)
@given(st.lists(call_strategy, min_size=1, max_size=40))
def test_vectorised_pricer_agrees_with_a_row_at_a_time_reference(
    shipped: Catalog, calls: list[dict[str, Any]]
) -> None:
    pricer = Pricer(shipped, PricingConfig())
    rows = []
    for call in calls:
        provider, model = call["model"]
        rows.append(
            dict(
                provider=provider,
                response_model=model,
                ts=call["ts"].replace(tzinfo=at("2026-01-01").tzinfo),
                service_tier=call["tier"],
                input_tokens=call["input"] + call["cache_read"] + call["cache_write"],
                cache_read_tokens=call["cache_read"],
                cache_write_tokens=call["cache_write"],
                output_tokens=call["output"] + call["reasoning"],
                reasoning_tokens=call["reasoning"],
                attributes={"otelcost.cache_write_1h_tokens": str(call["write_1h"])},
            )
        )
    priced = pricer.price(calls_table(rows)).to_pylist()
    for row, got in zip(rows, priced, strict=True):
        want = price_row(shipped, row)
        assert got["pricing_status"] == want.status
        assert got["model"] == want.model
        assert got["input_cost_usd"] == want.input
        assert got["cache_read_cost_usd"] == want.cache_read
        assert got["cache_write_cost_usd"] == want.cache_write
        assert got["output_cost_usd"] == want.output
        assert got["reasoning_cost_usd"] == want.reasoning
        assert got["cost_usd"] == want.total


# -- throughput ----------------------------------------------------------------------------------


def test_prices_100k_rows_vectorised(shipped: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(4)
    models = [m for m in MODELS if m[1] is not None]
    templates = calls_table(
        [
            dict(provider=provider, response_model=model, service_tier=tier, ts=at("2026-01-01"))
            for provider, model in models
            for tier in (None, "batch", "priority")
        ]
    )
    n = 100_000
    calls = templates.take(pa.array(rng.integers(0, templates.num_rows, n)))
    start_us = int(at("2026-01-01").timestamp()) * 1_000_000
    replaced = {
        "ts": pa.array(start_us + rng.integers(0, 300 * 86_400 * 1_000_000, n), type=pa.int64()).cast(
            CALL_SCHEMA.field("ts").type
        ),
        "input_tokens": pa.array(rng.integers(0, 400_000, n)),
        "cache_read_tokens": pa.array(rng.integers(0, 1_000, n)),
        "output_tokens": pa.array(rng.integers(0, 5_000, n)),
    }
    for name, values in replaced.items():
        calls = calls.set_column(calls.schema.get_field_index(name), CALL_SCHEMA.field(name), values)
    pricer = Pricer(shipped, PricingConfig(discounts=[Discount(provider="openai", percent=D("7.5"))]))
    pricer.price(calls.slice(0, 1000))  # warm the key cache as a running pipeline would
    began = time.perf_counter()
    priced = pricer.price(calls)
    elapsed = time.perf_counter() - began
    assert priced.num_rows == 100_000
    statuses = set(priced["pricing_status"].to_pylist())
    assert statuses <= {"priced", "unknown_model"}
    with capsys.disabled():
        print(f"\n  priced 100,000 rows in {elapsed * 1000:.0f} ms ({100_000 / elapsed:,.0f} rows/s)")
    assert elapsed < 10  # generous: a shared 2-core machine; typically well under a second
