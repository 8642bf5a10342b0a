"""Several writers on one lake root (``lake.root``): each replay skips exactly its own records.

Two real ``LakeWriter`` s with different writer ids publish into one directory, each numbering
its spool from 1, so every seq exists twice; then compaction and reprice merge their files. A
writer's replay must skip what *it* wrote and nothing the other wrote under the same numbers.
"""

from __future__ import annotations

import zlib
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from otelcost.config import LakeConfig
from otelcost.jobs.compact import compact_lake
from otelcost.jobs.reprice import reprice
from otelcost.lake.layout import data_files, partition_dir, read_partition
from otelcost.lake.locking import lake_lock
from otelcost.lake.publish import write_files
from otelcost.lake.recovery import ReplayFilter, highest_recorded_seq, read_partition_writer_seqs
from otelcost.lake.seqs import (
    SPOOL_SEQS_KEY,
    UNNAMED_WRITER,
    WRITER_SEQS_KEY,
    SeqSet,
    WriterSeqs,
    read_file_writer_seqs,
)
from otelcost.lake.writer import LakeWriter
from otelcost.pricing.catalog import Catalog
from otelcost.pricing.config import PricingConfig
from otelcost.pricing.engine import Pricer
from otelcost.schema import MONEY_TYPE
from tests.lake.rows import DEFAULT_DAY, make_calls

ROWS_PER_RECORD = 3
COST_COLUMNS = (
    "cost_usd",
    "input_cost_usd",
    "cache_read_cost_usd",
    "cache_write_cost_usd",
    "output_cost_usd",
    "reasoning_cost_usd",
    "effective_cost_usd",
)


def record(writer: str, seq: int) -> pa.Table:
    """The rows of ``writer``'s spool record ``seq``: distinct for every (writer, seq)."""
    return make_calls(ROWS_PER_RECORD, seed=(zlib.crc32(writer.encode()) << 20) + seq)


def mispriced(table: pa.Table) -> pa.Table:
    """``table`` with every cost zeroed, so that a reprice has to rewrite the day."""
    zero = pa.array([Decimal(0)] * table.num_rows, MONEY_TYPE)
    for name in COST_COLUMNS:
        table = table.set_column(table.schema.get_field_index(name), name, zero)
    return table


def write_records(lake_dir: Path, writer_id: str, seqs: list[int], *, flush_each: bool = True) -> None:
    """Publish ``writer_id``'s records through a real LakeWriter, one file per flush."""
    lake = LakeWriter(
        lake_dir=lake_dir,
        config=LakeConfig(root=str(lake_dir), flush_interval=timedelta(hours=1)),
        writer_id=writer_id,
    )
    lake.start()
    try:
        for seq in seqs:
            lake.append(record(writer_id, seq), seq=seq)
            if flush_each:
                lake.flush()
    finally:
        lake.shutdown()


def skipped(lake_dir: Path, writer_id: str, seqs: range) -> list[int]:
    """The seqs a replay of ``writer_id``'s spool finds wholly in the lake."""
    replay = ReplayFilter(lake_dir, writer=writer_id)
    return [seq for seq in seqs if replay.unrecorded(record(writer_id, seq), seq=seq).num_rows == 0]


def ids(table: pa.Table) -> list[tuple[str, str]]:
    return list(zip(table["trace_id"].to_pylist(), table["span_id"].to_pylist(), strict=True))


def expected_ids(a_seqs: list[int], b_seqs: list[int]) -> list[tuple[str, str]]:
    tables = [record("a", s) for s in a_seqs] + [record("b", s) for s in b_seqs]
    return sorted(ids(pa.concat_tables(tables)))


@pytest.fixture
def shared_root(tmp_path: Path) -> Path:
    return tmp_path / "shared-lake"


A_SEQS = list(range(1, 13))
B_SEQS = [1, 2, 3, 4, 7]  # 5 and 6 were refused by the lake, 8.. never flushed: B's replay owes them


def test_each_writers_replay_skips_exactly_its_own_records(shared_root: Path) -> None:
    write_records(shared_root, "a", A_SEQS)
    write_records(shared_root, "b", B_SEQS)
    assert len(data_files(partition_dir(shared_root, DEFAULT_DAY))) == len(A_SEQS) + len(B_SEQS)
    assert skipped(shared_root, "a", range(1, 20)) == A_SEQS
    assert skipped(shared_root, "b", range(1, 20)) == B_SEQS
    # The unnamed writer (a lake of its own) wrote nothing here, whatever the numbers.
    assert skipped(shared_root, UNNAMED_WRITER, range(1, 20)) == []
    assert highest_recorded_seq(shared_root, writer="a") == 12
    assert highest_recorded_seq(shared_root, writer="b") == 7


def test_compaction_and_reprice_keep_every_writers_seqs(shared_root: Path) -> None:
    write_records(shared_root, "a", A_SEQS)
    write_records(shared_root, "b", B_SEQS)
    before = read_partition_writer_seqs(shared_root, DEFAULT_DAY)
    assert before == WriterSeqs({"a": SeqSet.of(A_SEQS), "b": SeqSet.of(B_SEQS)})

    [result] = compact_lake(shared_root, min_files=2)
    assert result.rewritten and result.files_after == 1
    [merged] = data_files(partition_dir(shared_root, DEFAULT_DAY))
    assert read_file_writer_seqs(merged) == before  # one file, both writers' seqs
    assert sorted(ids(read_partition(shared_root, DEFAULT_DAY))) == expected_ids(A_SEQS, B_SEQS)
    assert skipped(shared_root, "a", range(1, 20)) == A_SEQS
    assert skipped(shared_root, "b", range(1, 20)) == B_SEQS

    # B replays 5 and 6 after the compaction; a reprice then rewrites the day into one file.
    write_records(shared_root, "b", [5, 6])
    pricer = Pricer(Catalog.load(PricingConfig()), PricingConfig())
    with lake_lock(shared_root, shared=True):
        write_files(
            shared_root, mispriced(record("c", 1)), spool_seqs={DEFAULT_DAY: SeqSet.of([1])}, writer="c"
        )
    [day] = reprice(shared_root, pricer, since=DEFAULT_DAY, actor="test")
    assert day.rewritten and day.cost_after > day.cost_before
    [repriced] = data_files(partition_dir(shared_root, DEFAULT_DAY))
    assert read_file_writer_seqs(repriced) == WriterSeqs(
        {"a": SeqSet.of(A_SEQS), "b": SeqSet.of([*B_SEQS, 5, 6]), "c": SeqSet.of([1])}
    )
    assert skipped(shared_root, "a", range(1, 20)) == A_SEQS
    assert skipped(shared_root, "b", range(1, 20)) == [1, 2, 3, 4, 5, 6, 7]
    assert skipped(shared_root, "c", range(1, 20)) == [1]
    rows = read_partition(shared_root, DEFAULT_DAY)
    assert len(ids(rows)) == len(set(ids(rows))) == (len(A_SEQS) + len(B_SEQS) + 3) * ROWS_PER_RECORD


def test_the_footer_keeps_the_unnamed_writer_under_the_old_key(shared_root: Path) -> None:
    seqs = WriterSeqs({UNNAMED_WRITER: SeqSet([(1, 40)]), "pod-0": SeqSet.of([3, 4]), "b": SeqSet.of([9])})
    assert seqs.metadata() == {
        SPOOL_SEQS_KEY: b"1-40",
        WRITER_SEQS_KEY: b'{"b":"9","pod-0":"3-4"}',
    }
    assert WriterSeqs.from_metadata(seqs.metadata()) == seqs
    # A single writer's file is what an otelcost without writer ids wrote and reads.
    write_records(shared_root, UNNAMED_WRITER, [1, 2])
    [first, _] = data_files(partition_dir(shared_root, DEFAULT_DAY))
    metadata = pq.read_metadata(first).metadata
    assert metadata[SPOOL_SEQS_KEY] == b"1" and WRITER_SEQS_KEY not in metadata


def test_files_written_before_writer_ids_belong_to_the_unnamed_writer_only(shared_root: Path) -> None:
    # Written as an otelcost without writer ids wrote it: the old key alone.
    table = record("x", 1).replace_schema_metadata({SPOOL_SEQS_KEY: b"1-3"})
    directory = partition_dir(shared_root, DEFAULT_DAY)
    directory.mkdir(parents=True)
    pq.write_table(table, directory / "part-20260101T000000000000Z-000000000000.parquet")
    assert skipped(shared_root, UNNAMED_WRITER, range(1, 5)) == [1, 2, 3]
    assert skipped(shared_root, "a", range(1, 5)) == []
    [result] = compact_lake(shared_root, min_files=1)  # one file: nothing to merge
    assert not result.rewritten
    write_records(shared_root, "a", [1])
    compact_lake(shared_root, min_files=2)
    assert read_partition_writer_seqs(shared_root, DEFAULT_DAY) == WriterSeqs(
        {UNNAMED_WRITER: SeqSet([(1, 3)]), "a": SeqSet.of([1])}
    )


def test_a_malformed_writer_map_is_an_error_not_a_guess(shared_root: Path) -> None:
    for bad in (b"[1, 2]", b'{"a": 3}', b'{"": "1"}', b"{not json"):
        with pytest.raises(ValueError):
            WriterSeqs.from_metadata({WRITER_SEQS_KEY: bad})
