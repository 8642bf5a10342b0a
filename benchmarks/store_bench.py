"""Shared budget store (``budgeting.store: redis://``) vs in-process totals, in one run.

Run::

    python -m benchmarks.store_bench                       # both stores, ~2 minutes on 2 cores
    python -m benchmarks.store_bench --redis-url redis://127.0.0.1:6379/0   # an existing Redis

Without ``--redis-url`` the benchmark starts its own ``redis-server`` on a free loopback port
with a temporary directory, ``appendonly yes`` and ``appendfsync everysec`` (``--appendfsync``
changes it); with it, every evaluator and server uses a fresh random ``store_prefix``. Each part
runs the in-process store (``memory``) and the Redis store on the same prepared batches or
requests, in the same run:

1. **Evaluator throughput.** ``--batches`` batches of ``--rows`` priced calls (RECORD_SCHEMA,
   ``decision_latency.batch``: 500 teams, four budgets) handed to ``Evaluator.consume`` back to
   back, twice: *steady* (no batch changes a decision) and *every batch decides* (each batch
   also pushes a fresh probe team and user past their block thresholds). The clock stops when
   the evaluator holds what was sent: for ``memory`` when the last ``consume`` returns, for
   Redis when the sync thread has applied every change it sent back to the local totals
   (steady) or published the last probe's block (every batch decides). **decisions/s** is
   probe blocks published per second in the second case: how many batches per second can each
   change a decision and have that decision in the evaluator's published snapshot (the one the
   API serves). A snapshot may carry several such changes (the sync thread applies what the
   stream holds at once): snapshots/s is printed beside it.
2. **Decision latency.** ``--rate`` calls/s in ``--batch-ms`` batches for ``--seconds``, one
   batch every ``--probe-ms`` also blocking a fresh probe team (as ``decision_latency.py``).
   Per probe: from ``consume`` returning to the first published snapshot (subscriber callback)
   that blocks the probe, and from ``consume`` being called (the in-process store publishes
   inside ``consume``, so its "from return" figure is 0 by construction); and to each of
   ``--clients`` ``PolicyClient`` long-polling the real aiohttp API over loopback. Redis's
   added latency is the Redis figure minus the in-process one, per percentile.
3. **Ingest end to end.** ``otelcost serve`` (``benchmarks.ingest.run_pipeline``: default
   configuration, one monthly cost budget per team, a load generator in another process, clock
   until every call is in Parquet and counted) with ``memory`` and with the Redis store,
   alternating for ``--ingest-runs`` runs each, on the same request bytes. Medians and the
   Redis/memory ratio; the Redis server's own CPU is printed apart. After each Redis run the
   store's calls for the team budget are read back and must equal the LLM spans sent.
"""

from __future__ import annotations

import argparse
import pickle
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import redis

from benchmarks.decision_latency import BUDGETS, batch, percentile
from benchmarks.harness import cpu_seconds, free_port
from benchmarks.ingest import run_pipeline
from benchmarks.workload import build_workload
from otelcost.api import build_api_app
from otelcost.budgets.config import BudgetConfig, BudgetingConfig
from otelcost.budgets.evaluator import Evaluator
from otelcost.money import pico_to_decimal_array
from otelcost.policy.client import PolicyClient
from otelcost.policy.config import ApiConfig
from otelcost.policy.decisions import Action, Snapshot
from tests.budgets.harness import ApiServer

STEADY_COST_PICO = 10**9  # 0.001 USD a call: 500 teams stay far under every limit
PROBE_COST_PICO = 6000 * 10**12  # past team-monthly (5,000) and user-daily (100) in one call


# -- the stores -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    """``memory`` or one Redis URL; every evaluator or server gets a fresh key prefix."""

    label: str
    url: str | None
    prefixes: list[str] = field(default_factory=list)

    def settings(self) -> dict[str, Any]:
        if self.url is None:
            return {}
        self.prefixes.append(f"bench{secrets.token_hex(4)}")
        return {"store": self.url, "store_prefix": self.prefixes[-1]}


@contextmanager
def redis_server(appendfsync: str) -> Iterator[tuple[str, int]]:
    """A private ``redis-server`` on a free loopback port: (url, pid)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed; pass --redis-url")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="otelcost-store-bench-") as directory:
        process = subprocess.Popen(
            [
                *(binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory, "--save", ""),
                *("--appendonly", "yes", "--appendfsync", appendfsync, "--logfile", f"{directory}/redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5)
            deadline = time.monotonic() + 10
            while True:
                try:
                    if client.ping():
                        break
                except redis.RedisError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise
                time.sleep(0.02)
            client.close()
            yield f"redis://127.0.0.1:{port}/0", process.pid
        finally:
            process.terminate()
            process.wait(10)


def new_evaluator(store: Store, **settings: Any) -> Evaluator:
    evaluator = Evaluator(
        budgets=[BudgetConfig.model_validate(b) for b in BUDGETS],
        settings=BudgetingConfig.model_validate({**store.settings(), **settings}),
        run_threads=True,
    )
    evaluator.start()
    return evaluator


def with_probe(table: pa.Table, name: str) -> pa.Table:
    """``table`` whose first call is a fresh team and user spending past their block limits."""
    cost = np.full(table.num_rows, STEADY_COST_PICO, dtype=np.int64)
    cost[0] = PROBE_COST_PICO
    for column in ("team", "user_id"):
        values = table[column].to_numpy(zero_copy_only=False).copy()
        values[0] = name
        table = table.set_column(table.schema.get_field_index(column), column, pa.array(values))
    return table.set_column(table.schema.get_field_index("cost_usd"), "cost_usd", pico_to_decimal_array(cost))


def steady_batches(count: int, rows: int, seed: int) -> list[pa.Table]:
    rng = np.random.default_rng(seed)
    cost = np.full(rows, STEADY_COST_PICO, dtype=np.int64)
    return [batch(rows, teams=rng.integers(0, 500, rows).astype(str), cost_pico=cost) for _ in range(count)]


def blocked_teams(snapshot: Snapshot) -> set[str]:
    return {
        str(d.scope.get("team"))
        for d in snapshot.decisions
        if d.budget == "team-monthly" and d.action is Action.BLOCK
    }


def first_seen(published: list[tuple[float, Snapshot]], probes: list[str]) -> dict[str, tuple[float, int]]:
    """Per probe team: (when, version) of the first published snapshot that blocks it."""
    seen: dict[str, tuple[float, int]] = {}
    waiting = set(probes)
    for at, snapshot in published:
        for team in waiting & blocked_teams(snapshot):
            seen[team] = (at, snapshot.version)
        waiting -= seen.keys()
    return seen


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("the evaluator did not catch up in time")
        time.sleep(0.0005)


# -- 1. throughput ------------------------------------------------------------------------------------


@dataclass
class Throughput:
    seconds: float
    consume_seconds: float
    batches: int
    rows: int
    snapshots: int
    published_probes: int


def throughput(store: Store, tables: list[pa.Table], probes: list[str] | None) -> Throughput:
    """Consume ``tables`` back to back; stop when the evaluator holds (and, with ``probes``,
    has published) everything."""
    evaluator = new_evaluator(store)
    published: list[tuple[float, Snapshot]] = []
    evaluator.subscribe(lambda snapshot: published.append((time.perf_counter(), snapshot)))
    shared = evaluator.shared
    try:
        started = time.perf_counter()
        for table in tables:
            evaluator.consume(table)
        consumed = time.perf_counter()
        if probes is not None:
            last = probes[-1]
            wait_for(lambda: bool(published) and last in blocked_teams(published[-1][1]))
            done = first_seen(published, [last])[last][0]
        elif shared is not None:
            wait_for(lambda: shared.changes_applied >= shared.changes_sent)
            done = time.perf_counter()
        else:
            done = consumed
        final = blocked_teams(evaluator.snapshot)
        return Throughput(
            seconds=done - started,
            consume_seconds=consumed - started,
            batches=len(tables),
            rows=sum(t.num_rows for t in tables),
            snapshots=sum(1 for at, _ in published if at >= started),
            published_probes=len(final & set(probes or [])),
        )
    finally:
        evaluator.shutdown()


# -- 2. decision latency ------------------------------------------------------------------------------


@dataclass
class Latency:
    from_return: list[float]
    from_call: list[float]
    to_clients: list[float]
    probes: int
    missed: int
    consume: list[float]
    achieved: float
    """Calls per second the feeder managed (below ``--rate`` when consume cannot keep up)."""


def latency(store: Store, args: argparse.Namespace, tables: list[pa.Table]) -> Latency:
    evaluator = new_evaluator(store)
    published: list[tuple[float, Snapshot]] = []
    evaluator.subscribe(lambda snapshot: published.append((time.perf_counter(), snapshot)))
    server = ApiServer(lambda: build_api_app(evaluator=evaluator, config=ApiConfig())).start()
    clients = [PolicyClient(server.url, wait=30).start() for _ in range(args.clients)]
    stop = threading.Event()
    seen: list[dict[int, float]] = [{} for _ in clients]

    def observe(index: int) -> None:
        client = clients[index]
        client.wait_for_version(0)
        version = -1
        while not stop.is_set():
            if client.wait_for_version(version + 1, timeout=0.2) and client.snapshot is not None:
                version = client.snapshot.version
                seen[index][version] = time.perf_counter()

    observers = [threading.Thread(target=observe, args=(i,), daemon=True) for i in range(len(clients))]
    for thread in observers:
        thread.start()
    probe_every = max(1, round(args.probe_ms / args.batch_ms))
    sent: dict[str, tuple[float, float]] = {}  # probe team -> (consume called, consume returned)
    consume: list[float] = []
    try:
        next_at = first = time.perf_counter()
        for number, prepared in enumerate(tables):
            probe = f"probe-{number}" if number % probe_every == probe_every - 1 else None
            table = prepared if probe is None else with_probe(prepared, probe)
            called = time.perf_counter()
            evaluator.consume(table)
            returned = time.perf_counter()
            consume.append(returned - called)
            if probe is not None:
                sent[probe] = (called, returned)
            next_at += args.batch_ms / 1000
            time.sleep(max(0.0, next_at - time.perf_counter()))
        achieved = sum(t.num_rows for t in tables) / (time.perf_counter() - first)
        time.sleep(1.0)
    finally:
        stop.set()
        for client in clients:
            client.close()
        server.stop()
        evaluator.shutdown()
    visible = first_seen(published, list(sent))
    result = Latency([], [], [], len(sent), 0, consume, achieved)
    for team, (called, returned) in sent.items():
        if team not in visible:
            result.missed += 1
            continue
        at, version = visible[team]
        result.from_return.append(max(0.0, at - returned))
        result.from_call.append(at - called)
        for observed in seen:
            times = [t for v, t in observed.items() if v >= version]
            if times:
                result.to_clients.append(min(times) - returned)
            else:
                result.missed += 1
    return result


# -- 3. ingest ----------------------------------------------------------------------------------------


def redis_calls(url: str, prefix: str, budget: str) -> int:
    """Calls the Redis store holds for ``budget`` (every window, every instance)."""
    client = redis.Redis.from_url(url)
    try:
        total = 0
        for key in client.scan_iter(match=f"{{{prefix}}}:t:{budget}:*", count=1000):
            for name, value in client.hgetall(key).items():
                if (name if isinstance(name, bytes) else str(name).encode()).endswith(b"\x1fc"):
                    total += int(value)
        return total
    finally:
        client.close()


# -- printing -----------------------------------------------------------------------------------------

Figure = Callable[[Throughput], float]
Sample = Callable[[Latency], list[float]]


def ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.2f}" if values else "-"


def row(label: str, memory: str, shared: str, ratio: str = "") -> None:
    print(f"  {label:<46} {memory:>10} {shared:>10} {ratio:>10}", flush=True)


def part_throughput(args: argparse.Namespace, stores: list[Store]) -> None:
    tables = steady_batches(args.batches, args.rows, seed=1)
    names = [f"probe-{n}" for n in range(len(tables))]
    probed = [with_probe(t, name) for t, name in zip(tables, names, strict=True)]
    steady = {s.label: throughput(s, tables, None) for s in stores}
    deciding = {s.label: throughput(s, probed, names) for s in stores}
    print(
        f"\n1. evaluator throughput: {args.batches} batches of {args.rows} calls back to back, "
        f"{len(BUDGETS)} budgets, 500 teams"
    )
    row("", "memory", "redis", "redis/mem")
    cases: list[tuple[dict[str, Throughput], str, Figure]] = [
        (steady, "steady: calls/s (until the totals hold them)", lambda r: r.rows / r.seconds),
        (steady, "steady: batches/s", lambda r: r.batches / r.seconds),
        (steady, "steady: calls/s until consume returns", lambda r: r.rows / r.consume_seconds),
        (deciding, "every batch decides: decisions/s", lambda r: r.published_probes / r.seconds),
        (deciding, "every batch decides: calls/s", lambda r: r.rows / r.seconds),
        (deciding, "every batch decides: snapshots published/s", lambda r: r.snapshots / r.seconds),
    ]
    for results, label, figure in cases:
        a, b = figure(results["memory"]), figure(results["redis"])
        row(label, f"{a:,.0f}", f"{b:,.0f}", f"{b / a:.2f}")
    for label, result in deciding.items():
        if result.published_probes != args.batches:
            print(f"  WARNING: {label}: {result.published_probes} of {args.batches} probe blocks published")


def part_latency(args: argparse.Namespace, stores: list[Store]) -> None:
    rows = max(1, round(args.rate * args.batch_ms / 1000))
    background = steady_batches(int(args.seconds * 1000 / args.batch_ms), rows, seed=2)
    results = {s.label: latency(s, args, background) for s in stores}
    print(
        f"\n2. decision latency: {args.rate:,} calls/s in {args.batch_ms:g} ms batches of {rows} for "
        f"{args.seconds:g} s, a probe every {args.probe_ms:g} ms ({results['memory'].probes} per "
        f"store), {args.clients} PolicyClients; ms"
    )
    row("", "memory", "redis", "added")
    row("background calls/s achieved", *(f"{r.achieved:,.0f}" for r in results.values()))
    samples: list[tuple[str, Sample]] = [
        ("consume returns -> evaluator snapshot", lambda r: r.from_return),
        ("consume called -> evaluator snapshot", lambda r: r.from_call),
        ("consume returns -> PolicyClient holds it", lambda r: r.to_clients),
        ("consume per batch (all batches)", lambda r: r.consume),
    ]
    for label, pick in samples:
        a, b = pick(results["memory"]), pick(results["redis"])
        for q, name in ((0.5, "p50"), (0.99, "p99"), (1.0, "max")):
            added = f"{(percentile(b, q) - percentile(a, q)) * 1000:+.2f}" if q < 1 and a and b else ""
            row(f"{label} {name}", ms(a, q), ms(b, q), added)
    for label, result in results.items():
        if result.missed:
            print(f"  WARNING: {label}: {result.missed} probe observations missed")


def part_ingest(args: argparse.Namespace, stores: list[Store], url: str, redis_pid: int) -> None:
    workload = build_workload(args.llm_spans, seed=1)
    per_store: dict[str, list[tuple[float, float]]] = {s.label: [] for s in stores}
    redis_cpu: list[float] = []
    print(
        f"\n3. ingest end to end ({args.protocol}): {workload.llm_spans:,} LLM spans in "
        f"{len(workload.payloads)} requests, a fresh otelcost serve per run, stores alternating"
    )
    with tempfile.TemporaryDirectory(prefix="otelcost-store-bench-") as scratch:
        payload_file = f"{scratch}/payloads.pickle"
        Path(payload_file).write_bytes(pickle.dumps(workload.payloads))
        for run in range(args.ingest_runs):
            for store in stores if run % 2 == 0 else stores[::-1]:
                extra = store.settings()
                cpu_before = cpu_seconds(redis_pid) if redis_pid else 0.0
                result = run_pipeline(
                    args.protocol, workload, payload_file, extra={"budgeting": extra} if extra else None
                )
                note = ""
                if extra:
                    counted = redis_calls(url, extra["store_prefix"], "team-monthly")
                    note = f", Redis holds {counted:,} calls"
                    if counted != workload.llm_spans:
                        note += f" (WARNING: {workload.llm_spans:,} sent)"
                    if redis_pid:
                        redis_cpu.append(cpu_seconds(redis_pid) - cpu_before)
                        note += f", redis-server {redis_cpu[-1]:.2f} CPU-s"
                rate, per_cpu = workload.llm_spans / result.seconds, workload.llm_spans / result.server_cpu
                per_store[store.label].append((rate, per_cpu))
                print(
                    f"  run {run + 1} {store.label:>6}: {rate:,.0f} LLM spans/s end to end, "
                    f"{per_cpu:,.0f} per server CPU-s ({result.server_cpu:.2f} CPU-s){note}",
                    flush=True,
                )
    row("", "memory", "redis", "redis/mem")
    for index, label in ((0, "LLM spans/s end to end (median)"), (1, "LLM spans per server CPU-s (median)")):
        a = statistics.median(r[index] for r in per_store["memory"])
        b = statistics.median(r[index] for r in per_store["redis"])
        row(label, f"{a:,.0f}", f"{b:,.0f}", f"{b / a:.2f}")
        pairs = zip(per_store["memory"], per_store["redis"], strict=True)
        print(f"    redis/memory per run: {', '.join(f'{r[index] / m[index]:.2f}' for m, r in pairs)}")
    if redis_cpu:
        print(f"  redis-server CPU per Redis run: median {statistics.median(redis_cpu):.2f} CPU-s")


@contextmanager
def existing_redis(url: str, store: Store) -> Iterator[tuple[str, int]]:
    """A Redis the benchmark did not start: the keys of its prefixes are deleted afterwards."""
    try:
        yield url, 0
    finally:
        client = redis.Redis.from_url(url)
        for prefix in store.prefixes:
            for key in client.scan_iter(match=f"{{{prefix}}}:*", count=1000):
                client.delete(key)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis-url", help="an existing Redis (a random store_prefix is used)")
    parser.add_argument("--appendfsync", default="everysec", choices=["everysec", "always", "no"])
    parser.add_argument("--batches", type=int, default=300, help="throughput: batches per case")
    parser.add_argument("--rows", type=int, default=100, help="throughput: calls per batch")
    parser.add_argument("--rate", type=int, default=5000, help="latency: background calls per second")
    parser.add_argument("--seconds", type=float, default=8.0, help="latency: seconds per store")
    parser.add_argument("--batch-ms", type=float, default=20.0)
    parser.add_argument(
        "--probe-ms", type=float, default=50.0, help="latency: one decision change this often"
    )
    parser.add_argument("--clients", type=int, default=2, help="latency: PolicyClient long-pollers")
    parser.add_argument("--ingest-runs", type=int, default=3, help="ingest: runs per store, alternating")
    parser.add_argument("--llm-spans", type=int, default=30_000, help="ingest: LLM spans per run")
    parser.add_argument("--protocol", default="grpc", choices=["grpc", "http"])
    parser.add_argument("--skip", action="append", default=[], choices=["throughput", "latency", "ingest"])
    args = parser.parse_args()
    started = time.monotonic()
    print("command: python -m benchmarks.store_bench " + shlex.join(sys.argv[1:]))
    shared = Store("redis", args.redis_url)
    server = (
        redis_server(args.appendfsync) if args.redis_url is None else existing_redis(args.redis_url, shared)
    )
    with server as (url, redis_pid):
        if redis_pid:
            print(
                f"redis: redis-server started by the benchmark at {url} (temp dir, appendonly yes, "
                f"appendfsync {args.appendfsync}, no RDB snapshots)"
            )
        else:
            print(f"redis: existing server at {url}, a random store_prefix per evaluator and server")
        stores = [Store("memory", None), Store("redis", url, shared.prefixes)]
        if "throughput" not in args.skip:
            part_throughput(args, stores)
        if "latency" not in args.skip:
            part_latency(args, stores)
        if "ingest" not in args.skip:
            part_ingest(args, stores, url, redis_pid)
    print(f"\ntook {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
