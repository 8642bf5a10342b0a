"""The serve process's side of the receiver workers (``receiver.workers: N``).

::

    senders --OTLP--> worker 1..N (SO_REUSEPORT)      serve process
                      decode, normalize, price  --batch-->  WorkerPool -> Pipeline.commit
                                                <-result--  (spool, lake, budgets), /metrics, API

Why: normalizing and pricing are most of a span's CPU (docs/benchmarks.md) and Python runs them
on one core per process. Workers do that part on as many cores as there are workers; the serve
process keeps everything that must be single: the spool (one ordered log), the lake writer, the
budget evaluator and the policy API. Data still flows one way, and a worker acknowledges a
request only after the serve process has made its batch durable.

Ports: the serve process first binds each OTLP address without ``SO_REUSEPORT`` (a port another
process holds is an error at start, as without workers), then holds it with ``SO_REUSEPORT`` set
for as long as it runs, so the workers can join it and a restarted worker finds it again; the
held socket never listens, so connections go only to the workers.

A worker that exits unexpectedly is started again (1 s, then up to 30 s between attempts); its
senders' connections break and they retry, as with any receiver restart. What it had sent and
was answered is durable; a batch the serve process had spooled but could not answer is in the
lake once from the spool, and once more if the sender retries it (the budgets count it once:
docs/durability.md).

Limit: each worker has its own trace memory (docs/attribution.md), so the nested-usage rule and
attribution inheritance across requests see only the spans that reached the same worker. One
sender's connection stays on one worker, so this holds within a service; across services
exporting parts of the same trace, it may not.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
from typing import Any, Final

import pyarrow as pa

from otelcost.config import Config
from otelcost.configtypes import parse_listen
from otelcost.errors import OtelcostError, PermanentIngestError, TransientIngestError
from otelcost.normalize import NormalizerCounters
from otelcost.pipeline import Pipeline
from otelcost.prepare import BatchSummary
from otelcost.receiver.errors import bind_error
from otelcost.receiver.stats import ReceiverStats
from otelcost.schema import RECORD_SCHEMA
from otelcost.workers.frames import Frame, FrameError, read_frame, write_frame
from otelcost.workers.stats import WorkerStats

__all__ = ["WorkerPool"]

log = logging.getLogger("otelcost.workers")

START_TIMEOUT_SECONDS: Final = 60.0
RESTART_DELAYS_SECONDS: Final = (1.0, 2.0, 5.0, 10.0, 30.0)
_EMPTY_BATCH: Final = RECORD_SCHEMA.empty_table()


class WorkerPool:
    """Starts ``config.receiver.workers`` worker processes and commits what they send."""

    def __init__(self, config: Config, pipeline: Pipeline) -> None:
        self.config = config
        self.pipeline = pipeline
        self.size = config.receiver.workers
        self.restarts = 0
        self._held: dict[str, socket.socket] = {}
        self.worker_config: dict[str, Any] = {}
        self._slots: list[_Slot] = []
        self._retired = WorkerStats()
        self.stopping = False

    # -- ports -----------------------------------------------------------------------------

    def port(self, protocol: str) -> int | None:
        held = self._held.get(protocol)
        return None if held is None else int(held.getsockname()[1])

    def _hold_ports(self) -> dict[str, Any]:
        receiver = self.config.receiver.model_dump(mode="json")
        for protocol, section in (("grpc", self.config.receiver.grpc), ("http", self.config.receiver.http)):
            if section.enabled:
                held = _hold(section.listen, f"receiver.{protocol}.listen")
                self._held[protocol] = held
                host = section.listen.rpartition(":")[0]
                receiver[protocol]["listen"] = f"{host}:{held.getsockname()[1]}"
        return {**self.config.model_dump(mode="json"), "receiver": receiver}

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Hold the ports, start every worker, return once all listen (or raise why not)."""
        try:
            self.worker_config = self._hold_ports()
            self._slots = [_Slot(self, index) for index in range(self.size)]
            await asyncio.gather(*(slot.start() for slot in self._slots))
        except BaseException:
            await self.stop(0)
            raise
        for slot in self._slots:
            slot.supervise()

    async def stop(self, grace: float) -> None:
        """Tell every worker to stop (each finishes its requests in flight), wait, release ports."""
        self.stopping = True
        await asyncio.gather(*(slot.stop(grace) for slot in self._slots))
        for held in self._held.values():
            held.close()
        self._held.clear()

    # -- metrics ---------------------------------------------------------------------------

    def _total(self) -> WorkerStats:
        total = WorkerStats()
        total.add(self._retired)
        for slot in self._slots:
            total.add(slot.stats)
        return total

    def receiver_stats(self, protocol: str) -> ReceiverStats:
        return self._total().receivers.get(protocol, ReceiverStats()).snapshot()

    def normalizer_counters(self) -> NormalizerCounters:
        return self._total().normalizer

    def live(self) -> int:
        return sum(1 for slot in self._slots if slot.ready)

    def reload_keys(self) -> None:
        """Tell every worker to re-read ``auth.keys_file`` (SIGHUP; each reloads by itself)."""
        for pid in self.pids():
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGHUP)

    def pids(self) -> list[int | None]:
        """The worker processes' ids by worker index (None while one is being started again)."""
        return [slot.pid for slot in self._slots]

    # -- the data path -----------------------------------------------------------------------

    async def commit(self, frame: Frame) -> dict[str, Any]:
        """One worker batch through the durable half of the pipeline; the answer's header."""
        header = frame.header
        try:
            summary = BatchSummary(
                **{field.name: header[field.name] for field in dataclasses.fields(BatchSummary)}
            )
            if frame.payload:
                priced = pa.ipc.open_stream(frame.payload).read_all()
                if not priced.schema.equals(RECORD_SCHEMA):
                    raise ValueError("the batch is not in this version's record schema")
            else:
                priced = _EMPTY_BATCH
            outcome = await self.pipeline.commit(summary, priced, encoded=frame.payload or None)
        except TransientIngestError as exc:
            return {
                "type": "refused",
                "kind": "transient",
                "message": str(exc),
                "retry_after": exc.retry_after,
            }
        except PermanentIngestError as exc:
            return {"type": "refused", "kind": "permanent", "message": str(exc)}
        except Exception as exc:
            log.exception("a receiver worker's batch could not be committed")
            return {
                "type": "refused",
                "kind": "internal",
                "message": f"internal error ({type(exc).__name__})",
            }
        return {"type": "result", "rejected": outcome.rejected_spans, "message": outcome.error_message}

    def retire(self, stats: WorkerStats) -> None:
        """Keep a dead worker's counts. A new object, not an update in place: ``/metrics`` sums
        these on another thread, and only ever sees whole objects (likewise ``_Slot.stats``)."""
        retired = WorkerStats()
        retired.add(self._retired)
        retired.add(stats, gauges=False)
        self._retired = retired


class _Slot:
    """One worker: its process, its link, its latest counters; started again when it dies."""

    def __init__(self, pool: WorkerPool, index: int) -> None:
        self.pool = pool
        self.index = index
        self.stats = WorkerStats()
        self.ready = False
        self._process: subprocess.Popen[bytes] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._serving: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self.ready else None

    async def start(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "otelcost.workers", str(theirs.fileno())], pass_fds=(theirs.fileno(),)
            )
        finally:
            theirs.close()
        try:
            reader, self._writer = await asyncio.open_unix_connection(sock=ours)
            write_frame(
                self._writer, {"type": "config", "index": self.index, "config": self.pool.worker_config}
            )
            await self._writer.drain()
            try:
                first = await asyncio.wait_for(read_frame(reader), START_TIMEOUT_SECONDS)
            except (TimeoutError, FrameError, ConnectionError) as exc:
                raise OtelcostError(
                    f"receiver worker {self.index} did not start: {exc or 'timed out'}"
                ) from exc
            if first is None or first.type != "ready":
                why = first.header.get("error") if first is not None else "it exited"
                raise OtelcostError(f"receiver worker {self.index} could not start: {why}")
        except BaseException:
            self._close()
            if self._process.poll() is None:
                self._process.kill()
            await asyncio.to_thread(self._process.wait)
            raise
        self.ready = True
        self._serving = asyncio.create_task(self._serve(reader, self._writer))
        log.debug("receiver worker %d (pid %d) is ready", self.index, self._process.pid)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer the worker's batches (concurrently) and keep its counters, until it goes."""
        pending: set[asyncio.Task[None]] = set()

        async def answer(frame: Frame) -> None:
            header = await self.pool.commit(frame)
            if not writer.is_closing():
                write_frame(writer, {**header, "id": frame.header.get("id")})
                await writer.drain()

        try:
            while (frame := await read_frame(reader)) is not None:
                if frame.type == "batch":
                    task = asyncio.create_task(answer(frame))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                elif frame.type == "stats":
                    self.stats = WorkerStats.from_json(frame.header)
        except (FrameError, ConnectionError) as exc:
            log.error("receiver worker %d: broken link: %s", self.index, exc)
        finally:
            self.ready = False
            if pending:  # batches already taken are committed whatever happened to the worker
                await asyncio.gather(*pending, return_exceptions=True)

    def supervise(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise())

    async def _supervise(self) -> None:
        """Until the pool stops: wait for the worker to exit, then start it again."""
        while True:
            assert self._serving is not None and self._process is not None
            await asyncio.shield(self._serving)  # stop() cancels the supervisor, not the serving
            code = await asyncio.to_thread(self._process.wait)
            self._close()
            if self.pool.stopping:
                return
            self.pool.retire(self.stats)
            self.stats = WorkerStats()
            log.error("receiver worker %d exited (code %s); starting it again", self.index, code)
            if not await self._restart():
                return

    async def _restart(self) -> bool:
        """Start the worker again, waiting longer after each failed attempt; False if stopping."""
        for attempt in itertools.count():
            await asyncio.sleep(RESTART_DELAYS_SECONDS[min(attempt, len(RESTART_DELAYS_SECONDS) - 1)])
            if self.pool.stopping:
                return False
            try:
                await self.start()
            except OtelcostError as exc:
                log.error("%s", exc)
                continue
            self.pool.restarts += 1
            return True
        raise AssertionError("unreachable")

    async def stop(self, grace: float) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
        if self._writer is not None and not self._writer.is_closing():
            try:
                write_frame(self._writer, {"type": "stop"})
                await self._writer.drain()
            except ConnectionError:
                pass
        if self._serving is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._serving), grace + 5)
            except TimeoutError:
                log.warning("receiver worker %d did not stop in %.0fs", self.index, grace + 5)
        if self._process is not None and self._process.poll() is None:
            try:
                await asyncio.wait_for(asyncio.to_thread(self._process.wait), 5)
            except TimeoutError:
                self._process.kill()
                await asyncio.to_thread(self._process.wait)
        self._close()

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _hold(listen: str, config_key: str) -> socket.socket:
    """Bind ``listen`` exclusively once (busy: BindError), then hold it with SO_REUSEPORT."""
    host, port = parse_listen(listen)
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
            port = probe.getsockname()[1]
        held = socket.socket(family, kind, proto)
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        held.bind((address[0], port, *address[2:]))
    except OSError as exc:
        raise bind_error(listen, config_key, exc) from exc
    return held
