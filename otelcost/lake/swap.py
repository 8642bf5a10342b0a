"""Replacing a partition's files at once: what reprice and compaction publish their rewrite with.

**A reader never sees a partition twice or half-replaced.** The new partition is built in
``<lake_dir>/.staging/`` (outside the glob, on the same file system) and the two directories are
swapped in one ``renameat2(RENAME_EXCHANGE)`` system call (via ctypes, Linux with glibc >= 2.28).
A reader that listed the old files just before the swap may find them gone when it opens them:
it gets an I/O error, never wrong numbers (``lake.query.run_query`` retries such a query).
Without ``RENAME_EXCHANGE`` the fallback is two renames; a crash between them is finished by
``recovery.recover``. The caller holds the lake lock exclusively (``locking.py``), so no flush
lands a file in the partition meanwhile.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from contextlib import suppress
from datetime import date
from pathlib import Path
from typing import Final

import pyarrow as pa

from otelcost.fsync import fsync_path
from otelcost.lake.layout import (
    STAGING_DIR,
    conform,
    io_error,
    new_file_name,
    partition_dir,
    rows_off_day,
    sort_by_ts,
    staging_name,
    table_dir,
)
from otelcost.lake.publish import DEFAULT_COMPRESSION, DEFAULT_ROW_GROUP_SIZE, write_parquet
from otelcost.lake.recovery import read_partition_writer_seqs
from otelcost.lake.seqs import with_seqs

__all__ = ["exchange_directories", "replace_partition", "stage_directory", "swap_partition"]

log = logging.getLogger(__name__)

_AT_FDCWD: Final = -100
_RENAME_EXCHANGE: Final = 2


def _load_renameat2() -> Callable[[int, bytes, int, bytes, int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        function = libc.renameat2  # glibc >= 2.28, musl >= 1.2.? ; absent elsewhere
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    renameat2: Callable[[int, bytes, int, bytes, int], int] = function
    return renameat2


_renameat2 = _load_renameat2()


def exchange_directories(first: Path, second: Path) -> bool:
    """Atomically swap two paths with ``renameat2(RENAME_EXCHANGE)``; False when unsupported.

    Unsupported means: not Linux/glibc, or a file system without RENAME_EXCHANGE (some network
    and FUSE file systems answer EINVAL). Any other failure raises OSError.
    """
    if _renameat2 is None:
        return False
    result = _renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(first), None, str(second))


def stage_directory(lake_dir: Path, day: date, role: str) -> Path:
    """A new, empty directory for work on ``day`` in ``<lake_dir>/.staging/`` (outside the glob,
    on the lake's file system, so what is built there can be hard-linked into a partition).
    ``recover`` deletes what a crash leaves there; the caller deletes it when done."""
    staging = Path(lake_dir) / STAGING_DIR
    directory = staging / staging_name(day, role, uuid.uuid4().hex[:12])
    try:
        staging.mkdir(parents=True, exist_ok=True)
        directory.mkdir()
    except OSError as exc:
        raise io_error(f"create the staging directory {directory}", exc) from exc
    return directory


def replace_partition(
    lake_dir: Path,
    day: date,
    table: pa.Table,
    *,
    compression: str = DEFAULT_COMPRESSION,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
) -> None:
    """Make ``table`` the whole content of ``day``'s partition, atomically for readers.

    The new partition (one file, rows sorted by ``ts``) is built and fsynced in
    ``<lake_dir>/.staging/``, then swapped in by :func:`swap_partition`. A query sees either
    the old partition or the new one, never both, never neither. An empty ``table`` removes
    the partition. The caller must hold ``lake_lock(lake_dir)`` exclusively; every row's ``ts``
    must fall on ``day`` (UTC), otherwise ValueError. When it raises LakeError, the day holds its
    old content or (if only the clean-up after the swap failed) its new one, never a mix. The
    new file keeps the union of the spool seqs the old files recorded, of every writer under its
    own id, so a spool replay of any writer after the rewrite still recognises rows that are in
    the lake (``recovery.py``).
    """
    table = conform(table)
    if table.num_rows:
        wrong = rows_off_day(table, day)
        if len(wrong):
            first = table["ts"][int(wrong[0])].as_py()
            raise ValueError(f"{len(wrong)} row(s) do not belong to {day} (UTC), for example ts={first}")
    live = partition_dir(lake_dir, day)
    if table.num_rows == 0:
        retired = Path(lake_dir) / STAGING_DIR / staging_name(day, "old", uuid.uuid4().hex[:12])
        try:
            if live.exists():
                retired.parent.mkdir(parents=True, exist_ok=True)
                os.rename(live, retired)
                fsync_path(table_dir(lake_dir))
                shutil.rmtree(retired)
        except OSError as exc:
            raise io_error(f"replace partition {live}", exc) from exc
        return
    kept_seqs = read_partition_writer_seqs(lake_dir, day)  # every writer's

    def build(directory: Path) -> None:
        write_parquet(
            directory / new_file_name(),
            with_seqs(sort_by_ts(table), kept_seqs),
            compression=compression,
            row_group_size=row_group_size,
        )

    swap_partition(lake_dir, day, build, action="replace")


def swap_partition(lake_dir: Path, day: date, build: Callable[[Path], None], *, action: str) -> None:
    """Make a new directory, filled by ``build(directory)``, the partition of ``day``.

    The new directory is built and fsynced in ``<lake_dir>/.staging/`` (outside the glob, on the
    same file system, so hard links to the live files work and the swap is a rename), then
    exchanged with the live directory by one ``renameat2(RENAME_EXCHANGE)``; the old directory
    is deleted afterwards. A query sees either the old set of files or the new one, never both,
    never neither. Where the exchange is not available, the fallback is two renames (live ->
    staging, new -> live): a query that runs between them sees the day empty for that instant,
    but never counts a row twice; a crash between the two renames is repaired by ``recover``.
    The caller holds ``lake_lock(lake_dir)`` exclusively.

    OSError and Arrow errors become LakeError (``action`` names the job in the message), with
    the day holding its old files or, if only the clean-up after the swap failed, its new ones.
    Anything else ``build`` raises (a job abandoned because the server stops) propagates after
    the half-built directory is removed; the live partition is then untouched.
    """
    live = partition_dir(lake_dir, day)
    staging = Path(lake_dir) / STAGING_DIR
    token = uuid.uuid4().hex[:12]
    built = staging / staging_name(day, "new", token)
    retired = staging / staging_name(day, "old", token)
    try:
        staging.mkdir(parents=True, exist_ok=True)
        table_dir(lake_dir).mkdir(parents=True, exist_ok=True)
        built.mkdir()
        build(built)
        fsync_path(built)
        fsync_path(staging)
        if not live.exists():
            os.rename(built, live)
        elif exchange_directories(built, live):
            retired = built  # after the exchange, the staging path holds the old partition
        else:
            log.debug("RENAME_EXCHANGE unavailable under %s: swapping %s with two renames", lake_dir, day)
            os.rename(live, retired)
            os.rename(built, live)
        fsync_path(table_dir(lake_dir))
        fsync_path(staging)
        shutil.rmtree(retired, ignore_errors=True)
    except (OSError, pa.ArrowException) as exc:
        if built != retired and retired.is_dir() and not live.exists():
            # The two-rename fallback failed half-way: put the old partition back, so the
            # outcome matches the error. If even that fails, recover() rolls forward later.
            with suppress(OSError):
                os.rename(retired, live)
        if live.exists():
            # `built` is a half-built new partition, or the old one after a completed exchange.
            shutil.rmtree(built, ignore_errors=True)
        raise io_error(f"{action} partition {live}", exc) from exc
    except BaseException:
        # Only build() raises anything else, so nothing has been swapped yet.
        shutil.rmtree(built, ignore_errors=True)
        raise
