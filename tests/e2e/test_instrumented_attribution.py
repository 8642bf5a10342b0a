"""Attribution an application sets through its instrumentation reaches the lake, over gRPC and HTTP.

The official ``openai`` and ``anthropic`` clients, instrumented by OpenInference, call the loopback
fake provider inside OpenInference's ``using_attributes(...)``: the documented way to attach
business context, which lands as ``user.id``, ``session.id`` and ``metadata`` (a JSON object as
text) on the call span. The real OTLP exporters send the spans to a running otelcost; the rows
are read back with ``otelcost sql``. The default attribution rules must fill all five dimensions
the application set: team, feature and tenant from the metadata, user and session from their keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otelcost.cli import main
from otelcost.server import BackgroundServer
from tests.e2e.conftest import otlp_exporter

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")
openinference = pytest.importorskip("openinference.instrumentation")
openinference_openai = pytest.importorskip("openinference.instrumentation.openai")
openinference_anthropic = pytest.importorskip("openinference.instrumentation.anthropic")

METADATA = {"team": "payments", "feature": "receipt-qa", "tenant_id": "acme-corp", "ticket": 4711}


def _call_openai(url: str) -> None:
    client = openai.OpenAI(base_url=url + "/v1", api_key="test-key", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


def _call_anthropic(url: str) -> None:
    client = anthropic.Anthropic(base_url=url, api_key="test-key", max_retries=0)
    client.messages.create(model="claude-test", max_tokens=100, messages=[{"role": "user", "content": "hi"}])


CLIENTS: dict[str, tuple[Any, Callable[[str], None], tuple[int, int, int, int]]] = {
    # client -> (instrumentor class, call, (input, output, cache_read, cache_write) of the fake answer)
    "openai": (openinference_openai.OpenAIInstrumentor, _call_openai, (1200, 300, 1024, 0)),
    "anthropic": (openinference_anthropic.AnthropicInstrumentor, _call_anthropic, (1700, 80, 1000, 500)),
}


def _rows(data_dir: Path) -> list[dict[str, Any]]:
    query = (
        "SELECT provider, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, team, "
        "feature, user_id, tenant_id, session_id, attribution_status FROM llm_calls"
    )
    result = CliRunner().invoke(main, ["sql", "--data-dir", str(data_dir), "--format", "json", query])
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.output)
    return rows


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_openinference_using_attributes_fills_all_five_dimensions(
    running: BackgroundServer, provider_url: str, protocol: str, client: str
) -> None:
    instrumentor_class, call, (input_tokens, output_tokens, cache_read, cache_write) = CLIENTS[client]
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    tracer_provider.add_span_processor(SimpleSpanProcessor(otlp_exporter(running, protocol)))
    instrumentor = instrumentor_class()
    instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        with openinference.using_attributes(user_id="u-42", session_id="s-7", metadata=METADATA):
            call(provider_url)
    finally:
        instrumentor.uninstrument()
        tracer_provider.shutdown()
    running.stop()  # drains and flushes the lake

    (row,) = _rows(running.server.config.data_dir)
    assert row["provider"] == client
    assert (row["input_tokens"], row["output_tokens"]) == (input_tokens, output_tokens)
    assert (row["cache_read_tokens"], row["cache_write_tokens"]) == (cache_read, cache_write)
    assert (row["team"], row["feature"], row["tenant_id"]) == ("payments", "receipt-qa", "acme-corp")
    assert (row["user_id"], row["session_id"]) == ("u-42", "s-7")
    assert row["attribution_status"] == "complete"
