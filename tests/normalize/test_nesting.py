"""The nested-usage rule: usage is counted once per chain of spans, whatever arrives first."""

from __future__ import annotations

from typing import Any

from otelcost.normalize import AttributionConfig, Normalizer, NormalizeResult
from tests.normalize.otlp_builders import NOW_NS, SpanSpec, request

AGENT = {
    "gen_ai.operation.name": "invoke_agent",
    "gen_ai.agent.name": "planner",
    "gen_ai.usage.input_tokens": 300,
    "gen_ai.usage.output_tokens": 30,
}


def chat(n: int = 100, **extra: Any) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.usage.input_tokens": n,
        "gen_ai.usage.output_tokens": 10,
        **extra,
    }


def run(normalizer: Normalizer, *spans: SpanSpec, at: int = NOW_NS) -> NormalizeResult:
    return normalizer.normalize(request(spans), received_at_ns=at)


def span_ids(result: NormalizeResult) -> list[str]:
    ids: list[str] = result.calls["span_id"].to_pylist()
    return ids


def test_agent_with_aggregated_usage_and_its_calls_in_one_request() -> None:
    agent = SpanSpec(AGENT, name="invoke_agent planner")
    calls = [agent.child(chat(n)) for n in (100, 200)]
    result = run(Normalizer(AttributionConfig()), *calls, agent)
    assert span_ids(result) == [c.span_id.hex() for c in calls]
    assert sum(result.calls["input_tokens"].to_pylist()) == 300
    assert result.dropped == {"wrapper_usage": 1}


def test_framework_llm_span_around_provider_span_keeps_the_innermost() -> None:
    # LangChain (OpenInference) LLM span with usage around the OpenAI instrumentor's chat span.
    outer = SpanSpec(
        {"openinference.span.kind": "LLM", "llm.token_count.prompt": 100, "llm.token_count.completion": 10},
        name="ChatOpenAI",
    )
    inner = outer.child(chat(100), name="openai.chat")
    result = run(Normalizer(AttributionConfig()), outer, inner)
    assert span_ids(result) == [inner.span_id.hex()]


def test_chain_through_a_non_llm_span() -> None:
    agent = SpanSpec(AGENT, name="invoke_agent planner")
    http = agent.child({"http.request.method": "POST"}, name="POST")
    call = http.child(chat())
    result = run(Normalizer(AttributionConfig()), agent, http, call)
    assert span_ids(result) == [call.span_id.hex()]
    assert result.dropped == {"wrapper_usage": 1, "not_llm": 1}


def test_call_first_then_wrapper_in_a_later_request() -> None:
    """The usual order: children end, and are exported, before their parents."""
    normalizer = Normalizer(AttributionConfig())
    agent = SpanSpec(AGENT, name="invoke_agent planner")
    step = agent.child({"traceloop.span.kind": "task"}, name="plan.task")
    call = step.child(chat())
    first = run(normalizer, call)
    second = run(normalizer, step)
    third = run(normalizer, agent, at=NOW_NS + 10**9)
    assert span_ids(first) == [call.span_id.hex()]
    assert second.calls.num_rows == 0
    assert third.calls.num_rows == 0
    assert third.dropped == {"wrapper_usage": 1}


def test_wrapper_first_then_call_is_covered_by_the_emitted_wrapper() -> None:
    normalizer = Normalizer(AttributionConfig())
    agent = SpanSpec(AGENT, name="invoke_agent planner")
    call = agent.child(chat())
    first = run(normalizer, agent)
    second = run(normalizer, call)
    assert span_ids(first) == [agent.span_id.hex()]
    assert second.calls.num_rows == 0
    assert second.dropped == {"ancestor_counted": 1}


def test_framework_span_without_usage_around_a_call_is_dropped() -> None:
    outer = SpanSpec({"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o"}, name="ChatOpenAI")
    inner = outer.child(chat())
    result = run(Normalizer(AttributionConfig()), inner, outer)
    assert span_ids(result) == [inner.span_id.hex()]
    assert result.dropped == {"wrapper_no_usage": 1}


def test_siblings_with_one_response_id_are_left_to_the_settle_stage() -> None:
    """Two spans of one provider call side by side are both calls here: the settle stage folds
    the second into the first and keeps it auditable (tests/settle)."""
    parent = SpanSpec({"http.route": "/ask"}, name="POST /ask")
    first = parent.child(chat(100, **{"gen_ai.response.id": "chatcmpl-1"}))
    second = parent.child(chat(100, **{"gen_ai.response.id": "chatcmpl-1"}))
    result = run(Normalizer(AttributionConfig()), first, second)
    assert span_ids(result) == [first.span_id.hex(), second.span_id.hex()]
    assert result.calls["response_id"].to_pylist() == ["chatcmpl-1", "chatcmpl-1"]


def test_same_span_twice_in_one_request_is_one_row() -> None:
    call = SpanSpec(chat())
    result = run(Normalizer(AttributionConfig()), call, call)
    assert span_ids(result) == [call.span_id.hex()]
    assert result.dropped == {"duplicate_span": 1}


def test_retrying_a_request_gives_the_same_rows() -> None:
    normalizer = Normalizer(AttributionConfig())
    agent = SpanSpec(AGENT, name="invoke_agent planner")
    call = agent.child(chat(100, **{"gen_ai.response.id": "chatcmpl-2"}))
    req = request([call, agent])
    first = normalizer.normalize(req, received_at_ns=NOW_NS)
    again = normalizer.normalize(req, received_at_ns=NOW_NS + 10**9)
    assert span_ids(first) == span_ids(again) == [call.span_id.hex()]


def test_memory_window_bounds_cross_request_dedup() -> None:
    config = AttributionConfig.model_validate({"trace_memory": {"window": "1m"}})
    normalizer = Normalizer(config)
    agent = SpanSpec(AGENT, name="invoke_agent planner")
    run(normalizer, agent.child(chat()))
    late = run(normalizer, agent, at=NOW_NS + 120 * 10**9)
    # Outside the window the wrapper cannot know about its call any more: it is counted.
    assert span_ids(late) == [agent.span_id.hex()]
    assert len(normalizer._memory) == 1


def test_memory_size_bound() -> None:
    config = AttributionConfig.model_validate({"trace_memory": {"max_spans": 1000}})
    normalizer = Normalizer(config)
    for _ in range(3):
        run(normalizer, *[SpanSpec({"http.route": "/"}, name="GET") for _ in range(600)])
    assert len(normalizer._memory) <= 1000 + 600
    assert normalizer.counters.trace_memory_spans == len(normalizer._memory)
