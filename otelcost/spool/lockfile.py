"""One process per spool directory: an exclusive ``flock`` on ``<spool>/lock``.

Two writers appending to the same segment would interleave records and corrupt the log, so the
second one is refused at start with the pid of the first. The kernel drops the lock when its
holder exits, however it exits, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from otelcost.spool.errors import SpoolError
from otelcost.spool.format import LOCK_NAME

__all__ = ["DirectoryLock"]


class DirectoryLock:
    def __init__(self, directory: Path) -> None:
        self._path = directory / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise SpoolError(f"cannot open the spool lock file {self._path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise SpoolError(
                f"the spool directory {self._path.parent} is in use (locked by pid {holder}); each otelcost "
                "instance needs its own spool directory"
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
