"""A process SIGKILLed at an arbitrary moment loses no acknowledged record (and no checkpoint).

The child (``spool_worker.py crash``) appends from concurrent asyncio tasks and prints each seq
once ``append`` has returned it, and each checkpoint once ``checkpoint`` has returned. The parent
kills it mid-run, reopens the spool, and holds it to the contract: every acknowledged seq after
the checkpoint is replayed with exactly its payload, the checkpoint is one that was written, and
the log is contiguous and continues. SIGKILL leaves the page cache intact, so this also holds
with ``fsync: false``; what fsync adds (power loss) cannot be tested without pulling a plug.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from otelcost.spool import Spool, SpoolConfig
from tests.waiting import wait_until

from .spool_worker import KEY, keyed_payload

REPO = Path(__file__).resolve().parents[2]


def run_and_kill(directory: Path, *, fsync: bool, run: int, acks_before_kill: int) -> list[str]:
    """Start the writer, SIGKILL it once it has acknowledged enough, return its complete lines."""
    child = subprocess.Popen(
        [
            *(sys.executable, "-m", "tests.spool.spool_worker", "crash", str(directory)),
            *("fsync" if fsync else "nofsync", "8", str(run)),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    stdout = child.stdout
    lines: list[str] = []
    acks = 0

    def read_a_line_until_enough_acks() -> bool:
        nonlocal acks
        line = stdout.readline()
        if not line:
            raise AssertionError(
                f"writer exited early: {child.wait()} {child.stderr.read() if child.stderr else ''}"
            )
        lines.append(line)
        acks += line.startswith("ack ")
        return acks >= acks_before_kill

    try:
        # Each call blocks until the writer prints a line; the timeout is checked between lines.
        what = f"the writer to acknowledge {acks_before_kill} records"
        wait_until(read_a_line_until_enough_acks, timeout=30, poll=0, what=what)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        # What it printed before dying counts too: it was acknowledged. Read through the same
        # buffered stream readline() used: communicate() reads the pipe's file descriptor and
        # would miss the lines readline() had already buffered (once, an "attempt" line was
        # lost that way and the recovered checkpoint looked like one never attempted).
        lines.extend(stdout.read().splitlines(keepends=True))
        stdout.close()
        if child.stderr is not None:
            child.stderr.close()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    return [line.rstrip("\n") for line in lines if line.endswith("\n")]


@pytest.mark.slow
@pytest.mark.parametrize(("fsync", "rounds"), [(True, 2), (False, 1)])
def test_sigkill_loses_no_acknowledged_record(tmp_path: Path, fsync: bool, rounds: int) -> None:
    directory = tmp_path / "spool"
    acked: dict[int, int] = {}
    confirmed_checkpoints = [0]
    attempted_checkpoints = {0}
    for run in range(rounds):
        for line in run_and_kill(directory, fsync=fsync, run=run, acks_before_kill=300):
            kind, *values = line.split()
            if kind == "ack":
                seq, key = map(int, values)
                assert seq not in acked, f"seq {seq} acknowledged twice"
                acked[seq] = key
            elif kind == "attempt":
                attempted_checkpoints.add(int(values[0]))
            elif kind == "ckpt":
                confirmed_checkpoints.append(int(values[0]))

    spool = Spool(directory, config=SpoolConfig(segment_size=256 * 1024))
    spool.start()
    try:
        checkpoint = spool.checkpointed_seq
        assert checkpoint >= max(confirmed_checkpoints)
        assert checkpoint in attempted_checkpoints
        records = list(spool.replay())
        assert [r.seq for r in records] == list(range(checkpoint + 1, spool.last_seq + 1))
        keys = {}
        for record in records:
            (key,) = KEY.unpack_from(record.payload)
            assert record.payload == keyed_payload(key), f"seq {record.seq} has a damaged payload"
            keys[record.seq] = key
        must_survive = {seq: key for seq, key in acked.items() if seq > checkpoint}
        assert len(must_survive) >= 10, "the kill came too late to test anything"
        lost = {seq for seq in must_survive if keys.get(seq) != must_survive[seq]}
        assert not lost, f"acknowledged records lost or changed: {sorted(lost)[:20]}"
        assert len(set(keys.values())) == len(keys), "a payload was written twice"
        assert spool.append_sync(b"after the crash") == spool.last_seq == max(keys, default=checkpoint) + 1
    finally:
        spool.shutdown()
