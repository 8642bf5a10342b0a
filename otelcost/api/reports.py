"""``GET /v1/reports`` and ``GET /v1/reports/{name}``: the FinOps reports over HTTP, as JSON.

The same ``run_report`` call as ``otelcost report NAME`` (otelcost/reports/base.py), with the
request's query string as its options::

    GET /v1/reports/showback?period=2026-11&by=team,feature&filter=environment=production

``period`` | ``since``/``until``, ``by`` (comma-separated), ``filter`` (``DIM=VALUE``,
repeatable) and ``top``. The answer is ``ReportResult.to_json()``: ``{"report", "period",
"sections": {name: [rows]}, "notes"}`` with money as strings. An unknown report is 404; an
unknown parameter or a bad value 400. Options that name files on the server
(``unit-economics --revenue``) are command-line only: the API never opens a path a caller gives.

A key bound to a tenant (``bind: {tenant_id: acme}``) gets every report over that tenant's rows
only, whatever its filters say: the lake's views are narrowed for its run
(``ReportContext.for_tenant``), and the budgets and closed statements it could read are the
tenant's own or none.

Reports run DuckDB over the lake, which takes CPU for a second or more on a large lake, so they
run on worker threads, at most :data:`MAX_CONCURRENT_REPORTS` at once; more callers wait their
turn instead of starving the decision routes of the same process.
"""

from __future__ import annotations

import asyncio
from typing import Final

from aiohttp import web

from otelcost.api.access import tenant_of
from otelcost.api.responses import error_response
from otelcost.reports import REPORTS, ReportContext, ReportRequest, run_report
from otelcost.reports.base import request_problem

__all__ = ["MAX_CONCURRENT_REPORTS", "QUERY_PARAMETERS", "add_report_routes"]

MAX_CONCURRENT_REPORTS: Final = 2
QUERY_PARAMETERS: Final = frozenset({"period", "since", "until", "by", "filter", "top"})

_GATE: Final = web.AppKey("otelcost_report_gate", asyncio.Semaphore)


def _request_of(query: web.Request) -> ReportRequest | web.Response:
    unknown = sorted(set(query.query) - QUERY_PARAMETERS)
    if unknown:
        allowed = ", ".join(sorted(QUERY_PARAMETERS))
        return error_response(400, f"unknown query parameter {unknown[0]!r}; expected one of {allowed}")
    fields: dict[str, object] = {}
    for name in ("period", "since", "until", "by", "top"):
        values = query.query.getall(name, [])
        if len(values) > 1:
            return error_response(400, f"query parameter {name!r} is given {len(values)} times")
        if values:
            fields[name] = values[0]
    if "filter" in query.query:
        fields["filters"] = query.query.getall("filter")
    try:
        return ReportRequest.model_validate(fields)
    except ValueError as exc:
        return error_response(400, request_problem(exc))


def add_report_routes(app: web.Application, context: ReportContext) -> None:
    """Serve the reports of ``otelcost.reports.REPORTS`` over the lake of ``context``."""
    app[_GATE] = asyncio.Semaphore(MAX_CONCURRENT_REPORTS)

    async def index(request: web.Request) -> web.Response:
        reports = [{"name": spec.name, "summary": spec.summary} for spec in REPORTS.values()]
        return web.json_response({"reports": reports})

    async def one(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        report_request = _request_of(request)
        if isinstance(report_request, web.Response):
            return report_request
        tenant = tenant_of(request)
        scoped = context if tenant is None else context.for_tenant(tenant)
        async with request.app[_GATE]:
            # Domain errors (unknown report, a bad period, a lake problem) reach the
            # domain_errors middleware, which gives each its status.
            result = await asyncio.to_thread(run_report, name, scoped, report_request)
        return web.json_response(result.to_json())

    app.router.add_get("/v1/reports", index)
    app.router.add_get("/v1/reports/{name}", one)
