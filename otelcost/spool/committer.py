"""Group commit: one thread fsyncs for every append written since its last fsync.

An fsync costs the same whether it covers one record or fifty, so appends do not sync
themselves. Each append writes its record (into the kernel's page cache, under the spool's lock)
and queues a *waiter*; the committer thread takes every queued waiter at once, syncs the segment
files they were written to, and then resolves them all. Appends that arrive while an fsync runs
are queued for the next one, so under load the number of fsyncs per second stays near
1 / (fsync latency) however many appends there are, and under light load an append waits for
exactly one fsync. ``commit_interval`` can add a window before each fsync for more appends to
join; it is 0 by default (docs/durability.md has the measurements behind that).

Waiters of ``await spool.append()`` are resolved on their event loop with one
``loop.call_soon_threadsafe`` per loop per commit; waiters of ``append_sync`` wait on a
``threading.Event``.

File descriptors that the committer may sync are closed only by the committer (``retire``): a
descriptor closed elsewhere could be reused by an unrelated ``open()`` before the committer syncs
it, and the sync would then go to the wrong file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable

from otelcost.errors import TransientIngestError
from otelcost.spool.errors import IO_RETRY_AFTER, SpoolWriteError
from otelcost.spool.stats import SpoolCounters

__all__ = ["AsyncWaiter", "GroupCommitter", "SyncWaiter", "sync_file"]

log = logging.getLogger(__name__)

sync_file: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)
"""fdatasync where the platform has it: it skips the inode timestamps, not the file size."""


class SyncWaiter:
    """The waiter of a blocking ``append_sync``."""

    __slots__ = ("_done", "error", "seq")

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.error: BaseException | None = None
        self._done = threading.Event()

    def resolve(self, error: BaseException | None) -> None:
        self.error = error
        self._done.set()

    def wait(self) -> int:
        self._done.wait()
        if self.error is not None:
            raise self.error
        return self.seq


class AsyncWaiter:
    """The waiter of an ``await append``: a future on the appender's event loop."""

    __slots__ = ("future", "loop", "seq")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[int], seq: int) -> None:
        self.loop = loop
        self.future = future
        self.seq = seq


def _settle(outcomes: list[tuple[asyncio.Future[int], int, BaseException | None]]) -> None:
    for future, seq, error in outcomes:
        if future.done():  # the appender was cancelled; its record stays in the log all the same
            continue
        if error is None:
            future.set_result(seq)
        else:
            future.set_exception(error)


class GroupCommitter:
    """The committer thread. Every method except ``start``/``stop`` is called with ``lock`` held."""

    def __init__(
        self,
        lock: threading.Lock,
        *,
        directory_fd: int,
        interval: float,
        counters: SpoolCounters,
        on_failure: Callable[[Exception], None],
        failure: Callable[[], Exception | None],
    ) -> None:
        self._wakeup = threading.Condition(lock)
        self._directory_fd = directory_fd
        self._interval = interval
        self._counters = counters
        self._on_failure = on_failure
        self._failure = failure
        self._waiters: list[SyncWaiter | AsyncWaiter] = []
        self._first_waiter_at = 0.0
        self._active_fd: int | None = None
        self._retired: list[int] = []
        self._directory_dirty = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="otelcost-spool-committer", daemon=True)

    # -- called with the lock held ----------------------------------------------------------------

    def submit(self, waiter: SyncWaiter | AsyncWaiter) -> None:
        if not self._waiters:
            self._first_waiter_at = time.monotonic()
        self._waiters.append(waiter)
        self._wakeup.notify()

    def set_active(self, fd: int | None, *, created: bool) -> None:
        """Appends now go to ``fd``; ``created`` means its directory entry still needs a sync."""
        self._active_fd = fd
        self._directory_dirty = self._directory_dirty or created

    def retire(self, fd: int) -> None:
        """Sync ``fd`` at the next commit, then close it."""
        if fd == self._active_fd:
            self._active_fd = None
        self._retired.append(fd)
        self._wakeup.notify()

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Commit what is queued, then end the thread. Called without the lock."""
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify()
        self._thread.join()

    # -- the thread -----------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not (self._waiters or self._retired or self._stopping):
                    self._wakeup.wait()
                if self._interval > 0 and self._waiters and not self._stopping:
                    deadline = self._first_waiter_at + self._interval
                    while not self._stopping and (remaining := deadline - time.monotonic()) > 0:
                        self._wakeup.wait(remaining)
                waiters, self._waiters = self._waiters, []
                retired, self._retired = self._retired, []
                active = self._active_fd if waiters else None
                sync_directory, self._directory_dirty = self._directory_dirty, False
                stopping = self._stopping
                earlier_failure = self._failure()
            try:
                self._commit(waiters, retired, active, sync_directory, earlier_failure)
            except Exception as exc:  # a bug must not leave appenders waiting forever
                log.exception("spool committer failed; appends are refused until a restart")
                with self._wakeup:
                    self._on_failure(exc)
                    waiters += self._waiters
                    self._waiters = []
                self._resolve(
                    waiters, SpoolWriteError(f"spool committer failed: {exc!r}", retry_after=IO_RETRY_AFTER)
                )
                return
            if stopping:
                return

    def _commit(
        self,
        waiters: list[SyncWaiter | AsyncWaiter],
        retired: list[int],
        active: int | None,
        sync_directory: bool,
        earlier_failure: Exception | None,
    ) -> None:
        # After any failed sync, no later sync is trusted (see Spool._fail): fail the waiters.
        error: Exception | None = earlier_failure
        syncs = 0
        started = time.perf_counter()
        for fd in [*retired, *([active] if active is not None else [])]:
            if error is None:
                try:
                    sync_file(fd)
                    syncs += 1
                except OSError as exc:
                    error = exc
                    self._report(exc)
        for fd in retired:
            try:
                os.close(fd)
            except OSError as exc:  # the data was synced (or the error is reported) above
                log.warning("closing a spool segment failed: %s", exc)
        if sync_directory and error is None:
            try:
                os.fsync(self._directory_fd)
                syncs += 1
            except OSError as exc:
                error = exc
                self._report(exc)
        elapsed = time.perf_counter() - started
        with self._wakeup:
            self._counters.fsyncs += syncs
            self._counters.fsync_seconds_total += elapsed
            if waiters and error is None:
                self._counters.commits += 1
        self._resolve(waiters, error)

    def _report(self, error: Exception) -> None:
        with self._wakeup:
            self._on_failure(error)

    @staticmethod
    def _resolve(waiters: list[SyncWaiter | AsyncWaiter], error: BaseException | None) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[int], int, BaseException | None]]]
        by_loop = {}
        for waiter in waiters:
            failure = _failure(error) if error is not None else None
            if isinstance(waiter, SyncWaiter):
                waiter.resolve(failure)
            else:
                by_loop.setdefault(waiter.loop, []).append((waiter.future, waiter.seq, failure))
        for loop, outcomes in by_loop.items():
            # A closed loop raises RuntimeError: nobody is waiting there any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, outcomes)


def _failure(error: BaseException) -> TransientIngestError:
    # One exception object per waiter: a shared one would collect every waiter's traceback.
    if isinstance(error, TransientIngestError):
        return type(error)(str(error), retry_after=error.retry_after)
    failure = SpoolWriteError(
        f"the spool cannot make the record durable after an I/O error ({error}); restart otelcost to recover",
        retry_after=IO_RETRY_AFTER,
    )
    failure.__cause__ = error
    return failure
