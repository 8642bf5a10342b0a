"""``/v1/check``: "may this call go ahead?", asked per request (nginx ``auth_request``, Envoy
``ext_authz``).

Any method is accepted. Dimensions come as query parameters (``?team=ml&user_id=u1``, on
``/v1/check`` only) or ``X-Otelcost-<Dimension>`` headers (``X-Otelcost-User-Id``; headers win).
200 when allowed; when throttled or blocked, ``api.check_deny_status`` (429), or the status
asked for with ``?deny_status=403`` / ``X-Otelcost-Deny-Status: 403``, with ``Retry-After``.
Every answer carries ``X-Otelcost-Action``, ``-Reason``, ``-Budget``, ``-Retry-After`` and
``-Version`` headers, and ``X-Otelcost-Stale: true`` while the shared budget store cannot be
reached; then ``api.check_when_stale`` (or ``X-Otelcost-When-Stale``) says whether to decide
from this process's totals, allow (fail open) or deny (fail closed). The ``/v1/check/<anything>``
form exists for Envoy's ``path_prefix``, which appends the client's path (and query, which is
ignored there: the client wrote it).
docs/gateway-integration.md has the nginx and Envoy configurations.

The otelcost key of a check comes in ``X-Otelcost-Key`` only (``access.py`` says why: the
``Authorization`` a gateway forwards is the client's). A key bound to dimensions
(``bind: {tenant_id: acme}``) checks calls of those only: the bound values replace whatever the
query or the headers say, and a tenant-bound key is answered from its tenant's view of the
snapshot (``otelcost/policy/tenancy.py``), so the answer names no other tenant's budget and no
shared budget's amounts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Final

from aiohttp import web

from otelcost.api.access import principal_or_none
from otelcost.api.decisions import DecisionSource, tenant_views
from otelcost.api.responses import error_response
from otelcost.budgets.config import SCOPE_DIMENSIONS
from otelcost.policy.config import ApiConfig
from otelcost.policy.decisions import Action, CheckResult, Snapshot
from otelcost.policy.encoding import JSON_CONTENT_TYPE, decision_to_json
from otelcost.policy.tenancy import TenantViews

__all__ = ["DENY_STATUS_HEADER", "DIMENSION_HEADER_PREFIX", "add_check_routes"]

DIMENSION_HEADER_PREFIX: Final = "x-otelcost-"
DENY_STATUS_HEADER: Final = "X-Otelcost-Deny-Status"
WHEN_STALE_HEADER: Final = "X-Otelcost-When-Stale"
_WHEN_STALE: Final = ("decide", "allow", "deny")
_RESERVED_QUERY: Final = frozenset({"deny_status"})
_HEADER_UNSAFE: Final = re.compile(r"[^\x20-\x7e]")


def _header_safe(text: str, limit: int = 512) -> str:
    return _HEADER_UNSAFE.sub("?", text)[:limit]


class _CheckEndpoint:
    def __init__(
        self, source: DecisionSource, config: ApiConfig, clock_ns: Callable[[], int], views: TenantViews
    ) -> None:
        self.source = source
        self.views = views
        self.deny_status = config.check_deny_status
        self.when_stale = config.check_when_stale
        self.clock_ns = clock_ns

    @staticmethod
    def _dimensions(request: web.Request, *, from_query: bool) -> dict[str, str] | web.Response:
        dimensions: dict[str, str] = {}
        if from_query:
            for name, value in request.query.items():
                if name in _RESERVED_QUERY:
                    continue
                if name not in SCOPE_DIMENSIONS:
                    return error_response(
                        400, f"unknown dimension {name!r}; expected one of {', '.join(SCOPE_DIMENSIONS)}"
                    )
                dimensions[name] = value
        for name, value in request.headers.items():
            lowered = name.lower()
            if lowered.startswith(DIMENSION_HEADER_PREFIX):
                dim = lowered[len(DIMENSION_HEADER_PREFIX) :].replace("-", "_")
                if dim in SCOPE_DIMENSIONS and value:
                    dimensions[dim] = value
        return dimensions

    def _deny_status(self, request: web.Request, *, from_query: bool) -> int | web.Response:
        text = request.headers.get(DENY_STATUS_HEADER) or (
            request.query.get("deny_status") if from_query else None
        )
        if text is None:
            return self.deny_status
        if not text.isdigit() or not 400 <= int(text) <= 499:
            return error_response(400, f"deny_status must be a 4xx status, got {text!r}")
        return int(text)

    async def check(self, request: web.Request) -> web.Response:
        from_query = "tail" not in request.match_info
        dimensions = self._dimensions(request, from_query=from_query)
        if isinstance(dimensions, web.Response):
            return dimensions
        deny_status = self._deny_status(request, from_query=from_query)
        if isinstance(deny_status, web.Response):
            return deny_status
        snapshot = self.source.snapshot
        principal = principal_or_none(request)
        if principal is not None and principal.bind:
            dimensions.update((d, v) for d, v in principal.bind.items() if d in SCOPE_DIMENSIONS)
            if principal.tenant is not None:
                snapshot = self.views.view(snapshot, principal.tenant)
        now = self.clock_ns()
        result = snapshot.check(dimensions, now)
        if snapshot.stale:
            when_stale = request.headers.get(WHEN_STALE_HEADER, self.when_stale).lower()
            if when_stale not in _WHEN_STALE:
                return error_response(400, f"{WHEN_STALE_HEADER} must be one of {', '.join(_WHEN_STALE)}")
            result = _when_stale(result, when_stale)
        return _check_response(result, snapshot, dimensions, deny_status)


def _when_stale(result: CheckResult, when_stale: str) -> CheckResult:
    """A check answered while the shared store is out of reach (``api.check_when_stale``)."""
    why = "budget totals are stale (the shared store cannot be reached)"
    if when_stale == "allow":
        return CheckResult(Action.ALLOW, None, (), result.version, f"{why}; failing open")
    if when_stale == "deny":
        return CheckResult(Action.BLOCK, None, (), result.version, f"{why}; failing closed", retry_after=5)
    return replace(result, reason=f"{result.reason}; {why}")


def _check_response(
    result: CheckResult, snapshot: Snapshot, dimensions: Mapping[str, str], deny_status: int
) -> web.Response:
    decision = result.decision
    headers = {
        "X-Otelcost-Action": result.action.value,
        "X-Otelcost-Version": str(result.version),
        "X-Otelcost-Reason": _header_safe(result.reason),
        "Cache-Control": "no-store",
    }
    if snapshot.stale:
        headers["X-Otelcost-Stale"] = "true"
    if decision is not None:
        headers["X-Otelcost-Budget"] = _header_safe(decision.budget or decision.override_id or "")
    if result.retry_after is not None:
        headers["Retry-After"] = str(result.retry_after)
        headers["X-Otelcost-Retry-After"] = str(result.retry_after)
    body = {
        "allowed": result.allowed,
        "action": result.action.value,
        "reason": result.reason,
        "retry_after": result.retry_after,
        "dimensions": dict(sorted(dimensions.items())),
        "decisions": [decision_to_json(d) for d in result.decisions],
        "version": snapshot.version,
        "etag": snapshot.etag,
        "stale": snapshot.stale,
    }
    status = 200 if result.allowed else deny_status
    return web.Response(
        status=status, body=json.dumps(body).encode(), headers=headers, content_type=JSON_CONTENT_TYPE
    )


def add_check_routes(
    app: web.Application, source: DecisionSource, config: ApiConfig, clock_ns: Callable[[], int]
) -> None:
    """Serve ``/v1/check`` and ``/v1/check/<anything>`` from ``source``'s current snapshot."""
    endpoint = _CheckEndpoint(source, config, clock_ns, tenant_views(app))
    app.router.add_route("*", "/v1/check", endpoint.check)
    app.router.add_route("*", "/v1/check/{tail:.*}", endpoint.check)
