"""Who writes the lake: the writer id that keys each process's spool seqs in the footers.

Every ``otelcost serve`` numbers the records of its own spool (``<data_dir>/spool``) from 1, and
the lake's footers name those numbers so that a replay after a crash skips what is already in
Parquet (``seqs.py``, ``recovery.py``). When several processes share one lake root
(``lake.root``), the numbers alone are ambiguous, so each process writes its seqs under its
writer id and a replay reads only its own.

The id (:func:`lake_writer_id`):

* ``lake.writer_id`` when set (an operator's name, e.g. the pod name of a StatefulSet);
* otherwise, when the lake is the data directory's own (``lake.root`` unset), the unnamed writer
  ``""``: a single-writer lake is written as before writer ids existed, and the files written
  before them belong to it;
* otherwise an id generated once and kept in ``<data_dir>/lake-writer-id``: the spool it numbers
  lives in the same data directory, so the two survive a restart (or a SIGKILL) together and a
  copy of the data directory carries both. It is created with ``O_EXCL`` after an fsync, so two
  processes racing on one data directory agree on one id.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Final

from otelcost.errors import ConfigError
from otelcost.fsync import fsync_path
from otelcost.lake.config import WRITER_ID_PATTERN, LakeConfig
from otelcost.lake.seqs import UNNAMED_WRITER

__all__ = ["WRITER_ID_FILE", "lake_writer_id", "stored_writer_id", "writer_id_of"]

WRITER_ID_FILE: Final = "lake-writer-id"
_VALID: Final = re.compile(WRITER_ID_PATTERN)


def lake_writer_id(data_dir: Path, *, root: str | None, configured: str | None) -> str:
    """The writer id of the ``otelcost serve`` whose data directory is ``data_dir``.

    ``root`` and ``configured`` are ``lake.root`` and ``lake.writer_id``. Raises ConfigError
    when the stored id cannot be read or created, or is not a valid id (edited by hand).
    """
    if configured is not None:
        return configured
    if root is None:
        return UNNAMED_WRITER
    return stored_writer_id(data_dir)


def writer_id_of(config: LakeConfig, given: str | None) -> str:
    """The id a ``LakeWriter`` writes its seqs under: ``given`` (:func:`lake_writer_id`, resolved
    by the caller, which knows the data directory), else ``lake.writer_id``, else the unnamed
    writer of a lake of its own. A shared ``lake.root`` without an id is refused: it would mix
    this spool's seqs with another writer's, and a replay would skip records the lake lacks."""
    if given is not None:
        return given
    if config.writer_id is not None:
        return config.writer_id
    if config.root is not None:
        raise ConfigError(
            "lake.root is set, so this process needs a lake writer id: set lake.writer_id, or "
            "build the LakeWriter with writer_id=lake_writer_id(...) (otelcost/lake/writers.py)"
        )
    return UNNAMED_WRITER


def stored_writer_id(data_dir: Path) -> str:
    """The id in ``<data_dir>/lake-writer-id``, generated and stored at the first call."""
    path = Path(data_dir) / WRITER_ID_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    generated = uuid.uuid4().hex[:16]
    temp = path.with_name(f".{WRITER_ID_FILE}.{generated}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with temp.open("x", encoding="ascii") as out:
            out.write(generated + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            # link(2) fails with EEXIST instead of replacing: the first process to get here wins.
            os.link(temp, path)
        except FileExistsError:
            return _read(path)
        finally:
            temp.unlink(missing_ok=True)
        fsync_path(path.parent)
    except OSError as exc:
        raise ConfigError(f"cannot store the lake writer id in {path}: {exc.strerror or exc}") from exc
    return generated


def _read(path: Path) -> str:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the lake writer id in {path}: {exc}") from exc
    if not _VALID.fullmatch(text):
        raise ConfigError(
            f"{path} does not hold a lake writer id ({text[:40]!r}): restore it from a backup of the "
            f"data directory, or set lake.writer_id to the id this directory's spool wrote under"
        )
    return text
