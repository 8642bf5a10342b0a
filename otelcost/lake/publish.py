"""Publishing new files into the lake: atomic write + rename, fsync, and the seqs in the footer.

**A reader never sees a partial file.** A file is written under a hidden name that ends in
``.tmp`` (outside the ``*.parquet`` glob, ``layout.py``), fsynced, renamed into place with
``os.replace``, and its directory is fsynced. A flush (:func:`write_files`) writes one file per
UTC day and is all or nothing: if anything fails, the files already renamed are unlinked again,
so a retry of the same rows never duplicates them.

**Every file names the spool records of its rows.** The footer's key-value metadata carries
the seqs of the spool records whose rows the file holds, under the writer id of the spool
(``seqs.py``, ``writers.py``), so that a replay after a crash can tell which of its records
already reached the lake (``recovery.py``).

**Names never collide between writers.** A file's name is its write time in microseconds plus
48 random bits (``layout.new_file_name``), and every writer of a shared root publishes into the
same directories under such names.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from otelcost.errors import LakeError
from otelcost.fsync import fsync_path
from otelcost.lake.layout import (
    TEMP_SUFFIX,
    conform,
    io_error,
    new_file_name,
    partition_dir,
    split_by_day,
    split_by_table,
    table_dir,
)
from otelcost.lake.seqs import UNNAMED_WRITER, SeqSet, WriterSeqs, with_seqs

__all__ = [
    "DEFAULT_COMPRESSION",
    "DEFAULT_ROW_GROUP_SIZE",
    "PartialWriteError",
    "write_files",
    "write_parquet",
]

DEFAULT_COMPRESSION: Final = "zstd"
DEFAULT_ROW_GROUP_SIZE: Final = 122_880


class PartialWriteError(LakeError):
    """Some files of a write are in the lake and could not be taken back out.

    Raised only when publishing failed *and* undoing it failed too (the file system refuses
    both a rename and an unlink): the rows of ``published_days`` are in the lake, the others
    are not. The writer drops the published (table, day) parts from its buffer so they are not
    written twice.
    """

    def __init__(
        self, message: str, *, published: list[Path], published_parts: set[tuple[str, date]]
    ) -> None:
        super().__init__(message)
        self.published = published
        self.published_parts = published_parts


def write_parquet(
    path: Path,
    table: pa.Table,
    *,
    compression: str,
    row_group_size: int,
    checkpoint: Callable[[], None] | None = None,
) -> None:
    """Write ``table`` to ``path`` and fsync it (the caller renames and fsyncs the directory).

    ``checkpoint`` is called before each row group: a long rewrite (compaction) raises from it
    to stop between row groups when the server is stopping. The file is the same either way.
    """
    codec = None if compression == "none" else compression
    if checkpoint is None:
        pq.write_table(table, path, compression=codec, row_group_size=row_group_size, write_statistics=True)
    else:
        # What pq.write_table does, one row group at a time.
        with pq.ParquetWriter(path, table.schema, compression=codec, write_statistics=True) as out:
            for offset in range(0, table.num_rows, row_group_size):
                checkpoint()
                out.write_table(table.slice(offset, row_group_size), row_group_size=row_group_size)
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> bool:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        return False
    return True


@dataclass(slots=True)
class _Staged:
    table: str
    day: date
    temp: Path
    final: Path


def write_files(
    lake_dir: Path,
    table: pa.Table,
    *,
    compression: str = DEFAULT_COMPRESSION,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    spool_seqs: Mapping[date, SeqSet] | None = None,
    writer: str = UNNAMED_WRITER,
) -> list[Path]:
    """Write a RECORD_SCHEMA table as one new file per table and UTC day of ``ts``; return the
    files. Calls go to ``llm_calls``, rows folded into another call to ``duplicate_spans``
    (``layout.split_by_table``).

    ``spool_seqs`` names, per day, the spool records whose rows are in the table; each day's
    files record that set in their footers (a record with no row in one of the two tables is
    named there all the same, which is harmless: the replay asks each table only about the rows
    it would hold). The seqs are ``writer``'s, the writer id of the spool that numbered them
    (``writers.py``).

    All or nothing: every file is first written under a hidden ``.tmp`` name and fsynced, then
    all are renamed into place and the directories fsynced. If anything fails, the files already
    renamed are removed again and LakeError is raised, so a retry of the same rows never
    duplicates them (in the unlikely case that removing fails too: PartialWriteError). Rows
    keep their order: arrival order is close to ``ts`` order already, and sorting would cost as
    much as writing (see ``layout.sort_by_ts``). The caller holds ``lake_lock(lake_dir, shared=True)``.
    """
    table = conform(table)
    parts = [(name, day, part) for name, rows in split_by_table(table) for day, part in split_by_day(rows)]
    if not parts:
        return []
    roots = {name: table_dir(lake_dir, name) for name, _, _ in parts}
    roots_existed = {name: root.is_dir() for name, root in roots.items()}
    root = Path(lake_dir)
    staged: list[_Staged] = []
    created_dirs: set[str] = set()
    try:
        for name, day, part in parts:
            directory = partition_dir(lake_dir, day, name)
            if not directory.is_dir():
                directory.mkdir(parents=True, exist_ok=True)
                created_dirs.add(name)
            final = directory / new_file_name()
            temp = directory / f".{final.name}{TEMP_SUFFIX}"
            staged.append(_Staged(name, day, temp, final))
            seqs = spool_seqs.get(day) if spool_seqs else None
            write_parquet(
                temp,
                with_seqs(part, WriterSeqs.single(writer, seqs)) if seqs else part,
                compression=compression,
                row_group_size=row_group_size,
            )
    except (OSError, pa.ArrowException) as exc:
        for item in staged:
            _unlink_quietly(item.temp)
        raise io_error(f"write Parquet files under {root}", exc) from exc

    published: list[_Staged] = []
    try:
        for item in staged:
            os.replace(item.temp, item.final)
            published.append(item)
        for directory in {item.final.parent for item in staged}:
            fsync_path(directory)
        for name in created_dirs:
            fsync_path(roots[name])
        if not all(roots_existed.values()):
            fsync_path(root)
    except OSError as exc:
        failed = [item for item in published if not _unlink_quietly(item.final)]
        for item in staged:
            _unlink_quietly(item.temp)
        if failed:
            raise PartialWriteError(
                f"cannot publish Parquet files under {root} ({exc.strerror or exc}) nor take back "
                f"{len(failed)} published file(s)",
                published=[item.final for item in failed],
                published_parts={(item.table, item.day) for item in failed},
            ) from exc
        raise io_error(f"publish Parquet files under {root}", exc) from exc
    return [item.final for item in staged]
