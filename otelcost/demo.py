"""A simulated company that sends LLM telemetry through the real OpenTelemetry SDK.

``otelcost demo`` and the end-to-end tests use it. Six services of five teams make chat and
embedding calls for features, users and sessions, on several providers' models. The spans are
what real instrumentations send: current OpenTelemetry GenAI attributes for most, the
deprecated ones (``gen_ai.system``, ``gen_ai.usage.prompt_tokens``) for one legacy service,
agent spans around the model calls (not LLM calls themselves: they are dropped and counted),
prompt-cache reads, reasoning tokens, an in-house model that no catalog prices, and a few
failed calls. Half the services export over OTLP/gRPC, half over OTLP/HTTP.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Status, StatusCode

__all__ = ["SERVICES", "Service", "exporting_providers", "simulate"]


@dataclass(frozen=True, slots=True)
class Model:
    provider: str
    request: str
    response: str
    operation: str = "chat"
    reasoning: bool = False


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    team: str
    features: tuple[str, ...]
    models: tuple[Model, ...]
    legacy_conventions: bool = False
    protocol: str = "grpc"


GPT_4O = Model("openai", "gpt-4o", "gpt-4o-2024-08-06")
GPT_4O_MINI = Model("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18")
O3_MINI = Model("openai", "o3-mini", "o3-mini-2025-01-31", reasoning=True)
EMBEDDING = Model("openai", "text-embedding-3-small", "text-embedding-3-small", operation="embeddings")
CLAUDE = Model("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929")
HAIKU = Model("anthropic", "claude-haiku-4-5", "claude-haiku-4-5-20251001")
GEMINI = Model("gcp.gemini", "gemini-2.5-flash", "gemini-2.5-flash")
IN_HOUSE = Model("acme", "acme-summarizer-v2", "acme-summarizer-v2")

SERVICES: tuple[Service, ...] = (
    Service("support-bot", "customer-care", ("ticket-triage", "reply-draft"), (GPT_4O_MINI, CLAUDE, HAIKU)),
    Service(
        "checkout-assistant",
        "payments",
        ("fraud-explain", "receipt-qa"),
        (GPT_4O, GPT_4O_MINI),
        protocol="http",
    ),
    Service("search", "discovery", ("query-rewrite", "semantic-search"), (EMBEDDING, GEMINI)),
    Service("code-review", "platform", ("pr-review",), (O3_MINI, CLAUDE), protocol="http"),
    Service("reporting", "data", ("weekly-digest",), (GPT_4O, IN_HOUSE), legacy_conventions=True),
    Service("onboarding-agent", "customer-care", ("setup-wizard",), (HAIKU, GEMINI), protocol="http"),
)

TENANTS = tuple(f"tenant-{i:03d}" for i in range(40))


@contextmanager
def exporting_providers(
    grpc_endpoint: str, http_endpoint: str, *, environment: str = "production"
) -> Iterator[dict[str, TracerProvider]]:
    """One TracerProvider per simulated service, exporting over OTLP; flushed and shut down on exit."""
    providers: dict[str, TracerProvider] = {}
    for service in SERVICES:
        exporter: SpanExporter
        if service.protocol == "grpc":
            exporter = GrpcSpanExporter(endpoint=grpc_endpoint, insecure=True)
        else:
            exporter = HttpSpanExporter(endpoint=f"{http_endpoint.rstrip('/')}/v1/traces")
        resource = Resource.create({"service.name": service.name, "deployment.environment.name": environment})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(
            BatchSpanProcessor(exporter, max_export_batch_size=512, schedule_delay_millis=200)
        )
        providers[service.name] = provider
    try:
        yield providers
    finally:
        for provider in providers.values():
            provider.force_flush()
            provider.shutdown()


def _usage(rng: random.Random, model: Model) -> dict[str, int]:
    if model.operation == "embeddings":
        return {"input": rng.randint(20, 2_000), "output": 0, "cache_read": 0, "reasoning": 0}
    prompt = int(rng.lognormvariate(7.0, 0.9))  # median ~1,100 tokens, long tail
    cached = int(prompt * rng.choice((0.0, 0.0, 0.5, 0.8)))
    output = int(rng.lognormvariate(5.3, 0.7))  # median ~200 tokens
    reasoning = int(output * rng.uniform(1.0, 4.0)) if model.reasoning else 0
    return {"input": prompt, "output": output + reasoning, "cache_read": cached, "reasoning": reasoning}


def _llm_attributes(rng: random.Random, service: Service, model: Model) -> dict[str, str | int]:
    usage = _usage(rng, model)
    if service.legacy_conventions:  # what instrumentations sent before semantic conventions 1.27
        attributes: dict[str, str | int] = {
            "gen_ai.system": model.provider,
            "gen_ai.request.model": model.request,
            "gen_ai.response.model": model.response,
            "gen_ai.usage.prompt_tokens": usage["input"],
            "gen_ai.usage.completion_tokens": usage["output"],
        }
    else:
        attributes = {
            "gen_ai.provider.name": model.provider,
            "gen_ai.operation.name": model.operation,
            "gen_ai.request.model": model.request,
            "gen_ai.response.model": model.response,
            "gen_ai.usage.input_tokens": usage["input"],
            "gen_ai.usage.output_tokens": usage["output"],
        }
        if usage["cache_read"]:
            attributes["gen_ai.usage.cache_read.input_tokens"] = usage["cache_read"]
        if usage["reasoning"]:
            attributes["gen_ai.usage.reasoning.output_tokens"] = usage["reasoning"]
    return attributes


def simulate(providers: dict[str, TracerProvider], *, calls: int, seed: int = 7) -> int:
    """Make ``calls`` LLM calls across the simulated company; returns how many were made."""
    rng = random.Random(seed)
    tracers = {name: provider.get_tracer("otelcost.demo", "1.0") for name, provider in providers.items()}
    users = [f"user-{i:04d}" for i in range(300)]
    made = 0
    while made < calls:
        service = rng.choice(SERVICES)
        tracer = tracers[service.name]
        feature = rng.choice(service.features)
        tenant = rng.choice(TENANTS)
        user = rng.choice(users)
        session = f"sess-{rng.getrandbits(48):012x}"
        agent_attributes = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": f"{service.name}-agent",
        }
        with tracer.start_as_current_span(f"invoke_agent {service.name}-agent", attributes=agent_attributes):
            for _ in range(min(rng.randint(1, 4), calls - made)):
                model = rng.choice(service.models)
                attributes = _llm_attributes(rng, service, model)
                attributes.update(
                    {
                        "app.team": service.team,
                        "app.feature": feature,
                        "app.tenant": tenant,
                        "user.id": user,
                        "session.id": session,
                    }
                )
                with tracer.start_as_current_span(
                    f"{model.operation} {model.request}", attributes=attributes
                ) as span:
                    if rng.random() < 0.01:
                        span.set_attribute("error.type", "rate_limit_exceeded")
                        span.set_status(Status(StatusCode.ERROR, "429 Too Many Requests"))
                made += 1
    return made
