"""deploy/envoy/envoy.yaml and deploy/traefik/dynamic.yml against a real otelcost endpoint.

Neither Envoy nor Traefik is installable on the CI machines (``apt-cache policy envoy``: no
candidate), so each gateway is an HTTP double that reads the deployed configuration and sends
exactly the authorization request that gateway sends, then applies its documented rule to the
answer:

* **Envoy HTTP ext_authz** (``envoy.extensions.filters.http.ext_authz.v3``): the client's method,
  ``path_prefix`` + the client's path and query, only ``Host``, ``Content-Length``,
  ``Authorization`` and the headers matching ``allowed_headers`` (after the filters before it:
  ``header_mutation`` removals, then ``jwt_authn``'s ``claim_to_headers``), plus
  ``headers_to_add``. 200 allows; any other status goes to the client with the authorization
  server's body and the headers matching ``allowed_client_headers``.
* **Traefik forwardAuth**: a request with the client's method to ``address``, carrying the
  headers listed in ``authRequestHeaders`` and ``X-Forwarded-Method``/``-Uri``/``-Host``; 2xx
  allows (``authResponseHeaders`` copied upstream); anything else is the client's answer as is.

The endpoint is real (evaluator + API server, tests/policy/conftest.py) with team ``ml`` blocked by
spend (130 of its 100 USD month: past the 120 % block) and team ``search`` under budget.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.budgets.rows import calls
from tests.policy.conftest import START, Running, policy_running

ROOT = Path(__file__).resolve().parent.parent.parent
FORWARDED_BY_DEFAULT = ("host", "content-length", "authorization")  # plus method and path


@dataclass(frozen=True)
class ClientAnswer:
    """What the client (or, when allowed, the upstream) sees."""

    allowed: bool
    status: int
    headers: Mapping[str, str]
    body: bytes
    upstream_headers: Mapping[str, str]


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with policy_running(tmp_path_factory.mktemp("doubles")) as live:
        live.evaluator.consume(calls(1, at=START, cost="130", team="ml"))
        live.evaluator.tick()
        yield live


def matches(name: str, patterns: list[dict[str, str]]) -> bool:
    """Envoy's StringMatcher list (exact / prefix), on lower-cased header names."""
    lowered = name.lower()
    return any(lowered == p["exact"] if "exact" in p else lowered.startswith(p["prefix"]) for p in patterns)


def envoy_filters() -> dict[str, dict[str, Any]]:
    config = yaml.safe_load((ROOT / "deploy" / "envoy" / "envoy.yaml").read_text())
    (listener,) = config["static_resources"]["listeners"]
    (hcm,) = listener["filter_chains"][0]["filters"]
    return {f["name"]: f.get("typed_config", {}) for f in hcm["typed_config"]["http_filters"]}


def envoy(
    base_url: str, method: str, path: str, headers: Mapping[str, str], claims: Mapping[str, str]
) -> ClientAnswer:
    """One client request through the deployed filter chain, up to the router."""
    filters = envoy_filters()
    names = list(filters)
    assert names.index("envoy.filters.http.ext_authz") < names.index("envoy.filters.http.router")
    request = {k.lower(): v for k, v in headers.items()}
    for mutation in filters["envoy.filters.http.header_mutation"]["mutations"]["request_mutations"]:
        request.pop(mutation["remove"].lower(), None)
    for provider in filters["envoy.filters.http.jwt_authn"]["providers"].values():
        for copy in provider["claim_to_headers"]:
            if copy["claim_name"] in claims:
                request[copy["header_name"].lower()] = claims[copy["claim_name"]]
    authz = filters["envoy.filters.http.ext_authz"]
    service = authz["http_service"]
    assert service["server_uri"]["cluster"] == "otelcost"
    check_headers = {k: v for k, v in request.items() if k in FORWARDED_BY_DEFAULT}
    check_headers.update(
        {k: v for k, v in request.items() if matches(k, authz["allowed_headers"]["patterns"])}
    )
    for added in service["authorization_request"]["headers_to_add"]:
        check_headers[added["key"]] = added["value"]
    response = requests.request(
        method, f"{base_url}{service['path_prefix']}{path}", headers=check_headers, timeout=5
    )
    if response.status_code == 200:
        return ClientAnswer(True, 200, {}, b"", request)
    client_patterns = service["authorization_response"]["allowed_client_headers"]["patterns"]
    passed = {k.lower(): v for k, v in response.headers.items() if matches(k, client_patterns)}
    return ClientAnswer(False, response.status_code, passed, response.content, request)


def traefik(base_url: str, method: str, path: str, headers: Mapping[str, str]) -> ClientAnswer:
    config = yaml.safe_load((ROOT / "deploy" / "traefik" / "dynamic.yml").read_text())
    (middleware,) = config["http"]["routers"]["llm"]["middlewares"]
    forward = config["http"]["middlewares"][middleware]["forwardAuth"]
    listed = {h.lower() for h in forward["authRequestHeaders"]}
    check_headers = {k: v for k, v in headers.items() if k.lower() in listed}
    check_headers.update({"X-Forwarded-Method": method, "X-Forwarded-Uri": path, "X-Forwarded-Host": "llm"})
    address = forward["address"].replace("http://127.0.0.1:4320", base_url)
    response = requests.request(method, address, headers=check_headers, timeout=5)
    if 200 <= response.status_code < 300:
        lifted = {h: response.headers[h] for h in forward["authResponseHeaders"] if h in response.headers}
        return ClientAnswer(True, response.status_code, {}, b"", {**headers, **lifted})
    return ClientAnswer(False, response.status_code, dict(response.headers), response.content, {})


def test_envoy_passes_a_team_under_budget(endpoint: Running) -> None:
    answer = envoy(endpoint.url, "POST", "/v1/chat/completions", {"Content-Length": "42"}, {"team": "search"})
    assert answer.allowed
    assert answer.upstream_headers["x-otelcost-team"] == "search"


def test_envoy_refuses_a_blocked_team_with_429_and_retry_after(endpoint: Running) -> None:
    answer = envoy(
        endpoint.url,
        "POST",
        "/v1/chat/completions?stream=true",
        {"Authorization": "Bearer jwt", "Content-Length": "42"},
        {"team": "ml", "sub": "u-17"},
    )
    assert not answer.allowed
    assert answer.status == 429
    # Retry-After: the rest of March from 2026-03-14T10:00Z = 17 d 14 h = 1,519,200 s.
    assert answer.headers["retry-after"] == "1519200"
    assert answer.headers["x-otelcost-action"] == "block"
    assert answer.headers["x-otelcost-budget"] == "team-monthly"
    assert "content-type" not in answer.headers  # not in allowed_client_headers
    body = yaml.safe_load(answer.body)
    assert body["dimensions"] == {"team": "ml", "user_id": "u-17", "environment": "production"}


def test_envoy_ignores_a_clients_own_team_header(endpoint: Running) -> None:
    # A client claiming team "search" while its token says "ml" is still checked as ml.
    answer = envoy(endpoint.url, "GET", "/v1/models", {"X-Otelcost-Team": "search"}, {"team": "ml"})
    assert answer.status == 429
    # Without a team claim, the spoofed header is gone too: nothing applies, the call passes.
    assert envoy(endpoint.url, "GET", "/v1/models", {"X-Otelcost-Team": "ml"}, {}).allowed


def test_traefik_forward_auth_passes_and_refuses(endpoint: Running) -> None:
    allowed = traefik(endpoint.url, "POST", "/v1/chat/completions", {"X-Otelcost-Team": "search"})
    assert allowed.allowed and allowed.status == 200
    assert allowed.upstream_headers["X-Otelcost-Action"] == "allow"
    refused = traefik(endpoint.url, "POST", "/v1/chat/completions", {"X-Otelcost-Team": "ml"})
    assert not refused.allowed
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "1519200"
    assert yaml.safe_load(refused.body)["allowed"] is False
