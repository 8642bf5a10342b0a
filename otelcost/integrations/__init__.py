"""Enforcement inside the gateways people run, and what they need to reserve spend.

* ``litellm`` -- a LiteLLM proxy pre-call hook refusing calls of throttled or blocked scopes
  (imports ``litellm``; only the proxy loads it).
* ``estimate`` -- :class:`~otelcost.integrations.estimate.CatalogEstimator`: the most a request
  can cost, priced with the catalog, for ``otelcost.policy.reservations``.

Nothing is imported here, so importing the package does not import LiteLLM. See
docs/gateway-integration.md.
"""
