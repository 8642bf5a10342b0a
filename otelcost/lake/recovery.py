"""What a start needs from the lake after a crash: repair, and which spool records it holds.

**Repair** (:func:`recover`, run by the lake writer's ``start`` under the exclusive lock):
temporary files of unfinished writes are removed, a fallback swap interrupted between its two
renames is finished, left-over staging directories are deleted.

**Replay de-duplication.** Every published file names the spool seqs of its rows in its footer
(``publish.py``, ``seqs.py``). The spool replays the records after its checkpoint; a record whose
seq a file of day D names had its rows of day D made durable before the crash (between the
file's rename and the checkpoint write), so those rows are not written again. The unit is
(seq, table, day) because a flush writes one file per table (``llm_calls``, ``duplicate_spans``)
and UTC day, and a record's rows of one table on one day always land in one file together.
:class:`ReplayFilter` answers, record by record, which rows the lake still lacks, reading each
touched (table, day)'s footers once. Rewrites keep the seqs: reprice's
``replace_partition`` writes the union of the old files' seqs, compaction's merged file the
union of the files it replaces (``swap.py``), every writer's under its own id.

**Several writers.** Processes sharing one lake root (``lake.root``) each number their own
spool, so the footers keep seqs per writer id (``seqs.py``, ``writers.py``) and a replay, like
the numbering check, reads only its own writer's. Files written before writer ids name the
unnamed writer, the single writer of a lake in its own ``<data_dir>/lake``.

**Numbering.** Footers keep seqs forever, so a spool must never hand out a seq a footer names
(a repaired spool, a lost unsynced tail, a spool moved aside): :func:`highest_recorded_seq` is
where the numbering must continue after.
"""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

import pyarrow as pa

from otelcost.lake.layout import (
    STAGING_DIR,
    TABLE_NAME,
    TABLE_NAMES,
    TEMP_SUFFIX,
    data_files,
    io_error,
    list_partitions,
    parse_partition,
    partition_dir,
    split_by_day,
    split_by_table,
    staging_name,
)
from otelcost.lake.locking import lake_lock
from otelcost.lake.seqs import UNNAMED_WRITER, SeqSet, WriterSeqs, read_file_writer_seqs

__all__ = [
    "ReplayFilter",
    "highest_recorded_seq",
    "read_partition_seqs",
    "read_partition_writer_seqs",
    "recover",
]


def recover(lake_dir: Path) -> list[str]:
    """Repair what a crash mid-write left behind; return a line per action taken.

    Removes temporary files of unfinished writes, finishes a fallback replacement that was
    interrupted between its two renames, and deletes left-over staging directories. The caller
    holds ``lake_lock(lake_dir)`` exclusively (so no write is in progress, in this process or in
    another writer of a shared root: they lock the same ``.lock``). A compaction of another
    process between its two phases holds no lock: its staged merge is deleted here, and that
    compaction then leaves the day as it is (``jobs/compact.py``).
    """
    actions: list[str] = []
    directories = [
        partition_dir(lake_dir, day, table)
        for table in TABLE_NAMES
        for day in list_partitions(lake_dir, table=table)
    ]
    for directory in directories:
        for name in os.listdir(directory):
            if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                (directory / name).unlink(missing_ok=True)
                actions.append(f"removed unfinished file {directory / name}")
    staging = Path(lake_dir) / STAGING_DIR
    if not staging.is_dir():
        return actions
    entries = sorted(os.listdir(staging))
    for name in entries:
        stem, _, rest = name.rpartition(".")
        role, _, token = rest.partition("-")
        staged_day = parse_partition(stem)
        if role == "new" and staged_day is not None:
            live = partition_dir(lake_dir, staged_day)
            if not live.exists() and staging_name(staged_day, "old", token) in entries:
                os.rename(staging / name, live)
                actions.append(f"finished the interrupted replacement of {live}")
    for name in os.listdir(staging):
        shutil.rmtree(staging / name, ignore_errors=True)
        actions.append(f"removed staging directory {staging / name}")
    return actions


def read_partition_writer_seqs(lake_dir: Path, day: date, table: str = TABLE_NAME) -> WriterSeqs:
    """The spool seqs of every writer recorded in the footers of one day's files (of
    ``llm_calls`` by default): what a rewrite of the day must keep.

    Reads one footer per file; a footer that cannot be read raises LakeError, because guessing
    either way could duplicate or drop replayed rows. The caller holds ``lake_lock`` (shared is
    enough) so that the day is not half-swapped meanwhile.
    """
    seqs = [WriterSeqs()]
    for path in data_files(partition_dir(lake_dir, day, table)):
        try:
            seqs.append(read_file_writer_seqs(path))
        except (OSError, pa.ArrowException, ValueError) as exc:
            raise io_error(f"read the footer of {path}", exc) from exc
    return seqs[0].union(*seqs[1:])


def read_partition_seqs(
    lake_dir: Path, day: date, table: str = TABLE_NAME, *, writer: str = UNNAMED_WRITER
) -> SeqSet:
    """The seqs of ``writer``'s spool recorded in one day's footers (:func:`read_partition_writer_seqs`)."""
    return read_partition_writer_seqs(lake_dir, day, table).of(writer)


def highest_recorded_seq(lake_dir: Path, *, writer: str = UNNAMED_WRITER) -> int:
    """The highest seq of ``writer``'s spool any file of the lake names in its footer (0 for none).

    One footer read per file (with background compaction, a few files per day), under the
    lake lock taken shared. Other writers' seqs number other spools and do not count.
    """
    highest = 0
    with lake_lock(lake_dir, shared=True):
        for table in TABLE_NAMES:
            for day in list_partitions(lake_dir, table=table):
                highest = max(highest, read_partition_seqs(lake_dir, day, table, writer=writer).max or 0)
    return highest


class ReplayFilter:
    """Which rows of each replayed spool record the lake does not hold yet.

    ``writer`` is the writer id of the spool being replayed (``writers.py``): only its seqs
    count, since another writer of a shared root numbers its own spool from 1 as well.

    Each day's footers are read once, at the first record with rows on that day, under the
    shared lake lock (an operator's ``lake compact`` or ``reprice`` swapping the day must not
    show the listing half-swapped). Files published after that read hold only records replayed
    since, so the answer stays right as long as each record is asked about once, which the
    replay does. (Another writer's files published meanwhile name only its own seqs.)
    """

    def __init__(self, lake_dir: Path, *, writer: str = UNNAMED_WRITER) -> None:
        self.lake_dir = lake_dir
        self.writer = writer
        self._held: dict[tuple[str, date], SeqSet] = {}

    def unrecorded(self, batch: pa.Table, *, seq: int) -> pa.Table:
        """The rows of spool record ``seq`` (``batch``) in the (table, day) parts whose files do
        not name it: calls are looked up in ``llm_calls``, folded rows in ``duplicate_spans``."""
        fresh = []
        for table, rows in split_by_table(batch):
            for day, part in split_by_day(rows):
                held = self._held.get((table, day))
                if held is None:
                    held = self._held[table, day] = self._read(table, day)
                if seq not in held:
                    fresh.append(part)
        if not fresh:
            return batch.slice(0, 0)
        return fresh[0] if len(fresh) == 1 else pa.concat_tables(fresh)

    def _read(self, table: str, day: date) -> SeqSet:
        """This writer's seqs in one partition's footers (read once per partition)."""
        with lake_lock(self.lake_dir, shared=True):
            return read_partition_seqs(self.lake_dir, day, table, writer=self.writer)
