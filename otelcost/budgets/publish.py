"""Publishing decisions: the current snapshot, its version, and who hears about new ones.

A new snapshot version is built as soon as any decision changes; spend figures alone are
refreshed at most every ``budgeting.snapshot_refresh``. Versions increase strictly within a
run, and the per-run ``epoch`` (random) goes into the ETag, so a version number reused after a
restart never matches a stale ``If-None-Match``. Snapshots are immutable and replaced by
reference: readers never lock. Subscribers are called outside the evaluator's lock and must
only hand the snapshot over (the API server's callback is one ``loop.call_soon_threadsafe``).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Callable

from otelcost.budgets.snapshot import Engine
from otelcost.policy.decisions import Snapshot

__all__ = ["Publisher", "Subscriber"]

log = logging.getLogger(__name__)

Subscriber = Callable[[Snapshot], None]


Labeller = Callable[[Snapshot], tuple[int, str]]
"""A shared store's (version, epoch) for a snapshot (``shared.SharedTotals.label``)."""


class Publisher:
    """The current :class:`Snapshot` of an engine and its subscribers.

    With a shared store (``labeller``), the version and epoch come from the store, so every
    process labels equal totals alike, and ``stale()`` says whether the store is out of reach.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        refresh_ns: int,
        now_ns: int,
        labeller: Labeller | None = None,
        stale: Callable[[], bool] = lambda: False,
    ) -> None:
        self.epoch = secrets.token_hex(4)
        self._version = 0
        self._refresh_ns = refresh_ns
        self._labeller = labeller
        self._stale = stale
        self.snapshot = engine.snapshot(version=0, epoch=self.epoch, now_ns=now_ns)
        self._last_publish_ns = now_ns
        self._subscribers: list[Subscriber] = []

    def publish(self, engine: Engine, now_ns: int, *, force: bool = False) -> Snapshot | None:
        """A new snapshot when a decision changed, a spend refresh is due, or ``force``
        (None: nothing to publish). Call it under the lock that guards ``engine``."""
        due = engine.spend_changed and now_ns - self._last_publish_ns >= self._refresh_ns
        if not (force or engine.decisions_changed or due):
            return None
        self._version += 1
        snapshot = engine.snapshot(version=self._version, epoch=self.epoch, now_ns=now_ns)
        if self._labeller is not None:
            snapshot = dataclasses.replace(snapshot, stale=self._stale(), _cache={})
            version, epoch = self._labeller(snapshot)
            snapshot = dataclasses.replace(snapshot, version=version, epoch=epoch, _cache={})
        self.snapshot = snapshot
        self._last_publish_ns = now_ns
        return self.snapshot

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(snapshot)`` after every new snapshot; returns the unsubscriber."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def hand_over(self, snapshot: Snapshot | None) -> None:
        """Give a new snapshot to every subscriber (outside the lock); one failing is logged."""
        if snapshot is None:
            return
        for callback in list(self._subscribers):
            try:
                callback(snapshot)
            except Exception:
                log.exception("a decision subscriber failed")
