"""Ancestors that arrive after their calls: the call is attributed again and a change proposed.

Spans are exported when they end, so the HTTP handler that sets ``app.team`` around an LLM call,
or the agent run that names the workflow, usually arrives in a later export request than the
call. The normalizer remembers the calls whose chain of ancestors is open and, when a later
request brings spans of their trace, proposes the new attribution (``attribution_change`` =
``proposed``), which the settle stage turns into a before/after change.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from otelcost.normalize import AttributionConfig, Normalizer
from otelcost.pricing import Catalog, Pricer
from otelcost.pricing.config import PricingConfig
from tests.normalize.otlp_builders import NOW_NS, SpanSpec
from tests.normalize.test_nesting import chat, run, span_ids

HANDLER = {"http.request.method": "POST", "app.team": "payments", "app.feature": "checkout"}
AGENT = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "refund-agent"}


def _proposals(normalizer: Normalizer, *spans: SpanSpec, at: int = NOW_NS) -> list[dict[str, Any]]:
    result = run(normalizer, *spans, at=at)
    if result.proposals is None:
        return []
    assert result.proposals.schema == result.calls.schema
    rows: list[dict[str, Any]] = result.proposals.to_pylist()
    return rows


def test_a_handler_that_arrives_after_its_call_proposes_the_call_with_its_team() -> None:
    normalizer = Normalizer(AttributionConfig(required=["team"]))
    handler = SpanSpec(HANDLER, name="POST /refund")
    call = handler.child(chat())
    first = run(normalizer, call)
    assert first.calls["team"].to_pylist() == [None] and first.proposals is None
    assert normalizer.counters.pending_calls == 1
    (proposal,) = _proposals(normalizer, handler)
    assert (proposal["trace_id"], proposal["span_id"]) == (call.trace_id.hex(), call.span_id.hex())
    assert (proposal["team"], proposal["feature"]) == ("payments", "checkout")
    assert (proposal["attribution_status"], proposal["missing_dimensions"]) == ("complete", [])
    assert (proposal["attribution_change"], proposal["attribution_change_reason"]) == (
        "proposed",
        "late_ancestor",
    )
    # The call itself, unchanged: its tokens and times, so the pricer prices it the same.
    assert proposal["input_tokens"] == first.calls["input_tokens"][0].as_py()
    assert proposal["ts"] == first.calls["ts"][0].as_py()
    assert proposal["attributes"] is None
    assert normalizer.counters.pending_calls == 0  # the chain reached its root
    assert normalizer.counters.proposed_changes == 1


def test_in_one_request_there_is_nothing_to_propose() -> None:
    normalizer = Normalizer(AttributionConfig())
    handler = SpanSpec(HANDLER, name="POST /refund")
    call = handler.child(chat())
    result = run(normalizer, call, handler)
    assert result.calls["team"].to_pylist() == ["payments"] and result.proposals is None
    assert normalizer.counters.pending_calls == 0


def test_an_untagged_span_that_closes_the_chain_to_a_tagged_one_seen_before() -> None:
    """handler (tagged) -> middleware (no tags) -> call: the handler first (a long request ends
    last only usually), then the call, then the middleware that links them."""
    normalizer = Normalizer(AttributionConfig())
    handler = SpanSpec(HANDLER, name="POST /refund")
    middleware = handler.child({"http.route": "/refund"}, name="middleware")
    call = middleware.child(chat())
    run(normalizer, handler)
    assert run(normalizer, call).calls["team"].to_pylist() == [None]
    (proposal,) = _proposals(normalizer, middleware)
    assert proposal["team"] == "payments"


def test_an_agent_run_names_the_workflow_of_each_of_its_calls() -> None:
    normalizer = Normalizer(AttributionConfig())
    agent = SpanSpec(AGENT, name="invoke_agent refund-agent")
    calls = [agent.child(chat(n)) for n in (100, 200)]
    run(normalizer, calls[0])
    run(normalizer, calls[1])
    proposals = _proposals(normalizer, agent)
    assert sorted(p["span_id"] for p in proposals) == sorted(c.span_id.hex() for c in calls)
    assert {p["workflow"] for p in proposals} == {"refund-agent"}


def test_a_late_span_that_changes_nothing_proposes_nothing() -> None:
    normalizer = Normalizer(AttributionConfig())
    handler = SpanSpec({"http.request.method": "POST"}, name="POST /health")
    call = handler.child({**chat(), "app.team": "payments"})
    run(normalizer, call)
    assert _proposals(normalizer, handler) == []


def test_calls_stop_waiting_after_the_window_or_beyond_the_bound() -> None:
    config = AttributionConfig.model_validate({"trace_memory": {"window": "1m", "max_pending_calls": 2}})
    normalizer = Normalizer(config)
    handlers = [SpanSpec(HANDLER, name="POST /refund") for _ in range(3)]
    calls = [h.child(chat()) for h in handlers]
    for call in calls:
        run(normalizer, call)
    assert normalizer.counters.pending_calls == 2  # the first was dropped at the third
    assert _proposals(normalizer, handlers[0]) == []
    late = NOW_NS + 61 * 10**9
    assert _proposals(normalizer, handlers[1], at=late) == []  # its call waited too long


def test_late_ancestors_off_or_inheritance_off_propose_nothing() -> None:
    for config in ({"late_ancestors": False}, {"inherit": False}):
        normalizer = Normalizer(AttributionConfig.model_validate(config))
        handler = SpanSpec(HANDLER, name="POST /refund")
        run(normalizer, handler.child(chat()))
        assert _proposals(normalizer, handler) == []
        assert normalizer.counters.pending_calls == 0


def test_proposals_are_priced_like_their_calls() -> None:
    pricer = Pricer(Catalog.load(PricingConfig()), PricingConfig())
    normalizer = Normalizer(AttributionConfig())
    handler = SpanSpec(HANDLER, name="POST /refund")
    call = handler.child(chat(1000, **{"gen_ai.request.model": "gpt-4o-mini"}))
    first = run(normalizer, call)
    later = run(normalizer, handler)
    assert later.calls.num_rows == 0 and span_ids(later) == []
    assert later.proposals is not None
    priced = pricer.price(pa.concat_tables([first.calls, later.proposals]))
    assert priced["cost_usd"][0] == priced["cost_usd"][1]
    assert priced["cost_usd"][0].as_py() > 0
