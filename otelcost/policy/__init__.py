"""The policy endpoint and its gateway-side client.

* ``decisions`` -- the data model (decisions, exemptions, snapshots) and the local check; only
  the standard library, so gateways can import it cheaply.
* ``encoding`` -- JSON and protobuf (``proto/otelcost/policy/v1``) encodings of a snapshot.
* ``server`` -- the aiohttp application: ``/v1/decisions`` (ETag, long poll), ``/v1/check``
  (nginx ``auth_request`` / Envoy ``ext_authz``); ``admin`` -- the authenticated admin API.
* ``client`` -- ``PolicyClient``: long-polls the snapshot and answers checks in microseconds.

See ``README.md`` here and ``docs/gateway-integration.md``. Importing this package does not
import aiohttp or the budget evaluator.
"""

from otelcost.policy.decisions import Action, CheckResult, Decision, Exemption, Snapshot

__all__ = ["Action", "CheckResult", "Decision", "Exemption", "Snapshot"]
