"""Roles on the API listener, over real HTTP to a real server: who may call which route.

Keys are made with ``new_key()`` and configured by their digest (``auth.keys`` and a
``keys_file``). Each role is sent to a route of every class (open, gateway, viewer, admin); a
missing, unknown, revoked or rotated-out key is 401 with the ``Bearer`` challenge, a known key
without the role 403. ``/v1/check`` reads the otelcost key from ``X-Otelcost-Key`` only: the
``Authorization`` a gateway forwards is its client's provider key. Anonymous callers (loopback
by default) may read decisions and reports, never administer; with ``auth.anonymous.api: deny``
they reach the probes only. Key reloads through the admin API swap the ring at once, keep the
old one when the file is invalid, and are audited.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from otelcost.api.access import required_role
from otelcost.auth.keys import key_digest, new_key
from otelcost.lake.query import run_query
from otelcost.server import BackgroundServer
from tests.e2e.conftest import loopback_config
from tests.policy.nginx_run import DOC, documented_config, nginx_serving, provider_double

ADMIN_KEY = new_key()
VIEWER_KEY = new_key()
GATEWAY_KEY = new_key()
INGEST_KEY = new_key()
FILE_KEY = new_key()
ROTATING_OLD = new_key()
ROTATING_NEW = new_key()
LEGACY_TOKEN = "legacy-admin-token-0123456789"

REALM = 'Bearer realm="otelcost"'

OPEN = ("/healthz", "/readyz", "/metrics")
GATEWAY = ("/v1/decisions", "/v1/check?team=ml", "/v1/check/v1/chat/completions")
VIEWER = ("/v1/reports", "/v1/reports/showback")
ADMIN = ("/v1/admin/budgets", "/v1/admin/overrides", "/v1/admin/audit?limit=5", "/v1/admin/auth/keys")


def _key(name: str, key: str | list[str], *roles: str, **bind: str) -> dict[str, Any]:
    digest = [key_digest(k) for k in key] if isinstance(key, list) else key_digest(key)
    return {"name": name, "digest": digest, "roles": list(roles), "bind": bind}


INLINE_KEYS = [
    _key("root", ADMIN_KEY, "admin"),
    _key("finance", VIEWER_KEY, "viewer"),
    _key("edge", GATEWAY_KEY, "gateway"),
    _key("collector", INGEST_KEY, "ingest"),
]


def _write_keys(path: Path, keys: list[dict[str, Any]] | str) -> None:
    path.write_text(keys if isinstance(keys, str) else yaml.safe_dump(keys), encoding="utf-8")


@dataclass
class Api:
    url: str
    keys_file: Path
    lake_dir: Path

    def call(
        self, method: str, path: str, key: str | None = None, *, header: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """``key`` as a bearer token, or in ``X-Otelcost-Key`` on /v1/check (or with ``header``)."""
        header = header or ("X-Otelcost-Key" if path.startswith("/v1/check") else "Authorization")
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers[header] = f"Bearer {key}" if header == "Authorization" else key
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def get(self, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
        return self.call("GET", path, key, **kwargs)

    def post(self, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
        return self.call("POST", path, key, **kwargs)


@contextmanager
def serving(
    data_dir: Path, *, anonymous: str = "loopback", file_keys: list[dict[str, Any]] | None = None
) -> Iterator[Api]:
    data_dir.mkdir(parents=True)
    keys_file = data_dir / "keys.yaml"
    _write_keys(keys_file, file_keys if file_keys is not None else [_key("file-viewer", FILE_KEY, "viewer")])
    config = loopback_config(
        data_dir / "data",
        auth={"anonymous": {"api": anonymous}, "keys": INLINE_KEYS, "keys_file": str(keys_file)},
        api={"listen": "127.0.0.1:0", "admin_token": LEGACY_TOKEN},
    )
    with BackgroundServer(config) as running:
        assert running.server.api_port is not None
        yield Api(f"http://127.0.0.1:{running.server.api_port}", keys_file, config.lake_dir)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with serving(tmp_path_factory.mktemp("roles") / "server") as live:
        yield live


@pytest.fixture
def reloading(tmp_path: Path) -> Iterator[Api]:
    """A server of its own: these tests rewrite its keys file."""
    with serving(tmp_path / "server") as live:
        yield live


def assert_status(answer: httpx.Response, status: int, what: object) -> None:
    assert answer.status_code == status, (what, answer.status_code, answer.text)
    if status == 401:
        assert answer.headers["WWW-Authenticate"] == REALM, what
    if status in (401, 403):
        assert set(answer.json()) == {"error"}, what


def test_the_route_table() -> None:
    assert [required_role(p) for p in ("/healthz", "/readyz", "/metrics")] == [None, None, None]
    assert {required_role(p) for p in ("/v1/decisions", "/v1/check", "/v1/check/{tail}")} == {"gateway"}
    assert {required_role(p) for p in ("/v1/reports", "/v1/reports/{name}", "/v1/query")} == {"viewer"}
    admin = ("/v1/admin/budgets", "/v1/admin/auth/reload", "/v1/checkout", "/v1/reportsx", "/x", None)
    assert {required_role(p) for p in admin} == {"admin"}


@pytest.mark.slow
def test_each_role_reaches_its_routes_and_no_others(api: Api) -> None:
    allowed = {
        "admin": (*GATEWAY, *VIEWER, *ADMIN),
        "legacy": (*GATEWAY, *VIEWER, *ADMIN),
        "viewer": (*GATEWAY, *VIEWER),
        "file-viewer": (*GATEWAY, *VIEWER),
        "gateway": GATEWAY,
        "ingest": (),
        "anonymous": (*GATEWAY, *VIEWER),
    }
    keys = {
        "admin": ADMIN_KEY,
        "legacy": LEGACY_TOKEN,
        "viewer": VIEWER_KEY,
        "file-viewer": FILE_KEY,
        "gateway": GATEWAY_KEY,
        "ingest": INGEST_KEY,
        "anonymous": None,
    }
    for who, key in keys.items():
        for path in OPEN:
            assert_status(api.get(path, key), 200, (who, path))
        for path in (*GATEWAY, *VIEWER, *ADMIN):
            # Refused: an anonymous caller is asked for a key (401), a key lacks the role (403).
            expected = 200 if path in allowed[who] else 401 if key is None else 403
            assert_status(api.get(path, key), expected, (who, path))
        query = api.post("/v1/query", key, json={"sql": "SELECT 42 AS answer"})
        if "/v1/reports" in allowed[who]:
            assert_status(query, 200, (who, "/v1/query"))
            assert query.json()["rows"] == [{"answer": 42}]
        else:
            assert_status(query, 401 if key is None else 403, (who, "/v1/query"))
    forbidden = api.get("/v1/admin/budgets", VIEWER_KEY).json()["error"]["message"]
    assert "finance" in forbidden and "admin" in forbidden


@pytest.mark.slow
def test_a_wrong_key_is_401_everywhere_but_the_probes(api: Api) -> None:
    wrong = new_key()
    for path in (*GATEWAY, *VIEWER, *ADMIN):
        answer = api.get(path, wrong)
        assert_status(answer, 401, path)
        assert wrong not in answer.text
    for path in OPEN:
        assert_status(api.get(path, wrong), 200, path)
    # A path no route serves: 401 unless the caller authenticated, then 404 / 405.
    assert_status(api.get("/v1/nothing-here", wrong), 401, "unknown path")
    assert_status(api.get("/v1/nothing-here", VIEWER_KEY), 404, "unknown path")
    assert_status(api.get("/v1/query", VIEWER_KEY), 405, "GET /v1/query")
    assert_status(api.post("/v1/query", wrong, json={"sql": "SELECT 1"}), 401, "/v1/query")
    assert_status(api.get("/v1/admin/budgets", GATEWAY_KEY), 403, "a gateway administering")
    scraped = api.get("/metrics").text
    for outcome in ("unauthenticated", "forbidden", "key"):
        (line,) = [
            line
            for line in scraped.splitlines()
            if line.startswith(f'otelcost_api_auth_requests_total{{outcome="{outcome}"}}')
        ]
        assert float(line.split()[-1]) >= 1, line
    assert wrong not in scraped


@pytest.mark.slow
def test_check_reads_the_otelcost_key_from_x_otelcost_key_only(api: Api, tmp_path: Path) -> None:
    # A gateway forwards its client's Authorization (an LLM provider key): never taken as ours,
    # so it neither fails as an unknown key nor passes as a valid one.
    provider = api.get("/v1/check?team=ml", headers={"Authorization": "Bearer sk-proj-provider-key"})
    assert_status(provider, 200, "provider key on /v1/check")
    assert_status(api.get("/v1/check?team=ml", new_key()), 401, "unknown X-Otelcost-Key")
    assert_status(api.get("/v1/check?team=ml", INGEST_KEY), 403, "an ingest key")
    with serving(tmp_path / "deny", anonymous="deny") as denying:
        as_bearer = denying.get("/v1/check?team=ml", GATEWAY_KEY, header="Authorization")
        assert_status(as_bearer, 401, "a gateway key sent as Authorization on /v1/check")
        assert_status(denying.get("/v1/check?team=ml", GATEWAY_KEY), 200, "X-Otelcost-Key")
        # Elsewhere either header carries the key.
        assert_status(denying.get("/v1/decisions", GATEWAY_KEY, header="X-Otelcost-Key"), 200, "decisions")
        assert_status(denying.get("/v1/decisions", GATEWAY_KEY), 200, "decisions, bearer")


@pytest.mark.slow
def test_anonymous_access_denied_leaves_only_the_probes(tmp_path: Path) -> None:
    # A non-loopback peer cannot be made here; auth.anonymous.api: deny is what it meets.
    with serving(tmp_path / "deny", anonymous="deny") as denying:
        for path in (*GATEWAY, *VIEWER, *ADMIN):
            answer = denying.get(path)
            assert_status(answer, 401, path)
        assert "auth.anonymous.api" in denying.get("/v1/decisions").json()["error"]["message"]
        assert_status(denying.post("/v1/query", json={"sql": "SELECT 1"}), 401, "/v1/query")
        for path in OPEN:
            assert_status(denying.get(path), 200, path)
        for path in (*GATEWAY, *VIEWER):
            assert_status(denying.get(path, VIEWER_KEY), 200, path)


@pytest.mark.slow
def test_the_audit_actor_is_the_keys_name(api: Api) -> None:
    body = {"action": "block", "scope": {"user_id": "audited"}, "reason": "roles test"}
    by_key = api.call("PUT", "/v1/admin/overrides/by-key", ADMIN_KEY, json=body)
    assert by_key.status_code == 201 and by_key.json()["created_by"] == "root"
    by_token = api.call("PUT", "/v1/admin/overrides/by-token", LEGACY_TOKEN, json=body)
    assert by_token.status_code == 201 and by_token.json()["created_by"] == "admin"
    refused = api.call("PUT", "/v1/admin/overrides/by-viewer", VIEWER_KEY, json=body)
    assert_status(refused, 403, "viewer PUT")
    entries = api.get("/v1/admin/audit?limit=50", ADMIN_KEY).json()["entries"]
    actors = {e["target"]: e["actor"] for e in entries if e["action"] == "override.put"}
    assert actors["by-key"] == "root" and actors["by-token"] == "admin" and "by-viewer" not in actors


@pytest.mark.slow
def test_the_key_listing_names_roles_and_bindings_never_digests(api: Api) -> None:
    answer = api.get("/v1/admin/auth/keys", ADMIN_KEY)
    assert answer.status_code == 200
    listed = {k["name"]: k for k in answer.json()["keys"]}
    assert set(listed) == {"root", "finance", "edge", "collector", "file-viewer", "admin"}
    assert listed["finance"]["roles"] == ["gateway", "viewer"]  # a viewer may read decisions
    assert listed["root"]["roles"] == ["ingest", "gateway", "viewer", "admin"]
    assert listed["collector"] == {"name": "collector", "roles": ["ingest"], "bind": {}}
    assert answer.json()["anonymous"] == {"ingest": "loopback", "api": "loopback"}
    for secret in (ADMIN_KEY, VIEWER_KEY, FILE_KEY, LEGACY_TOKEN, "sha256:", key_digest(ADMIN_KEY)[7:]):
        assert secret not in answer.text


def _reload(api: Api, key: str | None = ADMIN_KEY) -> httpx.Response:
    return api.post("/v1/admin/auth/reload", key, headers={"X-Otelcost-Note": "rotation drill"})


def _audit_reloads(api: Api) -> list[dict[str, Any]]:
    table = run_query(
        api.lake_dir,
        "SELECT actor, target, before, after, note FROM audit_log"
        " WHERE action = 'auth.reload' ORDER BY changed_at",
    )
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


@pytest.mark.slow
def test_a_revoked_key_is_refused_after_the_reload(reloading: Api) -> None:
    assert_status(reloading.get("/v1/reports", FILE_KEY), 200, "before")
    _write_keys(reloading.keys_file, [])
    assert_status(reloading.get("/v1/reports", FILE_KEY), 200, "removed, not reloaded yet")
    assert_status(_reload(reloading, VIEWER_KEY), 403, "a viewer reloading")
    assert_status(_reload(reloading, None), 401, "anonymous reloading")
    answer = _reload(reloading)
    assert answer.status_code == 200, answer.text
    assert "file-viewer" not in answer.json()["keys"] and "root" in answer.json()["keys"]
    assert_status(reloading.get("/v1/reports", FILE_KEY), 401, "revoked")
    assert_status(reloading.get("/v1/reports", VIEWER_KEY), 200, "an inline key stays")
    (entry,) = _audit_reloads(reloading)
    assert (entry["actor"], entry["target"], entry["note"]) == ("root", "auth.keys", "rotation drill")
    assert "file-viewer" in json.loads(entry["before"])["keys"]
    assert "file-viewer" not in json.loads(entry["after"])["keys"]


@pytest.mark.slow
def test_a_rotated_key_works_under_both_digests_then_only_the_new(reloading: Api) -> None:
    _write_keys(reloading.keys_file, [_key("rotating", [ROTATING_OLD], "viewer")])
    assert _reload(reloading).status_code == 200
    assert_status(reloading.get("/v1/reports", ROTATING_OLD), 200, "old")
    assert_status(reloading.get("/v1/reports", ROTATING_NEW), 401, "new, not yet added")
    _write_keys(reloading.keys_file, [_key("rotating", [ROTATING_OLD, ROTATING_NEW], "viewer")])
    assert _reload(reloading).status_code == 200
    for key in (ROTATING_OLD, ROTATING_NEW):
        assert_status(reloading.get("/v1/reports", key), 200, "both digests")
    _write_keys(reloading.keys_file, [_key("rotating", [ROTATING_NEW], "viewer")])
    assert _reload(reloading).json()["keys"].count("rotating") == 1
    assert_status(reloading.get("/v1/reports", ROTATING_OLD), 401, "old removed")
    assert_status(reloading.get("/v1/reports", ROTATING_NEW), 200, "new")
    assert len(_audit_reloads(reloading)) == 3


@pytest.mark.slow
def test_an_invalid_keys_file_keeps_the_keys_in_force(reloading: Api) -> None:
    for bad in (
        "- name: [unclosed",
        yaml.safe_dump([{"name": "no-digest", "roles": ["viewer"]}]),
        yaml.safe_dump([{"name": "clear", "digest": FILE_KEY, "roles": ["viewer"]}]),  # the key itself
        yaml.safe_dump([_key("root", new_key(), "viewer")]),  # a name auth.keys has
    ):
        _write_keys(reloading.keys_file, bad)
        answer = _reload(reloading)
        assert_status(answer, 422, bad)
        assert "keys in force are unchanged" in answer.json()["error"]["message"]
        assert FILE_KEY not in answer.text
        assert_status(reloading.get("/v1/reports", FILE_KEY), 200, "the old file's key")
        assert_status(reloading.get("/v1/admin/budgets", ADMIN_KEY), 200, "the admin key")
    assert _audit_reloads(reloading) == []


# -- a real nginx in front: the documented auth_request block with the gateway's key ----------------

KEY_LINE = 'proxy_set_header X-Otelcost-Key "otc_...";'


def _nginx(directory: Path, api_url: str, upstream: str, key: str | None) -> AbstractContextManager[str]:
    """The documented block, with the documented key line added after the deny-status line."""
    assert KEY_LINE in DOC.read_text(encoding="utf-8")  # the line the page tells gateways to add
    block = documented_config()
    anchor = "proxy_set_header X-Otelcost-Deny-Status 403;"
    assert anchor in block
    if key is not None:
        block = block.replace(anchor, anchor + "\n        " + KEY_LINE.replace("otc_...", key))
    return nginx_serving(directory, block, api_address=api_url.removeprefix("http://"), upstream=upstream)


def test_nginx_sends_the_gateway_key_and_the_clients_provider_key_is_not_ours(tmp_path: Path) -> None:
    client = {"Authorization": "Bearer sk-proj-the-clients-provider-key", "X-Team": "ml"}
    with serving(tmp_path / "otelcost", anonymous="deny") as api, provider_double() as (upstream, seen):
        with _nginx(tmp_path / "with-key", api.url, upstream, GATEWAY_KEY) as gateway:
            allowed = httpx.post(f"{gateway}/v1/chat/completions", headers=client, json={}, timeout=10)
            assert allowed.status_code == 200 and allowed.json() == {"upstream": "ok"}
            assert seen == [client["Authorization"]]  # the provider still gets the client's key
        with _nginx(tmp_path / "wrong-key", api.url, upstream, new_key()) as gateway:
            refused = httpx.post(f"{gateway}/v1/chat/completions", headers=client, json={}, timeout=10)
            assert refused.status_code == 401 and len(seen) == 1  # refused, never forwarded
        with _nginx(tmp_path / "no-key", api.url, upstream, None) as gateway:
            # Without the line, only the client's Authorization reaches /v1/check: not a key.
            refused = httpx.post(f"{gateway}/v1/chat/completions", headers=client, json={}, timeout=10)
            assert refused.status_code == 401 and len(seen) == 1
