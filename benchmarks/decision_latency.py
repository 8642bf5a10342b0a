"""Decision latency: from ``Evaluator.consume`` returning to a long-polling gateway knowing.

Run::

    python benchmarks/decision_latency.py                 # 5,000 calls/s for 10 s, 10 clients
    python benchmarks/decision_latency.py --pollers 1000  # plus 1,000 raw long-pollers

A feeder thread hands the evaluator a batch every ``--batch-ms`` (5,000 calls/s in 20 ms
batches = 100 calls each: what the pipeline's consume sees), spread over 500 teams that stay
under budget, across four budgets (per team monthly, per user daily, per workflow tokens/minute,
a global cap). Every ``--probe-ms`` (200 ms) one batch also pushes a fresh "probe" team past its block
threshold, which changes a decision. For each probe it records when ``consume`` returned, and
each ``PolicyClient`` (the gateway-side client, long-polling the real aiohttp endpoint over
loopback) records when it holds a snapshot with that version. Printed: p50/p99/max of that
latency over all probes and clients, and consume's own cost per batch.

This measures the part otelcost owns after pricing. The issue's end-to-end figure (OTLP Export
returns -> gateway sees the block) adds the receiver, normalizer and pricer in front of it.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import secrets
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from otelcost.api import build_api_app, waiting_pollers
from otelcost.budgets.config import BudgetConfig, BudgetingConfig
from otelcost.budgets.evaluator import Evaluator
from otelcost.money import pico_to_decimal_array
from otelcost.policy.client import PolicyClient
from otelcost.policy.config import ApiConfig
from otelcost.schema import RECORD_SCHEMA
from tests.budgets.harness import ApiServer

BUDGETS = [
    {"name": "team-monthly", "scope": {"team": "*"}, "window": "month", "limit": 5000,
     "thresholds": [{"at": 0.8, "action": "notify"}, {"at": 1.0, "action": "block"}]},
    {"name": "user-daily", "scope": {"user_id": "*"}, "window": "day", "limit": 100},
    {"name": "agent-tpm", "scope": {"workflow": "*"}, "window": "1m", "metric": "total_tokens",
     "limit": 10**9},
    {"name": "global", "window": "month", "limit": 10**7},
]  # fmt: skip


def batch(rows: int, *, teams: np.ndarray, cost_pico: np.ndarray) -> pa.Table:
    """A RECORD_SCHEMA batch built column-wise (fast enough to feed 5,000 calls/s)."""
    now = datetime.now(UTC)
    raw = secrets.token_bytes(rows * 24).hex()
    trace = [raw[i * 48 : i * 48 + 32] for i in range(rows)]
    span = [raw[i * 48 + 32 : i * 48 + 48] for i in range(rows)]
    zero = pico_to_decimal_array(np.zeros(rows, dtype=np.int64))
    columns: dict[str, pa.Array] = {}
    for field in RECORD_SCHEMA:
        columns[field.name] = pa.nulls(rows, field.type)
    ts = pa.array([now] * rows, pa.timestamp("us", tz="UTC"))
    columns |= {
        "ts": ts,
        "received_at": ts,
        "trace_id": pa.array(trace),
        "span_id": pa.array(span),
        "team": pa.array(teams),
        "user_id": pa.array([f"u{t}" for t in teams]),
        "workflow": pa.array(["agent"] * rows),
        "input_tokens": pa.array(np.full(rows, 900, dtype=np.int64)),
        "output_tokens": pa.array(np.full(rows, 300, dtype=np.int64)),
        "cache_read_tokens": pa.array(np.zeros(rows, dtype=np.int64)),
        "cache_write_tokens": pa.array(np.zeros(rows, dtype=np.int64)),
        "reasoning_tokens": pa.array(np.zeros(rows, dtype=np.int64)),
        "cost_usd": pico_to_decimal_array(cost_pico),
        "effective_cost_usd": pico_to_decimal_array(cost_pico),
        "pricing_status": pa.array(["priced"] * rows),
        "attribution_status": pa.array(["complete"] * rows),
        "status": pa.array(["ok"] * rows),
    }
    for name in (
        "input_cost_usd",
        "cache_read_cost_usd",
        "cache_write_cost_usd",
        "output_cost_usd",
        "reasoning_cost_usd",
    ):
        columns[name] = zero
    return pa.Table.from_arrays([columns[f.name] for f in RECORD_SCHEMA], schema=RECORD_SCHEMA)


def _poll_forever(url: str, count: int) -> None:
    import aiohttp  # noqa: PLC0415 - only in the poller process

    async def run() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def poll() -> None:
                etag = ""
                while True:
                    async with session.get(
                        f"{url}/v1/decisions?wait=30s", headers={"If-None-Match": etag}
                    ) as r:
                        await r.read()
                        etag = r.headers.get("ETag", etag)

            await asyncio.gather(*(poll() for _ in range(count)))

    asyncio.run(run())


def start_raw_pollers(url: str, count: int) -> multiprocessing.process.BaseProcess:
    """``count`` plain long-pollers (aiohttp) in another process, like a fleet of gateways."""
    process = multiprocessing.get_context("spawn").Process(
        target=_poll_forever, args=(url, count), daemon=True
    )
    process.start()
    return process


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=5000, help="calls per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch-ms", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=10, help="PolicyClient long-pollers")
    parser.add_argument("--probe-ms", type=float, default=200.0, help="one decision change this often")
    parser.add_argument("--pollers", type=int, default=0, help="extra raw long-pollers, in another process")
    args = parser.parse_args()

    evaluator = Evaluator(
        budgets=[BudgetConfig.model_validate(b) for b in BUDGETS],
        settings=BudgetingConfig(),
        run_threads=True,
    )
    evaluator.start()
    server = ApiServer(lambda: build_api_app(evaluator=evaluator, config=ApiConfig())).start()
    stop = threading.Event()
    raw = start_raw_pollers(server.url, args.pollers) if args.pollers else None
    if raw is not None:
        assert server.app is not None
        deadline = time.monotonic() + 60
        while waiting_pollers(server.app) < args.pollers and time.monotonic() < deadline:
            time.sleep(0.1)
    clients = [PolicyClient(server.url, wait=30).start() for _ in range(args.clients)]
    for client in clients:
        client.wait_for_version(1)

    seen: list[dict[int, float]] = [{} for _ in clients]

    def observe(index: int) -> None:
        client, version = clients[index], 0
        while not stop.is_set():
            if client.wait_for_version(version + 1, timeout=0.2) and client.snapshot is not None:
                version = client.snapshot.version
                seen[index][version] = time.perf_counter()

    observers = [threading.Thread(target=observe, args=(i,), daemon=True) for i in range(len(clients))]
    for thread in observers:
        thread.start()

    rows = max(1, round(args.rate * args.batch_ms / 1000))
    batches = int(args.seconds * 1000 / args.batch_ms)
    probe_every = max(1, round(args.probe_ms / args.batch_ms))
    rng = np.random.default_rng(1)
    steady_cost = np.full(rows, 10**9, dtype=np.int64)  # 0.001 USD a call
    prepared = [
        batch(rows, teams=rng.integers(0, 500, rows).astype(str), cost_pico=steady_cost)
        for _ in range(batches)
    ]
    probes: list[tuple[int, float]] = []
    consume_seconds: list[float] = []
    next_at = time.perf_counter()
    for number, prepared_table in enumerate(prepared):
        table = prepared_table
        if number % probe_every == probe_every - 1:
            cost = steady_cost.copy()
            cost[0] = 6000 * 10**12  # past team-monthly's limit in one call
            teams = table["team"].to_numpy(zero_copy_only=False).copy()
            teams[0] = f"probe-{number}"
            table = table.set_column(table.schema.get_field_index("team"), "team", pa.array(teams))
            table = table.set_column(
                table.schema.get_field_index("cost_usd"), "cost_usd", pico_to_decimal_array(cost)
            )
        before = evaluator.snapshot.version
        started = time.perf_counter()
        evaluator.consume(table)
        returned = time.perf_counter()
        consume_seconds.append(returned - started)
        if number % probe_every == probe_every - 1 and evaluator.snapshot.version > before:
            probes.append((evaluator.snapshot.version, returned))
        next_at += args.batch_ms / 1000
        time.sleep(max(0.0, next_at - time.perf_counter()))
    time.sleep(1.0)
    stop.set()

    latencies = []
    missed = 0
    for version, returned in probes:
        for observed in seen:
            times = [t for v, t in observed.items() if v >= version]
            if times:
                latencies.append(min(times) - returned)
            else:
                missed += 1
    achieved = rows * batches / args.seconds
    print(f"calls: {rows * batches} in {batches} batches of {rows} ({achieved:,.0f} calls/s offered)")
    print(f"budgets: {len(BUDGETS)}; decision changes measured: {len(probes)} x {len(clients)} clients")
    if args.pollers:
        print(f"extra raw long-pollers (another process): {args.pollers}")
    ms = [x * 1000 for x in latencies]
    print(
        f"consume -> client holds the new decision: p50 {percentile(ms, 0.5):.2f} ms, "
        f"p99 {percentile(ms, 0.99):.2f} ms, max {max(ms):.2f} ms (missed {missed})"
    )
    cs = [x * 1000 for x in consume_seconds]
    print(
        f"consume per batch: p50 {statistics.median(cs):.2f} ms, p99 {percentile(cs, 0.99):.2f} ms "
        f"({statistics.median(cs) * 1000 / rows:.1f} µs per call)"
    )
    for client in clients:
        client.close()
    server.stop()
    evaluator.shutdown()
    if raw is not None:
        raw.terminate()
        raw.join(timeout=5)


if __name__ == "__main__":
    main()
