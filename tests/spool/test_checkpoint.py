"""Checkpoints: they free space, persist atomically, and never go backwards."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from otelcost.spool import SpoolError
from otelcost.spool.format import CHECKPOINT_NAME, CHECKPOINT_TMP_NAME, decode_checkpoint, encode_checkpoint

from .conftest import SpoolFactory, payload_for, segment_files


def fill(spool_factory: SpoolFactory, records: int = 12) -> Path:
    spool = spool_factory(segment_size=4000)
    for key in range(1, records + 1):
        spool.append_sync(payload_for(key, 1000))  # 3 records per segment
    spool.shutdown()
    return spool.directory


def test_checkpoint_deletes_covered_segments_and_replay_starts_after_it(open_spool: SpoolFactory) -> None:
    spool = open_spool(segment_size=4000)
    for key in range(1, 13):
        spool.append_sync(payload_for(key, 1000))
    assert [p.name[-8:-4] for p in segment_files(spool.directory)] == ["0001", "0004", "0007", "0010"]
    spool.checkpoint(5)  # segment 1..3 is wholly covered, 4..6 is not
    assert [p.name[-8:-4] for p in segment_files(spool.directory)] == ["0004", "0007", "0010"]
    assert [r.seq for r in spool.replay()] == list(range(6, 13))
    spool.shutdown()
    reopened = open_spool(segment_size=4000)
    assert reopened.checkpointed_seq == 5
    assert [(r.seq, r.payload) for r in reopened.replay()] == [
        (k, payload_for(k, 1000)) for k in range(6, 13)
    ]


def test_checkpoint_of_everything_leaves_no_segment(open_spool: SpoolFactory) -> None:
    spool = open_spool()
    for key in range(1, 4):
        spool.append_sync(payload_for(key))
    spool.checkpoint(3)
    assert segment_files(spool.directory) == []
    assert (spool.depth, spool.size_bytes) == (0, 0)
    assert spool.append_sync(b"next") == 4
    assert [p.name for p in segment_files(spool.directory)] == [f"{4:020d}.seg"]
    assert [r.payload for r in spool.replay()] == [b"next"]


def test_checkpoint_never_goes_backwards(open_spool: SpoolFactory) -> None:
    spool = open_spool()
    for key in range(1, 11):
        spool.append_sync(payload_for(key))
    spool.checkpoint(7)
    spool.checkpoint(3)  # a late confirmation of older records: ignored
    spool.checkpoint(7)
    assert spool.checkpointed_seq == 7
    assert decode_checkpoint((spool.directory / CHECKPOINT_NAME).read_bytes()) == 7
    with pytest.raises(ValueError, match="last appended record is 10"):
        spool.checkpoint(11)
    spool.shutdown()
    assert open_spool().checkpointed_seq == 7


def test_checkpoint_file_is_replaced_atomically(open_spool: SpoolFactory) -> None:
    spool = open_spool()
    spool.append_sync(b"a")
    spool.append_sync(b"b")
    spool.checkpoint(1)
    directory = spool.directory
    spool.shutdown()
    # A crash between writing the temporary file and the rename leaves the old checkpoint in force.
    (directory / CHECKPOINT_TMP_NAME).write_bytes(encode_checkpoint(2)[:7])
    reopened = open_spool()
    assert reopened.checkpointed_seq == 1
    assert not (directory / CHECKPOINT_TMP_NAME).exists()
    assert [r.payload for r in reopened.replay()] == [b"b"]


def test_segments_left_by_a_crash_after_the_checkpoint_are_deleted_on_start(
    open_spool: SpoolFactory, tmp_path: Path
) -> None:
    directory = fill(open_spool)
    backup = tmp_path / "before-checkpoint"
    shutil.copytree(directory, backup, ignore=shutil.ignore_patterns("lock"))
    # Simulate a crash after the checkpoint file was renamed into place but before the covered
    # segments were unlinked: old segments, new checkpoint.
    shutil.copy(directory / "lock", backup / "lock")
    (backup / CHECKPOINT_NAME).write_bytes(encode_checkpoint(9))
    reopened = open_spool(backup, segment_size=4000)
    assert reopened.recovery is not None and reopened.recovery.stale_segments_deleted == 3
    assert [p.name[-8:-4] for p in segment_files(backup)] == ["0010"]
    assert [r.seq for r in reopened.replay()] == [10, 11, 12]


def test_damaged_checkpoint_file_refuses_to_start(open_spool: SpoolFactory) -> None:
    directory = fill(open_spool, 3)
    (directory / CHECKPOINT_NAME).write_bytes(b"OTCSPCKP" + bytes(12))
    with pytest.raises(SpoolError, match=r"checkpoint .*damaged"):
        open_spool()


def test_skip_to_continues_numbering_after_seqs_used_elsewhere(open_spool: SpoolFactory) -> None:
    spool = open_spool()
    for key in range(1, 4):
        spool.append_sync(payload_for(key))
    with pytest.raises(RuntimeError, match="still to replay"):
        spool.skip_to(10)
    spool.checkpoint(3)
    spool.skip_to(2)  # not ahead: ignored
    assert spool.last_seq == 3
    spool.skip_to(10)
    assert (spool.checkpointed_seq, spool.last_seq, spool.depth) == (10, 10, 0)
    assert spool.append_sync(b"next") == 11
    assert [p.name for p in segment_files(spool.directory)] == [f"{11:020d}.seg"]
    spool.shutdown()
    reopened = open_spool()
    assert (reopened.checkpointed_seq, reopened.last_seq) == (10, 11)
    assert [(r.seq, r.payload) for r in reopened.replay()] == [(11, b"next")]
    assert reopened.append_sync(b"after") == 12
