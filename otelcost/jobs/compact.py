"""Compaction: merge a day's small files into one, atomically for readers.

The live writer publishes one file per UTC day per flush (every 2 s by default), so a busy day
collects tens of thousands of small files, and a query that opens them all is an order of
magnitude slower than one over a file per day (docs/benchmarks.md). Compaction merges the files
of a day smaller than ``target_file_size`` into one file sorted by ``ts``, once there are at
least ``min_files`` of them; larger files are left as they are.

A partition is compacted in two phases, so that live flushes never wait for a merge:

1. under the *shared* lake lock (flushes go on; a reprice or another compaction's swap waits),
   the small files are read, merged and written to a directory in ``.staging/``;
2. under the *exclusive* lock, held only for links and renames, the day is listed again: if a
   file that was merged is gone (the day was rewritten between the phases), nothing is done;
   otherwise hard links to every other file of the day (the large ones and those flushed during
   phase 1) plus the merged file are swapped in by ``lake.swap.swap_partition``: a reader sees
   the old set of files or the new set, never both, never neither.

The merged file's footer carries the union of the spool seqs of the files it replaces, each
writer's under its own id (the files of every writer of a shared ``lake.root`` are merged
together), and the kept files keep theirs (same inodes), so ``read_partition_writer_seqs`` is
unchanged and the spool replay of any writer still skips its records already in the lake
(``lake/recovery.py``). Rows are only reordered.

Several processes may compact one shared root at once (each ``serve`` runs a :class:`Compactor`):
both may merge a day in phase 1, the first swap wins, and the second finds its merged files gone
in phase 2 and leaves the day alone. The wasted merge is why one writer with compaction enabled
is enough (docs/durability.md).

:class:`Compactor` runs :func:`compact_lake` on a background thread of ``otelcost serve``, and
``lake.retention`` (``retention.py``) on the same schedule.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from otelcost.errors import LakeError
from otelcost.jobs.retention import apply_retention
from otelcost.lake.config import CompactionConfig
from otelcost.lake.layout import (
    conform_stored,
    data_files,
    io_error,
    list_partitions,
    new_file_name,
    partition_dir,
    sort_by_ts,
)
from otelcost.lake.locking import lake_lock
from otelcost.lake.publish import DEFAULT_COMPRESSION, DEFAULT_ROW_GROUP_SIZE, write_parquet
from otelcost.lake.seqs import WriterSeqs, read_file_writer_seqs, with_seqs
from otelcost.lake.swap import stage_directory, swap_partition
from otelcost.schema import RECORD_SCHEMA

__all__ = ["CompactionResult", "Compactor", "compact_lake", "compact_partition"]

log = logging.getLogger(__name__)

DEFAULT_TARGET_FILE_SIZE = 256 * 2**20
DEFAULT_MIN_FILES = 32


@dataclass(frozen=True, slots=True)
class CompactionResult:
    """What compacting one day did (or, on a dry run, would do).

    ``merged_files`` is 0 when the day had nothing to do; ``bytes_after`` is None on a dry run
    (the merged size is only known once written). ``abandoned``: the server was stopping and
    the day was left as it was.
    """

    day: date
    files_before: int
    files_after: int
    merged_files: int
    rows: int
    bytes_before: int
    bytes_after: int | None
    seconds: float
    rewritten: bool
    abandoned: bool = False


class _Abandoned(Exception):  # noqa: N818 - a signal, not an error
    """Raised inside a compaction when ``cancel`` is set; the partition is left untouched."""


@dataclass(frozen=True, slots=True)
class _Plan:
    files: list[tuple[Path, int]]  # every published file and its size, name order
    small: list[Path]  # the files to merge (empty: nothing to do)

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self.files)


def _plan(lake_dir: Path, day: date, *, target_file_size: int, min_files: int) -> _Plan:
    files = []
    for path in data_files(partition_dir(lake_dir, day)):
        try:
            files.append((path, path.stat().st_size))
        except FileNotFoundError:
            continue  # swapped away by a rewrite since the listing (only without the lock)
    small = [path for path, size in files if size < target_file_size]
    # Merging one file into one would rewrite it for nothing.
    return _Plan(files, small if len(small) >= max(min_files, 2) else [])


def _rows(paths: list[Path]) -> int:
    if not paths:
        return 0
    try:
        return sum(pq.read_metadata(path).num_rows for path in paths)
    except (OSError, pa.ArrowException) as exc:
        raise io_error(f"read the footers under {paths[0].parent}", exc) from exc


def compact_partition(
    lake_dir: Path,
    day: date,
    *,
    target_file_size: int = DEFAULT_TARGET_FILE_SIZE,
    min_files: int = DEFAULT_MIN_FILES,
    compression: str = DEFAULT_COMPRESSION,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    dry_run: bool = False,
    lock_timeout: float | None = None,
    cancel: threading.Event | None = None,
) -> CompactionResult:
    """Merge ``day``'s files smaller than ``target_file_size`` into one, if there are at least
    ``min_files`` of them; leave the larger files alone. A day with nothing to do is not touched.

    Reads and merges under the shared lake lock, swaps under the exclusive one (module
    docstring); each wait is bounded by ``lock_timeout`` seconds (then LakeError). A day
    rewritten between the two phases is left as it is (``rewritten`` False). A dry run takes no
    lock and writes nothing. When ``cancel`` is set during the merge (the server is stopping),
    the staged file is removed and the result says ``abandoned``: the day keeps its old files.
    Raises LakeError on I/O errors, with the day holding its old files (or its new ones, if only
    the clean-up failed).
    """
    started = time.perf_counter()

    def result(plan: _Plan, *, files_after: int, bytes_after: int | None, **flags: bool) -> CompactionResult:
        # Rows from the footers, counted before any swap (the merged files are gone after it).
        return CompactionResult(
            day=day,
            files_before=len(plan.files),
            files_after=files_after,
            merged_files=len(plan.small),
            rows=rows,
            bytes_before=plan.bytes,
            bytes_after=bytes_after,
            seconds=time.perf_counter() - started,
            **flags,
        )

    if dry_run:
        plan = _plan(lake_dir, day, target_file_size=target_file_size, min_files=min_files)
        rows = _rows([path for path, _ in plan.files])
        files_after = len(plan.files) - len(plan.small) + (1 if plan.small else 0)
        return result(plan, files_after=files_after, bytes_after=None, rewritten=False)

    def checkpoint() -> None:
        if cancel is not None and cancel.is_set():
            raise _Abandoned

    # Phase 1, under the shared lock: flushes go on, a rewrite of the day (reprice, another
    # compaction's swap) waits. The expensive part, reading and merging, happens here.
    with lake_lock(lake_dir, shared=True, timeout=lock_timeout):
        plan = _plan(lake_dir, day, target_file_size=target_file_size, min_files=min_files)
        rows = _rows([path for path, _ in plan.files])
        if not plan.small:
            return result(plan, files_after=len(plan.files), bytes_after=plan.bytes, rewritten=False)
        staged = stage_directory(lake_dir, day, "merge")
        merged_name = new_file_name()
        try:
            _merge(plan.small, staged / merged_name, compression, row_group_size, checkpoint)
        except BaseException as exc:
            shutil.rmtree(staged, ignore_errors=True)
            if isinstance(exc, _Abandoned):
                return result(
                    plan, files_after=len(plan.files), bytes_after=plan.bytes, rewritten=False, abandoned=True
                )
            raise
    # Phase 2, under the exclusive lock: links and renames only, so flushes wait milliseconds.
    try:
        with lake_lock(lake_dir, timeout=lock_timeout):
            live_files = data_files(partition_dir(lake_dir, day))
            merged_away = {path.name for path in plan.small}
            if not merged_away <= {path.name for path in live_files}:
                # The day was rewritten between the phases (a reprice, another compaction):
                # the merged file describes files that are gone. Leave the day as it is now.
                return result(plan, files_after=len(live_files), bytes_after=None, rewritten=False)
            if not (staged / merged_name).exists():
                # Another writer of a shared root started between the phases, and its recover()
                # removed what was staged. Next round.
                log.info("the merge of %s was removed from .staging by another writer's start", day)
                return result(plan, files_after=len(live_files), bytes_after=None, rewritten=False)
            # Files flushed during phase 1 are kept, like the large ones.
            kept = [path for path in live_files if path.name not in merged_away]

            def build(directory: Path) -> None:
                for path in kept:
                    os.link(path, directory / path.name)  # same inode, same footer, same seqs
                os.link(staged / merged_name, directory / merged_name)

            swap_partition(lake_dir, day, build, action="compact")
            bytes_after = sum(path.stat().st_size for path in data_files(partition_dir(lake_dir, day)))
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return result(plan, files_after=len(kept) + 1, bytes_after=bytes_after, rewritten=True)


def _merge(
    paths: list[Path],
    target: Path,
    compression: str,
    row_group_size: int,
    checkpoint: Callable[[], None],
) -> None:
    """Write the rows of ``paths``, sorted by ``ts``, to ``target`` (fsynced), with the union
    of their spool seqs in its footer, each writer's under its id (files of several writers of a
    shared root are merged together)."""
    tables, seqs = [], [WriterSeqs()]
    for path in paths:
        checkpoint()
        try:
            tables.append(conform_stored(pq.read_table(path, partitioning=None), source=str(path)))
            seqs.append(read_file_writer_seqs(path))
        except (OSError, pa.ArrowException, ValueError) as exc:
            raise io_error(f"read {path}", exc) from exc
    merged = sort_by_ts(pa.concat_tables(tables) if tables else RECORD_SCHEMA.empty_table())
    try:
        write_parquet(
            target,
            with_seqs(merged, seqs[0].union(*seqs[1:])),
            compression=compression,
            row_group_size=row_group_size,
            checkpoint=checkpoint,
        )  # fsynced; the swap fsyncs the directory that links it
    except (OSError, pa.ArrowException) as exc:
        raise io_error(f"write {target}", exc) from exc
    checkpoint()  # the last moment to give up: after this, the swap


def compact_lake(
    lake_dir: Path,
    since: date | None = None,
    until: date | None = None,
    *,
    target_file_size: int = DEFAULT_TARGET_FILE_SIZE,
    min_files: int = DEFAULT_MIN_FILES,
    compression: str = DEFAULT_COMPRESSION,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    dry_run: bool = False,
    lock_timeout: float | None = None,
    cancel: threading.Event | None = None,
    on_partition: Callable[[CompactionResult], None] | None = None,
) -> list[CompactionResult]:
    """:func:`compact_partition` over the days from ``since`` (inclusive) to ``until``
    (exclusive), oldest first; one result per day. Stops after the day in progress when
    ``cancel`` is set.
    """
    results = []
    for day in list_partitions(lake_dir, since, until):
        if cancel is not None and cancel.is_set():
            break
        result = compact_partition(
            lake_dir,
            day,
            target_file_size=target_file_size,
            min_files=min_files,
            compression=compression,
            row_group_size=row_group_size,
            dry_run=dry_run,
            lock_timeout=lock_timeout,
            cancel=cancel,
        )
        results.append(result)
        if on_partition is not None:
            on_partition(result)
    return results


class Compactor:
    """Background compaction for ``otelcost serve``: every ``config.interval``, each day with at
    least ``config.min_files`` small files (today's included) is compacted.

    A day with nothing to do costs a directory listing and a ``stat`` per file, without the
    lock. ``stop()`` sets a flag that the compaction in progress checks between files and
    between row groups: it is abandoned (the day keeps its old files) rather than holding up
    the SIGTERM drain, which needs the lake lock for its final flush. The counters are plain
    attributes read by ``otelcost/metrics.py``.
    """

    def __init__(
        self,
        *,
        lake_dir: Path,
        config: CompactionConfig,
        compression: str = DEFAULT_COMPRESSION,
        row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
        lock_timeout: float = 5.0,
        retention: timedelta | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.lake_dir = lake_dir
        self.config = config
        # lake.retention rides on this thread's schedule: one timer, and the exclusive lock it
        # needs is never contended by a compaction of this process.
        self.retention = retention
        self._clock = clock
        self.partitions_dropped = 0
        self._compression = compression
        self._row_group_size = row_group_size
        # Bounded so that a long reprice holding the lock delays a day's compaction to the
        # next round instead of blocking stop().
        self._lock_timeout = lock_timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0
        self.compactions = 0
        self.files_merged = 0
        self.seconds = 0.0
        self.errors = 0
        self.abandoned = 0

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="otelcost-lake-compactor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Abandon the compaction in progress, if any, and wait for the thread (at most
        ``timeout`` seconds: it is a daemon thread and an unfinished compaction is harmless,
        as ``recover()`` removes its staging directory at the next start)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("lake compaction did not stop within %gs; leaving it behind", timeout)

    def run_once(self) -> list[CompactionResult]:
        """One pass over every partition; the counters are updated as days are done."""
        self.runs += 1
        results = []
        for day in list_partitions(self.lake_dir):
            if self._stop.is_set():
                break
            # Any failure is this day's alone: log it and go on to the next day.
            try:
                due = _plan(
                    self.lake_dir,
                    day,
                    target_file_size=self.config.target_file_size,
                    min_files=self.config.min_files,
                )
                if not due.small:
                    continue
                result = compact_partition(
                    self.lake_dir,
                    day,
                    target_file_size=self.config.target_file_size,
                    min_files=self.config.min_files,
                    compression=self._compression,
                    row_group_size=self._row_group_size,
                    lock_timeout=self._lock_timeout,
                    cancel=self._stop,
                )
            except LakeError as exc:
                self.errors += 1
                log.warning("lake compaction of %s failed (will retry): %s", day, exc)
                continue
            except Exception:
                self.errors += 1
                log.exception("lake compaction of %s failed (will retry)", day)
                continue
            results.append(result)
            self.seconds += result.seconds
            if result.abandoned:
                self.abandoned += 1
            elif result.rewritten:
                self.compactions += 1
                self.files_merged += result.merged_files
                log.info(
                    "compacted %s: %d files -> %d in %.1fs",
                    day,
                    result.files_before,
                    result.files_after,
                    result.seconds,
                )
        return results

    def run_retention(self) -> int:
        """Drop the partitions past ``retention`` (``otelcost/jobs/retention.py``); the count."""
        if self.retention is None:
            return 0
        plan = apply_retention(self.lake_dir, self.retention, self._clock(), lock_timeout=self._lock_timeout)
        self.partitions_dropped += len(plan.drops)
        return len(plan.drops)

    def _run(self) -> None:
        while not self._stop.wait(self.config.interval.total_seconds()):
            try:
                self.run_retention()  # first: no point compacting a day about to be dropped
            except LakeError as exc:
                self.errors += 1
                log.warning("lake retention failed (will retry): %s", exc)
            except Exception:
                self.errors += 1
                log.exception("lake retention failed")
            if not self.config.enabled:
                continue  # started for retention alone
            try:
                self.run_once()
            except Exception:  # the thread must survive a bug in one pass; the next one retries
                self.errors += 1
                log.exception("lake compaction failed")
