"""Realistic OTLP traffic for the benchmarks, built once and sent as pre-encoded bytes.

LLM spans look like what the OpenTelemetry GenAI instrumentations emit (OpenAI and Anthropic
chat calls) plus the attribution keys an application adds: 15 to 25 attributes each, spread over
20 teams, 1,000 users, 5 models, 40 features and 5,000 sessions. Non-LLM spans are the HTTP
server, HTTP client and database spans around them (6 to 9 attributes). One export request is
what a ``BatchSpanProcessor`` sends: one resource (a service), one scope per instrumentation,
512 spans by default.

Every span has fresh random trace and span ids (the budget evaluator de-duplicates by them), and
start times a few seconds before the requests are built (so they land in today's partition and
this month's budget window).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Final

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

__all__ = ["MODELS", "PRICES_PER_MTOK", "TEAMS", "Workload", "build_workload"]

TEAMS: Final = tuple(f"team-{i:02d}" for i in range(20))
USERS: Final = 1000
SESSIONS: Final = 5000
FEATURES: Final = tuple(f"feature-{i:02d}" for i in range(40))
SERVICES: Final = tuple(f"svc-{i}" for i in range(8))
MODELS: Final = (
    # (provider, request model, response model, server address)
    ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "api.openai.com"),
    ("openai", "gpt-4o", "gpt-4o-2024-08-06", "api.openai.com"),
    ("openai", "gpt-4.1-mini", "gpt-4.1-mini", "api.openai.com"),
    ("anthropic", "claude-sonnet-4", "claude-sonnet-4", "api.anthropic.com"),
    ("anthropic", "claude-3-5-haiku", "claude-3-5-haiku", "api.anthropic.com"),
)
PRICES_PER_MTOK: Final = {
    # USD per million tokens (input, cached input, output), for the hand-written alternative.
    "gpt-4o-mini": (0.15, 0.075, 0.60),
    "gpt-4o": (2.50, 1.25, 10.00),
    "gpt-4.1-mini": (0.40, 0.10, 1.60),
    "claude-sonnet-4": (3.00, 0.30, 15.00),
    "claude-3-5-haiku": (0.80, 0.08, 4.00),
}
LLM_SCOPE: Final = "opentelemetry.instrumentation.openai_v2"
WEB_SCOPE: Final = "opentelemetry.instrumentation.flask"
DB_SCOPE: Final = "opentelemetry.instrumentation.psycopg"


def _kv(key: str, value: str | int | float | list[str]) -> KeyValue:
    if isinstance(value, bool):
        raise TypeError("no bools in this workload")
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, list):
        items = [AnyValue(string_value=v) for v in value]
        return KeyValue(key=key, value=AnyValue(array_value=ArrayValue(values=items)))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _llm_attributes(rng: random.Random, serial: int) -> list[KeyValue]:
    provider, model, response_model, address = MODELS[rng.randrange(len(MODELS))]
    user = rng.randrange(USERS)
    input_tokens = rng.randint(200, 6000)
    attrs: list[tuple[str, str | int | float | list[str]]] = [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.provider.name", provider),
        ("gen_ai.request.model", model),
        ("gen_ai.response.model", response_model),
        ("gen_ai.response.id", f"resp-{serial:010d}-{rng.getrandbits(32):08x}"),
        ("gen_ai.response.finish_reasons", ["stop"]),
        ("gen_ai.request.temperature", 0.2),
        ("gen_ai.request.max_tokens", 1024),
        ("gen_ai.usage.input_tokens", input_tokens),
        ("gen_ai.usage.output_tokens", rng.randint(20, 1200)),
        ("server.address", address),
        ("server.port", 443),
        ("app.team", TEAMS[user % len(TEAMS)]),
        ("app.feature", FEATURES[rng.randrange(len(FEATURES))]),
        ("user.id", f"user-{user:04d}"),
    ]
    optional: list[tuple[str, str | int | float | list[str]]] = [
        ("session.id", f"session-{rng.randrange(SESSIONS):05d}"),
        ("gen_ai.usage.cache_read.input_tokens", input_tokens // 2),
        ("gen_ai.request.top_p", 1.0),
        ("gen_ai.conversation.id", f"conv-{rng.randrange(SESSIONS):05d}"),
        ("openai.response.service_tier", "default"),
        ("tenant.id", f"tenant-{user % 50:02d}"),
        ("gen_ai.request.seed", 42),
        ("app.workflow", f"workflow-{rng.randrange(10)}"),
        ("gen_ai.request.frequency_penalty", 0.0),
        ("deployment.region", "eu-west-1"),
    ]
    # 15 to 25 attributes: the 15 above plus 0..10 of the optional ones (session.id first, so
    # most calls have a session for the p95-per-session query).
    attrs.extend(optional[: rng.randint(0, len(optional))])
    return [_kv(k, v) for k, v in attrs]


def _other_attributes(rng: random.Random, kind: int) -> list[KeyValue]:
    if kind == 0:
        attrs: list[tuple[str, str | int | float | list[str]]] = [
            ("http.request.method", "POST"),
            ("http.route", "/api/v1/assist"),
            ("url.path", f"/api/v1/assist/{rng.randrange(10_000)}"),
            ("url.scheme", "https"),
            ("http.response.status_code", 200),
            ("server.address", "assist.internal"),
            ("user_agent.original", "Mozilla/5.0"),
            ("network.protocol.version", "1.1"),
        ]
    elif kind == 1:
        attrs = [
            ("db.system.name", "postgresql"),
            ("db.namespace", "app"),
            ("db.operation.name", "SELECT"),
            ("db.query.text", "SELECT * FROM documents WHERE id = $1"),
            ("server.address", "db.internal"),
            ("server.port", 5432),
        ]
    else:
        attrs = [
            ("http.request.method", "GET"),
            ("url.full", f"https://search.internal/q?id={rng.randrange(10_000)}"),
            ("http.response.status_code", 200),
            ("server.address", "search.internal"),
            ("server.port", 443),
            ("network.peer.address", "10.0.3.7"),
            ("http.response.body.size", rng.randrange(100_000)),
        ]
    return [_kv(k, v) for k, v in attrs]


@dataclass(frozen=True)
class Workload:
    """Pre-encoded export requests and what they hold."""

    payloads: list[bytes]
    llm_spans: int
    other_spans: int

    @property
    def spans(self) -> int:
        return self.llm_spans + self.other_spans

    @property
    def bytes(self) -> int:
        return sum(len(p) for p in self.payloads)


def build_workload(
    llm_spans: int,
    *,
    other_per_llm: int = 0,
    spans_per_request: int = 512,
    seed: int = 1,
    late_roots: bool = False,
) -> Workload:
    """``llm_spans`` LLM calls, each in a trace with ``other_per_llm`` non-LLM spans (the trace's
    HTTP server root first, the LLM span its child), cut into requests of ``spans_per_request``.

    ``late_roots``: every root comes after all other spans, in later requests, and carries
    ``app.cost_center`` (the calls carry none): the worst case of late attribution (every call
    waits for its root, then changes attribution; docs/attribution.md)."""
    rng = random.Random(seed)
    now = time.time_ns()
    spans: list[tuple[str, Span]] = []
    roots: list[tuple[str, Span]] = []
    for serial in range(llm_spans):
        trace_id = rng.randbytes(16)
        start = now - rng.randrange(1, 5_000_000_000)
        root_id = rng.randbytes(8)
        parent = b""
        if other_per_llm:
            root_attributes = _other_attributes(rng, 0)
            if late_roots:
                root_attributes.append(_kv("app.cost_center", "cc-assist"))
            (roots if late_roots else spans).append(
                (
                    WEB_SCOPE,
                    Span(
                        trace_id=trace_id,
                        span_id=root_id,
                        name="POST /api/v1/assist",
                        kind=Span.SPAN_KIND_SERVER,
                        start_time_unix_nano=start - 2_000_000,
                        end_time_unix_nano=start + 900_000_000,
                        attributes=root_attributes,
                    ),
                )
            )
            parent = root_id
            for k in range(other_per_llm - 1):
                kind = 1 + k % 2
                spans.append(
                    (
                        DB_SCOPE if kind == 1 else WEB_SCOPE,
                        Span(
                            trace_id=trace_id,
                            span_id=rng.randbytes(8),
                            parent_span_id=root_id,
                            name="SELECT app.documents" if kind == 1 else "GET",
                            kind=Span.SPAN_KIND_CLIENT,
                            start_time_unix_nano=start + k * 1_000_000,
                            end_time_unix_nano=start + k * 1_000_000 + 800_000,
                            attributes=_other_attributes(rng, kind),
                        ),
                    )
                )
        attributes = _llm_attributes(rng, serial)
        model = attributes[2].value.string_value
        spans.append(
            (
                LLM_SCOPE,
                Span(
                    trace_id=trace_id,
                    span_id=rng.randbytes(8),
                    parent_span_id=parent,
                    name=f"chat {model}",
                    kind=Span.SPAN_KIND_CLIENT,
                    start_time_unix_nano=start,
                    end_time_unix_nano=start + rng.randrange(200_000_000, 8_000_000_000),
                    attributes=attributes,
                    status=Status(code=Status.STATUS_CODE_UNSET),
                ),
            )
        )
    spans += roots
    payloads = []
    for first in range(0, len(spans), spans_per_request):
        chunk = spans[first : first + spans_per_request]
        service = SERVICES[(first // spans_per_request) % len(SERVICES)]
        by_scope: dict[str, list[Span]] = {}
        for scope, span in chunk:
            by_scope.setdefault(scope, []).append(span)
        resource = Resource(
            attributes=[
                _kv("service.name", service),
                _kv("service.version", "1.4.2"),
                _kv("deployment.environment.name", "production"),
                _kv("telemetry.sdk.name", "opentelemetry"),
                _kv("telemetry.sdk.language", "python"),
                _kv("telemetry.sdk.version", "1.38.0"),
                _kv("host.name", f"{service}-7f9c-{first % 7}"),
            ]
        )
        request = ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(
                    resource=resource,
                    scope_spans=[
                        ScopeSpans(scope=InstrumentationScope(name=scope, version="0.50b0"), spans=group)
                        for scope, group in by_scope.items()
                    ],
                )
            ]
        )
        payloads.append(request.SerializeToString())
    return Workload(payloads, llm_spans, llm_spans * other_per_llm)
