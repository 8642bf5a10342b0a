"""``POST /v1/query``: read-only SQL over the lake, for viewers who may see every tenant.

::

    POST /v1/query
    {"sql": "SELECT team, sum(cost_usd) AS spend FROM llm_calls WHERE ts >= $since GROUP BY 1",
     "params": {"since": "2026-11-01"}}

    -> {"columns": [{"name": "team", "type": "string"}, {"name": "spend", "type": "decimal128(38, 12)"}],
        "rows": [{"team": "ml", "spend": "412.5"}], "row_count": 1, "truncated": false}

The same runner as ``otelcost sql`` (``otelcost/lake/query.py``): an in-memory DuckDB whose file
access is limited to the lake and whose configuration is locked, statements that write or reach
outside (``COPY``, ``ATTACH``, ``INSTALL`` ...) refused, and a time limit of
:data:`QUERY_TIMEOUT_S`. Rows are JSON as the reports give them (money as exact strings); at most
:data:`MAX_ROWS` are answered (``truncated`` says when more matched). A SQL error, a refused
statement or the time limit is a 400 with DuckDB's message. At most
:data:`MAX_CONCURRENT_QUERIES` run at once, on worker threads, so SQL cannot starve the decision
routes.

The SQL sees the whole lake: ``llm_calls``, ``duplicate_spans``, ``attribution_changes`` and
``audit_log``. A key bound to a tenant is refused (403), not given a filtered view: inside the
lake directory SQL can name the files themselves (``read_parquet('<lake>/llm_calls/...')``) or
replace a view, so no filter on the views would hold against SQL the caller writes. Such a key
reads its rows through the reports, whose SQL is otelcost's own.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final

from aiohttp import web

from otelcost.api.access import principal_of
from otelcost.api.responses import error_response
from otelcost.arrowjson import json_rows
from otelcost.errors import LakeError
from otelcost.lake.query import run_query
from otelcost.reports import ReportContext

__all__ = ["MAX_CONCURRENT_QUERIES", "MAX_ROWS", "QUERY_TIMEOUT_S", "add_query_routes"]

MAX_ROWS: Final = 10_000
QUERY_TIMEOUT_S: Final = 30.0
MAX_CONCURRENT_QUERIES: Final = 2
_BODY_KEYS: Final = frozenset({"sql", "params"})

_GATE: Final = web.AppKey("otelcost_query_gate", asyncio.Semaphore)
_BODY_SHAPE: Final = 'the body must be a JSON object: {"sql": "...", "params": {...}}'


def _parse(data: object) -> tuple[str, dict[str, object]] | str:
    """(sql, params) from a request body, or what is wrong with it."""
    if not isinstance(data, dict):
        return _BODY_SHAPE
    unknown = sorted(set(data) - _BODY_KEYS)
    if unknown:
        return f"unknown key {unknown[0]!r} in the body; expected sql and params"
    sql = data.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        return "sql must be a non-empty string"
    params = data.get("params") or {}
    if not isinstance(params, dict) or not all(isinstance(name, str) for name in params):
        return "params must be an object of $name -> value"
    for name, value in params.items():
        if not isinstance(value, str | int | float | bool) and value is not None:
            return f"params.{name}: a value must be a string, number, boolean or null"
    return sql, {name.removeprefix("$"): value for name, value in params.items()}


def add_query_routes(app: web.Application, context: ReportContext) -> None:
    """Serve ``POST /v1/query`` over the lake of ``context``."""
    app[_GATE] = asyncio.Semaphore(MAX_CONCURRENT_QUERIES)
    timeout = min(context.timeout or QUERY_TIMEOUT_S, QUERY_TIMEOUT_S)

    async def query(request: web.Request) -> web.Response:
        principal = principal_of(request)
        principal.require("viewer")
        if principal.tenant is not None:
            return error_response(
                403,
                f"key {principal.name!r} is bound to a tenant: SQL over the API reads every "
                "tenant's rows, so it is only for keys without a tenant; use /v1/reports",
            )
        try:
            data: Any = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error_response(400, _BODY_SHAPE)
        parsed = _parse(data)
        if isinstance(parsed, str):
            return error_response(400, parsed)
        sql, params = parsed
        async with request.app[_GATE]:
            try:
                table = await asyncio.to_thread(
                    run_query, context.lake_dir, sql, params or None, timeout=timeout
                )
            except LakeError as exc:
                return error_response(400, str(exc))
        truncated = table.num_rows > MAX_ROWS
        shown = table.slice(0, MAX_ROWS) if truncated else table
        return web.json_response(
            {
                "columns": [{"name": f.name, "type": str(f.type)} for f in table.schema],
                "rows": json_rows(shown),
                "row_count": table.num_rows,
                "truncated": truncated,
            }
        )

    app.router.add_post("/v1/query", query)
