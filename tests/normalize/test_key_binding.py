"""The normalizer side of token-bound attribution (``auth/binding.py``): a stamped resource.

The receivers stamp the key; here a request is stamped directly (``stamp_principal``) and
normalized, including the late-ancestor path of ``pending.py``, where a bound dimension must
win again when the call is attributed a second time.
"""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otelcost.auth.binding import stamp_principal
from otelcost.auth.keys import Principal
from otelcost.normalize import AttributionConfig, Normalizer
from tests.normalize.otlp_builders import NOW_NS, SpanSpec, request
from tests.normalize.test_nesting import chat

SEARCH = Principal(name="search-prod", roles=frozenset({"ingest"}), bind={"team": "search"})
HANDLER = {"http.request.method": "POST", "app.team": "payments", "app.feature": "checkout"}


def test_a_late_ancestor_cannot_move_a_bound_dimension_but_moves_the_others() -> None:
    normalizer = Normalizer(AttributionConfig(required=["team"]))
    handler = SpanSpec(HANDLER, name="POST /refund")
    call = handler.child(chat())

    first = normalizer.normalize(_stamped(call), received_at_ns=NOW_NS)
    later = normalizer.normalize(_stamped(handler), received_at_ns=NOW_NS)

    row = first.calls.to_pylist()[0]
    assert (row["team"], row["attribution_status"], row["ingest_key"]) == (
        "search",
        "complete",
        "search-prod",
    )
    assert row["bound_dimensions"] == [("team", None)]
    assert later.proposals is not None
    (proposal,) = later.proposals.to_pylist()
    # The handler's app.team does not reach the call; its feature does.
    assert (proposal["team"], proposal["feature"]) == ("search", "checkout")
    assert proposal["bound_dimensions"] == [("team", None)]
    # The span never claimed a team itself: nothing was overridden.
    assert normalizer.counters.key_overrides == {}
    assert normalizer.counters.key_calls == {"search-prod": 1}


def test_a_bound_required_dimension_is_never_missing() -> None:
    normalizer = Normalizer(AttributionConfig(required=["team", "tenant_id"]))
    principal = Principal(name="acme", roles=frozenset({"ingest"}), bind={"tenant_id": "acme"})

    result = normalizer.normalize(_stamped(SpanSpec(chat()), principal=principal), received_at_ns=NOW_NS)

    row = result.calls.to_pylist()[0]
    assert (row["tenant_id"], row["missing_dimensions"]) == ("acme", ["team"])


def test_an_anonymous_request_is_unstamped_and_its_forged_stamp_removed() -> None:
    normalizer = Normalizer(AttributionConfig())
    forged = request([SpanSpec(chat())], resource={"service.name": "x", "otelcost.key.name": "admin"})
    stamp_principal(forged, Principal(name="anonymous", roles=frozenset({"ingest"}), anonymous=True))

    row = normalizer.normalize(forged, received_at_ns=NOW_NS).calls.to_pylist()[0]

    assert (row["ingest_key"], row["bound_dimensions"]) == (None, None)
    assert "otelcost.key.name" not in dict(row["resource_attributes"])


def _stamped(*spans: SpanSpec, principal: Principal = SEARCH) -> ExportTraceServiceRequest:
    stamped = request(spans)
    stamp_principal(stamped, principal)
    return stamped
