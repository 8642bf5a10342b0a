"""``fsync`` by path: what the lake, the spool and the budget store share to make writes durable.

fsync of a directory makes the renames, creations and unlinks in it durable; of a file, its
contents. Every atomic replacement in otelcost is write temporary, fsync it, rename, fsync the
directory.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fsync_path"]


def fsync_path(path: Path) -> None:
    """fsync the file or directory at ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
