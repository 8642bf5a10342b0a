"""Snapshot encodings: JSON (the default) and protobuf (``proto/otelcost/policy/v1``).

JSON shape (``GET /v1/decisions``)::

    {"version": 12, "epoch": "m3k2x9", "etag": "m3k2x9.12",
     "computed_at": "2026-11-30T09:15:02.114Z", "as_of": "2026-11-30T09:15:01.980Z",
     "decisions": [{"budget": "team-monthly", "scope": {"team": "ml"}, "action": "block",
                    "reason": "...", "source": "budget", "metric": "cost_usd",
                    "spent": "6012.5", "limit": "5000", "percent": 120.25, "threshold": "1.2",
                    "window": "month", "window_start": "...", "window_end": "...",
                    "retry_at": "...", "as_of": "...", "computed_at": "...",
                    "unpriced_calls": 0, "override_id": null}],
     "exemptions": [{"override_id": "ml-launch", "scope": {"team": "ml"}, "budget": null,
                     "until": "...", "reason": "..."}],
     "stale": false}

``stale`` is true while a shared budget store (Redis) cannot be reached: the totals then hold
only this process's calls since (docs/scale-out.md; gateways decide what to do with it).

Amounts are decimal strings (exact); times are RFC 3339 UTC with a ``Z``; a scope value that is
a list matches any of its members. Decoding accepts what encoding produces, for the gateway
client; the protobuf functions import the generated module only when called, so the JSON path
needs nothing beyond the standard library.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final, Literal, cast

from otelcost.money import format_amount
from otelcost.policy.decisions import Action, Decision, Exemption, ScopeValue, Snapshot
from otelcost.timefmt import format_time, parse_time

__all__ = [
    "JSON_CONTENT_TYPE",
    "PROTOBUF_CONTENT_TYPE",
    "decision_to_json",
    "snapshot_from_json",
    "snapshot_from_protobuf",
    "snapshot_to_json",
    "snapshot_to_protobuf",
]

JSON_CONTENT_TYPE: Final = "application/json"
PROTOBUF_CONTENT_TYPE: Final = "application/x-protobuf"

_PROTO_ACTIONS: Final = {Action.ALLOW: 1, Action.NOTIFY: 2, Action.THROTTLE: 3, Action.BLOCK: 4}
_ACTIONS_BY_NUMBER: Final = {number: action for action, number in _PROTO_ACTIONS.items()}


def _scope_to_json(scope: Mapping[str, ScopeValue]) -> dict[str, str | list[str]]:
    return {dim: list(value) if isinstance(value, tuple) else value for dim, value in sorted(scope.items())}


def _scope_from_json(data: Mapping[str, Any]) -> dict[str, ScopeValue]:
    return {
        str(dim): tuple(str(v) for v in value) if isinstance(value, list) else str(value)
        for dim, value in data.items()
    }


def _optional_amount(amount: Decimal | None) -> str | None:
    return None if amount is None else format_amount(amount)


def decision_to_json(decision: Decision) -> dict[str, Any]:
    return {
        "budget": decision.budget,
        "scope": _scope_to_json(decision.scope),
        "action": decision.action.value,
        "reason": decision.reason,
        "source": decision.source,
        "metric": decision.metric,
        "spent": _optional_amount(decision.spent),
        "limit": _optional_amount(decision.limit),
        "percent": decision.percent,
        "threshold": _optional_amount(decision.threshold),
        "window": decision.window,
        "window_start": format_time(decision.window_start_ns),
        "window_end": format_time(decision.window_end_ns),
        "retry_at": format_time(decision.retry_at_ns),
        "as_of": format_time(decision.as_of_ns),
        "computed_at": format_time(decision.computed_at_ns),
        "unpriced_calls": decision.unpriced_calls,
        "override_id": decision.override_id,
    }


def _exemption_to_json(exemption: Exemption) -> dict[str, Any]:
    return {
        "override_id": exemption.override_id,
        "scope": _scope_to_json(exemption.scope),
        "budget": exemption.budget,
        "until": format_time(exemption.until_ns),
        "reason": exemption.reason,
    }


def snapshot_to_json(snapshot: Snapshot) -> bytes:
    """The JSON body of ``GET /v1/decisions`` (computed once per snapshot, then cached)."""
    cached = snapshot._cache.get("json")
    if cached is None:
        document = {
            "version": snapshot.version,
            "epoch": snapshot.epoch,
            "etag": snapshot.etag,
            "computed_at": format_time(snapshot.computed_at_ns),
            "as_of": format_time(snapshot.as_of_ns),
            "decisions": [decision_to_json(d) for d in snapshot.decisions],
            "exemptions": [_exemption_to_json(e) for e in snapshot.exemptions],
            "stale": snapshot.stale,
        }
        cached = json.dumps(document, separators=(",", ":")).encode()
        snapshot._cache["json"] = cached
    return cached


def _amount_from_json(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _decision_from_json(data: Mapping[str, Any]) -> Decision:
    source = data.get("source", "budget")
    if source not in ("budget", "override"):
        raise ValueError(f"unknown decision source {source!r}")
    computed_at = parse_time(data.get("computed_at"))
    return Decision(
        budget=str(data.get("budget") or ""),
        scope=_scope_from_json(data.get("scope") or {}),
        action=Action(data["action"]),
        reason=str(data.get("reason", "")),
        computed_at_ns=computed_at or 0,
        source=cast(Literal["budget", "override"], source),
        metric=str(data.get("metric") or ""),
        spent=_amount_from_json(data.get("spent")),
        limit=_amount_from_json(data.get("limit")),
        threshold=_amount_from_json(data.get("threshold")),
        window=str(data.get("window") or ""),
        window_start_ns=parse_time(data.get("window_start")),
        window_end_ns=parse_time(data.get("window_end")),
        retry_at_ns=parse_time(data.get("retry_at")),
        as_of_ns=parse_time(data.get("as_of")),
        unpriced_calls=int(data.get("unpriced_calls") or 0),
        override_id=data.get("override_id"),
    )


def _exemption_from_json(data: Mapping[str, Any]) -> Exemption:
    return Exemption(
        override_id=str(data["override_id"]),
        scope=_scope_from_json(data.get("scope") or {}),
        budget=data.get("budget"),
        until_ns=parse_time(data.get("until")),
        reason=str(data.get("reason", "")),
    )


def snapshot_from_json(body: bytes | str) -> Snapshot:
    """Decode a ``GET /v1/decisions`` JSON body; ValueError when it is not one."""
    try:
        data = json.loads(body)
        return Snapshot(
            version=int(data["version"]),
            epoch=str(data["epoch"]),
            computed_at_ns=parse_time(data["computed_at"]) or 0,
            as_of_ns=parse_time(data.get("as_of")),
            decisions=tuple(_decision_from_json(d) for d in data.get("decisions", ())),
            exemptions=tuple(_exemption_from_json(e) for e in data.get("exemptions", ())),
            stale=bool(data.get("stale", False)),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a decision snapshot: {exc!r}") from exc


# -- protobuf -------------------------------------------------------------------------------------


def _pb() -> Any:
    # Imported by name: the generated module is loaded only when protobuf is asked for, and
    # its machine-made type stub stays outside the strictly type-checked code.
    return importlib.import_module("otelcost._proto.otelcost.policy.v1.decisions_pb2")


def _scope_terms(pb: Any, scope: Mapping[str, ScopeValue]) -> list[Any]:
    return [
        pb.ScopeTerm(dimension=dim, values=list(value) if isinstance(value, tuple) else [value])
        for dim, value in sorted(scope.items())
    ]


def _scope_from_terms(terms: Any) -> dict[str, ScopeValue]:
    scope: dict[str, ScopeValue] = {}
    for term in terms:
        values = tuple(term.values)
        scope[term.dimension] = values[0] if len(values) == 1 else values
    return scope


def snapshot_to_protobuf(snapshot: Snapshot) -> bytes:
    """A serialized ``otelcost.policy.v1.DecisionSnapshot`` (computed once, then cached)."""
    cached = snapshot._cache.get("protobuf")
    if cached is not None:
        return cached
    pb = _pb()
    message = pb.DecisionSnapshot(
        version=snapshot.version,
        epoch=snapshot.epoch,
        computed_at_unix_nano=snapshot.computed_at_ns,
        as_of_unix_nano=snapshot.as_of_ns or 0,
        stale=snapshot.stale,
    )
    for d in snapshot.decisions:
        message.decisions.append(
            pb.Decision(
                budget=d.budget,
                scope=_scope_terms(pb, d.scope),
                action=_PROTO_ACTIONS[d.action],
                reason=d.reason,
                source=d.source,
                metric=d.metric,
                spent=_optional_amount(d.spent) or "",
                limit=_optional_amount(d.limit) or "",
                threshold=_optional_amount(d.threshold) or "",
                window=d.window,
                window_start_unix_nano=d.window_start_ns or 0,
                window_end_unix_nano=d.window_end_ns or 0,
                retry_at_unix_nano=d.retry_at_ns or 0,
                as_of_unix_nano=d.as_of_ns or 0,
                computed_at_unix_nano=d.computed_at_ns,
                unpriced_calls=d.unpriced_calls,
                override_id=d.override_id or "",
            )
        )
    for e in snapshot.exemptions:
        message.exemptions.append(
            pb.Exemption(
                override_id=e.override_id,
                scope=_scope_terms(pb, e.scope),
                budget=e.budget or "",
                until_unix_nano=e.until_ns or 0,
                reason=e.reason,
            )
        )
    cached = bytes(message.SerializeToString(deterministic=True))
    snapshot._cache["protobuf"] = cached
    return cached


def _amount_or_none(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def snapshot_from_protobuf(body: bytes) -> Snapshot:
    """Decode a serialized ``DecisionSnapshot``; ValueError when it is not one."""
    pb = _pb()
    message = pb.DecisionSnapshot()
    try:
        message.ParseFromString(body)
    except Exception as exc:  # google.protobuf.message.DecodeError
        raise ValueError(f"not a DecisionSnapshot: {exc}") from exc
    decisions = []
    for d in message.decisions:
        if d.source not in ("budget", "override"):
            raise ValueError(f"unknown decision source {d.source!r}")
        decisions.append(
            Decision(
                budget=d.budget,
                scope=_scope_from_terms(d.scope),
                action=_ACTIONS_BY_NUMBER.get(d.action, Action.ALLOW),
                reason=d.reason,
                computed_at_ns=d.computed_at_unix_nano,
                source=cast(Literal["budget", "override"], d.source),
                metric=d.metric,
                spent=_amount_or_none(d.spent),
                limit=_amount_or_none(d.limit),
                threshold=_amount_or_none(d.threshold),
                window=d.window,
                window_start_ns=d.window_start_unix_nano or None,
                window_end_ns=d.window_end_unix_nano or None,
                retry_at_ns=d.retry_at_unix_nano or None,
                as_of_ns=d.as_of_unix_nano or None,
                unpriced_calls=d.unpriced_calls,
                override_id=d.override_id or None,
            )
        )
    exemptions = [
        Exemption(
            override_id=e.override_id,
            scope=_scope_from_terms(e.scope),
            budget=e.budget or None,
            until_ns=e.until_unix_nano or None,
            reason=e.reason,
        )
        for e in message.exemptions
    ]
    return Snapshot(
        version=message.version,
        epoch=message.epoch,
        computed_at_ns=message.computed_at_unix_nano,
        as_of_ns=message.as_of_unix_nano or None,
        decisions=tuple(decisions),
        exemptions=tuple(exemptions),
        stale=message.stale,
    )
