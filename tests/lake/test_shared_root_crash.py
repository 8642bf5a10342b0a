"""A writer of a shared lake root SIGKILLed mid-flush, restarted, replayed: every row once.

Writer ``a`` runs in its own process and flushes record after record; it says which records it
spooled (a few records ahead of the lake, as the pipeline's spool is ahead of the lake's
buffer) and is killed with SIGKILL while it writes. Meanwhile writer ``b`` publishes records
with the same seqs (and more: it started first) from this process, and compaction merges both
writers' files. The restarted ``a`` repairs the lake (``recover``) and replays every record it
had spooled: afterwards each row of both writers is in the lake exactly once. With one shared
set of seqs, ``a``'s replay would skip the seqs ``b`` recorded and lose rows.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pyarrow as pa

from otelcost.config import LakeConfig
from otelcost.jobs.compact import compact_lake
from otelcost.lake.layout import read_partition
from otelcost.lake.writer import LakeWriter
from tests.lake.rows import DEFAULT_DAY
from tests.lake.test_shared_root import ids, record, write_records

pytestmark = __import__("pytest").mark.slow

REPO = Path(__file__).resolve().parents[2]
AHEAD = 3
B_HEAD_START = 1_000
CHILD = """
import sys
from datetime import timedelta
from pathlib import Path
from otelcost.config import LakeConfig
from otelcost.lake.writer import LakeWriter
from tests.lake.test_shared_root import record

root, AHEAD = Path(sys.argv[1]), int(sys.argv[2])
lake = LakeWriter(lake_dir=root, config=LakeConfig(root=str(root), flush_interval=timedelta(hours=1)),
                  writer_id="a")
lake.start()
# The spool runs AHEAD records ahead of the lake, as a buffering lake writer does: whenever the
# kill lands, the restart has records to replay.
for seq in range(1, AHEAD + 1):
    print(seq, flush=True)
for seq in range(1, 100_000):
    print(seq + AHEAD, flush=True)  # spooled: a restart replays it
    lake.append(record("a", seq), seq=seq)
    lake.flush()
"""


def test_a_killed_writer_replays_its_own_records_and_nothing_else(tmp_path: Path) -> None:
    root = tmp_path / "shared-lake"
    # b started long before a, so its numbering is ahead: every seq a still owes the lake after
    # the kill is one that b's files name.
    b_written = list(range(1, B_HEAD_START + 1))
    write_records(root, "b", b_written, flush_each=False)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), str(AHEAD)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    stop = threading.Event()

    def writer_b() -> None:
        while not stop.is_set():
            seqs = list(range(len(b_written) + 1, len(b_written) + 51))
            write_records(root, "b", seqs, flush_each=False)
            b_written.extend(seqs)

    def compactor() -> None:
        while not stop.is_set():
            compact_lake(root, min_files=4, lock_timeout=10)
            time.sleep(0.05)

    threads = [threading.Thread(target=writer_b), threading.Thread(target=compactor)]
    try:
        first = child.stdout.readline()
        assert first.strip() == "1", first
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        if child.poll() is None:
            child.kill()
    with child.stdout:
        spooled = [int(line) for line in [first, *child.stdout.readlines()]]
    assert len(spooled) > 3 and len(b_written) > 3, "too little happened before the kill"
    assert max(b_written) > max(spooled), "b's seqs must cover a's for the test to prove anything"

    restarted = LakeWriter(
        lake_dir=root, config=LakeConfig(root=str(root), flush_interval=timedelta(hours=1)), writer_id="a"
    )
    restarted.start()
    replayed = 0
    for seq in spooled:
        fresh = restarted.unrecorded(record("a", seq), seq=seq)
        if fresh.num_rows:
            replayed += 1
            restarted.append(fresh, seq=seq)
    restarted.shutdown()
    compact_lake(root, min_files=2)

    in_lake = Counter(ids(read_partition(root, DEFAULT_DAY)))
    expected = Counter(
        ids(pa.concat_tables([record("a", s) for s in spooled] + [record("b", s) for s in b_written]))
    )
    assert in_lake == expected, (
        f"missing {len(expected - in_lake)}, extra or twice {len(in_lake - expected)}"
        f" (a spooled {len(spooled)}, replayed {replayed}; b wrote {len(b_written)})"
    )
    assert AHEAD <= replayed < len(spooled), f"replayed {replayed} of {len(spooled)}"
