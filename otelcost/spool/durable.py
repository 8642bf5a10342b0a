"""Small durable-file operations shared by the spool and ``repair``.

A rename is atomic, but it is durable only once the directory holding it is synced; a new file's
contents are durable only once the file is synced. These helpers do both, in that order.
"""

from __future__ import annotations

import os
from pathlib import Path

from otelcost.fsync import fsync_path
from otelcost.spool.format import CHECKPOINT_NAME, CHECKPOINT_TMP_NAME, encode_checkpoint

__all__ = ["delete_gradually", "write_checkpoint_file"]

DELETE_STEP = 2**20


def write_checkpoint_file(directory: Path, seq: int) -> None:
    """Replace ``<directory>/checkpoint`` atomically: write a temporary file, sync, rename, sync."""
    temporary = directory / CHECKPOINT_TMP_NAME
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        data = encode_checkpoint(seq)
        if os.write(fd, data) != len(data):
            raise OSError(f"short write of {temporary}")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, directory / CHECKPOINT_NAME)
    fsync_path(directory)


def delete_gradually(path: Path, *, step: int = DELETE_STEP) -> None:
    """Unlink ``path`` after shrinking it ``step`` bytes at a time.

    On a filesystem mounted with online discard (common on cloud VMs; ext4 ``-o discard``),
    freeing 64 MiB at once stalls every fsync on the device until the discard is done: about
    90 ms here, measured as the latency of a concurrent fdatasync. Shrinking 1 MiB at a time
    spreads the same work out and keeps that stall under 10 ms (docs/durability.md). Only files
    whose content no longer matters are deleted this way: a crash half way leaves a shortened
    file that recovery treats as stale or as a torn tail.
    """
    try:
        size = path.stat().st_size
        while size > step:
            size -= step
            os.truncate(path, size)
        path.unlink()
    except FileNotFoundError:
        pass
