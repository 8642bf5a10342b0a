"""Closed chargeback statements on disk: one immutable directory per period and version.

::

    <statements_dir>/chargeback/<period>/v<N>/
        statement.parquet   the statement section (money DECIMAL(38, 12))
        statement.csv       the same rows as text (money with 12 decimals)
        diff.csv            from v2 on: receiver, kind, rule, before, after, change against v<N-1>
        manifest.json       period, version, created_at, totals, the rules used, sha256 of each file

A version is written into a hidden temporary directory beside it, every file and the directory
fsynced, then renamed to ``v<N>`` and the period directory fsynced: a reader sees a whole
version or none, and a crash leaves at most a ``.v<N>.tmp-*`` directory that readers ignore. A
version is never written again; readers check every file against the manifest's sha256.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from otelcost.errors import StatementError
from otelcost.fsync import fsync_path, publish_directory

__all__ = [
    "MANIFEST",
    "ClosedStatement",
    "StatementInfo",
    "latest_statement",
    "period_dir",
    "read_statement",
    "statement_csv",
    "statement_versions",
    "table_csv",
    "write_version",
]

MANIFEST: Final = "manifest.json"
FORMAT: Final = 1
_VERSION_RE: Final = re.compile(r"^v([1-9][0-9]*)$")
_LABEL_RE: Final = re.compile(r"^[0-9A-Za-z][0-9A-Za-z-]*$")


@dataclass(frozen=True, slots=True)
class StatementInfo:
    """One closed version: where it is and what it charged.

    ``written`` is False when a close found the live numbers equal to this (latest) version
    and wrote nothing.
    """

    period: str
    version: int
    path: Path
    created_at: datetime
    charged_usd: Decimal
    previous_version: int | None = None
    diff_path: Path | None = None
    written: bool = True


@dataclass(frozen=True, slots=True)
class ClosedStatement:
    """A version read back and verified: its rows, their CSV bytes, and its manifest."""

    info: StatementInfo
    table: pa.Table
    csv: bytes
    manifest: dict[str, Any]


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    return str(value)


def table_csv(table: pa.Table) -> bytes:
    """``table`` as CSV bytes: a header, empty for NULL, money with its full scale; the same
    rows always give the same bytes (which is how a re-close tells "unchanged")."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in table.to_pylist():
        writer.writerow([_csv_value(row[name]) for name in table.column_names])
    return buffer.getvalue().encode("utf-8")


def statement_csv(table: pa.Table) -> bytes:
    """The ``statement.csv`` bytes of a statement section."""
    return table_csv(table)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def _check_label(label: str) -> str:
    if not _LABEL_RE.match(label):
        raise StatementError(f"{label!r} is not a period a statement can be closed for (such as 2026-11)")
    return label


def period_dir(statements_dir: Path, label: str) -> Path:
    """Where the versions of ``label`` (``2026-11``) live."""
    return Path(statements_dir) / "chargeback" / _check_label(label)


def statement_versions(statements_dir: Path, label: str) -> list[int]:
    """The closed versions of ``label``, oldest first (empty if it was never closed)."""
    directory = period_dir(statements_dir, label)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StatementError(f"cannot list {directory}: {exc.strerror or exc}") from exc
    return sorted(int(match[1]) for name in names if (match := _VERSION_RE.match(name)))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_statement(statements_dir: Path, label: str, version: int) -> ClosedStatement:
    """Version ``version`` of ``label``, every file checked against its manifest's sha256."""
    directory = period_dir(statements_dir, label) / f"v{version}"
    try:
        manifest = json.loads((directory / MANIFEST).read_bytes())
        files = {name: (directory / name).read_bytes() for name in manifest["files"]}
    except FileNotFoundError as exc:
        raise StatementError(f"{label} has no statement v{version} ({exc.filename} is missing)") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StatementError(f"cannot read statement {directory}: {exc}") from exc
    for name, data in files.items():
        if _sha256(data) != manifest["files"][name]["sha256"]:
            raise StatementError(f"{directory / name} does not match the sha256 in its manifest")
    try:
        table = pq.read_table(io.BytesIO(files["statement.parquet"]))
        info = StatementInfo(
            period=manifest["period"]["label"],
            version=int(manifest["version"]),
            path=directory,
            created_at=datetime.fromisoformat(manifest["created_at"]),
            charged_usd=Decimal(manifest["totals"]["charged_usd"]),
            previous_version=manifest.get("previous_version"),
            diff_path=directory / "diff.csv" if "diff.csv" in files else None,
            written=False,
        )
    except (KeyError, ValueError, TypeError, pa.ArrowException) as exc:
        raise StatementError(f"cannot read statement {directory}: {exc}") from exc
    return ClosedStatement(info, table, files["statement.csv"], manifest)


def latest_statement(statements_dir: Path, label: str) -> ClosedStatement | None:
    """The newest closed version of ``label``, verified; None if the period was never closed."""
    versions = statement_versions(statements_dir, label)
    return read_statement(statements_dir, label, versions[-1]) if versions else None


def _ensure_dir(path: Path) -> None:
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        fsync_path(directory.parent)


@contextmanager
def closing_lock(directory: Path) -> Iterator[None]:
    """Hold ``flock(2)`` on ``<period dir>/.lock``: one close of a period at a time."""
    try:
        _ensure_dir(directory)
        fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StatementError(f"cannot open {directory / '.lock'}: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def write_version(
    statements_dir: Path, label: str, version: int, files: Mapping[str, bytes], manifest: dict[str, Any]
) -> Path:
    """Write ``files`` and ``manifest.json`` (with each file's sha256 added) as version
    ``version`` of ``label``, atomically; the caller holds :func:`closing_lock`."""
    directory = period_dir(statements_dir, label)
    final = directory / f"v{version}"
    manifest = dict(
        manifest, files={name: {"sha256": _sha256(data), "bytes": len(data)} for name, data in files.items()}
    )
    contents = dict(files)
    contents[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")
    try:
        return publish_directory(final, contents)
    except FileExistsError as exc:
        raise StatementError(f"{final} already exists; a closed statement is never rewritten") from exc
    except OSError as exc:
        raise StatementError(f"cannot write statement {final}: {exc.strerror or exc}") from exc
