"""The admin API: change budgets and overrides at run time, read the audit log.

Every route needs a key with the admin role (``auth.keys``, or the older ``api.admin_token``,
recorded as ``admin``, and ``api.admin_tokens``, recorded by their names): the access middleware
(``access.py``) authenticates the request and refuses others (401 without a valid key, 403 for a
key without the role, 403 when no key has the role at all). The key's name is the audit log's
actor.

=======  ================================  ==========================================
GET      /v1/admin/budgets                 effective budgets, each with its ``source``
POST     /v1/admin/budgets                 create (409 if the name exists)
PUT      /v1/admin/budgets/{name}          create or replace
DELETE   /v1/admin/budgets/{name}          delete (a YAML budget too, until re-created)
GET      /v1/admin/overrides               current overrides
PUT      /v1/admin/overrides/{id}          create or replace (block / allow / raise_limit)
DELETE   /v1/admin/overrides/{id}          remove
GET      /v1/admin/audit?limit=100         the newest audit entries, oldest first
=======  ================================  ==========================================

A change is applied, persisted and audited (who, when, before, after) before the answer; the
new decisions are published at once. Bodies are JSON and validated like the YAML
configuration; an optional ``X-Otelcost-Note`` header is stored in the audit entry. The
operations touch files (and, for a new budget, query the lake), so they run on a worker thread
and never stall the event loop that serves the decisions.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

from aiohttp import web
from pydantic import BaseModel, ValidationError

from otelcost.api.access import principal_of
from otelcost.api.responses import error_response
from otelcost.budgets import BudgetConfig, BudgetEntry, Override, OverrideSpec
from otelcost.budgets.overrides import OVERRIDE_ID_PATTERN

__all__ = ["BudgetAdmin", "add_admin_routes"]


@runtime_checkable
class BudgetAdmin(Protocol):
    """The operations behind the admin API (implemented by the budget evaluator)."""

    def budgets(self) -> list[BudgetEntry]: ...

    def upsert_budget(
        self, config: BudgetConfig, *, actor: str, note: str | None = None
    ) -> tuple[bool, BudgetEntry]: ...

    def delete_budget(self, name: str, *, actor: str, note: str | None = None) -> BudgetEntry: ...

    def overrides(self) -> list[Override]: ...

    def put_override(self, override_id: str, spec: OverrideSpec, *, actor: str) -> tuple[bool, Override]: ...

    def delete_override(self, override_id: str, *, actor: str) -> Override: ...

    def audit(self, limit: int | None = None) -> list[dict[str, Any]]: ...


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_Model = TypeVar("_Model", bound=BaseModel)


def _budget_json(entry: BudgetEntry) -> dict[str, Any]:
    return {"source": entry.source, **entry.config.model_dump(mode="json")}


def _validation_message(error: ValidationError) -> str:
    parts = []
    for problem in error.errors():
        loc = ".".join(str(p) for p in problem["loc"]) or "(body)"
        message = problem["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {'unknown key' if problem['type'] == 'extra_forbidden' else message}")
    return "; ".join(parts)


class _AdminApi:
    def __init__(self, admin: BudgetAdmin) -> None:
        self.admin = admin

    @staticmethod
    async def _body(request: web.Request, model: type[_Model], **fixed: Any) -> _Model | web.Response:
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error_response(400, "the body must be a JSON object")
        if not isinstance(data, dict):
            return error_response(400, "the body must be a JSON object")
        for key, value in fixed.items():
            if data.setdefault(key, value) != value:
                return error_response(
                    400, f"{key} in the body ({data[key]!r}) differs from the path ({value!r})"
                )
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            return error_response(400, _validation_message(exc))

    def guarded(self, handler: Callable[[web.Request, str], Awaitable[web.StreamResponse]]) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            principal = principal_of(request)
            principal.require("admin")  # the middleware checked it; a route added elsewhere too
            return await handler(request, principal.name)

        return run

    # Domain errors raised by the admin operations propagate: the app's middleware answers them
    # (otelcost/api/responses.py has the table of statuses).

    # -- budgets ---------------------------------------------------------------------------------

    async def list_budgets(self, request: web.Request, actor: str) -> web.Response:
        entries = await asyncio.to_thread(self.admin.budgets)
        return web.json_response({"budgets": [_budget_json(e) for e in entries]})

    async def create_budget(self, request: web.Request, actor: str) -> web.Response:
        config = await self._body(request, BudgetConfig)
        if isinstance(config, web.Response):
            return config
        entries = await asyncio.to_thread(self.admin.budgets)
        if any(e.config.name == config.name for e in entries):
            return error_response(409, f"a budget named {config.name!r} exists; PUT it to replace it")
        return await self._upsert(request, config, actor)

    async def put_budget(self, request: web.Request, actor: str) -> web.Response:
        config = await self._body(request, BudgetConfig, name=request.match_info["name"])
        if isinstance(config, web.Response):
            return config
        return await self._upsert(request, config, actor)

    async def _upsert(self, request: web.Request, config: BudgetConfig, actor: str) -> web.Response:
        note = request.headers.get("X-Otelcost-Note")
        created, entry = await asyncio.to_thread(self.admin.upsert_budget, config, actor=actor, note=note)
        return web.json_response(_budget_json(entry), status=201 if created else 200)

    async def delete_budget(self, request: web.Request, actor: str) -> web.Response:
        name = request.match_info["name"]
        note = request.headers.get("X-Otelcost-Note")
        await asyncio.to_thread(self.admin.delete_budget, name, actor=actor, note=note)
        return web.Response(status=204)

    # -- overrides -------------------------------------------------------------------------------

    async def list_overrides(self, request: web.Request, actor: str) -> web.Response:
        overrides = await asyncio.to_thread(self.admin.overrides)
        return web.json_response({"overrides": [o.model_dump(mode="json") for o in overrides]})

    async def put_override(self, request: web.Request, actor: str) -> web.Response:
        override_id = request.match_info["id"]
        if not OVERRIDE_ID_PATTERN.match(override_id):
            return error_response(400, "an override id is 1-128 letters, digits, '_', '.', ':' or '-'")
        spec = await self._body(request, OverrideSpec)
        if isinstance(spec, web.Response):
            return spec
        created, override = await asyncio.to_thread(self.admin.put_override, override_id, spec, actor=actor)
        return web.json_response(override.model_dump(mode="json"), status=201 if created else 200)

    async def delete_override(self, request: web.Request, actor: str) -> web.Response:
        await asyncio.to_thread(self.admin.delete_override, request.match_info["id"], actor=actor)
        return web.Response(status=204)

    # -- audit -----------------------------------------------------------------------------------

    async def audit(self, request: web.Request, actor: str) -> web.Response:
        text = request.query.get("limit", "100")
        if not text.isdigit():
            return error_response(400, f"limit must be a whole number, got {text!r}")
        entries = await asyncio.to_thread(self.admin.audit, int(text))
        return web.json_response({"entries": entries})


def add_admin_routes(app: web.Application, admin: BudgetAdmin) -> None:
    """Serve ``/v1/admin/...`` from ``admin`` (the access middleware admits admin keys only)."""
    api = _AdminApi(admin)
    guarded = api.guarded
    app.add_routes(
        [
            web.get("/v1/admin/budgets", guarded(api.list_budgets)),
            web.post("/v1/admin/budgets", guarded(api.create_budget)),
            web.put("/v1/admin/budgets/{name}", guarded(api.put_budget)),
            web.delete("/v1/admin/budgets/{name}", guarded(api.delete_budget)),
            web.get("/v1/admin/overrides", guarded(api.list_overrides)),
            web.put("/v1/admin/overrides/{id}", guarded(api.put_override)),
            web.delete("/v1/admin/overrides/{id}", guarded(api.delete_override)),
            web.get("/v1/admin/audit", guarded(api.audit)),
        ]
    )
