"""A writer of a lake on S3 SIGKILLed mid-upload, restarted and replayed: every row once.

The writer runs in its own process against moto's S3 server, flushing 500-row records one by
one (uploads take long enough for the kill to land inside some of them), a few records behind
what it reports as spooled. After the kill every listed object must read whole (an upload cut
off is never visible), and the restarted writer's replay must leave each row in the lake exactly
once, next to another writer's rows under the same seqs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from otelcost.config import LakeConfig
from otelcost.lake.layout import TABLE_NAME
from otelcost.lake.query import run_query
from otelcost.lake.writer import LakeWriter
from tests.lake.rows import DEFAULT_DAY, make_calls
from tests.lake.s3server import S3Server, moto_s3
from tests.lake.test_shared_root import ids

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
AHEAD = 2
ROWS = 500
B_SEQS = 150
CHILD = """
import sys
from datetime import timedelta
from otelcost.config import LakeConfig
from otelcost.lake.s3 import open_s3_lake
from otelcost.lake.writer import LakeWriter
from tests.lake.test_s3_crash import big_record

url, ahead = sys.argv[1], int(sys.argv[2])
writer = LakeWriter(lake_dir=open_s3_lake(url), config=LakeConfig(root=url, writer_id="a",
                    flush_interval=timedelta(hours=1)))
writer.start()
for seq in range(1, ahead + 1):
    print(seq, flush=True)
for seq in range(1, 100_000):
    print(seq + ahead, flush=True)  # spooled: the restart replays it
    writer.append(big_record("a", seq), seq=seq)
    writer.flush()
"""


def big_record(writer: str, seq: int) -> pa.Table:
    return make_calls(ROWS, seed=(zlib.crc32(writer.encode()) << 20) + seq)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with moto_s3(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


def test_a_killed_s3_writer_publishes_no_partial_object_and_replays_exactly(s3: S3Server) -> None:
    lake = s3.new_lake()
    config = LakeConfig(root=lake.root.url, flush_interval=timedelta(hours=1))
    other = LakeWriter(lake_dir=lake, config=config.model_copy(update={"writer_id": "b"}))
    other.start()
    for seq in range(1, B_SEQS + 1):  # b is ahead: its seqs cover every seq a owes the lake
        other.append(big_record("b", seq), seq=seq)
    other.flush()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, lake.root.url, str(AHEAD)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **s3.environ},
    )
    assert child.stdout is not None
    with child.stdout:
        first = child.stdout.readline()
        time.sleep(1.0)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        spooled = [int(line) for line in [first, *child.stdout.readlines()]]
    assert len(spooled) > AHEAD + 2, "the writer flushed too little before the kill"
    assert max(spooled) < B_SEQS, "b's seqs must cover a's for the test to prove anything"
    for path in lake.data_files(TABLE_NAME, DEFAULT_DAY):  # every visible object is whole
        assert pq.read_table(path, filesystem=lake.fs).num_rows in (ROWS, B_SEQS * ROWS)

    restarted = LakeWriter(lake_dir=lake, config=config.model_copy(update={"writer_id": "a"}))
    restarted.start()
    replayed = 0
    for seq in spooled:
        fresh = restarted.unrecorded(big_record("a", seq), seq=seq)
        if fresh.num_rows:
            replayed += 1
            restarted.append(fresh, seq=seq)
    restarted.shutdown()
    other.shutdown()

    in_lake = Counter(ids(run_query(lake, "SELECT trace_id, span_id FROM llm_calls")))
    expected = Counter(
        ids(
            pa.concat_tables(
                [big_record("a", s) for s in spooled] + [big_record("b", s) for s in range(1, B_SEQS + 1)]
            )
        )
    )
    assert in_lake == expected, f"missing {len(expected - in_lake)}, twice {len(in_lake - expected)}"
    assert AHEAD <= replayed < len(spooled), f"replayed {replayed} of {len(spooled)}"
