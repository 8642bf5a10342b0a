"""The typed results of recognizing and validating one span: Recognized, Dropped, Rejected."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import pytest

from otelcost.normalize.conventions.gen_ai import GenAiAdapter
from otelcost.normalize.lineage import TraceMemory
from otelcost.normalize.recognition import NOT_LLM, Dropped, Recognized, Rejected, recognize, rejected
from otelcost.normalize.spans import read_spans
from otelcost.normalize.validation import MIN_START_NS, check_call
from otelcost.normalize.wire import decode_wire_attributes, to_wire
from tests.normalize.otlp_builders import NOW_NS, SpanSpec, request

CHAT = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}


def wire_span(spec: SpanSpec) -> Any:
    return to_wire(request([spec])).resource_spans[0].scope_spans[0].spans[0]


def recognize_spec(spec: SpanSpec) -> Recognized | Dropped | Rejected:
    span = wire_span(spec)
    attrs = decode_wire_attributes(span.attributes)
    return recognize(attrs, attrs, span, None, "scope")


def test_a_call_with_usage_is_recognized_with_its_adapter_usage_and_context() -> None:
    outcome = recognize_spec(SpanSpec({**CHAT, "gen_ai.usage.input_tokens": 12}, name="chat gpt-4o"))
    assert isinstance(outcome, Recognized)
    assert isinstance(outcome.adapter, GenAiAdapter)
    assert outcome.usage is not None and outcome.usage.input == 12
    assert outcome.usage_from_event is False
    assert (outcome.context.span_name, outcome.context.scope_name) == ("chat gpt-4o", "scope")
    assert outcome.context.provider == "openai"


def test_a_call_without_usage_is_recognized_without_usage() -> None:
    outcome = recognize_spec(SpanSpec(CHAT))
    assert isinstance(outcome, Recognized) and outcome.usage is None


def test_usage_in_an_event_is_recognized_as_such() -> None:
    outcome = recognize_spec(SpanSpec(CHAT, events=[("gen_ai.usage", {"gen_ai.usage.input_tokens": 7})]))
    assert isinstance(outcome, Recognized)
    assert outcome.usage is not None and outcome.usage.input == 7
    assert outcome.usage_from_event is True


def test_a_wrapper_without_usage_is_the_shared_not_llm_drop() -> None:
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}
    tool = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}
    assert recognize_spec(SpanSpec(agent)) is NOT_LLM
    assert recognize_spec(SpanSpec(tool)) is NOT_LLM
    assert NOT_LLM.reason == "not_llm"


@pytest.mark.parametrize(
    ("value", "reason"),
    [(-5, "negative_token_count"), (2_000_000_000, "absurd_token_count"), ("lots", "invalid_token_count")],
)
def test_invalid_counts_are_one_shared_rejection_per_reason(value: object, reason: str) -> None:
    spec = SpanSpec({**CHAT, "gen_ai.usage.input_tokens": value})
    first, second = recognize_spec(spec), recognize_spec(spec)
    assert first == Rejected(reason)
    assert first is second is rejected(reason)


def test_results_are_immutable_where_they_are_shared() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        NOT_LLM.reason = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        rejected("invalid_token_count").reason = "other"  # type: ignore[misc]
    # Slotted: no per-instance dict.
    assert not hasattr(NOT_LLM, "__dict__") and not hasattr(recognize_spec(SpanSpec(CHAT)), "__dict__")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"trace_id": bytes(16)}, "invalid_trace_id"),
        ({"span_id": b"\x01" * 4}, "invalid_span_id"),
        ({"parent_span_id": b"\x01" * 3}, "invalid_parent_span_id"),
        ({"start_ns": 0}, "missing_timestamp"),
        ({"start_ns": MIN_START_NS - 1, "end_ns": MIN_START_NS}, "invalid_timestamp"),
        (
            {"start_ns": NOW_NS + 2 * 24 * 3600 * 10**9, "end_ns": NOW_NS + 3 * 24 * 3600 * 10**9},
            "future_timestamp",
        ),
        ({"end_ns": MIN_START_NS}, "end_before_start"),
    ],
)
def test_check_call_returns_the_shared_rejection(changes: dict[str, Any], reason: str) -> None:
    span = wire_span(dataclasses.replace(SpanSpec(CHAT), **changes))
    ids_valid = reason not in {"invalid_trace_id", "invalid_span_id", "invalid_parent_span_id"}
    assert check_call(span, ids_valid, NOW_NS) is rejected(reason)


def test_a_valid_call_passes_the_check() -> None:
    assert check_call(wire_span(SpanSpec(CHAT)), True, NOW_NS) is None


def test_the_span_reader_counts_each_result_by_reason() -> None:
    spans = [
        SpanSpec({**CHAT, "gen_ai.usage.input_tokens": 3}),
        SpanSpec({"http.route": "/"}),
        SpanSpec({"gen_ai.operation.name": "invoke_agent"}),
        SpanSpec({**CHAT, "gen_ai.usage.input_tokens": -1}),
        SpanSpec(CHAT, start_ns=0),
    ]
    dropped: Counter[str] = Counter()
    rejected_counts: Counter[str] = Counter()
    memory = TraceMemory(window_ns=10**12, max_spans=100, max_depth=8)
    drafts, seen = read_spans(
        to_wire(request(spans)), memory, frozenset(), NOW_NS, dropped=dropped, rejected=rejected_counts
    )
    assert seen == 5
    assert [d.tokens.input for d in drafts] == [3]
    assert dropped == {"not_llm": 2}
    assert rejected_counts == {"negative_token_count": 1, "missing_timestamp": 1}
