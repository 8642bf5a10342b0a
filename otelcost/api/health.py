"""Probes and self-metrics of the serving process: ``/healthz``, ``/readyz``, ``/metrics``; and
the gate that holds every other route back while the pipeline starts.

``/healthz`` answers as soon as the listener is up, so a liveness probe does not kill a process
that is recovering (replaying a large spool can take a while). ``/readyz`` says whether the
process takes OTLP now (``ready``, else 503 with the reason: ``starting``, ``not ready``, or, with
``receiver.workers``, ``no receiver worker is listening``). ``/metrics`` renders the process's
Prometheus registry (``otelcost/metrics.py``). Until the pipeline has started, every other path
answers 503 with ``Retry-After``: a decision from budgets that have not yet seen the lake would
allow spend that is already over a limit.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final, Protocol

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry

from otelcost import metrics
from otelcost.api.responses import error_response

__all__ = ["ALWAYS_SERVED", "Readiness", "ServingProcess", "add_health_routes", "hold_until_started"]

ALWAYS_SERVED: Final = frozenset({"/healthz", "/readyz", "/metrics"})
"""Paths answered while the pipeline starts; everything else waits for it (503)."""

STARTING_RETRY_AFTER: Final = "1"


@dataclass(frozen=True, slots=True)
class Readiness:
    """What ``/readyz`` answers: 200 when ``ready``, else 503; ``status`` is the body's reason."""

    ready: bool
    status: str


class ServingProcess(Protocol):
    """What the health routes and the start-up gate ask of the process (``otelcost.server.Server``)."""

    @property
    def pipeline_started(self) -> bool:
        """The budgets are rebuilt and the spool replayed: decisions may be served."""
        ...

    @property
    def metrics_registry(self) -> CollectorRegistry: ...

    def readiness(self) -> Readiness: ...


def hold_until_started(process: ServingProcess) -> Middleware:
    """Answer 503 with ``Retry-After`` to everything but the health routes until the pipeline
    has started."""

    @web.middleware
    async def hold(request: web.Request, handler: Handler) -> web.StreamResponse:
        if process.pipeline_started or request.path in ALWAYS_SERVED:
            return await handler(request)
        response = error_response(503, "otelcost is starting (rebuilding budgets, replaying the spool)")
        response.headers["Retry-After"] = STARTING_RETRY_AFTER
        return response

    return hold


def add_health_routes(app: web.Application, process: ServingProcess) -> None:
    """Serve ``/healthz``, ``/readyz`` and ``/metrics`` of ``process``."""

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        readiness = process.readiness()
        return web.json_response({"status": readiness.status}, status=200 if readiness.ready else 503)

    async def render_metrics(request: web.Request) -> web.Response:
        # In a thread: a collector may wait on a stage's lock (the spool holds its own while it
        # recovers at start), and the loop must keep answering /healthz and gateways meanwhile.
        body = await asyncio.to_thread(metrics.render, process.metrics_registry)
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})

    app.add_routes(
        [
            web.get("/healthz", healthz),
            web.get("/readyz", readyz),
            web.get("/metrics", render_metrics),
        ]
    )
