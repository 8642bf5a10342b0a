"""What the evaluator keeps on disk, under ``<data_dir>/budgets/``.

``state.json``
    Changes made through the admin API: budgets created or changed at run time (by name; a
    ``null`` value deletes a budget of the YAML file) and the current overrides. Rewritten
    atomically (temporary file, fsync, rename, fsync of the directory) on every change, so a
    crash leaves either the old or the new version, never half of one.
the audit log
    Not here: every change is an entry of the lake's append-only ``audit_log`` table
    (``otelcost/lake/audit.py``): ``changed_at`` (UTC), ``actor`` (the admin token's name, or ``system``
    for an override that expired), ``action`` (``budget.create``, ``budget.update``,
    ``budget.delete``, ``override.put``, ``override.delete``, ``override.expire``),
    ``target``, ``before``, ``after`` and an optional ``note``. Written and fsynced before the
    change is acknowledged; never rewritten. An ``audit.jsonl`` here (an older otelcost's log)
    is moved into that table at start (:func:`import_legacy_audit`), and renamed
    ``audit.jsonl.imported``.
``alerts.jsonl``
    The alert journal: a ``crossed`` line when a threshold crossing is recorded (before the
    webhook is tried), then ``delivered`` or ``failed``. It is what keeps alerts to once per
    crossing across restarts: a crossing already in the journal is not alerted again, and
    one that was never delivered is retried. It is compacted at start (entries of closed
    windows dropped).

Foreign ``OSError``/``ValueError`` become :class:`~otelcost.errors.ConfigError` (unreadable
state at start) or are logged (a failed append does not stop ingest).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

from otelcost.errors import ConfigError, OtelcostError
from otelcost.fsync import fsync_path
from otelcost.lake.audit import AuditEntry, append_entries, read_entries

__all__ = [
    "AlertJournal",
    "AuditLog",
    "BudgetStore",
    "StoredState",
    "atomic_write_json",
    "import_legacy_audit",
    "utc_now_text",
]

log = logging.getLogger(__name__)

STATE_FILE: Final = "state.json"
AUDIT_FILE: Final = "audit.jsonl"
ALERTS_FILE: Final = "alerts.jsonl"


def utc_now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def atomic_write_json(path: Path, document: Any) -> None:
    """Replace ``path`` with ``document`` as JSON, atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        fsync_path(path.parent)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _append_line(path: Path, record: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True, default=str) + "\n"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def _read_lines(path: Path) -> Iterator[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            # A line cut short by a crash is the last one; anything else is damage worth a note.
            log.warning("%s:%d is not JSON; skipped", path, number)
            continue
        if isinstance(record, dict):
            yield record


@dataclass
class StoredState:
    """Admin-API changes: ``budgets`` name -> budget document (None: deleted), ``overrides``."""

    budgets: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)


class BudgetStore:
    """``state.json`` in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / STATE_FILE

    def load(self) -> StoredState:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return StoredState()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read budget state {self.path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"budget state {self.path} is not a JSON object")
        return StoredState(dict(data.get("budgets") or {}), dict(data.get("overrides") or {}))

    def save(self, state: StoredState) -> None:
        try:
            atomic_write_json(self.path, {"budgets": state.budgets, "overrides": state.overrides})
        except OSError as exc:
            raise OtelcostError(f"cannot write budget state {self.path}: {exc.strerror}") from exc


def _legacy_entry(record: Mapping[str, Any]) -> AuditEntry:
    at = record.get("at")
    return AuditEntry(
        actor=str(record.get("actor", "")),
        action=str(record.get("action", "")),
        target=None if record.get("target") is None else str(record["target"]),
        before=record.get("before"),
        after=record.get("after"),
        note=record.get("note"),
        at=datetime.fromisoformat(str(at).replace("Z", "+00:00")).astimezone(UTC) if at else None,
    )


def import_legacy_audit(lake_dir: Path, path: Path) -> int:
    """Move the entries of an older otelcost's ``audit.jsonl`` into the lake's audit table, once;
    how many.

    The entries are written (one file per day, named after the content's digest) before the
    JSON lines file is renamed; a crash in between finds those files at the next start and
    writes nothing twice."""
    if not path.is_file():
        return 0
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        entries = [_legacy_entry(record) for record in _read_lines(path)]
    except (OSError, ValueError) as exc:
        raise OtelcostError(f"cannot move {path} into the lake's audit log: {exc}") from exc
    by_day: dict[date, list[AuditEntry]] = {}
    now = datetime.now(UTC)
    for entry in entries:
        by_day.setdefault((entry.at or now).date(), []).append(entry)
    for day, day_entries in by_day.items():
        append_entries(lake_dir, day_entries, file_id=f"imported-{day.isoformat()}-{digest}")
    os.replace(path, path.with_name(path.name + ".imported"))
    fsync_path(path.parent)
    return len(entries)


class AuditLog:
    """The audit log of budget and override changes: the lake's append-only ``audit_log`` table
    (``otelcost/lake/audit.py``) under ``lake_dir``. An ``audit.jsonl`` left in ``state_dir`` by
    an older otelcost is moved into the table when the log is opened."""

    def __init__(self, lake_dir: Path, *, state_dir: Path | None = None) -> None:
        self.lake_dir = Path(lake_dir)
        self._lock = threading.Lock()
        if state_dir is not None:
            imported = import_legacy_audit(self.lake_dir, Path(state_dir) / AUDIT_FILE)
            if imported:
                log.info("moved %d entries of %s into the lake's audit_log table", imported, state_dir)

    def append(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        before: Any,
        after: Any,
        note: str | None = None,
    ) -> dict[str, Any]:
        entry = AuditEntry(actor, action, target, before, after, note)
        with self._lock:
            (record,) = append_entries(self.lake_dir, [entry])
        return record

    def read(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` entries (all when None), oldest first."""
        return read_entries(self.lake_dir, limit)


class AlertJournal:
    """``alerts.jsonl``: which crossings were recorded, delivered or given up."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / ALERTS_FILE
        self._lock = threading.Lock()

    def load(self, *, keep_if: Any = None) -> tuple[set[str], list[dict[str, Any]]]:
        """(every recorded alert id, payloads recorded but neither delivered nor failed).

        ``keep_if(payload) -> bool`` drops crossings of closed windows; the journal is then
        rewritten with what is kept.
        """
        crossed: dict[str, dict[str, Any]] = {}
        finished: dict[str, str] = {}
        for record in _read_lines(self.path):
            alert_id = str(record.get("id", ""))
            if record.get("event") == "crossed" and isinstance(record.get("alert"), dict):
                crossed[alert_id] = record["alert"]
            elif record.get("event") in ("delivered", "failed"):
                finished[alert_id] = str(record["event"])
        if keep_if is not None:
            crossed = {k: v for k, v in crossed.items() if keep_if(v)}
            self._rewrite(crossed, finished)
        pending = [payload for alert_id, payload in crossed.items() if alert_id not in finished]
        return set(crossed), pending

    def _rewrite(self, crossed: Mapping[str, dict[str, Any]], finished: Mapping[str, str]) -> None:
        lines = []
        for alert_id, payload in crossed.items():
            lines.append({"event": "crossed", "id": alert_id, "alert": payload})
            if alert_id in finished:
                lines.append({"event": finished[alert_id], "id": alert_id})
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".alerts.", suffix=".tmp")
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.writelines(json.dumps(line, sort_keys=True) + "\n" for line in lines)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, self.path)
                fsync_path(self.path.parent)
        except OSError as exc:
            log.warning("cannot compact the alert journal %s: %s", self.path, exc.strerror)

    def record(self, event: str, alert_id: str, payload: Mapping[str, Any] | None = None) -> None:
        record: dict[str, Any] = {"event": event, "id": alert_id, "at": utc_now_text()}
        if payload is not None:
            record["alert"] = dict(payload)
        try:
            with self._lock:
                _append_line(self.path, record)
        except OSError as exc:
            log.warning("cannot append to the alert journal %s: %s", self.path, exc.strerror)
