"""``fsync`` by path: what the lake, the spool and the budget store share to make writes durable.

fsync of a directory makes the renames, creations and unlinks in it durable; of a file, its
contents. Every atomic replacement in otelcost is write temporary, fsync it, rename, fsync the
directory.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path

__all__ = ["fsync_path", "publish_directory"]


def fsync_path(path: Path) -> None:
    """fsync the file or directory at ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_directory(final: Path, contents: Mapping[str, bytes]) -> Path:
    """Create the directory ``final`` holding ``contents`` (file name -> bytes), all or nothing.

    The files are written into a temporary sibling, each fsynced, the directory fsynced, renamed
    to ``final`` and the parent fsynced: a reader sees the whole directory or none of it, and a
    crash leaves at most a ``.tmp-`` sibling. Raises ``FileExistsError`` when ``final`` exists
    (what is published is never rewritten) and ``OSError`` when a write fails (the temporary
    directory is removed).
    """
    if final.exists():
        raise FileExistsError(final)
    temporary = final.with_name(f".{final.name}.tmp-{secrets.token_hex(4)}")
    try:
        temporary.mkdir()
        for name, data in contents.items():
            with open(temporary / name, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
        fsync_path(temporary)
        os.rename(temporary, final)
        fsync_path(final.parent)
    except OSError:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return final
