"""Run-time changes to budgets and overrides: what the admin API changed, kept and audited.

:class:`BudgetAdmin` owns the budgets of the YAML file, the admin API's changes to them and the
overrides (``<data_dir>/budgets/state.json``, rewritten atomically on every change), the audit
log (``audit.jsonl``), and the rules that make a change valid: an override names a budget that
exists and ends in the future; a YAML budget deleted through the API leaves a tombstone, so it
stays deleted across restarts until it is changed again through the API.

The :class:`~otelcost.budgets.evaluator.Evaluator` applies each change to its live engine and
publishes. It holds :attr:`BudgetAdmin.lock` around persist, apply and audit, so changes are
serialised and the audit log lists them in the order they took effect.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from otelcost.budgets.config import BudgetConfig
from otelcost.budgets.overrides import Override, OverrideSpec
from otelcost.budgets.store import AuditLog, BudgetStore, StoredState
from otelcost.errors import ConfigError, InvalidOverrideError, UnknownBudgetError

__all__ = ["BudgetAdmin", "BudgetEntry", "effective_budgets"]


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


def _datetime(ns: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)


class BudgetAdmin:
    """The YAML budgets plus the stored admin changes (``state_dir`` None: kept in memory)."""

    def __init__(
        self, configured: Sequence[BudgetConfig], state_dir: Path | None, *, audit_dir: Path | None = None
    ) -> None:
        names = [b.name for b in configured]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"budgets: two budgets named {duplicates[0]!r}")
        self._configured = {b.name: b for b in configured}
        self._store = BudgetStore(state_dir) if state_dir is not None else None
        # The audit table lives in the lake (audit_dir); without one (tests, `budgets status`)
        # it is kept beside the state.
        audit_dir = audit_dir if audit_dir is not None else state_dir
        self._audit = AuditLog(audit_dir, state_dir=state_dir) if audit_dir is not None else None
        self._stored = StoredState()
        self.lock = threading.Lock()

    def load(self) -> tuple[dict[str, BudgetEntry], dict[str, Override]]:
        """Read the stored changes (at start): the effective budgets and the overrides."""
        if self._store is not None:
            self._stored = self._store.load()
        try:
            return self.effective(), self.active_overrides()
        except ValidationError as exc:
            raise ConfigError(f"invalid stored budget state: {exc}") from exc

    def effective(self) -> dict[str, BudgetEntry]:
        return effective_budgets(self._configured.values(), self._stored)

    def overrides(self) -> list[Override]:
        return [Override.model_validate(v) for _, v in sorted(self._stored.overrides.items())]

    def active_overrides(self) -> dict[str, Override]:
        """The overrides by id, as the engine takes them."""
        return {k: Override.model_validate(v) for k, v in self._stored.overrides.items()}

    # -- changes (call with ``lock`` held, then apply, then ``record``) ---------------------

    def store_budget(self, config: BudgetConfig) -> BudgetEntry | None:
        """Keep ``config`` as an admin change; return the entry it replaces."""
        before = self.effective().get(config.name)
        self._stored.budgets[config.name] = config.model_dump(mode="json")
        self._save()
        return before

    def drop_budget(self, name: str) -> BudgetEntry:
        """Delete budget ``name``; return its entry (UnknownBudgetError when there is none)."""
        before = self.effective().get(name)
        if before is None:
            raise UnknownBudgetError(f"no budget named {name!r}")
        if name in self._configured:
            self._stored.budgets[name] = None  # a tombstone over the YAML entry
        else:
            self._stored.budgets.pop(name, None)
        self._save()
        return before

    def new_override(self, override_id: str, spec: OverrideSpec, *, actor: str, now_ns: int) -> Override:
        """Override ``override_id`` as ``actor`` sets it now (InvalidOverrideError if it cannot be)."""
        if spec.budget is not None and spec.budget not in self.effective():
            raise InvalidOverrideError(f"no budget named {spec.budget!r}")
        if spec.until_ns is not None and spec.until_ns <= now_ns:
            raise InvalidOverrideError("until is in the past")
        try:
            return Override(
                **spec.model_dump(), id=override_id, created_by=actor, created_at=_datetime(now_ns)
            )
        except ValidationError as exc:
            raise InvalidOverrideError(f"invalid override: {exc.errors()[0]['msg']}") from exc

    def store_override(self, override: Override) -> dict[str, Any] | None:
        """Keep ``override``; return the stored document it replaces."""
        before = self._stored.overrides.get(override.id)
        self._stored.overrides[override.id] = override.model_dump(mode="json")
        self._save()
        return before

    def replace_overrides(self, overrides: dict[str, dict[str, Any]]) -> bool:
        """Keep exactly ``overrides`` (the shared store's); False when nothing changed."""
        if overrides == self._stored.overrides:
            return False
        self._stored.overrides = dict(overrides)
        self._save()
        return True

    def stored_overrides(self) -> dict[str, dict[str, Any]]:
        return dict(self._stored.overrides)

    def drop_override(self, override_id: str) -> dict[str, Any] | None:
        """Delete override ``override_id``; return its stored document (None: there was none)."""
        before = self._stored.overrides.pop(override_id, None)
        if before is not None:
            self._save()
        return before

    def record(self, **entry: Any) -> None:
        """Append a change to the audit log (fsynced before the change is acknowledged)."""
        if self._audit is not None:
            self._audit.append(**entry)

    def audit(self, limit: int | None = None) -> list[dict[str, Any]]:
        return [] if self._audit is None else self._audit.read(limit)

    def _save(self) -> None:
        if self._store is not None:
            self._store.save(self._stored)
