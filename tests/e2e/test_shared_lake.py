"""Two ``otelcost serve`` processes, one ``lake.root``: SIGKILL one under load, and every span
acknowledged by either is in the shared lake exactly once.

Each process has its own data directory (so its own spool, numbered from 1) and its own writer
id (``a``'s generated into ``<data_dir>/lake-writer-id`` at its first start, ``b``'s set by
``lake.writer_id``); both flush into one lake root and both run background compaction on it every
half second, so the day's files are merged across writers while the load runs. Sender threads
(``tests/e2e/test_crash.py``'s ``Load``: real gRPC clients, fresh random ids, never a retry) drive
both. Process ``a`` is killed with SIGKILL mid-load and restarted on the same data directory
while ``b`` goes on (its numbering passes ``a``'s meanwhile, so a replay that read ``b``'s seqs as
its own would skip records the lake lacks). After both stop cleanly:

* every acknowledged span is in the lake, no (trace_id, span_id) is there twice (no sender
  retries, so not even a lost ack may duplicate one), and nothing is there that was not sent;
* the restarted ``a`` did replay records, and ``a`` and ``b`` both wrote files.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from otelcost.lake.layout import data_files, list_partitions, partition_dir
from otelcost.lake.seqs import read_file_writer_seqs
from otelcost.lake.writers import WRITER_ID_FILE
from tests.e2e.test_crash import Load, metric, sql, start_serve
from tests.e2e.test_serve_process import free_port

pytestmark = pytest.mark.slow

LOAD_SECONDS = 2.0
CONFIG = """
lake:
  root: {root}
  flush_interval: 300ms
  compaction: {{interval: 500ms, min_files: 3}}
"""


def test_two_writers_share_a_lake_and_a_killed_one_loses_and_duplicates_nothing(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    root = tmp_path / "shared-lake"
    configs, data_dirs, ports = {}, {}, {}
    for name in ("a", "b"):
        configs[name] = tmp_path / f"{name}.yaml"
        configs[name].write_text(CONFIG.format(root=root))
        data_dirs[name] = tmp_path / f"data-{name}"
        ports[name] = {"grpc": free_port(), "http": free_port(), "api": free_port()}
    log = tmp_path / "serve.log"
    # a's writer id is generated into its data directory; b's is configured.
    configs["b"].write_text(configs["b"].read_text() + "  writer_id: writer-b\n")
    a = start_serve(configs["a"], data_dirs["a"], ports["a"], log)
    processes.append(a)
    b = start_serve(configs["b"], data_dirs["b"], ports["b"], log)
    processes.append(b)

    load_a, load_b = Load(ports["a"]["grpc"]), Load(ports["b"]["grpc"])
    load_a.start()
    load_b.start()
    time.sleep(LOAD_SECONDS)
    written_before = metric(ports["a"]["api"], "otelcost_lake_rows_written_total")
    a.send_signal(signal.SIGKILL)
    a.wait(timeout=10)
    load_a.stop()
    assert written_before > 0, "a flushed nothing before the kill: the test proves too little"
    assert len(load_a.acked) > written_before, "a acknowledged nothing after its last flush"

    restarted = start_serve(configs["a"], data_dirs["a"], ports["a"], log)
    processes.append(restarted)
    replayed = metric(ports["a"]["api"], "otelcost_spool_replayed_records_total")
    load_b.stop()
    for process in (restarted, b):
        process.send_signal(signal.SIGTERM)
    for process in (restarted, b):
        process.wait(timeout=30)
        assert process.returncode == 0, log.read_text()

    rows = sql(configs["b"], "SELECT trace_id, span_id FROM llm_calls")
    in_lake = [(row["trace_id"], row["span_id"]) for row in rows]
    unique = set(in_lake)
    acked = load_a.acked | load_b.acked
    missing = acked - unique
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged spans are not in the lake"
    assert len(in_lake) == len(unique), f"{len(in_lake) - len(unique)} duplicate rows in the lake"
    assert unique <= load_a.sent | load_b.sent
    writers = {
        writer
        for day in list_partitions(root)
        for path in data_files(partition_dir(root, day))
        for writer in read_file_writer_seqs(path).writers()
    }
    a_id = (data_dirs["a"] / WRITER_ID_FILE).read_text().strip()  # kept across the SIGKILL
    assert writers == {a_id, "writer-b"}
    assert not (data_dirs["b"] / WRITER_ID_FILE).exists()
    assert replayed > 0, "the restarted a replayed nothing: the kill proves too little"
    print(  # the numbers the report quotes (pytest -s)
        f"\nacked a={len(load_a.acked)} b={len(load_b.acked)} in_lake={len(in_lake)} duplicates=0 "
        f"failed_calls a={load_a.failed_calls} b={load_b.failed_calls} "
        f"a_written_before_kill={int(written_before)} replayed={int(replayed)}"
    )
