"""``GET /v1/decisions``: the decision snapshot gateways poll, with ETags and long polls.

The full snapshot comes as JSON, or as protobuf with ``Accept: application/x-protobuf``.
``ETag`` is the snapshot identity (``"<epoch>.<version>"``, ``.pb`` appended for protobuf); a
matching ``If-None-Match`` answers 304. ``?wait=30s`` (or ``Prefer: wait=30``) with
``If-None-Match`` long-polls: the answer comes as soon as the version changes, else 304 after
the wait (at most ``api.max_wait``). docs/gateway-integration.md has the protocol.

A key bound to a tenant gets that tenant's view of the snapshot instead
(``otelcost/policy/tenancy.py``: its own decisions, shared budgets as the action to enforce
without their names or amounts, nothing of other tenants), with an entity tag of its own; the
view is computed once per snapshot and tenant, and a long poll on it answers only when the view
itself changed.

Long polls are cheap: all waiting requests share one ``asyncio.Event`` per version. The
evaluator runs on another thread and calls the subscriber registered here, which does nothing
but ``loop.call_soon_threadsafe(wake)``; ``wake`` sets the current event and replaces it, so
each poller re-reads the (immutable) snapshot and answers. 1,000 pollers cost 1,000 suspended
coroutines and no timers beyond their own timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Final, Protocol, runtime_checkable

from aiohttp import web

from otelcost.api.access import tenant_of
from otelcost.api.responses import error_response
from otelcost.configtypes import parse_duration
from otelcost.policy.config import ApiConfig
from otelcost.policy.decisions import Snapshot
from otelcost.policy.encoding import (
    JSON_CONTENT_TYPE,
    PROTOBUF_CONTENT_TYPE,
    snapshot_to_json,
    snapshot_to_protobuf,
)
from otelcost.policy.tenancy import TenantViews

__all__ = ["DecisionSource", "add_decision_routes", "tenant_views", "waiting_pollers"]

_PREFER_WAIT: Final = re.compile(r"(?:^|[;,\s])wait=(\d+(?:\.\d+)?)")
_NUMBER: Final = re.compile(r"^\d+(?:\.\d+)?$")


@runtime_checkable
class DecisionSource(Protocol):
    """What the API serves decisions from: the budget evaluator, or anything publishing snapshots."""

    @property
    def snapshot(self) -> Snapshot: ...

    def subscribe(self, callback: Callable[[Snapshot], None]) -> Callable[[], None]: ...


class _VersionHub:
    """Wakes every long-poller when a new snapshot is published, from any thread."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def publish(self, snapshot: Snapshot) -> None:
        """Called on the evaluator's thread: hand over to the loop and return at once."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop is shutting down
                loop.call_soon_threadsafe(self.wake)

    def wake(self) -> None:
        event, self.event = self.event, asyncio.Event()
        event.set()


def _seconds(value: object) -> float:
    if not isinstance(value, timedelta):
        raise ValueError(f"expected a duration, got {value!r}")
    return value.total_seconds()


def _wants_protobuf(accept: str) -> bool:
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        if media.lower() in (PROTOBUF_CONTENT_TYPE, "application/protobuf"):
            quality = next((p[2:] for p in params if p.lower().startswith("q=")), "1")
            try:
                return float(quality) > 0
            except ValueError:
                return False
    return False


def _entity_tag(snapshot: Snapshot, protobuf: bool) -> str:
    return f'"{snapshot.etag}.pb"' if protobuf else f'"{snapshot.etag}"'


def _if_none_match(request: web.Request) -> set[str]:
    header = request.headers.get("If-None-Match", "")
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


class _DecisionsEndpoint:
    def __init__(self, source: DecisionSource, config: ApiConfig, views: TenantViews) -> None:
        self.source = source
        self.views = views
        self.max_wait = config.max_wait.total_seconds()
        self.hub = _VersionHub()
        self._unsubscribe: Callable[[], None] | None = None
        self.waiting = 0

    async def on_startup(self, app: web.Application) -> None:
        self.hub = _VersionHub()  # events belong to the loop that runs the app
        self.hub.attach(asyncio.get_running_loop())
        self._unsubscribe = self.source.subscribe(self.hub.publish)

    async def on_shutdown(self, app: web.Application) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.hub.wake()  # long polls answer now instead of holding the shutdown

    def _wait_seconds(self, request: web.Request) -> float | web.Response:
        text = request.query.get("wait")
        seconds = 0.0
        if text is not None:
            try:
                seconds = float(text) if _NUMBER.match(text) else _seconds(parse_duration(text))
            except ValueError as exc:
                return error_response(400, f"wait: {exc}")
        else:
            match = _PREFER_WAIT.search(request.headers.get("Prefer", ""))
            if match:
                seconds = float(match[1])
        return max(0.0, min(seconds, self.max_wait))

    async def decisions(self, request: web.Request) -> web.StreamResponse:
        protobuf = _wants_protobuf(request.headers.get("Accept", ""))
        wait = self._wait_seconds(request)
        if isinstance(wait, web.Response):
            return wait
        tags = _if_none_match(request)
        tenant = tenant_of(request)

        def read() -> Snapshot:
            snapshot = self.source.snapshot
            return snapshot if tenant is None else self.views.view(snapshot, tenant)

        snapshot = read()

        def unchanged(current: Snapshot) -> bool:
            return "*" in tags or _entity_tag(current, protobuf) in tags

        if tags and wait > 0 and unchanged(snapshot):
            snapshot = await self._wait_for_change(unchanged, wait, read)
        headers = {
            "ETag": _entity_tag(snapshot, protobuf),
            "Cache-Control": "no-cache",
            # What is served depends on the key too (a tenant's view): no shared cache may mix them.
            "Vary": "Accept, Authorization, X-Otelcost-Key",
            "X-Otelcost-Version": str(snapshot.version),
        }
        if tags and unchanged(snapshot):
            return web.Response(status=304, headers=headers)
        if protobuf:
            body, content_type = snapshot_to_protobuf(snapshot), PROTOBUF_CONTENT_TYPE
        else:
            body, content_type = snapshot_to_json(snapshot), JSON_CONTENT_TYPE
        return web.Response(body=body, headers=headers, content_type=content_type)

    async def _wait_for_change(
        self, unchanged: Callable[[Snapshot], bool], wait: float, read: Callable[[], Snapshot]
    ) -> Snapshot:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        self.waiting += 1
        try:
            while True:
                event = self.hub.event  # taken before reading the snapshot: no lost wake-up
                snapshot = read()
                remaining = deadline - loop.time()
                if not unchanged(snapshot) or remaining <= 0:
                    return snapshot
                try:
                    async with asyncio.timeout(remaining):
                        await event.wait()
                except TimeoutError:
                    return read()
                if self._unsubscribe is None:  # shutting down
                    return read()
        finally:
            self.waiting -= 1


_ENDPOINT: Final = web.AppKey("otelcost_decisions", _DecisionsEndpoint)
_VIEWS: Final = web.AppKey("otelcost_tenant_views", TenantViews)


def tenant_views(app: web.Application) -> TenantViews:
    """The tenant views ``app``'s decision and check routes share (made when first asked, so
    call it while adding routes, before the app starts)."""
    if _VIEWS not in app:
        app[_VIEWS] = TenantViews()
    return app[_VIEWS]


def add_decision_routes(app: web.Application, source: DecisionSource, config: ApiConfig) -> None:
    """Serve ``GET /v1/decisions`` from ``source``; subscribe to it while ``app`` runs."""
    endpoint = _DecisionsEndpoint(source, config, tenant_views(app))
    app[_ENDPOINT] = endpoint
    app.on_startup.append(endpoint.on_startup)
    app.on_shutdown.append(endpoint.on_shutdown)
    app.router.add_get("/v1/decisions", endpoint.decisions)


def waiting_pollers(app: web.Application) -> int:
    """Long polls being held right now (for metrics and tests)."""
    return app[_ENDPOINT].waiting
