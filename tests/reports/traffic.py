"""Known LLM traffic over many days, sent through the real pipeline, for the report tests.

A test describes calls as :class:`Call` values (when, who, which model, how many tokens) and
:func:`build_lake` sends them as spans of the real OpenTelemetry SDK, with their past
timestamps, over OTLP/gRPC to a real ``otelcost serve`` (``BackgroundServer``) on loopback; the
lake the server writes is what the reports read. Prices are written here by hand, from the
provider price pages the catalog cites, so :func:`cost_of` is an expectation computed without
otelcost's pricing code: a report that agrees with it agrees with arithmetic.

:func:`steady_company` is ordinary traffic: four teams, steady daily volumes with a little noise,
weekday/weekend rhythm, no surprises. The anomaly tests plant patterns on top of it.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Final

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otelcost.config import Config
from otelcost.lake.query import run_query
from otelcost.server import BackgroundServer
from tests.e2e.conftest import loopback_config
from tests.waiting import wait_until

__all__ = [
    "PRICES",
    "Call",
    "build_lake",
    "cost_of",
    "day_start",
    "steady_company",
]

PRICES: Final[dict[str, tuple[str, str, Decimal, Decimal, Decimal]]] = {
    # request model: (provider, response model, input, cache read, output) USD per 1M tokens
    "gpt-4o-mini": ("openai", "gpt-4o-mini-2024-07-18", Decimal("0.15"), Decimal("0.075"), Decimal("0.60")),
    "gpt-4o": ("openai", "gpt-4o-2024-08-06", Decimal("2.50"), Decimal("1.25"), Decimal("10.00")),
    "claude-sonnet-4-5": (
        "anthropic",
        "claude-sonnet-4-5-20250929",
        Decimal("3"),
        Decimal("0.30"),
        Decimal("15"),
    ),
    "claude-haiku-4-5": (
        "anthropic",
        "claude-haiku-4-5-20251001",
        Decimal("1"),
        Decimal("0.10"),
        Decimal("5"),
    ),
}
"""Standard-tier list prices (docs of the providers, as cited by the shipped catalog)."""

MILLION: Final = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class Call:
    """One LLM call as a span: start time, attribution, model and tokens.

    Calls with the same ``trace`` key share one trace (children of one agent span); otherwise
    each call is a trace of its own. ``attributes`` are extra span attributes (app.outcome ...).
    """

    ts: datetime
    service: str
    team: str | None
    feature: str
    model: str = "gpt-4o-mini"
    input_tokens: int = 1_000
    output_tokens: int = 200
    cache_read_tokens: int = 0
    tenant: str | None = None
    user: str | None = None
    session: str | None = None
    workflow: str | None = None
    environment: str = "production"
    trace: str | None = None
    duration: timedelta = timedelta(milliseconds=800)
    attributes: tuple[tuple[str, str | int], ...] = field(default=())


def cost_of(call: Call) -> Decimal:
    """The list cost of ``call`` from :data:`PRICES` (hand arithmetic, not otelcost's pricing)."""
    _, _, input_price, cache_price, output_price = PRICES[call.model]
    uncached = call.input_tokens - call.cache_read_tokens
    return (
        uncached * input_price + call.cache_read_tokens * cache_price + call.output_tokens * output_price
    ) / MILLION


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def _attributes(call: Call) -> dict[str, str | int]:
    provider, response_model, _, _, _ = PRICES[call.model]
    attributes: dict[str, str | int] = {
        "gen_ai.provider.name": provider,
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": call.model,
        "gen_ai.response.model": response_model,
        "gen_ai.usage.input_tokens": call.input_tokens,
        "gen_ai.usage.output_tokens": call.output_tokens,
        "app.feature": call.feature,
    }
    if call.cache_read_tokens:
        attributes["gen_ai.usage.cache_read.input_tokens"] = call.cache_read_tokens
    optional = {
        "app.team": call.team,
        "app.tenant": call.tenant,
        "user.id": call.user,
        "session.id": call.session,
        "gen_ai.agent.name": call.workflow,
    }
    attributes.update({key: value for key, value in optional.items() if value is not None})
    attributes.update(dict(call.attributes))
    return attributes


def send(calls: Sequence[Call], grpc_port: int) -> None:
    """Send ``calls`` as spans through the OpenTelemetry SDK's OTLP/gRPC exporter."""
    providers: dict[tuple[str, str], TracerProvider] = {}

    def tracer_of(call: Call) -> trace.Tracer:
        key = (call.service, call.environment)
        if key not in providers:
            resource = Resource.create(
                {"service.name": call.service, "deployment.environment.name": call.environment}
            )
            provider = TracerProvider(resource=resource)
            exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{grpc_port}", insecure=True, timeout=10)
            provider.add_span_processor(
                BatchSpanProcessor(
                    exporter, max_queue_size=100_000, max_export_batch_size=1_000, schedule_delay_millis=100
                )
            )
            providers[key] = provider
        return providers[key].get_tracer("tests.reports.traffic")

    by_trace: dict[str | None, list[Call]] = defaultdict(list)
    singles: list[Call] = []
    for call in calls:
        (by_trace[call.trace] if call.trace is not None else singles).append(call)
    for call in singles:
        span = tracer_of(call).start_span(
            f"chat {call.model}", start_time=_ns(call.ts), attributes=_attributes(call)
        )
        span.end(end_time=_ns(call.ts + call.duration))
    for key, members in by_trace.items():
        if key is None:
            continue
        members.sort(key=lambda c: c.ts)
        first, last = members[0], members[-1]
        tracer = tracer_of(first)
        root_attributes: dict[str, str | int] = {"gen_ai.operation.name": "invoke_agent"}
        if first.workflow:
            root_attributes["gen_ai.agent.name"] = first.workflow
        root = tracer.start_span("invoke_agent", start_time=_ns(first.ts), attributes=root_attributes)
        context = trace.set_span_in_context(root)
        for call in members:
            span = tracer.start_span(
                f"chat {call.model}", context=context, start_time=_ns(call.ts), attributes=_attributes(call)
            )
            span.end(end_time=_ns(call.ts + call.duration))
        root.end(end_time=_ns(last.ts + last.duration))
    for provider in providers.values():
        provider.force_flush()
        provider.shutdown()


def build_lake(data_dir: Path, calls: Iterable[Call], **overrides: object) -> Config:
    """Run ``otelcost serve`` on loopback, send ``calls`` through it, wait until every one is in
    the lake, stop it; returns the server's configuration (``.lake_dir`` is the lake)."""
    calls = list(calls)
    config = loopback_config(data_dir, **overrides)
    with BackgroundServer(config) as running:
        grpc = running.server.grpc
        assert grpc is not None
        send(calls, grpc.port)
        wait_until(
            lambda: (
                run_query(config.lake_dir, "SELECT count(*) AS n FROM llm_calls").column("n")[0].as_py()
                >= len(calls)
            ),
            timeout=60,
            poll=0.2,
            what=f"{len(calls)} calls in the lake",
        )
    return config


TEAMS: Final = (
    # service, team, feature, model, calls on a weekday, input, output
    ("support-bot", "customer-care", "ticket-triage", "gpt-4o-mini", 40, 1_200, 250),
    ("checkout", "payments", "fraud-explain", "gpt-4o", 12, 2_000, 400),
    ("search", "discovery", "query-rewrite", "claude-haiku-4-5", 30, 600, 80),
    ("code-review", "platform", "pr-review", "claude-sonnet-4-5", 8, 6_000, 900),
)
TENANTS: Final = tuple(f"tenant-{i:02d}" for i in range(8))


def steady_company(first_day: date, days: int, *, seed: int = 11) -> list[Call]:
    """Ordinary traffic: each team's daily calls within +-10% of its norm (half on weekends),
    tokens within +-15%, spread over working hours, tenants and users drawn evenly."""
    rng = random.Random(seed)
    calls: list[Call] = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        weekend = day.isoweekday() >= 6
        for service, team, feature, model, per_day, input_tokens, output_tokens in TEAMS:
            count = round(per_day * (0.5 if weekend else 1.0) * rng.uniform(0.9, 1.1))
            for _ in range(count):
                moment = day_start(day) + timedelta(seconds=rng.randint(8 * 3600, 18 * 3600))
                tenant = rng.choice(TENANTS)
                user = f"user-{rng.randint(1, 60):03d}"
                calls.append(
                    Call(
                        ts=moment,
                        service=service,
                        team=team,
                        feature=feature,
                        model=model,
                        input_tokens=round(input_tokens * rng.uniform(0.85, 1.15)),
                        output_tokens=round(output_tokens * rng.uniform(0.85, 1.15)),
                        tenant=tenant,
                        user=user,
                        session=f"s-{day.isoformat()}-{user}",
                    )
                )
    return calls


def shifted(calls: Iterable[Call], delta: timedelta) -> list[Call]:
    """``calls`` moved in time by ``delta``."""
    return [replace(call, ts=call.ts + delta) for call in calls]
