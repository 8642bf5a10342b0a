"""Receivers on free loopback ports, a recording intake behind them, and an event loop to run them.

The receivers are asyncio servers; the OpenTelemetry SDK exporters and ``requests`` are
synchronous. :class:`BackgroundLoop` runs one event loop in a daemon thread for the whole session
(grpc.aio is happiest with a single loop per process), and tests hand coroutines to it with
:meth:`BackgroundLoop.run`. Reuse it wherever synchronous test code needs an asyncio server::

    def test_something(background_loop):
        server = SomeAsyncServer(...)
        background_loop.run(server.start())
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from otelcost.config import GrpcReceiverConfig, HttpReceiverConfig
from otelcost.receiver.grpc import GrpcReceiver
from otelcost.receiver.http import HttpReceiver
from otelcost.receiver.intake import ExportOutcome

T = TypeVar("T")

SMALL_LIMIT = 256 * 1024
"""max_request_size of the receivers under test: small, so oversize cases stay cheap."""


class BackgroundLoop:
    """An asyncio event loop running in a daemon thread; ``run`` executes a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-event-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_leftovers() -> None:
            current = asyncio.current_task()
            tasks = [task for task in asyncio.all_tasks() if task is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        self.run(cancel_leftovers())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture(scope="session")
def background_loop() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    yield loop
    loop.close()


@dataclass
class RecordingIntake:
    """A real :class:`~otelcost.receiver.intake.Intake` that keeps every request it is given.

    ``outcome`` is the answer to every accepted request; exceptions queued with :meth:`fail_next`
    are raised by the next calls, one each, before requests are accepted again. Every call,
    failed or not, is counted in ``calls``; ``requests`` holds the accepted ones only.
    """

    outcome: ExportOutcome = field(default_factory=ExportOutcome)
    requests: list[ExportTraceServiceRequest] = field(default_factory=list)
    calls: int = 0
    delay: float = 0.0
    """Seconds each accepted request takes (a slow pipeline), to test stopping with requests in flight."""
    _failures: list[Exception] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, *errors: Exception) -> None:
        with self._lock:
            self._failures.extend(errors)

    async def export(self, request: ExportTraceServiceRequest) -> ExportOutcome:
        with self._lock:
            self.calls += 1
            if self._failures:
                raise self._failures.pop(0)
        if self.delay:
            await asyncio.sleep(self.delay)  # a slow intake, on purpose
        with self._lock:
            copy = ExportTraceServiceRequest()
            copy.CopyFrom(request)
            self.requests.append(copy)
            return self.outcome

    def spans(self) -> list[Span]:
        with self._lock:
            return [
                span
                for request in self.requests
                for resource in request.resource_spans
                for scope in resource.scope_spans
                for span in scope.spans
            ]


@pytest.fixture
def intake() -> RecordingIntake:
    return RecordingIntake()


@pytest.fixture
def grpc_receiver(background_loop: BackgroundLoop, intake: RecordingIntake) -> Iterator[GrpcReceiver]:
    receiver = GrpcReceiver(
        config=GrpcReceiverConfig(listen="127.0.0.1:0", max_request_size=SMALL_LIMIT), intake=intake
    )
    background_loop.run(receiver.start())
    yield receiver
    background_loop.run(receiver.stop(1.0))


@pytest.fixture
def http_receiver(background_loop: BackgroundLoop, intake: RecordingIntake) -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(
        config=HttpReceiverConfig(listen="127.0.0.1:0", max_request_size=SMALL_LIMIT), intake=intake
    )
    background_loop.run(receiver.start())
    yield receiver
    background_loop.run(receiver.stop(1.0))


def make_request(
    spans: int = 1,
    *,
    trace_id: bytes = bytes.fromhex("5b8efff798038103d269b633813fc60c"),
    attributes: dict[str, str] | None = None,
) -> ExportTraceServiceRequest:
    """A request with ``spans`` spans of one trace, each with ``attributes`` (strings)."""
    attrs = [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in (attributes or {}).items()]
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(
                    attributes=[KeyValue(key="service.name", value=AnyValue(string_value="svc"))]
                ),
                scope_spans=[
                    ScopeSpans(
                        scope=InstrumentationScope(name="test"),
                        spans=[
                            Span(
                                trace_id=trace_id,
                                span_id=(i + 1).to_bytes(8, "big"),
                                name=f"span {i}",
                                kind=Span.SPAN_KIND_CLIENT,
                                start_time_unix_nano=1_767_225_600_000_000_000 + i,
                                end_time_unix_nano=1_767_225_601_000_000_000 + i,
                                attributes=attrs,
                            )
                            for i in range(spans)
                        ],
                    )
                ],
            )
        ]
    )
