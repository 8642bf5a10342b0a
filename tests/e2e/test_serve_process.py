"""``otelcost serve`` as a real process: it starts, takes OTLP, flushes on SIGTERM, fails fast."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.waiting import wait_until

pytestmark = pytest.mark.slow

OTELCOST = [sys.executable, "-m", "otelcost"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(api_port: int, process: subprocess.Popen[str], timeout: float = 30) -> None:
    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"serve exited early: {process.communicate()}")
        try:
            return requests.get(f"http://127.0.0.1:{api_port}/readyz", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    wait_until(ready, timeout=timeout, poll=0.1, what="serve to become ready")


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, int], Path]]:
    ports = {"grpc": free_port(), "http": free_port(), "api": free_port()}
    data_dir = tmp_path / "data"
    process = subprocess.Popen(
        [
            *OTELCOST,
            "serve",
            "--data-dir",
            str(data_dir),
            "--grpc-listen",
            f"127.0.0.1:{ports['grpc']}",
            "--http-listen",
            f"127.0.0.1:{ports['http']}",
            "--api-listen",
            f"127.0.0.1:{ports['api']}",
            "--flush-interval",
            "1h",  # nothing is flushed on the interval: only SIGTERM can put rows in the lake
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("OTELCOST_")},
    )
    try:
        wait_ready(ports["api"], process)
        yield process, ports, data_dir
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_sigterm_flushes_everything_acknowledged(
    serve_process: tuple[subprocess.Popen[str], dict[str, int], Path],
) -> None:
    process, ports, data_dir = serve_process
    provider = TracerProvider(resource=Resource.create({"service.name": "svc"}))
    provider.add_span_processor(
        SimpleSpanProcessor(
            OTLPSpanExporter(endpoint=f"http://127.0.0.1:{ports['http']}/v1/traces", timeout=5)
        )
    )
    tracer = provider.get_tracer("t")
    for i in range(25):
        with tracer.start_as_current_span(
            "chat",
            attributes={
                "gen_ai.provider.name": "openai",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 100 + i,
                "gen_ai.usage.output_tokens": 10,
            },
        ):
            pass
    provider.shutdown()
    metrics = requests.get(f"http://127.0.0.1:{ports['api']}/metrics", timeout=5).text
    assert "otelcost_calls_total 25.0" in metrics

    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr

    result = subprocess.run(
        [
            *OTELCOST,
            "sql",
            "--data-dir",
            str(data_dir),
            "--format",
            "json",
            "SELECT count(*) AS n, sum(input_tokens) AS input_tokens FROM llm_calls",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == [{"n": 25, "input_tokens": sum(100 + i for i in range(25))}]


def test_health_readiness_and_documented_metrics(
    serve_process: tuple[subprocess.Popen[str], dict[str, int], Path],
) -> None:
    _, ports, _ = serve_process
    api = f"http://127.0.0.1:{ports['api']}"
    assert requests.get(f"{api}/healthz", timeout=5).json() == {"status": "ok"}
    assert requests.get(f"{api}/readyz", timeout=5).json() == {"status": "ready"}
    exposed = [
        line.split()[2]
        for line in requests.get(f"{api}/metrics", timeout=5).text.splitlines()
        if line.startswith("# HELP ")
    ]
    documented = (Path(__file__).parent.parent.parent / "docs" / "metrics.md").read_text()
    assert len(exposed) > 20
    assert [name for name in exposed if f"`{name}`" not in documented] == []


def run_serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*OTELCOST, "serve", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("OTELCOST_")},
    )


def test_bad_config_exits_with_a_one_line_reason(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("lake:\n  flush_interval: soon\n")
    result = run_serve("-c", str(config), "--data-dir", str(tmp_path))
    assert result.returncode != 0
    assert "lake.flush_interval" in result.stderr
    assert "Traceback" not in result.stderr


def test_busy_port_exits_with_a_one_line_reason(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_serve(
            "--data-dir",
            str(tmp_path),
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            f"127.0.0.1:{port}",
            "--api-listen",
            "127.0.0.1:0",
        )
    assert result.returncode != 0
    assert f"127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_unwritable_data_dir_exits_with_a_one_line_reason(tmp_path: Path) -> None:
    # A path below a regular file cannot be created, whoever runs the test (root included).
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    result = run_serve("--data-dir", str(blocker / "data"))
    assert result.returncode != 0
    assert "not writable" in result.stderr
