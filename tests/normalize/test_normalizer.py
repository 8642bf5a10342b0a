"""The normalizer's contract with the pipeline: schema, ids, time, rejections, counters."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

from otelcost.normalize import AttributionConfig, Normalizer, NormalizeResult
from otelcost.normalize.validation import MAX_FUTURE_SKEW_NS
from otelcost.normalize.values import attribute_text, decode_attributes
from otelcost.schema import CALL_SCHEMA
from tests.normalize.otlp_builders import NOW_NS, START_NS, SpanSpec, key_values, merge, request

CALL = {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 1}


def run(*spans: SpanSpec, **kw: Any) -> NormalizeResult:
    return Normalizer(AttributionConfig()).normalize(request(spans, **kw), received_at_ns=NOW_NS)


def test_empty_request_gives_an_empty_table_with_the_schema() -> None:
    result = Normalizer(AttributionConfig()).normalize(request([]), received_at_ns=NOW_NS)
    assert result.calls.schema == CALL_SCHEMA
    assert (result.calls.num_rows, result.spans_seen, result.rejected) == (0, 0, 0)


def test_identity_time_and_source_columns() -> None:
    root = SpanSpec({"http.route": "/"}, name="GET /")
    call = root.child(
        CALL, name="chat gpt-4o", start_ns=START_NS + 123_456_789, end_ns=START_NS + 1_123_456_789
    )
    result = run(
        root, call, resource={"service.name": "checkout", "host.cores": 8, "tags": ["a", "b"]}, scope="lib"
    )
    assert result.calls.schema == CALL_SCHEMA
    (row,) = result.calls.to_pylist()
    assert row["trace_id"] == call.trace_id.hex() and len(row["trace_id"]) == 32
    assert row["span_id"] == call.span_id.hex()
    assert row["parent_span_id"] == root.span_id.hex()
    assert row["ts"] == dt.datetime.fromtimestamp((START_NS + 123_456_789) // 1000 / 1e6, tz=dt.UTC)
    assert row["ts"].microsecond == (START_NS + 123_456_789) // 1000 % 1_000_000
    assert row["duration_ms"] == pytest.approx(1000.0)
    assert row["received_at"] == dt.datetime.fromtimestamp(NOW_NS / 1e9, tz=dt.UTC)
    assert (row["service"], row["scope_name"], row["span_name"]) == ("checkout", "lib", "chat gpt-4o")
    assert dict(row["resource_attributes"]) == {
        "service.name": "checkout",
        "host.cores": "8",
        "tags": '["a","b"]',
    }
    assert result.dropped == {"not_llm": 1}
    assert result.calls.column("ts").type == pa.timestamp("us", tz="UTC")


def test_root_span_has_null_parent_and_missing_end_has_null_duration() -> None:
    (row,) = run(SpanSpec(CALL, end_ns=0)).calls.to_pylist()
    assert (row["parent_span_id"], row["end_ts"], row["duration_ms"]) == (None, None, None)


def test_attribute_values_are_rendered_as_text() -> None:
    attrs = {
        **CALL,
        "s": "text",
        "i": -3,
        "d": 0.25,
        "b": True,
        "bytes": b"\x01\xab",
        "arr": ["stop", "length"],
        "kv": {"a": 1, "b": [True, None]},
        "empty": None,
    }
    (row,) = run(SpanSpec(attrs)).calls.to_pylist()
    rendered = dict(row["attributes"])
    assert rendered["s"] == "text"
    assert rendered["i"] == "-3"
    assert rendered["d"] == "0.25"
    assert rendered["b"] == "true"
    assert rendered["bytes"] == "01ab"
    assert rendered["arr"] == '["stop","length"]'
    assert rendered["kv"] == '{"a":1,"b":[true,null]}'
    assert rendered["empty"] == ""
    assert rendered["gen_ai.usage.input_tokens"] == "10"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"start_ns": 0}, "missing_timestamp"),
        ({"start_ns": 5 * 10**9, "end_ns": 6 * 10**9}, "invalid_timestamp"),
        (
            {"start_ns": NOW_NS + MAX_FUTURE_SKEW_NS + 1, "end_ns": NOW_NS + MAX_FUTURE_SKEW_NS + 2},
            "future_timestamp",
        ),
        ({"end_ns": START_NS - 1}, "end_before_start"),
        ({"trace_id": b"\x01" * 8}, "invalid_trace_id"),
        ({"trace_id": bytes(16)}, "invalid_trace_id"),
        ({"span_id": b"\x01" * 4}, "invalid_span_id"),
        ({"span_id": bytes(8)}, "invalid_span_id"),
        ({"parent_span_id": b"\x01" * 3}, "invalid_parent_span_id"),
    ],
)
def test_invalid_calls_are_rejected_with_a_reason(overrides: dict[str, Any], reason: str) -> None:
    result = run(SpanSpec(CALL), SpanSpec(CALL, **overrides))
    assert result.calls.num_rows == 1
    assert (result.rejected, dict(result.rejected_reasons)) == (1, {reason: 1})


def test_slightly_future_span_is_accepted() -> None:
    result = run(SpanSpec(CALL, start_ns=NOW_NS + 60 * 10**9, end_ns=NOW_NS + 61 * 10**9))
    assert (result.calls.num_rows, result.rejected) == (1, 0)


def test_invalid_non_llm_span_is_only_dropped() -> None:
    result = run(SpanSpec({"http.route": "/"}, start_ns=0, span_id=bytes(8)))
    assert (result.rejected, dict(result.dropped)) == (0, {"not_llm": 1})


def test_several_resources_and_scopes_in_one_request() -> None:
    a = request([SpanSpec(CALL)], resource={"service.name": "a"}, scope="s1")
    b = request([SpanSpec(CALL), SpanSpec({"x": 1})], resource={"service.name": "b"}, scope="s2")
    result = Normalizer(AttributionConfig()).normalize(merge(a, b), received_at_ns=NOW_NS)
    assert result.spans_seen == 3
    assert result.calls["service"].to_pylist() == ["a", "b"]
    assert result.calls["scope_name"].to_pylist() == ["s1", "s2"]


def test_counters_accumulate_across_requests() -> None:
    normalizer = Normalizer(AttributionConfig(required=["team"]))
    for _ in range(2):
        normalizer.normalize(
            request([SpanSpec(CALL), SpanSpec({"x": 1}), SpanSpec(CALL, start_ns=0)]), received_at_ns=NOW_NS
        )
    snapshot = normalizer.counters.snapshot()
    assert (snapshot.spans_seen, snapshot.calls, snapshot.incomplete_calls) == (6, 2, 2)
    assert snapshot.dropped == {"not_llm": 2}
    assert snapshot.rejected == {"missing_timestamp": 2}
    assert snapshot.calls_by_convention == {"gen_ai": 2}
    assert snapshot.missing_by_dimension == {"team": 2}
    normalizer.counters.calls += 1
    assert snapshot.calls == 2  # a snapshot is a copy


def test_decode_and_render_helpers() -> None:
    decoded = decode_attributes(key_values({"a": "", "b": 0, "c": 0.0, "d": False}))
    assert decoded == {"a": "", "b": 0, "c": 0.0, "d": False}
    assert [attribute_text(v) for v in decoded.values()] == ["", "0", "0.0", "false"]
    assert attribute_text([[1], {"k": b"\x00"}]) == '[[1],{"k":"00"}]'
