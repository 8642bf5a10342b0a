"""Each provider's parser on the documented variants of its export, and its errors on bad rows.

The files are written here by hand in the providers' shapes (docs/reconciliation.md cites where
each shape is documented); expectations are (day, model, class, tokens, picodollars) tuples.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from otelcost.reconcile import PROVIDERS, InvoiceFormatError, read_invoice
from otelcost.reconcile.azure import parse_meter
from otelcost.reconcile.bedrock import usage_type_class
from otelcost.reconcile.openai import parse_line_item

PICO = 10**12
NOV2 = date(2026, 11, 2)


def lines(tmp_path: Path, provider: str, text: str, name: str = "export.csv") -> list[tuple[object, ...]]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    parsed = read_invoice(PROVIDERS[provider], path)
    return [(x.day, x.model, x.token_class, x.tokens, x.pico, x.host_global) for x in parsed.lines]


def error(tmp_path: Path, provider: str, text: str, name: str = "export.csv") -> str:
    with pytest.raises(InvoiceFormatError) as caught:
        lines(tmp_path, provider, text, name)
    return str(caught.value)


# -- OpenAI ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line_item", "expected"),
    [
        ("gpt-4o-2024-08-06, input", ("gpt-4o-2024-08-06", "input")),
        ("gpt-4o-mini-2024-07-18, cached input", ("gpt-4o-mini-2024-07-18", "cache_read")),
        ("gpt-5.5-2026-04-23, output", ("gpt-5.5-2026-04-23", "output")),
        ("o3-2025-04-16, cache writes", ("o3-2025-04-16", "cache_write")),
        ("priority | gpt-5.6-sol, output, long context", ("gpt-5.6-sol", "output")),
        ("gpt-audio-mini-2025-12-15 audio, input", ("gpt-audio-mini-2025-12-15", "input")),
        ("web search tool calls", ("web search tool calls", "other")),
        ("Vector storage", ("Vector storage", "other")),
    ],
)
def test_openai_line_items(line_item: str, expected: tuple[str, str]) -> None:
    assert parse_line_item(line_item) == expected


PAGE = (
    '{"object": "page", "data": [{"object": "bucket", "start_time": 1793577600, "end_time": 1793664000, '
    '"results": [{"object": "organization.costs.result", "amount": {"value": %s, "currency": "usd"}, '
    '"line_item": "gpt-4o-2024-08-06, input", "project_id": null%s}]}], "has_more": false, "next_page": null}'
)


def test_openai_costs_pages_as_array_and_as_json_lines(tmp_path: Path) -> None:
    one = PAGE % ("0.1234567", "")
    expected = [(NOV2, "gpt-4o-2024-08-06", "input", None, 123_456_700_000, False)]
    assert lines(tmp_path, "openai", one, "a.json") == expected
    assert lines(tmp_path, "openai", f"[{one}, {one}]", "b.json") == expected * 2
    assert lines(tmp_path, "openai", f"{one}\n{one}\n", "c.jsonl") == expected * 2


def test_openai_amount_as_string_and_quantity(tmp_path: Path) -> None:
    text = PAGE % ('"0.2"', ', "quantity": 80000')
    assert lines(tmp_path, "openai", text, "q.json") == [
        (NOV2, "gpt-4o-2024-08-06", "input", 80_000, PICO // 5, False)
    ]


def test_openai_amounts_finer_than_a_picodollar_round_half_even(tmp_path: Path) -> None:
    text = PAGE % ("0.0000000000025", "")  # 2.5 picodollars -> 2
    assert lines(tmp_path, "openai", text, "r.json")[0][4] == 2


def test_openai_usage_csv_counts_written_as_floats(tmp_path: Path) -> None:
    text = (
        "start_time,end_time,model,input_tokens,output_tokens,input_cached_tokens\n"
        "1793577600,1793664000,gpt-4o-2024-08-06,59200.0,10646.0,5760.0\n"
    )
    assert lines(tmp_path, "openai", text) == [
        (NOV2, "gpt-4o-2024-08-06", "input", 53_440, None, False),
        (NOV2, "gpt-4o-2024-08-06", "cache_read", 5_760, None, False),
        (NOV2, "gpt-4o-2024-08-06", "output", 10_646, None, False),
    ]


def test_openai_errors_name_the_file_and_the_place(tmp_path: Path) -> None:
    ungrouped = PAGE.replace('"line_item": "gpt-4o-2024-08-06, input"', '"line_item": null') % ("1.5", "")
    message = error(tmp_path, "openai", ungrouped, "u.json")
    assert message.endswith(
        "u.json: data[0].results[0].line_item: null: export the costs with group_by=line_item "
        "to compare per model"
    )
    wide = PAGE.replace('"end_time": 1793664000', '"end_time": 1793750400') % ("1", "")
    assert "data[0]: a bucket spans more than one UTC day" in error(tmp_path, "openai", wide, "w.json")
    euro = PAGE.replace('"currency": "usd"', '"currency": "eur"') % ("1", "")
    assert "data[0].results[0].amount.currency: only USD is reconciled, got 'eur'" in error(
        tmp_path, "openai", euro, "e.json"
    )
    bad_amount = PAGE % ('"12,34.5x"', "")
    assert "data[0].results[0].amount.value: expected an amount" in error(
        tmp_path, "openai", bad_amount, "x.json"
    )
    broken = '{"object": "page", "data": [\n  {"object": "bucket",,}\n]}'
    assert "b.json: line 2, column 23: not valid JSON" in error(tmp_path, "openai", broken, "b.json")
    half = "start_time,model,input_tokens,output_tokens\n1793577600,gpt-4o,12.5,3\n"
    assert (
        "export.csv: line 2, column input_tokens: expected a whole, non-negative token count, got '12.5'"
        in error(tmp_path, "openai", half)
    )
    short = "start_time,model,input_tokens,output_tokens\n1793577600,gpt-4o,12\n"
    assert "line 2: 3 fields where the header has 4" in error(tmp_path, "openai", short)
    nothing = "when,what\n2026-11-02,x\n"
    assert "line 1: not an OpenAI export" in error(tmp_path, "openai", nothing)
    no_day = "start_time,end_time,model,input_tokens,output_tokens\nyesterday,,gpt-4o,1,1\n"
    assert "line 2, column start_time: expected a date or an RFC 3339 / Unix time, got 'yesterday'" in error(
        tmp_path, "openai", no_day
    )


# -- Anthropic ------------------------------------------------------------------------------------


def test_anthropic_cost_csv_in_cents_or_dollars(tmp_path: Path) -> None:
    cents = (
        "starting_at,model,cost_type,token_type,service_tier,amount,currency\n"
        "2026-11-02T00:00:00Z,claude-sonnet-4-5-20250929,tokens,uncached_input_tokens,standard,19.5,USD\n"
        "2026-11-02T00:00:00Z,claude-sonnet-4-5-20250929,tokens,cache_creation.ephemeral_1h_input_tokens,standard,2,USD\n"
        "2026-11-02T00:00:00Z,,web_search,,,1,USD\n"
    )
    assert lines(tmp_path, "anthropic", cents) == [
        (NOV2, "claude-sonnet-4-5-20250929", "input", None, 195 * PICO // 1000, False),
        (NOV2, "claude-sonnet-4-5-20250929", "cache_write", None, 2 * PICO // 100, False),
        (NOV2, "web_search", "other", None, PICO // 100, False),
    ]
    dollars = "date,model,token_type,cost_usd\n2026-11-02,claude-haiku-4-5,output_tokens,0.25\n"
    assert lines(tmp_path, "anthropic", dollars, "d.csv") == [
        (NOV2, "claude-haiku-4-5", "output", None, PICO // 4, False)
    ]


def test_anthropic_usage_hourly_buckets_and_both_cache_writes(tmp_path: Path) -> None:
    result = (
        '{"uncached_input_tokens": 100, "cache_creation": {"ephemeral_1h_input_tokens": 7, '
        '"ephemeral_5m_input_tokens": 3}, "cache_read_input_tokens": 50, "output_tokens": 20, '
        '"model": "claude-haiku-4-5-20251001"}'
    )

    def bucket(start: str, end: str) -> str:
        return f'{{"starting_at": "{start}", "ending_at": "{end}", "results": [{result}]}}'

    first = bucket("2026-11-02T00:00:00Z", "2026-11-02T01:00:00Z")
    last = bucket("2026-11-02T23:00:00Z", "2026-11-03T00:00:00Z")
    text = f'{{"data": [{first}, {last}], "has_more": false, "next_page": null}}'
    got = lines(tmp_path, "anthropic", text, "u.json")
    assert (
        got
        == [
            (NOV2, "claude-haiku-4-5-20251001", "input", 100, None, False),
            (NOV2, "claude-haiku-4-5-20251001", "cache_read", 50, None, False),
            (NOV2, "claude-haiku-4-5-20251001", "cache_write", 10, None, False),
            (NOV2, "claude-haiku-4-5-20251001", "output", 20, None, False),
        ]
        * 2
    )


def test_anthropic_usage_csv(tmp_path: Path) -> None:
    text = (
        "usage_date_utc,model,uncached_input_tokens,cache_creation_input_tokens,cache_read_input_tokens,"
        "output_tokens\n2026-11-02,claude-sonnet-4-5-20250929,65000,10000,25000,10000\n"
    )
    assert [x[2:4] for x in lines(tmp_path, "anthropic", text)] == [
        ("input", 65_000),
        ("cache_read", 25_000),
        ("cache_write", 10_000),
        ("output", 10_000),
    ]


def test_anthropic_errors(tmp_path: Path) -> None:
    bucket = '{"data": [{"starting_at": "2026-11-02T00:00:00Z", "results": [%s]}]}'
    unknown = (
        '{"amount": "1", "currency": "USD", "cost_type": "tokens", "model": "m", "token_type": "thinking"}'
    )
    assert "data[0].results[0].token_type: unknown token type 'thinking'" in error(
        tmp_path, "anthropic", bucket % unknown, "t.json"
    )
    ungrouped = (
        '{"amount": "250.00", "currency": "USD", "cost_type": null, "model": null, "token_type": null}'
    )
    assert "data[0].results[0]: a token cost without model or token_type" in error(
        tmp_path, "anthropic", bucket % ungrouped, "g.json"
    )
    bad_csv = "starting_at,model,token_type,amount\n2026-11-02,claude,nonsense,1\n"
    assert "line 2, column token_type: unknown token type 'nonsense'" in error(tmp_path, "anthropic", bad_csv)


# -- Bedrock --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage_type", "expected"),
    [
        ("USE1-MP:USE1_InputTokenCount-Units", "input"),
        ("USE2_OutputTokenCount_Global-Units", "output"),
        ("USE1-MP:USE1_CacheReadInputTokenCount-Units", "cache_read"),
        ("USE2_CacheWriteInputTokenCount", "cache_write"),
        ("USW2-MP:USW2_input_tokens_global_standard-Units", "input"),
        ("USW2-MP:USW2_cache_write_tokens_standard-Units", "cache_write"),
        ("USE1-Nova-Lite-input-tokens", "input"),
        ("USE1-ProvisionedThroughput-ModelUnits", None),
    ],
)
def test_bedrock_usage_types(usage_type: str, expected: str | None) -> None:
    assert usage_type_class(usage_type) == expected


def test_bedrock_legacy_cur_with_model_arns(tmp_path: Path) -> None:
    arn = (
        "arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0"
    )
    text = (
        "lineItem/UsageStartDate,lineItem/LineItemType,lineItem/ProductCode,lineItem/UsageType,"
        "lineItem/ResourceId,lineItem/UsageAmount,lineItem/UnblendedCost,pricing/unit,product/ProductName\n"
        f"2026-11-02T05:00:00Z,Usage,AmazonBedrock,USE1-MP:USE1_InputTokenCount-Units,{arn},1.5,0.00165,"
        "1K tokens,Claude Haiku 4.5 (Amazon Bedrock Edition)\n"
        f"2026-11-02T05:00:00Z,Credit,AmazonBedrock,USE1-MP:USE1_InputTokenCount-Units,{arn},0,-0.00165,"
        "1K tokens,Claude Haiku 4.5 (Amazon Bedrock Edition)\n"
    )
    path = tmp_path / "cur.csv"
    path.write_text(text)
    parsed = read_invoice(PROVIDERS["bedrock"], path)
    assert [(x.model, x.token_class, x.tokens, x.pico) for x in parsed.lines] == [
        ("us.anthropic.claude-haiku-4-5-20251001-v1:0", "input", 1_500, 1_650_000_000)
    ]
    assert list(parsed.skipped) == ["line item type Credit"]


def test_bedrock_focus_rows_and_the_product_map(tmp_path: Path) -> None:
    focus = (
        "ChargePeriodStart,ChargeCategory,ServiceName,x_UsageType,ConsumedQuantity,ConsumedUnit,BilledCost,"
        "ResourceId\n"
        "2026-11-02T00:00:00Z,Usage,Claude Sonnet 4.5 (Amazon Bedrock Edition),"
        "USE1-MP:USE1_OutputTokenCount_Global-Units,2000,Tokens,0.03,\n"
    )
    assert lines(tmp_path, "bedrock", focus, "focus.csv") == [
        (NOV2, "Claude Sonnet 4.5", "output", 2_000, 3 * PICO // 100, True)
    ]
    cur2 = (
        "line_item_usage_start_date,line_item_line_item_type,line_item_usage_type,line_item_usage_amount,"
        "line_item_unblended_cost,product\n"
        "2026-11-02 00:00:00,Usage,USW2-MP:USW2_input_tokens_standard-Units,1000,0.003,"
        '"{""product_name"":""Claude Opus 4.5 (Amazon Bedrock Edition)"",""region"":""us-west-2""}"\n'
    )
    assert lines(tmp_path, "bedrock", cur2, "cur2.csv") == [
        (NOV2, "Claude Opus 4.5", "input", 1_000, 3 * PICO // 1000, False)
    ]


def test_bedrock_errors(tmp_path: Path) -> None:
    head = (
        "line_item_usage_start_date,line_item_usage_type,line_item_usage_amount,line_item_unblended_cost,"
        "pricing_unit\n"
    )
    odd_unit = head + "2026-11-02,USE1-MP:USE1_InputTokenCount-Units,5,0.1,Hrs\n"
    assert "line 2, column pricing_unit: unknown unit 'hrs'" in error(tmp_path, "bedrock", odd_unit)
    fraction = head + "2026-11-02,USE1-MP:USE1_InputTokenCount-Units,1.2345,0.1,1K tokens\n"
    assert "line 2, column line_item_usage_amount: 1.2345 1k tokens is not a whole token count" in error(
        tmp_path, "bedrock", fraction
    )
    missing = "line_item_usage_start_date,line_item_usage_type,line_item_unblended_cost\n"
    assert "line 1: no column line_item_usage_amount or lineItem/UsageAmount or ConsumedQuantity" in error(
        tmp_path, "bedrock", missing
    )


# -- Azure ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meter", "expected"),
    [
        ("gpt-4o-mini-0718-Inp-glbl Tokens", ("gpt-4o-mini@0718", "input", "global", False)),
        ("gpt 4o 0513 Input global Tokens", ("gpt-4o@0513", "input", "global", False)),
        ("gpt 4o 1120 cached Inp glbl", ("gpt-4o@1120", "cache_read", "global", False)),
        ("gpt-4o-0806-Outp-glbl", ("gpt-4o@0806", "output", "global", False)),
        ("GPT 5 Inpt Glbl", ("gpt-5", "input", "global", False)),
        ("gpt-4-8K-Batch-Inp-glbl", ("gpt-4-8k", "input", "global", True)),
        ("gpt 4.5 0227 cached Inp DZone", ("gpt-4.5@0227", "cache_read", "data_zone", False)),
        ("R1 Outp glbl Tokens", ("r1", "output", "global", False)),
        ("Standard S1 Unit", None),
    ],
)
def test_azure_meter_names(meter: str, expected: tuple[str, str, str, bool] | None) -> None:
    parsed = parse_meter(meter)
    assert (parsed and (parsed.name, parsed.token_class, parsed.deployment, parsed.batch)) == expected


def test_azure_units_dates_and_cost_in_usd(tmp_path: Path) -> None:
    text = (
        "date,meterCategory,meterSubCategory,meterName,quantity,unitOfMeasure,costInBillingCurrency,"
        "billingCurrency,CostInUsd\n"
        "2026-11-02,Foundry Models,Azure OpenAI,gpt-4o-0806-Outp-glbl Tokens,0.02,1M Tokens,0.19,EUR,0.2\n"
    )
    assert lines(tmp_path, "azure-openai", text) == [
        (NOV2, "gpt-4o@0806", "output", 20_000, PICO // 5, False)
    ]


def test_azure_errors(tmp_path: Path) -> None:
    head = "Date,MeterSubCategory,MeterName,Quantity,UnitOfMeasure,CostInBillingCurrency,BillingCurrency\n"
    euro = head + "11/02/2026,Azure OpenAI,gpt-4o-0806-Outp-glbl Tokens,20,1K,0.19,EUR\n"
    assert "line 2, column BillingCurrency: only USD is reconciled, got 'EUR' (export CostInUsd)" in error(
        tmp_path, "azure-openai", euro
    )
    fraction = head + "11/02/2026,Azure OpenAI,gpt-4o-0806-Outp-glbl Tokens,0.0005,1K,0.01,USD\n"
    assert "line 2, column Quantity: 0.0005 x 1k is not a whole token count" in error(
        tmp_path, "azure-openai", fraction
    )
    bad_day = head + "31/11/2026,Azure OpenAI,gpt-4o-0806-Outp-glbl Tokens,2,1K,0.01,USD\n"
    assert "line 2, column Date: expected a date" in error(tmp_path, "azure-openai", bad_day)


def test_unreadable_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("  \n")
    with pytest.raises(InvoiceFormatError, match=r"empty\.csv: the file is empty"):
        read_invoice(PROVIDERS["openai"], empty)
    binary = tmp_path / "bill.xlsx"
    binary.write_bytes(b"PK\x03\x04\xff\xfe")
    with pytest.raises(InvoiceFormatError, match=r"bill\.xlsx: byte 4: not UTF-8 text"):
        read_invoice(PROVIDERS["azure-openai"], binary)
