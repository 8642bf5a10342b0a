"""The spool's public surface, pinned: the pipeline is written against exactly this."""

from __future__ import annotations

import inspect

import otelcost.spool
from otelcost.errors import IngestError, OtelcostError, TransientIngestError
from otelcost.spool import Spool, SpoolCorruptionError, SpoolError, SpoolFullError, SpoolWriteError


def test_exported_names() -> None:
    assert otelcost.spool.__all__ == [
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


def test_refusals_are_retryable_and_startup_errors_are_not_ingest_errors() -> None:
    assert issubclass(SpoolFullError, TransientIngestError)
    assert issubclass(SpoolWriteError, TransientIngestError)
    assert issubclass(SpoolCorruptionError, SpoolError)
    assert issubclass(SpoolError, OtelcostError) and not issubclass(SpoolError, IngestError)


def test_method_signatures() -> None:
    signatures = {
        name: str(inspect.signature(getattr(Spool, name)))
        for name in ("__init__", "start", "shutdown", "append", "append_sync", "replay", "checkpoint")
    }
    assert signatures == {
        "__init__": "(self, directory: 'Path', *, config: 'SpoolConfig') -> 'None'",
        "start": "(self) -> 'None'",
        "shutdown": "(self) -> 'None'",
        "append": "(self, payload: 'Payload') -> 'int'",
        "append_sync": "(self, payload: 'Payload') -> 'int'",
        "replay": "(self) -> 'Iterator[SpoolRecord]'",
        "checkpoint": "(self, seq: 'int') -> 'None'",
    }
    assert inspect.iscoroutinefunction(Spool.append)
    for name in (
        "checkpointed_seq",
        "last_seq",
        "depth",
        "size_bytes",
        "appends",
        "bytes_appended",
        "fsyncs",
        "fsync_seconds_total",
        "refused_full",
        "refused_io",
    ):
        assert isinstance(inspect.getattr_static(Spool, name), property), name
