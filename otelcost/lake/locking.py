"""The lake lock, which orders the lake's writers: ``flock(2)`` on ``<lake_dir>/.lock``.

The live writer holds it shared for each flush (several writers may append files at once); jobs
that rewrite partitions (reprice, compaction's swap) hold it exclusive for their
read-modify-replace, so no new file lands in a partition while it is being rewritten; a replay
reads footers under it shared, so it never sees a day half-swapped. Readers take no lock (an
analyst's plain ``duckdb`` cannot): the atomic renames of ``publish.py`` and ``swap.py`` are what
they rely on.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from otelcost.errors import LakeError, LakeLockTimeoutError

__all__ = ["LOCK_FILE", "lake_lock"]

LOCK_FILE: Final = ".lock"


@contextmanager
def lake_lock(lake_dir: Path, *, shared: bool = False, timeout: float | None = None) -> Iterator[None]:
    """Hold ``flock(2)`` on ``<lake_dir>/.lock``: shared for appending files, exclusive to rewrite.

    The exclusive lock waits for flushes in progress and holds new ones back. Each call opens
    its own file description, so the lock also works between threads of one process.
    ``timeout`` (seconds) bounds the wait; ``None`` waits as long as it takes; a timeout raises
    ``LakeLockTimeoutError``.
    """
    path = Path(lake_dir) / LOCK_FILE
    try:
        Path(lake_dir).mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise LakeError(f"cannot open the lake lock {path}: {exc.strerror or exc}") from exc
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        if timeout is None:
            fcntl.flock(fd, mode)
        else:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        kind = "shared" if shared else "exclusive"
                        raise LakeLockTimeoutError(
                            f"timed out after {timeout:g}s waiting for the {kind} lake lock {path}"
                        ) from None
                    time.sleep(0.01)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock
