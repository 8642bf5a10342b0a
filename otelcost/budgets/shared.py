"""Window totals shared by many otelcost processes through Redis (``budgeting.store: redis://``).

::

    consume(batch, writer, seq)                        sync thread (one per process)
    ---------------------------                        -----------------------------
    local dedup -> the deltas the batch makes          XREAD the change stream after the
    (Ledger.groups: budget, window period, instance,   version this process holds
    units, calls...) ->                                  -> each change's deltas added to the
    RedisTotals.apply (one round trip, at once when      ledger in stream order (Engine.apply)
    nothing is queued; a backlog or an outage goes     -> decisions published as that version
    to the sender thread, batched): once per (writer,
    seq) and per batch content, atomically

Every process adds the same changes in the same order, so processes at one version hold the
same totals and publish the same decisions with the same ETag (the ``epoch`` of a snapshot is
the store's epoch plus a digest of what it decides: a decision changed by time alone, with no
new change, still gets a new ETag). A process's own change comes back to it through the stream
like any other, within a millisecond on a local network.

**Redis unreachable.** The deltas of each batch are added to the local ledger at once and kept
(``store_pending_batches`` at most; beyond it ``reserve`` refuses, retryable). The snapshot is
marked ``stale``. The sync thread retries with backoff; when Redis answers it applies the pending
changes in order, through the same once-only checks (a change that did reach Redis before the
connection broke is not added again), then reads every total back (a resync), which replaces
the local figures.

**Once only.** A replayed spool record carries its writer and seq: Redis remembers the seqs
applied per writer until that writer checkpoints its spool past them. A retried request that
reached another process carries the same rows: the batch's content id (a digest of its span ids
and attribution) is remembered for ``budgeting.dedup_horizon``. Span-level de-duplication stays
per process (route a trace to one process: deploy/collector-loadbalancing.yaml).

**Seeding.** Calls the lake holds from before Redis counted a budget (the first start on a shared
store, or a budget added while running) are added once, by whichever process claims them first.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Final

from otelcost.budgets.config import BudgetingConfig
from otelcost.budgets.deltas import (
    Delta,
    PendingChange,
    delta_of,
    group_in_window,
    periods_of,
    snapshot_digest,
)
from otelcost.budgets.redisstore import RedisTotals, StoreUnavailable, totals_key
from otelcost.budgets.rules import Group, Rule
from otelcost.budgets.snapshot import Crossing, Engine
from otelcost.budgets.totals import BudgetTotals
from otelcost.errors import SharedStoreUnavailableError, TransientIngestError
from otelcost.policy.decisions import Snapshot

__all__ = ["SharedTotals"]

log = logging.getLogger(__name__)

_MAX_BACKOFF_S: Final = 5.0
_VERSION_CHECK_S: Final = 2.0
_SEND_AT_ONCE: Final = 16
_ALERT_CLAIM_S: Final = 100 * 86_400
_DAY_S: Final = 86_400


class _Queued:
    """A change waiting for Redis; ``local``: already added to this process's totals."""

    __slots__ = ("change", "local")

    def __init__(self, change: PendingChange) -> None:
        self.change = change
        self.local = False


class SharedTotals:
    """The shared store of one evaluator: sends its changes, applies everyone's.

    ``lock`` and ``engine`` are the evaluator's (the engine is replaced on start);
    ``on_change(crossings, force)`` publishes and announces (called with ``lock`` released);
    ``on_overrides()`` is called when the store's overrides (every process's kill switches,
    exemptions and raised limits) changed: the evaluator reads them with :meth:`read_overrides`
    under the lock its own override changes hold, so a read never undoes a change in progress.
    """

    def __init__(
        self,
        settings: BudgetingConfig,
        *,
        writer: str | None,
        lock: threading.Lock,
        engine: Callable[[], Engine],
        on_change: Callable[[list[Crossing], bool], None],
        on_overrides: Callable[[], None] = lambda: None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.settings = settings
        self.writer = writer
        self._store = RedisTotals(
            settings.store, prefix=settings.store_prefix, timeout_s=settings.store_timeout.total_seconds()
        )
        self._lock = lock
        self._engine = engine
        self._on_change = on_change
        self._on_overrides = on_overrides
        self._overrides_version = -1
        self._clock_ns = clock_ns
        # Changes not yet in Redis, oldest first. Lock order: drain, send, queue, the evaluator's.
        self._queue: deque[_Queued] = deque()
        self._queue_lock = threading.Condition()  # also read by the lake's flush thread
        self._send_lock = threading.Lock()  # what is added locally vs the resync that replaces it
        self._drain_lock = threading.Lock()  # one sender of the oldest change at a time
        self._sender: threading.Thread | None = None
        self._checkpoint: int | None = None
        self._windows: dict[str, str] = {}  # budget -> period resynced for (windows that close)
        self._synced: set[str] = set()  # budgets of the last resync
        self.version = 0
        self.store_epoch = ""
        self.online = False
        self.stale_since_ns: int | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.changes_sent = 0
        self.changes_skipped = 0
        self.changes_applied = 0
        self.resyncs = 0
        self.outages = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def connect(self, local_overrides: dict[str, dict[str, Any]]) -> bool:
        """Try Redis once, at start (True: the totals and the overrides were read from it).
        ``local_overrides`` are this process's stored ones: they seed a store that has never
        held any (a deployment moving from in-process totals)."""
        try:
            self.store_epoch = self._store.epoch()
            if self._store.overrides_version() == 0:
                for override_id, payload in local_overrides.items():
                    self._store.put_override(override_id, json.dumps(payload))
            self._sync_overrides()
            self._resync(emit=False)  # crossed before this start: alerted by then
        except StoreUnavailable as exc:
            self._go_offline(exc)
            return False
        self.online = True
        return True

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="otelcost-budget-store", daemon=True)
        self._sender = threading.Thread(target=self._send_loop, name="otelcost-budget-sender", daemon=True)
        self._thread.start()
        self._sender.start()

    def shutdown(self) -> None:
        if self.online:
            try:
                self._drain()  # what was counted before the stop, while Redis answers
            except StoreUnavailable as exc:
                self._mark_offline(exc)
        self._stop.set()
        with self._queue_lock:
            self._queue_lock.notify_all()
        for thread in (self._thread, self._sender):
            if thread is not None:
                thread.join()
        self._thread = self._sender = None
        if self._queue:
            log.warning(
                "%d budget change(s) have not reached Redis; the spool keeps their batches and "
                "the next start adds them",
                len(self._queue),
            )
        self._store.close()

    @property
    def stale(self) -> bool:
        return self.stale_since_ns is not None

    @property
    def pending(self) -> int:
        """Changes not yet in Redis (on their way, or waiting for it to answer)."""
        return len(self._queue)

    def reserve(self) -> None:
        """Refuse (retryable) while too many changes wait for Redis: counts are never dropped."""
        if len(self._queue) >= self.settings.store_pending_batches:
            raise TransientIngestError(
                f"{len(self._queue)} budget changes wait for Redis ({self.settings.store_display}); "
                "refusing until it answers",
                retry_after=5.0,
            )

    # -- seeding -----------------------------------------------------------------------------

    def live_since(self, rule: Rule, now_ns: int) -> int | None:
        """When Redis began counting ``rule`` (None: unreachable)."""
        try:
            return self._store.live_since(rule.shape, now_ns)
        except StoreUnavailable as exc:
            self._go_offline(exc)
            return None

    def seed(self, rule: Rule, groups: Sequence[Group], window_start_ns: int, live_since_ns: int) -> None:
        """Add the lake's totals of ``rule`` from before ``live_since_ns``, once for the store."""
        deltas = tuple(delta_of(rule, window_start_ns, group) for group in groups)
        if deltas:
            self._send(
                PendingChange(deltas, None, None, f"seed:{rule.shape}:{live_since_ns}"),
                now_ns=self._clock_ns(),
            )

    # -- the data path -----------------------------------------------------------------------

    def deltas(self, totals_and_groups: Sequence[tuple[BudgetTotals, Group]]) -> tuple[Delta, ...]:
        return tuple(delta_of(t.rule, t.window.start_ns, g) for t, g in totals_and_groups)

    def send(self, deltas: tuple[Delta, ...], *, seq: int | None, content_id: str | None) -> None:
        """Add a batch's deltas to Redis once (locally and later, when it cannot be reached)."""
        if not deltas:
            return
        self._send(
            PendingChange(deltas, self.writer if seq is not None else None, seq, content_id), self._clock_ns()
        )

    def spool_hold(self) -> int | None:
        """The highest spool seq the spool may be checkpointed to (None: any): a batch not yet
        in Redis stays in the spool, so a crash before Redis answers replays it (``sink.py``)."""
        with self._queue_lock:
            seqs = [item.change.seq for item in self._queue if item.change.seq is not None]
        return min(seqs) - 1 if seqs else None

    def checkpointed(self, seq: int) -> None:
        """This writer's spool is checkpointed up to ``seq``: those seqs are never replayed."""
        self._checkpoint = seq

    def was_applied(self, seq: int) -> bool:
        """Whether this writer's ``seq`` reached Redis (unknown when unreachable: not, so the
        replay offers it again and the once-only check decides)."""
        if self.writer is None:
            return False
        try:
            return self._store.was_applied(self.writer, seq)
        except StoreUnavailable:
            return False

    def _send(self, change: PendingChange, now_ns: int) -> None:
        """Send ``change`` at once when nothing waits before it (one round trip: the decision is
        as fresh as with one process), else queue it for the sender thread, which drains a
        backlog in batches; while Redis is out of reach, also add it to the local totals."""
        failure: BaseException | None = None
        crossings: list[Crossing] = []
        with self._send_lock:
            if self.online and not self._queue and self._drain_lock.acquire(blocking=False):
                try:
                    self._apply_remote([change])
                    return
                except StoreUnavailable as exc:  # maybe applied, maybe not: the retry decides
                    failure = exc
                finally:
                    self._drain_lock.release()
            item = _Queued(change)
            with self._queue_lock:
                self._queue.append(item)
                self._queue_lock.notify()
            if not self.online:
                # Under the send lock: a reconnect's resync replaces the local totals, and a
                # change must not be added locally after the resync that already holds it.
                item.local = True
                crossings = self._apply_locally(change.deltas, now_ns)
        if failure is not None:
            self._go_offline(failure)  # adds the queued change locally
        elif crossings:
            self._on_change(crossings, False)

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            with self._queue_lock:
                if not (self._queue and self.online):
                    self._queue_lock.wait(0.25)
                    continue
            try:
                self._drain()
            except StoreUnavailable as exc:
                self._go_offline(exc)
            except Exception:
                log.exception("sending budget changes to Redis failed; retrying")
                self._stop.wait(1.0)

    def _drain(self) -> None:
        """Send the queued changes, oldest first and up to ``_SEND_AT_ONCE`` per round trip,
        until none is left (or Redis fails: raises)."""
        with self._drain_lock:
            while True:
                with self._queue_lock:
                    items = list(itertools.islice(self._queue, _SEND_AT_ONCE))
                if not items:
                    return
                self._apply_remote([item.change for item in items])
                with self._queue_lock:
                    for _ in items:
                        self._queue.popleft()

    def _localize(self) -> list[Crossing]:
        """Redis stopped answering: add the queued changes not yet counted here to the local
        totals (after any send in flight has finished, so none is counted twice)."""
        with self._drain_lock, self._send_lock:
            with self._queue_lock:
                items = [item for item in self._queue if not item.local]
            for item in items:
                item.local = True
            deltas = [delta for item in items for delta in item.change.deltas]
            return self._apply_locally(deltas, self._clock_ns()) if deltas else []

    def _apply_remote(self, changes: Sequence[PendingChange]) -> None:
        applied = self._store.apply(
            changes,
            checkpoint=self._checkpoint,
            content_ttl_s=self._content_ttl,
            keep_s=self._keep_s([delta for change in changes for delta in change.deltas]),
        )
        sent = sum(applied)
        self.changes_sent += sent
        self.changes_skipped += len(applied) - sent

    def _content_ttl(self, change: PendingChange) -> int:
        if change.content_id is not None and change.content_id.startswith("seed:"):
            return 100 * _DAY_S  # longer than any window: a seed is never added twice
        return int(self.settings.dedup_horizon.total_seconds())

    def _keep_s(self, deltas: Sequence[Delta]) -> dict[str, int]:
        """Per budget, how long its totals stay in Redis: a day past the longest window."""
        budgets = self._engine().ledger.budgets
        keep: dict[str, int] = {}
        for name in {d.budget for d in deltas}:
            totals = budgets.get(name)
            longest = int(totals.rule.window.longest.total_seconds()) if totals is not None else 0
            keep[name] = longest + _DAY_S
        return keep

    def _apply_locally(self, deltas: Sequence[Delta], now_ns: int) -> list[Crossing]:
        """While Redis cannot be reached: this process's own changes, at once."""
        crossings: list[Crossing] = []
        with self._lock:
            engine = self._engine()
            engine.advance(now_ns)
            for delta in deltas:
                crossings += self._add(engine, delta, now_ns)
        return crossings

    # -- the sync thread ---------------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.1
        quiet_since = time.monotonic()
        while not self._stop.is_set():
            try:
                if not self.online:
                    self._reconnect()
                    backoff = 0.1
                    continue
                if self._window_moved():
                    self._resync()
                    continue
                self._sync_overrides()
                changes = self._store.changes(self.version)
                if changes is None:
                    self._resync()
                elif changes:
                    self._apply_changes(changes)
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > _VERSION_CHECK_S:
                    # A stream trimmed past this process's version and quiet since says nothing.
                    quiet_since = time.monotonic()
                    if self._store.version() > self.version:
                        self._resync()
            except StoreUnavailable as exc:
                self._go_offline(exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
            except Exception:
                log.exception("the budget store's sync failed; retrying")
                self._stop.wait(1.0)

    # -- overrides -------------------------------------------------------------------------

    def put_override(self, override_id: str, payload: dict[str, Any]) -> None:
        """Set an override in every process (the sync threads read it back)."""
        try:
            self._store.put_override(override_id, json.dumps(payload))
        except StoreUnavailable as exc:
            raise SharedStoreUnavailableError(
                f"the override {override_id!r} is not set: the shared budget store "
                f"({self.settings.store_display}) cannot be reached ({exc}); retry when it answers"
            ) from exc

    def drop_override(self, override_id: str, *, required: bool = True) -> None:
        """Remove an override in every process; ``required=False`` (an expiry, which every
        process sees by itself) tolerates a store out of reach."""
        try:
            self._store.drop_override(override_id)
        except StoreUnavailable as exc:
            if required:
                raise SharedStoreUnavailableError(
                    f"the override {override_id!r} is not removed: the shared budget store "
                    f"({self.settings.store_display}) cannot be reached ({exc}); retry when it answers"
                ) from exc

    def _sync_overrides(self) -> None:
        if self._store.overrides_version() != self._overrides_version:
            self._on_overrides()

    def read_overrides(self) -> dict[str, dict[str, Any]]:
        """Every process's overrides as the store holds them (raises StoreUnavailable)."""
        version, found = self._store.overrides()
        self._overrides_version = version
        return {override_id: json.loads(text) for override_id, text in found.items()}

    def _reconnect(self) -> None:
        epoch = self._store.epoch()
        if self.store_epoch and epoch != self.store_epoch:
            log.error(
                "Redis (%s) lost otelcost's budget totals (new store epoch %s): they start again "
                "from what the processes send from now on, plus the lake's seed at their next start",
                self.settings.store_display,
                epoch,
            )
        self.store_epoch = epoch
        self._drain()
        with self._send_lock:
            self.online = True  # from here on changes are not added locally: the resync holds them
        with self._queue_lock:
            self._queue_lock.notify()
        self._resync()
        log.info(
            "Redis (%s) answers again: budget totals resynced at version %d",
            self.settings.store_display,
            self.version,
        )

    def _go_offline(self, exc: BaseException) -> None:
        went_stale = self._mark_offline(exc)
        crossings = self._localize()
        if went_stale or crossings:
            self._on_change(crossings, went_stale)

    def _mark_offline(self, exc: BaseException) -> bool:
        """Count locally from now on; True when the decisions have just become stale."""
        if self.stale:
            self.online = False
            return False
        self.outages += 1
        log.warning(
            "Redis (%s) cannot be reached (%s): counting locally, decisions marked stale",
            self.settings.store_display,
            exc,
        )
        self.online = False
        self.stale_since_ns = self._clock_ns()
        return True

    def _window_moved(self) -> bool:
        """Whether a window that closes has rolled since the last resync (the new one may hold
        totals sent before this process rolled it, whose deltas were dropped here), or a budget
        was added (an admin change: its seed is read back)."""
        with self._lock:
            budgets = self._engine().ledger.budgets
            if budgets.keys() != self._synced:
                return True
            for name, totals in budgets.items():
                if (
                    totals.window.end_ns is not None
                    and self._windows.get(name) != f"w{totals.window.start_ns}"
                ):
                    return True
        return False

    def _resync(self, *, emit: bool = True) -> None:
        """Replace every local total with Redis's, at one version (``emit``: report the
        thresholds crossed since the last one)."""
        now = self._clock_ns()
        with self._lock:
            engine = self._engine()
            engine.advance(now)
            wanted = {
                name: (totals.rule.shape, periods_of(totals, now))
                for name, totals in engine.ledger.budgets.items()
            }
        keys = {
            totals_key(self._store.prefix, name, shape, period): (name, period)
            for name, (shape, periods) in wanted.items()
            for period in periods
        }
        resync = self._store.resync(keys)
        crossings: list[Crossing] = []
        with self._lock:
            engine = self._engine()
            engine.advance(now)
            by_budget: dict[str, list[Group]] = {name: [] for name in wanted}
            for hash_key, instances in resync.totals.items():
                name, period = keys[hash_key]
                bucket = int(period[1:]) if period.startswith("b") else None
                for key, totals in instances.items():
                    by_budget[name].append(
                        (key, bucket, totals.units, totals.calls, totals.unpriced, totals.as_of_ns)
                    )
            for name, groups in by_budget.items():
                if name in engine.ledger.budgets:
                    crossings += engine.replace_totals(name, groups, now, emit=emit)
                    window = engine.ledger[name].window
                    if window.end_ns is not None:
                        self._windows[name] = f"w{window.start_ns}"
            self._synced = set(wanted)
            self.version = resync.version
            self.store_epoch = resync.epoch or self.store_epoch
            was_stale = self.stale
            self.stale_since_ns = None
            self.resyncs += 1
        self._on_change(crossings, was_stale)

    def _apply_changes(self, changes: Sequence[tuple[int, Sequence[Delta]]]) -> None:
        """Add the changes in stream order; a decision one of them changes is published at
        once, not after the rest of what the stream held."""
        pending = list(changes)
        while pending:
            now = self._clock_ns()
            crossings: list[Crossing] = []
            with self._lock:
                engine = self._engine()
                engine.advance(now)
                while pending and not engine.decisions_changed:
                    version, deltas = pending.pop(0)
                    for delta in deltas:
                        crossings += self._add(engine, delta, now)
                    self.version = version
                    self.changes_applied += 1
            self._on_change(crossings, False)

    def _add(self, engine: Engine, delta: Delta, now_ns: int) -> list[Crossing]:
        group = group_in_window(delta, engine.ledger.budgets.get(delta.budget))
        return [] if group is None else engine.apply(delta.budget, group, now_ns)

    # -- alerts and publishing ---------------------------------------------------------------

    def claim(self, crossings: list[Crossing]) -> list[Crossing]:
        """The crossings this process alerts: each is claimed in Redis by one process (all of
        them while it cannot be reached: an alert twice rather than none)."""
        if not crossings or not self.online:
            return crossings
        try:
            return [c for c in crossings if self._store.claim_alert(c.alert_id, _ALERT_CLAIM_S)]
        except StoreUnavailable:
            return crossings

    def label(self, snapshot: Snapshot) -> tuple[int, str]:
        """The (version, epoch) of a snapshot: the store's version, and its epoch with a digest
        of the decisions, so equal totals give an equal ETag in every process."""
        return self.version, f"{self.store_epoch}-{snapshot_digest(snapshot)}"

    def counters(self) -> dict[str, float]:
        return {
            "store_online": 1.0 if self.online else 0.0,
            "store_version": self.version,
            "store_pending": len(self._queue),
            "store_changes_sent": self.changes_sent,
            "store_changes_skipped": self.changes_skipped,
            "store_changes_applied": self.changes_applied,
            "store_resyncs": self.resyncs,
            "store_outages": self.outages,
        }
