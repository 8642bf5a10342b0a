"""End-to-end ingest throughput against its ceiling and against the obvious alternative.

Run::

    python -m benchmarks.ingest                 # 3 runs of each case, ~4 minutes on 2 cores
    python -m benchmarks.ingest --runs 1 --quick

For each run and each case (LLM spans only; 10 non-LLM spans per LLM span) x (OTLP/gRPC,
OTLP/HTTP protobuf):

1. ``otelcost serve`` starts as a subprocess (default configuration, temporary data dir, one
   monthly cost budget per team) on free loopback ports;
2. a load generator in another process sends the pre-encoded ``ExportTraceServiceRequest`` bytes
   (512 spans each) with 4 requests in flight: a raw gRPC unary call with the bytes as they are,
   or an HTTP/1.1 keep-alive POST; a retryable refusal (UNAVAILABLE / 503) is retried;
3. the clock stops when ``/metrics`` shows every LLM call written to Parquet
   (``otelcost_lake_rows_written_total``) and counted by the budget evaluator
   (``otelcost_budget_calls_counted_total``): durable and in the budget totals.

Reported: LLM spans/s end to end (first request sent -> last row durable), LLM spans per
server CPU-second (the "per core" figure: the server's user+system time over the same interval),
the server's peak RSS (VmHWM), and in the same run, on the same request bytes, each in a fresh
process on one core:

* the ceiling: ``ExportTraceServiceRequest.FromString`` of every request, nothing else;
* the obvious alternative: ``MessageToDict`` -> Python dicts -> attribute extraction and cost
  from a price dict -> ``pa.Table.from_pylist`` -> zstd Parquet every 100,000 rows.

Medians over ``--runs`` runs; ratios are computed per run (same run, same bytes) and their
median is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import pickle
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any, Final

from benchmarks.harness import ServerProcess, cpu_seconds, peak_rss_bytes, process_tree
from benchmarks.workload import PRICES_PER_MTOK, TEAMS, Workload, build_workload

GRPC_METHOD: Final = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
IN_FLIGHT: Final = 4
"""Requests in flight, each on its own connection (so SO_REUSEPORT can spread them over
receiver workers; ``--in-flight`` changes it)."""
BUDGETS: Final = [
    {
        "name": "team-monthly",
        "scope": {"team": "*"},
        "window": "month",
        "metric": "cost_usd",
        "limit": 10_000_000,
        "thresholds": [{"at": 1.0, "action": "block"}],
    }
]
ALTERNATIVE_FLUSH_ROWS: Final = 100_000


# -- the load generator (its own process) ---------------------------------------------------------


async def _send_grpc(  # noqa: PLR0917 - called with the load generator's positional arguments
    port: int, payloads: list[bytes], ready: EventType, go: EventType, in_flight: int, key: str | None
) -> dict[str, float]:
    import grpc  # noqa: PLC0415 - only the load generator process needs a gRPC client
    from grpc import aio  # noqa: PLC0415

    retryable = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}
    # One channel (connection) per request in flight, as many exporting services would open:
    # a local subchannel pool keeps gRPC from sharing one connection between the channels.
    options = [
        ("grpc.max_send_message_length", 64 << 20),
        ("grpc.max_receive_message_length", 64 << 20),
        ("grpc.use_local_subchannel_pool", 1),
    ]
    channels = [aio.insecure_channel(f"127.0.0.1:{port}", options=options) for _ in range(in_flight)]
    try:
        # No serializers: the request is sent as the bytes given, the answer comes back as bytes.
        exports = [channel.unary_unary(GRPC_METHOD) for channel in channels]
        metadata = (("authorization", f"Bearer {key}"),) if key else None
        for export in exports:
            await export(
                b"", timeout=10, metadata=metadata
            )  # connect (an empty request never reaches the pipeline)
        ready.set()
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        retries = 0
        pending = iter(payloads)

        async def worker(export: Any) -> None:
            nonlocal retries
            for payload in pending:
                while True:
                    try:
                        await export(payload, timeout=120, metadata=metadata)
                        break
                    except aio.AioRpcError as exc:
                        if exc.code() not in retryable:
                            raise
                        retries += 1
                        await asyncio.sleep(0.05)

        started = time.monotonic()
        await asyncio.gather(*(worker(export) for export in exports))
        return {"started": started, "acked": time.monotonic(), "retries": retries}
    finally:
        for channel in channels:
            await channel.close()


async def _send_http(  # noqa: PLR0917 - called with the load generator's positional arguments
    port: int, payloads: list[bytes], ready: EventType, go: EventType, in_flight: int, key: str | None
) -> dict[str, float]:
    import aiohttp  # noqa: PLC0415

    url = f"http://127.0.0.1:{port}/v1/traces"
    headers = {"Content-Type": "application/x-protobuf"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    connector = aiohttp.TCPConnector(limit=in_flight, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(payload: bytes) -> int:
            async with session.post(url, data=payload, headers=headers) as response:
                await response.read()
                return response.status

        # Open the keep-alive connections first (empty requests never reach the pipeline).
        await asyncio.gather(*(post(b"") for _ in range(in_flight)))
        ready.set()
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        retries = 0
        pending = iter(payloads)

        async def worker() -> None:
            nonlocal retries
            for payload in pending:
                while True:
                    status = await post(payload)
                    if status == 200:
                        break
                    if status not in (429, 502, 503, 504):
                        raise RuntimeError(f"HTTP {status}")
                    retries += 1
                    await asyncio.sleep(0.05)

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return {"started": started, "acked": time.monotonic(), "retries": retries}


def _load_generator(  # noqa: PLR0917 - a multiprocessing target takes positional arguments
    protocol: str,
    port: int,
    payload_file: str,
    ready: EventType,
    go: EventType,
    results: Any,
    in_flight: int,
    key: str | None = None,
) -> None:
    with open(payload_file, "rb") as handle:
        payloads: list[bytes] = pickle.load(handle)
    send = _send_grpc if protocol == "grpc" else _send_http
    results.put(asyncio.run(send(port, payloads, ready, go, in_flight, key)))


# -- one pipeline run -----------------------------------------------------------------------------


@dataclass
class PipelineRun:
    seconds: float
    ack_seconds: float
    server_cpu: float
    serve_process_cpu: float
    """CPU of the serve process alone (with receiver workers: the spool, lake and budgets side)."""
    peak_rss: int
    retries: int
    calls: int


def run_pipeline(
    protocol: str,
    workload: Workload,
    payload_file: str,
    root: Path | None = None,
    *,
    workers: int = 0,
    in_flight: int = IN_FLIGHT,
    extra: dict[str, Any] | None = None,
    key: str | None = None,
) -> PipelineRun:
    """One server, one load generator; ``extra`` is more server configuration and ``key`` the
    API key the load generator sends (``benchmarks/auth_bench.py``)."""
    ctx = multiprocessing.get_context("spawn")
    with ServerProcess(budgets=BUDGETS, root=root, workers=workers, extra=extra) as server:
        ready, go, results = ctx.Event(), ctx.Event(), ctx.Queue()
        port = server.grpc_port if protocol == "grpc" else server.http_port
        sender = ctx.Process(
            target=_load_generator, args=(protocol, port, payload_file, ready, go, results, in_flight, key)
        )
        sender.start()
        if not ready.wait(120):
            raise RuntimeError("load generator did not connect")
        processes = process_tree(server.pid)  # the serve process and its receiver workers
        cpu_before = [cpu_seconds(pid) for pid in processes]
        go.set()
        outcome = results.get(timeout=1800)
        sender.join()
        expected = workload.llm_spans
        while True:
            metrics = server.metrics()
            written = metrics.get("otelcost_lake_rows_written_total", 0.0)
            counted = metrics.get("otelcost_budget_calls_counted_total", 0.0)
            if written >= expected and counted >= expected:
                durable = time.monotonic()
                break
            time.sleep(0.02)
        cpu_after = [cpu_seconds(pid) for pid in processes]
        rss = sum(peak_rss_bytes(pid) for pid in processes)
        calls = int(metrics.get("otelcost_calls_total", 0.0))
    return PipelineRun(
        seconds=durable - outcome["started"],
        ack_seconds=outcome["acked"] - outcome["started"],
        server_cpu=sum(cpu_after) - sum(cpu_before),
        serve_process_cpu=cpu_after[0] - cpu_before[0],
        peak_rss=rss,
        retries=int(outcome["retries"]),
        calls=calls,
    )


# -- the ceiling and the obvious alternative (each in a fresh process) ----------------------------


def decode_only(payloads: list[bytes]) -> int:
    """The ceiling: parse every request, nothing else."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: PLC0415
        ExportTraceServiceRequest,
    )

    spans = 0
    for payload in payloads:
        request = ExportTraceServiceRequest.FromString(payload)
        spans += len(request.resource_spans)  # touch it, so nothing is skipped
    return spans


def _any_value(value: dict[str, Any]) -> Any:
    # MessageToDict spells an AnyValue as {"stringValue": ...} / {"intValue": "123"} / ...
    kind, inner = next(iter(value.items()))
    if kind == "intValue":
        return int(inner)
    if kind == "arrayValue":
        return [_any_value(v) for v in inner.get("values", [])]
    return inner


def obvious_alternative(payloads: list[bytes], out_dir: str) -> int:
    """The same job the way most people would write it; returns the rows written."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415
    from google.protobuf.json_format import MessageToDict  # noqa: PLC0415
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: PLC0415
        ExportTraceServiceRequest,
    )

    schema = pa.schema(
        [
            ("ts", pa.timestamp("us", tz="UTC")),
            ("trace_id", pa.string()),
            ("span_id", pa.string()),
            ("service", pa.string()),
            ("provider", pa.string()),
            ("model", pa.string()),
            ("team", pa.string()),
            ("feature", pa.string()),
            ("user_id", pa.string()),
            ("session_id", pa.string()),
            ("input_tokens", pa.int64()),
            ("output_tokens", pa.int64()),
            ("cache_read_tokens", pa.int64()),
            ("cost_usd", pa.float64()),
            ("attributes", pa.map_(pa.string(), pa.string())),
        ]
    )
    rows: list[dict[str, Any]] = []
    written = 0
    files = 0

    def flush() -> None:
        nonlocal rows, written, files
        if rows:
            pq.write_table(
                pa.Table.from_pylist(rows, schema=schema),
                f"{out_dir}/part-{files}.parquet",
                compression="zstd",
            )
            files += 1
            written += len(rows)
            rows = []

    for payload in payloads:
        message = MessageToDict(ExportTraceServiceRequest.FromString(payload))
        for resource_spans in message.get("resourceSpans", []):
            resource = {
                a["key"]: _any_value(a["value"])
                for a in resource_spans.get("resource", {}).get("attributes", [])
            }
            for scope_spans in resource_spans.get("scopeSpans", []):
                for span in scope_spans.get("spans", []):
                    attrs = {a["key"]: _any_value(a["value"]) for a in span.get("attributes", [])}
                    if "gen_ai.usage.input_tokens" not in attrs:
                        continue
                    model = str(attrs.get("gen_ai.request.model"))
                    inputs = attrs.get("gen_ai.usage.input_tokens", 0)
                    outputs = attrs.get("gen_ai.usage.output_tokens", 0)
                    cached = attrs.get("gen_ai.usage.cache_read.input_tokens", 0)
                    price_in, price_cached, price_out = PRICES_PER_MTOK.get(model, (0.0, 0.0, 0.0))
                    cost = ((inputs - cached) * price_in + cached * price_cached + outputs * price_out) / 1e6
                    rows.append(
                        {
                            "ts": int(span["startTimeUnixNano"]) // 1000,
                            "trace_id": base64.b64decode(span["traceId"]).hex(),
                            "span_id": base64.b64decode(span["spanId"]).hex(),
                            "service": resource.get("service.name"),
                            "provider": attrs.get("gen_ai.provider.name"),
                            "model": model,
                            "team": attrs.get("app.team"),
                            "feature": attrs.get("app.feature"),
                            "user_id": attrs.get("user.id"),
                            "session_id": attrs.get("session.id"),
                            "input_tokens": inputs,
                            "output_tokens": outputs,
                            "cache_read_tokens": cached,
                            "cost_usd": cost,
                            "attributes": [
                                (k, v if isinstance(v, str) else json.dumps(v)) for k, v in attrs.items()
                            ],
                        }
                    )
                    if len(rows) >= ALTERNATIVE_FLUSH_ROWS:
                        flush()
    flush()
    return written


def _timed_child(kind: str, payload_file: str, results: Any) -> None:
    with open(payload_file, "rb") as handle:
        payloads: list[bytes] = pickle.load(handle)
    baseline_rss = peak_rss_bytes_self()
    with tempfile.TemporaryDirectory(prefix="otelcost-alt-") as out_dir:
        started = time.perf_counter()
        cpu_started = time.process_time()
        if kind == "ceiling":
            decode_only(payloads)
        else:
            obvious_alternative(payloads, out_dir)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    results.put(
        {"seconds": elapsed, "cpu": cpu, "peak_rss": peak_rss_bytes_self(), "baseline_rss": baseline_rss}
    )


def peak_rss_bytes_self() -> int:
    import os  # noqa: PLC0415

    return peak_rss_bytes(os.getpid())


def run_in_child(kind: str, payload_file: str) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    child = ctx.Process(target=_timed_child, args=(kind, payload_file, results))
    child.start()
    outcome: dict[str, float] = results.get(timeout=3600)
    child.join()
    return outcome


# -- driver ---------------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _fmt(value: float) -> str:
    return f"{value:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--llm-spans", type=int, default=60_000, help="LLM spans in the LLM-only case")
    parser.add_argument("--mix-llm-spans", type=int, default=8_000, help="LLM spans in the 10:1 mix")
    parser.add_argument("--batch", type=int, default=512, help="spans per export request")
    parser.add_argument("--protocols", default="grpc,http")
    parser.add_argument("--quick", action="store_true", help="a tenth of the spans (smoke test)")
    parser.add_argument(
        "--workers", type=int, default=0, help="receiver.workers of the server (0: receive in-process)"
    )
    parser.add_argument(
        "--in-flight", type=int, default=IN_FLIGHT, help="requests in flight, one connection each"
    )
    parser.add_argument(
        "--server-root",
        type=Path,
        help="run the server from this source tree (a copy of another revision: before/after)",
    )
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    protocols = args.protocols.split(",")
    cases: list[tuple[str, Callable[[], Workload]]] = [
        ("LLM only", lambda: build_workload(args.llm_spans // scale, spans_per_request=args.batch, seed=1)),
        (
            "10 non-LLM : 1 LLM",
            lambda: build_workload(
                args.mix_llm_spans // scale, other_per_llm=10, spans_per_request=args.batch, seed=2
            ),
        ),
    ]
    print(
        f"otelcost ingest benchmark: {args.runs} runs, {args.in_flight} requests in flight "
        f"(one connection each), {args.workers} receiver workers, {len(TEAMS)} teams"
    )
    with tempfile.TemporaryDirectory(prefix="otelcost-ingest-") as scratch:
        for label, make in cases:
            workload = make()
            payload_file = f"{scratch}/payloads.pickle"
            with open(payload_file, "wb") as handle:
                pickle.dump(workload.payloads, handle)
            print(
                f"\n== {label}: {workload.llm_spans:,} LLM spans + {workload.other_spans:,} others in "
                f"{len(workload.payloads)} requests, {workload.bytes / workload.spans:.0f} bytes/span"
            )
            per_protocol: dict[str, list[PipelineRun]] = {p: [] for p in protocols}
            ceilings: list[dict[str, float]] = []
            alternatives: list[dict[str, float]] = []
            ratios: dict[str, list[tuple[float, float]]] = {p: [] for p in protocols}
            for run in range(args.runs):
                ceiling = run_in_child("ceiling", payload_file)
                alternative = run_in_child("alternative", payload_file)
                ceilings.append(ceiling)
                alternatives.append(alternative)
                ceiling_rate = workload.llm_spans / ceiling["seconds"]
                alternative_rate = workload.llm_spans / alternative["seconds"]
                print(
                    f"run {run + 1}: ceiling {_fmt(ceiling_rate)} LLM spans/s "
                    f"({_fmt(workload.spans / ceiling['seconds'])} spans/s); "
                    f"alternative {_fmt(alternative_rate)} LLM spans/s, "
                    f"peak RSS {alternative['peak_rss'] / 2**20:.0f} MiB"
                )
                for protocol in protocols:
                    result = run_pipeline(
                        protocol,
                        workload,
                        payload_file,
                        args.server_root,
                        workers=args.workers,
                        in_flight=args.in_flight,
                    )
                    if result.calls != workload.llm_spans:
                        print(f"  WARNING: {result.calls} rows for {workload.llm_spans} LLM spans")
                    per_protocol[protocol].append(result)
                    rate = workload.llm_spans / result.seconds
                    ratios[protocol].append((rate / ceiling_rate, rate / alternative_rate))
                    print(
                        f"  {protocol:4}: {_fmt(rate)} LLM spans/s durable+budgeted "
                        f"({_fmt(workload.spans / result.seconds)} spans/s; "
                        f"acked in {result.ack_seconds:.2f}s, "
                        f"durable at {result.seconds:.2f}s), {_fmt(workload.llm_spans / result.server_cpu)} "
                        f"LLM spans per server CPU-s"
                        + (
                            f" ({_fmt(workload.llm_spans / result.serve_process_cpu)} per CPU-s of the serve "
                            f"process alone)"
                            if args.workers
                            else ""
                        )
                        + f", server peak RSS {result.peak_rss / 2**20:.0f} MiB, "
                        f"{result.retries} retries; {rate / ceiling_rate:.1%} of ceiling, "
                        f"{rate / alternative_rate:.2f}x alternative"
                    )
            print(f"-- {label}: medians of {args.runs} runs")
            ceiling_llm = _median([workload.llm_spans / c["seconds"] for c in ceilings])
            ceiling_all = _median([workload.spans / c["seconds"] for c in ceilings])
            print(
                f"  ceiling (FromString only): {_fmt(ceiling_llm)} LLM spans/s, {_fmt(ceiling_all)} spans/s"
            )
            print(
                f"  alternative (MessageToDict -> dicts -> Parquet): "
                f"{_fmt(_median([workload.llm_spans / a['seconds'] for a in alternatives]))} LLM spans/s, "
                f"peak RSS {_median([a['peak_rss'] for a in alternatives]) / 2**20:.0f} MiB "
                f"(payloads alone {_median([a['baseline_rss'] for a in alternatives]) / 2**20:.0f} MiB)"
            )
            for protocol in protocols:
                runs = per_protocol[protocol]
                print(
                    f"  otelcost {protocol}: {_fmt(_median([workload.llm_spans / r.seconds for r in runs]))} "
                    f"LLM spans/s end to end, "
                    f"{_fmt(_median([workload.llm_spans / r.server_cpu for r in runs]))} per server CPU-s, "
                    f"peak RSS {_median([r.peak_rss for r in runs]) / 2**20:.0f} MiB; "
                    f"{_median([c for c, _ in ratios[protocol]]):.1%} of the ceiling, "
                    f"{_median([a for _, a in ratios[protocol]]):.2f}x the alternative"
                )


if __name__ == "__main__":
    main()
