"""A simulated company that sends LLM telemetry through the real OpenTelemetry SDK.

``otelcost demo`` and the end-to-end tests use it. Six services of five teams make chat and
embedding calls for features, users and sessions, on several providers' models. The spans are
what real instrumentations send: current OpenTelemetry GenAI attributes for most, the
deprecated ones (``gen_ai.system``, ``gen_ai.usage.prompt_tokens``) for one legacy service,
agent spans around the model calls (not LLM calls themselves: they are dropped and counted),
prompt-cache reads, reasoning tokens, an in-house model that no catalog prices, and a few
failed calls. Half the services export over OTLP/gRPC, half over OTLP/HTTP.

:func:`simulate` can spread the traffic over past days (spans stamped with their past start
times, as a sender that replays its history would), so the reports have a baseline, and two
incidents are planted on top for the reports and the budgets to find:

* :func:`plant_spike`: a backfill of the ``reporting`` service re-runs the weekly digest for
  every tenant on one day, on gpt-4o with long prompts, far above the data team's norm (an
  anomaly);
* :func:`plant_runaway`: one run of the code-review agent loops, hundreds of calls in two
  minutes with a context that keeps growing (a runaway loop), now, which is what pushes the
  platform team past :data:`DEMO_BUDGETS` and makes ``/v1/check`` refuse its calls.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, Status, StatusCode, Tracer, set_span_in_context

__all__ = [
    "DEMO_BUDGETS",
    "RUNAWAY_CALLS",
    "RUNAWAY_SERVICE",
    "SERVICES",
    "SPIKE_SERVICE",
    "Service",
    "exporting_providers",
    "plant_runaway",
    "plant_spike",
    "simulate",
]


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

SPIKE_SERVICE: Final = "reporting"
RUNAWAY_SERVICE: Final = "code-review"
RUNAWAY_CALLS: Final = 250

DEMO_BUDGETS: Final[list[dict[str, Any]]] = [
    {
        "name": "platform-daily",
        "description": "The platform team's daily LLM spend; the demo's looping code-review agent passes it.",
        "scope": {"team": "platform"},
        "window": "day",
        "metric": "cost_usd",
        "limit": "5",
        "thresholds": [{"at": 0.5, "action": "notify"}, {"at": 1.0, "action": "block"}],
    },
    {
        "name": "team-monthly",
        "description": "Every team's monthly LLM spend; notify only: the forecast projects it.",
        "scope": {"team": "*"},
        "window": "month",
        "metric": "cost_usd",
        "limit": "25",
        "thresholds": [{"at": 0.8, "action": "notify"}],
    },
]
"""The budgets of ``otelcost demo``. ``platform-daily`` blocks: the platform team's normal traffic
spends cents a day, the runaway loop (:func:`plant_runaway`) dollars. ``team-monthly`` only
notifies; the monthly report shows each team's projection against it."""


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


def _llm_attributes(service: Service, model: Model, usage: dict[str, int]) -> dict[str, str | int]:
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


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000) * 1_000


@dataclass(slots=True)
class _Run:
    """One agent run being sent: its span, and the clock of its calls when it is in the past."""

    tracer: Tracer
    service: Service
    dimensions: dict[str, str | int]
    root: Span
    clock: datetime | None

    @classmethod
    def start(
        cls, tracer: Tracer, service: Service, dimensions: dict[str, str | int], at: datetime | None
    ) -> _Run:
        attributes: dict[str, str | int] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": f"{service.name}-agent",
        }
        root = tracer.start_span(
            f"invoke_agent {service.name}-agent",
            attributes=attributes,
            start_time=None if at is None else _ns(at),
        )
        return cls(tracer, service, dimensions, root, at)

    def call(self, model: Model, usage: dict[str, int], *, seconds: float, failed: bool = False) -> None:
        """One LLM call of ``seconds``; in the past, the run's clock moves on by that much."""
        attributes = _llm_attributes(self.service, model, usage) | self.dimensions
        start = None if self.clock is None else _ns(self.clock)
        span = self.tracer.start_span(
            f"{model.operation} {model.request}",
            context=set_span_in_context(self.root),
            attributes=attributes,
            start_time=start,
        )
        if failed:
            span.set_attribute("error.type", "rate_limit_exceeded")
            span.set_status(Status(StatusCode.ERROR, "429 Too Many Requests"))
        if self.clock is None:
            span.end()
        else:
            self.clock += timedelta(seconds=seconds)
            span.end(end_time=_ns(self.clock))

    def end(self) -> None:
        self.root.end(end_time=None if self.clock is None else _ns(self.clock))


def _day_quotas(calls: int, days: list[date]) -> list[int]:
    """``calls`` spread over ``days`` (the last one today), weekends at half a weekday."""
    weights = [0.5 if day.isoweekday() >= 6 else 1.0 for day in days]
    quotas = [int(calls * w / sum(weights)) for w in weights]
    quotas[-1] += calls - sum(quotas)
    return quotas


def simulate(
    providers: dict[str, TracerProvider],
    *,
    calls: int,
    seed: int = 7,
    history_days: int = 0,
    now: datetime | None = None,
) -> int:
    """Make ``calls`` LLM calls across the simulated company; returns how many were made.

    With ``history_days``, the calls are spread over that many days before today (UTC working
    hours, weekends at half volume, each span stamped with its past start) and today; today's
    calls are stamped as they are made.
    """
    rng = random.Random(seed)
    tracers = {name: provider.get_tracer("otelcost.demo", "1.0") for name, provider in providers.items()}
    users = [f"user-{i:04d}" for i in range(300)]
    today = (now or datetime.now(UTC)).date()
    days = [today - timedelta(days=n) for n in range(history_days, -1, -1)]
    made = 0
    for day, quota in zip(days, _day_quotas(calls, days), strict=True):
        live = day == today
        done = 0
        while done < quota:
            service = rng.choice(SERVICES)
            user = rng.choice(users)
            dimensions: dict[str, str | int] = {
                "app.team": service.team,
                "app.feature": rng.choice(service.features),
                "app.tenant": rng.choice(TENANTS),
                "user.id": user,
                "session.id": f"sess-{rng.getrandbits(48):012x}",
            }
            at = (
                None
                if live
                else datetime(day.year, day.month, day.day, tzinfo=UTC)
                + timedelta(seconds=rng.uniform(8 * 3600, 18 * 3600))
            )
            run = _Run.start(tracers[service.name], service, dimensions, at)
            for _ in range(min(rng.randint(1, 4), quota - done)):
                model = rng.choice(service.models)
                run.call(model, _usage(rng, model), seconds=rng.uniform(0.4, 3.0), failed=rng.random() < 0.01)
                done += 1
            run.end()
        made += done
    return made


def _service(name: str) -> Service:
    return next(service for service in SERVICES if service.name == name)


def plant_spike(providers: dict[str, TracerProvider], day: date, *, runs_per_tenant: int = 1) -> int:
    """A backfill on ``day``: the reporting service re-runs the weekly digest for every tenant,
    four gpt-4o calls with 6,000-token prompts each (about $3 in an afternoon, where the data
    team spends cents a day). Returns the calls made."""
    service = _service(SPIKE_SERVICE)
    tracer = providers[service.name].get_tracer("otelcost.demo", "1.0")
    start = datetime(day.year, day.month, day.day, 14, tzinfo=UTC)
    made = 0
    for index, tenant in enumerate(TENANTS * runs_per_tenant):
        dimensions: dict[str, str | int] = {
            "app.team": service.team,
            "app.feature": "weekly-digest",
            "app.tenant": tenant,
            "session.id": f"backfill-{day.isoformat()}-{index:03d}",
        }
        run = _Run.start(tracer, service, dimensions, start + timedelta(minutes=index))
        for step in range(4):
            usage = {"input": 6_000 + 100 * step, "output": 600, "cache_read": 0, "reasoning": 0}
            run.call(GPT_4O, usage, seconds=4.0)
            made += 1
        run.end()
    return made


def plant_runaway(providers: dict[str, TracerProvider], now: datetime, *, calls: int = RUNAWAY_CALLS) -> str:
    """One code-review agent run that loops: ``calls`` Claude calls in the two minutes before
    ``now``, each resending a context 48 tokens longer (4,000 to about 16,000). 250 calls cost
    about $8.6, past the platform team's daily budget. Returns the run's trace id (hex)."""
    service = _service(RUNAWAY_SERVICE)
    tracer = providers[service.name].get_tracer("otelcost.demo", "1.0")
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
    start = max(now - timedelta(minutes=2), midnight)  # inside today's budget window
    step = (now - start).total_seconds() / calls
    dimensions: dict[str, str | int] = {
        "app.team": service.team,
        "app.feature": "pr-review",
        "app.tenant": TENANTS[0],
        "user.id": "user-0042",
        "session.id": "sess-runaway-pr-review",
    }
    run = _Run.start(tracer, service, dimensions, start)
    for index in range(calls):
        usage = {"input": 4_000 + 48 * index, "output": 300, "cache_read": 0, "reasoning": 0}
        run.call(CLAUDE, usage, seconds=step)
    run.end()
    return format(run.root.get_span_context().trace_id, "032x")
