"""Child processes for the spool tests: ``python -m tests.spool.spool_worker MODE DIRECTORY ...``.

``crash``  appends forever from concurrent asyncio tasks and prints every acknowledgement, so the
           parent can SIGKILL it at any instant and check that every acknowledged record survives.
``efbig``  lowers RLIMIT_FSIZE so that the kernel refuses writes past a size (EFBIG, the same
           short-write-then-error path as a full disk) and reports how the spool behaved, as JSON.
"""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import struct
import sys
from pathlib import Path
from typing import Any

from otelcost.errors import TransientIngestError
from otelcost.spool import Spool, SpoolConfig
from tests.spool.conftest import payload_for

KEY = struct.Struct("<Q")


def keyed_payload(key: int) -> bytes:
    """The key, then deterministic bytes of a size that varies with it (crossing segment sizes)."""
    return KEY.pack(key) + payload_for(key, (key * 7919) % 40_000)


async def crash(directory: Path, fsync: bool, appenders: int, run: int) -> None:
    spool = Spool(directory, config=SpoolConfig(segment_size=256 * 1024, fsync=fsync))
    spool.start()
    acked: list[int] = []

    def emit(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    async def appender(worker: int) -> None:
        for i in range(10**9):
            key = run * 10**8 + worker * 10**6 + i
            seq = await spool.append(keyed_payload(key))
            emit(f"ack {seq} {key}")
            acked.append(seq)
            if worker == 0 and i % 40 == 39:
                # Stand in for the lake: confirm everything but the newest records.
                target = max(acked) - 30
                emit(f"attempt {target}")
                spool.checkpoint(target)
                emit(f"ckpt {target}")

    emit(f"started {spool.last_seq}")
    await asyncio.gather(*(appender(n) for n in range(appenders)))


def efbig(directory: Path) -> dict[str, Any]:
    report: dict[str, Any] = {}
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write() instead of dying
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    spool = Spool(directory, config=SpoolConfig(segment_size=64 * 1024))
    spool.start()
    for key in range(1, 6):
        spool.append_sync(payload_for(key, 10_000))
    (segment,) = sorted(directory.glob("*.seg"))
    good_size = segment.stat().st_size
    # The next 10 020-byte record gets 5 000 bytes in, then the kernel refuses the rest.
    resource.setrlimit(resource.RLIMIT_FSIZE, (good_size + 5000, hard))
    try:
        asyncio.run(spool.append(payload_for(6, 10_000)))
        report["first"] = "accepted"
    except TransientIngestError as exc:
        report["first"] = f"{type(exc).__name__}: {exc}"
        report["first_cause"] = repr(exc.__cause__)
    report["size_after_failure"] = segment.stat().st_size
    report["good_size"] = good_size
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    report["retry_seq"] = spool.append_sync(payload_for(6, 10_000))
    # Fill the segment, then fail the roll: the new segment's 24-byte header cannot be written.
    while spool.last_seq < 12:
        spool.append_sync(payload_for(spool.last_seq + 1, 10_000))
    segments_before = sorted(p.name for p in directory.glob("*.seg"))
    resource.setrlimit(resource.RLIMIT_FSIZE, (10, hard))
    try:
        spool.append_sync(payload_for(13, 10_000))
        report["roll"] = "accepted"
    except TransientIngestError as exc:
        report["roll"] = f"{type(exc).__name__}: {exc}"
    report["segments_after_failed_roll"] = sorted(p.name for p in directory.glob("*.seg")) == segments_before
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    report["roll_retry_seq"] = spool.append_sync(payload_for(13, 10_000))
    report["refused_io"] = spool.refused_io
    spool.shutdown()
    reopened = Spool(directory, config=SpoolConfig(segment_size=64 * 1024))
    reopened.start()
    records = list(reopened.replay())
    report["replayed"] = [r.seq for r in records]
    report["payloads_ok"] = all(r.payload == payload_for(r.seq, 10_000) for r in records)
    report["torn_bytes_dropped"] = reopened.recovery.torn_bytes_dropped if reopened.recovery else None
    reopened.shutdown()
    return report


def main() -> None:
    mode, directory = sys.argv[1], Path(sys.argv[2])
    if mode == "crash":
        asyncio.run(
            crash(directory, fsync=sys.argv[3] == "fsync", appenders=int(sys.argv[4]), run=int(sys.argv[5]))
        )
    elif mode == "efbig":
        print(json.dumps(efbig(directory)))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
