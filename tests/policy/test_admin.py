"""The admin API over real HTTP: authentication, budget and override changes, the audit log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.budgets.rows import calls
from tests.policy.conftest import START, Running, assert_error, run_policy

pytestmark = pytest.mark.slow

ADMIN = {"Authorization": "Bearer s3cret"}
ALICE = {"Authorization": "Bearer a-token"}


def test_admin_is_disabled_without_a_token(tmp_path: Path) -> None:
    evaluator, server, _ = run_policy(tmp_path)
    try:
        response = requests.get(f"{server.url}/v1/admin/budgets", headers=ADMIN, timeout=5)
        assert_error(response, 403, "set api.admin_token (or OTELCOST_API__ADMIN_TOKEN)")
    finally:
        server.stop()
        evaluator.shutdown()


def test_a_missing_or_wrong_token_is_401(running: Running) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic s3cret"}):
        response = requests.get(f"{running.url}/v1/admin/overrides", headers=headers, timeout=5)
        # The access middleware (otelcost/api/access.py) answers: no key, or a key no one holds.
        assert_error(response, 401, "key")
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="otelcost"'


def test_kill_switch_raise_and_audit(running: Running) -> None:
    url = running.url
    running.evaluator.consume(calls(1, at=START, cost="110", team="ml"))
    assert requests.get(f"{url}/v1/check?team=ml", timeout=5).status_code == 429  # throttled
    raised = requests.put(
        f"{url}/v1/admin/overrides/ml-launch",
        json={
            "action": "raise_limit",
            "budget": "team-monthly",
            "scope": {"team": "ml"},
            "limit": "500",
            "until": "2026-03-20T00:00:00Z",
            "reason": "launch week",
        },
        headers=ALICE,
        timeout=5,
    )
    assert raised.status_code == 201, raised.text
    assert raised.json()["created_by"] == "alice"
    assert requests.get(f"{url}/v1/check?team=ml", timeout=5).status_code == 200
    kill = requests.put(
        f"{url}/v1/admin/overrides/stop-search",
        json={"action": "block", "scope": {"team": "search"}, "reason": "runaway agent"},
        headers=ADMIN,
        timeout=5,
    )
    assert kill.status_code == 201
    blocked = requests.get(f"{url}/v1/check?team=search", timeout=5)
    assert blocked.status_code == 429 and "runaway agent" in blocked.json()["reason"]
    assert "Retry-After" not in blocked.headers  # a kill switch has no end
    listed = requests.get(f"{url}/v1/admin/overrides", headers=ADMIN, timeout=5).json()["overrides"]
    assert [o["id"] for o in listed] == ["ml-launch", "stop-search"]
    assert (
        requests.delete(f"{url}/v1/admin/overrides/stop-search", headers=ADMIN, timeout=5).status_code == 204
    )
    assert requests.get(f"{url}/v1/check?team=search", timeout=5).status_code == 200
    assert_error(
        requests.delete(f"{url}/v1/admin/overrides/stop-search", headers=ADMIN, timeout=5), 404, "no override"
    )
    audit = requests.get(f"{url}/v1/admin/audit?limit=10", headers=ADMIN, timeout=5).json()["entries"]
    assert [(e["actor"], e["action"], e["target"]) for e in audit] == [
        ("alice", "override.put", "ml-launch"),
        ("admin", "override.put", "stop-search"),
        ("admin", "override.delete", "stop-search"),
    ]
    assert audit[2]["before"]["reason"] == "runaway agent" and audit[2]["after"] is None
    assert all(e["at"].endswith("Z") for e in audit)
    store = running.evaluator._admin._store
    on_disk = store.path if store else None
    assert on_disk is not None and "ml-launch" in json.loads(on_disk.read_text())["overrides"]


def test_budget_crud(running: Running) -> None:
    url = running.url
    daily = {"name": "daily", "window": "day", "limit": 50, "scope": {"team": "*"}}
    created = requests.post(f"{url}/v1/admin/budgets", json=daily, headers=ADMIN, timeout=5)
    assert created.status_code == 201 and created.json()["source"] == "api"
    assert_error(
        requests.post(f"{url}/v1/admin/budgets", json=daily, headers=ADMIN, timeout=5), 409, "exists"
    )
    running.evaluator.consume(calls(1, at=START, cost="60", team="ml"))
    assert requests.get(f"{url}/v1/check?team=ml", timeout=5).headers["X-Otelcost-Budget"] == "daily"
    changed = requests.put(
        f"{url}/v1/admin/budgets/daily",
        json={**daily, "limit": 1000},
        headers={**ADMIN, "X-Otelcost-Note": "x"},
        timeout=5,
    )
    assert changed.status_code == 200
    assert requests.get(f"{url}/v1/check?team=ml", timeout=5).status_code == 200
    names = [
        b["name"] for b in requests.get(f"{url}/v1/admin/budgets", headers=ADMIN, timeout=5).json()["budgets"]
    ]
    assert names == ["team-monthly", "daily"]
    assert requests.delete(f"{url}/v1/admin/budgets/daily", headers=ADMIN, timeout=5).status_code == 204
    audit = requests.get(f"{url}/v1/admin/audit", headers=ADMIN, timeout=5).json()["entries"]
    assert [e["action"] for e in audit] == ["budget.create", "budget.update", "budget.delete"]
    assert (
        audit[1]["note"] == "x"
        and audit[1]["before"]["limit"] == "50"
        and audit[1]["after"]["limit"] == "1000"
    )


def test_bodies_are_validated_like_the_yaml(running: Running) -> None:
    url = running.url
    assert_error(
        requests.put(
            f"{url}/v1/admin/budgets/b", json={"window": "fortnight", "limit": 1}, headers=ADMIN, timeout=5
        ),
        400,
        "window: expected hour, day",
    )
    assert_error(
        requests.put(
            f"{url}/v1/admin/budgets/b",
            json={"name": "c", "window": "day", "limit": 1},
            headers=ADMIN,
            timeout=5,
        ),
        400,
        "differs from the path",
    )
    assert_error(
        requests.put(f"{url}/v1/admin/overrides/x", json={"action": "raise_limit"}, headers=ADMIN, timeout=5),
        400,
        "raise_limit needs a budget and a limit",
    )
    assert_error(
        requests.put(
            f"{url}/v1/admin/overrides/x",
            json={"action": "block", "until": "2020-01-01T00:00:00Z"},
            headers=ADMIN,
            timeout=5,
        ),
        400,
        "in the past",
    )
    assert_error(
        requests.put(f"{url}/v1/admin/overrides/x", data=b"[1]", headers=ADMIN, timeout=5), 400, "JSON object"
    )
    assert_error(
        requests.put(f"{url}/v1/admin/overrides/a%20b", json={}, headers=ADMIN, timeout=5), 400, "override id"
    )
