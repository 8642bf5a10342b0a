"""SQL over the lake: a DuckDB connection with the ``llm_calls`` view, and a guarded query runner.

Two more views have the same columns: ``duplicate_spans``, the spans folded into another call,
and ``attribution_changes``, before/after rows of attribution that changed after a call was
stored (both written by ``otelcost/settle``, docs/schema.md). ``llm_calls`` shows every call with
its latest attribution: the stored row, its dimensions replaced by its latest *after* row when
there is one (a LEFT JOIN that exists only once a change does). ``audit_log`` is the audit
table (``audit.py``: who changed which budget, override, period or price, when, from what to
what), with its own columns.

The view is plain DuckDB over the Parquet files, the same thing an analyst types with nothing of
ours installed::

    SELECT * FROM read_parquet('<lake_dir>/llm_calls/*/*.parquet',
        hive_partitioning = true, union_by_name = true, hive_types = {'date': DATE})

On S3 (``lake.root: s3://...``) each table reads an Arrow dataset of its live files instead
(``s3.py``: the DuckDB here has no ``httpfs`` offline), registered on the connection.

``union_by_name`` matches columns by name, so files written before a column was added read it
as NULL. The view adds two things on top: it is unioned with a typed, zero-row select built from
``RECORD_SCHEMA``, so every column of the contract exists with its type even when the lake is
empty or only has older files; and its columns come in schema order, ``date`` after them.

Safety, for SQL typed by people (``otelcost sql``):

* File access is limited to the lake directory (``allowed_directories`` plus
  ``enable_external_access = false``): no reading ``/etc/passwd``, no ``COPY ... TO`` elsewhere,
  no ``ATTACH``, no installing or loading extensions. The configuration is then locked, so SQL
  cannot turn it back on. The view itself needs file access to the lake, which is why access is
  narrowed rather than switched off.
* :func:`run_query` refuses statements that write or reach outside (``COPY``, ``EXPORT``,
  ``ATTACH``, ``DETACH``, ``INSTALL``/``LOAD``, ``VACUUM``, ...): inside the lake directory DuckDB
  would otherwise allow ``COPY ... TO``, and nothing but otelcost may write there. ``CREATE``,
  ``INSERT`` and the like stay allowed: they only touch the throw-away in-memory database.
* A time limit: :func:`run_query` interrupts the query when it runs out of time.

Timestamps are returned in UTC (the session time zone is set to UTC).

**One tenant's lake.** ``tenant=`` (on :func:`connect`, :class:`LakeSession`, :func:`run_query`)
narrows the views to one tenant, for a report asked by a key bound to it (docs/security.md):
``llm_calls``, ``duplicate_spans`` and ``attribution_changes`` keep only the rows whose
``tenant_id`` is that tenant (after attribution changes are applied, so a call moved to another
tenant later leaves this tenant's view), and ``audit_log`` is empty (who changed which budget is
not a tenant's business). The tenant is a quoted literal inside each view's definition, not a
variable: nothing a query sets can widen it. It bounds what SQL reading those views sees;
SQL typed by a tenant could still name the files themselves (``read_parquet``), which is why
the API offers SQL to unbound keys only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa

from otelcost.errors import LakeError
from otelcost.lake.audit import AUDIT_SCHEMA, AUDIT_TABLE_NAME
from otelcost.lake.layout import CHANGES_TABLE_NAME, DUPLICATES_TABLE_NAME, FILE_SUFFIX, TABLE_NAME, table_dir
from otelcost.lake.s3 import S3Lake
from otelcost.schema import ATTRIBUTION_DIMENSIONS, PARTITION_COLUMN, RECORD_SCHEMA

__all__ = [
    "ALLOWED_STATEMENTS",
    "TENANT_COLUMN",
    "VIEW_NAME",
    "LakeSession",
    "connect",
    "duckdb_type",
    "lake_glob",
    "run_query",
]

VIEW_NAME: Final = TABLE_NAME
TENANT_COLUMN: Final = "tenant_id"

ALLOWED_STATEMENTS: Final = frozenset(
    {
        "SELECT",  # also DESCRIBE, SHOW, SUMMARIZE, FROM-first and VALUES
        "EXPLAIN",
        "PRAGMA",
        "CALL",
        "MULTI",  # PIVOT
        "SET",  # SET VARIABLE; settings themselves are locked
        "CREATE",
        "INSERT",
        "UPDATE",
        "DELETE",
        "DROP",
        "ALTER",
        "TRANSACTION",
    }
)
"""Statement types :func:`run_query` runs; anything else (COPY, EXPORT, ATTACH ...) is refused."""

_VANISHED_FILE_RETRIES: Final = 5


def duckdb_type(arrow_type: pa.DataType) -> str:
    """The DuckDB SQL type that reading ``arrow_type`` from Parquet gives."""
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMPTZ" if arrow_type.tz is not None else "TIMESTAMP"
    if pa.types.is_decimal(arrow_type):
        return f"DECIMAL({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_map(arrow_type):
        return f"MAP({duckdb_type(arrow_type.key_type)}, {duckdb_type(arrow_type.item_type)})"
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return f"{duckdb_type(arrow_type.value_type)}[]"
    simple = {
        pa.string(): "VARCHAR",
        pa.large_string(): "VARCHAR",
        pa.int64(): "BIGINT",
        pa.int32(): "INTEGER",
        pa.float64(): "DOUBLE",
        pa.bool_(): "BOOLEAN",
        pa.date32(): "DATE",
    }
    if arrow_type in simple:
        return simple[arrow_type]
    raise TypeError(f"no DuckDB type mapping for Arrow type {arrow_type}")


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lake_glob(lake_dir: Path, table: str = TABLE_NAME) -> str:
    """The glob of every data file: ``<lake_dir>/llm_calls/*/*.parquet`` (absolute)."""
    return f"{table_dir(Path(lake_dir).resolve(), table)}/*/*{FILE_SUFFIX}"


def _typed_empty_select(schema: pa.Schema = RECORD_SCHEMA) -> str:
    columns = [f"CAST(NULL AS {duckdb_type(f.type)}) AS {_identifier(f.name)}" for f in schema]
    columns.append(f"CAST(NULL AS DATE) AS {_identifier(PARTITION_COLUMN)}")
    return "SELECT " + ", ".join(columns) + " WHERE false"


def _has_files(lake_dir: Path, table: str) -> bool:
    root = table_dir(Path(lake_dir).resolve(), table)
    return root.is_dir() and any(root.glob(f"*/*{FILE_SUFFIX}"))


_TABLES: Final = (
    (TABLE_NAME, RECORD_SCHEMA),
    (DUPLICATES_TABLE_NAME, RECORD_SCHEMA),
    (CHANGES_TABLE_NAME, RECORD_SCHEMA),
    (AUDIT_TABLE_NAME, AUDIT_SCHEMA),
)


def _sources(connection: duckdb.DuckDBPyConnection, lake: Path | S3Lake) -> dict[str, str]:
    """What each table with files reads: a ``read_parquet`` of the lake's glob, or on S3 (no
    httpfs in this DuckDB offline) an Arrow dataset of the live files registered by name."""
    sources = {}
    for table, schema in _TABLES:
        if isinstance(lake, S3Lake):
            dataset = lake.dataset(table, schema)
            if dataset is not None:
                connection.register(f"_s3_{table}", dataset)
                sources[table] = _identifier(f"_s3_{table}")
        elif _has_files(lake, table):
            sources[table] = (
                f"read_parquet({_sql_string(lake_glob(lake, table))}, hive_partitioning = true, "
                f"union_by_name = true, hive_types = {{{_sql_string(PARTITION_COLUMN)}: DATE}})"
            )
    return sources


def _table_sql(source: str | None, schema: pa.Schema = RECORD_SCHEMA) -> str:
    """Every row of one table's files, typed by ``schema`` (see the module docstring)."""
    empty = _typed_empty_select(schema)
    if source is None:
        return empty
    # The typed empty select comes first: UNION BY NAME keeps its column order and types, and
    # appends columns that only the files have (written by a newer otelcost) at the end.
    return f"{empty} UNION ALL BY NAME SELECT * FROM {source}"


_SETTLED_COLUMNS: Final = (*ATTRIBUTION_DIMENSIONS, "attribution_status", "missing_dimensions")


def _calls_view_sql(sources: Mapping[str, str]) -> str:
    """``llm_calls``: the calls, each with its latest attribution.

    A call whose attribution changed after it was stored (``attribution_changes``, written by
    ``otelcost/settle``) shows the dimensions of its latest *after* row; the others are their
    stored row as it is. Without any change the view is the files alone.
    """
    calls = _table_sql(sources.get(TABLE_NAME))
    if CHANGES_TABLE_NAME not in sources:
        return f"CREATE VIEW {TABLE_NAME} AS {calls}"
    changes = _table_sql(sources[CHANGES_TABLE_NAME])
    settled = ", ".join(_identifier(name) for name in ("trace_id", "span_id", *_SETTLED_COLUMNS))
    replaced = ", ".join(
        f"CASE WHEN latest.span_id IS NULL THEN stored.{_identifier(name)} "
        f"ELSE latest.{_identifier(name)} END AS {_identifier(name)}"
        for name in _SETTLED_COLUMNS
    )
    return (
        f"CREATE VIEW {TABLE_NAME} AS "
        f"WITH stored AS ({calls}), latest AS ("
        f"SELECT {settled} FROM ({changes}) WHERE attribution_change = 'after' "
        "QUALIFY row_number() OVER (PARTITION BY trace_id, span_id ORDER BY received_at DESC) = 1) "
        f"SELECT stored.* REPLACE ({replaced}) FROM stored "
        "LEFT JOIN latest ON stored.trace_id = latest.trace_id AND stored.span_id = latest.span_id"
    )


def connect(lake_dir: Path | S3Lake, *, tenant: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the ``llm_calls`` view over the lake in ``lake_dir``.

    File access is limited to ``lake_dir`` and the configuration is locked (see the module
    docstring). Whether the lake has files is checked here: a connection opened on an empty lake
    keeps an empty view; open a new one to see files written since (connections are cheap).
    With ``tenant``, the views hold that tenant's rows only (module docstring).
    """
    connection = duckdb.connect(":memory:")
    try:
        _prepare(connection, _resolved(lake_dir), tenant)
    except duckdb.Error as exc:
        connection.close()
        raise LakeError(f"cannot open the lake in {lake_dir}: {exc}") from exc
    return connection


def _tenant_rows(select: str, tenant: str | None) -> str:
    if tenant is None:
        return select
    return f"SELECT * FROM ({select}) WHERE {_identifier(TENANT_COLUMN)} = {_sql_string(tenant)}"


def _resolved(lake: Path | S3Lake) -> Path | S3Lake:
    return lake if isinstance(lake, S3Lake) else Path(lake).resolve()


def _prepare(
    connection: duckdb.DuckDBPyConnection, lake_dir: Path | S3Lake, tenant: str | None = None
) -> None:
    connection.execute("SET enable_progress_bar = false")
    connection.execute("SET TimeZone = 'UTC'")
    sources = _sources(connection, lake_dir)
    calls = _calls_view_sql(sources)
    if tenant is not None:
        prefix = f"CREATE VIEW {TABLE_NAME} AS "
        calls = prefix + _tenant_rows(calls.removeprefix(prefix), tenant)
    connection.execute(calls)
    for table in (DUPLICATES_TABLE_NAME, CHANGES_TABLE_NAME):
        connection.execute(f"CREATE VIEW {table} AS {_tenant_rows(_table_sql(sources.get(table)), tenant)}")
    audit = (
        _typed_empty_select(AUDIT_SCHEMA)
        if tenant is not None
        else _table_sql(sources.get(AUDIT_TABLE_NAME), AUDIT_SCHEMA)
    )
    connection.execute(f"CREATE VIEW {AUDIT_TABLE_NAME} AS {audit}")
    if not isinstance(lake_dir, S3Lake):  # on S3 the views read registered datasets: no file access
        connection.execute(f"SET allowed_directories = [{_sql_string(str(lake_dir) + '/')}]")
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")


def _check_statements(connection: duckdb.DuckDBPyConnection, sql: str) -> None:
    try:
        statements = connection.extract_statements(sql)
    except duckdb.Error as exc:
        raise LakeError(str(exc)) from exc
    if not statements:
        raise LakeError("no SQL statement given")
    for statement in statements:
        kind = statement.type.name
        if kind not in ALLOWED_STATEMENTS:
            raise LakeError(f"{kind} statements are not allowed here: the lake is read-only")


class _Watchdog:
    """Interrupts a connection's running query once ``timeout`` seconds have passed (None: never)."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, timeout: float | None) -> None:
        self._connection = connection
        self._timeout = timeout
        self._done = threading.Event()
        self.fired = False
        self._thread = threading.Thread(target=self._run, name="otelcost-query-timeout", daemon=True)

    def __enter__(self) -> _Watchdog:
        if self._timeout is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        if self._done.wait(self._timeout):
            return
        self.fired = True
        # Repeat: an interrupt that lands between two statements of a script, or just before
        # the query starts, would otherwise be lost.
        while True:
            self._connection.interrupt()
            if self._done.wait(0.05):
                return


def _is_vanished_file(exc: duckdb.Error, lake_dir: Path | S3Lake) -> bool:
    """A file listed by the glob was gone when opened: a partition was replaced meanwhile."""
    message = str(exc)
    if isinstance(lake_dir, S3Lake):  # deleted by compaction after the listing
        return lake_dir.root.bucket in message and ("NoSuchKey" in message or "does not exist" in message)
    return (
        isinstance(exc, duckdb.IOException)
        and str(table_dir(lake_dir)) in message
        and ("No files found" in message or "No such file" in message)
    )


class LakeSession:
    """Several queries over the lake on one connection, each as :func:`run_query` runs it.

    Opening a connection and binding the views costs tens of milliseconds, which a report that
    asks the lake four questions would pay four times. Views are bound when the first query
    runs (files written after that are seen; a lake that had no files then keeps an empty view
    until the session ends). Not for use from two threads at once; close it (or use it as a
    context manager) when done.
    """

    def __init__(
        self, lake_dir: Path | S3Lake, *, timeout: float | None = None, tenant: str | None = None
    ) -> None:
        self._lake_dir = _resolved(lake_dir)
        self._timeout = timeout
        self.tenant = tenant
        """With a tenant, the views hold that tenant's rows only (module docstring)."""
        self._connection: duckdb.DuckDBPyConnection | None = None

    def query(self, sql: str, params: Mapping[str, object] | None = None) -> pa.Table:
        """Run ``sql`` with ``params`` (see :func:`run_query`: the time limit applies per query)."""
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        attempt = 0
        while True:
            attempt += 1
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            fresh = self._connection is None
            connection = self._connection or duckdb.connect(":memory:")
            self._connection = connection
            watchdog = _Watchdog(connection, remaining)
            try:
                with watchdog:
                    if fresh:
                        # binding the view lists and opens the files too
                        _prepare(connection, self._lake_dir, self.tenant)
                    _check_statements(connection, sql)
                    relation = connection.sql(sql, params=dict(params) if params else None)
                    return pa.table({}) if relation is None else relation.to_arrow_table()
            except duckdb.Error as exc:
                # a connection a query was interrupted on, or that tripped over a replaced file,
                # is not reused
                self.close()
                if isinstance(exc, duckdb.InterruptException) and watchdog.fired:
                    raise LakeError(f"query exceeded the {self._timeout:g} s time limit") from exc
                if attempt < _VANISHED_FILE_RETRIES and _is_vanished_file(exc, self._lake_dir):
                    continue
                if params and "Expected 0, got" in str(exc):
                    names = ", ".join(sorted(params))
                    raise LakeError(
                        f"the query has no $parameters, but values were given for: {names}"
                    ) from exc
                raise LakeError(str(exc)) from exc

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> LakeSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def run_query(
    lake_dir: Path | S3Lake,
    sql: str,
    params: Mapping[str, object] | None = None,
    *,
    timeout: float | None = None,
    tenant: str | None = None,
) -> pa.Table:
    """Run ``sql`` (one statement or a script; the last one's rows are returned) over the lake
    (with ``tenant``: that tenant's rows only, module docstring).

    ``params`` binds DuckDB named parameters (``WHERE team = $team``); values are bound as given
    (strings are cast by DuckDB where the SQL needs another type). After ``timeout`` seconds the
    query is interrupted and LakeError("query exceeded the N s time limit") raised. Any DuckDB
    error becomes a LakeError carrying DuckDB's message. A query that trips over a file removed
    by a concurrent partition replacement is run again (a few times) on a fresh connection.
    Several queries in a row: :class:`LakeSession`.
    """
    with LakeSession(lake_dir, timeout=timeout, tenant=tenant) as session:
        return session.query(sql, params)
