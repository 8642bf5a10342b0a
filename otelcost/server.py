"""The otelcost process at run time: its event loop, the start order, signals, an orderly stop.

:class:`Server` assembles the process (the pipeline of ``otelcost/pipeline.py``, with the live
anomaly detectors of ``reports/anomalies/streaming.py`` as one of its sinks, the OTLP receivers
or the receiver worker pool, lake compaction, the metrics registry) and starts and stops it on
one asyncio event loop, which hosts the API listener (``otelcost/api/``) and either
both OTLP receivers or the links to the receiver workers (``receiver.workers``):

* start: the API listener first (unless ``api.enabled`` is off), where only ``/healthz``,
  ``/readyz`` (503, ``starting``) and ``/metrics`` answer and every other route 503 with
  ``Retry-After`` (``otelcost/api/health.py`` says why). Then the pipeline, off the event loop
  (the lake recovers, the budgets rebuild, the spool is replayed into both), which opens the
  policy and admin routes. Then lake compaction and the receivers (or the workers), so no span
  is accepted before there is somewhere to put it. ``/readyz`` turns 200 once everything is
  listening (and is 503 again while no receiver worker is listening).
* stop (SIGTERM / SIGINT in :meth:`Server.run_until_signalled`): ``/readyz`` turns 503, the
  receivers (or workers) stop accepting and finish the requests in flight (grace period), a lake
  compaction in progress is abandoned, the pipeline flushes the lake, checkpoints the spool and
  stops; the API listener stops last, so gateways keep their decisions during the drain.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import tempfile
import threading
from functools import partial

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector

from otelcost import metrics
from otelcost.api import build_api_app
from otelcost.api.access import audited_reload
from otelcost.api.health import Readiness
from otelcost.auth.keys import KeyRing
from otelcost.auth.tls import ListenerTls, check_tls
from otelcost.config import Config, report_context
from otelcost.configtypes import parse_listen
from otelcost.errors import ConfigError, OtelcostError
from otelcost.jobs.compact import Compactor
from otelcost.pipeline import Pipeline
from otelcost.receiver.grpc import GrpcReceiver
from otelcost.receiver.http import HttpReceiver
from otelcost.reports.anomalies.streaming import LiveAnomalies
from otelcost.workers import WorkerPool

__all__ = ["BackgroundServer", "Server", "check_data_dir", "check_listener_tls"]

log = logging.getLogger("otelcost")

STOP_GRACE_SECONDS = 5.0


def check_data_dir(config: Config) -> None:
    """Fail fast, before any port is bound, when the data directory cannot be written."""
    try:
        config.lake_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=config.lake_dir, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise ConfigError(f"data_dir {config.data_dir} is not writable: {exc.strerror or exc}") from exc


def check_listener_tls(config: Config) -> None:
    """Fail fast, before any port is bound, when a listener's TLS files cannot be used
    (``ConfigError`` naming the key, e.g. ``receiver.grpc.tls.key_file``)."""
    receiver = config.receiver
    for enabled, tls, where in (
        (config.api.enabled, config.api.tls, "api.tls"),
        (receiver.grpc.enabled, receiver.grpc.tls, "receiver.grpc.tls"),
        (receiver.http.enabled, receiver.http.tls, "receiver.http.tls"),
    ):
        if enabled:
            check_tls(tls, where)


class Server:
    """Runs a :class:`Pipeline` behind its listeners until told to stop."""

    def __init__(self, config: Config, *, pipeline: Pipeline | None = None) -> None:
        self.config = config
        # One key ring for the receivers and the API listener: a reload (SIGHUP, the admin
        # API) swaps it for both at once.
        self.keys = KeyRing(config.auth, legacy_admin=config.api.tokens())
        self._reload_keys = audited_reload(self.keys, audit_dir=config.lake_dir, then=self._reload_workers)
        # The live anomaly detectors are a sink of the pipeline built here (a pipeline handed in
        # brings its own sinks).
        self.anomalies = (
            LiveAnomalies.for_serve(
                config.reports.anomalies,
                alerts=config.budgeting.alerts,
                data_dir=config.data_dir,
                lake_dir=config.lake_dir,
            )
            if pipeline is None and config.reports.anomalies.streaming
            else None
        )
        self.pipeline = pipeline or Pipeline(config, extra_sinks=(self.anomalies,) if self.anomalies else ())
        in_process = config.receiver.workers == 0
        self.grpc = (
            GrpcReceiver(config=config.receiver.grpc, intake=self.pipeline, keys=self.keys)
            if config.receiver.grpc.enabled and in_process
            else None
        )
        self.http = (
            HttpReceiver(config=config.receiver.http, intake=self.pipeline, keys=self.keys)
            if config.receiver.http.enabled and in_process
            else None
        )
        self.workers = None if in_process else WorkerPool(config, self.pipeline)
        self.compactor = Compactor(
            lake_dir=config.lake_dir,
            config=config.lake.compaction,
            compression=config.lake.compression,
            row_group_size=config.lake.row_group_size,
            retention=config.lake.retention,
        )
        self._registry = metrics.build_registry(
            metrics.PipelineCollector(self.pipeline.counters_snapshot, self.pipeline.lake),
            metrics.CompactionCollector(self.compactor),
            *self._intake_collectors(),
            metrics.EvaluatorCollector(self.pipeline.evaluator.counters),
            metrics.AuthCollector(self.keys.outcomes_snapshot),
            metrics.SettleCollector(self.pipeline.settler.counters_snapshot),
            *([metrics.AnomaliesCollector(self.anomalies.counters)] if self.anomalies is not None else []),
            *(
                [metrics.SpoolCollector(self.pipeline.spool, lambda: self.pipeline.replayed)]
                if self.pipeline.spool is not None
                else []
            ),
        )
        self._api_runner: web.AppRunner | None = None
        self._api_site: web.TCPSite | None = None
        self._pipeline_started = False
        self._ready = False

    def _intake_collectors(self) -> list[Collector]:
        """Receiver and normalizer counters: of this process, or summed over the workers."""
        workers = self.workers
        if workers is None:
            return [
                metrics.NormalizerCollector(self.pipeline.normalizer.counters_snapshot),
                metrics.ReceiverCollector(
                    {
                        "grpc": self.grpc.stats.snapshot if self.grpc else None,
                        "http": self.http.stats.snapshot if self.http else None,
                    }
                ),
                metrics.WorkersCollector(lambda: (0, 0, 0)),
            ]
        config = self.config.receiver
        return [
            metrics.NormalizerCollector(workers.normalizer_counters),
            metrics.ReceiverCollector(
                {
                    "grpc": partial(workers.receiver_stats, "grpc") if config.grpc.enabled else None,
                    "http": partial(workers.receiver_stats, "http") if config.http.enabled else None,
                }
            ),
            metrics.WorkersCollector(lambda: (workers.size, workers.live(), workers.restarts)),
        ]

    # -- what the API's health routes ask (otelcost.api.health.ServingProcess) ----------------

    @property
    def pipeline_started(self) -> bool:
        return self._pipeline_started

    @property
    def metrics_registry(self) -> CollectorRegistry:
        return self._registry

    def readiness(self) -> Readiness:
        if self._ready and self.workers is not None and self.workers.live() == 0:
            # Every receiver worker is down (being started again): nothing takes OTLP now.
            return Readiness(ready=False, status="no receiver worker is listening")
        if self._ready:
            return Readiness(ready=True, status="ready")
        return Readiness(ready=False, status="not ready" if self._pipeline_started else "starting")

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def api_port(self) -> int | None:
        if self._api_runner is None or not self._api_runner.addresses:
            return None
        return int(self._api_runner.addresses[0][1])

    async def start(self) -> None:
        check_data_dir(self.config)
        check_listener_tls(self.config)
        try:
            if self.config.api.enabled:
                await self._start_api()
            # In a thread, so that /healthz answers while a large spool replays.
            await asyncio.to_thread(self.pipeline.start)
        except BaseException:
            await self._stop_api()
            raise
        self._pipeline_started = True
        try:
            # After the pipeline's start: the lake has been recovered and the spool replayed.
            if self.config.lake.compaction.enabled or self.config.lake.retention is not None:
                self.compactor.start()  # also runs lake.retention, on the same schedule
            if self.grpc is not None:
                await self.grpc.start()
            if self.http is not None:
                await self.http.start()
            if self.workers is not None:
                await self.workers.start()
        except BaseException:
            await self.stop()
            raise
        self._ready = True
        log.info("otelcost is ready: %s", self.describe())

    async def _start_api(self) -> None:
        host, port = parse_listen(self.config.api.listen)
        tls = ListenerTls(self.config.api.tls, "api.tls") if self.config.api.tls is not None else None
        app = build_api_app(
            evaluator=self.pipeline.evaluator,
            config=self.config.api,
            process=self,
            reports=report_context(self.config),
            keys=self.keys,
            reload_keys=lambda actor, note: self.reload_keys(actor=actor, note=note),
        )
        self._api_runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._api_runner.setup()
        self._api_site = web.TCPSite(
            self._api_runner,
            host,
            port,
            reuse_address=True,
            ssl_context=tls.ssl_context() if tls is not None else None,
        )
        try:
            await self._api_site.start()
        except OSError as exc:
            raise OtelcostError(
                f"cannot listen on {self.config.api.listen} (api.listen): {exc.strerror}"
            ) from exc

    async def stop(self) -> None:
        """Stop accepting, finish requests in flight, flush the lake. Safe to call twice."""
        self._ready = False
        if self.workers is not None:
            await self.workers.stop(STOP_GRACE_SECONDS)
        if self.grpc is not None:
            await self.grpc.stop(STOP_GRACE_SECONDS)
        if self.http is not None:
            await self.http.stop(STOP_GRACE_SECONDS)
        try:
            # A compaction in progress is abandoned (the day keeps its files), so the final
            # flush below does not wait for it to release the lake lock.
            await asyncio.to_thread(self.compactor.stop)
            # Flushing writes files: keep the event loop (and /healthz) responsive meanwhile.
            await asyncio.to_thread(self.pipeline.shutdown)
        finally:
            await self._stop_api()

    async def _stop_api(self) -> None:
        if self._api_runner is not None:
            await self._api_runner.cleanup()
            self._api_runner = None

    def reload_keys(self, *, actor: str = "signal:SIGHUP", note: str | None = None) -> tuple[str, ...]:
        """Re-read ``auth.keys_file`` here and in every receiver worker (SIGHUP, the admin API),
        recorded as ``auth.reload`` in the audit table under ``actor``.

        Returns the key names now in force; raises ConfigError (the old keys stay) when the file
        is invalid. Workers reload on their own and log their own failure.
        """
        names = self._reload_keys(actor, note)
        log.info("API keys reloaded: %d key(s) in force", len(names))
        return names

    def _reload_workers(self) -> None:
        if self.workers is not None:
            self.workers.reload_keys()

    def otlp_port(self, protocol: str) -> int | None:
        """The bound port of the ``grpc`` or ``http`` receiver, in this process or shared by the
        receiver workers (useful with port 0); None when that protocol is off. After ``start()``."""
        if self.workers is not None:
            return self.workers.port(protocol)
        receiver = self.grpc if protocol == "grpc" else self.http
        return receiver.port if receiver is not None else None

    def describe(self) -> str:
        parts = []
        for protocol, name in (("grpc", "OTLP/gRPC"), ("http", "OTLP/HTTP")):
            if (port := self.otlp_port(protocol)) is not None:
                host = getattr(self.config.receiver, protocol).listen.rsplit(":", 1)[0]
                parts.append(f"{name} on {host}:{port}")
        if self.workers is not None:
            parts.append(f"{self.workers.size} receiver worker process(es)")
        if self.api_port is not None:
            parts.append(f"API on {self.config.api.listen.rsplit(':', 1)[0]}:{self.api_port}")
        parts.append(f"lake at {os.fspath(self.config.lake_dir)}")
        if self.pipeline.spool is not None:
            parts.append(f"spool at {os.fspath(self.config.spool_dir)}")
        return ", ".join(parts)

    async def run_until(self, stop: asyncio.Event) -> None:
        """Start, run until ``stop`` is set, then stop in order."""
        await self.start()
        try:
            await stop.wait()
        finally:
            log.info("otelcost is stopping: draining receivers and flushing the lake")
            await self.stop()

    def run_until_signalled(self) -> None:
        """Run on a new event loop until SIGTERM or SIGINT (``otelcost serve``; main thread only)."""

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            loop.add_signal_handler(signal.SIGHUP, self._reload_on_signal)
            await self.run_until(stop)

        asyncio.run(main())

    def _reload_on_signal(self) -> None:
        try:
            self.reload_keys()
        except OtelcostError as exc:
            log.error("SIGHUP: API keys not reloaded, the old ones stay in force: %s", exc)


class BackgroundServer:
    """A :class:`Server` on its own event loop in a background thread.

    For embedding otelcost in another program: ``otelcost demo``, the benchmarks and the
    end-to-end tests use it to run the real server in-process while they send it traffic::

        with BackgroundServer(config) as running:
            port = running.server.otlp_port("grpc")
            exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True)
    """

    def __init__(
        self, config: Config, *, pipeline: Pipeline | None = None, start_timeout: float = 30.0
    ) -> None:
        self.server = Server(config, pipeline=pipeline)
        self._start_timeout = start_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="otelcost-server", daemon=True)
        self._thread.start()
        if not self._started.wait(self._start_timeout):
            self.stop()  # it may still come up later: do not leave it running unowned
            raise RuntimeError("otelcost server did not start in time")
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                await self.server.start()
            except BaseException as exc:
                self._error = exc
                self._started.set()
                return
            self._started.set()
            try:
                await self._stop.wait()
            finally:
                await self.server.stop()

        asyncio.run(main())

    def stop(self) -> None:
        """Drain, flush and stop; returns when the server has stopped. Safe to call twice."""
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join()
        self._loop = self._stop = self._thread = None
