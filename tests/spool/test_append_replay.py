"""Appending, replaying, and sequence numbers across restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from otelcost.spool import Spool, SpoolConfig, SpoolRecord

from .conftest import SpoolFactory, payload_for, segment_files


def test_round_trip_returns_every_record_in_order(open_spool: SpoolFactory) -> None:
    spool = open_spool()
    seqs = [spool.append_sync(payload_for(key)) for key in range(1, 51)]
    assert seqs == list(range(1, 51))
    assert list(spool.replay()) == [SpoolRecord(seq, payload_for(seq)) for seq in seqs]
    assert (spool.last_seq, spool.depth, spool.checkpointed_seq) == (50, 50, 0)


def test_async_appends_are_durable_and_replayed_after_restart(open_spool: SpoolFactory) -> None:
    spool = open_spool()

    async def append_all() -> list[int]:
        return await asyncio.gather(*(spool.append(payload_for(key)) for key in range(1, 41)))

    seqs = asyncio.run(append_all())
    # gather keeps argument order and appends run in that order, so seq == key.
    assert seqs == list(range(1, 41))
    spool.shutdown()
    reopened = open_spool()
    assert reopened.recovery is not None and reopened.recovery.records_to_replay == 40
    assert [(r.seq, r.payload) for r in reopened.replay()] == [(k, payload_for(k)) for k in range(1, 41)]


def test_sequence_numbers_continue_across_restarts(open_spool: SpoolFactory) -> None:
    first = open_spool()
    for key in range(1, 6):
        first.append_sync(payload_for(key))
    first.shutdown()
    second = open_spool()
    assert second.last_seq == 5
    assert second.append_sync(payload_for(6)) == 6
    second.checkpoint(6)  # every segment is deleted: the next seq must come from the checkpoint
    second.shutdown()
    assert segment_files(second.directory) == []
    third = open_spool()
    assert (third.checkpointed_seq, third.last_seq) == (6, 6)
    assert third.append_sync(payload_for(7)) == 7
    assert [r.seq for r in third.replay()] == [7]


def test_payload_kinds_and_empty_payload(open_spool: SpoolFactory) -> None:
    spool = open_spool()
    data = payload_for(3, 5000)
    spool.append_sync(data)
    spool.append_sync(bytearray(data))
    spool.append_sync(memoryview(data)[100:200])
    spool.append_sync(b"")
    assert [r.payload for r in spool.replay()] == [data, data, data[100:200], b""]


def test_segments_roll_and_are_named_by_their_first_seq(open_spool: SpoolFactory) -> None:
    spool = open_spool(segment_size=10_000)
    for key in range(1, 21):
        spool.append_sync(payload_for(key, 3000))
    names = [p.name for p in segment_files(spool.directory)]
    # 24-byte segment header + 3 records of 3020 bytes fit in 10 000 bytes.
    assert names == [f"{first:020d}.seg" for first in (1, 4, 7, 10, 13, 16, 19)]
    assert max(p.stat().st_size for p in segment_files(spool.directory)) <= 10_000
    assert [r.payload for r in spool.replay()] == [payload_for(k, 3000) for k in range(1, 21)]


def test_record_larger_than_a_segment_gets_its_own(open_spool: SpoolFactory) -> None:
    spool = open_spool(segment_size=4096)
    for key, size in enumerate([100, 10_000, 100], start=1):
        spool.append_sync(payload_for(key, size))
    assert len(segment_files(spool.directory)) == 3
    assert [len(r.payload) for r in spool.replay()] == [100, 10_000, 100]


def test_fsync_off_still_round_trips(open_spool: SpoolFactory) -> None:
    spool = open_spool(fsync=False)
    for key in range(1, 11):
        spool.append_sync(payload_for(key))
    assert spool.fsyncs == 0
    spool.shutdown()  # shutdown syncs once whatever the setting
    assert spool.fsyncs == 1
    assert [r.seq for r in open_spool().replay()] == list(range(1, 11))


def test_replay_does_not_include_later_appends(open_spool: SpoolFactory) -> None:
    spool = open_spool()
    spool.append_sync(b"a")
    records = spool.replay()
    spool.append_sync(b"b")
    assert [r.payload for r in records] == [b"a"]


def test_size_and_depth_accounting(open_spool: SpoolFactory) -> None:
    spool = open_spool()
    for size in (10, 20, 30):
        spool.append_sync(bytes(size))
    assert spool.size_bytes == 3 * 20 + 60  # a 20-byte header per record
    assert spool.bytes_appended == 60
    spool.checkpoint(2)
    assert (spool.size_bytes, spool.depth) == (50, 1)
    spool.shutdown()
    reopened = open_spool()
    assert (reopened.size_bytes, reopened.depth) == (50, 1)


def test_lifecycle_is_forgiving_but_misuse_is_loud(spool_dir: Path) -> None:
    spool = Spool(spool_dir, config=SpoolConfig())
    spool.shutdown()  # before start: a no-op
    spool.shutdown()
    with pytest.raises(RuntimeError):
        spool.start()  # a shut-down spool is not restarted; make a new one
    fresh = Spool(spool_dir, config=SpoolConfig())
    with pytest.raises(RuntimeError, match="before start"):
        fresh.append_sync(b"x")
    with pytest.raises(RuntimeError):
        fresh.replay()
    fresh.start()
    with pytest.raises(RuntimeError):
        fresh.start()
    fresh.shutdown()
    fresh.shutdown()
