"""Budget decisions as gateways see them: the model, its encodings and the gateway-side client.

* ``decisions`` -- the data model (decisions, exemptions, snapshots) and the local check; only
  the standard library, so gateways can import it cheaply.
* ``encoding`` -- JSON and protobuf (``proto/otelcost/policy/v1``) encodings of a snapshot.
* ``client`` -- ``PolicyClient``: long-polls the snapshot and answers checks in microseconds.
* ``config`` -- ``ApiConfig``, the ``api:`` section (the endpoint's settings).

The HTTP endpoint that serves them is ``otelcost/api/``; the budget evaluator (``budgets``)
produces the snapshots. This package imports neither: it sits below both, and importing it does
not import aiohttp. See ``README.md`` here and ``docs/gateway-integration.md``.
"""

from otelcost.policy.decisions import Action, CheckResult, Decision, Exemption, Snapshot

__all__ = ["Action", "CheckResult", "Decision", "Exemption", "Snapshot"]
