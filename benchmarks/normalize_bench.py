"""Normalizer throughput on a realistic batch: ``python -m benchmarks.normalize_bench``.

512 LLM spans per export request, 20 attributes each (an OpenTelemetry GenAI chat span as the
official OpenAI instrumentation emits it, plus attribution keys), one resource. Prints spans/s
for ``Normalizer.normalize`` alone (decoding, conventions, nesting rule, attribution, Arrow).
Not a timed test: the machine it runs on decides the number.
"""

from __future__ import annotations

import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otelcost.normalize import AttributionConfig, Normalizer
from tests.normalize.otlp_builders import NOW_NS, SpanSpec, request


def _span(i: int) -> SpanSpec:
    return SpanSpec(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.response.id": f"chatcmpl-{i:08d}",
            "gen_ai.response.finish_reasons": ["stop"],
            "gen_ai.request.temperature": 0.2,
            "gen_ai.request.max_tokens": 512,
            "gen_ai.usage.input_tokens": 1200 + i,
            "gen_ai.usage.output_tokens": 300,
            "gen_ai.usage.cache_read.input_tokens": 1024,
            "gen_ai.usage.reasoning.output_tokens": 64,
            "openai.response.service_tier": "default",
            "server.address": "api.openai.com",
            "server.port": 443,
            "app.team": "payments",
            "app.feature": "checkout-assistant",
            "user.id": f"user-{i % 97}",
            "session.id": f"session-{i % 31}",
            "gen_ai.conversation.id": f"conv-{i % 31}",
        },
        name="chat gpt-4o-mini",
    )


def main(requests: int = 40, spans_per_request: int = 512) -> None:
    normalizer = Normalizer(AttributionConfig(required=["team", "feature"]))
    # Parsed from bytes, as the receivers hand requests over.
    payload = request([_span(i) for i in range(spans_per_request)]).SerializeToString()
    batches = [ExportTraceServiceRequest.FromString(payload) for _ in range(requests)]
    normalizer.normalize(batches[0], received_at_ns=NOW_NS)  # warm up
    started = time.perf_counter()
    rows = 0
    for batch in batches:
        rows += normalizer.normalize(batch, received_at_ns=NOW_NS).calls.num_rows
    elapsed = time.perf_counter() - started
    spans = requests * spans_per_request
    print(f"{spans} spans ({rows} rows) in {elapsed:.3f}s: {spans / elapsed:,.0f} spans/s")


if __name__ == "__main__":
    main()
