"""Bounds and refusals: max_size, oversized payloads, one process per directory, configuration."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from otelcost.errors import PermanentIngestError, TransientIngestError
from otelcost.spool import Spool, SpoolConfig, SpoolError, SpoolFullError, SpoolWriteError
from otelcost.spool.limits import PendingRecords

from .conftest import SpoolFactory, payload_for


def test_full_spool_refuses_with_a_retryable_error_until_a_checkpoint(open_spool: SpoolFactory) -> None:
    spool = open_spool(max_size=10_000, segment_size=4096)
    for key in range(1, 10):
        spool.append_sync(payload_for(key, 1000))  # 9 x 1020 bytes = 9180
    with pytest.raises(SpoolFullError) as caught:
        spool.append_sync(payload_for(10, 1000))
    assert isinstance(caught.value, TransientIngestError) and caught.value.retry_after > 0
    assert "max_size" in str(caught.value)

    async def refused() -> None:
        await spool.append(b"x" * 1000)

    with pytest.raises(SpoolFullError):
        asyncio.run(refused())
    assert (spool.refused_full, spool.last_seq) == (2, 9)  # nothing written, no seq used
    spool.append_sync(b"x" * 700)  # what still fits is taken
    spool.checkpoint(4)
    assert spool.append_sync(payload_for(11, 1000)) == 11
    assert spool.size_bytes <= 10_000


def test_pending_records_count_the_bytes_after_the_checkpoint() -> None:
    pending = PendingRecords([100, 200])  # what recovery found after the checkpoint
    assert pending.total() == 300
    pending.add(50)
    assert pending.total() == 350
    pending.release(2)  # the two oldest were checkpointed
    assert pending.total() == 50
    pending.release(1)
    assert pending.total() == 0
    pending.add(70)  # counted from where the released records ended
    assert pending.total() == 70
    refusal = pending.full(100)
    assert isinstance(refusal, SpoolFullError) and "holds 70 bytes" in str(refusal)


def test_payload_that_can_never_fit_is_permanent(open_spool: SpoolFactory) -> None:
    spool = open_spool(max_size=4096, segment_size=4096)
    with pytest.raises(PermanentIngestError, match="can never fit"):
        spool.append_sync(bytes(4096))
    assert spool.last_seq == 0


def test_one_spool_per_directory(open_spool: SpoolFactory, spool_dir: Path) -> None:
    open_spool()
    second = Spool(spool_dir, config=SpoolConfig())
    with pytest.raises(SpoolError, match="in use"):
        second.start()
    second.shutdown()


def test_append_after_shutdown_is_refused_as_retryable(open_spool: SpoolFactory) -> None:
    spool = open_spool()
    spool.shutdown()
    with pytest.raises(SpoolWriteError, match="shut down"):
        spool.append_sync(b"late")
    assert spool.refused_io == 1


def test_config_defaults_and_validation() -> None:
    config = SpoolConfig()
    assert (config.max_size, config.segment_size, config.fsync) == (2**30, 64 * 2**20, True)
    assert config.commit_interval == timedelta(0)
    parsed = SpoolConfig.model_validate(
        {"max_size": "256MiB", "segment_size": "8MiB", "commit_interval": "1ms"}
    )
    assert (parsed.max_size, parsed.commit_interval) == (256 * 2**20, timedelta(milliseconds=1))
    with pytest.raises(ValidationError, match="at most 100ms"):
        SpoolConfig.model_validate({"commit_interval": "1s"})
    with pytest.raises(ValidationError, match="segment_size must not be larger"):
        SpoolConfig.model_validate({"max_size": "1MiB", "segment_size": "2MiB"})
    with pytest.raises(ValidationError, match="Extra inputs"):
        SpoolConfig.model_validate({"fsynk": False})
