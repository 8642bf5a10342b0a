"""The OTLP/HTTP receiver: ``POST /v1/traces``, binary protobuf or JSON, identity/gzip/deflate.

Built on aiohttp's low-level ``AppRunner``/``TCPSite`` so it shares the event loop with the gRPC
receiver and the API listener. One request goes through these steps, and the first that fails
decides the answer (status codes from ``errors.py``):

1. path ``/v1/traces`` (else 404) and method POST (else 405 with ``Allow: POST``);
2. ``Content-Type`` ``application/x-protobuf`` or ``application/json``, parameters such as
   ``charset`` allowed (else 415); ``Content-Encoding`` identity, gzip or deflate (else 415);
3. the body as sent is read up to a cap (``max_request_size`` plus room for compression framing;
   413 past it, and at once when ``Content-Length`` already says so);
4. decompressed with a hard cap of ``max_request_size`` (413; a corrupt stream is 400);
5. decoded (400 with a message saying what is wrong), handed to the intake, answered with an
   ``ExportTraceServiceResponse`` in the request's encoding.

Steps 4 and 5 run in a worker thread for large bodies (``messages.OFFLOAD_BYTES``), so one big
request does not stall the event loop the receivers share with the API listener.

Error bodies are a ``google.rpc.Status`` in the request's encoding (protobuf when the request's
own Content-Type is not one we speak). aiohttp's own body decompression is switched off (step 4
does it with the cap) and so is its access log: one log line per request is not affordable on
the hot path; ``stats`` counts requests by outcome instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from aiohttp import HttpVersion11, web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otelcost.auth.binding import stamp_principal
from otelcost.auth.keys import KEY_HEADER, KeyRing, Principal, is_loopback, presented_key
from otelcost.auth.tls import ListenerTls
from otelcost.configtypes import parse_listen
from otelcost.receiver import otlp_json
from otelcost.receiver.compression import content_coding, decompress
from otelcost.receiver.config import HttpReceiverConfig
from otelcost.receiver.errors import (
    MethodNotAllowedError,
    NotFoundError,
    ProtocolStatus,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
    bind_error,
    http_error_body,
    http_error_headers,
    protocol_status,
)
from otelcost.receiver.intake import Intake
from otelcost.receiver.messages import decode_off_loop, decode_protobuf_request, hand_over
from otelcost.receiver.stats import ReceiverStats

__all__ = ["JSON", "PROTOBUF", "TRACES_PATH", "HttpReceiver"]

log = logging.getLogger("otelcost.receiver")

TRACES_PATH: Final = "/v1/traces"
PROTOBUF: Final = "application/x-protobuf"
JSON: Final = "application/json"

_DECODERS: Final[dict[str, Callable[[bytes], ExportTraceServiceRequest]]] = {
    PROTOBUF: decode_protobuf_request,
    JSON: otlp_json.decode_export_request,
}
_INFLATION_GUESS: Final = 32
"""How much larger a compressed body is assumed to become, to decide where to decode it.

OTLP batches compress 5-30x; guessing high only costs a thread hop for a mid-sized body.
"""
_CLEANUP_TIMEOUT_SECONDS: Final = 0.1
"""After our own grace period, how long aiohttp waits for handlers before cancelling them."""


async def _continue(request: web.Request) -> None:
    # What aiohttp's default expect handler does for a body we are willing to read.
    if request.version == HttpVersion11 and request.headers.get("Expect", "").lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0
    elif request.version == HttpVersion11:
        raise web.HTTPExpectationFailed(text=f"unknown Expect: {request.headers.get('Expect')}")


def wire_size_cap(max_request_size: int) -> int:
    """Largest body accepted as sent: compressed data can be a little larger than its content.

    Deflate's worst case (incompressible input, stored blocks) adds 5 bytes per 16 KiB block
    plus headers; 1/256 + 1 KiB covers it with room to spare.
    """
    return max_request_size + max_request_size // 256 + 1024


class HttpReceiver:
    """OTLP/HTTP trace receiver feeding one :class:`~otelcost.receiver.intake.Intake`.

    ``start()`` binds ``config.listen`` (port 0 picks a free port, see :attr:`port`);
    ``stop(grace)`` stops accepting, lets requests in flight finish for up to ``grace`` seconds,
    then closes the remaining connections. ``stop`` is safe before ``start`` and more than once.
    """

    def __init__(
        self,
        *,
        config: HttpReceiverConfig,
        intake: Intake,
        keys: KeyRing | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.config = config
        self.intake = intake
        self.keys = keys
        """Who may send; None: anyone (tests that exercise the protocol alone)."""
        self.reuse_port = reuse_port
        """Share the port with other processes that set it too (receiver workers)."""
        self.stats = ReceiverStats()
        self._wire_cap = wire_size_cap(config.max_request_size)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def port(self) -> int:
        """The bound port (useful with ``listen: 127.0.0.1:0``); only valid after ``start()``."""
        if self._port is None:
            raise RuntimeError("HttpReceiver is not started")
        return self._port

    def build_app(self) -> web.Application:
        """The aiohttp application: ``/v1/traces``, and a Status-bodied 404 for any other path."""
        app = web.Application(client_max_size=self._wire_cap)
        app.router.add_route("*", TRACES_PATH, self._traces, expect_handler=self._expect)
        app.router.add_route("*", "/{path:.*}", self._not_found)
        return app

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("HttpReceiver is already started")
        host, port = parse_listen(self.config.listen)
        # Built before anything binds: unusable TLS files are a ConfigError. The context picks
        # up changed certificate files at each new connection.
        tls = ListenerTls(self.config.tls, "receiver.http.tls") if self.config.tls is not None else None
        runner = web.AppRunner(
            self.build_app(),
            access_log=None,
            handle_signals=False,
            auto_decompress=False,
            shutdown_timeout=_CLEANUP_TIMEOUT_SECONDS,
        )
        await runner.setup()
        site = web.TCPSite(
            runner,
            host,
            port,
            reuse_port=self.reuse_port or None,
            ssl_context=tls.ssl_context() if tls is not None else None,
        )
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise bind_error(self.config.listen, "receiver.http.listen", exc) from exc
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        log.debug("OTLP/HTTP receiver listening on %s (port %d)", self.config.listen, self._port)

    async def stop(self, grace: float) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        for site in list(runner.sites):
            await site.stop()  # no new connections
        if self._in_flight:
            try:
                await asyncio.wait_for(self._idle.wait(), timeout=grace)
            except TimeoutError:
                log.warning(
                    "OTLP/HTTP receiver: %d requests still in flight after %.1fs", self._in_flight, grace
                )
        await runner.cleanup()

    # -- request handling ---------------------------------------------------------------------

    async def _traces(self, request: web.Request) -> web.StreamResponse:
        self._in_flight += 1
        self._idle.clear()
        try:
            return await self._handle_traces(request)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _handle_traces(self, request: web.Request) -> web.StreamResponse:
        content_type = request.content_type
        json_response = content_type == JSON
        try:
            # First: a caller without a valid key learns nothing else, and costs no body read.
            principal = self._authenticate(request)
            if request.method != "POST":
                raise MethodNotAllowedError(
                    f"method {request.method} is not allowed on {TRACES_PATH}: use POST"
                )
            decode = _DECODERS.get(content_type)
            if decode is None:
                raise UnsupportedMediaTypeError(
                    f"unsupported Content-Type {request.headers.get('Content-Type', '')!r}: "
                    f"use {PROTOBUF} or {JSON}"
                )
            coding = content_coding(request.headers.get("Content-Encoding"))
            wire_body = await self._read_body(request)
            export_request = await decode_off_loop(
                lambda: stamp_principal(
                    decode(decompress(wire_body, coding, max_size=self.config.max_request_size)), principal
                ),
                len(wire_body) * (1 if coding == "identity" else _INFLATION_GUESS),
            )
            response = await hand_over(export_request, self.intake, self.stats)
        except Exception as exc:
            return self._refusal(protocol_status(exc), json_response)
        if json_response:
            return web.Response(body=otlp_json.encode_export_response(response), content_type=JSON)
        return web.Response(body=response.SerializeToString(), content_type=PROTOBUF)

    def _authenticate(self, request: web.Request) -> Principal | None:
        if self.keys is None:
            return None
        key = presented_key(request.headers.get("Authorization"), request.headers.get(KEY_HEADER))
        return self.keys.admit(
            key, surface="ingest", peer_is_loopback=is_loopback(request.remote), role="ingest"
        )

    async def _expect(self, request: web.Request) -> web.StreamResponse | None:
        """``Expect: 100-continue`` (curl sends it for large bodies): refuse a too large body unsent."""
        if request.headers.get("Expect", "").lower() == "100-continue" and self._declared_too_large(request):
            return self._refusal(protocol_status(self._too_large()), request.content_type == JSON)
        await _continue(request)
        return None

    def _declared_too_large(self, request: web.Request) -> bool:
        return request.content_length is not None and request.content_length > self._wire_cap

    def _too_large(self) -> RequestTooLargeError:
        return RequestTooLargeError(
            f"request body is larger than {self._wire_cap} bytes (receiver max_request_size "
            f"{self.config.max_request_size} plus room for compression)"
        )

    async def _read_body(self, request: web.Request) -> bytes:
        if self._declared_too_large(request):
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        while chunk := await request.content.readany():
            size += len(chunk)
            if size > self._wire_cap:
                raise self._too_large()
            chunks.append(chunk)
        return b"".join(chunks)

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        status = protocol_status(
            NotFoundError(f"no OTLP endpoint at {request.path}: traces go to {TRACES_PATH}")
        )
        return self._refusal(status, request.content_type == JSON)

    def _refusal(self, status: ProtocolStatus, json_response: bool) -> web.Response:
        self.stats.requests[status.reason] += 1
        headers = http_error_headers(status)
        if status.http_status == 405:
            headers["Allow"] = "POST"
        return web.Response(
            status=status.http_status,
            body=http_error_body(status, json_body=json_response),
            content_type=JSON if json_response else PROTOBUF,
            headers=headers,
        )
