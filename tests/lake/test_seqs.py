"""Spool seqs in the lake: file footers, partition rewrites, and the writer's reservations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from otelcost.config import LakeConfig
from otelcost.errors import TransientIngestError
from otelcost.lake.layout import partition_dir, read_partition
from otelcost.lake.locking import lake_lock
from otelcost.lake.publish import write_files
from otelcost.lake.query import run_query
from otelcost.lake.recovery import read_partition_seqs
from otelcost.lake.seqs import SPOOL_SEQS_KEY, SeqSet, read_file_seqs
from otelcost.lake.swap import replace_partition
from otelcost.lake.writer import BUFFER_BOUND_FACTOR, LakeWriter
from tests.lake.rows import DEFAULT_DAY, make_calls

NEXT_DAY = DEFAULT_DAY + timedelta(days=1)


def slow_config(**overrides: object) -> LakeConfig:
    values: dict[str, object] = {"flush_interval": timedelta(hours=1), "max_buffer_rows": 100}
    values.update(overrides)
    return LakeConfig.model_validate(values)


def test_seq_sets_collapse_ranges_and_round_trip() -> None:
    seqs = SeqSet.of([5, 1, 2, 3, 9, 7, 8, 3])
    assert seqs.encode() == "1-3,5,7-9"
    assert SeqSet.parse(seqs.encode()) == seqs
    assert [s for s in range(12) if s in seqs] == [1, 2, 3, 5, 7, 8, 9]
    assert len(seqs) == 7
    assert seqs.max == 9
    assert seqs.union(SeqSet.of([4, 6])).encode() == "1-9"
    assert not SeqSet() and SeqSet().encode() == "" and SeqSet.parse("") == SeqSet()
    with pytest.raises(ValueError):
        SeqSet.parse("3-x")


def test_each_days_file_names_the_seqs_of_its_rows(lake_dir: Path) -> None:
    two_days = make_calls(20, start=datetime(2026, 3, 14, 23, 0, tzinfo=UTC), spread=timedelta(hours=2))
    with lake_lock(lake_dir, shared=True):
        paths = write_files(
            lake_dir,
            two_days,
            spool_seqs={DEFAULT_DAY: SeqSet.of([1, 2]), NEXT_DAY: SeqSet.of([2, 3])},
        )
    by_day = {path.parent.name: read_file_seqs(path) for path in paths}
    assert by_day == {
        f"date={DEFAULT_DAY}": SeqSet.of([1, 2]),
        f"date={NEXT_DAY}": SeqSet.of([2, 3]),
    }
    assert pq.read_metadata(paths[0]).metadata[SPOOL_SEQS_KEY] == b"1-2"
    # The footer is invisible to readers: DuckDB sees the same rows and columns.
    assert run_query(lake_dir, "SELECT count(*) AS n FROM llm_calls")["n"][0].as_py() == 20
    assert read_partition_seqs(lake_dir, DEFAULT_DAY) == SeqSet.of([1, 2])
    assert read_partition_seqs(lake_dir, DEFAULT_DAY - timedelta(days=5)) == SeqSet()


def test_rewriting_a_partition_keeps_the_seqs_of_its_files(lake_dir: Path) -> None:
    with lake_lock(lake_dir, shared=True):
        write_files(lake_dir, make_calls(10, seed=1), spool_seqs={DEFAULT_DAY: SeqSet.of([4, 5])})
        write_files(lake_dir, make_calls(10, seed=2), spool_seqs={DEFAULT_DAY: SeqSet.of([9])})
        write_files(lake_dir, make_calls(10, seed=3))  # a file without seqs (spool off)
    with lake_lock(lake_dir):
        replace_partition(lake_dir, DEFAULT_DAY, read_partition(lake_dir, DEFAULT_DAY))
    [only] = list(partition_dir(lake_dir, DEFAULT_DAY).glob("*.parquet"))
    assert read_file_seqs(only) == SeqSet.of([4, 5, 9])
    assert read_partition(lake_dir, DEFAULT_DAY).num_rows == 30


def test_the_writer_reports_records_once_all_their_rows_are_durable(lake_dir: Path) -> None:
    reported: list[list[int]] = []
    writer = LakeWriter(lake_dir=lake_dir, config=slow_config(), on_seqs_durable=reported.append)
    writer.start()
    two_days = make_calls(6, start=datetime(2026, 3, 14, 23, 0, tzinfo=UTC), spread=timedelta(hours=2))
    writer.consume(make_calls(3, seed=1), spool_seq=7)  # consumed out of seq order
    writer.consume(two_days, spool_seq=5)
    writer.consume(make_calls(2, seed=2))  # not spooled: in no file's seqs
    writer.flush()
    writer.consume(make_calls(1, seed=3), spool_seq=6)
    writer.shutdown()
    assert reported == [[5, 7], [6]]
    assert read_partition_seqs(lake_dir, DEFAULT_DAY) == SeqSet.of([5, 6, 7])
    assert read_partition_seqs(lake_dir, NEXT_DAY) == SeqSet.of([5])


def test_a_reservation_is_never_refused_when_consumed(lake_dir: Path) -> None:
    config = slow_config(max_buffer_rows=10)
    limit = BUFFER_BOUND_FACTOR * 10
    writer = LakeWriter(lake_dir=lake_dir, config=config)
    writer.consume(make_calls(limit - 5))
    writer.reserve(5)
    with pytest.raises(TransientIngestError, match="buffer is full"):
        writer.reserve(1)  # the reservation counts against the bound
    with pytest.raises(TransientIngestError):
        writer.consume(make_calls(1))
    writer.append(make_calls(5, seed=1), seq=1)
    assert writer.buffered_rows == limit
    writer.flush()
    writer.reserve(3)
    writer.release(3)  # the append failed: the room is free again
    writer.consume(make_calls(limit, seed=2))
    assert writer.refused_batches == 2


def test_a_stopped_writer_refuses_even_a_reservation(lake_dir: Path) -> None:
    writer = LakeWriter(lake_dir=lake_dir, config=slow_config())
    writer.start()
    writer.reserve(2)
    writer.shutdown()
    with pytest.raises(TransientIngestError, match="stopped"):
        writer.append(make_calls(2), seq=1)
