"""The HTTP API listener: what gateways, operators and probes ask a running otelcost.

One module per job, each adding its routes to the application that ``app.py`` builds:

* ``decisions`` -- ``GET /v1/decisions``: the snapshot, ETag / 304, long polls, protobuf.
* ``check`` -- ``/v1/check``: one answer per call (nginx ``auth_request``, Envoy ``ext_authz``).
* ``admin`` -- ``/v1/admin/...``: budget and override changes, the audit log (admin keys).
* ``access`` -- the middleware that authenticates every request and needs the route's role;
  ``/v1/admin/auth/...`` (key reload and listing).
* ``reports``, ``query`` -- the reports over the lake, and read-only SQL (``POST /v1/query``).
* ``health`` -- ``/healthz``, ``/readyz``, ``/metrics``, and the gate that holds everything else
  back while the pipeline starts.
* ``responses`` -- the one error shape and the one table from domain errors to statuses.

The API depends on the domain (``policy``, ``budgets``, ``metrics``), never the reverse: the
domain raises its errors and ``responses`` maps them. Another group of routes (say, ``reports``
over the lake) is one more module with an ``add_<job>_routes(app, ...)`` function, one call in
``app.build_api_app``, and its errors' entries in ``responses.ERROR_STATUSES`` if it raises new
ones. The listener's configuration is ``otelcost.policy.config.ApiConfig`` (see there why).
"""

from otelcost.api.app import build_api_app
from otelcost.api.decisions import DecisionSource, waiting_pollers

__all__ = ["DecisionSource", "build_api_app", "waiting_pollers"]
