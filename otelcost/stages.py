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

The pipeline commits batches to its sinks through :class:`DurableSink`: the lake writer is one
natively; a sink whose state is rebuilt from another one at start (the budget evaluator, from the
lake) joins through :class:`DerivedSink`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import pyarrow as pa

__all__ = ["DerivedSink", "DurableSink", "Sink", "Stage"]


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


@runtime_checkable
class DurableSink(Stage, Protocol):
    """A sink on the durable path: it takes the rows of spool records, makes them durable, and
    after a restart tells the replay which rows of a record it does not hold.

    The pipeline drives every durable sink the same way, in the order of its sinks:

    * commit (an export, a receiver worker's batch): ``reserve(rows)``; the spool append, which
      numbers the record; ``append(batch, seq=seq)``; or ``release(rows)`` when the append
      failed. Only ``reserve`` refuses for lack of room: a refusal after the append would make
      the sender retry a batch that the replay writes anyway.
    * replay, at start, for each spool record after the checkpoint: ``unrecorded(batch,
      seq=seq)``, then ``append(those rows, seq=seq)`` when there are any; ``flush()`` whenever
      ``flush_due``, and once at the end.
    * ``shutdown()`` flushes what is left.

    A sink that stores rows reports the seqs whose rows are all durable through the hook it was
    built with (``LakeWriter(on_seqs_durable=)``); the spool checkpoint follows those reports.
    """

    def reserve(self, rows: int) -> None:
        """Promise room for ``rows`` rows about to be spooled, or raise TransientIngestError.

        Every reservation ends in :meth:`append` or :meth:`release`.
        """

    def release(self, rows: int) -> None:
        """Give back a reservation whose batch will not come (its spool append failed)."""

    def append(self, batch: pa.Table, *, seq: int | None) -> None:
        """Take the rows of spool record ``seq`` (None: the spool is off), without waiting for I/O.

        Never refuses for lack of room: the room was reserved before the spool append, or the
        batch is a replayed record, which was accepted before the restart and needs none.
        Raises TransientIngestError only once the sink has stopped (the record stays in the
        spool, replayed at the next start). Must not mutate ``batch``.
        """

    @property
    def flush_due(self) -> bool:
        """Whether what is appended is worth a flush now (the replay flushes then)."""

    def flush(self) -> int:
        """Make what is appended durable now; return the rows written. Raises LakeError (the
        rows are kept for the next attempt)."""

    def unrecorded(self, batch: pa.Table, *, seq: int) -> pa.Table:
        """The rows of spool record ``seq`` (``batch``) that this sink does not hold: what the
        replay appends again. Asked once per record, after ``start()``, before the record is
        appended again."""


class DerivedSink:
    """The :class:`DurableSink` of a sink whose state is rebuilt from ``source`` at start.

    The budget evaluator rebuilds its open windows from the lake, so it holds exactly what the
    lake holds: it never refuses, has nothing of its own to flush, and after a restart lacks what
    the lake lacks. It must come after ``source`` in the pipeline's sinks (started after it).
    ``rows`` picks the rows of a batch the sink is handed (the pipeline passes
    ``schema.calls_only``: spans folded into another call are the lake's audit, not spend).
    """

    __slots__ = ("rows", "sink", "source")

    def __init__(
        self,
        sink: Sink,
        *,
        source: DurableSink,
        rows: Callable[[pa.Table], pa.Table] | None = None,
    ) -> None:
        self.sink = sink
        self.source = source
        self.rows = rows

    def start(self) -> None:
        self.sink.start()

    def shutdown(self) -> None:
        self.sink.shutdown()

    def reserve(self, rows: int) -> None:
        pass

    def release(self, rows: int) -> None:
        pass

    def append(self, batch: pa.Table, *, seq: int | None) -> None:
        rows = batch if self.rows is None else self.rows(batch)
        if rows.num_rows:
            self.sink.consume(rows)

    @property
    def flush_due(self) -> bool:
        return False

    def flush(self) -> int:
        return 0

    def unrecorded(self, batch: pa.Table, *, seq: int) -> pa.Table:
        return self.source.unrecorded(batch, seq=seq)
