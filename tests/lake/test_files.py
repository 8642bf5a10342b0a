"""The lake on disk: partition layout, atomic writes, partition replacement, the lock, recovery."""

from __future__ import annotations

import os
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from otelcost.errors import LakeError
from otelcost.fsync import fsync_path
from otelcost.lake import publish, swap
from otelcost.lake.layout import (
    TEMP_SUFFIX,
    conform,
    list_partitions,
    new_file_name,
    partition_dir,
    read_partition,
    table_dir,
)
from otelcost.lake.locking import lake_lock
from otelcost.lake.publish import PartialWriteError, write_files
from otelcost.lake.query import run_query
from otelcost.lake.recovery import recover
from otelcost.lake.swap import replace_partition
from otelcost.schema import RECORD_SCHEMA
from tests.lake.rows import DEFAULT_DAY, make_calls

MIDNIGHT = datetime(2026, 3, 14, 23, 30, tzinfo=UTC)


def all_data_files(lake_dir: Path) -> list[Path]:
    return sorted(table_dir(lake_dir).glob("*/*.parquet"))


def test_layout_is_hive_partitioned_by_utc_day_without_a_date_column(lake_dir: Path) -> None:
    calls = make_calls(500, start=MIDNIGHT, spread=timedelta(hours=1))
    written = write_files(lake_dir, calls)

    assert [p.parent.name for p in written] == ["date=2026-03-14", "date=2026-03-15"]
    assert list_partitions(lake_dir) == [date(2026, 3, 14), date(2026, 3, 15)]
    for path in written:
        assert path.name.startswith("part-") and path.suffix == ".parquet"
        schema = pq.read_schema(path)
        assert schema.names == RECORD_SCHEMA.names  # `date` lives in the directory name only
        day = date.fromisoformat(path.parent.name.removeprefix("date="))
        ts = pq.read_table(path, columns=["ts"])["ts"]
        assert {v.date() for v in ts.to_pylist()} == {day}
    before = sum(pq.read_metadata(p).num_rows for p in written if "03-14" in p.parent.name)
    assert before == pc.sum(pc.less(calls["ts"], pa.scalar(datetime(2026, 3, 15, tzinfo=UTC)))).as_py()
    assert sum(pq.read_metadata(p).num_rows for p in written) == 500


def test_files_are_zstd_with_statistics_and_the_configured_row_groups(lake_dir: Path) -> None:
    calls = make_calls(5_000)
    [path] = write_files(lake_dir, calls, row_group_size=2_048)
    metadata = pq.read_metadata(path)
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [2_048, 2_048, 904]
    ts_index = RECORD_SCHEMA.get_field_index("ts")
    column = metadata.row_group(0).column(ts_index)
    assert column.compression == "ZSTD"
    assert column.statistics is not None and column.statistics.has_min_max
    assert pq.read_table(path)["span_id"].to_pylist() == calls["span_id"].to_pylist()  # arrival order kept


def test_a_replaced_partition_is_sorted_so_row_groups_cover_disjoint_times(lake_dir: Path) -> None:
    with lake_lock(lake_dir):
        replace_partition(lake_dir, DEFAULT_DAY, make_calls(5_000), row_group_size=2_048)
    [path] = partition_dir(lake_dir, DEFAULT_DAY).iterdir()
    metadata = pq.read_metadata(path)
    ts_index = RECORD_SCHEMA.get_field_index("ts")
    ranges = [
        (
            metadata.row_group(i).column(ts_index).statistics.min,
            metadata.row_group(i).column(ts_index).statistics.max,
        )
        for i in range(metadata.num_row_groups)
    ]
    assert len(ranges) == 3
    assert all(ranges[i][1] <= ranges[i + 1][0] for i in range(2))


def test_file_names_are_unique_and_sort_by_write_time(lake_dir: Path) -> None:
    names = []
    for seed in range(20):
        [path] = write_files(lake_dir, make_calls(3, seed=seed))
        names.append(path.name)
    assert len(set(names)) == 20
    assert [n[: len("part-20260314T101502123456Z")] for n in names] == sorted(
        n[: len("part-20260314T101502123456Z")] for n in names
    )


def test_a_failed_write_leaves_no_file_behind(lake_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = make_calls(100, start=MIDNIGHT, spread=timedelta(hours=1))  # two partitions
    real_write = publish.write_parquet
    written: list[Path] = []

    def fail_on_second(path: Path, table: pa.Table, **kwargs: object) -> None:
        if written:
            raise OSError(28, "No space left on device", str(path))
        real_write(path, table, **kwargs)  # type: ignore[arg-type]
        written.append(path)

    monkeypatch.setattr(publish, "write_parquet", fail_on_second)
    with pytest.raises(LakeError, match="No space left on device"):
        write_files(lake_dir, calls)
    assert written, "the first partition's temp file was written before the failure"
    leftovers = [p for p in table_dir(lake_dir).rglob("*") if p.is_file()]
    assert leftovers == []


def test_a_failed_publish_takes_back_the_files_already_renamed(
    lake_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = make_calls(100, start=MIDNIGHT, spread=timedelta(hours=1))
    real_replace = os.replace
    renamed: list[str] = []

    def fail_second_rename(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if renamed:
            raise OSError(5, "Input/output error", str(dst))
        real_replace(src, dst)
        renamed.append(str(dst))

    monkeypatch.setattr(os, "replace", fail_second_rename)
    with pytest.raises(LakeError, match="Input/output error") as caught:
        write_files(lake_dir, calls)
    assert not isinstance(caught.value, PartialWriteError)
    assert renamed and not Path(renamed[0]).exists()
    assert all_data_files(lake_dir) == []
    assert [p for p in table_dir(lake_dir).rglob("*.tmp")] == []


def test_conform_fixes_order_and_nullability_but_refuses_other_schemas() -> None:
    calls = make_calls(10)
    reordered = calls.select(list(reversed(calls.column_names)))
    loose = pa.schema([f.with_nullable(True) for f in reordered.schema])
    assert conform(reordered.cast(loose)).schema.equals(RECORD_SCHEMA)
    assert conform(calls) is calls
    with pytest.raises(LakeError, match=r"missing \['cost_usd'\]"):
        conform(calls.drop_columns(["cost_usd"]))
    with pytest.raises(LakeError, match=r"unexpected \['surprise'\]"):
        conform(calls.append_column("surprise", pa.array(range(10))))
    with pytest.raises(LakeError, match="record schema"):
        bad = calls.set_column(calls.schema.get_field_index("ts"), "ts", pa.array(["x"] * 10))
        conform(bad)


def test_read_partition_fills_columns_missing_in_older_files(lake_dir: Path) -> None:
    old = make_calls(30, seed=1).drop_columns(["convention", "service_tier"])  # as an older version wrote
    directory = partition_dir(lake_dir, DEFAULT_DAY)
    directory.mkdir(parents=True)
    pq.write_table(old, directory / "part-20260314T000000000000Z-000000000000.parquet")
    write_files(lake_dir, make_calls(20, seed=2))

    table = read_partition(lake_dir, DEFAULT_DAY)
    assert table.schema.equals(RECORD_SCHEMA)
    assert table.num_rows == 50
    assert table["convention"].to_pylist()[:30] == [None] * 30  # the old file comes first (name order)
    assert table["convention"].to_pylist()[30:] == ["gen_ai"] * 20
    assert table["trace_id"].to_pylist()[:30] == old["trace_id"].to_pylist()
    assert read_partition(lake_dir, date(2020, 1, 1)).num_rows == 0


def test_read_partition_refuses_files_from_a_newer_version(lake_dir: Path) -> None:
    directory = partition_dir(lake_dir, DEFAULT_DAY)
    directory.mkdir(parents=True)
    newer = make_calls(5).append_column("carbon_grams", pa.array([1.0] * 5))
    pq.write_table(newer, directory / "part-x.parquet")
    with pytest.raises(LakeError, match="carbon_grams"):
        read_partition(lake_dir, DEFAULT_DAY)


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_replace_partition_swaps_the_whole_day(
    lake_dir: Path, monkeypatch: pytest.MonkeyPatch, exchange: bool
) -> None:
    if not exchange:
        monkeypatch.setattr(swap, "_renameat2", None)
    elif swap._renameat2 is None:
        pytest.skip("renameat2 is not available here")
    for seed in range(4):
        write_files(lake_dir, make_calls(25, seed=seed))
    write_files(lake_dir, make_calls(10, day=DEFAULT_DAY + timedelta(days=1)))
    before = read_partition(lake_dir, DEFAULT_DAY)

    with lake_lock(lake_dir):
        replace_partition(lake_dir, DEFAULT_DAY, before)

    [compacted] = sorted(partition_dir(lake_dir, DEFAULT_DAY).iterdir())
    after = pq.read_table(compacted)
    assert after.num_rows == 100
    assert after["ts"].to_pylist() == sorted(before["ts"].to_pylist())
    assert sorted(after["span_id"].to_pylist()) == sorted(before["span_id"].to_pylist())
    assert read_partition(lake_dir, DEFAULT_DAY + timedelta(days=1)).num_rows == 10  # other days untouched
    assert list((lake_dir / ".staging").iterdir()) == []


def test_replace_partition_creates_a_missing_day_and_removes_an_emptied_one(lake_dir: Path) -> None:
    calls = make_calls(7)
    with lake_lock(lake_dir):
        replace_partition(lake_dir, DEFAULT_DAY, calls)
    assert read_partition(lake_dir, DEFAULT_DAY).num_rows == 7
    with lake_lock(lake_dir):
        replace_partition(lake_dir, DEFAULT_DAY, RECORD_SCHEMA.empty_table())
    assert not partition_dir(lake_dir, DEFAULT_DAY).exists()
    assert list_partitions(lake_dir) == []


def test_replace_partition_refuses_rows_of_another_day(lake_dir: Path) -> None:
    calls = make_calls(20, start=MIDNIGHT, spread=timedelta(hours=1))
    with pytest.raises(ValueError, match=r"do not belong to 2026-03-14"):
        replace_partition(lake_dir, DEFAULT_DAY, calls)
    assert list_partitions(lake_dir) == []


def test_recover_finishes_an_interrupted_fallback_replacement(lake_dir: Path) -> None:
    write_files(lake_dir, make_calls(5, seed=1))
    live = partition_dir(lake_dir, DEFAULT_DAY)
    staging = lake_dir / ".staging"
    staging.mkdir()
    # The crash came between "live -> old" and "new -> live":
    new = staging / "date=2026-03-14.new-abc123abc123"
    new.mkdir()
    pq.write_table(make_calls(9, seed=2), new / "part-new.parquet")
    os.rename(live, staging / "date=2026-03-14.old-abc123abc123")
    # ... and an unfinished file write elsewhere, and a replacement that never got to swap.
    write_files(lake_dir, make_calls(3, day=DEFAULT_DAY + timedelta(days=1)))
    other = partition_dir(lake_dir, DEFAULT_DAY + timedelta(days=1))
    (other / ".part-20260315T000000000000Z-000000000000.parquet.tmp").write_bytes(b"PAR1 half")
    (staging / "date=2026-03-15.new-fff000fff000").mkdir()

    with lake_lock(lake_dir):
        actions = recover(lake_dir)

    assert any("finished the interrupted replacement" in a for a in actions)
    assert read_partition(lake_dir, DEFAULT_DAY).num_rows == 9
    assert read_partition(lake_dir, DEFAULT_DAY + timedelta(days=1)).num_rows == 3
    assert [p.name for p in other.iterdir() if p.name.endswith(".tmp")] == []
    assert list(staging.iterdir()) == []


def test_exclusive_lock_waits_for_shared_holders_and_blocks_new_ones(lake_dir: Path) -> None:
    events: list[str] = []
    shared_held = threading.Event()
    release_shared = threading.Event()

    def flusher() -> None:
        with lake_lock(lake_dir, shared=True):
            events.append("flush start")
            shared_held.set()
            release_shared.wait(5)
            events.append("flush end")

    thread = threading.Thread(target=flusher)
    thread.start()
    shared_held.wait(5)
    with lake_lock(lake_dir, shared=True, timeout=1):
        events.append("second flush")  # shared holders coexist
    with (
        pytest.raises(LakeError, match=r"timed out after 0\.05s waiting for the exclusive lake lock"),
        lake_lock(lake_dir, timeout=0.05),
    ):
        pass
    threading.Timer(0.1, release_shared.set).start()
    with lake_lock(lake_dir, timeout=5):
        events.append("compaction")
        with pytest.raises(LakeError, match="shared"), lake_lock(lake_dir, shared=True, timeout=0.05):
            pass
    thread.join()
    assert events == ["flush start", "second flush", "flush end", "compaction"]


def test_lake_lock_reports_an_unusable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(LakeError, match="cannot open the lake lock"), lake_lock(blocker / "lake"):
        pass


def test_temp_files_are_invisible_to_the_parquet_glob(lake_dir: Path) -> None:
    """DuckDB's glob matches dot-files, so temp names must not end in .parquet at all."""
    write_files(lake_dir, make_calls(5))
    directory = partition_dir(lake_dir, DEFAULT_DAY)
    name = new_file_name()
    temp = directory / f".{name}{TEMP_SUFFIX}"
    temp.write_bytes(b"not parquet")
    glob = f"{table_dir(lake_dir)}/*/*.parquet"
    seen = duckdb.execute(f"SELECT count(*) FROM glob('{glob}')").fetchall()[0][0]
    assert seen == 1


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_every_step_of_a_replacement_shows_readers_the_old_or_the_new_partition(
    lake_dir: Path, monkeypatch: pytest.MonkeyPatch, exchange: bool
) -> None:
    """Probe the lake with DuckDB between every file-system step of replace_partition."""
    if not exchange:
        monkeypatch.setattr(swap, "_renameat2", None)
    elif swap._renameat2 is None:
        pytest.skip("renameat2 is not available here")
    for seed in range(6):
        write_files(lake_dir, make_calls(20, seed=seed))
    write_files(lake_dir, make_calls(8, day=DEFAULT_DAY + timedelta(days=1)))
    totals_query = "SELECT count(*) AS n, count(DISTINCT span_id) AS d, sum(cost_usd) AS usd FROM llm_calls"
    before = run_query(lake_dir, totals_query).to_pylist()
    observed: list[list[dict[str, object]]] = []

    def probe() -> None:
        observed.append(run_query(lake_dir, totals_query).to_pylist())

    real_fsync, real_rename, real_exchange = fsync_path, os.rename, swap.exchange_directories

    def fsync_then_probe(path: Path) -> None:
        real_fsync(path)
        probe()

    def rename_then_probe(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        real_rename(src, dst)
        probe()

    def exchange_then_probe(first: Path, second: Path) -> bool:
        swapped = real_exchange(first, second)
        probe()
        return swapped

    monkeypatch.setattr("otelcost.lake.swap.fsync_path", fsync_then_probe)
    monkeypatch.setattr(os, "rename", rename_then_probe)
    monkeypatch.setattr(swap, "exchange_directories", exchange_then_probe)
    with lake_lock(lake_dir):
        replace_partition(lake_dir, DEFAULT_DAY, read_partition(lake_dir, DEFAULT_DAY))
    monkeypatch.undo()

    assert len(observed) >= 4, "the probes ran between the steps"
    partial = [rows for rows in observed if rows != before]
    if exchange:
        assert partial == []
    else:
        # Between the two renames the day is briefly absent; it is never counted twice.
        other_days = run_query(
            lake_dir, "SELECT sum(cost_usd) AS usd FROM llm_calls WHERE date <> DATE '2026-03-14'"
        )
        assert partial == [[{"n": 8, "d": 8, "usd": other_days["usd"][0].as_py()}]]
    assert run_query(lake_dir, totals_query).to_pylist() == before
    assert len(list(partition_dir(lake_dir, DEFAULT_DAY).iterdir())) == 1


@pytest.mark.parametrize("codec", ["zstd", "snappy", "lz4", "gzip", "none"])
def test_every_configurable_codec_writes_files_duckdb_reads(lake_dir: Path, codec: str) -> None:
    calls = make_calls(50)
    [path] = write_files(lake_dir, calls, compression=codec)
    expected = {"none": "UNCOMPRESSED", "lz4": "LZ4"}.get(codec, codec.upper())
    assert pq.read_metadata(path).row_group(0).column(0).compression.startswith(expected)
    total = run_query(lake_dir, "SELECT sum(cost_usd) AS usd FROM llm_calls")["usd"][0].as_py()
    assert total == sum(calls["cost_usd"].to_pylist())
