"""Lake writer throughput: ``python -m benchmarks.lake_writer_bench [rows]`` (default 200,000).

Feeds a LakeWriter (default LakeConfig: zstd, 122,880-row groups) the rows of ``make_calls`` in
512-row batches, as export requests arrive, then flushes once; prints the time spent in
``consume`` (the receiver's share: no I/O), in the flush (concatenate, split by day, write,
fsync, rename), rows/s, bytes per row on disk, and how long DuckDB takes to sum the result.
Not a timed test: the machine it runs on decides the numbers.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from otelcost.config import LakeConfig
from otelcost.lake.layout import table_dir
from otelcost.lake.query import run_query
from otelcost.lake.writer import LakeWriter
from tests.lake.rows import make_calls

BATCH_ROWS = 512


def main(rows: int) -> None:
    calls = make_calls(rows, seed=1)
    batches = [calls.slice(offset, BATCH_ROWS) for offset in range(0, rows, BATCH_ROWS)]
    config = LakeConfig(flush_interval=timedelta(hours=1), max_buffer_rows=rows + 1)
    with tempfile.TemporaryDirectory() as scratch:
        lake_dir = Path(scratch) / "lake"
        writer = LakeWriter(lake_dir=lake_dir, config=config)
        writer.start()
        started = time.perf_counter()
        for batch in batches:
            writer.consume(batch)
        consumed = time.perf_counter() - started
        writer.flush()
        flushed = time.perf_counter() - started - consumed
        writer.shutdown()
        files = sorted(table_dir(lake_dir).glob("*/*.parquet"))
        size = sum(f.stat().st_size for f in files)
        started = time.perf_counter()
        run_query(lake_dir, "SELECT team, sum(cost_usd), sum(input_tokens) FROM llm_calls GROUP BY 1")
        queried = time.perf_counter() - started

    per_batch_us = consumed / len(batches) * 1e6
    memory_mb = calls.nbytes / 1e6
    print(f"rows     {rows:>10,}    {len(batches)} batches of {BATCH_ROWS}, {memory_mb:.0f} MB in memory")
    print(
        f"consume  {consumed:>10.3f} s  {rows / consumed:,.0f} rows/s, {per_batch_us:.0f} µs a batch (no I/O)"
    )
    print(f"flush    {flushed:>10.3f} s  {rows / flushed:,.0f} rows/s (concatenate, split, write, fsync)")
    print(f"files    {len(files):>10}    {size / 1e6:.1f} MB, {size / rows:.0f} bytes per row")
    print(f"query    {queried:>10.3f} s  DuckDB sum by team over every row, fresh connection")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
