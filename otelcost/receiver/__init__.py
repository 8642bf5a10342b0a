"""OTLP receivers: OTLP/gRPC and OTLP/HTTP (protobuf and JSON) front ends of the pipeline.

Thin by design: bytes in, one ``ExportTraceServiceRequest`` handed to an
:class:`~otelcost.receiver.intake.Intake`, a protocol-correct answer out (full or partial success,
or a refusal mapped by ``errors.py``). Nothing here knows about pricing, attribution or the lake.
Import the pieces from their modules (``otelcost.receiver.grpc.GrpcReceiver``,
``otelcost.receiver.http.HttpReceiver``); this package file imports nothing, so importing
``otelcost.receiver.intake`` stays cheap. See ``README.md`` here and ``docs/receiver.md``.
"""
