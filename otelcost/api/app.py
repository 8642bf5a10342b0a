"""The API application: every route of the API listener, wired onto one aiohttp application.

Each job is one module that adds its routes (``add_<job>_routes(app, ...)``); this module only
decides which ones a given application serves and in front of which middlewares.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

from otelcost.api.admin import BudgetAdmin, add_admin_routes
from otelcost.api.check import add_check_routes
from otelcost.api.decisions import DecisionSource, add_decision_routes
from otelcost.api.health import ServingProcess, add_health_routes, hold_until_started
from otelcost.api.reports import add_report_routes
from otelcost.api.responses import domain_errors
from otelcost.policy.config import ApiConfig
from otelcost.reports import ReportContext

__all__ = ["build_api_app"]


def build_api_app(
    *,
    evaluator: DecisionSource,
    config: ApiConfig,
    process: ServingProcess | None = None,
    reports: ReportContext | None = None,
    extra_routes: Sequence[web.AbstractRouteDef] = (),
    clock_ns: Callable[[], int] = time.time_ns,
) -> web.Application:
    """The API application: decision and check routes, admin routes (when ``evaluator``
    supports them), with ``process`` the health routes and the start-up gate, with ``reports``
    the report routes over its lake, then ``extra_routes``.

    Run it with ``web.AppRunner`` on the event loop of your choice; the app subscribes to the
    evaluator when it starts and unsubscribes when it shuts down.
    """
    # The gate comes first: while the pipeline starts, nothing behind it is asked anything.
    middlewares: list[Middleware] = [hold_until_started(process)] if process is not None else []
    middlewares.append(domain_errors)
    app = web.Application(middlewares=middlewares)
    add_decision_routes(app, evaluator, config)
    add_check_routes(app, evaluator, config, clock_ns)
    if isinstance(evaluator, BudgetAdmin):
        add_admin_routes(app, evaluator, config)
    if process is not None:
        add_health_routes(app, process)
    if reports is not None:
        add_report_routes(app, reports)
    app.add_routes(extra_routes)
    return app
