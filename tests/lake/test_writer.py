"""LakeWriter: real Parquet files in tmp_path, read back through DuckDB and the llm_calls view."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from otelcost.config import LakeConfig
from otelcost.errors import LakeError, LakeLockTimeoutError, TransientIngestError
from otelcost.lake import publish
from otelcost.lake.layout import read_partition, table_dir
from otelcost.lake.locking import lake_lock
from otelcost.lake.publish import write_files
from otelcost.lake.query import lake_glob, run_query
from otelcost.lake.swap import replace_partition
from otelcost.lake.writer import BUFFER_BOUND_FACTOR, LakeWriter
from otelcost.schema import PARTITION_COLUMN, RECORD_SCHEMA
from otelcost.stages import Sink
from tests.lake.rows import DEFAULT_DAY, make_calls
from tests.waiting import wait_until

HOUR = timedelta(hours=1)


def slow_config(**overrides: object) -> LakeConfig:
    """A writer that flushes only when told to (or when its buffer fills)."""
    values: dict[str, object] = {"flush_interval": HOUR, "max_buffer_rows": 1_000, "row_group_size": 1_024}
    values.update(overrides)
    return LakeConfig.model_validate(values)


def lake_rows(lake_dir: Path) -> int:
    count: int = run_query(lake_dir, "SELECT count(*) AS n FROM llm_calls")["n"][0].as_py()
    return count


def test_is_a_sink() -> None:
    assert isinstance(LakeWriter(lake_dir=Path("unused"), config=slow_config()), Sink)


def test_every_column_round_trips_through_duckdb(lake_dir: Path) -> None:
    calls = make_calls(400, start=datetime(2026, 3, 14, 22, 0, tzinfo=UTC), spread=4 * HOUR, seed=3)
    writer = LakeWriter(lake_dir=lake_dir, config=slow_config())
    writer.start()
    for offset in range(0, 400, 64):
        writer.consume(calls.slice(offset, 64))
    writer.shutdown()

    result = run_query(lake_dir, "SELECT * FROM llm_calls ORDER BY span_id")
    expected = calls.take(pa.compute.sort_indices(calls["span_id"]))
    assert result.column_names == [*RECORD_SCHEMA.names, PARTITION_COLUMN]
    for field in RECORD_SCHEMA:
        assert result.schema.field(field.name).type.equals(field.type), field.name
        assert result[field.name].to_pylist() == expected[field.name].to_pylist(), field.name
    assert result.schema.field(PARTITION_COLUMN).type == pa.date32()
    assert result[PARTITION_COLUMN].to_pylist() == [ts.date() for ts in expected["ts"].to_pylist()]
    days = run_query(lake_dir, "SELECT DISTINCT date FROM llm_calls ORDER BY 1")["date"].to_pylist()
    assert [str(d) for d in days] == ["2026-03-14", "2026-03-15"]
    assert writer.rows_written == 400 and writer.files_written == 2 and writer.flushes == 1


def test_flushes_when_the_interval_elapses(lake_dir: Path, writer: LakeWriter) -> None:
    writer.consume(make_calls(10))
    wait_until(lambda: writer.rows_written == 10)
    assert lake_rows(lake_dir) == 10
    writer.consume(make_calls(5, seed=1))
    wait_until(lambda: writer.rows_written == 15)
    assert writer.flushes == 2 and writer.files_written == 2
    assert writer.last_flush_seconds > 0
    buckets, total = writer.flush_durations.snapshot()
    assert buckets[-1] == ("+Inf", 2) and total >= writer.last_flush_seconds


def test_flushes_early_when_the_buffer_holds_max_buffer_rows(lake_dir: Path) -> None:
    writer = LakeWriter(lake_dir=lake_dir, config=slow_config(max_buffer_rows=1_000))
    writer.start()
    try:
        writer.consume(make_calls(600))
        time.sleep(0.2)  # time passes, and no flush may happen in it
        assert writer.rows_written == 0, "below max_buffer_rows the interval (1 h) decides"
        writer.consume(make_calls(600, seed=1))
        wait_until(lambda: writer.rows_written == 1_200)
    finally:
        writer.shutdown()


def test_shutdown_flushes_is_idempotent_and_safe_before_start(lake_dir: Path) -> None:
    LakeWriter(lake_dir=lake_dir, config=slow_config()).shutdown()  # never started, nothing buffered
    assert not table_dir(lake_dir).exists()

    writer = LakeWriter(lake_dir=lake_dir, config=slow_config())
    writer.start()
    writer.consume(make_calls(42))
    writer.shutdown()
    writer.shutdown()
    assert lake_rows(lake_dir) == 42
    assert writer.flushes == 1
    with pytest.raises(TransientIngestError, match="stopped"):
        writer.consume(make_calls(1))


def test_a_full_buffer_refuses_with_a_retryable_error_and_recovers(lake_dir: Path) -> None:
    config = slow_config(max_buffer_rows=1_000)
    writer = LakeWriter(lake_dir=lake_dir, config=config)
    writer.start()
    try:
        # A compaction holds the lake exclusively: flushes wait, rows pile up.
        with lake_lock(lake_dir):
            for seed in range(BUFFER_BOUND_FACTOR):
                writer.consume(make_calls(1_000, seed=seed))
            assert writer.buffered_rows == 4_000
            with pytest.raises(TransientIngestError, match="buffer is full") as refused:
                writer.consume(make_calls(1, seed=99))
            assert refused.value.retry_after == config.flush_interval.total_seconds()
            assert writer.refused_batches == 1
        wait_until(lambda: writer.rows_written == 4_000)
        writer.consume(make_calls(1, seed=99))  # room again
    finally:
        writer.shutdown()
    assert lake_rows(lake_dir) == 4_001


def test_one_batch_larger_than_the_bound_is_taken_when_the_buffer_is_empty(lake_dir: Path) -> None:
    writer = LakeWriter(lake_dir=lake_dir, config=slow_config(max_buffer_rows=100))
    writer.consume(make_calls(450))  # 4 x 100 < 450, but refusing it would refuse it forever
    assert writer.buffered_rows == 450
    with pytest.raises(TransientIngestError):
        writer.consume(make_calls(1))
    writer.shutdown()
    assert lake_rows(lake_dir) == 450


def block_table_dir(lake_dir: Path) -> Callable[[], None]:
    """Make every write fail (a file where llm_calls/ should be); return the undo.

    Works for root too, unlike removing write permission.
    """
    root = table_dir(lake_dir)
    aside = root.with_name("llm_calls.aside")
    os.rename(root, aside)
    root.write_text("in the way")

    def restore() -> None:
        root.unlink()
        os.rename(aside, root)

    return restore


def test_a_failed_flush_keeps_the_rows_and_a_later_flush_writes_them_once(lake_dir: Path) -> None:
    writer = LakeWriter(lake_dir=lake_dir, config=slow_config())
    writer.start()
    try:
        writer.consume(make_calls(100, seed=1))
        writer.flush()
        restore = block_table_dir(lake_dir)
        writer.consume(make_calls(30, seed=2))
        with pytest.raises(LakeError, match="cannot write Parquet files"):
            writer.flush()
        assert writer.flush_errors == 1
        assert writer.buffered_rows == 30
        writer.consume(make_calls(20, seed=3))  # newer rows queue behind the kept ones
        restore()
        assert writer.flush() == 50
    finally:
        writer.shutdown()
    result = run_query(lake_dir, "SELECT count(*) AS n, count(DISTINCT span_id) AS d FROM llm_calls")
    assert result.to_pylist() == [{"n": 150, "d": 150}]
    assert writer.rows_written == 150 and writer.flushes == 2


def test_the_flush_thread_retries_after_a_failure(lake_dir: Path, fast_config: LakeConfig) -> None:
    writer = LakeWriter(lake_dir=lake_dir, config=fast_config)
    writer.start()
    try:
        restore = block_table_dir(lake_dir)
        writer.consume(make_calls(25))
        wait_until(lambda: writer.flush_errors >= 2)
        assert writer.rows_written == 0 and writer.buffered_rows == 25
        restore()
        wait_until(lambda: writer.rows_written == 25)
    finally:
        writer.shutdown()
    assert lake_rows(lake_dir) == 25


def test_shutdown_reports_rows_it_could_not_write(lake_dir: Path) -> None:
    writer = LakeWriter(lake_dir=lake_dir, config=slow_config())
    writer.start()
    restore = block_table_dir(lake_dir)
    writer.consume(make_calls(7))
    with pytest.raises(LakeError, match="7 buffered row"):
        writer.shutdown()
    restore()
    writer.shutdown()  # a second call tries again
    assert lake_rows(lake_dir) == 7


def test_on_flushed_reports_the_durable_files_and_rows(lake_dir: Path) -> None:
    reports: list[tuple[list[Path], int]] = []

    def record(paths: list[Path], rows: int) -> None:
        assert all(p.exists() for p in paths)
        reports.append((paths, rows))

    writer = LakeWriter(lake_dir=lake_dir, config=slow_config(), on_flushed=record)
    writer.start()
    writer.consume(make_calls(10, start=datetime(2026, 3, 14, 23, 59, tzinfo=UTC), spread=2 * HOUR / 60))
    writer.flush()
    writer.consume(make_calls(5, seed=1))
    writer.shutdown()
    assert [rows for _, rows in reports] == [10, 5]
    assert [len(paths) for paths, _ in reports] == [2, 1]


def test_a_failing_hook_does_not_write_the_rows_twice(lake_dir: Path) -> None:
    def broken(paths: list[Path], rows: int) -> None:
        raise RuntimeError("spool checkpoint failed")

    writer = LakeWriter(lake_dir=lake_dir, config=slow_config(), on_flushed=broken)
    writer.consume(make_calls(10))
    assert writer.flush() == 10
    assert writer.flush() == 0
    assert lake_rows(lake_dir) == 10


def test_a_batch_without_the_record_schema_is_refused_whole(lake_dir: Path) -> None:
    writer = LakeWriter(lake_dir=lake_dir, config=slow_config())
    with pytest.raises(LakeError, match="missing"):
        writer.consume(make_calls(3).drop_columns(["team"]))
    assert writer.buffered_rows == 0


def test_readers_never_see_a_partial_or_temporary_file(lake_dir: Path) -> None:
    """Flush every 10 ms while a reader reads the lake as fast as it can."""
    config = LakeConfig(
        flush_interval=timedelta(milliseconds=10), max_buffer_rows=10_000, row_group_size=1_024
    )
    writer = LakeWriter(lake_dir=lake_dir, config=config)
    writer.start()
    stop = threading.Event()
    problems: list[str] = []
    observations: list[int] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                result = run_query(
                    lake_dir,
                    f"SELECT count(*) AS n, count(DISTINCT span_id) AS d, "
                    f"count(*) FILTER (WHERE NOT filename LIKE '%.parquet') AS odd "
                    f"FROM read_parquet('{lake_glob(lake_dir)}', filename = true)",
                )
            except LakeError as exc:
                if "No files found" not in str(exc):  # before the first flush
                    problems.append(str(exc))
                continue
            row = result.to_pylist()[0]
            if row["n"] != row["d"] or row["odd"]:
                problems.append(f"bad read: {row}")
            observations.append(row["n"])
            for path in table_dir(lake_dir).glob("*/*.parquet"):
                try:
                    pq.read_metadata(path)
                except Exception as exc:
                    problems.append(f"{path.name}: {exc}")

    thread = threading.Thread(target=reader)
    thread.start()
    total = 0
    seed = 0

    def write_a_batch_until_read_10_times() -> bool:
        nonlocal total, seed
        batch = make_calls(20, seed=seed, start=datetime(2026, 3, 14, 23, 0, tzinfo=UTC), spread=2 * HOUR)
        writer.consume(batch)
        total += batch.num_rows
        seed += 1
        return len(observations) >= 10

    try:
        # One batch every 5 ms, a load spaced out over many flushes.
        wait_until(write_a_batch_until_read_10_times, timeout=20, poll=0.005, what="10 reads of the lake")
        writer.shutdown()
    finally:
        stop.set()
        thread.join()
    assert problems == []
    assert len(observations) >= 10
    assert observations == sorted(observations), "a file never disappears once seen"
    assert writer.files_written > 20
    assert lake_rows(lake_dir) == total


def test_replacing_a_partition_under_readers_never_double_counts(lake_dir: Path) -> None:
    for seed in range(12):
        write_files(lake_dir, make_calls(50, seed=seed))
    expected = run_query(lake_dir, "SELECT count(*) AS n, sum(cost_usd) AS usd FROM llm_calls").to_pylist()[0]
    assert expected["n"] == 600 and isinstance(expected["usd"], Decimal)
    stop = threading.Event()
    seen: list[dict[str, object]] = []
    failures: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.append(
                    run_query(
                        lake_dir, "SELECT count(*) AS n, sum(cost_usd) AS usd FROM llm_calls"
                    ).to_pylist()[0]
                )
            except LakeError as exc:
                failures.append(str(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(25):
            with lake_lock(lake_dir):
                table = read_partition(lake_dir, DEFAULT_DAY)
                replace_partition(lake_dir, DEFAULT_DAY, table)
            time.sleep(0.005)  # spaces the swaps out: the reader queries between them
    finally:
        stop.set()
        thread.join()
    assert len(seen) > 5
    assert [row for row in seen if row != expected] == []
    # A query whose files were swapped away between its glob and its open fails (and is
    # retried by run_query); it never returns other numbers.
    assert [f for f in failures if "Cannot open file" not in f and "No such file" not in f] == []


def test_a_half_published_flush_keeps_only_the_days_that_did_not_land(
    lake_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rename of the second day fails and so does taking the first day's file back."""
    calls = make_calls(60, start=datetime(2026, 3, 14, 23, 30, tzinfo=UTC), spread=HOUR)
    first_day = sum(1 for ts in calls["ts"].to_pylist() if ts.day == 14)
    real_replace = os.replace
    renamed: list[str] = []

    def fail_second_rename(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if renamed:
            raise OSError(5, "Input/output error", str(dst))
        real_replace(src, dst)
        renamed.append(str(dst))

    writer = LakeWriter(lake_dir=lake_dir, config=slow_config())
    writer.start()
    writer.consume(calls)
    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", fail_second_rename)
        patch.setattr(publish, "_unlink_quietly", lambda path: not path.name.startswith("part-"))
        with pytest.raises(publish.PartialWriteError) as caught:
            writer.flush()
    assert [str(p) for p in caught.value.published] == renamed
    assert writer.buffered_rows == 60 - first_day
    assert writer.flush_errors == 1
    writer.shutdown()
    result = run_query(
        lake_dir, "SELECT date, count(*) AS n, count(DISTINCT span_id) AS d FROM llm_calls GROUP BY 1"
    )
    assert {str(r["date"]): (r["n"], r["d"]) for r in result.to_pylist()} == {
        "2026-03-14": (first_day, first_day),
        "2026-03-15": (60 - first_day, 60 - first_day),
    }


def test_a_lake_lock_held_elsewhere_makes_flushes_wait_and_bounds_the_shutdown(lake_dir: Path) -> None:
    """A reprice holding the lake lock: flushes wait without counting errors, and shutdown
    gives up after ``shutdown_lock_timeout`` with the rows still buffered, instead of hanging."""
    config = LakeConfig(flush_interval=timedelta(milliseconds=50))
    writer = LakeWriter(lake_dir=lake_dir, config=config, shutdown_lock_timeout=0.5)
    writer.start()
    with lake_lock(lake_dir):  # exclusive, as `otelcost reprice` takes it
        writer.consume(make_calls(10))
        time.sleep(0.3)  # several flush intervals pass: none may write or count an error
        assert (writer.rows_written, writer.flush_errors, writer.buffered_rows) == (0, 0, 10)
        started = time.monotonic()
        with pytest.raises(LakeLockTimeoutError, match="10 buffered row"):
            writer.shutdown()
        assert time.monotonic() - started < 3
    writer.shutdown()  # the lock is free again: the rows are written after all
    assert (writer.rows_written, writer.buffered_rows, writer.flush_errors) == (10, 0, 0)
    assert run_query(lake_dir, "SELECT count(*) AS n FROM llm_calls").to_pylist() == [{"n": 10}]


def test_the_flush_thread_writes_as_soon_as_the_lake_lock_is_released(lake_dir: Path) -> None:
    writer = LakeWriter(lake_dir=lake_dir, config=LakeConfig(flush_interval=timedelta(milliseconds=50)))
    writer.start()
    try:
        with lake_lock(lake_dir):
            writer.consume(make_calls(10))
            time.sleep(0.2)  # flush intervals pass, and no flush may get through the lock
            assert writer.rows_written == 0
        wait_until(lambda: writer.rows_written >= 10, timeout=5, what="the flush after the lock is released")
        assert (writer.rows_written, writer.flush_errors) == (10, 0)
    finally:
        writer.shutdown()
