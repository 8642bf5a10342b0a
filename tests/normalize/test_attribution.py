"""Attribution rules: order of sources, baggage, resource, ownership tables, defaults,
required dimensions, and inheritance from ancestors within and across requests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from otelcost.errors import ConfigError
from otelcost.normalize import AttributionConfig, Normalizer, NormalizeResult, load_ownership
from tests.normalize.otlp_builders import NOW_NS, SpanSpec, request

CALL = {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 1}


def normalizer(**config: Any) -> Normalizer:
    return Normalizer(AttributionConfig.model_validate(config))


def rows(result: NormalizeResult) -> list[dict[str, Any]]:
    table: list[dict[str, Any]] = result.calls.to_pylist()
    return table


def one(n: Normalizer, attrs: dict[str, Any], resource: dict[str, Any] | None = None) -> dict[str, Any]:
    result = n.normalize(request([SpanSpec({**CALL, **attrs})], resource=resource), received_at_ns=NOW_NS)
    (row,) = rows(result)
    return row


def test_first_source_with_a_value_wins_in_rule_order() -> None:
    n = normalizer(dimensions={"team": ["span:app.team", "baggage:team", "resource:service.namespace"]})
    assert one(n, {"app.team": "a", "team": "b"}, {"service.namespace": "c"})["team"] == "a"
    assert one(n, {"team": "b"}, {"service.namespace": "c"})["team"] == "b"
    assert one(n, {"app.team": ""}, {"service.namespace": "c"})["team"] == "c"


def test_default_source_and_non_string_values() -> None:
    n = normalizer(
        dimensions={"project": ["span:app.project", "default:unassigned"], "tenant_id": ["span:t"]}
    )
    row = one(n, {"t": 42})
    assert (row["project"], row["tenant_id"]) == ("unassigned", "42")


def test_other_dimensions_keep_their_defaults_and_an_empty_list_switches_one_off() -> None:
    n = normalizer(dimensions={"team": ["span:x.team"], "user_id": []})
    row = one(n, {"x.team": "t", "user.id": "u", "session.id": "s"})
    assert (row["team"], row["user_id"], row["session_id"]) == ("t", None, "s")


def test_convention_keys_feed_the_dimensions_by_default() -> None:
    n = normalizer()
    row = one(
        n,
        {
            "traceloop.association.properties.team": "search",
            "ai.telemetry.metadata.feature": "summaries",
            "langfuse.user.id": "u1",
            "gen_ai.conversation.id": "c1",
            "traceloop.association.properties.customer_id": "acme",
            "gen_ai.agent.name": "helper",
        },
        {"service.name": "svc", "deployment.environment.name": "prod", "app.project": "p"},
    )
    assert (row["team"], row["feature"], row["user_id"], row["session_id"], row["tenant_id"]) == (
        "search",
        "summaries",
        "u1",
        "c1",
        "acme",
    )
    assert (row["workflow"], row["environment"], row["project"]) == ("helper", "prod", "p")


def test_inline_ownership_table() -> None:
    n = normalizer(
        ownership={
            "rows": [{"service": "checkout", "team": "payments", "cost_center": "cc-12", "project": "web"}]
        }
    )
    row = one(n, {}, {"service.name": "checkout"})
    assert (row["team"], row["cost_center"], row["project"]) == ("payments", "cc-12", "web")
    assert one(n, {"app.team": "explicit"}, {"service.name": "checkout"})["team"] == "explicit"
    assert one(n, {}, {"service.name": "unknown"})["team"] is None


def test_ownership_from_csv_keyed_by_a_resource_attribute(tmp_path: Path) -> None:
    table = tmp_path / "owners.csv"
    table.write_text("k8s.namespace.name,team,cost_center\nshop,payments,cc-1\nsearch,discovery,\n")
    n = normalizer(
        ownership={"file": str(table), "key": "k8s.namespace.name"},
        dimensions={
            "team": ["ownership:k8s.namespace.name"],
            "cost_center": ["ownership:k8s.namespace.name", "default:none"],
            "project": [],
        },
    )
    row = one(n, {}, {"service.name": "a", "k8s.namespace.name": "search"})
    assert (row["team"], row["cost_center"]) == ("discovery", "none")


def test_ownership_from_yaml(tmp_path: Path) -> None:
    table = tmp_path / "owners.yaml"
    table.write_text("- {service: checkout, team: payments, cost_center: 1200}\n")
    n = normalizer(ownership={"file": str(table)})
    assert one(n, {}, {"service.name": "checkout"})["cost_center"] == "1200"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("o.csv", "team\npayments\n", "row has no 'service' value"),
        ("o.csv", "", "has no header row"),
        ("o.csv", "service,team\na,x\na,y\n", "'a' appears more than once"),
        ("o.yaml", "service: a\n", "must be a YAML list of mappings"),
        ("o.yaml", "- [unclosed\n", "is not valid YAML"),
        ("o.json", "[]", "expected a .csv, .yaml or .yml file"),
    ],
)
def test_bad_ownership_files_are_config_errors(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        Normalizer(AttributionConfig.model_validate({"ownership": {"file": str(path)}}))


def test_missing_ownership_file_is_a_config_error(tmp_path: Path) -> None:
    config = AttributionConfig.model_validate({"ownership": {"file": str(tmp_path / "nope.csv")}})
    with pytest.raises(ConfigError, match="cannot read"):
        load_ownership(config.ownership)


def test_ownership_source_must_match_the_table_key() -> None:
    with pytest.raises(ValueError, match=r"dimensions.team\[0\]: ownership source 'team'"):
        AttributionConfig.model_validate({"dimensions": {"team": ["ownership:team"]}})


def test_required_dimensions_mark_incomplete_and_are_counted() -> None:
    n = normalizer(required=["team", "tenant_id", "feature"])
    result = n.normalize(
        request([SpanSpec({**CALL, "app.team": "a"}), SpanSpec({**CALL, "app.team": "a", "tenant.id": "t"})]),
        received_at_ns=NOW_NS,
    )
    first, second = rows(result)
    assert (first["attribution_status"], first["missing_dimensions"]) == (
        "incomplete",
        ["feature", "tenant_id"],
    )
    assert (second["attribution_status"], second["missing_dimensions"]) == ("incomplete", ["feature"])
    assert n.counters.incomplete_calls == 2
    assert dict(n.counters.missing_by_dimension) == {"feature": 2, "tenant_id": 1}
    complete = one(normalizer(required=["team"]), {"app.team": "a"})
    assert (complete["attribution_status"], complete["missing_dimensions"]) == ("complete", [])


def test_inheritance_from_ancestors_in_the_same_request_nearest_first() -> None:
    n = normalizer(required=["team", "tenant_id"])
    root = SpanSpec({"app.team": "root-team", "tenant.id": "acme"}, name="POST /ask")
    mid = root.child({"app.team": "mid-team"}, name="handler")
    call = mid.child(CALL)
    (row,) = rows(n.normalize(request([call, mid, root]), received_at_ns=NOW_NS))
    assert (row["team"], row["tenant_id"], row["attribution_status"]) == ("mid-team", "acme", "complete")
    assert dict(n.counters.inherited_by_dimension) == {"team": 1, "tenant_id": 1}


def test_call_attribute_beats_ancestor() -> None:
    root = SpanSpec({"app.team": "root-team"}, name="root")
    call = root.child({**CALL, "app.team": "own"})
    (row,) = rows(normalizer().normalize(request([root, call]), received_at_ns=NOW_NS))
    assert row["team"] == "own"


def test_inheritance_across_requests_when_the_ancestor_came_first() -> None:
    n = normalizer()
    root = SpanSpec({"app.feature": "search"}, name="root")
    n.normalize(request([root]), received_at_ns=NOW_NS)
    (row,) = rows(n.normalize(request([root.child(CALL)]), received_at_ns=NOW_NS + 10**9))
    assert row["feature"] == "search"


def test_ancestor_arriving_after_the_call_cannot_help() -> None:
    n = normalizer(required=["feature"])
    root = SpanSpec({"app.feature": "search"}, name="root")
    (row,) = rows(n.normalize(request([root.child(CALL)]), received_at_ns=NOW_NS))
    n.normalize(request([root]), received_at_ns=NOW_NS + 10**9)
    assert (row["feature"], row["attribution_status"]) == (None, "incomplete")


def test_inheritance_can_be_switched_off_and_is_bounded_by_depth() -> None:
    root = SpanSpec({"app.team": "root-team"}, name="root")
    call = root.child(CALL)
    (row,) = rows(normalizer(inherit=False).normalize(request([root, call]), received_at_ns=NOW_NS))
    assert row["team"] is None
    chain = [root]
    for _ in range(5):
        chain.append(chain[-1].child({"x": 1}, name="step"))
    deep_call = chain[-1].child(CALL)
    n = normalizer(trace_memory={"max_depth": 3})
    (row,) = rows(n.normalize(request([*chain, deep_call]), received_at_ns=NOW_NS))
    assert row["team"] is None


def test_environment_column_comes_from_the_rules() -> None:
    n = normalizer(dimensions={"environment": ["resource:deployment.environment", "default:production"]})
    assert one(n, {}, {"deployment.environment": "qa"})["environment"] == "qa"
    assert one(n, {}, {})["environment"] == "production"


def test_json_source_reads_a_value_inside_a_json_object_attribute() -> None:
    n = normalizer(
        dimensions={
            "team": [{"span": "meta", "json": "owner.team"}, "default:none"],
            "feature": [{"span": "meta", "json": "app.feature"}],  # a key spelled with dots
            "tenant_id": [{"span": "meta", "json": "tenant"}],
            "project": [{"resource": "res.meta", "json": "project"}],
        }
    )
    meta = '{"owner": {"team": "search"}, "app.feature": "answers", "tenant": 42}'
    row = one(n, {"meta": meta}, {"res.meta": '{"project": "web"}'})
    assert (row["team"], row["feature"], row["tenant_id"], row["project"]) == (
        "search",
        "answers",
        "42",
        "web",
    )


@pytest.mark.parametrize(
    "meta",
    [
        "not json",
        "[1, 2]",
        '"a string"',
        '{"owner": "flat"}',  # the path goes through a non-object
        '{"owner": {"team": {"nested": 1}}}',  # an object is not a value
        '{"owner": {"team": ""}}',
        '{"owner": {"team": null}}',
        "[" * 100_000,  # deeper than the JSON parser goes
    ],
)
def test_json_source_without_a_value_falls_through_to_the_next_source(meta: str) -> None:
    n = normalizer(dimensions={"team": [{"span": "meta", "json": "owner.team"}, "default:none"]})
    assert one(n, {"meta": meta})["team"] == "none"


def test_json_source_is_inherited_from_an_ancestor() -> None:
    n = normalizer()
    root = SpanSpec({"metadata": '{"team": "growth", "tenant_id": "acme"}'}, name="agent run")
    (row,) = rows(n.normalize(request([root, root.child(CALL)]), received_at_ns=NOW_NS))
    assert (row["team"], row["tenant_id"]) == ("growth", "acme")
    assert n.counters.inherited_by_dimension["team"] == 1


def test_openinference_metadata_feeds_the_default_rules() -> None:
    meta = json.dumps(
        {"team": "t", "feature": "f", "tenant_id": "c", "project": "p", "cost_center": "cc", "workflow": "w"}
    )
    row = one(normalizer(), {"metadata": meta})
    assert [row[d] for d in ("team", "feature", "tenant_id", "project", "cost_center", "workflow")] == [
        "t",
        "f",
        "c",
        "p",
        "cc",
        "w",
    ]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"ownership": "service", "json": "team"}, "json applies to a span, baggage or resource source"),
        ({"span": "metadata", "json": ""}, "dotted path"),
        ({"span": "metadata", "json": "a..b"}, "dotted path"),
    ],
)
def test_bad_json_sources_are_config_errors(source: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AttributionConfig.model_validate({"dimensions": {"team": [source]}})


def test_json_source_round_trips_through_config_show() -> None:
    config = AttributionConfig.model_validate(
        {"dimensions": {"team": [{"span": "metadata", "json": "team"}]}}
    )
    dumped = config.model_dump(mode="json")["dimensions"]["team"]
    assert dumped == [{"span": "metadata", "json": "team"}]
    assert AttributionConfig.model_validate({"dimensions": {"team": dumped}}) == config


@pytest.mark.parametrize(
    "attrs",
    [
        {"langfuse.observation.metadata.team": "search"},
        {"langfuse.trace.metadata": '{"team": "search"}'},
        {"langfuse.observation.metadata": '{"team": "search"}'},
    ],
)
def test_langfuse_metadata_flattened_or_as_json_feeds_the_default_rules(attrs: dict[str, str]) -> None:
    assert one(normalizer(), attrs)["team"] == "search"
