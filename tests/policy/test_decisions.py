"""Snapshot.check: matching, severity, exemptions, lapse; JSON and protobuf round trips."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from otelcost._proto.otelcost.policy.v1 import decisions_pb2
from otelcost.money import format_amount
from otelcost.policy.decisions import Action, Decision, Exemption, Snapshot
from otelcost.policy.encoding import (
    snapshot_from_json,
    snapshot_from_protobuf,
    snapshot_to_json,
    snapshot_to_protobuf,
)
from otelcost.timefmt import format_time, parse_time

NOW = 1_773_482_400_000_000_000  # 2026-03-14T10:00:00Z
LATER = NOW + 3600 * 10**9


def decision(
    budget: str, scope: dict[str, str | tuple[str, ...]], action: Action, **extra: object
) -> Decision:
    fields: dict[str, object] = {"computed_at_ns": NOW, "retry_at_ns": LATER}
    fields.update(extra)
    return Decision(budget=budget, scope=scope, action=action, reason=f"{budget} says {action}", **fields)  # type: ignore[arg-type]


def snapshot(*decisions: Decision, exemptions: tuple[Exemption, ...] = ()) -> Snapshot:
    return Snapshot(
        version=7,
        epoch="e1",
        computed_at_ns=NOW,
        as_of_ns=NOW - 10**9,
        decisions=decisions,
        exemptions=exemptions,
    )


def test_nothing_applies_means_allow() -> None:
    result = snapshot(decision("b", {"team": "ml"}, Action.BLOCK)).check({"team": "search"}, NOW)
    assert result.allowed and result.action is Action.ALLOW and result.decision is None


def test_the_most_severe_matching_decision_wins() -> None:
    snap = snapshot(
        decision("monthly", {"team": "ml"}, Action.NOTIFY),
        decision("tpm", {"team": "ml", "workflow": "agent"}, Action.THROTTLE),
        decision("global", {}, Action.NOTIFY),
        decision("other", {"team": "search"}, Action.BLOCK),
    )
    result = snap.check({"team": "ml", "workflow": "agent", "user_id": "u1"}, NOW)
    assert result.action is Action.THROTTLE and not result.allowed
    assert [d.budget for d in result.decisions] == ["tpm", "global", "monthly"]
    assert result.retry_after == 3600
    # A call without the workflow dimension is not in the tpm instance.
    assert snap.check({"team": "ml"}, NOW).action is Action.NOTIFY


def test_list_terms_match_any_member() -> None:
    snap = snapshot(decision("big", {"model": ("gpt-4o", "o3"), "tenant_id": "acme"}, Action.BLOCK))
    assert snap.check({"model": "o3", "tenant_id": "acme"}, NOW).action is Action.BLOCK
    assert snap.check({"model": "gpt-4o-mini", "tenant_id": "acme"}, NOW).allowed
    assert snap.check({"model": "o3"}, NOW).allowed


def test_lapsed_decisions_no_longer_apply() -> None:
    snap = snapshot(decision("monthly", {"team": "ml"}, Action.BLOCK))
    assert not snap.check({"team": "ml"}, LATER - 1).allowed
    assert snap.check({"team": "ml"}, LATER).allowed


def test_exemptions_lift_budget_decisions_but_not_kill_switches() -> None:
    snap = snapshot(
        decision("monthly", {"team": "ml"}, Action.BLOCK),
        decision("tpm", {"team": "ml"}, Action.THROTTLE),
        exemptions=(Exemption("launch", {"team": "ml"}, budget="monthly"),),
    )
    assert snap.check({"team": "ml"}, NOW).action is Action.THROTTLE
    everything = snapshot(
        decision("monthly", {"team": "ml"}, Action.BLOCK),
        decision("", {"team": "ml", "user_id": "u9"}, Action.BLOCK, source="override", override_id="kill"),
        exemptions=(Exemption("launch", {"team": "ml"}),),
    )
    assert everything.check({"team": "ml"}, NOW).allowed
    assert everything.check({"team": "ml", "user_id": "u9"}, NOW).action is Action.BLOCK
    expired = snapshot(
        decision("monthly", {"team": "ml"}, Action.BLOCK),
        exemptions=(Exemption("launch", {"team": "ml"}, until_ns=NOW),),
    )
    assert not expired.check({"team": "ml"}, NOW).allowed


def test_a_check_takes_microseconds_with_many_decisions() -> None:
    many = [decision("per-user", {"user_id": f"u{i}"}, Action.BLOCK) for i in range(20_000)]
    many += [decision(f"team-{i}", {"team": f"t{i}"}, Action.NOTIFY) for i in range(50)]
    snap = snapshot(*many)
    snap.check({"team": "t1"}, NOW)  # builds the index once
    rounds = 20_000
    started = time.perf_counter()
    for i in range(rounds):
        snap.check({"team": "t1", "user_id": f"u{i % 40_000}"}, NOW)
    per_check = (time.perf_counter() - started) / rounds
    assert per_check < 100e-6, f"{per_check * 1e6:.1f} µs per check"


def full_snapshot() -> Snapshot:
    return snapshot(
        decision(
            "team-monthly",
            {"team": "ml", "model": ("a", "b")},
            Action.BLOCK,
            metric="cost_usd",
            spent=Decimal("6012.500000000001"),
            limit=Decimal("5000"),
            threshold=Decimal("1.2"),
            window="month",
            window_start_ns=NOW - 10**12,
            window_end_ns=LATER,
            as_of_ns=NOW - 5 * 10**9,
            unpriced_calls=3,
            override_id="raise-1",
        ),
        decision(
            "", {"user_id": "u1"}, Action.BLOCK, source="override", override_id="kill", retry_at_ns=None
        ),
        exemptions=(Exemption("launch", {"team": "ml"}, "team-monthly", LATER, "launch day"),),
    )


def test_json_round_trip_is_exact() -> None:
    original = full_snapshot()
    decoded = snapshot_from_json(snapshot_to_json(original))
    assert decoded.decisions == original.decisions
    assert decoded.exemptions == original.exemptions
    assert (decoded.version, decoded.epoch, decoded.etag) == (7, "e1", "e1.7")
    assert decoded.decisions[0].spent == Decimal("6012.500000000001")


def test_protobuf_round_trip_is_exact() -> None:
    original = full_snapshot()
    body = snapshot_to_protobuf(original)
    message = decisions_pb2.DecisionSnapshot.FromString(body)
    assert message.version == 7
    assert message.decisions[0].action == decisions_pb2.ACTION_BLOCK
    assert message.decisions[0].spent == "6012.500000000001"
    assert [(t.dimension, list(t.values)) for t in message.decisions[0].scope] == [
        ("model", ["a", "b"]),
        ("team", ["ml"]),
    ]
    decoded = snapshot_from_protobuf(body)
    assert decoded.decisions == original.decisions
    assert decoded.exemptions == original.exemptions


def test_bad_bodies_are_value_errors() -> None:
    with pytest.raises(ValueError):
        snapshot_from_json(b'{"decisions": []}')
    with pytest.raises(ValueError):
        snapshot_from_protobuf(b"\xff\xff\xff")


def test_amount_and_time_formats() -> None:
    assert format_amount(Decimal("4012.500000000000")) == "4012.5"
    assert format_amount(Decimal("5000")) == "5000"
    assert format_amount(Decimal("1E+3")) == "1000"
    assert format_amount(Decimal("0E-12")) == "0"
    assert format_time(NOW) == "2026-03-14T10:00:00Z"
    assert parse_time("2026-03-14T10:00:00.000123Z") == NOW + 123_000
    assert parse_time(format_time(NOW + 5_000)) == NOW + 5_000
