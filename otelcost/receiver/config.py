"""The ``receiver`` configuration section: the OTLP/gRPC and OTLP/HTTP listeners and the
receiver worker processes (``otelcost/workers``). Part of the one ``Config`` model
(``otelcost/config.py``); documented in docs/configuration.md and docs/receiver.md."""

from __future__ import annotations

from pydantic import Field, model_validator

from otelcost.auth.config import TlsConfig
from otelcost.configtypes import ByteSize, ListenAddress, Section

__all__ = ["GrpcReceiverConfig", "HttpReceiverConfig", "ReceiverConfig"]


class GrpcReceiverConfig(Section):
    """OTLP/gRPC receiver (``opentelemetry.proto.collector.trace.v1.TraceService/Export``)."""

    enabled: bool = True
    listen: ListenAddress = Field(
        "127.0.0.1:4317", description="HOST:PORT to bind; 0.0.0.0:4317 for all interfaces."
    )
    max_request_size: ByteSize = Field(
        64 * 2**20, description="Largest accepted message (after decompression)."
    )
    tls: TlsConfig | None = Field(
        None,
        description="OTLP/gRPC over TLS: {cert_file, key_file, client_ca_file (mTLS), "
        "reload_interval}; unset: plaintext (docs/security.md, 'TLS and mTLS').",
    )


class HttpReceiverConfig(Section):
    """OTLP/HTTP receiver (``POST /v1/traces``, protobuf or JSON, optionally gzip/deflate)."""

    enabled: bool = True
    listen: ListenAddress = Field(
        "127.0.0.1:4318", description="HOST:PORT to bind; 0.0.0.0:4318 for all interfaces."
    )
    max_request_size: ByteSize = Field(
        64 * 2**20, description="Largest accepted body after decompression; larger bodies get 413."
    )
    tls: TlsConfig | None = Field(
        None,
        description="OTLP/HTTP over HTTPS: {cert_file, key_file, client_ca_file (mTLS), "
        "reload_interval}; unset: plain HTTP (docs/security.md, 'TLS and mTLS').",
    )


class ReceiverConfig(Section):
    grpc: GrpcReceiverConfig = GrpcReceiverConfig()
    http: HttpReceiverConfig = HttpReceiverConfig()
    workers: int = Field(
        0,
        ge=0,
        le=64,
        description=(
            "Receiver worker processes. 0: the serve process receives, normalizes and prices. "
            "N: N processes share the OTLP ports (SO_REUSEPORT) and do that work on N cores; "
            "the serve process keeps the spool, the lake, the budgets and the API "
            "(docs/architecture.md, 'Receiver workers')."
        ),
    )

    @model_validator(mode="after")
    def _one_protocol(self) -> ReceiverConfig:
        if not (self.grpc.enabled or self.http.enabled):
            raise ValueError("at least one of receiver.grpc and receiver.http must be enabled")
        return self
