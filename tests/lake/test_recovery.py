"""What a start reads from the lake (``otelcost/lake/recovery.py``): which spool records it holds.

Real Parquet files in a temporary lake, written by ``publish.write_files`` with the seqs in
their footers, as the live writer writes them.
"""

from __future__ import annotations

import threading
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from otelcost.errors import LakeError
from otelcost.lake import recovery
from otelcost.lake.layout import partition_dir
from otelcost.lake.locking import lake_lock
from otelcost.lake.publish import write_files
from otelcost.lake.recovery import ReplayFilter, highest_recorded_seq, read_partition_seqs
from otelcost.lake.seqs import SeqSet
from tests.lake.rows import DEFAULT_DAY, make_calls

DAY1, DAY2, DAY3 = DEFAULT_DAY, DEFAULT_DAY + timedelta(days=1), DEFAULT_DAY + timedelta(days=2)


def on_days(*days_and_seeds: tuple[date, int]) -> pa.Table:
    """A replayed record's batch: three rows on each of the given days."""
    return pa.concat_tables([make_calls(3, day=day, seed=seed) for day, seed in days_and_seeds])


def test_the_filter_keeps_the_rows_of_the_days_whose_files_do_not_name_the_record(lake_dir: Path) -> None:
    write_files(lake_dir, make_calls(4, day=DAY1, seed=1), spool_seqs={DAY1: SeqSet.of([1, 2])})
    write_files(lake_dir, make_calls(4, day=DAY2, seed=2), spool_seqs={DAY2: SeqSet.of([2])})
    replay = ReplayFilter(lake_dir)

    # Record 2 reached the lake on days 1 and 2 before the crash, not on day 3.
    record = on_days((DAY1, 10), (DAY2, 11), (DAY3, 12))
    fresh = replay.unrecorded(record, seq=2)
    assert fresh.num_rows == 3
    day3 = make_calls(3, day=DAY3, seed=12)
    assert sorted(fresh["span_id"].to_pylist()) == sorted(day3["span_id"].to_pylist())
    # Record 1 is wholly in the lake: nothing to replay, in the record's schema.
    held = replay.unrecorded(on_days((DAY1, 13)), seq=1)
    assert held.num_rows == 0 and held.schema.equals(record.schema)
    # Record 3 is in no file: all of it, as it is (no copy for a one-day record).
    alone = on_days((DAY2, 14))
    assert replay.unrecorded(alone, seq=3) is alone


def test_the_filter_reads_each_days_footers_once(lake_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for seq in range(1, 4):
        write_files(lake_dir, make_calls(2, day=DAY1, seed=seq), spool_seqs={DAY1: SeqSet.of([seq])})
    reads: list[date] = []
    real = recovery.read_partition_seqs

    def counting(lake: Path, day: date, table: str, *, writer: str) -> SeqSet:
        reads.append(day)
        return real(lake, day, table, writer=writer)

    monkeypatch.setattr(recovery, "read_partition_seqs", counting)
    replay = ReplayFilter(lake_dir)
    answers = [replay.unrecorded(on_days((DAY1, 20 + seq)), seq=seq).num_rows for seq in range(1, 7)]
    assert answers == [0, 0, 0, 3, 3, 3]
    replay.unrecorded(on_days((DAY1, 30), (DAY2, 31)), seq=7)
    assert reads == [DAY1, DAY2]


def test_the_filter_waits_for_a_rewrite_of_the_day(lake_dir: Path) -> None:
    """Footers are read under the shared lake lock: a swap in progress is never seen half-done."""
    write_files(lake_dir, make_calls(2, seed=1), spool_seqs={DAY1: SeqSet.of([1])})
    answered = threading.Event()
    replay = ReplayFilter(lake_dir)

    def ask() -> None:
        replay.unrecorded(make_calls(2, seed=1), seq=1)
        answered.set()

    with lake_lock(lake_dir):  # exclusive, as reprice and compaction's swap hold it
        asker = threading.Thread(target=ask)
        asker.start()
        assert not answered.wait(0.3)
    assert answered.wait(10)
    asker.join()


def test_an_unreadable_footer_is_an_error_not_a_guess(lake_dir: Path) -> None:
    write_files(lake_dir, make_calls(2, seed=1), spool_seqs={DAY1: SeqSet.of([1])})
    (partition_dir(lake_dir, DAY1) / "part-broken.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(LakeError, match="read the footer of"):
        read_partition_seqs(lake_dir, DAY1)
    with pytest.raises(LakeError, match="read the footer of"):
        ReplayFilter(lake_dir).unrecorded(make_calls(2, seed=2), seq=2)
    with pytest.raises(LakeError, match="read the footer of"):
        highest_recorded_seq(lake_dir)


def test_the_highest_recorded_seq_is_over_every_day_and_file(lake_dir: Path) -> None:
    assert highest_recorded_seq(lake_dir) == 0  # no lake yet
    write_files(lake_dir, make_calls(2, day=DAY2, seed=1), spool_seqs={DAY2: SeqSet([(3, 40)])})
    write_files(lake_dir, make_calls(2, day=DAY1, seed=2), spool_seqs={DAY1: SeqSet.of([41, 7])})
    write_files(lake_dir, make_calls(2, day=DAY3, seed=3))  # spool off: a file without seqs
    assert highest_recorded_seq(lake_dir) == 41
