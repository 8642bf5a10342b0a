"""SIGKILL under load: every acknowledged span is in the lake exactly once, budgets match the lake.

``otelcost serve`` runs as a real process on loopback ports with a short flush interval and two
budgets. Four sender threads drive sustained OTLP/gRPC load through the real grpc client: each
Export call carries pre-built spans with fresh random ids, and a span counts as acknowledged
only when its call returned OK without rejected spans, so the set of acknowledged ids is known
exactly (the SDK's batching processor hides per-request outcomes). Failed calls are not retried:
a retry of a request that was spooled but whose ack the crash swallowed is a second, genuinely
separate delivery (docs/durability.md), and would blur what this test measures. In the middle of
the load the server is killed with SIGKILL, restarted on the same data directory, and then:

* every acknowledged span is in the lake, and no (trace_id, span_id) is there twice;
* nothing is in the lake that was not sent;
* the restarted budget evaluator's totals (cost and calls per team, via ``GET /v1/decisions``)
  equal the lake's sums over the same window.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from tests.e2e.test_serve_process import OTELCOST, free_port, wait_ready
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

TEAMS = ("search", "ads", "mail")
SPANS_PER_REQUEST = 20
SENDERS = 4
LOAD_SECONDS = 2.5
CONFIG = """
lake:
  flush_interval: 400ms
budgeting:
  snapshot_refresh: 100ms
  tick_interval: 100ms
budgets:
  # A first threshold at the smallest spend makes every team's total visible in /v1/decisions.
  - name: cost-per-team
    scope: {team: "*"}
    window: day
    metric: cost_usd
    limit: 1000000
    thresholds: [{at: 0.000000000001, action: notify, alert: false}]
  - name: calls-per-team
    scope: {team: "*"}
    window: day
    metric: requests
    limit: 1000000000000
    thresholds: [{at: 0.000000000001, action: notify, alert: false}]
"""


def _kv(key: str, value: str | int) -> common_pb2.KeyValue:
    if isinstance(value, int):
        return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(int_value=value))
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=value))


def build_request(number: int) -> tuple[trace_service_pb2.ExportTraceServiceRequest, list[tuple[str, str]]]:
    """One request of SPANS_PER_REQUEST chat spans with fresh random ids; returns the ids too."""
    now = time.time_ns()
    trace_id = os.urandom(16)
    spans, ids = [], []
    for i in range(SPANS_PER_REQUEST):
        span_id = os.urandom(8)
        ids.append((trace_id.hex(), span_id.hex()))
        spans.append(
            trace_pb2.Span(
                trace_id=trace_id,
                span_id=span_id,
                name="chat gpt-4o-mini",
                kind=trace_pb2.Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=now,
                end_time_unix_nano=now + 5_000_000,
                attributes=[
                    _kv("gen_ai.provider.name", "openai"),
                    _kv("gen_ai.operation.name", "chat"),
                    _kv("gen_ai.request.model", "gpt-4o-mini"),
                    _kv("gen_ai.usage.input_tokens", 100 + (number * 7 + i) % 900),
                    _kv("gen_ai.usage.output_tokens", 10 + i),
                    _kv("app.team", TEAMS[(number + i) % len(TEAMS)]),
                ],
            )
        )
    request = trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=resource_pb2.Resource(attributes=[_kv("service.name", "crash-agent")]),
                scope_spans=[trace_pb2.ScopeSpans(spans=spans)],
            )
        ]
    )
    return request, ids


class Load:
    """Sender threads that record, per Export call, whether it was acknowledged.

    ``target`` is a grpc channel target (one port here; ``tests/e2e/test_scale_out.py`` spreads
    the load over several with ``round_robin`` and retries in :meth:`_deliver`).
    """

    def __init__(
        self,
        grpc_port: int,
        *,
        target: str | None = None,
        options: tuple[tuple[str, str], ...] = (),
        senders: int = SENDERS,
    ) -> None:
        self.channel = grpc.insecure_channel(target or f"127.0.0.1:{grpc_port}", options=list(options))
        self.stub = trace_service_pb2_grpc.TraceServiceStub(self.channel)
        self.acked: set[tuple[str, str]] = set()
        self.sent: set[tuple[str, str]] = set()
        self.failed_calls = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._numbers = iter(range(10**9))
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(senders)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
        self.channel.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                number = next(self._numbers)
            request, ids = build_request(number)
            with self._lock:
                self.sent.update(ids)
            self._deliver(request, ids)

    def _deliver(
        self, request: trace_service_pb2.ExportTraceServiceRequest, ids: list[tuple[str, str]]
    ) -> None:
        try:
            response = self.stub.Export(request, timeout=5)
        except grpc.RpcError:
            with self._lock:
                self.failed_calls += 1
            if not self._stop.is_set():
                time.sleep(0.05)  # the server is gone: stop hammering it, never resend
            return
        if response.partial_success.rejected_spans == 0:
            with self._lock:
                self.acked.update(ids)


def start_serve(config: Path, data_dir: Path, ports: dict[str, int], log: Path) -> subprocess.Popen[str]:
    # The log goes to a file: a pipe nobody reads could fill up and stall the server.
    with log.open("a") as stderr:
        process = start_process(config, data_dir, ports, stderr)
    wait_ready(ports["api"], process)
    return process


def start_process(config: Path, data_dir: Path, ports: dict[str, int], stderr: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *OTELCOST,
            "serve",
            "--config",
            str(config),
            "--data-dir",
            str(data_dir),
            "--grpc-listen",
            f"127.0.0.1:{ports['grpc']}",
            "--http-listen",
            f"127.0.0.1:{ports['http']}",
            "--api-listen",
            f"127.0.0.1:{ports['api']}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("OTELCOST_")},
    )


def sql(where: Path, query: str) -> list[dict[str, Any]]:
    """``otelcost sql`` over the lake of a data directory, or of a configuration file (its
    ``lake.root``, shared by several serve processes)."""
    location = ["--config" if where.is_file() else "--data-dir", str(where)]
    result = subprocess.run(
        [*OTELCOST, "sql", *location, "--format", "json", query],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def metric(api_port: int, name: str) -> float:
    for line in requests.get(f"http://127.0.0.1:{api_port}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def budget_totals(api_port: int) -> dict[tuple[str, str], Decimal]:
    snapshot = requests.get(f"http://127.0.0.1:{api_port}/v1/decisions", timeout=5).json()
    return {(d["budget"], d["scope"]["team"]): Decimal(d["spent"]) for d in snapshot["decisions"]}


def test_sigkill_under_load_loses_and_duplicates_nothing(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    config = tmp_path / "otelcost.yaml"
    config.write_text(CONFIG)
    data_dir = tmp_path / "data"
    ports = {"grpc": free_port(), "http": free_port(), "api": free_port()}

    log = tmp_path / "serve.log"
    first = start_serve(config, data_dir, ports, log)
    processes.append(first)
    load = Load(ports["grpc"])
    load.start()
    time.sleep(LOAD_SECONDS)  # the load runs this long: flushes, and acks after the last one
    written_before = metric(ports["api"], "otelcost_lake_rows_written_total")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    load.stop()
    acked = len(load.acked)
    assert written_before > 0, "no flush happened before the kill: the test proves too little"
    assert acked > written_before, "nothing was acknowledged after the last flush"

    second = start_serve(config, data_dir, ports, log)
    processes.append(second)
    replayed = metric(ports["api"], "otelcost_spool_replayed_records_total")
    skipped = metric(ports["api"], "otelcost_spool_replay_skipped_records_total")
    assert replayed > 0

    rows = sql(data_dir, "SELECT trace_id, span_id FROM llm_calls")
    in_lake = [(row["trace_id"], row["span_id"]) for row in rows]
    unique = set(in_lake)
    missing = load.acked - unique
    assert not missing, f"{len(missing)} of {acked} acknowledged spans are not in the lake"
    assert len(in_lake) == len(unique), f"{len(in_lake) - len(unique)} duplicate rows in the lake"
    assert unique <= load.sent

    sums = sql(
        data_dir,
        "SELECT team, sum(cost_usd)::VARCHAR AS cost, count(*) AS calls FROM llm_calls "
        "WHERE ts >= current_date::TIMESTAMPTZ GROUP BY team",
    )
    expected = {("cost-per-team", r["team"]): Decimal(r["cost"]) for r in sums} | {
        ("calls-per-team", r["team"]): Decimal(r["calls"]) for r in sums
    }
    # Spend figures are republished every budgeting.snapshot_refresh.
    what = f"the budget totals to match the lake: {expected}"
    wait_until(lambda: budget_totals(ports["api"]) == expected, timeout=10, poll=0.1, what=what)

    second.send_signal(signal.SIGTERM)
    second.wait(timeout=30)
    assert second.returncode == 0, log.read_text()
    print(  # the numbers the report quotes (pytest -s)
        f"\nacked={acked} sent={len(load.sent)} in_lake={len(in_lake)} duplicates=0 "
        f"failed_calls={load.failed_calls} written_before_kill={int(written_before)} "
        f"replayed_records={int(replayed)} skipped_records={int(skipped)}"
    )
