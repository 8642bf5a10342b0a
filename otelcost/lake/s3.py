"""The lake on S3 (``lake.root: s3://bucket/prefix``), through pyarrow's S3 file system.

The layout is the directory layout in object keys (``<prefix>/llm_calls/date=YYYY-MM-DD/
part-<UTC time>-<12 hex>.parquet``), and the footers are the same (``seqs.py``). What differs:

**Publishing.** A file is serialized in memory and uploaded as one object: S3 makes an object
visible only once its upload has completed, so a reader never sees a partial file (no ``.tmp``
names, no rename). A flush is all or nothing as on disk: the objects already uploaded are deleted
again when a later one fails. An upload cut off by a crash stays invisible (set a bucket lifecycle
rule that aborts incomplete multipart uploads, or they are billed).

**The listing, corrected by the footers, decides what is published.** S3 has no rename, so a
rewrite cannot swap a partition. Compaction (``otelcost/jobs/compact_s3.py``) uploads the merged
file with the names of the files it replaces in its footer (``otelcost.replaces``) and deletes
them afterwards; :meth:`S3Lake.live_files` leaves out every file a listed file replaces, so our
readers (``otelcost sql``, the replay) never count a row twice, even between the upload and the
deletes or after a crash between them. Plain DuckDB or Athena over the keys would, for those
seconds: they should read through ``otelcost sql``.

**No lock.** ``flock`` does not exist on S3. A flush adds new keys only, and compaction replaces
only files it listed, so they need no lock between them; two rewrites of one partition at once
would each replace the same files, so on S3 there is one compactor by configuration: ``otelcost
lake compact`` and ``otelcost lake retention`` (``jobs/retention_s3.py``) run from one place at
a time (background compaction and reprice refuse an s3:// root for now).

Endpoint, region and credentials come from the usual environment: ``AWS_ENDPOINT_URL``
(``AWS_ENDPOINT_URL_S3``), ``AWS_REGION`` (``AWS_DEFAULT_REGION``), ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` (``AWS_SESSION_TOKEN``), or the default AWS credential chain.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Final

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from otelcost.errors import LakeError
from otelcost.lake.layout import (
    FILE_SUFFIX,
    conform,
    conform_stored,
    new_file_name,
    parse_partition,
    split_by_day,
    split_by_table,
)
from otelcost.lake.location import S3Root, is_s3_url
from otelcost.lake.publish import PartialWriteError
from otelcost.lake.recovery import ReplayFilter
from otelcost.lake.seqs import UNNAMED_WRITER, SeqSet, WriterSeqs, with_seqs
from otelcost.schema import PARTITION_COLUMN, RECORD_SCHEMA

__all__ = ["REPLACES_KEY", "S3Lake", "S3ReplayFilter", "open_s3_lake", "s3_filesystem"]

REPLACES_KEY: Final = b"otelcost.replaces"
"""A merged file's footer: the JSON list of the names of the files of its partition it replaces."""


def s3_filesystem(environ: Mapping[str, str] | None = None) -> pafs.S3FileSystem:
    """pyarrow's S3 file system, configured from the AWS environment variables."""
    env = os.environ if environ is None else environ
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    options: dict[str, object] = {}
    if endpoint:
        scheme, _, rest = endpoint.partition("://")
        options["endpoint_override"] = rest.rstrip("/") if rest else endpoint
        options["scheme"] = scheme if rest else "https"
    if region:
        options["region"] = region
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        options["access_key"] = env["AWS_ACCESS_KEY_ID"]
        options["secret_key"] = env["AWS_SECRET_ACCESS_KEY"]
        if env.get("AWS_SESSION_TOKEN"):
            options["session_token"] = env["AWS_SESSION_TOKEN"]
    return pafs.S3FileSystem(**options)


def open_s3_lake(root: str | None, environ: Mapping[str, str] | None = None) -> S3Lake | None:
    """The S3Lake of ``lake.root`` when it is an s3:// URL, else None (a directory)."""
    if root is None or not is_s3_url(root):
        return None
    return S3Lake(S3Root.parse(root), s3_filesystem(environ))


def _io_error(action: str, exc: BaseException) -> LakeError:
    return LakeError(f"cannot {action}: {exc}")


class S3Lake:
    """One lake under an S3 root: listing, publishing, footers, reading."""

    def __init__(self, root: S3Root, filesystem: pafs.FileSystem | None = None) -> None:
        self.root = root
        self.fs = filesystem if filesystem is not None else s3_filesystem()

    def __str__(self) -> str:
        return self.root.url

    # -- listing --------------------------------------------------------------------------

    def partition_path(self, table: str, day: date) -> str:
        return self.root.path(table, f"{PARTITION_COLUMN}={day.isoformat()}")

    def list_partitions(self, table: str) -> list[date]:
        """The days of ``table`` that hold at least one data file, oldest first. (pyarrow keeps
        an empty marker for a "directory" whose last object it deleted: such a day is gone.)"""
        selector = pafs.FileSelector(self.root.path(table), allow_not_found=True, recursive=True)
        try:
            infos = self.fs.get_file_info(selector)
        except OSError as exc:
            raise _io_error(f"list {self.root.path(table)}", exc) from exc
        days = {
            parse_partition(PurePosixPath(info.path).parent.name)
            for info in infos
            if info.type == pafs.FileType.File and info.base_name.endswith(FILE_SUFFIX)
        }
        return sorted(day for day in days if day is not None)

    def data_files(self, table: str, day: date) -> list[str]:
        """Every ``*.parquet`` object of a partition, in name (= write time) order."""
        selector = pafs.FileSelector(self.partition_path(table, day), allow_not_found=True)
        try:
            infos = self.fs.get_file_info(selector)
        except OSError as exc:
            raise _io_error(f"list {self.partition_path(table, day)}", exc) from exc
        return sorted(
            info.path
            for info in infos
            if info.type == pafs.FileType.File and info.base_name.endswith(FILE_SUFFIX)
        )

    def footer(self, path: str) -> Mapping[bytes, bytes]:
        try:
            with self.fs.open_input_file(path) as source:
                return pq.read_metadata(source).metadata or {}
        except (OSError, pa.ArrowException) as exc:
            raise _io_error(f"read the footer of s3://{path}", exc) from exc

    def live_files(self, table: str, day: date) -> tuple[list[str], list[str]]:
        """The published files of a partition, and the ones a merged file replaces (still
        listed until compaction's deletes, never to be read)."""
        files = self.data_files(table, day)
        replaced: set[str] = set()
        for path in files:
            names = self.footer(path).get(REPLACES_KEY)
            if names:
                parent = path.rsplit("/", 1)[0]
                replaced.update(f"{parent}/{name}" for name in json.loads(names))
        return [path for path in files if path not in replaced], sorted(replaced & set(files))

    # -- footers --------------------------------------------------------------------------

    def partition_writer_seqs(self, table: str, day: date) -> WriterSeqs:
        """Every writer's seqs in one partition (replaced files included: a merged file holds
        their seqs too, so the union is the same either way)."""
        seqs = [WriterSeqs()]
        for path in self.data_files(table, day):
            try:
                seqs.append(WriterSeqs.from_metadata(self.footer(path)))
            except ValueError as exc:
                raise _io_error(f"read the footer of s3://{path}", exc) from exc
        return seqs[0].union(*seqs[1:])

    def highest_recorded_seq(self, tables: tuple[str, ...], *, writer: str = UNNAMED_WRITER) -> int:
        highest = 0
        for table in tables:
            for day in self.list_partitions(table):
                highest = max(highest, self.partition_writer_seqs(table, day).of(writer).max or 0)
        return highest

    # -- publishing -----------------------------------------------------------------------

    def write_files(
        self,
        table: pa.Table,
        *,
        compression: str,
        row_group_size: int,
        spool_seqs: Mapping[date, SeqSet] | None = None,
        writer: str = UNNAMED_WRITER,
    ) -> list[str]:
        """``publish.write_files`` on S3: one object per table and UTC day, all or nothing."""
        table = conform(table)
        published: list[str] = []
        try:
            for name, rows in split_by_table(table):
                for day, part in split_by_day(rows):
                    seqs = spool_seqs.get(day) if spool_seqs else None
                    content = with_seqs(part, WriterSeqs.single(writer, seqs)) if seqs else part
                    path = f"{self.partition_path(name, day)}/{new_file_name()}"
                    self.upload(path, content, compression=compression, row_group_size=row_group_size)
                    published.append(path)
        except (OSError, pa.ArrowException) as exc:
            kept = []
            for path in published:
                try:
                    self.delete([path])
                except OSError:
                    kept.append(path)
            if kept:
                parts = {(p.split("/")[-3], date.fromisoformat(p.split("/")[-2].split("=")[1])) for p in kept}
                raise PartialWriteError(
                    f"cannot publish Parquet files under {self.root.url} ({exc}) nor delete "
                    f"{len(kept)} uploaded object(s)",
                    published=[Path(path) for path in kept],
                    published_parts=parts,
                ) from exc
            raise _io_error(f"write Parquet files under {self.root.url}", exc) from exc
        return published

    def upload(self, path: str, table: pa.Table, *, compression: str, row_group_size: int) -> None:
        """Serialize in memory, then upload as one object: visible whole or not at all."""
        buffer = pa.BufferOutputStream()
        codec = None if compression == "none" else compression
        pq.write_table(table, buffer, compression=codec, row_group_size=row_group_size, write_statistics=True)
        with self.fs.open_output_stream(path) as out:
            out.write(buffer.getvalue())

    def delete(self, paths: list[str]) -> None:
        """Delete objects (gone already is fine); OSError when S3 refuses."""
        for path in paths:
            try:
                self.fs.delete_file(path)
            except FileNotFoundError:
                continue

    # -- reading --------------------------------------------------------------------------

    def read_partition(self, table: str, day: date) -> pa.Table:
        tables = []
        for path in self.live_files(table, day)[0]:
            try:
                raw = pq.read_table(path, filesystem=self.fs, partitioning=None)
            except (OSError, pa.ArrowException) as exc:
                raise _io_error(f"read s3://{path}", exc) from exc
            tables.append(conform_stored(raw, source=f"s3://{path}"))
        return pa.concat_tables(tables) if tables else RECORD_SCHEMA.empty_table()

    def dataset(self, table: str, schema: pa.Schema = RECORD_SCHEMA) -> ds.Dataset | None:
        """The live files of every day of ``table`` as one Arrow dataset (``date`` from the
        key), None when there are none. Columns missing from older files read as NULL."""
        paths = [path for day in self.list_partitions(table) for path in self.live_files(table, day)[0]]
        if not paths:
            return None
        full = schema.append(pa.field(PARTITION_COLUMN, pa.date32()))
        partitioning = ds.partitioning(pa.schema([full.field(PARTITION_COLUMN)]), flavor="hive")
        return ds.dataset(
            paths,
            schema=full,
            format="parquet",
            filesystem=self.fs,
            partitioning=partitioning,
            partition_base_dir=self.root.path(table),
        )


class S3ReplayFilter(ReplayFilter):
    """``recovery.ReplayFilter`` on S3: which rows of a replayed record the lake lacks, from
    ``writer``'s seqs in the footers (each touched partition read once)."""

    def __init__(self, lake: S3Lake, *, writer: str = UNNAMED_WRITER) -> None:  # no local directory
        self.lake = lake
        self.writer = writer
        self._held: dict[tuple[str, date], SeqSet] = {}

    def _read(self, table: str, day: date) -> SeqSet:
        return self.lake.partition_writer_seqs(table, day).of(self.writer)
