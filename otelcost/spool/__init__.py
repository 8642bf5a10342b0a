"""The durable spool: never lose an acknowledged span.

The pipeline appends each priced batch (Arrow IPC stream bytes) to the spool and acknowledges the
export request only when :meth:`Spool.append` returns, which is after the record is fsynced. When
the lake writer has put rows durably into Parquet, the pipeline calls :meth:`Spool.checkpoint` and
the spool deletes what it no longer needs. After a crash, :meth:`Spool.replay` hands back every
record after the checkpoint, so what was acknowledged but not yet in the lake is written again.

Modules: ``spool.py`` (the :class:`Spool`: lifecycle and the order of things), ``recovery.py``
(what ``start()`` does to the directory), ``segments.py`` (the segment files, rolling),
``committer.py`` (group commit), ``limits.py`` (what is bounded), ``replay.py`` (reading records
back), ``stats.py`` (counters), ``format.py`` (the bytes on disk), ``scan.py`` (validation and
torn-tail detection), ``repair.py`` (the explicit, operator-run cut of a damaged log),
``commands.py`` (``otelcost spool info|repair``). docs/durability.md explains the guarantees and
the measurements.
"""

from __future__ import annotations

from otelcost.spool.config import SpoolConfig
from otelcost.spool.errors import SpoolCorruptionError, SpoolError, SpoolFullError, SpoolWriteError
from otelcost.spool.recovery import RecoveryReport
from otelcost.spool.repair import RepairReport, repair
from otelcost.spool.replay import SpoolRecord
from otelcost.spool.spool import Spool
from otelcost.spool.stats import SpoolStats

__all__ = [
    "RecoveryReport",
    "RepairReport",
    "Spool",
    "SpoolConfig",
    "SpoolCorruptionError",
    "SpoolError",
    "SpoolFullError",
    "SpoolRecord",
    "SpoolStats",
    "SpoolWriteError",
    "repair",
]
