"""Who may call which route of the API listener: authentication and roles, in one middleware.

Every request is authenticated with the server's :class:`~otelcost.auth.keys.KeyRing` (the same
ring the OTLP receivers use, so a reload changes both at once) and its route classified to the
role it needs:

================================================  ==========  ==============================
route                                             role        who has it
================================================  ==========  ==============================
``/healthz``, ``/readyz``, ``/metrics``           (none)      everyone: probes and scrapers
``/v1/decisions``, ``/v1/check``, ``/v1/check/*``  gateway     gateway, viewer, admin keys;
                                                              anonymous callers
``/v1/reports``, ``/v1/reports/*``, ``/v1/query``  viewer      viewer, admin keys; anonymous
``/v1/admin/*``, and any other path               admin       admin keys (``api.admin_token``
                                                              too), never anonymous
================================================  ==========  ==============================

The route is the one the router matched (its canonical path), not the raw request path, so
``/v1/reports/../admin/budgets`` or a trailing-slash variant cannot reach a route under a
weaker role. A route not in the table (one added with ``extra_routes``, say) needs admin. A path
no route serves (or a method it does not take) is answered 404 / 405 only to a caller who
authenticated (a key, or anonymous where allowed); others get the 401, so an unauthenticated
caller from afar learns nothing of which paths exist.

Where the key comes from: ``Authorization: Bearer <key>`` or ``X-Otelcost-Key`` on every route
but ``/v1/check``. A gateway's ``auth_request`` / ``ext_authz`` call forwards the *client's*
headers, whose ``Authorization`` is the caller's LLM provider key, so ``/v1/check`` reads only
``X-Otelcost-Key`` (the gateway adds it: nginx ``proxy_set_header X-Otelcost-Key ...``, Envoy
``headers_to_add``) and never treats a provider key as an otelcost key.

Answers: 401 with ``WWW-Authenticate: Bearer realm="otelcost"`` when there is no key and
anonymous access does not cover the route (``auth.anonymous.api``, loopback only by default;
anonymous callers have the gateway and viewer roles, never admin) or the key is unknown
(revoked, mistyped); 403 when the key is known but lacks the role. With no key holding the
admin role at all, the admin routes answer 403 saying the admin API is off. The principal is
stored on the request under :data:`PRINCIPAL` for the handlers: the admin API records its name
in the audit log, and the decision, check and report routes narrow what a key bound to a tenant
sees (``otelcost/policy/tenancy.py``, ``otelcost/lake/query.py``).

Two admin routes manage the ring itself (:func:`add_auth_routes`):

=======  =========================  ==========================================================
POST     /v1/admin/auth/reload      re-read ``auth.keys_file``; answers the key names now in
                                    force; an invalid file is 422 and the old keys stay
GET      /v1/admin/auth/keys        each key's name, roles and binding (never a digest)
=======  =========================  ==========================================================

A reload that took is an ``auth.reload`` entry of the audit log (the lake's ``audit_log``
table, where the admin API records budget changes): the key names before and after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from otelcost.api.responses import error_response
from otelcost.auth.config import ROLES, Role
from otelcost.auth.keys import KEY_HEADER, KeyRing, Principal, is_loopback, presented_key
from otelcost.errors import AuthenticationError, ConfigError, PermissionDeniedError
from otelcost.lake.audit import AuditEntry, append_entries

__all__ = [
    "OPEN_PATHS",
    "PRINCIPAL",
    "REALM",
    "access_control",
    "add_auth_routes",
    "principal_of",
    "principal_or_none",
    "required_role",
    "tenant_of",
]

PRINCIPAL: Final = web.RequestKey("otelcost_principal", Principal)
"""The authenticated caller of a request (absent on the open routes)."""

REALM: Final = 'Bearer realm="otelcost"'
OPEN_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics"})

_GATEWAY_PATHS: Final = frozenset({"/v1/decisions", "/v1/check"})
_VIEWER_PATHS: Final = frozenset({"/v1/reports", "/v1/query"})
_CHECK_PATH: Final = "/v1/check"


def _canonical(request: web.Request) -> str | None:
    """The matched route's path template (``/v1/reports/{name}``); None when none matched."""
    route = request.match_info.route
    resource = route.resource
    if resource is None or isinstance(request.match_info.http_exception, web.HTTPException):
        return None
    return resource.canonical


def required_role(path: str | None) -> Role | None:
    """The role a route (its canonical path) needs; None for the open routes."""
    if path is None:
        return "admin"
    if path in OPEN_PATHS:
        return None
    if path in _GATEWAY_PATHS or path.startswith(_CHECK_PATH + "/"):
        return "gateway"
    if path in _VIEWER_PATHS or path.startswith("/v1/reports/"):
        return "viewer"
    return "admin"


def _unauthorized(message: str) -> web.Response:
    response = error_response(401, message)
    response.headers["WWW-Authenticate"] = REALM
    return response


def principal_of(request: web.Request) -> Principal:
    """The caller of a request that passed :func:`access_control` (a route that needs a role)."""
    return request[PRINCIPAL]


def principal_or_none(request: web.Request) -> Principal | None:
    """The caller, or None on an application without :func:`access_control`."""
    principal = request.get(PRINCIPAL)
    return principal if isinstance(principal, Principal) else None


def tenant_of(request: web.Request) -> str | None:
    """The tenant the caller is bound to (``bind: {tenant_id: ...}``); None: every tenant."""
    principal = principal_or_none(request)
    return None if principal is None else principal.tenant


def access_control(keys: KeyRing) -> Middleware:
    """The middleware: authenticate, check the route's role, store the principal."""

    @web.middleware
    async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = _canonical(request)
        role = required_role(path)
        if role is None:
            return await handler(request)
        if path is None:
            # No route: whoever may ask anything is told 404 / 405; the others only 401.
            unmatched = await _authenticated(request, _request_key(request, None))
            return unmatched if unmatched is not None else await handler(request)
        if role == "admin" and not keys.has_admin:
            return error_response(
                403,
                "the admin API is disabled: no key has the admin role (add one to auth.keys, "
                "or set api.admin_token (or OTELCOST_API__ADMIN_TOKEN))",
            )
        try:
            principal = keys.admit(
                _request_key(request, path),
                surface="api",
                peer_is_loopback=is_loopback(request.remote),
                role=role,
            )
        except AuthenticationError as exc:
            return _unauthorized(str(exc))
        except PermissionDeniedError as exc:
            return error_response(403, str(exc))
        request[PRINCIPAL] = principal
        try:
            return await handler(request)
        except AuthenticationError as exc:
            return _unauthorized(str(exc))
        except PermissionDeniedError as exc:
            return error_response(403, str(exc))

    async def _authenticated(request: web.Request, key: str | None) -> web.Response | None:
        try:
            keys.authenticate(key, surface="api", peer_is_loopback=is_loopback(request.remote))
        except AuthenticationError as exc:
            return _unauthorized(str(exc))
        return None

    return access


def _request_key(request: web.Request, path: str | None) -> str | None:
    """The otelcost key a request presents; on ``/v1/check`` only ``X-Otelcost-Key`` counts
    (its ``Authorization`` is the gateway's client's, module docstring)."""
    if path is not None and (path == _CHECK_PATH or path.startswith(_CHECK_PATH + "/")):
        return presented_key(None, request.headers.get(KEY_HEADER))
    return presented_key(request.headers.get("Authorization"), request.headers.get(KEY_HEADER))


def _key_json(principal: Principal) -> dict[str, Any]:
    return {
        "name": principal.name,
        "roles": [role for role in ROLES if principal.can(role)],
        "bind": dict(sorted(principal.bind.items())),
    }


KeyReload = Callable[[str, str | None], tuple[str, ...]]
"""Reload the keys (actor, note) -> the key names now in force; raises ConfigError and keeps
the old keys when ``auth.keys_file`` does not load."""


def audited_reload(
    keys: KeyRing, *, audit_dir: Path | None, then: Callable[[], None] | None = None
) -> KeyReload:
    """The one way keys are reloaded (``POST /v1/admin/auth/reload`` and SIGHUP alike): re-read
    ``keys_file``, run ``then`` (the serve process tells its receiver workers), and record an
    ``auth.reload`` entry in the audit table under ``audit_dir`` (None: not audited)."""

    def reload(actor: str, note: str | None) -> tuple[str, ...]:
        before = keys.names
        names = keys.reload()
        if then is not None:
            then()
        if audit_dir is not None:
            entry = AuditEntry(
                actor=actor,
                action="auth.reload",
                target="auth.keys",
                before={"keys": list(before)},
                after={"keys": list(names)},
                note=note,
            )
            append_entries(audit_dir, [entry])
        return names

    return reload


def add_auth_routes(app: web.Application, keys: KeyRing, *, reload: KeyReload) -> None:
    """Serve ``/v1/admin/auth/reload`` (through ``reload``) and ``/v1/admin/auth/keys``."""

    async def list_keys(request: web.Request) -> web.Response:
        principal_of(request).require("admin")
        return web.json_response(
            {
                "keys": [_key_json(p) for p in keys.principals()],
                "anonymous": keys.config.anonymous.model_dump(mode="json"),
            }
        )

    async def reload_route(request: web.Request) -> web.Response:
        principal = principal_of(request)
        principal.require("admin")
        try:
            # Reading the file and writing the audit entry are I/O: off the gateways' loop.
            names = await asyncio.to_thread(reload, principal.name, request.headers.get("X-Otelcost-Note"))
        except (ConfigError, ValueError) as exc:
            return error_response(422, f"{exc}; the keys in force are unchanged")
        return web.json_response({"keys": list(names), "reloads": keys.reloads})

    app.add_routes(
        [
            web.get("/v1/admin/auth/keys", list_keys),
            web.post("/v1/admin/auth/reload", reload_route),
        ]
    )
