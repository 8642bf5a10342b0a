"""A running otelcost server on free loopback ports, the fake provider and OTLP exporters to the
server, for end-to-end tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.trace.export import SpanExporter

from otelcost.config import Config, load_config
from otelcost.server import BackgroundServer
from tests.normalize.fake_providers import fake_provider


def loopback_config(data_dir: Path, **overrides: object) -> Config:
    layer: dict[str, object] = {
        "data_dir": str(data_dir),
        "receiver": {"grpc": {"listen": "127.0.0.1:0"}, "http": {"listen": "127.0.0.1:0"}},
        "api": {"listen": "127.0.0.1:0"},
        "lake": {"flush_interval": "200ms"},
    }
    layer.update(overrides)
    return load_config(None, overrides=layer, environ={})


@pytest.fixture
def running(tmp_path: Path) -> Iterator[BackgroundServer]:
    with BackgroundServer(loopback_config(tmp_path / "data")) as server:
        yield server


@pytest.fixture(scope="module")
def provider_url() -> Iterator[str]:
    """The loopback fake provider (tests/normalize/fake_providers.py), one per module."""
    with fake_provider() as url:
        yield url


def otlp_exporter(server: BackgroundServer, protocol: str) -> SpanExporter:
    """The OpenTelemetry SDK's OTLP exporter (``grpc`` or ``http``) to ``server``."""
    assert server.server.grpc is not None and server.server.http is not None
    if protocol == "grpc":
        return GrpcSpanExporter(endpoint=f"127.0.0.1:{server.server.grpc.port}", insecure=True, timeout=5)
    return HttpSpanExporter(endpoint=f"http://127.0.0.1:{server.server.http.port}/v1/traces", timeout=5)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """``otelcost serve`` processes a test starts; whatever still runs at the end is killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()
