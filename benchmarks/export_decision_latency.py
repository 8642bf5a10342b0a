"""Decision latency end to end: OTLP Export returns -> a gateway's client holds the block.

Run::

    python -m benchmarks.export_decision_latency              # 5,000 spans/s for 10 s

An otelcost server runs in-process on loopback ports (the real receivers, normalizer, pricer,
lake writer and budget evaluator). A sender thread makes one OTLP/gRPC Export of 100 LLM spans
every 20 ms (5,000 spans/s, 500 teams under a monthly cost budget). Every 200 ms one request also
carries a call of a fresh "probe" team whose budget blocks it at its first call. A
``PolicyClient`` (the gateway-side client, long-polling ``/v1/decisions``) runs in another thread;
for each probe the benchmark records when the Export call returned and when the client's
``check(team=probe, feature="probe")`` first answered "blocked". Printed: p50 / p99 / max of that latency.

Honest caveat: sender, server and client share one Python process (and its GIL) on 2 cores, so
the figure includes contention a real deployment would not have. With ``--workers N`` the
receivers, normalizer and pricer run in N processes of their own (``receiver.workers``), and
the probe's path includes the hop from a worker to the serve process.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import threading
import time
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from otelcost.config import load_config
from otelcost.policy.client import PolicyClient
from otelcost.server import BackgroundServer

BUDGETS = [
    {
        "name": "team-monthly",
        "scope": {"team": "*"},
        "window": "month",
        "metric": "cost_usd",
        "limit": 1_000_000,
        "thresholds": [{"at": 1.0, "action": "block"}],
    },
    {
        "name": "probe",
        "scope": {"team": "*", "feature": "probe"},
        "window": "day",
        "metric": "requests",
        "limit": 1,
        "thresholds": [{"at": 1.0, "action": "block"}],
    },
]


def _attr(key: str, value: str | int) -> KeyValue:
    any_value = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
    return KeyValue(key=key, value=any_value)


def _span(team: str, feature: str) -> Span:
    now = time.time_ns()
    return Span(
        trace_id=secrets.token_bytes(16),
        span_id=secrets.token_bytes(8),
        name="chat gpt-4o-mini",
        start_time_unix_nano=now - 1_000_000,
        end_time_unix_nano=now,
        attributes=[
            _attr("gen_ai.provider.name", "openai"),
            _attr("gen_ai.operation.name", "chat"),
            _attr("gen_ai.request.model", "gpt-4o-mini"),
            _attr("gen_ai.usage.input_tokens", 800),
            _attr("gen_ai.usage.output_tokens", 150),
            _attr("app.team", team),
            _attr("app.feature", feature),
            _attr("user.id", f"user-{secrets.randbelow(1000)}"),
        ],
    )


def _request(spans: list[Span]) -> trace_service_pb2.ExportTraceServiceRequest:
    resource = Resource(attributes=[_attr("service.name", "bench")])
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=spans)])]
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=5000, help="spans per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=100, help="spans per Export request")
    parser.add_argument("--probe-ms", type=float, default=200.0)
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="receiver.workers (the receivers then run in their own processes)",
    )
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="otelcost-bench-"))
    loopback = "127.0.0.1:0"
    config = load_config(
        None,
        overrides={
            "data_dir": str(data_dir),
            "budgets": BUDGETS,
            "api": {"listen": loopback},
            "receiver": {"grpc": {"listen": loopback}, "http": {"enabled": False}, "workers": args.workers},
        },
    )
    exported_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    with BackgroundServer(config, start_timeout=60) as running:
        server = running.server
        grpc_port = server.otlp_port("grpc")
        client = PolicyClient(f"http://127.0.0.1:{server.api_port}", wait=30).start()
        client.wait_for_version(1)
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                for probe in list(exported_at):
                    if probe not in seen_at and not client.check(team=probe, feature="probe").allowed:
                        seen_at[probe] = time.perf_counter()
                time.sleep(0.001)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        export = trace_service_pb2_grpc.TraceServiceStub(channel).Export
        interval = args.batch / args.rate
        probe_every = max(1, round(args.probe_ms / 1000 / interval))
        ticks = int(args.seconds / interval)
        # Requests are built before the clock starts, so the sender measures otelcost, not itself.
        requests = []
        for tick in range(ticks):
            spans = [_span(f"team-{secrets.randbelow(500)}", "chat") for _ in range(args.batch)]
            probe = f"probe-{tick}" if tick % probe_every == 0 else None
            if probe:
                spans[0] = _span(probe, "probe")
            requests.append((probe, _request(spans)))
        started = time.perf_counter()
        sent = lag = 0
        for tick, (probe, request) in enumerate(requests):
            sent_spans = request.resource_spans[0].scope_spans[0].spans
            export(request, timeout=10)
            if probe:
                exported_at[probe] = time.perf_counter()
            sent += len(sent_spans)
            delay = started + (tick + 1) * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                lag += 1
        elapsed = time.perf_counter() - started
        deadline = time.monotonic() + 5
        while len(seen_at) < len(exported_at) and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        watcher.join()
        client.close()
        channel.close()

    latencies = [(seen_at[p] - exported_at[p]) * 1000 for p in exported_at if p in seen_at]
    print(f"sent {sent:,} spans in {elapsed:.1f} s = {sent / elapsed:,.0f} spans/s ({lag} sends fell behind)")
    print(f"probes: {len(exported_at)}, seen blocked by the client: {len(latencies)}")
    if latencies:
        print(
            f"Export returned -> client blocks: p50 {statistics.median(latencies):.0f} ms, "
            f"p99 {percentile(latencies, 0.99):.0f} ms, max {max(latencies):.0f} ms"
        )


if __name__ == "__main__":
    main()
