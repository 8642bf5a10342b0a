"""The audit log: every administrative change, as an append-only table of the lake.

::

    <lake_dir>/audit_log/date=YYYY-MM-DD/part-<UTC stamp>-<random>.parquet   one file per change

Who changed what, when, from what to what: budget and override changes through the admin API
(the admin token's name is the actor), chargeback periods closed, reprices. One entry
is one small Parquet file, written under a hidden name, fsynced and renamed into place before the
change is acknowledged, so an entry is either whole in the lake or absent, and two processes (a
running ``serve`` and an ``otelcost report chargeback --close``) never write the same file.

**Append-only.** Nothing in otelcost rewrites or deletes these files: compaction and repricing
rewrite ``llm_calls`` only, and ``lake.retention`` drops days of the three call tables only. The
table is queryable as ``audit_log`` in ``otelcost sql``; ``before`` and ``after`` are JSON
text (DuckDB: ``after::JSON ->> 'limit'``).

An older ``<data_dir>/budgets/audit.jsonl`` is moved into the table once, at the first start
that finds it (``budgets/store.py``), and renamed ``audit.jsonl.imported``.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from otelcost.fsync import fsync_path
from otelcost.lake.layout import FILE_SUFFIX, TEMP_SUFFIX, io_error, new_file_name, partition_dir, table_dir
from otelcost.lake.publish import DEFAULT_COMPRESSION, DEFAULT_ROW_GROUP_SIZE, write_parquet
from otelcost.schema import TIMESTAMP_TYPE, Column

__all__ = [
    "AUDIT_COLUMNS",
    "AUDIT_SCHEMA",
    "AUDIT_TABLE_NAME",
    "AuditEntry",
    "append_entries",
    "command_actor",
    "read_entries",
]

AUDIT_TABLE_NAME: Final = "audit_log"

AUDIT_COLUMNS: Final[tuple[Column, ...]] = (
    Column("changed_at", TIMESTAMP_TYPE, "audit", "When the change took effect, UTC.", nullable=False),
    Column(
        "actor",
        pa.string(),
        "audit",
        "Who: the admin token's name, `system` for an expiry, `cli:<os user>` for a command.",
        nullable=False,
    ),
    Column(
        "action",
        pa.string(),
        "audit",
        "What: budget.create/update/delete, override.put/delete/expire, statement.close, pricing.reprice.",
        nullable=False,
    ),
    Column("target", pa.string(), "audit", "Which: the budget name, override id, period or day range."),
    Column("before", pa.string(), "audit", "The state before, as JSON (NULL: there was none)."),
    Column("after", pa.string(), "audit", "The state after, as JSON (NULL: deleted)."),
    Column("note", pa.string(), "audit", "The caller's note (X-Otelcost-Note), if any."),
)
AUDIT_SCHEMA: Final = pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in AUDIT_COLUMNS])


@dataclass(frozen=True, slots=True)
class AuditEntry:
    actor: str
    action: str
    target: str | None
    before: Any = None
    after: Any = None
    note: str | None = None
    at: datetime | None = None
    """None: now."""

    def as_dict(self, at: datetime) -> dict[str, Any]:
        """The JSON shape of ``GET /v1/admin/audit``."""
        record: dict[str, Any] = {
            "at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "before": self.before,
            "after": self.after,
        }
        if self.note:
            record["note"] = self.note
        return record


def command_actor() -> str:
    """The actor of a change made by an otelcost command: ``cli:<os user>``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's random user)
        user = str(os.getuid())
    return f"cli:{user}"


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def append_entries(
    lake_dir: Path, entries: Iterable[AuditEntry], *, file_id: str | None = None
) -> list[dict[str, Any]]:
    """Write ``entries`` as one new file of the audit table (fsynced, renamed into place);
    the entries in the JSON shape. LakeError when the file cannot be written (nothing is).

    ``file_id`` names the file instead of a random id; a file of that id already in the lake
    means these entries are there already, and nothing is written (an import repeated after a
    crash uses it)."""
    now = datetime.now(UTC)
    rows = [(entry, entry.at or now) for entry in entries]
    if not rows:
        return []
    table = pa.table(
        {
            "changed_at": pa.array([at for _, at in rows], TIMESTAMP_TYPE),
            "actor": [entry.actor for entry, _ in rows],
            "action": [entry.action for entry, _ in rows],
            "target": [entry.target for entry, _ in rows],
            "before": [_json(entry.before) for entry, _ in rows],
            "after": [_json(entry.after) for entry, _ in rows],
            "note": [entry.note for entry, _ in rows],
        },
        schema=AUDIT_SCHEMA,
    )
    directory = partition_dir(lake_dir, rows[0][1].date(), AUDIT_TABLE_NAME)
    name = new_file_name() if file_id is None else f"part-{file_id}{FILE_SUFFIX}"
    if file_id is not None and (directory / name).exists():
        return [entry.as_dict(at) for entry, at in rows]
    temporary = directory / f".{name}{TEMP_SUFFIX}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        write_parquet(
            temporary, table, compression=DEFAULT_COMPRESSION, row_group_size=DEFAULT_ROW_GROUP_SIZE
        )
        os.replace(temporary, directory / name)
        fsync_path(directory)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise io_error("write an audit entry", exc) from exc
    return [entry.as_dict(at) for entry, at in rows]


def _value(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def read_entries(lake_dir: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """The newest ``limit`` entries (all when None), oldest first, in the JSON shape."""
    root = table_dir(lake_dir, AUDIT_TABLE_NAME)
    files = sorted(root.glob(f"*/*{FILE_SUFFIX}")) if root.is_dir() else []
    if not files or (limit is not None and limit <= 0):
        return []
    try:
        table = pa.concat_tables(pq.read_table(path, schema=AUDIT_SCHEMA) for path in files)
    except (OSError, pa.ArrowException) as exc:
        raise io_error("read the audit log", exc) from exc
    rows = sorted(table.to_pylist(), key=lambda row: row["changed_at"])
    if limit is not None:
        rows = rows[-limit:]
    return [
        AuditEntry(
            row["actor"],
            row["action"],
            row["target"],
            _value(row["before"]),
            _value(row["after"]),
            row["note"],
        ).as_dict(row["changed_at"])
        for row in rows
    ]
