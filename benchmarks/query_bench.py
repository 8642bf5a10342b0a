"""The three everyday queries over a 10-million-row lake, before and after compaction.

Run::

    python -m benchmarks.query_bench                  # 10M rows, ~5 minutes on 2 cores
    python -m benchmarks.query_bench --rows 1000000   # quicker

The lake is written by the pipeline's own writer (``otelcost.lake.writer.LakeWriter``: the same
split by day, sort, zstd, row groups, tmp+fsync+rename as ``otelcost serve``), fed with synthetic
priced ``RECORD_SCHEMA`` batches built column-wise with numpy (8 distinct batches of rows,
reused with fresh timestamps): pushing 10M spans through the
receivers, normalizer and pricer would take the better part of an hour on 2 cores (see
docs/benchmarks.md). Rows are in time order over the last 30 days, 20 teams, 1,000 users, 50,000
sessions, 5 models; the ``attributes`` and ``resource_attributes`` maps are left NULL (no query
here reads them; DuckDB reads only the columns a query names).

Two layouts of the same rows:

* **small files**: a flush every ``--small-file-rows`` rows (5,000 by default: a 2 s flush
  interval at 2,500 calls/s), i.e. what a long-running server leaves behind;
* **after compaction**: the same lake after ``otelcost.jobs.compact.compact_lake`` with the
  default ``lake.compaction`` settings (what ``otelcost lake compact`` and the server's
  background compaction do): each day's files under 256 MiB merged into one file sorted by
  ``ts``, so one file per day here.

Each query runs through ``otelcost.lake.query.run_query`` (a fresh DuckDB connection with the
``llm_calls`` view, as ``otelcost sql`` does), once to warm the page cache, then ``--repeat``
times; the median is printed, with the files and row groups in the partitions the query reads
(from the Parquet footers: the date filter prunes whole partitions) and the peak RSS of the
process that ran the queries (a fresh one per layout).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.harness import peak_rss_bytes

QUERIES: Final = {
    "spend by team this month": """
        SELECT team, sum(cost_usd) AS cost FROM llm_calls
        WHERE date >= date_trunc('month', current_date) GROUP BY team ORDER BY cost DESC""",
    "top 20 users by cost": """
        SELECT user_id, sum(cost_usd) AS cost FROM llm_calls
        GROUP BY user_id ORDER BY cost DESC LIMIT 20""",
    "p95 cost per session": """
        SELECT quantile_cont(cost, 0.95) AS p95 FROM (
            SELECT session_id, sum(cost_usd) AS cost FROM llm_calls
            WHERE session_id IS NOT NULL GROUP BY session_id)""",
}
MODELS: Final = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "claude-sonnet-4", "claude-3-5-haiku")
DAYS: Final = 30


def _batch(rng: np.random.Generator, rows: int, start_us: int, step_us: int) -> pa.Table:
    from otelcost.money import pico_to_decimal_array  # noqa: PLC0415
    from otelcost.schema import RECORD_SCHEMA  # noqa: PLC0415

    ts_values = start_us + np.arange(rows, dtype=np.int64) * step_us
    ts = pa.array(ts_values, pa.timestamp("us", tz="UTC"))
    ids = rng.integers(0, 2**63, size=(rows, 3), dtype=np.int64)
    users = rng.integers(0, 1000, size=rows)
    model_index = rng.integers(0, len(MODELS), size=rows)
    input_tokens = rng.integers(200, 6000, size=rows)
    output_tokens = rng.integers(20, 1200, size=rows)
    cost_pico = input_tokens * 2_500_000 + output_tokens * 10_000_000  # $2.5 / $10 per Mtok
    text = pa.array([f"{a:016x}{b:016x}" for a, b in ids[:, :2].tolist()])
    columns: dict[str, Any] = {field.name: pa.nulls(rows, field.type) for field in RECORD_SCHEMA}
    zero = pico_to_decimal_array(np.zeros(rows, dtype=np.int64))
    models = pa.array(np.array(MODELS, dtype=object)[model_index], pa.string())
    columns |= {
        "ts": ts,
        "end_ts": ts,
        "received_at": ts,
        "duration_ms": pa.array(rng.uniform(200, 8000, size=rows)),
        "trace_id": text,
        "span_id": pa.array([f"{c:016x}" for c in ids[:, 2].tolist()]),
        "span_name": pa.array(["chat"] * rows),
        "service": pa.array([f"svc-{u % 8}" for u in users.tolist()]),
        "provider": pa.array(np.where(model_index < 3, "openai", "anthropic").tolist()),
        "operation": pa.array(["chat"] * rows),
        "request_model": models,
        "response_model": models,
        "model": models,
        "service_tier": pa.array(["standard"] * rows),
        "input_tokens": pa.array(input_tokens),
        "output_tokens": pa.array(output_tokens),
        "cache_read_tokens": pa.array(np.zeros(rows, dtype=np.int64)),
        "cache_write_tokens": pa.array(np.zeros(rows, dtype=np.int64)),
        "reasoning_tokens": pa.array(np.zeros(rows, dtype=np.int64)),
        "cost_usd": pico_to_decimal_array(cost_pico),
        "effective_cost_usd": pico_to_decimal_array(cost_pico),
        "input_cost_usd": pico_to_decimal_array(input_tokens * 2_500_000),
        "output_cost_usd": pico_to_decimal_array(output_tokens * 10_000_000),
        "cache_read_cost_usd": zero,
        "cache_write_cost_usd": zero,
        "reasoning_cost_usd": zero,
        "pricing_status": pa.array(["priced"] * rows),
        "team": pa.array([f"team-{u % 20:02d}" for u in users.tolist()]),
        "feature": pa.array([f"feature-{f:02d}" for f in rng.integers(0, 40, size=rows).tolist()]),
        "user_id": pa.array([f"user-{u:04d}" for u in users.tolist()]),
        "session_id": pa.array([f"session-{s:05d}" for s in rng.integers(0, 50_000, size=rows).tolist()]),
        "attribution_status": pa.array(["complete"] * rows),
        "status": pa.array(["ok"] * rows),
    }
    return pa.Table.from_arrays([columns[f.name] for f in RECORD_SCHEMA], schema=RECORD_SCHEMA)


def write_lake(
    lake_dir: Path,
    rows: int,
    rows_per_file: int,
    *,
    days: int = DAYS,
    end: datetime | None = None,
    make_batch: Callable[[np.random.Generator, int, int, int], pa.Table] = _batch,
    vary: Callable[[pa.Table, int], pa.Table] | None = None,
) -> tuple[float, int]:
    """``rows`` calls over the ``days`` before ``end`` (default now) through LakeWriter, flushed
    every ``rows_per_file``. ``make_batch`` builds the reused batches; ``vary(batch, n)``, if
    given, changes the ``n``-th flush's copy (benchmarks.report_bench makes its ids unique)."""
    from otelcost.config import LakeConfig  # noqa: PLC0415
    from otelcost.lake.writer import LakeWriter  # noqa: PLC0415

    writer = LakeWriter(lake_dir=lake_dir, config=LakeConfig(max_buffer_rows=max(rows_per_file, 1)))
    rng = np.random.default_rng(7)
    start = (end or datetime.now(UTC)) - timedelta(days=days)
    start_us = int(start.timestamp() * 1e6)
    step_us = max(1, int(days * 86_400 * 1e6 / rows))
    # Building string columns row by row costs more than writing them: build 8 batches of
    # distinct rows once and reuse them with new timestamps (ids repeat; no query here cares).
    templates = [make_batch(rng, rows_per_file, 0, 1) for _ in range(8)]
    ts_index = [templates[0].schema.get_field_index(name) for name in ("ts", "end_ts", "received_at")]
    ts_type = pa.timestamp("us", tz="UTC")
    started = time.perf_counter()
    done = 0
    while done < rows:
        size = min(rows_per_file, rows - done)
        batch = templates[(done // rows_per_file) % len(templates)].slice(0, size)
        ts = pa.array(start_us + (done + np.arange(size, dtype=np.int64)) * step_us, ts_type)
        for index in ts_index:
            batch = batch.set_column(index, batch.schema.field(index), ts)
        if vary is not None:
            batch = vary(batch, done // rows_per_file)
        writer.consume(batch)
        writer.flush()
        done += size
    elapsed = time.perf_counter() - started
    return elapsed, writer.files_written


def compact(lake_dir: Path) -> tuple[float, int, int]:
    """``otelcost lake compact`` with the default settings (``lake.compaction``): merge each
    day's files under 256 MiB into one once there are 32 of them. Returns the seconds and the
    files before and after."""
    from otelcost.config import LakeConfig  # noqa: PLC0415
    from otelcost.jobs.compact import compact_lake  # noqa: PLC0415

    config = LakeConfig()
    started = time.perf_counter()
    results = compact_lake(
        lake_dir,
        target_file_size=config.compaction.target_file_size,
        min_files=config.compaction.min_files,
        compression=config.compression,
        row_group_size=config.row_group_size,
    )
    seconds = time.perf_counter() - started
    return seconds, sum(r.files_before for r in results), sum(r.files_after for r in results)


def _files_read(lake_dir: Path, since: date | None) -> tuple[int, int]:
    files = row_groups = 0
    for path in sorted((lake_dir / "llm_calls").glob("date=*/*.parquet")):
        day = date.fromisoformat(path.parent.name.removeprefix("date="))
        if since is None or day >= since:
            files += 1
            row_groups += pq.ParquetFile(path).metadata.num_row_groups
    return files, row_groups


def _run_queries(lake_dir: str, repeat: int, results: Any) -> None:
    from otelcost.lake.query import run_query  # noqa: PLC0415

    today = datetime.now(UTC).date()
    figures = {}
    for name, sql in QUERIES.items():
        run_query(Path(lake_dir), sql)  # warm the page cache and DuckDB's import
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            run_query(Path(lake_dir), sql)
            times.append(time.perf_counter() - started)
        since = today.replace(day=1) if "this month" in name else None
        figures[name] = (statistics.median(times), *_files_read(Path(lake_dir), since))
    import os  # noqa: PLC0415

    results.put((figures, peak_rss_bytes(os.getpid())))


def measure(lake_dir: Path, repeat: int) -> tuple[dict[str, tuple[float, int, int]], int]:
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    child = ctx.Process(target=_run_queries, args=(str(lake_dir), repeat, results))
    child.start()
    figures, rss = results.get(timeout=3600)
    child.join()
    return figures, rss


def _report(label: str, figures: dict[str, tuple[float, int, int]], rss: int) -> None:
    print(f"-- {label} (query process peak RSS {rss / 2**20:.0f} MiB)")
    for name, (seconds, files, row_groups) in figures.items():
        print(f"  {name:28} {seconds:7.3f} s   {files:5} files, {row_groups:5} row groups")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--small-file-rows", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="write the lake here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="otelcost-query-") as scratch:
        lake_dir = args.keep or Path(scratch) / "lake"
        seconds, files = write_lake(lake_dir, args.rows, args.small_file_rows)
        size = sum(p.stat().st_size for p in lake_dir.rglob("*.parquet"))
        print(
            f"wrote {args.rows:,} rows in {files} files ({size / 2**20:.0f} MiB) with LakeWriter "
            f"in {seconds:.0f} s ({args.rows / seconds:,.0f} rows/s)"
        )
        figures, rss = measure(lake_dir, args.repeat)
        _report(f"small files ({args.small_file_rows:,} rows per flush)", figures, rss)
        seconds, before, after = compact(lake_dir)
        size = sum(p.stat().st_size for p in lake_dir.rglob("*.parquet"))
        print(
            f"compacted {before} files to {after} with otelcost.jobs.compact.compact_lake in "
            f"{seconds:.0f} s ({size / 2**20:.0f} MiB)"
        )
        figures, rss = measure(lake_dir, args.repeat)
        _report("after compaction (lake.compaction defaults)", figures, rss)


if __name__ == "__main__":
    main()
