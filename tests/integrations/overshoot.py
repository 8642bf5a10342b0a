"""A gateway with N concurrent callers spending one budget, with and without reservations.

Everything on the path is real: ``otelcost serve`` (``BackgroundServer``) with the budget, the
gateway-side ``PolicyClient`` long-polling it, the loopback fake provider answering each call
(tests/normalize/fake_providers.py: 1200 prompt tokens of which 1024 cached, 300 output), and
the OpenTelemetry SDK exporting one GenAI span per call over OTLP/HTTP with a batch span
processor, as an instrumented gateway would. Each caller loops: ask (check, or reserve an
estimate), call the provider, hold the connection ``call_seconds`` more (the model's time), end
the span. The spend is read back from the lake once every admitted call has landed.

Used by tests/integrations/test_overshoot_reservations.py (which asserts the documented bounds)
and benchmarks/gateway_overshoot.py (which prints the figures of docs/benchmarks.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otelcost.integrations.estimate import CatalogEstimator
from otelcost.lake.query import connect
from otelcost.policy.client import PolicyClient
from otelcost.policy.decisions import Action
from otelcost.policy.reservations import Reservations
from otelcost.server import BackgroundServer
from tests.e2e.conftest import loopback_config
from tests.normalize.fake_providers import fake_provider
from tests.waiting import wait_until

CALL_COST = Decimal("0.0002832")  # gpt-4o-mini: 176 x 0.15 + 1024 x 0.075 + 300 x 0.60 micro-USD
PROMPT = "x" * 1200  # 1200 bytes: the byte bound covers the 1200 tokens the fake provider reports
MAX_TOKENS = 300


@dataclass(frozen=True)
class OvershootRun:
    reserved: bool
    workers: int
    limit: Decimal
    admitted: int
    spent: Decimal
    estimate: Decimal  # per call, what a reservation holds
    settle_after: float
    export_delay: float
    seconds: float
    unchecked: int  # admitted while the gateway held no decision for the budget (limit unknown)
    primed: bool

    @property
    def overshoot(self) -> Decimal:
        return self.spent - self.limit

    def describe(self) -> str:
        mode = "with reservations" if self.reserved else "check only"
        start = "decision held" if self.primed else "cold start"
        return (
            f"{mode:18} {start:13} {self.workers} callers, limit ${self.limit}: {self.admitted} calls "
            f"({self.unchecked} before the limit was known), "
            f"spent ${self.spent} ({self.spent * 100 / self.limit:.1f} %), "
            f"overshoot ${self.overshoot} ({self.overshoot / CALL_COST:+.0f} calls), {self.seconds:.1f} s"
        )


def budget(limit: Decimal) -> dict[str, object]:
    """One budget per team; the low first threshold publishes spent and limit from the first cent
    on, so reservations have something to reserve against (docs/budgets.md)."""
    return {
        "name": "team-hourly",
        "scope": {"team": "*"},
        "window": "1h",
        "limit": str(limit),
        "thresholds": [{"at": 0.01, "action": "notify", "alert": False}, {"at": 1, "action": "block"}],
    }


@dataclass
class Gateway:
    """The server, the fake provider, the span exporter and the policy client of the runs."""

    server: BackgroundServer
    provider_url: str
    tracing: TracerProvider
    client: PolicyClient
    limit: Decimal
    export_delay: float

    @property
    def lake_dir(self) -> Path:
        return self.server.server.config.lake_dir

    def landed(self, team: str) -> tuple[int, Decimal]:
        with connect(self.lake_dir) as db:
            row = db.execute(
                "SELECT count(*), sum(cost_usd) FROM llm_calls WHERE team = ?", [team]
            ).fetchone()
        return (int(row[0]), Decimal(row[1] or 0)) if row else (0, Decimal(0))


@contextmanager
def gateway(
    data_dir: Path, *, limit: Decimal = Decimal("0.05"), export_delay: float = 0.2
) -> Iterator[Gateway]:
    config = loopback_config(
        data_dir, budgets=[budget(limit)], budgeting={"snapshot_refresh": "100ms", "tick_interval": "50ms"}
    )
    with BackgroundServer(config) as running, fake_provider() as provider_url:
        server = running.server
        assert server.http is not None and server.api_port is not None
        tracing = TracerProvider(resource=Resource.create({"service.name": "gateway"}))
        tracing.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(endpoint=f"http://127.0.0.1:{server.http.port}/v1/traces", timeout=5),
                schedule_delay_millis=export_delay * 1000,
            )
        )
        client = PolicyClient(f"http://127.0.0.1:{server.api_port}", wait=20).start()
        try:
            assert client.wait_for_version(0, timeout=10)
            yield Gateway(running, provider_url, tracing, client, limit, export_delay)
        finally:
            client.close()
            tracing.shutdown()


def run_overshoot(
    gw: Gateway,
    team: str,
    *,
    reserve: bool,
    workers: int = 50,
    call_seconds: float = 0.05,
    settle_after: float = 2.0,
    deadline: float = 60.0,
    prime: bool = True,
) -> OvershootRun:
    """``workers`` callers of ``team`` (a budget instance of its own) until the budget stops them.

    ``prime``: calls one at a time first, and the burst starts once the gateway holds the
    budget's decision (the budget has spend in its window, as it has but at the very start of
    one). Without it the burst starts cold: until the first decision arrives the limit is unknown.
    """
    client = gw.client
    tracer = gw.tracing.get_tracer("gateway")
    estimator = CatalogEstimator()
    request = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": MAX_TOKENS,
    }
    estimate = estimator.for_request(request, provider="openai")
    assert estimate.cost_usd is not None
    reservations = Reservations(client, settle_after=settle_after)
    dims = {"team": team}
    lock = threading.Lock()
    admitted = [0]
    unchecked = [0]
    last_admission = [time.monotonic()]
    started = time.monotonic()

    def caller(once: bool = False) -> None:
        session = requests.Session()
        while time.monotonic() - started < deadline:
            hold = None
            if reserve:
                result, hold = reservations.try_reserve(dims, estimate)
                if hold is None:
                    if result.action is Action.BLOCK:
                        return
                    if time.monotonic() - last_admission[0] > settle_after + 1.0:
                        return  # nothing fits any more, and nothing in flight will free room
                    time.sleep(0.02)
                    continue
            else:
                result = client.check(dims)
                if not result.allowed:
                    return
            with lock:
                admitted[0] += 1
                unchecked[0] += not result.decisions
                last_admission[0] = time.monotonic()
            span = tracer.start_span(
                "chat gpt-4o-mini",
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "app.team": team,
                },
            )
            response = post_with_retries(session, f"{gw.provider_url}/v1/chat/completions", request)
            time.sleep(call_seconds)  # the model's time
            body = response.json()
            usage = body["usage"]
            span.set_attributes(
                {
                    "gen_ai.response.model": body["model"],
                    "gen_ai.usage.input_tokens": usage["prompt_tokens"],
                    "gen_ai.usage.output_tokens": usage["completion_tokens"],
                    "gen_ai.usage.cache_read.input_tokens": usage["prompt_tokens_details"]["cached_tokens"],
                }
            )
            span.end()
            if hold is not None:
                hold.release()
            if once:
                return

    if prime:  # calls one at a time until the first threshold (1 %) is published
        for _ in range(20):
            caller(once=True)
            if wait_for_decision(client, dims, timeout=1.0):
                break
        assert client.check(dims).decisions, "the budget's first decision never came"
    threads = [threading.Thread(target=caller) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=deadline + 10)
    seconds = time.monotonic() - started
    gw.tracing.force_flush()
    wait_until(lambda: gw.landed(team)[0] >= admitted[0], timeout=30, what="every admitted call in the lake")
    count, spent = gw.landed(team)
    assert count == admitted[0], (count, admitted[0])
    return OvershootRun(
        reserved=reserve,
        workers=workers,
        limit=gw.limit,
        admitted=admitted[0],
        spent=spent,
        estimate=estimate.cost_usd,
        settle_after=settle_after,
        export_delay=gw.export_delay,
        seconds=seconds,
        unchecked=unchecked[0],
        primed=prime,
    )


def post_with_retries(session: requests.Session, url: str, body: dict[str, object]) -> requests.Response:
    """The fake provider's listen backlog is short: a burst of 50 new connections can see a reset
    before any request was read (nothing was served, so nothing is spent). Try again."""
    for attempt in range(5):
        try:
            return session.post(url, json=body, timeout=10)
        except requests.ConnectionError:
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def wait_for_decision(client: PolicyClient, dims: dict[str, str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not client.check(dims).decisions:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
