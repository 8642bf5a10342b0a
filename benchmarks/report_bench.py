"""Every registered report over a 10-million-row, 30-day, compacted lake: time and peak memory.

Run::

    nice -n 10 python -m benchmarks.report_bench                  # 10M rows (builds the lake once)
    python -m benchmarks.report_bench --rows 1000000 --repeat 3   # quicker

**The lake** is written the way ``benchmarks.query_bench`` writes its own (its ``write_lake``
and ``compact``: the pipeline's ``LakeWriter``, a flush every few thousand rows, then
``otelcost.jobs.compact.compact_lake`` with the default settings, so one file per day), from
batches that give every report something to read: ``--rows`` calls over the ``--days`` days
before ``--end`` (default: 30 days, November 2026), 20 teams in 5 cost centers, 40 features, 200
tenants (10% of runs have none), 1,000 users, 50,000 sessions, 12 workflows (agents; 40% of runs
have none), 3 environments, 8 services, 5 models. Calls come in traces (agent runs) of 1-8 calls
(4.5 on average) that share their user, session, tenant, team, feature and workflow; the calls
of one trace are interleaved with other traces' (within 64 calls: 16 s at 10M rows). 3% of runs
have no team (``attribution_status = 'incomplete'``, ``missing_dimensions = ['team']``), 2% of
calls are errors, a quarter read from the prompt cache. Every call has an ``attributes`` map of
4 keys (``gen_ai.*``, ``app.feature``) and the last call of half the agent runs a fifth,
``app.outcome`` (a real span carries about 20 attributes, and reading the map costs about in
proportion to its entries: see docs/benchmarks.md, "Reports"); ``resource_attributes`` is NULL.
Costs are synthetic ($2.50 / $1.25 cached / $10 per million input / cached / output tokens for
every model), exact DECIMAL(38, 12) like the pipeline's. The built lake is kept (default under
``~/.cache/otelcost-bench/``, one directory per ``--rows``/``--days``/``--end``) and reused by
later runs.

**The measurement**: every name in ``otelcost.reports.REPORTS`` (whatever is registered when
the benchmark runs), each with the variants of :data:`VARIANTS` (a report not listed there runs
with the default request), and a floor, ``SELECT count(*), sum(cost_usd) FROM llm_calls WHERE
date`` in the period. Each runs in a fresh process through ``run_report(name,
ReportContext(lake_dir, now=<end of the data>), ReportRequest(period=<the whole span>))``: once to
warm the page cache and the imports, then ``--repeat`` times; the table has the median wall
time, the process's peak RSS (``VmHWM``: the interpreter, pyarrow and DuckDB included, which
the floor row shows), and the rows of the main section (and of all sections). Reports over
``--target`` seconds also get the time of each query they sent through ``ReportContext.query``
(``--explain``: and its ``EXPLAIN ANALYZE``). A report whose process passes ``--max-rss-gib``
(6 by default) is killed and shown so: DuckDB lets a query take up to 80% of the machine's RAM.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import shutil
import statistics
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.harness import peak_rss_bytes
from benchmarks.query_bench import _batch, compact, write_lake
from otelcost.money import pico_to_decimal_array
from otelcost.reports.base import ReportContext

LAKE_VERSION: Final = 1
"""Bumped whenever :func:`report_batch` changes, so a cached lake of older rows is not reused."""

MANIFEST: Final = "report-bench.json"
"""Written into the lake directory once the lake is complete (its presence means "reusable")."""

DEFAULT_END: Final = datetime(2026, 12, 1, tzinfo=UTC)
DEFAULT_CACHE: Final = Path.home() / ".cache" / "otelcost-bench"
FLOOR: Final = "(floor)"
FLOOR_SQL: Final = """
SELECT count(*) AS calls, sum(cost_usd) AS cost_usd FROM llm_calls
WHERE date BETWEEN $first_day AND $last_day"""

VARIANTS: Final[Mapping[str, Mapping[str, Mapping[str, Any]]]] = {
    # report -> variant label -> {"request": ReportRequest fields, "config": ReportsConfig fields}
    "showback": {
        "--by team": {"request": {"by": "team"}},
        "--by team,feature": {"request": {"by": "team,feature"}},
        # the last week, compared with the week before it: both scans read data
        "--by team --since 7d": {"request": {"by": "team", "since": "7d"}},
    },
    "chargeback": {
        "default": {},
        "3 rules": {
            "config": {
                "chargeback": {
                    "rules": [
                        {"name": "unattributed", "shared": {"unattributed": True}, "spread": "direct_spend"},
                        {"name": "platform", "shared": {"where": {"service": ["svc-7"]}}, "spread": "evenly"},
                        {
                            "name": "commitment",
                            "shared": {"amount_per_month": "2000"},
                            "spread": "weights",
                            "weights": {"team-00": 3, "team-01": 1},
                        },
                    ]
                }
            }
        },
    },
}
"""Requests and configurations a report runs with (over the whole span of the data unless the
request names its own period); a report not listed runs once with the defaults."""

TEAMS: Final = 20
COST_CENTERS: Final = 5
FEATURES: Final = 40
USERS: Final = 1000
USERS_PER_TENANT: Final = 5
SESSIONS: Final = 50_000
WORKFLOWS: Final = 12
SERVICES: Final = 8
ENVIRONMENTS: Final = ("production", "staging", "development")
ENVIRONMENT_SHARES: Final = (0.85, 0.10, 0.05)
OUTCOMES: Final = ("resolved_ticket", "escalated", "abandoned")
ATTRIBUTE_KEYS: Final = (
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "app.feature",
    "app.outcome",
)
INTERLEAVE: Final = 64
"""Calls of one trace are shuffled within windows of this many consecutive calls: traces overlap
in time as in real traffic, and an agent run lasts seconds rather than one timestamp step."""


# -- the lake -------------------------------------------------------------------------------------------


def _labels(
    names: Iterable[str], index: npt.NDArray[np.int64], valid: npt.NDArray[np.bool_] | None = None
) -> pa.Array:
    out = pa.array(list(names), pa.string()).take(pa.array(index))
    if valid is not None:
        out = pc.if_else(pa.array(valid), out, pa.scalar(None, pa.string()))
    return out


def _strings(
    template: str, values: npt.NDArray[np.int64], valid: npt.NDArray[np.bool_] | None = None
) -> pa.Array:
    """``template.format(v)`` per value, formatted once per distinct value."""
    distinct, inverse = np.unique(values, return_inverse=True)
    return _labels((template.format(v) for v in distinct.tolist()), inverse.reshape(-1), valid)


def report_batch(rng: np.random.Generator, rows: int, start_us: int, step_us: int) -> pa.Table:
    """``query_bench``'s batch with traces, tenants, workflows, environments, cost centers,
    projects, incomplete attribution, errors, cache reads and ``attributes`` (module docstring).

    Trace and span ids start with 8 zero hex digits that :func:`fresh_ids` replaces per flush.
    """
    table = _batch(rng, rows, start_us, step_us)
    positions = np.arange(rows)
    slots = np.repeat(positions, rng.integers(1, 9, size=rows))[:rows]
    traces = int(slots[-1]) + 1
    trace = slots[np.lexsort((rng.random(rows), positions // INTERLEAVE))]
    last_row = np.full(traces, -1)
    np.maximum.at(last_row, trace, positions)
    is_last = last_row[trace] == positions

    def per_trace(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return values[trace]

    user = per_trace(rng.integers(0, USERS, size=traces))
    team = user % TEAMS
    feature = per_trace(rng.integers(0, FEATURES, size=traces))
    has_workflow = per_trace(rng.random(traces) >= 0.4)
    has_team = per_trace(rng.random(traces) >= 0.03)
    has_tenant = per_trace(rng.random(traces) >= 0.10)
    has_outcome = per_trace(rng.random(traces) < 0.5) & has_workflow & is_last

    input_tokens = table.column("input_tokens").to_numpy()
    output_tokens = table.column("output_tokens").to_numpy()
    cached = np.where(rng.random(rows) < 0.25, input_tokens * 6 // 10, 0)
    input_cost, cache_cost = (input_tokens - cached) * 2_500_000, cached * 1_250_000
    output_cost = output_tokens * 10_000_000
    cost = pico_to_decimal_array(input_cost + cache_cost + output_cost)
    error = rng.random(rows) < 0.02

    # attributes: 4 entries per call, a 5th (app.outcome) on some; item k of row r is the r-th
    # value of the k-th column stacked below
    feature_text = _strings("feature-{:02d}", feature)
    entries = 4 + has_outcome.astype(np.int64)
    offsets = np.concatenate(([0], np.cumsum(entries)))
    item_row = np.repeat(positions, entries)
    item_key = np.arange(int(offsets[-1])) - offsets[:-1][item_row]
    stacked = pa.concat_arrays(
        [
            pa.array(["chat"] * rows, pa.string()),
            table.column("provider").combine_chunks(),
            table.column("model").combine_chunks(),
            feature_text,
            _labels(OUTCOMES, per_trace(rng.integers(0, len(OUTCOMES), size=traces))),
        ]
    )
    attributes = pa.MapArray.from_arrays(
        pa.array(offsets, pa.int32()),
        _labels(ATTRIBUTE_KEYS, item_key),
        stacked.take(pa.array(item_key * rows + item_row)),
    )
    trace_ids = [f"00000000{a:012x}{b:012x}" for a, b in rng.integers(0, 2**48, size=(traces, 2)).tolist()]
    changes: dict[str, pa.Array] = {
        "trace_id": _labels(trace_ids, trace),
        "span_id": _strings("00000000{:08x}", positions),
        "service": _strings("svc-{}", user % SERVICES),
        "environment": _labels(ENVIRONMENTS, per_trace(rng.choice(3, size=traces, p=ENVIRONMENT_SHARES))),
        "team": _strings("team-{:02d}", team, has_team),
        "cost_center": _strings("cc-{}", team % COST_CENTERS, has_team),
        "feature": feature_text,
        "project": _strings("project-{}", feature // 8),
        "user_id": _strings("user-{:04d}", user),
        "tenant_id": _strings("tenant-{:03d}", user // USERS_PER_TENANT, has_tenant),
        "session_id": _strings("session-{:05d}", per_trace(rng.integers(0, SESSIONS, size=traces))),
        "workflow": _strings(
            "agent-{:02d}", per_trace(rng.integers(0, WORKFLOWS, size=traces)), has_workflow
        ),
        "attribution_status": _labels(("complete", "incomplete"), (~has_team).astype(np.int64)),
        "missing_dimensions": pa.array([[] if ok else ["team"] for ok in has_team.tolist()]),
        "status": _labels(("ok", "error"), error.astype(np.int64)),
        "error_type": _labels(("rate_limit",), np.zeros(rows, dtype=np.int64), error),
        "attributes": attributes,
        "cache_read_tokens": pa.array(cached),
        "cost_usd": cost,
        "effective_cost_usd": cost,
        "input_cost_usd": pico_to_decimal_array(input_cost),
        "cache_read_cost_usd": pico_to_decimal_array(cache_cost),
        "output_cost_usd": pico_to_decimal_array(output_cost),
    }
    for name, values in changes.items():
        index = table.schema.get_field_index(name)
        column = table.schema.field(index)
        table = table.set_column(index, column, values.cast(column.type))
    return table


def fresh_ids(batch: pa.Table, flush: int) -> pa.Table:
    """The ``flush``-th copy of a reused batch with its own trace and span ids (the flush number
    as the first 8 hex digits), so each trace is one run rather than one per reuse."""
    prefix = pa.scalar(f"{flush:08x}")
    for name in ("trace_id", "span_id"):
        index = batch.schema.get_field_index(name)
        rest = pc.utf8_slice_codeunits(batch.column(name), 8)
        batch = batch.set_column(
            index, batch.schema.field(index), pc.binary_join_element_wise(prefix, rest, "")
        )
    return batch


@dataclass(frozen=True, slots=True)
class LakeSpec:
    rows: int
    days: int
    end: datetime

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)

    @property
    def key(self) -> dict[str, Any]:
        return {"rows": self.rows, "days": self.days, "end": self.end.isoformat(), "version": LAKE_VERSION}

    def default_dir(self) -> Path:
        return DEFAULT_CACHE / f"reports-{self.rows}r-{self.days}d-{self.end:%Y%m%d}-v{LAKE_VERSION}"


def _layout(lake_dir: Path) -> dict[str, int]:
    files = list((lake_dir / "llm_calls").glob("date=*/*.parquet"))
    return {
        "files": len(files),
        "row_groups": sum(pq.ParquetFile(path).metadata.num_row_groups for path in files),
        "bytes": sum(path.stat().st_size for path in files),
    }


def ensure_lake(lake_dir: Path, spec: LakeSpec, flush_rows: int) -> dict[str, Any]:
    """The lake of ``spec`` in ``lake_dir``: reused when a complete one is there, else built
    (in ``<lake_dir>.partial``, renamed when compacted). Returns its manifest."""
    from otelcost.lake.config import LakeConfig  # noqa: PLC0415
    from otelcost.lake.query import run_query  # noqa: PLC0415

    manifest_path = lake_dir / MANIFEST
    if manifest_path.exists():
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        if {name: manifest.get(name) for name in spec.key} != spec.key:
            raise SystemExit(f"{lake_dir} holds another benchmark lake ({manifest}); give another --lake-dir")
        return manifest
    if lake_dir.exists() and any(lake_dir.iterdir()):
        raise SystemExit(f"{lake_dir} is not empty and is not a lake this benchmark built")
    partial = lake_dir.with_name(lake_dir.name + ".partial")
    if partial.exists():  # an interrupted build of ours
        shutil.rmtree(partial)
    # Compaction merges a day once it has min_files files: flush often enough that every day has.
    min_files = LakeConfig().compaction.min_files
    rows_per_file = max(1, min(flush_rows, spec.rows // spec.days // (min_files + 1)))
    print(f"building {spec.rows:,} calls over {spec.days} days to {spec.end.isoformat()} in {lake_dir}")
    write_seconds, files_written = write_lake(
        partial,
        spec.rows,
        rows_per_file,
        days=spec.days,
        end=spec.end,
        make_batch=report_batch,
        vary=fresh_ids,
    )
    compact_seconds, before, after = compact(partial)
    counts = run_query(
        partial,
        "SELECT count(*) AS calls, count(DISTINCT trace_id) AS traces, "
        "count(*) FILTER (WHERE attributes['app.outcome'] IS NOT NULL) AS outcomes FROM llm_calls",
    ).to_pylist()[0]
    manifest = spec.key | _layout(partial) | counts
    manifest |= {
        "rows_per_flush": rows_per_file,
        "files_written": files_written,
        "write_seconds": round(write_seconds, 1),
        "compact_seconds": round(compact_seconds, 1),
        "files_before_compaction": before,
        "files_after_compaction": after,
    }
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    lake_dir.parent.mkdir(parents=True, exist_ok=True)
    if lake_dir.exists():
        lake_dir.rmdir()
    partial.rename(lake_dir)
    return manifest


# -- the measurement ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    report: str
    variant: str
    request: Mapping[str, Any]
    config: Mapping[str, Any]


def jobs(names: Iterable[str]) -> list[Job]:
    """The floor, then every variant of every report in ``names``."""
    out = [Job(FLOOR, "count, sum(cost_usd)", {}, {})]
    for name in names:
        for variant, spec in VARIANTS.get(name, {"default": {}}).items():
            out.append(Job(name, variant, spec.get("request", {}), spec.get("config", {})))
    return out


def period_request(spec: LakeSpec) -> dict[str, str]:
    """The whole span of the data: its month when it is exactly one, else since/until."""
    start, end = spec.start, spec.end
    month_end = datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)
    if start.day == 1 and start.time() == end.time() == datetime.min.time() and end == month_end:
        return {"period": start.strftime("%Y-%m")}
    return {"since": start.isoformat(), "until": end.isoformat()}


_QUERIES: list[tuple[float, str]] = []
_PLANS: list[str] = []
_EXPLAIN: list[bool] = [False]


class _TimedContext(ReportContext):
    """A ReportContext that keeps the time of every query a report sends through ``query`` (and,
    with ``--explain``, its ``EXPLAIN ANALYZE``)."""

    def query(self, sql: str, params: Mapping[str, object] | None = None) -> pa.Table:
        started = time.perf_counter()
        try:
            return super().query(sql, params)
        finally:
            _QUERIES.append((time.perf_counter() - started, sql))
            if _EXPLAIN[0]:
                plan = super().query("EXPLAIN ANALYZE " + sql, params)
                _PLANS.append(" ".join(sql.split())[:200] + "\n" + "\n".join(plan.column(1).to_pylist()))


@dataclass(frozen=True, slots=True)
class Task:
    """What the spawned process needs to run one job."""

    job: Job
    lake_dir: Path
    end: datetime
    period: Mapping[str, str]
    repeat: int
    explain: bool = False


def _run(task: Task) -> tuple[int, int, int]:
    """Run ``task.job`` once; (rows of the main section, rows of all sections, sections)."""
    from otelcost.reports import ReportRequest, run_report  # noqa: PLC0415
    from otelcost.reports.config import ReportsConfig  # noqa: PLC0415

    config = ReportsConfig.model_validate(dict(task.job.config))
    context = _TimedContext(task.lake_dir, config=config, now=lambda: task.end)
    own_period = any(name in task.job.request for name in ("period", "since", "until"))
    period = {} if own_period else dict(task.period)
    request = ReportRequest.model_validate(period | dict(task.job.request))
    if task.job.report == FLOOR:
        span = request.resolved_period(task.end)
        params = {"first_day": span.start.date(), "last_day": (span.end - timedelta(microseconds=1)).date()}
        table = context.query(FLOOR_SQL, params)
        return table.num_rows, table.num_rows, 1
    result = run_report(task.job.report, context, request)
    tables = result.sections.values()
    return result.table.num_rows, sum(t.num_rows for t in tables), len(tables)


def _child(task: Task, results: Any) -> None:  # pragma: no cover  (runs in the spawned process)
    try:
        _run(task)  # warm the page cache, the imports, DuckDB
        times = []
        for _ in range(task.repeat):
            _QUERIES.clear()
            started = time.perf_counter()
            main, total, sections = _run(task)
            times.append(time.perf_counter() - started)
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so a spawned process would
        # report its parent's peak (the lake build's) whenever that is higher.
        rss = peak_rss_bytes(os.getpid())
        queries = [(seconds, " ".join(sql.split())) for seconds, sql in _QUERIES]
        if task.explain:  # after the measurement: profiling slows the queries down
            _EXPLAIN[0] = True
            _run(task)
        results.put(
            {
                "times": times,
                "rss": rss,
                "rows": main,
                "all_rows": total,
                "sections": sections,
                "queries": queries,
                "plans": _PLANS,
            }
        )
    except Exception as exc:  # reported in the table; the other reports still run
        results.put({"error": f"{type(exc).__name__}: {exc}"})


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def measure(task: Task, max_rss: int) -> dict[str, Any]:
    """``task`` in a fresh spawned process (so its peak RSS is its own), killed if its resident
    memory passes ``max_rss`` bytes: DuckDB may take up to 80% of the RAM, which others share."""
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    child = ctx.Process(target=_child, args=(task, results))
    started = time.monotonic()
    child.start()
    assert child.pid is not None
    figures: dict[str, Any] | None = None
    while figures is None:
        try:
            figures = results.get(timeout=0.2)
        except queue.Empty:
            if child.is_alive() and _rss_bytes(child.pid) > max_rss:
                child.kill()
                figures = {
                    "error": f"killed: resident memory passed {max_rss / 2**30:.1f} GiB "
                    f"after {time.monotonic() - started:.0f} s"
                }
            elif not child.is_alive():
                try:
                    figures = results.get(timeout=1.0)
                except queue.Empty:
                    figures = {"error": f"the process exited with {child.exitcode}"}
    child.join()
    return figures


def _row(job: Job, figures: Mapping[str, Any], target: float) -> str:
    if "error" in figures:
        return f"| {job.report} | {job.variant} | error: {figures['error'][:200]} | | |"
    median = statistics.median(figures["times"])
    slow = " **(over target)**" if median > target and job.report != FLOOR else ""
    rows = str(figures["rows"])
    if figures["sections"] > 1:
        rows += f" ({figures['sections']} sections, {figures['all_rows']} rows)"
    spread = f"{min(figures['times']):.2f}-{max(figures['times']):.2f}"
    return (
        f"| {job.report} | {job.variant} | {median:.2f}{slow} | {spread} | "
        f"{figures['rss'] / 2**20:.0f} | {rows} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument(
        "--end", type=datetime.fromisoformat, default=DEFAULT_END, help="end of the data (UTC)"
    )
    parser.add_argument(
        "--lake-dir", type=Path, help=f"where the lake is kept (default under {DEFAULT_CACHE})"
    )
    parser.add_argument("--flush-rows", type=int, default=5_000, help="rows per LakeWriter flush (at most)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--target", type=float, default=2.0, help="seconds a report should stay under")
    parser.add_argument("--only", action="append", default=[], help="run only this report (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of every query")
    parser.add_argument(
        "--max-rss-gib", type=float, default=6.0, help="kill a report whose process passes this (GiB)"
    )
    args = parser.parse_args()
    end = args.end if args.end.tzinfo else args.end.replace(tzinfo=UTC)
    spec = LakeSpec(args.rows, args.days, end)
    lake_dir = args.lake_dir or spec.default_dir()
    manifest = ensure_lake(lake_dir, spec, args.flush_rows)
    print(
        f"lake {lake_dir}: {manifest['calls']:,} calls, {manifest['traces']:,} traces, "
        f"{manifest['files']} files, {manifest['row_groups']} row groups, "
        f"{manifest['bytes'] / 2**20:.0f} MiB "
        f"(built with {manifest['rows_per_flush']:,} rows per flush in {manifest['write_seconds']:.0f} s, "
        f"compacted {manifest['files_before_compaction']} files to {manifest['files_after_compaction']} "
        f"in {manifest['compact_seconds']:.0f} s)"
    )
    from otelcost.reports import REPORTS  # noqa: PLC0415

    names = [name for name in REPORTS if not args.only or name in args.only]
    period = period_request(spec)
    print(f"reports: {', '.join(REPORTS)}; period {period}, now {end.isoformat()}, median of {args.repeat}")
    print()
    print("| report | variant | median s | min-max s | peak RSS MiB | rows out |")
    print("|---|---|---|---|---|---|")
    measured = []
    max_rss = int(args.max_rss_gib * 2**30)
    for job in jobs(names):
        figures = measure(Task(job, lake_dir, end, period, args.repeat, args.explain), max_rss)
        print(_row(job, figures, args.target), flush=True)
        measured.append((job, figures))
    for job, figures in measured:
        if "error" in figures or job.report == FLOOR or statistics.median(figures["times"]) <= args.target:
            continue
        print(f"\n{job.report} {job.variant}: the queries of its last run")
        for seconds, sql in figures["queries"]:
            print(f"  {seconds:6.2f} s  {sql[:150]}")
    for job, figures in measured:
        for plan in figures.get("plans", ()):
            print(f"\n-- {job.report} {job.variant}: {plan}")
    if args.json:
        document = {
            "lake": manifest,
            "period": period,
            "repeat": args.repeat,
            "results": [
                {"report": job.report, "variant": job.variant} | figures for job, figures in measured
            ],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
