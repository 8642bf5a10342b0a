"""The API application: every route of the API listener, wired onto one aiohttp application.

Each job is one module that adds its routes (``add_<job>_routes(app, ...)``); this module only
decides which ones a given application serves and in front of which middlewares.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from otelcost.api.access import KeyReload, access_control, add_auth_routes, audited_reload
from otelcost.api.admin import BudgetAdmin, add_admin_routes
from otelcost.api.check import add_check_routes
from otelcost.api.decisions import DecisionSource, add_decision_routes
from otelcost.api.health import ServingProcess, add_health_routes, hold_until_started
from otelcost.api.query import add_query_routes
from otelcost.api.reports import add_report_routes
from otelcost.api.responses import domain_errors
from otelcost.auth.config import AuthConfig
from otelcost.auth.keys import KeyRing
from otelcost.policy.config import ApiConfig
from otelcost.reports import ReportContext

__all__ = ["build_api_app"]


def build_api_app(
    *,
    evaluator: DecisionSource,
    config: ApiConfig,
    process: ServingProcess | None = None,
    reports: ReportContext | None = None,
    keys: KeyRing | None = None,
    audit_dir: Path | None = None,
    reload_keys: KeyReload | None = None,
    extra_routes: Sequence[web.AbstractRouteDef] = (),
    clock_ns: Callable[[], int] = time.time_ns,
) -> web.Application:
    """The API application: decision and check routes, admin routes (when ``evaluator``
    supports them), with ``process`` the health routes and the start-up gate, with ``reports``
    the report routes and ``POST /v1/query`` over its lake, then ``extra_routes``.

    Every request is authenticated with ``keys`` (``otelcost/api/access.py``); without a ring,
    one with no keys but ``config``'s admin tokens, and the default anonymous policy (loopback
    callers may read decisions and reports). ``reload_keys`` is what ``POST
    /v1/admin/auth/reload`` runs (the server's, which also reloads its receiver workers);
    without it, ``keys`` is reloaded and audited under ``audit_dir`` (the lake, as for the
    budget changes of the admin API).

    Run it with ``web.AppRunner`` on the event loop of your choice; the app subscribes to the
    evaluator when it starts and unsubscribes when it shuts down.
    """
    # The gate comes first: while the pipeline starts, nothing behind it is asked anything.
    middlewares: list[Middleware] = [hold_until_started(process)] if process is not None else []
    keys = keys if keys is not None else KeyRing(AuthConfig(), legacy_admin=config.tokens())
    # Access control inside domain_errors: an AuthError a handler raises is answered 401/403
    # by it, not 500 by the table of domain errors.
    middlewares.extend((domain_errors, access_control(keys)))
    app = web.Application(middlewares=middlewares)
    add_decision_routes(app, evaluator, config)
    add_check_routes(app, evaluator, config, clock_ns)
    if isinstance(evaluator, BudgetAdmin):
        add_admin_routes(app, evaluator)
    add_auth_routes(app, keys, reload=reload_keys or audited_reload(keys, audit_dir=audit_dir))
    if process is not None:
        add_health_routes(app, process)
    if reports is not None:
        add_report_routes(app, reports)
        add_query_routes(app, reports)
    app.add_routes(extra_routes)
    return app
