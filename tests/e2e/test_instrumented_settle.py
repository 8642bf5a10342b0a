"""One provider call, two spans: the anthropic SDK's own and an instrumentation's, counted once.

The anthropic SDK 2.x traces itself (scope ``com.anthropic.sdk.python``, span
``anthropic.messages.create``) once it is given a tracer provider; OpenLLMetry's and
OpenInference's Anthropic instrumentations report the same call again, side by side. Each test
makes a ``messages.create`` and a ``messages.stream`` call to the loopback fake provider inside an
application span (the HTTP handler), exports with the real OTLP exporters (gRPC and HTTP) to a
running otelcost, and reads the lake back with ``otelcost sql``: every call exactly once with the
provider's exact tokens, every folded span audited in ``duplicate_spans``, and the five
dimensions the application set on the call. ``SimpleSpanProcessor`` exports every span in its
own request as it ends (the handler after its calls: attribution arrives late),
``BatchSpanProcessor`` all in one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from otelcost.cli import main
from otelcost.server import BackgroundServer
from tests.e2e.conftest import otlp_exporter

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

anthropic = pytest.importorskip("anthropic")
openinference = pytest.importorskip("openinference.instrumentation")
openinference_anthropic = pytest.importorskip("openinference.instrumentation.anthropic")
openllmetry_anthropic = pytest.importorskip("opentelemetry.instrumentation.anthropic")

DIMENSIONS = {
    "team": "payments",
    "feature": "refunds",
    "tenant_id": "acme-corp",
    "user_id": "u-42",
    "session_id": "s-7",
}
# What the application puts on its handler span (docs/attribution.md, the default rules).
HANDLER_ATTRIBUTES = {
    "app.team": "payments",
    "app.feature": "refunds",
    "app.tenant": "acme-corp",
    "user.id": "u-42",
    "session.id": "s-7",
}
PROCESSORS: dict[str, Callable[[SpanExporter], SpanProcessor]] = {
    "simple": SimpleSpanProcessor,
    "batch": BatchSpanProcessor,
}


def _sql(data_dir: Path, query: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(main, ["sql", "--data-dir", str(data_dir), "--format", "json", query])
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.output)
    return rows


def _make_calls(
    url: str,
    tracer_provider: TracerProvider,
    instrument: Callable[[], Any],
    context: Callable[[], AbstractContextManager[Any]],
) -> None:
    """A create and a stream call inside the application's handler span; ``instrument``
    instruments the anthropic module and returns the instrumentor."""
    instrumentor = instrument()
    client = anthropic.Anthropic(
        base_url=url,
        api_key="test-key",
        max_retries=0,
        open_telemetry={"tracer_provider": tracer_provider},
    )
    try:
        tracer = tracer_provider.get_tracer("refund-service")
        with tracer.start_as_current_span("POST /refund", attributes=HANDLER_ATTRIBUTES), context():
            messages = [{"role": "user", "content": "hi"}]
            client.messages.create(model="claude-test", max_tokens=100, messages=messages)
            with client.messages.stream(model="claude-test", max_tokens=100, messages=messages) as stream:
                for _ in stream.text_stream:
                    pass
    finally:
        client.close()
        instrumentor.uninstrument()
        tracer_provider.shutdown()


def _check_lake(data_dir: Path) -> list[dict[str, Any]]:
    """Two calls with Anthropic's exact usage and the application's five dimensions."""
    calls = _sql(
        data_dir,
        "SELECT scope_name, response_id, input_tokens, output_tokens, cache_read_tokens, "
        "cache_write_tokens, team, feature, tenant_id, user_id, session_id, attribution_status "
        "FROM llm_calls ORDER BY ts",
    )
    assert len(calls) == 2, calls
    for call in calls:
        assert call["response_id"].startswith("msg_fake_")
        # 200 uncached + 1000 cache reads + 500 cache writes in, 80 out.
        assert (call["input_tokens"], call["cache_read_tokens"], call["cache_write_tokens"]) == (
            1700,
            1000,
            500,
        )
        assert call["output_tokens"] == 80
        assert {name: call[name] for name in DIMENSIONS} == DIMENSIONS
    assert len({call["response_id"] for call in calls}) == 2
    return calls


@pytest.mark.parametrize("processor", sorted(PROCESSORS))
@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_openllmetry_and_the_sdks_own_spans_count_each_call_once(
    running: BackgroundServer, provider_url: str, protocol: str, processor: str
) -> None:
    """OpenLLMetry's ``anthropic.chat`` and the SDK's span are siblings; both carry the response
    id (OpenLLMetry counts 81 output tokens for the stream, adding message_start's 1 to the 80
    of message_delta; the SDK's span, the first to end, is the call)."""
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": "refund-service"}))
    tracer_provider.add_span_processor(PROCESSORS[processor](otlp_exporter(running, protocol)))

    def instrument() -> Any:
        instrumentor = openllmetry_anthropic.AnthropicInstrumentor()
        instrumentor.instrument(tracer_provider=tracer_provider)
        return instrumentor

    _make_calls(provider_url, tracer_provider, instrument, nullcontext)
    running.stop()  # drains and flushes the lake

    data_dir = running.server.config.data_dir
    calls = _check_lake(data_dir)
    folded = _sql(
        data_dir,
        "SELECT d.scope_name, d.duplicate_reason, d.response_id, c.scope_name AS into_scope "
        "FROM duplicate_spans d JOIN llm_calls c "
        "ON (d.duplicate_of_trace_id, d.duplicate_of_span_id) = (c.trace_id, c.span_id)",
    )
    assert sorted((f["response_id"], f["duplicate_reason"]) for f in folded) == sorted(
        (c["response_id"], "response_id") for c in calls
    )
    assert {(f["scope_name"], f["into_scope"]) for f in folded} == {
        ("opentelemetry.instrumentation.anthropic", "com.anthropic.sdk.python")
    }


@pytest.mark.parametrize("hide_outputs", [False, True])
@pytest.mark.parametrize("processor", sorted(PROCESSORS))
@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_openinference_and_the_sdks_own_spans_count_each_call_once(
    running: BackgroundServer, provider_url: str, protocol: str, processor: str, hide_outputs: bool
) -> None:
    """OpenInference wraps ``messages.create`` around the SDK's span (the nesting rule keeps the
    SDK's), but reports ``messages.stream`` beside it. It records no response id attribute; the
    id is read from the response body it records in ``output.value``, and with outputs hidden
    (``TraceConfig(hide_outputs=True)``, a common privacy setting) there is none: the stream span
    is folded by the fingerprint. The team, feature and tenant come from OpenInference's
    ``using_attributes`` metadata, which only its spans carry: the SDK's span takes them from the
    folded one."""
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": "refund-service"}))
    tracer_provider.add_span_processor(PROCESSORS[processor](otlp_exporter(running, protocol)))
    metadata = {"team": "payments", "feature": "refunds", "tenant_id": "acme-corp"}

    def context() -> AbstractContextManager[Any]:
        manager: AbstractContextManager[Any] = openinference.using_attributes(
            user_id="u-42", session_id="s-7", metadata=metadata
        )
        return manager

    def instrument() -> Any:
        instrumentor = openinference_anthropic.AnthropicInstrumentor()
        config = openinference.TraceConfig(hide_outputs=hide_outputs)
        instrumentor.instrument(tracer_provider=tracer_provider, config=config)
        return instrumentor

    _make_calls(provider_url, tracer_provider, instrument, context)
    running.stop()

    data_dir = running.server.config.data_dir
    calls = _check_lake(data_dir)
    assert {call["scope_name"] for call in calls} == {"com.anthropic.sdk.python"}
    folded = _sql(data_dir, "SELECT span_name, duplicate_reason FROM duplicate_spans")
    reason = "fingerprint" if hide_outputs else "response_id"
    assert folded == [{"span_name": "messages.stream", "duplicate_reason": reason}]
