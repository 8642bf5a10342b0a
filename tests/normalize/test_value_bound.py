"""``attribution.max_attribute_value_length``: long attribute values are cut in the lake's maps.

Attribution reads the decoded attributes before the maps are built, so a long value still
attributes; only what is stored is bounded, marked, and counted.
"""

from __future__ import annotations

from otelcost.normalize import AttributionConfig, Normalizer
from otelcost.normalize.columns import CUT_MARKER
from tests.normalize.otlp_builders import NOW_NS, SpanSpec, request
from tests.normalize.test_nesting import chat


def test_values_over_the_limit_are_cut_and_marked_in_both_maps_and_counted() -> None:
    normalizer = Normalizer(AttributionConfig(max_attribute_value_length=256))
    prompt = "é" * 1_000  # characters, not bytes: 2,000 bytes of UTF-8
    team = "t" * 300
    spans = [SpanSpec({**chat(), "gen_ai.prompt": prompt, "app.team": team, "short": "kept"})]

    result = normalizer.normalize(
        request(spans, resource={"service.name": "svc", "host.notes": "n" * 257}), received_at_ns=NOW_NS
    )

    row = result.calls.to_pylist()[0]
    attributes, resource = dict(row["attributes"]), dict(row["resource_attributes"])
    assert attributes["gen_ai.prompt"] == "é" * 256 + CUT_MARKER.format(length=1_000)
    assert attributes["short"] == "kept"
    assert resource["host.notes"] == "n" * 256 + CUT_MARKER.format(length=257)
    assert resource["service.name"] == "svc"
    # The rules read the whole value: the team column is not cut.
    assert row["team"] == team
    assert normalizer.counters.attribute_values_cut == 3  # prompt, app.team, host.notes


def test_values_at_the_limit_are_stored_whole() -> None:
    normalizer = Normalizer(AttributionConfig(max_attribute_value_length=256))
    spans = [SpanSpec({**chat(), "gen_ai.prompt": "p" * 256})]

    row = normalizer.normalize(request(spans), received_at_ns=NOW_NS).calls.to_pylist()[0]

    assert dict(row["attributes"])["gen_ai.prompt"] == "p" * 256
    assert normalizer.counters.attribute_values_cut == 0
