"""Spool append throughput and latency: 64 KiB payloads, fsync on/off, 1 and 16 asyncio appenders.

Run from the repository root::

    .venv/bin/python benchmarks/spool_bench.py [--dir DIR] [--seconds 2.5]

``--dir`` should be on the disk the spool will use in production (the spool lives under
``<data_dir>/spool``): fsync latency is a property of the device, and /tmp may be a tmpfs where
fsync costs nothing. Each case opens a fresh spool, runs its appenders for ``--seconds``, and a
stand-in for the lake checkpoints every 100 ms, as the pipeline would after each lake flush.
Latency is measured around ``await spool.append(...)``: from the call to the durable ack.
The figures in docs/durability.md come from this script.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from otelcost.spool import Spool, SpoolConfig

PAYLOAD_SIZE = 64 * 1024


@dataclass(frozen=True)
class Case:
    fsync: bool
    appenders: int
    commit_interval: str = "0ms"

    @property
    def label(self) -> str:
        fsync = "on " if self.fsync else "off"
        return f"fsync={fsync} appenders={self.appenders:<2} window={self.commit_interval}"


CASES = [
    Case(fsync=True, appenders=1),
    Case(fsync=True, appenders=16),
    Case(fsync=False, appenders=1),
    Case(fsync=False, appenders=16),
    # How much a group-commit window buys, and what it costs a lone appender.
    Case(fsync=True, appenders=16, commit_interval="1ms"),
    Case(fsync=True, appenders=16, commit_interval="2ms"),
    Case(fsync=True, appenders=1, commit_interval="2ms"),
]


@dataclass(frozen=True)
class Result:
    case: Case
    appends: int
    seconds: float
    latencies: list[float]
    fsyncs: int
    commits: int

    def row(self) -> str:
        rate = self.appends / self.seconds
        ordered = sorted(self.latencies)
        p50 = ordered[len(ordered) // 2] * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        per_commit = f"{self.appends / self.commits:.1f}" if self.commits else "-"
        return (
            f"{self.case.label:<40} {rate:>9,.0f} {rate * PAYLOAD_SIZE / 2**20:>8,.0f} "
            f"{p50:>8.3f} {p99:>8.3f} {statistics.fmean(ordered) * 1000:>8.3f} "
            f"{self.fsyncs / self.seconds:>8,.0f} {per_commit:>10}"
        )


async def run_case(case: Case, directory: Path, seconds: float) -> Result:
    spool = Spool(directory, config=SpoolConfig(fsync=case.fsync, commit_interval=case.commit_interval))
    spool.start()
    payload = os.urandom(PAYLOAD_SIZE)
    latencies: list[float] = []
    acked = 0
    stop = asyncio.Event()

    async def appender() -> None:
        nonlocal acked
        while not stop.is_set():
            started = time.perf_counter()
            seq = await spool.append(payload)
            latencies.append(time.perf_counter() - started)
            acked = max(acked, seq)
            # With fsync off, append returns without suspending; let the other tasks run.
            await asyncio.sleep(0)

    async def lake() -> None:
        while not stop.is_set():
            await asyncio.sleep(0.1)
            if acked:
                # The pipeline checkpoints from the lake writer's thread, never the event loop.
                await asyncio.to_thread(spool.checkpoint, acked)

    try:
        started = time.perf_counter()
        tasks = [asyncio.create_task(appender()) for _ in range(case.appenders)]
        tasks.append(asyncio.create_task(lake()))
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    finally:
        stats = spool.stats()
        spool.shutdown()
    return Result(case, len(latencies), elapsed, latencies, stats.fsyncs, stats.commits)


def filesystem_of(path: Path) -> str:
    best = ("?", "")
    with open("/proc/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            device, mount_point, fs_type, *_ = line.split()
            if str(path.resolve()).startswith(mount_point) and len(mount_point) > len(best[1]):
                best = (f"{fs_type} on {device}", mount_point)
    return best[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dir", type=Path, default=None, help="Where to create the spools (default: temp dir)."
    )
    parser.add_argument("--seconds", type=float, default=2.5, help="Duration of each case.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="spool-bench-") as root:
        base = Path(root)
        fs = filesystem_of(base) if sys.platform == "linux" else "?"
        print(f"spool bench: {PAYLOAD_SIZE // 1024} KiB payloads, {args.seconds:g} s per case")
        print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {base} ({fs})\n")
        print(
            f"{'case':<40} {'appends/s':>9} {'MiB/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
            f"{'fsyncs/s':>8} {'per commit':>10}"
        )
        for index, case in enumerate(CASES):
            result = asyncio.run(run_case(case, base / f"case{index}", args.seconds))
            print(result.row(), flush=True)


if __name__ == "__main__":
    main()
