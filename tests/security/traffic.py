"""Traffic for the security tests: chat spans through the SDK's exporters, and reading what a
running test server landed, the analyst's way (``otelcost sql``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from click.testing import CliRunner
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from otelcost.cli import main
from otelcost.server import BackgroundServer


def landed(running: BackgroundServer, query: str) -> list[dict[str, Any]]:
    """Flush the server's lake buffer, then run ``query`` with ``otelcost sql --format json``."""
    running.server.pipeline.lake.flush()
    result = CliRunner().invoke(
        main, ["sql", "--data-dir", str(running.server.config.data_dir), "--format", "json", query]
    )
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.output)
    return rows


CHAT: Mapping[str, Any] = {
    "gen_ai.provider.name": "openai",
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 1_000,
    "gen_ai.usage.output_tokens": 100,
}


class _Recording(SpanExporter):
    """Passes every export on, keeping what the real exporter answered."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.results: list[SpanExportResult] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.results.append(self.inner.export(spans))
        return self.results[-1]

    def shutdown(self) -> None:
        self.inner.shutdown()


def send_chats(
    exporter: SpanExporter, *, resource: Mapping[str, Any], spans: Sequence[Mapping[str, Any]]
) -> list[SpanExportResult]:
    """One chat span per entry of ``spans`` (its attributes on top of :data:`CHAT`), each
    exported at once through ``exporter``; what the exporter answered, per span."""
    recording = _Recording(exporter)
    provider = TracerProvider(resource=Resource.create(dict(resource)))
    provider.add_span_processor(SimpleSpanProcessor(recording))
    tracer = provider.get_tracer("acme.llm")
    for attributes in spans:
        with tracer.start_as_current_span("chat gpt-4o", attributes={**CHAT, **attributes}):
            pass
    provider.shutdown()
    return recording.results
