"""The streaming budget evaluator: a pipeline sink that turns priced calls into decisions.

::

    pipeline thread                 evaluator                               API event loop
    ---------------                 ---------                               --------------
    consume(batch) -> dedup -> Engine.consume (per budget: scope mask, numpy grouping by
                              |     instance and bucket, exact sums, thresholds of the
                              |     instances touched)
                              |-> crossings -> alert journal -> AlertDispatcher (thread)
                              '-> decision changed, or spend refresh due? -> new Snapshot
                                     '-> subscribers -------------> loop.call_soon_threadsafe
                                                                         (wakes long-pollers)
    ticker thread: tick() every budgeting.tick_interval: expire overrides, roll windows that
    closed, re-evaluate decisions of windows that slide, refresh spend figures.
    API worker threads: admin changes (admin.py), applied and published at once.

A new snapshot version is published as soon as a decision changes; spend figures alone are
republished at most every ``budgeting.snapshot_refresh``, checked on ``consume`` and ``tick``
(``publish.py``).

Threads: ``consume`` runs on the pipeline's thread, ``tick`` on the evaluator's ticker thread,
the admin operations on the API server's worker threads (``asyncio.to_thread``). One lock
guards the engine, and :attr:`BudgetAdmin.lock <otelcost.budgets.admin.BudgetAdmin.lock>`
serialises admin changes. Snapshots are immutable and replaced by reference, so readers (the
API, every poller) never lock; subscribers are called after the lock is released.

``consume`` is cheap: a vectorised dedup, then per budget one scope mask and a numpy grouping of
the rows in scope; Python runs once per instance touched, not per call (per-row Python work is
limited to the dedup set of the current generation). It never raises: the lake has already
taken the batch when the evaluator sees it (``pipeline.py`` orders the sinks), so refusing would
make the sender retry a batch the lake holds; an unexpected error is logged and counted in
``consume_errors`` instead.

Start order (``start()``): stored admin changes are applied, every budget's open window is
rebuilt from the lake, the dedup index is seeded, the first snapshot is published, alerts
recorded but not delivered before the stop are queued again, then the threads start. Only then
may the spool replay (see ``rebuild.py``).

With ``budgeting.store: redis://`` (``shared.py``) the totals are many processes': ``consume``
computes the batch's deltas under the lock and hands them to :class:`SharedTotals`, which adds
them to Redis once; the engine's totals change only when the store's sync thread reads the
changes back (its own and every other process's), under the same lock. At start the totals are
read from Redis instead of rebuilt from the lake (rebuilt from it only when Redis cannot be
reached, then marked stale), and the lake seeds what Redis never counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from otelcost.budgets.admin import BudgetAdmin, BudgetEntry
from otelcost.budgets.alerts import AlertDispatcher, Alerts
from otelcost.budgets.config import SCOPE_DIMENSIONS, BudgetConfig, BudgetingConfig
from otelcost.budgets.dedup import DedupIndex, span_keys
from otelcost.budgets.deltas import batch_content_id
from otelcost.budgets.measures import BatchMeasures
from otelcost.budgets.overrides import Override, OverrideSpec
from otelcost.budgets.publish import Publisher, Subscriber
from otelcost.budgets.rebuild import LakeQuery, lake_query, rebuild_rule, seed_dedup
from otelcost.budgets.rules import Group, Rule
from otelcost.budgets.shared import SharedTotals
from otelcost.budgets.snapshot import Crossing, Engine
from otelcost.budgets.status import InstanceStatus, instance_status
from otelcost.budgets.store import AlertJournal
from otelcost.budgets.totals import BudgetTotals
from otelcost.errors import UnknownOverrideError
from otelcost.policy.decisions import Snapshot

__all__ = ["BudgetEntry", "Evaluator"]

log = logging.getLogger(__name__)

SYSTEM_ACTOR: Final = "system"


class Evaluator:
    """Sink of priced batches (RECORD_SCHEMA); publishes decision :class:`Snapshot` objects.

    ``state_dir`` holds the admin changes, the audit log and the alert journal (None: nothing
    is persisted, for tests and ``budgets status``). ``lake`` runs queries over the lake for the
    restart rebuild (None: start empty). ``clock_ns`` is the wall clock (injectable, so tests can
    move time); ``run_threads=False`` starts neither the ticker nor alert delivery (tests call
    :meth:`tick` themselves; alerts then only reach the journal).
    """

    def __init__(
        self,
        *,
        budgets: Sequence[BudgetConfig],
        settings: BudgetingConfig | None = None,
        state_dir: Path | None = None,
        lake: LakeQuery | None = None,
        audit_dir: Path | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
        run_threads: bool = True,
        writer: str | None = None,
    ) -> None:
        self.settings = settings or BudgetingConfig()
        self._clock_ns = clock_ns
        self._run_threads = run_threads
        self._lake = lake
        self._admin = BudgetAdmin(budgets, state_dir, audit_dir=audit_dir)
        self._lock = threading.Lock()
        now = clock_ns()
        self._engine = Engine(self._rules(self._admin.effective()), now_ns=now)
        self._dedup = DedupIndex(
            horizon_ns=int(self.settings.dedup_horizon.total_seconds() * 1e9),
            max_ids=self.settings.dedup_max_ids,
        )
        journal = AlertJournal(state_dir) if state_dir is not None else None
        self._alerts = Alerts(self.settings.alerts, journal)
        refresh_ns = int(self.settings.snapshot_refresh.total_seconds() * 1e9)
        # budgeting.store: redis:// -- totals shared with every process naming that store.
        self._shared = (
            SharedTotals(
                self.settings,
                writer=writer,
                lock=self._lock,
                engine=lambda: self._engine,
                on_change=self._store_changed,
                on_overrides=self._overrides_from_store,
                clock_ns=clock_ns,
            )
            if self.settings.shared
            else None
        )
        self._publisher = Publisher(
            self._engine,
            refresh_ns=refresh_ns,
            now_ns=now,
            labeller=None if self._shared is None else self._shared.label,
            stale=lambda: self._shared is not None and self._shared.stale,
        )
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self._started = False
        self.calls_seen = 0
        self.calls_counted = 0
        self.attribution_changes = 0
        self.consume_errors = 0
        self.last_consume_seconds = 0.0

    @classmethod
    def from_sections(
        cls,
        *,
        budgets: Sequence[BudgetConfig],
        settings: BudgetingConfig,
        data_dir: Path,
        lake_dir: Path,
        clock_ns: Callable[[], int] = time.time_ns,
        run_threads: bool = True,
        writer: str | None = None,
    ) -> Evaluator:
        """The evaluator of a serve process: state under ``<data_dir>/budgets``, open windows
        rebuilt from the lake in ``lake_dir`` (or read from the shared store, whose replays
        ``writer`` names)."""
        return cls(
            budgets=budgets,
            settings=settings,
            state_dir=data_dir / "budgets",
            lake=lake_query(lake_dir),
            audit_dir=lake_dir,
            clock_ns=clock_ns,
            run_threads=run_threads,
            writer=writer,
        )

    @property
    def shared(self) -> SharedTotals | None:
        """The shared store (``budgeting.store``), None for in-process totals."""
        return self._shared

    def _rules(self, entries: dict[str, BudgetEntry]) -> list[Rule]:
        return [self._rule(entry.config) for entry in entries.values()]

    def _rule(self, config: BudgetConfig) -> Rule:
        return Rule.of(config, config.window_in(self.settings.timezone))

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Apply stored admin changes, rebuild open windows from the lake, start the threads."""
        if self._started:
            return
        now = self._clock_ns()
        entries, overrides = self._admin.load()
        with self._lock:
            self._engine = Engine(self._rules(entries), now_ns=now)
            self._engine.set_overrides(overrides, now_ns=now)
        # A shared store holds the totals; the lake only seeds what it counted before Redis
        # did. A store out of reach at start: rebuilt from the lake as in-process, marked stale.
        from_lake = self._shared is None or not self._shared.connect(self._admin.stored_overrides())
        with self._lock:
            if self._lake is not None:
                started = time.monotonic()
                if from_lake:
                    for rule in self._engine.rules:
                        rebuild_rule(self._engine, rule, self._lake, now)
                # The lake's recent ids stop a replayed call the rebuild counted from counting
                # again. A shared store knows replays by their seq instead, and a batch that never
                # reached Redis is in the lake too: seeded ids would drop it from the totals.
                seeded = seed_dedup(self._dedup, self._engine, self._lake, now) if self._shared is None else 0
                log.info(
                    "budgets %s in %.2fs (%d budgets, %d recent call ids remembered)",
                    "rebuilt from the lake" if from_lake else "read from the shared store",
                    time.monotonic() - started,
                    len(self._engine.rules),
                    seeded,
                )
            snapshot = self._publish_locked(now, force=True)
        if not from_lake:
            for rule in self._engine.rules:
                self._seed_shared(rule, now)
        self._alerts.resume(now)
        self._started = True
        if self._shared is not None:
            self._shared.start()
        if self._run_threads:
            self._alerts.dispatcher.start()
            self._stop.clear()
            self._ticker = threading.Thread(target=self._tick_loop, name="otelcost-budgets", daemon=True)
            self._ticker.start()
        self._announce([], snapshot)

    def _seed_shared(self, rule: Rule, now: int) -> None:
        """Add to the shared store, once for all processes, what the lake holds of ``rule``'s
        open window from before the store counted it."""
        assert self._shared is not None
        if self._lake is None:
            return
        live_since = self._shared.live_since(rule, now)
        with self._lock:
            window = self._engine.open_window(rule.name, now)
        if live_since is None or live_since < window.start_ns:
            return
        partial = Engine([rule], now_ns=now)
        rebuild_rule(partial, rule, self._lake, now, received_until_ns=live_since)
        self._shared.seed(rule, list(partial.entries(rule.name)), window.start_ns, live_since)

    def _store_changed(self, crossings: list[Crossing], force: bool) -> None:
        """The shared store changed the totals (or went stale or fresh): publish."""
        with self._lock:
            snapshot = self._publish_locked(self._clock_ns(), force=force)
        self._announce(crossings, snapshot)

    def spool_hold(self) -> int | None:
        """How far the spool may be checkpointed (None: as far as the lake says)."""
        return None if self._shared is None else self._shared.spool_hold()

    def checkpointed(self, seq: int) -> None:
        """The spool is checkpointed up to ``seq`` (a shared store forgets those seqs)."""
        if self._shared is not None:
            self._shared.checkpointed(seq)

    def shutdown(self) -> None:
        """Stop the threads. Nothing to flush: totals are rebuilt from the lake at start (a
        shared store first sends what it still holds for Redis, if Redis answers)."""
        if self._shared is not None:
            self._shared.shutdown()
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        self._alerts.dispatcher.shutdown()
        self._started = False

    def _tick_loop(self) -> None:
        interval = self.settings.tick_interval.total_seconds()
        while not self._stop.wait(interval):
            try:
                self.tick()
            except Exception:  # a failed tick must not stop the next ones
                log.exception("budget tick failed")

    # -- data path -----------------------------------------------------------------------------

    def consume(self, batch: pa.Table, *, seq: int | None = None) -> None:
        """Count a batch of priced calls; never raises (see the module docstring).

        Rows of attribution changes (``attribution_change`` before / after, ``otelcost/settle``)
        move spend: the *before* rows are taken away from their scope, the *after* rows added
        to theirs, so a call counts once, under its latest attribution. ``seq``: the batch's
        spool record, which a shared store adds once however often it is replayed.
        """
        if batch.num_rows == 0:
            return
        started = time.perf_counter()
        if self._shared is not None:
            self._consume_shared(batch, seq, started)
            return
        try:
            calls, before, after = _split_changes(batch)
            with self._lock:
                now = self._clock_ns()
                crossings: list[Crossing] = []
                if calls.num_rows:
                    measures, rows = self._admit(calls)
                    crossings += self._engine.consume(measures, rows, now)
                if before.num_rows:
                    self.attribution_changes += before.num_rows
                    crossings += self._engine.consume(BatchMeasures(before, sign=-1, change=True), None, now)
                    crossings += self._engine.consume(BatchMeasures(after, change=True), None, now)
                snapshot = self._publish_locked(now)
        except Exception:
            self.consume_errors += 1
            log.exception("budget evaluation of a batch of %d calls failed", batch.num_rows)
            return
        finally:
            self.last_consume_seconds = time.perf_counter() - started
        self._announce(crossings, snapshot)

    def _admit(self, calls: pa.Table) -> tuple[BatchMeasures, npt.NDArray[np.bool_] | None]:
        """The calls' measures and which of them count (None: all); the rest were counted
        before (the dedup, by trace and span id). Call it under the lock."""
        measures = BatchMeasures(calls)
        keys = span_keys(calls["trace_id"], calls["span_id"])
        new = self._dedup.admit(keys, int(measures.received_ns.max()))
        admitted = int(new.sum())
        self.calls_seen += calls.num_rows
        self.calls_counted += admitted
        return measures, None if admitted == calls.num_rows else new

    def _consume_shared(self, batch: pa.Table, seq: int | None, started: float) -> None:
        """The deltas of a batch go to the shared store; totals change when they come back."""
        assert self._shared is not None
        try:
            calls, before, after = _split_changes(batch)
            with self._lock:
                now = self._clock_ns()
                self._engine.advance(now)
                ledger = self._engine.ledger
                groups: list[tuple[BudgetTotals, Group]] = []
                if calls.num_rows:
                    measures, rows = self._admit(calls)
                    if rows is None or rows.any():
                        groups += ledger.groups(measures, rows, now)
                if before.num_rows:
                    self.attribution_changes += before.num_rows
                    groups += ledger.groups(BatchMeasures(before, sign=-1, change=True), None, now)
                    groups += ledger.groups(BatchMeasures(after, change=True), None, now)
                deltas = self._shared.deltas(groups)
            self._shared.send(deltas, seq=seq, content_id=batch_content_id(batch, SCOPE_DIMENSIONS))
        except Exception:
            self.consume_errors += 1
            log.exception("budget evaluation of a batch of %d calls failed", batch.num_rows)
        finally:
            self.last_consume_seconds = time.perf_counter() - started

    def tick(self) -> None:
        """Expire overrides, roll and drain windows, refresh spend figures."""
        now = self._clock_ns()
        with self._lock:
            expired = self._engine.expired_overrides(now)
        for override_id in expired:
            self._remove_override(override_id, actor=SYSTEM_ACTOR, action="override.expire")
        with self._lock:
            crossings = self._engine.tick(now)
            snapshot = self._publish_locked(now)
        self._announce(crossings, snapshot)

    # -- publishing ------------------------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        """The current decisions (immutable; replaced by reference on every change)."""
        return self._publisher.snapshot

    @property
    def epoch(self) -> str:
        """Random per run; in every snapshot's ETag."""
        return self._publisher.epoch

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(snapshot)`` after every new snapshot; returns the unsubscriber."""
        return self._publisher.subscribe(callback)

    def _publish_locked(self, now: int, *, force: bool = False) -> Snapshot | None:
        return self._publisher.publish(self._engine, now, force=force)

    def _announce(self, crossings: list[Crossing], snapshot: Snapshot | None) -> None:
        """Alert the crossings, then hand a new snapshot to the subscribers (outside the lock)."""
        if self._shared is not None:
            crossings = self._shared.claim(crossings)
        self._alerts.send(crossings)
        self._publisher.hand_over(snapshot)

    @property
    def alerts(self) -> AlertDispatcher:
        return self._alerts.dispatcher

    # -- status and counters ---------------------------------------------------------------------

    def status(self) -> list[InstanceStatus]:
        with self._lock:
            return instance_status(self._engine, self._clock_ns())

    def counters(self) -> dict[str, float]:
        """Plain numbers for ``/metrics`` (docs/budgets.md lists them)."""
        dispatcher = self._alerts.dispatcher
        snapshot = self._publisher.snapshot
        return {
            "calls_seen": self.calls_seen,
            "calls_counted": self.calls_counted,
            "attribution_changes": self.attribution_changes,
            "duplicates": self._dedup.duplicates,
            "dedup_ids": len(self._dedup),
            "dedup_evicted": self._dedup.evicted,
            "late_calls": self._engine.late_calls,
            "consume_errors": self.consume_errors,
            "last_consume_seconds": self.last_consume_seconds,
            "snapshot_version": snapshot.version,
            # Wall-clock seconds: Prometheus gets the decisions' age as time() minus this.
            "snapshot_computed_at_seconds": snapshot.computed_at_ns / 1e9,
            "decisions": len(snapshot.decisions),
            "alerts_delivered": dispatcher.delivered,
            "alerts_failed": dispatcher.failed,
            "alerts_dropped": dispatcher.dropped,
            "alerts_pending": dispatcher.pending,
            **({} if self._shared is None else self._shared.counters()),
        }

    # -- admin: persisted and audited by BudgetAdmin, applied here --------------------------------

    def budgets(self) -> list[BudgetEntry]:
        return list(self._admin.effective().values())

    def upsert_budget(
        self, config: BudgetConfig, *, actor: str, note: str | None = None
    ) -> tuple[bool, BudgetEntry]:
        """Create or replace a budget at run time; returns (created, entry)."""
        admin = self._admin
        with admin.lock:
            rule = self._rule(config)
            before = admin.store_budget(config)
            crossings = self._install(rule, replace=before is not None)
            with self._lock:
                snapshot = self._publish_locked(self._clock_ns(), force=True)
            admin.record(
                actor=actor,
                action="budget.create" if before is None else "budget.update",
                target=config.name,
                before=None if before is None else before.config.model_dump(mode="json"),
                after=config.model_dump(mode="json"),
                note=note,
            )
        self._announce(crossings, snapshot)
        return before is None, BudgetEntry(config, "api")

    def _install(self, rule: Rule, *, replace: bool) -> list[Crossing]:
        """Put ``rule`` in the engine; a new total starts from the lake plus the live calls."""
        now = self._clock_ns()
        with self._lock:
            if replace:
                kept, crossings = self._engine.replace_rule(rule, now_ns=now)
            else:
                self._engine.add_rule(rule, now_ns=now)
                kept, crossings = False, []
            # Calls received from here on are counted live; the lake fills in the rest.
            received_until = self._engine.as_of_ns if self._engine.as_of_ns is not None else now
        if self._shared is not None:
            if not kept:
                self._seed_shared(rule, now)  # the sync thread reads the new totals back
            return crossings
        if not kept and self._lake is not None:
            partial = Engine([rule], now_ns=now)
            rebuild_rule(partial, rule, self._lake, now, received_until_ns=received_until)
            with self._lock:
                for group in partial.entries(rule.name):
                    self._engine.seed(rule.name, group)
                self._engine.settle(rule.name, now)
        return crossings

    def delete_budget(self, name: str, *, actor: str, note: str | None = None) -> BudgetEntry:
        admin = self._admin
        with admin.lock:
            before = admin.drop_budget(name)
            with self._lock:
                self._engine.remove_rule(name)
                snapshot = self._publish_locked(self._clock_ns(), force=True)
            admin.record(
                actor=actor,
                action="budget.delete",
                target=name,
                before=before.config.model_dump(mode="json"),
                after=None,
                note=note,
            )
        self._announce([], snapshot)
        return before

    def overrides(self) -> list[Override]:
        return self._admin.overrides()

    def put_override(self, override_id: str, spec: OverrideSpec, *, actor: str) -> tuple[bool, Override]:
        """Create or replace override ``override_id``; returns (created, override)."""
        now = self._clock_ns()
        override = self._admin.new_override(override_id, spec, actor=actor, now_ns=now)
        with self._admin.lock:
            if self._shared is not None:  # every process's, or nothing changes (503)
                self._shared.put_override(override_id, override.model_dump(mode="json"))
            before = self._admin.store_override(override)
            snapshot, crossings = self._apply_overrides(now)
            self._admin.record(
                actor=actor,
                action="override.put",
                target=override_id,
                before=before,
                after=override.model_dump(mode="json"),
                note=spec.reason or None,
            )
        self._announce(crossings, snapshot)
        return before is None, override

    def delete_override(self, override_id: str, *, actor: str) -> Override:
        removed = self._remove_override(override_id, actor=actor, action="override.delete")
        if removed is None:
            raise UnknownOverrideError(f"no override {override_id!r}")
        return removed

    def _remove_override(self, override_id: str, *, actor: str, action: str) -> Override | None:
        with self._admin.lock:
            if self._shared is not None and override_id in self._admin.stored_overrides():
                # An expiry happens in every process by itself: it may miss the store.
                self._shared.drop_override(override_id, required=actor != SYSTEM_ACTOR)
            before = self._admin.drop_override(override_id)
            if before is None:
                return None
            snapshot, crossings = self._apply_overrides(self._clock_ns())
            self._admin.record(actor=actor, action=action, target=override_id, before=before, after=None)
        self._announce(crossings, snapshot)
        return Override.model_validate(before)

    def _overrides_from_store(self) -> None:
        """The shared store's overrides (set through any process) replace this one's; read
        under the admin lock, which a change made through this process holds until it is in
        the store and applied here."""
        assert self._shared is not None
        with self._admin.lock:
            if not self._admin.replace_overrides(self._shared.read_overrides()):
                return
            snapshot, crossings = self._apply_overrides(self._clock_ns())
        self._announce(crossings, snapshot)

    def _apply_overrides(self, now: int) -> tuple[Snapshot | None, list[Crossing]]:
        overrides = self._admin.active_overrides()
        with self._lock:
            crossings = self._engine.set_overrides(overrides, now_ns=now)
            return self._publish_locked(now, force=True), crossings

    def audit(self, limit: int | None = None) -> list[dict[str, Any]]:
        return self._admin.audit(limit)


_BEFORE: Final = pa.scalar("before")
_AFTER: Final = pa.scalar("after")


def _split_changes(batch: pa.Table) -> tuple[pa.Table, pa.Table, pa.Table]:
    """(calls, before rows, after rows) of a batch (``otelcost/settle``)."""
    change = batch["attribution_change"]
    if change.null_count == batch.num_rows:
        empty = batch.slice(0, 0)
        return batch, empty, empty
    return (
        batch.filter(pc.is_null(change)),
        batch.filter(pc.fill_null(pc.equal(change, _BEFORE), False)),
        batch.filter(pc.fill_null(pc.equal(change, _AFTER), False)),
    )
