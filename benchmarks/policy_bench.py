"""The policy endpoint under load: ``/v1/check`` and 304 polls of ``/v1/decisions``.

Run::

    python -m benchmarks.policy_bench               # 10 s per phase, 64 connections

``otelcost serve`` runs as a subprocess (its API listener is one asyncio event loop: one core)
with four budgets over 20 teams and 1,000 users. Load comes from another process, a minimal
HTTP/1.1 keep-alive client on raw asyncio streams (much cheaper per request than aiohttp's
client, so the server is what is measured), ``--connections`` requests in flight:

1. ``GET /v1/check?team=..&user_id=..&feature=..`` with varying dimensions: requests/s and
   p50/p99 latency (send -> whole response read);
2. the same against ``GET /v1/decisions?wait=0`` with ``If-None-Match`` of the current snapshot
   (every answer a 304) while 1,000 long-pollers from a third process are parked on
   ``/v1/decisions?wait=60s``;
3. ``/v1/check`` again with those 1,000 pollers parked.

Printed per phase: requests/s, p50/p99/max latency, non-2xx/304 answers, and the server's CPU
seconds per second (1.0 = one core busy) and peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import time
import urllib.request
from multiprocessing.synchronize import Event as EventType
from typing import Any, Final

from benchmarks.harness import ServerProcess, cpu_seconds, peak_rss_bytes

BUDGETS: Final = [
    {"name": "team-monthly", "scope": {"team": "*"}, "window": "month", "limit": 5000,
     "thresholds": [{"at": 0.8, "action": "notify"}, {"at": 1.0, "action": "block"}]},
    {"name": "user-daily", "scope": {"user_id": "*"}, "window": "day", "limit": 100},
    {"name": "feature-daily", "scope": {"feature": "*"}, "window": "day", "limit": 1000},
    {"name": "global", "window": "month", "limit": 10**7},
]  # fmt: skip


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


def _load(port: int, targets: list[bytes], connections: int, seconds: float, results: Any) -> None:
    async def run() -> dict[str, Any]:
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        deadline = time.perf_counter() + seconds

        async def connection(offset: int) -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            index = offset
            while time.perf_counter() < deadline:
                raw = targets[index % len(targets)]
                index += connections
                started = time.perf_counter()
                status = await _request(reader, writer, raw)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
            writer.close()

        started = time.perf_counter()
        await asyncio.gather(*(connection(i) for i in range(connections)))
        return {"elapsed": time.perf_counter() - started, "latencies": latencies, "statuses": statuses}

    results.put(asyncio.run(run()))


def _park_pollers(port: int, count: int, etag: str, parked: EventType, stop: EventType) -> None:
    async def run() -> None:
        raw = (f"GET /v1/decisions?wait=60s HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n").encode()
        streams = []
        for _ in range(count):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw)
            streams.append((reader, writer))
        parked.set()
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        for _, writer in streams:
            writer.close()

    asyncio.run(run())


def _phase(server: ServerProcess, name: str, targets: list[bytes], args: argparse.Namespace) -> None:
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    cpu_before = cpu_seconds(server.pid)
    load = ctx.Process(target=_load, args=(server.api_port, targets, args.connections, args.seconds, results))
    load.start()
    outcome = results.get(timeout=600)
    load.join()
    cpu = (cpu_seconds(server.pid) - cpu_before) / outcome["elapsed"]
    latencies: list[float] = sorted(outcome["latencies"])
    count = len(latencies)

    def pct(q: float) -> float:
        return latencies[min(count - 1, int(q * count))] * 1000

    print(
        f"{name:52} {count / outcome['elapsed']:8,.0f} req/s  "
        f"p50 {pct(0.5):6.2f} ms  p99 {pct(0.99):6.2f} ms  "
        f"max {latencies[-1] * 1000:6.1f} ms  statuses {outcome['statuses']}  server CPU {cpu:.2f} cores, "
        f"peak RSS {peak_rss_bytes(server.pid) / 2**20:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--pollers", type=int, default=1000)
    args = parser.parse_args()
    rng = random.Random(3)
    checks = [
        (
            f"GET /v1/check?team=team-{rng.randrange(20):02d}&user_id=user-{rng.randrange(1000):04d}"
            f"&feature=feature-{rng.randrange(40):02d} HTTP/1.1\r\nHost: x\r\n\r\n"
        ).encode()
        for _ in range(5000)
    ]
    with ServerProcess(budgets=BUDGETS) as server:
        with urllib.request.urlopen(f"{server.api}/v1/decisions") as response:
            etag = response.headers["ETag"]
        polls = [f"GET /v1/decisions?wait=0 HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n".encode()]
        print(f"{args.connections} connections, {args.seconds:.0f} s per phase")
        _phase(server, "/v1/check", checks, args)
        ctx = multiprocessing.get_context("spawn")
        parked, stop = ctx.Event(), ctx.Event()
        pollers = ctx.Process(target=_park_pollers, args=(server.api_port, args.pollers, etag, parked, stop))
        pollers.start()
        parked.wait(120)
        time.sleep(1.0)  # let the server take every parked request in
        rss = peak_rss_bytes(server.pid) / 2**20
        print(f"{args.pollers} long-pollers parked (server peak RSS now {rss:.0f} MiB)")
        _phase(server, f"/v1/decisions 304 polls, {args.pollers} pollers parked", polls, args)
        _phase(server, f"/v1/check, {args.pollers} pollers parked", checks, args)
        stop.set()
        pollers.join()


if __name__ == "__main__":
    main()
