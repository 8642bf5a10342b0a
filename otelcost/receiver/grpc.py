"""The OTLP/gRPC receiver: ``opentelemetry.proto.collector.trace.v1.TraceService/Export``.

Runs on the caller's asyncio event loop (``grpc.aio``), next to the HTTP receiver and the API.
gRPC itself enforces ``max_request_size`` (``grpc.max_receive_message_length``, checked after
decompression too: a gzip bomb gets RESOURCE_EXHAUSTED, non-retryable) and undoes gzip.

The method is registered with raw-bytes (de)serializers and the request is parsed here: a body
that is not protobuf then gets INVALID_ARGUMENT with a ``BadRequest``, where a gRPC-level
deserializer failure would be reported as INTERNAL. Large messages are parsed in a worker thread
(``messages.OFFLOAD_BYTES``) to keep the shared event loop responsive. Refusals are mapped by
``errors.py``.

The server is created with ``grpc.so_reuseport`` off, so a busy port is an error at start
(``BindError``) instead of two processes silently sharing the port; only receiver workers
(``otelcost/workers``), whose parent checked the port first, turn it on.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import grpc
from grpc import aio

from otelcost.auth.binding import stamp_principal
from otelcost.auth.keys import KEY_HEADER, KeyRing, Principal, is_loopback, presented_key
from otelcost.auth.tls import ListenerTls
from otelcost.receiver.config import GrpcReceiverConfig
from otelcost.receiver.errors import bind_error, grpc_trailing_metadata, protocol_status
from otelcost.receiver.intake import Intake
from otelcost.receiver.messages import decode_off_loop, decode_protobuf_request, hand_over
from otelcost.receiver.stats import ReceiverStats

__all__ = ["SERVICE_NAME", "GrpcReceiver"]

log = logging.getLogger("otelcost.receiver")

SERVICE_NAME: Final = "opentelemetry.proto.collector.trace.v1.TraceService"
METHOD_NAME: Final = "Export"


class GrpcReceiver:
    """OTLP/gRPC trace receiver feeding one :class:`~otelcost.receiver.intake.Intake`.

    ``start()`` binds ``config.listen`` (port 0 picks a free port, see :attr:`port`);
    ``stop(grace)`` stops accepting, lets requests in flight finish for up to ``grace`` seconds,
    then cancels the rest. ``stop`` is safe before ``start`` and more than once.
    """

    def __init__(
        self,
        *,
        config: GrpcReceiverConfig,
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
        self._server: aio.Server | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with ``listen: 127.0.0.1:0``); only valid after ``start()``."""
        if self._port is None:
            raise RuntimeError("GrpcReceiver is not started")
        return self._port

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("GrpcReceiver is already started")
        # Before the server exists, so that unusable TLS files are a ConfigError and bind nothing.
        tls = ListenerTls(self.config.tls, "receiver.grpc.tls") if self.config.tls is not None else None
        server = aio.server(
            options=[
                ("grpc.max_receive_message_length", self.config.max_request_size),
                ("grpc.so_reuseport", 1 if self.reuse_port else 0),
            ],
        )
        handler = grpc.unary_unary_rpc_method_handler(self._export)  # raw bytes in and out
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE_NAME, {METHOD_NAME: handler}),)
        )
        try:
            if tls is None:
                port = server.add_insecure_port(self.config.listen)
            else:  # picks up changed certificate files at each new connection
                port = server.add_secure_port(self.config.listen, tls.grpc_credentials())
        except RuntimeError as exc:  # grpc gives no OS reason: bind_error finds it
            await server.stop(None)
            raise bind_error(self.config.listen, "receiver.grpc.listen") from exc
        await server.start()
        self._server = server
        self._port = port
        log.debug(
            "OTLP/gRPC receiver listening on %s (port %d%s)",
            self.config.listen,
            port,
            "" if tls is None else ", mTLS" if tls.mtls else ", TLS",
        )

    async def stop(self, grace: float) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace)

    async def _export(self, body: bytes, context: aio.ServicerContext[Any, Any]) -> bytes:
        try:
            principal = self._authenticate(context)
            request = await decode_off_loop(
                lambda: stamp_principal(decode_protobuf_request(body), principal), len(body)
            )
            response = await hand_over(request, self.intake, self.stats)
            answer: bytes = response.SerializeToString()
            return answer
        except Exception as exc:
            status = protocol_status(exc)
            self.stats.requests[status.reason] += 1
        # Outside the except block, so the abort is not chained to the mapped exception.
        await context.abort(
            status.grpc_code, status.message, trailing_metadata=grpc_trailing_metadata(status)
        )
        raise AssertionError("context.abort returned")  # it always raises

    def _authenticate(self, context: aio.ServicerContext[Any, Any]) -> Principal | None:
        if self.keys is None:
            return None
        metadata = dict(context.invocation_metadata() or ())
        key = presented_key(_text(metadata.get("authorization")), _text(metadata.get(KEY_HEADER.lower())))
        return self.keys.admit(
            key, surface="ingest", peer_is_loopback=is_loopback(context.peer()), role="ingest"
        )


def _text(value: str | bytes | None) -> str | None:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
