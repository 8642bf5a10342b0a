"""The streaming budget evaluator: a pipeline sink that turns priced calls into decisions.

::

    pipeline thread                      evaluator                         API event loop
    ---------------                      ---------                         --------------
    consume(batch) --> dedup --> Engine.consume (per budget: mask, group_by, add)
                                  |-> crossings -> alert journal -> AlertDispatcher (thread)
                                  '-> decision changed? -> new Snapshot (swap by reference)
                                           '-> subscribers ------> loop.call_soon_threadsafe
                                                                                   (wakes long-pollers)
    ticker thread: tick() every budgeting.tick_interval: roll calendar windows, drain rolling
    ones, expire overrides, republish spend figures every budgeting.snapshot_refresh.

Threads: ``consume`` runs on the pipeline's thread, ``tick`` on the evaluator's ticker thread,
the admin operations on whatever thread the API server calls them from (it uses a worker
thread). One lock guards the engine; snapshots are immutable and replaced by reference, so
readers (the API, every poller) never lock. Subscribers are called after the lock is released
and must only hand the snapshot over (the API server's callback is one
``loop.call_soon_threadsafe``).

``consume`` is cheap: a vectorised dedup, then per budget one mask and one Arrow ``group_by``
over the rows in scope; per-row Python work is limited to the dedup set of the current
generation. It never raises: the lake has already taken the batch when the evaluator sees it
(``pipeline.py`` orders the sinks), so refusing would make the sender retry a batch the lake
holds; an unexpected error is logged and counted in ``consume_errors`` instead.

Start order (``start()``): stored admin changes are applied, every budget's open window is
rebuilt from the lake, the dedup index is seeded, alerts recorded but not delivered before the
stop are queued again, then the threads start. Only then may the spool replay (see
``rebuild.py``).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import pyarrow as pa
from pydantic import ValidationError

from otelcost.budgets.alerts import AlertDispatcher, alert_payload
from otelcost.budgets.config import BudgetConfig, BudgetingConfig
from otelcost.budgets.dedup import DedupIndex, span_keys
from otelcost.budgets.engine import Crossing, Engine, InstanceStatus, Rule
from otelcost.budgets.measures import BatchMeasures
from otelcost.budgets.overrides import Override, OverrideSpec
from otelcost.budgets.rebuild import LakeQuery, lake_query, rebuild_rule, seed_dedup
from otelcost.budgets.store import AlertJournal, AuditLog, BudgetStore, StoredState
from otelcost.errors import ConfigError, OtelcostError
from otelcost.policy.decisions import Snapshot
from otelcost.policy.encoding import parse_time

if TYPE_CHECKING:
    from otelcost.config import Config

__all__ = ["AdminError", "BudgetEntry", "Evaluator", "effective_budgets"]

log = logging.getLogger(__name__)

SYSTEM_ACTOR: Final = "system"
Subscriber = Callable[[Snapshot], None]


class AdminError(OtelcostError):
    """An admin request that cannot be done; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class BudgetEntry:
    """An effective budget and where it comes from: the YAML file or the admin API."""

    config: BudgetConfig
    source: Literal["config", "api"]


def effective_budgets(configured: Iterable[BudgetConfig], stored: StoredState) -> dict[str, BudgetEntry]:
    """The YAML budgets with the admin API's changes applied (validated)."""
    entries = {cfg.name: BudgetEntry(cfg, "config") for cfg in configured}
    for name, document in stored.budgets.items():
        if document is None:
            entries.pop(name, None)
        else:
            entries[name] = BudgetEntry(BudgetConfig.model_validate(document), "api")
    return entries


def _now_datetime(ns: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)


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
        clock_ns: Callable[[], int] = time.time_ns,
        run_threads: bool = True,
    ) -> None:
        self.settings = settings or BudgetingConfig()
        self._clock_ns = clock_ns
        self._run_threads = run_threads
        self._lake = lake
        names = [b.name for b in budgets]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"budgets: two budgets named {duplicates[0]!r}")
        self._config_budgets = {b.name: b for b in budgets}
        self._store = BudgetStore(state_dir) if state_dir is not None else None
        self._audit = AuditLog(state_dir) if state_dir is not None else None
        self._journal = AlertJournal(state_dir) if state_dir is not None else None
        self._stored = StoredState()
        self._lock = threading.Lock()
        self._admin_lock = threading.Lock()
        now = clock_ns()
        self._engine = Engine(self._rules(self._effective()), now_ns=now)
        self._dedup = DedupIndex(
            horizon_ns=int(self.settings.dedup_horizon.total_seconds() * 1e9),
            max_ids=self.settings.dedup_max_ids,
        )
        self._alerted: set[str] = set()
        self._dispatcher = AlertDispatcher(self.settings.alerts, on_done=self._alert_done)
        self.epoch = secrets.token_hex(4)
        self._version = 0
        self._snapshot = self._engine.snapshot(version=0, epoch=self.epoch, now_ns=now)
        self._last_publish_ns = now
        self._subscribers: list[Subscriber] = []
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self._started = False
        self.calls_seen = 0
        self.calls_counted = 0
        self.consume_errors = 0
        self.last_consume_seconds = 0.0

    @classmethod
    def from_config(cls, config: Config, **kwargs: Any) -> Evaluator:
        """The evaluator of a whole configuration: ``budgets``, ``budgeting`` (when the
        configuration has that section), state under ``<data_dir>/budgets``, the lake."""
        settings = getattr(config, "budgeting", None)
        kwargs.setdefault("state_dir", config.data_dir / "budgets")
        kwargs.setdefault("lake", lake_query(config.lake_dir))
        return cls(budgets=config.budgets, settings=settings, **kwargs)

    # -- effective budgets -------------------------------------------------------------------

    def _effective(self) -> dict[str, BudgetEntry]:
        return effective_budgets(self._config_budgets.values(), self._stored)

    def _rules(self, entries: dict[str, BudgetEntry]) -> list[Rule]:
        return [Rule.of(entry.config, self.settings.timezone) for entry in entries.values()]

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Apply stored admin changes, rebuild open windows from the lake, start the threads."""
        if self._started:
            return
        now = self._clock_ns()
        if self._store is not None:
            self._stored = self._store.load()
        try:
            overrides = {k: Override.model_validate(v) for k, v in self._stored.overrides.items()}
            entries = self._effective()
        except ValidationError as exc:
            raise ConfigError(f"invalid stored budget state: {exc}") from exc
        with self._lock:
            self._engine = Engine(self._rules(entries), now_ns=now)
            self._engine.set_overrides(overrides, now_ns=now)
            if self._lake is not None:
                started = time.monotonic()
                for rule in self._engine.rules:
                    rebuild_rule(self._engine, rule, self._lake, now)
                seeded = seed_dedup(self._dedup, self._engine, self._lake, now)
                log.info(
                    "budgets rebuilt from the lake in %.2fs (%d budgets, %d recent call ids remembered)",
                    time.monotonic() - started,
                    len(self._engine.rules),
                    seeded,
                )
            snapshot = self._publish_locked(now, force=True)
        self._resume_alerts(now)
        self._started = True
        if self._run_threads:
            self._dispatcher.start()
            self._stop.clear()
            self._ticker = threading.Thread(target=self._tick_loop, name="otelcost-budgets", daemon=True)
            self._ticker.start()
        self._notify(snapshot)

    def shutdown(self) -> None:
        """Stop the threads. Nothing to flush: totals are rebuilt from the lake at start."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        self._dispatcher.shutdown()
        self._started = False

    def _resume_alerts(self, now: int) -> None:
        if self._journal is None:
            return

        def still_open(payload: dict[str, Any]) -> bool:
            end = parse_time(payload.get("window_end"))
            if end is not None:
                return end > now
            window_id = payload.get("window_id")  # rolling windows: keep two window lengths
            return isinstance(window_id, int) and window_id > now - 2 * 86_400 * 10**9

        alerted, pending = self._journal.load(keep_if=still_open)
        self._alerted = alerted
        for payload in pending:
            self._dispatcher.submit(payload)

    def _tick_loop(self) -> None:
        interval = self.settings.tick_interval.total_seconds()
        while not self._stop.wait(interval):
            try:
                self.tick()
            except Exception:  # a failed tick must not stop the next ones
                log.exception("budget tick failed")

    # -- data path -----------------------------------------------------------------------------

    def consume(self, batch: pa.Table) -> None:
        """Count a batch of priced calls; never raises (see the module docstring)."""
        if batch.num_rows == 0:
            return
        started = time.perf_counter()
        try:
            measures = BatchMeasures(batch)
            keys = span_keys(batch["trace_id"], batch["span_id"])
            with self._lock:
                now = self._clock_ns()
                new = self._dedup.admit(keys, int(measures.received_ns.max()))
                admitted = int(new.sum())
                self.calls_seen += batch.num_rows
                self.calls_counted += admitted
                crossings = self._engine.consume(measures, None if admitted == batch.num_rows else new, now)
                snapshot = self._publish_locked(now)
        except Exception:
            self.consume_errors += 1
            log.exception("budget evaluation of a batch of %d calls failed", batch.num_rows)
            return
        finally:
            self.last_consume_seconds = time.perf_counter() - started
        self._raise_alerts(crossings)
        self._notify(snapshot)

    def tick(self) -> None:
        """Roll windows, drain rolling ones, expire overrides, refresh spend figures."""
        now = self._clock_ns()
        with self._lock:
            expired = self._engine.expired_overrides(now)
        for override_id in expired:
            self._remove_override(override_id, actor=SYSTEM_ACTOR, action="override.expire")
        with self._lock:
            crossings = self._engine.tick(now)
            snapshot = self._publish_locked(now)
        self._raise_alerts(crossings)
        self._notify(snapshot)

    # -- publishing ------------------------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        """The current decisions (immutable; replaced by reference on every change)."""
        return self._snapshot

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(snapshot)`` after every new snapshot; returns the unsubscriber."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def _publish_locked(self, now: int, *, force: bool = False) -> Snapshot | None:
        engine = self._engine
        refresh_ns = self.settings.snapshot_refresh.total_seconds() * 1e9
        due = engine.spend_changed and now - self._last_publish_ns >= refresh_ns
        if not (force or engine.decisions_changed or due):
            return None
        self._version += 1
        self._snapshot = engine.snapshot(version=self._version, epoch=self.epoch, now_ns=now)
        self._last_publish_ns = now
        return self._snapshot

    def _notify(self, snapshot: Snapshot | None) -> None:
        if snapshot is None:
            return
        for callback in list(self._subscribers):
            try:
                callback(snapshot)
            except Exception:
                log.exception("a decision subscriber failed")

    # -- alerts ----------------------------------------------------------------------------------

    def _raise_alerts(self, crossings: list[Crossing]) -> None:
        for crossing in crossings:
            if crossing.alert_id in self._alerted:
                continue
            self._alerted.add(crossing.alert_id)
            payload = alert_payload(crossing)
            if self._journal is not None:
                self._journal.record("crossed", crossing.alert_id, payload)
            self._dispatcher.submit(payload)

    def _alert_done(self, alert_id: str, outcome: str) -> None:
        if self._journal is not None:
            self._journal.record(outcome, alert_id)

    @property
    def alerts(self) -> AlertDispatcher:
        return self._dispatcher

    # -- status and counters ---------------------------------------------------------------------

    def status(self) -> list[InstanceStatus]:
        with self._lock:
            return self._engine.status(self._clock_ns())

    def counters(self) -> dict[str, float]:
        """Plain numbers for ``/metrics`` (docs/budgets.md lists them)."""
        dispatcher = self._dispatcher
        snapshot = self._snapshot
        return {
            "calls_seen": self.calls_seen,
            "calls_counted": self.calls_counted,
            "duplicates": self._dedup.duplicates,
            "dedup_ids": len(self._dedup),
            "dedup_evicted": self._dedup.evicted,
            "late_calls": self._engine.late_calls,
            "consume_errors": self.consume_errors,
            "last_consume_seconds": self.last_consume_seconds,
            "snapshot_version": snapshot.version,
            "decisions": len(snapshot.decisions),
            "alerts_delivered": dispatcher.delivered,
            "alerts_failed": dispatcher.failed,
            "alerts_dropped": dispatcher.dropped,
            "alerts_pending": dispatcher.pending,
        }

    # -- admin -----------------------------------------------------------------------------------

    def budgets(self) -> list[BudgetEntry]:
        return list(self._effective().values())

    def upsert_budget(
        self, config: BudgetConfig, *, actor: str, note: str | None = None
    ) -> tuple[bool, BudgetEntry]:
        """Create or replace a budget at run time; returns (created, entry)."""
        with self._admin_lock:
            entries = self._effective()
            before = entries.get(config.name)
            rule = Rule.of(config, self.settings.timezone)
            self._stored.budgets[config.name] = config.model_dump(mode="json")
            self._save()
            now = self._clock_ns()
            with self._lock:
                if before is None:
                    self._engine.add_rule(rule, now_ns=now)
                    kept, crossings = False, list[Crossing]()
                else:
                    kept, crossings = self._engine.replace_rule(rule, now_ns=now)
                # Calls received from here on are counted live; the lake fills in the rest.
                received_until = self._engine.as_of_ns if self._engine.as_of_ns is not None else now
            if not kept and self._lake is not None:
                partial = Engine([rule], now_ns=now)
                rebuild_rule(partial, rule, self._lake, now, received_until_ns=received_until)
                with self._lock:
                    self._merge(partial, rule, now)
            with self._lock:
                snapshot = self._publish_locked(self._clock_ns(), force=True)
            self._write_audit(
                actor=actor,
                action="budget.create" if before is None else "budget.update",
                target=config.name,
                before=None if before is None else before.config.model_dump(mode="json"),
                after=config.model_dump(mode="json"),
                note=note,
            )
        self._raise_alerts(crossings)
        self._notify(snapshot)
        return before is None, BudgetEntry(config, "api")

    def _merge(self, partial: Engine, rule: Rule, now: int) -> None:
        """Add totals rebuilt into ``partial`` to the live engine's (just added) rule."""
        for key, bucket, units, calls, unpriced, as_of in partial.totals(rule.name):
            self._engine.seed(
                rule.name, key, units=units, calls=calls, unpriced=unpriced, as_of_ns=as_of, bucket=bucket
            )
        self._engine.settle(rule.name, now)

    def delete_budget(self, name: str, *, actor: str, note: str | None = None) -> BudgetEntry:
        with self._admin_lock:
            before = self._effective().get(name)
            if before is None:
                raise AdminError(f"no budget named {name!r}", status=404)
            if name in self._config_budgets:
                self._stored.budgets[name] = None  # a tombstone over the YAML entry
            else:
                self._stored.budgets.pop(name, None)
            self._save()
            with self._lock:
                self._engine.remove_rule(name)
                snapshot = self._publish_locked(self._clock_ns(), force=True)
            self._write_audit(
                actor=actor,
                action="budget.delete",
                target=name,
                before=before.config.model_dump(mode="json"),
                after=None,
                note=note,
            )
        self._notify(snapshot)
        return before

    def overrides(self) -> list[Override]:
        return [Override.model_validate(v) for _, v in sorted(self._stored.overrides.items())]

    def put_override(self, override_id: str, spec: OverrideSpec, *, actor: str) -> tuple[bool, Override]:
        """Create or replace override ``override_id``; returns (created, override)."""
        now = self._clock_ns()
        if spec.budget is not None and spec.budget not in self._effective():
            raise AdminError(f"no budget named {spec.budget!r}", status=400)
        if spec.until_ns is not None and spec.until_ns <= now:
            raise AdminError("until is in the past", status=400)
        try:
            override = Override(
                **spec.model_dump(), id=override_id, created_by=actor, created_at=_now_datetime(now)
            )
        except ValidationError as exc:
            raise AdminError(f"invalid override: {exc.errors()[0]['msg']}") from exc
        with self._admin_lock:
            before = self._stored.overrides.get(override_id)
            self._stored.overrides[override_id] = override.model_dump(mode="json")
            self._save()
            snapshot, crossings = self._apply_overrides(now)
            self._write_audit(
                actor=actor,
                action="override.put",
                target=override_id,
                before=before,
                after=override.model_dump(mode="json"),
                note=spec.reason or None,
            )
        self._raise_alerts(crossings)
        self._notify(snapshot)
        return before is None, override

    def delete_override(self, override_id: str, *, actor: str) -> Override:
        removed = self._remove_override(override_id, actor=actor, action="override.delete")
        if removed is None:
            raise AdminError(f"no override {override_id!r}", status=404)
        return removed

    def _remove_override(self, override_id: str, *, actor: str, action: str) -> Override | None:
        with self._admin_lock:
            before = self._stored.overrides.pop(override_id, None)
            if before is None:
                return None
            self._save()
            snapshot, crossings = self._apply_overrides(self._clock_ns())
            self._write_audit(actor=actor, action=action, target=override_id, before=before, after=None)
        self._raise_alerts(crossings)
        self._notify(snapshot)
        return Override.model_validate(before)

    def _apply_overrides(self, now: int) -> tuple[Snapshot | None, list[Crossing]]:
        overrides = {k: Override.model_validate(v) for k, v in self._stored.overrides.items()}
        with self._lock:
            crossings = self._engine.set_overrides(overrides, now_ns=now)
            return self._publish_locked(now, force=True), crossings

    def audit(self, limit: int | None = None) -> list[dict[str, Any]]:
        return [] if self._audit is None else self._audit.read(limit)

    def _save(self) -> None:
        if self._store is not None:
            self._store.save(self._stored)

    def _write_audit(self, **entry: Any) -> None:
        if self._audit is not None:
            self._audit.append(**entry)
