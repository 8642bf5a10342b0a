"""The policy endpoint: an aiohttp application serving decisions to gateways.

Routes (docs/gateway-integration.md has the protocol, nginx and Envoy configurations):

``GET /v1/decisions``
    The full snapshot: JSON, or protobuf with ``Accept: application/x-protobuf``. ``ETag`` is
    the snapshot identity (``"<epoch>.<version>"``, ``.pb`` appended for protobuf); a matching
    ``If-None-Match`` answers 304. ``?wait=30s`` (or ``Prefer: wait=30``) with
    ``If-None-Match`` long-polls: the answer comes as soon as the version changes, else 304
    after the wait (at most ``api.max_wait``).
``/v1/check`` (any method) and ``/v1/check/<anything>``
    "May this call go ahead?" Dimensions come as query parameters (``?team=ml&user_id=u1``, on
    ``/v1/check`` only) or ``X-Otelcost-<Dimension>`` headers (``X-Otelcost-User-Id``; headers
    win). 200 when allowed; when throttled or blocked, ``api.check_deny_status`` (429), or the
    status asked for with ``?deny_status=403`` / ``X-Otelcost-Deny-Status: 403``, with
    ``Retry-After``. Every answer carries ``X-Otelcost-Action``, ``-Reason``, ``-Budget``,
    ``-Retry-After`` and ``-Version`` headers. The ``/v1/check/<anything>`` form exists for
    Envoy's ``path_prefix``, which appends the client's path (and query, which is ignored
    there: the client wrote it).
``/v1/admin/...``
    Budget and override changes, audit log (``otelcost/policy/admin.py``).

Long polls are cheap: all waiting requests share one ``asyncio.Event`` per version. The
evaluator runs on another thread and calls the subscriber registered here, which does nothing
but ``loop.call_soon_threadsafe(wake)``; ``wake`` sets the current event and replaces it, so
each poller re-reads the (immutable) snapshot and answers. 1,000 pollers cost 1,000 suspended
coroutines and no timers beyond their own timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Final, Protocol, runtime_checkable

from aiohttp import web
from aiohttp.typedefs import Middleware

from otelcost.budgets.config import SCOPE_DIMENSIONS
from otelcost.configtypes import parse_duration
from otelcost.policy.config import ApiConfig
from otelcost.policy.decisions import CheckResult, Snapshot
from otelcost.policy.encoding import (
    JSON_CONTENT_TYPE,
    PROTOBUF_CONTENT_TYPE,
    decision_to_json,
    snapshot_to_json,
    snapshot_to_protobuf,
)

__all__ = ["DIMENSION_HEADER_PREFIX", "DecisionSource", "build_api_app", "error_response"]

DIMENSION_HEADER_PREFIX: Final = "x-otelcost-"
DENY_STATUS_HEADER: Final = "X-Otelcost-Deny-Status"
_RESERVED_QUERY: Final = frozenset({"deny_status"})
_PREFER_WAIT: Final = re.compile(r"(?:^|[;,\s])wait=(\d+(?:\.\d+)?)")
_HEADER_UNSAFE: Final = re.compile(r"[^\x20-\x7e]")
_NUMBER: Final = re.compile(r"^\d+(?:\.\d+)?$")


def _seconds(value: object) -> float:
    if not isinstance(value, timedelta):
        raise ValueError(f"expected a duration, got {value!r}")
    return value.total_seconds()


@runtime_checkable
class DecisionSource(Protocol):
    """What the endpoint serves from: the budget evaluator, or anything publishing snapshots."""

    @property
    def snapshot(self) -> Snapshot: ...

    def subscribe(self, callback: Callable[[Snapshot], None]) -> Callable[[], None]: ...


def error_response(status: int, message: str, **extra: Any) -> web.Response:
    """The one error shape of the API: ``{"error": {"status": 400, "message": "..."}}``."""
    body = {"error": {"status": status, "message": message, **extra}}
    return web.json_response(body, status=status)


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


def _header_safe(text: str, limit: int = 512) -> str:
    return _HEADER_UNSAFE.sub("?", text)[:limit]


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


class _PolicyApi:
    def __init__(self, source: DecisionSource, config: ApiConfig, clock_ns: Callable[[], int]) -> None:
        self.source = source
        self.config = config
        self.clock_ns = clock_ns
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

    # -- GET /v1/decisions -------------------------------------------------------------------

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
        return max(0.0, min(seconds, self.config.max_wait.total_seconds()))

    async def decisions(self, request: web.Request) -> web.StreamResponse:
        protobuf = _wants_protobuf(request.headers.get("Accept", ""))
        wait = self._wait_seconds(request)
        if isinstance(wait, web.Response):
            return wait
        tags = _if_none_match(request)
        snapshot = self.source.snapshot

        def unchanged(current: Snapshot) -> bool:
            return "*" in tags or _entity_tag(current, protobuf) in tags

        if tags and wait > 0 and unchanged(snapshot):
            snapshot = await self._wait_for_change(unchanged, wait)
        headers = {
            "ETag": _entity_tag(snapshot, protobuf),
            "Cache-Control": "no-cache",
            "Vary": "Accept",
            "X-Otelcost-Version": str(snapshot.version),
        }
        if tags and unchanged(snapshot):
            return web.Response(status=304, headers=headers)
        if protobuf:
            body, content_type = snapshot_to_protobuf(snapshot), PROTOBUF_CONTENT_TYPE
        else:
            body, content_type = snapshot_to_json(snapshot), JSON_CONTENT_TYPE
        return web.Response(body=body, headers=headers, content_type=content_type)

    async def _wait_for_change(self, unchanged: Callable[[Snapshot], bool], wait: float) -> Snapshot:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        self.waiting += 1
        try:
            while True:
                event = self.hub.event  # taken before reading the snapshot: no lost wake-up
                snapshot = self.source.snapshot
                remaining = deadline - loop.time()
                if not unchanged(snapshot) or remaining <= 0:
                    return snapshot
                try:
                    async with asyncio.timeout(remaining):
                        await event.wait()
                except TimeoutError:
                    return self.source.snapshot
                if self._unsubscribe is None:  # shutting down
                    return self.source.snapshot
        finally:
            self.waiting -= 1

    # -- /v1/check ------------------------------------------------------------------------------

    def _dimensions(self, request: web.Request, *, from_query: bool) -> dict[str, str] | web.Response:
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
            return self.config.check_deny_status
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
        now = self.clock_ns()
        snapshot = self.source.snapshot
        result = snapshot.check(dimensions, now)
        return _check_response(result, snapshot, dimensions, deny_status)


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
    }
    status = 200 if result.allowed else deny_status
    return web.Response(
        status=status, body=json.dumps(body).encode(), headers=headers, content_type=JSON_CONTENT_TYPE
    )


_API_KEY: Final = web.AppKey("otelcost_policy_api", _PolicyApi)


def build_api_app(
    *,
    evaluator: DecisionSource,
    config: ApiConfig,
    extra_routes: Sequence[web.AbstractRouteDef] = (),
    middlewares: Sequence[Middleware] = (),
    clock_ns: Callable[[], int] = time.time_ns,
) -> web.Application:
    """The API application: policy routes, admin routes (when ``evaluator`` supports them),
    and ``extra_routes`` (the server adds ``/metrics``, ``/healthz``, ``/readyz``, and a
    middleware that holds policy requests back while the pipeline is starting).

    Run it with ``web.AppRunner`` on the event loop of your choice; the app subscribes to the
    evaluator when it starts and unsubscribes when it shuts down.
    """
    from otelcost.policy.admin import BudgetAdmin, admin_routes  # noqa: PLC0415 - import cycle

    api = _PolicyApi(evaluator, config, clock_ns)
    app = web.Application(middlewares=list(middlewares))
    app[_API_KEY] = api
    app.on_startup.append(api.on_startup)
    app.on_shutdown.append(api.on_shutdown)
    app.add_routes(
        [
            web.get("/v1/decisions", api.decisions),
            web.route("*", "/v1/check", api.check),
            web.route("*", "/v1/check/{tail:.*}", api.check),
        ]
    )
    if isinstance(evaluator, BudgetAdmin):
        app.add_routes(admin_routes(evaluator, config))
    app.add_routes(extra_routes)
    return app


def waiting_pollers(app: web.Application) -> int:
    """Long polls being held right now (for metrics and tests)."""
    return app[_API_KEY].waiting
