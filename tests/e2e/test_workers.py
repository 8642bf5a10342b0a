"""``receiver.workers: 2``: two receiver processes share the OTLP ports and feed one pipeline.

Real OpenTelemetry SDK exporters (gRPC and HTTP, several connections) send to the worker
processes; the rows must land in the lake once each, priced, counted by the budgets, and the
workers' counters must reach the serve process's ``/metrics``. A worker killed with SIGKILL is
started again and nothing it acknowledged is lost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

from otelcost.cli import main
from otelcost.errors import OtelcostError
from otelcost.server import BackgroundServer
from otelcost.workers import WorkerPool
from tests.e2e.conftest import loopback_config
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

BUDGETS = [
    {  # a first threshold at the smallest spend makes every team's total visible in /v1/decisions
        "name": "team-monthly",
        "scope": {"team": "*"},
        "window": "month",
        "limit": 1000,
        "thresholds": [{"at": "0.000000000001", "action": "notify", "alert": False}],
    }
]


def worker_config(data_dir: Path, **overrides: Any) -> Any:
    receiver = {"workers": 2, "grpc": {"listen": "127.0.0.1:0"}, "http": {"listen": "127.0.0.1:0"}}
    budgeting = {"snapshot_refresh": "100ms", "tick_interval": "100ms"}
    return loopback_config(data_dir, receiver=receiver, budgets=BUDGETS, budgeting=budgeting, **overrides)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[BackgroundServer]:
    with BackgroundServer(worker_config(tmp_path / "data"), start_timeout=60) as server:
        yield server


def pool(running: BackgroundServer) -> WorkerPool:
    assert running.server.workers is not None
    return running.server.workers


def sql(data_dir: Path, query: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(main, ["sql", "--data-dir", str(data_dir), "--format", "json", query])
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.output)
    return rows


def metrics(running: BackgroundServer) -> dict[str, float]:
    text = requests.get(f"http://127.0.0.1:{running.server.api_port}/metrics", timeout=5).text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def send_calls(exporter: SpanExporter, team: str, count: int, first: int = 0) -> None:
    """``count`` chat calls through a provider of their own (its own connection)."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"svc-{team}"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("acme.llm")
    for number in range(first, first + count):
        with tracer.start_as_current_span(
            "chat gpt-4o-mini",
            attributes={
                "gen_ai.provider.name": "openai",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 1000 + number,
                "gen_ai.usage.output_tokens": 100,
                "team": team,
            },
        ):
            pass
    provider.shutdown()


def grpc_exporter(running: BackgroundServer) -> GrpcSpanExporter:
    return GrpcSpanExporter(
        endpoint=f"127.0.0.1:{running.server.otlp_port('grpc')}", insecure=True, timeout=10
    )


def http_exporter(running: BackgroundServer) -> HttpSpanExporter:
    return HttpSpanExporter(
        endpoint=f"http://127.0.0.1:{running.server.otlp_port('http')}/v1/traces", timeout=10
    )


def test_spans_through_workers_land_once_priced_and_budgeted(
    running: BackgroundServer, tmp_path: Path
) -> None:
    teams = [f"team-{n}" for n in range(6)]
    for index, team in enumerate(teams):  # a provider per team: six connections over two workers
        send_calls(grpc_exporter(running) if index % 2 else http_exporter(running), team, 20)
    wait_until(lambda: metrics(running).get("otelcost_lake_rows_written_total", 0) == 120, timeout=20)
    rows = sql(
        tmp_path / "data",
        "SELECT team, count(*) AS n, count(DISTINCT span_id) AS spans, sum(cost_usd)::VARCHAR AS cost, "
        "min(pricing_status) AS status FROM llm_calls GROUP BY team ORDER BY team",
    )
    assert [(row["team"], row["n"], row["spans"], row["status"]) for row in rows] == [
        (team, 20, 20, "priced") for team in teams
    ]
    lake_costs = {row["team"]: Decimal(row["cost"]) for row in rows}

    def budgets_match_the_lake() -> bool:
        answer = requests.get(f"http://127.0.0.1:{running.server.api_port}/v1/decisions", timeout=5).json()
        return {d["scope"]["team"]: Decimal(d["spent"]) for d in answer["decisions"]} == lake_costs

    wait_until(budgets_match_the_lake, timeout=20)

    # The workers' own counters reach the serve process's /metrics (sent about once a second).
    def counted() -> bool:
        sample = metrics(running)
        return (
            sample.get('otelcost_receiver_spans_total{protocol="grpc"}') == 60
            and sample.get('otelcost_receiver_spans_total{protocol="http"}') == 60
            and sample.get('otelcost_calls_by_convention_total{convention="gen_ai"}') == 120
        )

    wait_until(counted, timeout=20)
    sample = metrics(running)
    assert sample["otelcost_receiver_workers"] == 2
    assert sample["otelcost_receiver_workers_live"] == 2
    assert sample["otelcost_calls_total"] == 120
    assert sample["otelcost_spans_received_total"] == 120


def test_a_killed_worker_is_started_again_and_nothing_acknowledged_is_lost(
    running: BackgroundServer, tmp_path: Path
) -> None:
    workers = pool(running)
    send_calls(grpc_exporter(running), "before", 30)
    send_calls(http_exporter(running), "before", 30, first=30)
    victim = workers.pids()[0]
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: metrics(running).get("otelcost_receiver_worker_restarts_total") == 1, timeout=20)
    wait_until(lambda: metrics(running).get("otelcost_receiver_workers_live") == 2, timeout=20)
    assert workers.pids()[0] not in (None, victim)
    send_calls(grpc_exporter(running), "after", 30)
    send_calls(http_exporter(running), "after", 30, first=30)
    wait_until(lambda: metrics(running).get("otelcost_lake_rows_written_total", 0) >= 120, timeout=20)
    rows = sql(
        tmp_path / "data",
        "SELECT team, count(*) AS n, count(DISTINCT span_id) AS spans FROM llm_calls "
        "GROUP BY team ORDER BY team",
    )
    assert rows == [{"team": "after", "n": 60, "spans": 60}, {"team": "before", "n": 60, "spans": 60}]


def test_bad_input_gets_a_protocol_error_and_the_workers_keep_serving(running: BackgroundServer) -> None:
    url = f"http://127.0.0.1:{running.server.otlp_port('http')}/v1/traces"
    for _ in range(4):  # new connections each time: both workers see some
        answer = requests.post(
            url, data=b"\xff\xffnot protobuf", headers={"Content-Type": "application/x-protobuf"}, timeout=5
        )
        assert answer.status_code == 400
    send_calls(http_exporter(running), "ok", 5)
    wait_until(lambda: metrics(running).get("otelcost_lake_rows_written_total", 0) == 5, timeout=20)
    invalid = 'otelcost_receiver_requests_total{outcome="invalid",protocol="http"}'
    wait_until(lambda: metrics(running).get(invalid) == 4, timeout=20)
    assert metrics(running)["otelcost_receiver_workers_live"] == 2


def test_a_busy_port_fails_the_start_with_the_setting_named(tmp_path: Path) -> None:
    import socket  # noqa: PLC0415

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        receiver = {"workers": 2, "grpc": {"listen": "127.0.0.1:0"}, "http": {"listen": f"127.0.0.1:{port}"}}
        config = loopback_config(tmp_path / "data", receiver=receiver)
        with pytest.raises(OtelcostError, match=r"receiver\.http\.listen"):
            BackgroundServer(config, start_timeout=60).start()


def test_serve_with_workers_flushes_everything_on_sigterm(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config = tmp_path / "otelcost.yaml"
    config.write_text(
        "receiver:\n  grpc: {listen: '127.0.0.1:0'}\n  http: {listen: '127.0.0.1:0'}\n"
        "api: {listen: '127.0.0.1:0'}\nlake: {flush_interval: 1h}\n"
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "otelcost",
            "serve",
            "-c",
            str(config),
            "--data-dir",
            str(data_dir),
            "--workers",
            "2",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("OTELCOST_")},
    )
    try:
        assert process.stderr is not None
        ready = ""
        while "otelcost is ready" not in ready:
            ready = process.stderr.readline()
            assert ready, "serve exited before it was ready"
        http_port = int(ready.split("OTLP/HTTP on 127.0.0.1:")[1].split(",")[0])
        exporter = HttpSpanExporter(endpoint=f"http://127.0.0.1:{http_port}/v1/traces", timeout=10)
        send_calls(exporter, "sigterm", 25)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        assert "ERROR" not in stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert sql(data_dir, "SELECT count(*) AS n FROM llm_calls") == [{"n": 25}]


def test_readiness_is_withdrawn_while_no_worker_listens(tmp_path: Path) -> None:
    receiver = {"workers": 1, "grpc": {"listen": "127.0.0.1:0"}, "http": {"listen": "127.0.0.1:0"}}
    with BackgroundServer(loopback_config(tmp_path / "data", receiver=receiver), start_timeout=60) as running:
        readyz = f"http://127.0.0.1:{running.server.api_port}/readyz"
        assert requests.get(readyz, timeout=5).status_code == 200
        [pid] = pool(running).pids()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: requests.get(readyz, timeout=5).status_code == 503, timeout=20)
        wait_until(lambda: requests.get(readyz, timeout=5).status_code == 200, timeout=20)  # started again
        assert metrics(running)["otelcost_receiver_worker_restarts_total"] == 1


def test_workers_stop_when_the_serve_process_is_killed(tmp_path: Path) -> None:
    config = tmp_path / "otelcost.yaml"
    config.write_text(
        "receiver:\n  workers: 2\n  grpc: {listen: '127.0.0.1:0'}\n  http: {listen: '127.0.0.1:0'}\n"
        "api: {listen: '127.0.0.1:0'}\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "otelcost", "serve", "-c", str(config), "--data-dir", str(tmp_path / "data")],
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("OTELCOST_")},
    )
    try:
        assert process.stderr is not None
        while "otelcost is ready" not in (line := process.stderr.readline()):
            assert line, "serve exited before it was ready"
        workers = [
            int(child)
            for task in Path(f"/proc/{process.pid}/task").iterdir()
            for child in (task / "children").read_text().split()
        ]
        assert len(workers) == 2
        process.kill()
        process.wait()

        def gone(pid: int) -> bool:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except FileNotFoundError:
                return True
            return "State:\tZ" in status  # exited; only its parent's reaping is missing

        wait_until(lambda: all(gone(pid) for pid in workers), timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_a_full_lake_buffer_refuses_through_the_worker_with_a_retryable_503(tmp_path: Path) -> None:
    """The serve process refuses (the lake cannot flush: a reprice holds its lock); the worker
    answers the sender 503 with Retry-After, and takes the same request once the lake moves."""
    from otelcost.lake.locking import lake_lock  # noqa: PLC0415
    from tests.normalize.otlp_builders import SpanSpec, request  # noqa: PLC0415

    receiver = {"workers": 1, "grpc": {"listen": "127.0.0.1:0"}, "http": {"listen": "127.0.0.1:0"}}
    config = loopback_config(tmp_path / "data", receiver=receiver, lake={"max_buffer_rows": 2})
    attrs = {
        "gen_ai.provider.name": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 1,
    }
    now_ns = time.time_ns()

    def body() -> bytes:  # two calls per request, fresh ids
        spans = [SpanSpec(attrs, start_ns=now_ns, end_ns=now_ns + 10**9) for _ in range(2)]
        return request(spans).SerializeToString()

    headers = {"Content-Type": "application/x-protobuf"}
    with BackgroundServer(config, start_timeout=60) as running:
        url = f"http://127.0.0.1:{running.server.otlp_port('http')}/v1/traces"
        with lake_lock(tmp_path / "data" / "lake"):  # exclusive, as `otelcost reprice` holds it
            statuses = [requests.post(url, data=body(), headers=headers, timeout=10) for _ in range(6)]
            refused = [answer for answer in statuses if answer.status_code == 503]
            assert [answer.status_code for answer in statuses[:4]] == [200] * 4  # 8 rows: the bound
            assert refused and all("Retry-After" in answer.headers for answer in refused)
            retry = body()

        # As a sender does: retry the refused request until it is taken (once the lake flushed).
        def taken() -> bool:
            answer = requests.post(url, data=retry, headers=headers, timeout=10)
            refused.extend([answer] if answer.status_code == 503 else [])
            return answer.status_code == 200

        wait_until(taken, timeout=20)
        wait_until(lambda: metrics(running).get("otelcost_lake_rows_written_total") == 10, timeout=20)
        assert metrics(running)["otelcost_export_refused_requests_total"] == len(refused)
