"""Compaction (``otelcost/jobs/compact.py``) on real Parquet files, read back with DuckDB."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from otelcost.cli import main
from otelcost.config import LakeConfig
from otelcost.jobs import compact as compact_module
from otelcost.jobs.compact import CompactionResult, Compactor, compact_lake, compact_partition
from otelcost.lake.config import CompactionConfig
from otelcost.lake.layout import partition_dir, read_partition
from otelcost.lake.locking import lake_lock
from otelcost.lake.publish import write_files, write_parquet
from otelcost.lake.query import connect, run_query
from otelcost.lake.recovery import read_partition_seqs
from otelcost.lake.seqs import SeqSet
from otelcost.lake.writer import LakeWriter
from otelcost.pipeline import Pipeline
from tests.e2e.test_spool_replay import abandon, export, lake_figures, make_request, pipeline_config
from tests.lake.rows import DEFAULT_DAY, make_calls
from tests.waiting import wait_until

SMALL_ROWS = 50
BIG_ROWS = 4_000


def _write(lake_dir: Path, table: pa.Table, seqs: SeqSet) -> Path:
    day = DEFAULT_DAY
    with lake_lock(lake_dir, shared=True):
        [path] = write_files(lake_dir, table, row_group_size=1_024, spool_seqs={day: seqs})
    return path


def _small_lake(lake_dir: Path, files: int, *, day: date = DEFAULT_DAY, first_seq: int = 1) -> None:
    for i in range(files):
        table = make_calls(SMALL_ROWS, day=day, seed=first_seq + i)
        with lake_lock(lake_dir, shared=True):
            write_files(lake_dir, table, spool_seqs={day: SeqSet.of([first_seq + i])})


def _row_multiset(table: pa.Table) -> Counter[str]:
    return Counter(json.dumps(row, default=str, sort_keys=True) for row in table.to_pylist())


def _files(lake_dir: Path, day: date = DEFAULT_DAY) -> list[Path]:
    return sorted(partition_dir(lake_dir, day).glob("*.parquet"))


def _snapshot(lake_dir: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(lake_dir)): (path.stat().st_ino, path.stat().st_mtime_ns)
        for path in lake_dir.rglob("*")
        if path.name != ".lock"
    }


def test_small_files_are_merged_rows_seqs_and_big_files_kept(lake_dir: Path) -> None:
    big = _write(lake_dir, make_calls(BIG_ROWS, seed=100), SeqSet([(100, 120)]))
    _small_lake(lake_dir, 6)
    target = big.stat().st_size  # the big file is not below it, every small file is
    assert all(path.stat().st_size < target for path in _files(lake_dir) if path != big)
    rows_before = _row_multiset(read_partition(lake_dir, DEFAULT_DAY))
    seqs_before = read_partition_seqs(lake_dir, DEFAULT_DAY)
    big_inode = big.stat().st_ino
    sql = "SELECT count(*) AS n, sum(cost_usd) AS cost, count(DISTINCT span_id) AS ids FROM llm_calls"
    figures_before = run_query(lake_dir, sql).to_pylist()

    result = compact_partition(
        lake_dir, DEFAULT_DAY, target_file_size=target, min_files=4, row_group_size=1_024
    )

    assert result.rewritten and not result.abandoned
    assert (result.files_before, result.files_after, result.merged_files) == (7, 2, 6)
    assert result.rows == BIG_ROWS + 6 * SMALL_ROWS
    assert result.bytes_after is not None and result.bytes_after > 0
    after = _files(lake_dir)
    assert len(after) == 2 and big in after
    assert big.stat().st_ino == big_inode  # kept as is: a hard link of the same file
    [merged] = [path for path in after if path != big]
    ts = pq.read_table(merged, columns=["ts"])["ts"].to_pylist()
    assert ts == sorted(ts)
    assert pq.read_metadata(merged).num_row_groups == 1  # 300 rows, 1,024-row groups
    assert read_partition_seqs(lake_dir, DEFAULT_DAY) == seqs_before == SeqSet([(1, 6), (100, 120)])
    assert _row_multiset(read_partition(lake_dir, DEFAULT_DAY)) == rows_before
    assert run_query(lake_dir, sql).to_pylist() == figures_before
    assert not list((lake_dir / ".staging").iterdir())  # the old directory is gone


def test_a_day_with_too_few_small_files_is_not_rewritten(lake_dir: Path) -> None:
    _small_lake(lake_dir, 3)
    before = _snapshot(lake_dir)
    directory_inode = partition_dir(lake_dir, DEFAULT_DAY).stat().st_ino

    result = compact_partition(lake_dir, DEFAULT_DAY, min_files=4)

    assert not result.rewritten and result.merged_files == 0
    assert (result.files_before, result.files_after, result.rows) == (3, 3, 3 * SMALL_ROWS)
    assert partition_dir(lake_dir, DEFAULT_DAY).stat().st_ino == directory_inode
    assert _snapshot(lake_dir) == before


def test_a_dry_run_writes_nothing(lake_dir: Path) -> None:
    _small_lake(lake_dir, 5)
    _small_lake(lake_dir, 2, day=DEFAULT_DAY + timedelta(days=1), first_seq=10)
    before = _snapshot(lake_dir)

    results = compact_lake(lake_dir, min_files=3, dry_run=True)

    assert [(r.day, r.files_before, r.files_after, r.rewritten) for r in results] == [
        (DEFAULT_DAY, 5, 1, False),
        (DEFAULT_DAY + timedelta(days=1), 2, 2, False),
    ]
    assert results[0].bytes_after is None
    assert _snapshot(lake_dir) == before


def test_since_and_until_select_days(lake_dir: Path) -> None:
    days = [DEFAULT_DAY + timedelta(days=i) for i in range(3)]
    for i, day in enumerate(days):
        _small_lake(lake_dir, 3, day=day, first_seq=10 * i + 1)

    results = compact_lake(lake_dir, since=days[1], until=days[2], min_files=2)

    assert [(r.day, r.rewritten) for r in results] == [(days[1], True)]
    assert [len(_files(lake_dir, day)) for day in days] == [3, 1, 3]


def test_an_abandoned_compaction_leaves_the_day_as_it_was(lake_dir: Path) -> None:
    _small_lake(lake_dir, 4)
    before = _snapshot(lake_dir)
    cancel = threading.Event()
    cancel.set()

    result = compact_partition(lake_dir, DEFAULT_DAY, min_files=2, cancel=cancel)

    assert result.abandoned and not result.rewritten
    after = _snapshot(lake_dir)
    assert after.pop(".staging")  # an empty staging directory: the half-built one was removed
    assert after == before


def test_a_concurrent_reader_never_sees_a_different_count(lake_dir: Path) -> None:
    days = [DEFAULT_DAY + timedelta(days=i) for i in range(12)]
    for i, day in enumerate(days):
        _small_lake(lake_dir, 6, day=day, first_seq=10 * i + 1)
    expected = 12 * 6 * SMALL_ROWS
    counts: list[int] = []
    vanished = 0
    done = threading.Event()

    def read() -> None:
        # An analyst's plain DuckDB: no lock, no retry. A file listed just before a swap may be
        # gone when opened (an I/O error); a count is never wrong.
        nonlocal vanished
        connection = connect(lake_dir)
        try:
            while not done.is_set():
                try:
                    [(count,)] = connection.sql("SELECT count(*) FROM llm_calls").fetchall()
                except duckdb.IOException:
                    vanished += 1
                    continue
                counts.append(int(count))
        finally:
            connection.close()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        wait_until(
            lambda: len(counts) >= 3 or not reader.is_alive(), timeout=10, what="the reader's first counts"
        )
        for day in days:
            assert compact_partition(lake_dir, day, min_files=2).rewritten
            time.sleep(0.02)  # let the reader run queries between the swaps
    finally:
        done.set()
        reader.join()
    assert len(counts) > 10
    assert set(counts) == {expected}, f"counts seen: {Counter(counts)}, I/O errors: {vanished}"
    assert all(len(_files(lake_dir, day)) == 1 for day in days)


def test_the_live_writer_keeps_writing_during_background_compaction(lake_dir: Path) -> None:
    config = LakeConfig(
        flush_interval=timedelta(milliseconds=20), max_buffer_rows=1_000, row_group_size=1_024
    )
    writer = LakeWriter(lake_dir=lake_dir, config=config)
    compactor = Compactor(
        lake_dir=lake_dir,
        config=CompactionConfig(interval=timedelta(milliseconds=50), min_files=4),
        row_group_size=1_024,
    )
    writer.start()
    compactor.start()
    batches = 60
    try:
        for i in range(batches):
            writer.consume(make_calls(20, seed=1_000 + i, spread=timedelta(hours=1)))
            time.sleep(0.01)  # spaces the load out over flushes (20 ms) and compaction runs (50 ms)
    finally:
        writer.shutdown()
        compactor.stop()
    assert compactor.compactions >= 1 and compactor.errors == 0
    assert compactor.files_merged >= 4
    figures = run_query(lake_dir, "SELECT count(*) AS n, count(DISTINCT span_id) AS ids FROM llm_calls")
    assert figures.to_pylist() == [{"n": batches * 20, "ids": batches * 20}]
    assert len(_files(lake_dir)) < writer.files_written  # some of them were merged


def test_a_spool_replay_after_compaction_skips_what_the_lake_holds(tmp_path: Path) -> None:
    config = pipeline_config(tmp_path / "data")
    first = Pipeline(config)
    first.start()
    first.lake._on_seqs_durable = None  # the crash comes before any checkpoint is written
    for _ in range(4):  # seqs 1..4, one lake file each
        export(first, make_request(3))
        first.lake.flush()
    export(first, make_request(2))  # seq 5: only in the spool
    abandon(first)
    [day] = {path.parent.name for path in (config.lake_dir / "llm_calls").glob("*/*.parquet")}
    today = date.fromisoformat(day.removeprefix("date="))
    seqs = read_partition_seqs(config.lake_dir, today)

    [result] = compact_lake(config.lake_dir, min_files=2)

    assert result.rewritten and result.files_after == 1
    assert read_partition_seqs(config.lake_dir, today) == seqs == SeqSet([(1, 4)])
    second = Pipeline(config)
    second.start()
    try:
        assert second.replayed.records_in_lake == 4
        assert second.replayed.records == 1
        figures = lake_figures(config.lake_dir)
        assert figures["n"] == figures["ids"] == 4 * 3 + 2
    finally:
        second.shutdown()


def test_cli_compacts_and_reports_each_day(lake_dir: Path) -> None:
    data_dir = lake_dir.parent
    _small_lake(lake_dir, 4)
    runner = CliRunner()
    args = ["lake", "compact", "--data-dir", str(data_dir), "--min-files", "3"]

    dry = runner.invoke(main, [*args, "--dry-run", "-f", "json"], env={})
    assert dry.exit_code == 0, dry.output
    [planned] = json.loads(dry.output)
    assert planned["files_before"] == 4 and planned["files_after"] == 1 and planned["bytes_after"] is None
    assert planned["compacted"] is False and len(_files(lake_dir)) == 4

    done = runner.invoke(main, args, env={})
    assert done.exit_code == 0, done.output
    header, _rule, row = done.output.splitlines()[:3]
    assert header.split() == [
        "date",
        "files_before",
        "files_after",
        "rows",
        "bytes_before",
        "bytes_after",
        "seconds",
        "compacted",
    ]
    assert row.split()[:4] == [DEFAULT_DAY.isoformat(), "4", "1", str(4 * SMALL_ROWS)]
    assert row.split()[-1] == "true"
    assert len(_files(lake_dir)) == 1

    again = runner.invoke(main, [*args, "-f", "json"], env={})
    assert json.loads(again.output)[0]["compacted"] is False


def test_compaction_is_on_by_default_with_documented_settings() -> None:
    settings = LakeConfig().compaction
    assert settings.enabled and settings.interval == timedelta(minutes=5)
    assert (settings.min_files, settings.target_file_size) == (32, 256 * 2**20)


def test_flushes_go_on_during_the_merge_and_their_files_are_kept(
    lake_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The merge runs under the shared lock: a flush in the middle of it gets the lock at once
    (a 0.2 s bound), and its file survives the swap beside the merged one."""
    _small_lake(lake_dir, 5)
    real_write = write_parquet
    flushed: list[Path] = []

    def write_then_flush(path: Path, table: pa.Table, **kwargs: Any) -> None:
        real_write(path, table, **kwargs)
        with lake_lock(lake_dir, shared=True, timeout=0.2):  # raises if compaction held it exclusively
            flushed.extend(
                write_files(lake_dir, make_calls(7, seed=999), spool_seqs={DEFAULT_DAY: SeqSet.of([999])})
            )

    monkeypatch.setattr(compact_module, "write_parquet", write_then_flush)
    result = compact_partition(lake_dir, DEFAULT_DAY, min_files=4, row_group_size=1_024)

    assert result.rewritten and (result.merged_files, result.files_after) == (5, 2)
    assert len(flushed) == 1 and flushed[0] in _files(lake_dir)
    assert read_partition_seqs(lake_dir, DEFAULT_DAY) == SeqSet([(1, 5), (999, 999)])
    assert read_partition(lake_dir, DEFAULT_DAY).num_rows == 5 * SMALL_ROWS + 7
    assert not list((lake_dir / ".staging").iterdir())


def test_of_two_compactions_merging_the_same_files_one_swaps_the_other_leaves_the_day(
    lake_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the merge and the swap the lock is released. Two compactions (a CLI run beside
    the server's) that both merged the same files: the first to get the exclusive lock swaps,
    the second finds the files it merged gone and leaves the day as the first made it."""
    _small_lake(lake_dir, 5)
    real_write = write_parquet
    both_merged = threading.Barrier(2, timeout=30)

    def write_and_wait_for_the_other(path: Path, table: pa.Table, **kwargs: Any) -> None:
        real_write(path, table, **kwargs)
        both_merged.wait()  # both are past their merge, neither has swapped

    monkeypatch.setattr(compact_module, "write_parquet", write_and_wait_for_the_other)
    results: list[CompactionResult] = []
    other = threading.Thread(
        target=lambda: results.append(compact_partition(lake_dir, DEFAULT_DAY, min_files=4, lock_timeout=30))
    )
    other.start()
    results.append(compact_partition(lake_dir, DEFAULT_DAY, min_files=4, lock_timeout=30))
    other.join(30)

    assert sorted(r.rewritten for r in results) == [False, True]
    assert not any(r.abandoned for r in results)
    assert len(_files(lake_dir)) == 1  # one merged file, not two
    assert read_partition(lake_dir, DEFAULT_DAY).num_rows == 5 * SMALL_ROWS
    assert read_partition_seqs(lake_dir, DEFAULT_DAY) == SeqSet([(1, 5)])
    assert not list((lake_dir / ".staging").iterdir())
