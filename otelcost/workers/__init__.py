"""Receiver worker processes: OTLP receiving, normalizing and pricing on several cores.

With ``receiver.workers: N`` (N > 0), ``otelcost serve`` starts N processes that share the OTLP
ports and send priced batches to it; it keeps the spool, the lake, the budgets and the API.
``pool.py`` is the serve process's side, ``worker.py`` the worker's, ``frames.py`` what they say
to each other, ``stats.py`` how the workers' counters reach ``/metrics``.
"""

from otelcost.workers.pool import WorkerPool

__all__ = ["WorkerPool"]
