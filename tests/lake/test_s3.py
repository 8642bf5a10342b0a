"""The lake on S3 (``lake.root: s3://...``) against moto's S3 server on loopback: the live
writer of two writers, the replay, ``otelcost sql`` and compaction, crash included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from otelcost.cli import main
from otelcost.config import LakeConfig
from otelcost.errors import LakeError
from otelcost.jobs.compact_s3 import compact_s3_lake, compact_s3_partition
from otelcost.jobs.retention_s3 import apply_s3_retention, plan_s3_retention
from otelcost.lake.layout import TABLE_NAME, TABLE_NAMES
from otelcost.lake.query import _is_vanished_file, connect, run_query
from otelcost.lake.s3 import S3Lake, S3ReplayFilter
from otelcost.lake.seqs import SeqSet, WriterSeqs
from otelcost.lake.writer import LakeWriter
from tests.lake.rows import DEFAULT_DAY, make_calls
from tests.lake.s3server import S3Server, moto_s3
from tests.lake.test_shared_root import ROWS_PER_RECORD, ids, record

pytestmark = pytest.mark.slow

A_SEQS = list(range(1, 9))
B_SEQS = [1, 2, 3, 6]


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with moto_s3(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@pytest.fixture
def lake(s3: S3Server) -> S3Lake:
    return s3.new_lake()


def write_records(lake: S3Lake, writer_id: str, seqs: list[int]) -> None:
    """``writer_id``'s records through a real LakeWriter on S3, one object per flush."""
    config = LakeConfig(root=lake.root.url, flush_interval=timedelta(hours=1), writer_id=writer_id)
    writer = LakeWriter(lake_dir=lake, config=config)
    writer.start()
    try:
        for seq in seqs:
            writer.append(record(writer_id, seq), seq=seq)
            writer.flush()
    finally:
        writer.shutdown()


def skipped(lake: S3Lake, writer_id: str) -> list[int]:
    replay = S3ReplayFilter(lake, writer=writer_id)
    return [seq for seq in range(1, 15) if replay.unrecorded(record(writer_id, seq), seq=seq).num_rows == 0]


def expected_ids() -> Counter[tuple[str, str]]:
    tables = [record("a", s) for s in A_SEQS] + [record("b", s) for s in B_SEQS]
    return Counter(ids(pa.concat_tables(tables)))


def lake_ids(lake: S3Lake) -> Counter[tuple[str, str]]:
    return Counter(ids(run_query(lake, "SELECT trace_id, span_id FROM llm_calls")))


def test_two_writers_publish_and_each_replay_skips_its_own(lake: S3Lake) -> None:
    write_records(lake, "a", A_SEQS)
    write_records(lake, "b", B_SEQS)
    assert len(lake.data_files(TABLE_NAME, DEFAULT_DAY)) == len(A_SEQS) + len(B_SEQS)
    assert lake.list_partitions(TABLE_NAME) == [DEFAULT_DAY]
    assert skipped(lake, "a") == A_SEQS
    assert skipped(lake, "b") == B_SEQS
    assert lake.highest_recorded_seq(TABLE_NAMES, writer="b") == 6
    assert lake_ids(lake) == expected_ids()


def test_sql_over_s3_equals_the_rows_written(lake: S3Lake, s3: S3Server, tmp_path: Path) -> None:
    empty = run_query(lake, "SELECT count(*) AS n, count(date) AS days FROM llm_calls")
    assert empty.to_pylist() == [{"n": 0, "days": 0}]  # typed, empty views before any file
    write_records(lake, "a", A_SEQS)
    written = pa.concat_tables([record("a", s) for s in A_SEQS])
    expected = {
        row["team"]: str(row["cost_usd_sum"])
        for row in written.group_by("team").aggregate([("cost_usd", "sum")]).to_pylist()
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "otelcost",
            "sql",
            "--format",
            "json",
            "SELECT team, sum(cost_usd)::VARCHAR AS usd, min(date) AS day FROM llm_calls GROUP BY team",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("OTELCOST_", "AWS_"))},
            **s3.environ,
            "OTELCOST_LAKE__ROOT": lake.root.url,
        },
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {row["team"]: row["usd"] for row in rows} == expected
    assert {row["day"] for row in rows} == {DEFAULT_DAY.isoformat()}
    # The query runner stays locked down on S3: no reading local files.
    with pytest.raises(LakeError, match=r"(?i)permission|disabled"):
        run_query(lake, "SELECT * FROM read_csv('/etc/passwd')")


def test_compaction_merges_both_writers_and_keeps_their_seqs(lake: S3Lake) -> None:
    write_records(lake, "a", A_SEQS)
    write_records(lake, "b", B_SEQS)
    before = lake.partition_writer_seqs(TABLE_NAME, DEFAULT_DAY)
    assert before == WriterSeqs({"a": SeqSet.of(A_SEQS), "b": SeqSet.of(B_SEQS)})
    [result] = compact_s3_lake(lake, min_files=2)
    assert result.rewritten and result.files_before == 12 and result.files_after == 1
    assert result.rows == (len(A_SEQS) + len(B_SEQS)) * ROWS_PER_RECORD
    [merged] = lake.data_files(TABLE_NAME, DEFAULT_DAY)
    assert WriterSeqs.from_metadata(lake.footer(merged)) == before
    assert skipped(lake, "a") == A_SEQS and skipped(lake, "b") == B_SEQS
    assert lake_ids(lake) == expected_ids()
    merged_ts = pq.read_table(merged, filesystem=lake.fs, columns=["ts"])["ts"].to_pylist()
    assert merged_ts == sorted(merged_ts)


def test_a_compaction_killed_between_upload_and_deletes_never_doubles_a_row(lake: S3Lake) -> None:
    write_records(lake, "a", A_SEQS)

    def crash(_: str) -> None:
        raise KeyboardInterrupt  # as a SIGKILL would: nothing after the upload runs

    with pytest.raises(KeyboardInterrupt):
        compact_s3_partition(lake, DEFAULT_DAY, min_files=2, after_upload=crash)
    assert len(lake.data_files(TABLE_NAME, DEFAULT_DAY)) == len(A_SEQS) + 1  # merged and merged-away
    live, replaced = lake.live_files(TABLE_NAME, DEFAULT_DAY)
    assert len(live) == 1 and len(replaced) == len(A_SEQS)
    assert lake_ids(lake) == Counter(ids(pa.concat_tables([record("a", s) for s in A_SEQS])))
    assert skipped(lake, "a") == A_SEQS
    # b flushes meanwhile; the next run deletes the leftovers and merges b's files with the
    # merged one. Nothing is lost, nothing counted twice.
    write_records(lake, "b", B_SEQS)
    [result] = compact_s3_lake(lake, min_files=2)
    assert result.rewritten and len(lake.data_files(TABLE_NAME, DEFAULT_DAY)) == 1
    assert lake_ids(lake) == expected_ids()
    assert skipped(lake, "a") == A_SEQS and skipped(lake, "b") == B_SEQS


def test_otelcost_lake_compact_runs_on_s3(lake: S3Lake, s3: S3Server) -> None:
    write_records(lake, "a", A_SEQS)
    env = {**s3.environ, "OTELCOST_LAKE__ROOT": lake.root.url}
    runner = CliRunner()
    dry = runner.invoke(main, ["lake", "compact", "--min-files", "2", "--dry-run", "-f", "json"], env=env)
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)[0]["compacted"] is False
    assert len(lake.data_files(TABLE_NAME, DEFAULT_DAY)) == len(A_SEQS)
    done = runner.invoke(main, ["lake", "compact", "--min-files", "2", "-f", "json"], env=env)
    assert done.exit_code == 0, done.output
    [row] = json.loads(done.output)
    assert (row["files_before"], row["files_after"], row["compacted"]) == (len(A_SEQS), 1, True)
    assert len(lake.data_files(TABLE_NAME, DEFAULT_DAY)) == 1


def test_a_file_deleted_under_a_bound_view_is_retried_as_a_vanished_file(lake: S3Lake) -> None:
    write_records(lake, "a", [1, 2])
    connection = connect(lake)  # bound: the dataset lists both objects
    lake.delete(lake.data_files(TABLE_NAME, DEFAULT_DAY)[:1])  # as compaction's deletes do
    with pytest.raises(duckdb.Error) as raised:
        connection.sql("SELECT count(*) FROM llm_calls").fetchall()
    connection.close()
    assert _is_vanished_file(raised.value, lake)  # run_query runs such a query again, re-listed
    assert run_query(lake, "SELECT count(*) AS n FROM llm_calls").to_pylist() == [{"n": ROWS_PER_RECORD}]


def test_retention_on_s3_drops_a_day_at_once_even_when_killed_half_way(lake: S3Lake, s3: S3Server) -> None:
    write_records(lake, "a", A_SEQS)  # on DEFAULT_DAY
    recent = DEFAULT_DAY + timedelta(days=8)
    with_recent = LakeWriter(lake_dir=lake, config=LakeConfig(root=lake.root.url, writer_id="b"))
    with_recent.start()
    with_recent.append(make_calls(5, day=recent, seed=99), seq=1)
    with_recent.shutdown()
    now = datetime.combine(DEFAULT_DAY + timedelta(days=10), time(12), tzinfo=UTC)

    dry = plan_s3_retention(lake, timedelta(days=5), now)
    assert [(d.table, d.day, d.files) for d in dry.drops] == [(TABLE_NAME, DEFAULT_DAY, len(A_SEQS))]
    assert len(lake.data_files(TABLE_NAME, DEFAULT_DAY)) == len(A_SEQS)

    def crash(_: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        apply_s3_retention(lake, timedelta(days=5), now, after_marker=crash)
    days = run_query(lake, "SELECT date, count(*) AS n FROM llm_calls GROUP BY date").to_pylist()
    assert days == [{"date": recent, "n": 5}]  # the whole old day is gone for readers already
    env = {**s3.environ, "OTELCOST_LAKE__ROOT": lake.root.url}
    # The command counts from the real now: keep the recent day, drop the old one.
    keep = f"{(datetime.now(UTC).date() - recent).days + 1}d"
    done = CliRunner().invoke(main, ["lake", "retention", "--retention", keep, "-f", "json"], env=env)
    assert done.exit_code == 0, done.output
    assert lake.list_partitions(TABLE_NAME) == [recent]
    assert run_query(lake, "SELECT count(*) AS n FROM llm_calls").to_pylist() == [{"n": 5}]
