"""One receiver worker process: OTLP in, normalized and priced batches out to the serve process.

Started by the serve process (``pool.py``) as ``python -m otelcost.workers FD``, where FD is its
end of a socket pair. It reads its configuration from the first frame, binds the OTLP ports with
``SO_REUSEPORT`` (the kernel spreads connections over the workers), and for every request does
what the serve process would do in-process up to pricing: decode, normalize, price, encode the
Arrow batch. The batch then goes to the serve process, which spools it, hands it to the lake and
the budgets, and answers; only then does the worker acknowledge the sender. So a worker holds
nothing that is not yet durable, and a worker that dies loses no acknowledged span.

The worker stops when told (``stop``: finish requests in flight, then exit) or when the serve
process goes away (the socket closes: requests in flight are refused as retryable).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import itertools
import logging
import signal
import socket
import sys
from typing import Any, Final

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otelcost.auth.keys import KeyRing
from otelcost.config import Config
from otelcost.errors import (
    ConfigError,
    IngestError,
    OtelcostError,
    PermanentIngestError,
    TransientIngestError,
)
from otelcost.prepare import Preparer, encode_batch
from otelcost.receiver.grpc import GrpcReceiver
from otelcost.receiver.http import HttpReceiver
from otelcost.receiver.intake import ExportOutcome
from otelcost.workers.frames import Frame, read_frame, write_frame
from otelcost.workers.stats import WorkerStats

__all__ = ["ForwardingIntake", "main"]

log = logging.getLogger("otelcost.workers")

STATS_INTERVAL_SECONDS: Final = 1.0
STOP_GRACE_SECONDS: Final = 5.0
GC_THRESHOLD_GEN0: Final = 20_000
"""As in ``otelcost serve`` (cli/serve.py): the normalizer allocates a dozen objects per span."""


class ServeProcessGoneError(TransientIngestError):
    def __init__(self) -> None:
        super().__init__("otelcost is restarting: the request was not accepted, retry later")


class Link:
    """The worker's end of the socket pair: requests with ids, answers matched back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Frame]] = {}
        self.stop_requested = asyncio.Event()
        self.closed = False

    async def call(self, header: dict[str, Any], payload: Any) -> Frame:
        if self.closed:
            raise ServeProcessGoneError()
        request_id = next(self._ids)
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        try:
            write_frame(self._writer, {**header, "id": request_id}, payload)
            await self._writer.drain()
            return await future
        except (ConnectionError, RuntimeError) as exc:
            raise ServeProcessGoneError() from exc
        finally:
            self._waiting.pop(request_id, None)

    async def send(self, header: dict[str, Any]) -> None:
        if not self.closed:
            write_frame(self._writer, header)
            await self._writer.drain()

    async def read_answers(self) -> None:
        """Until the serve process goes away: route answers, note a stop request."""
        try:
            while (frame := await read_frame(self._reader)) is not None:
                if frame.type == "stop":
                    self.stop_requested.set()
                    continue
                future = self._waiting.get(int(frame.header.get("id", 0)))
                if future is not None and not future.done():
                    future.set_result(frame)
        except Exception as exc:
            log.error("receiver worker: the link to the serve process broke: %s", exc)
        finally:
            self.closed = True
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ServeProcessGoneError())
            self.stop_requested.set()


class ForwardingIntake:
    """The receivers' ``Intake`` in a worker: prepare here, commit in the serve process."""

    def __init__(self, config: Config, link: Link) -> None:
        self.preparer = Preparer(config)
        self._link = link

    async def export(self, request: ExportTraceServiceRequest) -> ExportOutcome:
        summary, priced = self.preparer.prepare(request)
        header = {"type": "batch", **dataclasses.asdict(summary)}
        answer = await self._link.call(header, encode_batch(priced) if priced.num_rows else b"")
        if answer.type == "result":
            return ExportOutcome(int(answer.header["rejected"]), str(answer.header["message"]))
        message = str(answer.header.get("message", "refused"))
        kind = answer.header.get("kind")
        if kind == "transient":
            raise TransientIngestError(message, retry_after=float(answer.header.get("retry_after", 1.0)))
        if kind == "permanent":
            raise PermanentIngestError(message)
        raise IngestError(message)  # answered 503 "internal_error": retryable, like the Collector


async def run(sock: socket.socket) -> int:
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    first = await read_frame(reader)
    if first is None or first.type != "config":
        log.error("receiver worker: expected the configuration, got %r", first and first.type)
        return 2
    config = Config.model_validate(first.header["config"])
    index = int(first.header.get("index", 0))
    logging.basicConfig(
        level=config.log_level.upper(),
        format=f"%(asctime)s %(levelname)s %(name)s[worker {index}]: %(message)s",
    )
    link = Link(reader, writer)
    answers = asyncio.create_task(link.read_answers())
    intake = ForwardingIntake(config, link)
    # The worker reads auth.keys_file itself; the serve process sends SIGHUP to reload it.
    keys = KeyRing(config.auth)
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, _reload_keys, keys)
    receivers: dict[str, GrpcReceiver | HttpReceiver] = {}
    if config.receiver.grpc.enabled:
        receivers["grpc"] = GrpcReceiver(
            config=config.receiver.grpc, intake=intake, keys=keys, reuse_port=True
        )
    if config.receiver.http.enabled:
        receivers["http"] = HttpReceiver(
            config=config.receiver.http, intake=intake, keys=keys, reuse_port=True
        )
    try:
        for receiver in receivers.values():
            await receiver.start()
    except OtelcostError as exc:
        await link.send({"type": "failed", "error": str(exc)})
        for receiver in receivers.values():
            await receiver.stop(0)
        return 1
    await link.send({"type": "ready"})

    def stats() -> dict[str, Any]:
        snapshot = WorkerStats(
            {protocol: receiver.stats.snapshot() for protocol, receiver in receivers.items()},
            intake.preparer.normalizer.counters_snapshot(),
        )
        return {"type": "stats", **snapshot.to_json()}

    async def report() -> None:
        while True:
            await asyncio.sleep(STATS_INTERVAL_SECONDS)
            await link.send(stats())

    reporter = asyncio.create_task(report())
    await link.stop_requested.wait()
    for receiver in receivers.values():
        await receiver.stop(STOP_GRACE_SECONDS)
    reporter.cancel()
    try:
        await link.send(stats())
        writer.close()
        await writer.wait_closed()
    except (ConnectionError, RuntimeError):
        pass  # the serve process is gone: nothing to report to
    answers.cancel()
    return 0


def _reload_keys(keys: KeyRing) -> None:
    try:
        names = keys.reload()
    except ConfigError as exc:
        log.error("API keys not reloaded, the old ones stay in force: %s", exc)
        return
    log.info("API keys reloaded: %d key(s)", len(names))


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m otelcost.workers FD (started by `otelcost serve`)", file=sys.stderr)
        return 2
    # Ctrl-C reaches the whole process group, and systemd or `timeout` send SIGTERM to every
    # process of the unit or group: the serve process decides when workers stop (it finishes
    # their requests in flight first). A worker whose serve process is gone stops by itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until run() reloads keys on it
    gc.set_threshold(GC_THRESHOLD_GEN0, 20, 20)
    return asyncio.run(run(socket.socket(fileno=int(argv[0]))))
