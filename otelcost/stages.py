"""The contracts between pipeline stages.

Data flows one way: receiver -> normalizer -> pricer -> sinks (lake writer, budget evaluator).
A stage knows its own input and output types and nothing of its neighbours; only
``otelcost/pipeline.py`` imports more than one stage and wires them together.

Batches are ``pyarrow.Table`` objects with a schema from ``otelcost/schema.py``. A batch handed
to a sink is shared, read-only data: the same table goes to every sink, so no sink may mutate it
(Arrow tables are immutable, which makes this cheap to honour).

Lifecycle, for every stage: ``start()`` acquires resources (threads, files, sockets);
``shutdown()`` flushes what is buffered and releases them. ``shutdown()`` must be safe to call
before ``start()`` and more than once.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import pyarrow as pa

__all__ = ["Sink", "Stage"]


@runtime_checkable
class Stage(Protocol):
    def start(self) -> None:
        """Acquire resources. Called once, before any data arrives."""

    def shutdown(self) -> None:
        """Flush buffered data and release resources. Idempotent; safe before start()."""


@runtime_checkable
class Sink(Stage, Protocol):
    """The end of the data path: takes batches of priced calls (``schema.RECORD_SCHEMA``)."""

    def consume(self, batch: pa.Table) -> None:
        """Take a batch. Must not mutate it. Raises only ``otelcost.errors.OtelcostError``."""
