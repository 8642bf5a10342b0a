"""The pipeline sink of an evaluator whose totals live in a shared store (Redis).

An in-process evaluator is a :class:`~otelcost.stages.DerivedSink` of the lake: it is rebuilt
from the lake at start, so it lacks exactly what the lake lacks. A shared store is not rebuilt:
Redis keeps the totals across this process's restarts, and what it lacks is not what the lake
lacks (a batch counted while Redis was out of reach is in the lake but not in Redis). So:

* every batch carries its spool seq, which Redis remembers per writer until the spool is
  checkpointed past it;
* a spool record replayed after a crash is handed to the store whole unless Redis already holds
  its seq (``SharedTotals.was_applied``; the store's once-only check stands behind that answer);
* the spool is not checkpointed past a batch that waits for Redis (``Evaluator.spool_hold``,
  applied by ``pipeline.py``), so such a batch is still there to replay.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from otelcost.budgets.evaluator import Evaluator

__all__ = ["SharedBudgetSink"]


class SharedBudgetSink:
    """:class:`~otelcost.stages.DurableSink` of an evaluator with ``budgeting.store: redis://``."""

    __slots__ = ("evaluator", "rows")

    def __init__(
        self,
        evaluator: Evaluator,
        *,
        rows: Callable[[pa.Table], pa.Table] | None = None,
    ) -> None:
        if evaluator.shared is None:
            raise ValueError("SharedBudgetSink needs an evaluator with a shared store")
        self.evaluator = evaluator
        self.rows = rows

    def start(self) -> None:
        self.evaluator.start()

    def shutdown(self) -> None:
        self.evaluator.shutdown()

    def reserve(self, rows: int) -> None:
        shared = self.evaluator.shared
        assert shared is not None
        shared.reserve()

    def release(self, rows: int) -> None:
        pass

    def append(self, batch: pa.Table, *, seq: int | None) -> None:
        rows = batch if self.rows is None else self.rows(batch)
        if rows.num_rows:
            self.evaluator.consume(rows, seq=seq)

    @property
    def flush_due(self) -> bool:
        return False

    def flush(self) -> int:
        return 0

    def unrecorded(self, batch: pa.Table, *, seq: int) -> pa.Table:
        shared = self.evaluator.shared
        assert shared is not None
        return batch.slice(0, 0) if shared.was_applied(seq) else batch
