"""Compaction of a lake on S3 (``lake.root: s3://...``): the small files of a day merged into one.

S3 cannot swap a partition (no rename), so the merge is published in three steps, each safe to
be cut short by a crash:

1. the files that an earlier merged file replaces are deleted (left by a compaction killed
   between its upload and its deletes);
2. the day's live files smaller than ``target_file_size`` are read, merged (sorted by ``ts``)
   and uploaded as one object whose footer names them (``otelcost.replaces``) and carries the
   union of their spool seqs, writer by writer (``lake/seqs.py``);
3. the merged files are deleted.

From step 2 on, ``S3Lake.live_files`` leaves the replaced files out, so ``otelcost sql`` and
the replay never count a row twice; a reader that lists keys by itself would, until step 3.
Files flushed meanwhile are not in the list, so they are kept. There is no lock on S3: two
compactions of one day at once would both replace the same files, so **one compactor** runs at
a time, by configuration (``otelcost lake compact`` from one place; background compaction is
refused on S3 for now, docs/durability.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import date

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from otelcost.errors import LakeError
from otelcost.jobs.compact import DEFAULT_MIN_FILES, DEFAULT_TARGET_FILE_SIZE, CompactionResult
from otelcost.lake.layout import TABLE_NAME, conform_stored, new_file_name, sort_by_ts
from otelcost.lake.publish import DEFAULT_COMPRESSION, DEFAULT_ROW_GROUP_SIZE
from otelcost.lake.s3 import REPLACES_KEY, S3Lake
from otelcost.lake.seqs import WriterSeqs, with_seqs

__all__ = ["compact_s3_lake", "compact_s3_partition"]


def _sizes(lake: S3Lake, paths: list[str]) -> dict[str, int]:
    try:
        return {info.path: info.size or 0 for info in lake.fs.get_file_info(paths)}
    except OSError as exc:
        raise LakeError(f"cannot read the sizes of {lake.root.url} objects: {exc}") from exc


def compact_s3_partition(
    lake: S3Lake,
    day: date,
    *,
    target_file_size: int = DEFAULT_TARGET_FILE_SIZE,
    min_files: int = DEFAULT_MIN_FILES,
    compression: str = DEFAULT_COMPRESSION,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    dry_run: bool = False,
    after_upload: Callable[[str], None] | None = None,
) -> CompactionResult:
    """Merge ``day``'s live files smaller than ``target_file_size`` into one (module docstring).

    ``after_upload(path)`` is called between the upload and the deletes (tests stop there, as a
    crash would). Raises LakeError on S3 errors; the day then reads as before or as after.
    """
    started = time.perf_counter()
    live, replaced = lake.live_files(TABLE_NAME, day)
    if replaced and not dry_run:
        lake.delete(replaced)
    sizes = _sizes(lake, live)
    small = [path for path in live if sizes[path] < target_file_size]
    if len(small) < max(min_files, 2):
        small = []
    rows = sum(pq.read_metadata(path, filesystem=lake.fs).num_rows for path in live) if live else 0
    before = sum(sizes.values())

    def result(files_after: int, bytes_after: int | None, rewritten: bool) -> CompactionResult:
        return CompactionResult(
            day=day,
            files_before=len(live),
            files_after=files_after,
            merged_files=len(small),
            rows=rows,
            bytes_before=before,
            bytes_after=bytes_after,
            seconds=time.perf_counter() - started,
            rewritten=rewritten,
        )

    if not small:
        return result(len(live), before, False)
    files_after = len(live) - len(small) + 1
    if dry_run:
        return result(files_after, None, False)
    tables, seqs = [], [WriterSeqs()]
    for path in small:
        try:
            tables.append(
                conform_stored(pq.read_table(path, filesystem=lake.fs, partitioning=None), source=path)
            )
            seqs.append(WriterSeqs.from_metadata(lake.footer(path)))
        except (OSError, pa.ArrowException, ValueError) as exc:
            raise LakeError(f"cannot read s3://{path}: {exc}") from exc
    merged = with_seqs(sort_by_ts(pa.concat_tables(tables)), seqs[0].union(*seqs[1:]))
    names = [path.rsplit("/", 1)[1] for path in small]
    merged = merged.replace_schema_metadata(
        {**(merged.schema.metadata or {}), REPLACES_KEY: json.dumps(names).encode()}
    )
    target = f"{lake.partition_path(TABLE_NAME, day)}/{new_file_name()}"
    try:
        lake.upload(target, merged, compression=compression, row_group_size=row_group_size)
    except (OSError, pa.ArrowException) as exc:
        raise LakeError(f"cannot upload s3://{target}: {exc}") from exc
    if after_upload is not None:
        after_upload(target)
    try:
        lake.delete(small)
    except OSError as exc:  # the day reads right (footers); the next run deletes them
        raise LakeError(f"merged into s3://{target} but cannot delete the merged files: {exc}") from exc
    info = lake.fs.get_file_info(target)
    kept = sum(sizes[path] for path in live if path not in small)
    return result(files_after, kept + (info.size or 0) if info.type == pafs.FileType.File else None, True)


def compact_s3_lake(
    lake: S3Lake,
    since: date | None = None,
    until: date | None = None,
    *,
    target_file_size: int = DEFAULT_TARGET_FILE_SIZE,
    min_files: int = DEFAULT_MIN_FILES,
    compression: str = DEFAULT_COMPRESSION,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    dry_run: bool = False,
) -> list[CompactionResult]:
    """:func:`compact_s3_partition` over the days from ``since`` to ``until`` (exclusive)."""
    return [
        compact_s3_partition(
            lake,
            day,
            target_file_size=target_file_size,
            min_files=min_files,
            compression=compression,
            row_group_size=row_group_size,
            dry_run=dry_run,
        )
        for day in lake.list_partitions(TABLE_NAME)
        if (since is None or day >= since) and (until is None or day < until)
    ]
