"""Test doubles that are real things: a settable clock, a webhook receiver, an API server thread.

``WebhookReceiver`` is a real HTTP server on a free loopback port that records every POST and
answers with the statuses it is told to (``fail_next(500, 500)``). ``ApiServer`` runs the real
aiohttp policy application on its own event loop in a thread, bound to ``127.0.0.1:0``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiohttp import web

__all__ = ["ApiServer", "Clock", "WebhookReceiver"]


class Clock:
    """A wall clock the test moves: ``clock()`` is nanoseconds since the epoch."""

    def __init__(self, start: datetime) -> None:
        self.ns = int(start.timestamp()) * 1_000_000_000 + start.microsecond * 1000
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            return self.ns

    def set(self, moment: datetime) -> None:
        with self._lock:
            self.ns = int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.ns += int(seconds * 1_000_000_000)


class WebhookReceiver:
    """Records JSON POSTs; answers 200 unless told otherwise with :meth:`fail_next`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.statuses: list[int] = []
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    status = receiver._failures.pop(0) if receiver._failures else 200
                    receiver.statuses.append(status)
                    if status == 200:
                        receiver.requests.append(json.loads(body))
                        receiver.headers.append(dict(self.headers))
                    receiver._arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def fail_next(self, *statuses: int) -> None:
        with self._lock:
            self._failures.extend(statuses)

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until ``count`` alerts were accepted (200)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.requests) >= count, timeout)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class ApiServer:
    """An aiohttp application served from a background thread on a free loopback port."""

    def __init__(self, build: Callable[[], web.Application]) -> None:
        self._build = build
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.app: web.Application | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    def start(self) -> ApiServer:
        self._thread.start()

        async def start() -> None:
            self.app = self._build()
            self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=1)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = self._runner.addresses[0][1]

        self._call(start())
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self._call(self._shut_down(self._runner))
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    @staticmethod
    async def _shut_down(runner: web.AppRunner) -> None:
        # A connection the listening socket accepted just before it closed is wrapped in a
        # transport by a task that may run after aiohttp's shutdown has already closed the
        # connections it knew of; without this it would stay open until the garbage collector
        # finds it (a ResourceWarning in whichever test runs then).
        server = runner.server
        await runner.cleanup()
        if server is None:
            return
        for _ in range(3):
            await asyncio.sleep(0.01)
            for handler in server.connections:
                handler.force_close()

    def run(self, coroutine_function: Callable[[], Any]) -> Any:
        """Run ``coroutine_function()`` on the server's loop and return its result."""
        return self._call(coroutine_function())

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def decisions_of(snapshot: Any) -> Sequence[tuple[str, str, str]]:
    """(budget, scope, action) of each decision: what 'the same decisions' compares."""
    from otelcost.policy.decisions import format_scope  # noqa: PLC0415

    return [(d.budget, format_scope(d.scope), d.action.value) for d in snapshot.decisions]
