"""One function per check. Each takes what it needs (the target, a scrape, the limits) and
returns one :class:`CheckResult` whose ``fix`` is the one thing to do next.

Counters in ``/metrics`` count since the server started, so a check that reads one says "since
start"; the gauges (spool depth, buffered rows) are the state now.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from otelcost.doctor.model import CheckResult, Endpoint, Limits, Status, Target
from otelcost.doctor.probe import HttpAnswer, Metrics, connect_error
from otelcost.errors import OtelcostError
from otelcost.lake.layout import data_files, list_partitions, partition_dir, table_dir
from otelcost.lake.query import run_query
from otelcost.pricing.catalog_loader import read_catalogs
from otelcost.pricing.config import PricingConfig

__all__ = [
    "check_api",
    "check_budget_store",
    "check_catalog",
    "check_clock_skew",
    "check_disk",
    "check_lake_lag",
    "check_lake_writable",
    "check_port",
    "check_readiness",
    "check_spool",
    "check_unpriced",
]

QUERY_TIMEOUT_SECONDS = 30.0
FULL_FRACTION = 0.9
"""The spool counts as full this close to spool.max_size: the next append may not fit."""


def check_port(name: str, endpoint: Endpoint | None, limits: Limits) -> CheckResult:
    if endpoint is None:
        return CheckResult(name, Status.OK, "disabled in the configuration")
    error = connect_error(endpoint, limits.timeout_seconds)
    if error is None:
        return CheckResult(name, Status.OK, f"{endpoint} accepts connections")
    return CheckResult(
        name,
        Status.FAIL,
        f"{endpoint} does not accept connections ({error})",
        "start otelcost serve, or make its listen address (receiver.*.listen) and the Service/ports "
        "agree with where senders export",
    )


def check_api(api_url: str, healthz: HttpAnswer) -> CheckResult:
    if healthz.status == 200:
        return CheckResult("api", Status.OK, f"{api_url}/healthz answers")
    found = f"answered {healthz.status}" if healthz.status is not None else f"unreachable ({healthz.error})"
    fix = "start otelcost serve or pass the API listener's address with --api (api.listen)"
    error = healthz.error.lower()
    if "certificate_verify_failed" in error:
        fix = "pass the CA that signed the API's certificate with --ca-file (api.tls)"
    elif "wrong_version_number" in error:
        fix = "the API speaks plain HTTP: pass --api http://... (or give the listener api.tls)"
    elif api_url.startswith("https:") and ("certificate required" in error or "closed connection" in error):
        # With TLS 1.3 a refused client certificate shows as a connection closed unanswered.
        fix = (
            "if the API has api.tls.client_ca_file, it wants a client certificate: "
            "pass --client-cert and --client-key"
        )
    return CheckResult("api", Status.FAIL, f"{api_url}/healthz {found}", fix)


def check_readiness(readyz: HttpAnswer) -> CheckResult:
    """``/readyz`` turns 200 only after the spool replay and once the receivers listen."""
    if readyz.status is None:
        return CheckResult(
            "readiness", Status.FAIL, f"/readyz unreachable ({readyz.error})", "see the api check"
        )
    status = _json_status(readyz.body)
    if readyz.status == 200:
        return CheckResult("readiness", Status.OK, "ready: the spool is replayed and the receivers listen")
    if status == "starting":
        return CheckResult(
            "readiness",
            Status.WARN,
            "starting: the lake recovers, the budgets rebuild and the spool replays",
            "wait; a large spool takes a while (otelcost_spool_replay_seconds of the last start); "
            "do not let a liveness probe on /readyz kill it",
        )
    return CheckResult(
        "readiness",
        Status.FAIL,
        f"/readyz answered {readyz.status}: {status or readyz.body[:80]}",
        "read the server's log; with receiver.workers, a worker is being started again",
    )


def _json_status(body: str) -> str | None:
    try:
        decoded = json.loads(body)
    except ValueError:
        return None
    status = decoded.get("status") if isinstance(decoded, dict) else None
    return status if isinstance(status, str) else None


def check_spool(metrics: Metrics | None, max_size: int | None) -> CheckResult:
    if metrics is None:
        return CheckResult("spool", Status.FAIL, "no /metrics to read the spool from", "see the api check")
    if not metrics.has("otelcost_spool_depth_records"):
        return CheckResult(
            "spool",
            Status.WARN,
            "the spool is disabled: a crash loses the rows buffered for the lake",
            "set spool.enabled: true (docs/durability.md)",
        )
    refused = metrics.by_label("otelcost_spool_refused_total", "reason")
    depth = int(metrics.value("otelcost_spool_depth_records"))
    size = int(metrics.value("otelcost_spool_size_bytes"))
    flush_errors = int(metrics.value("otelcost_lake_flush_errors_total"))
    buffered = int(metrics.value("otelcost_lake_buffered_rows"))
    if max_size is not None and size >= FULL_FRACTION * max_size:
        return CheckResult(
            "spool",
            Status.FAIL,
            f"full: {size} of {max_size} bytes wait for the lake; appends are refused "
            f"({int(refused.get('full', 0))} since start), senders get retryable errors",
            "find why the lake does not keep up (lake-writable, lake-lag); raise spool.max_size only "
            "if bursts are legitimate",
        )
    if depth and flush_errors and buffered:
        return CheckResult(
            "spool",
            Status.FAIL,
            f"stuck: {depth} records wait for the lake and {flush_errors} lake flushes failed since start",
            "fix the lake (see lake-writable); the records are safe and land once a flush succeeds",
        )
    if refused.get("full", 0) or refused.get("io", 0):
        return CheckResult(
            "spool",
            Status.WARN,
            f"{int(refused.get('full', 0))} appends refused as full and {int(refused.get('io', 0))} by "
            f"the disk since start; {depth} records ({size} bytes) wait now",
            "io: check the data directory's disk (kernel log); full: see why the lake fell behind then",
        )
    return CheckResult("spool", Status.OK, f"{depth} records ({size} bytes) waiting for the lake")


def check_budget_store(metrics: Metrics | None) -> CheckResult:
    """The shared budget store (``budgeting.store: redis://``), from what the server reports."""
    if metrics is None:
        return CheckResult(
            "budget-store", Status.FAIL, "no /metrics to read the budget store from", "see the api check"
        )
    if not metrics.has("otelcost_budget_store_online"):
        return CheckResult("budget-store", Status.OK, "in-process (budgeting.store: memory)")
    pending = int(metrics.value("otelcost_budget_store_pending"))
    version = int(metrics.value("otelcost_budget_store_version"))
    if not metrics.value("otelcost_budget_store_online"):
        return CheckResult(
            "budget-store",
            Status.FAIL,
            f"Redis cannot be reached: decisions are stale, {pending} batch(es) counted here only, "
            "waiting to be added",
            "check budgeting.store (reachable, not out of memory, not loading); the batches are added "
            "once when it answers (docs/scale-out.md)",
        )
    if pending:
        return CheckResult(
            "budget-store",
            Status.WARN,
            f"Redis answers again; {pending} batch(es) counted while it did not are still being added",
            "wait; if the number does not fall, look at the server's log",
        )
    return CheckResult("budget-store", Status.OK, f"shared through Redis, at store version {version}")


def check_disk(target: Target, limits: Limits) -> CheckResult:
    if target.data_dir is None or not target.data_dir.exists():
        return _not_visible("disk", target.data_dir)
    usage = shutil.disk_usage(target.data_dir)
    free = usage.free / usage.total if usage.total else 0.0
    message = (
        f"{usage.free // 2**20} MiB free of {usage.total // 2**20} MiB ({free:.0%}) at {target.data_dir}"
    )
    if free < limits.disk_min_free_fraction:
        return CheckResult(
            "disk", Status.FAIL, message, "grow the volume or move old lake days away (backups)"
        )
    if target.spool_max_size is not None and usage.free < target.spool_max_size:
        return CheckResult(
            "disk",
            Status.WARN,
            f"{message}: less than spool.max_size ({target.spool_max_size // 2**20} MiB)",
            "grow the volume: a backlog would hit the disk before the spool's own limit",
        )
    return CheckResult("disk", Status.OK, message)


def check_lake_writable(target: Target, metrics: Metrics | None) -> CheckResult:
    """A temporary file in the table directory proves this side can write; the flush counters say
    whether the server's writer can."""
    if target.lake_dir is None or not target.lake_dir.exists():
        return _not_visible("lake-writable", target.lake_dir)
    directory = table_dir(target.lake_dir)
    if not directory.exists():
        directory = target.lake_dir
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".doctor-write-check-"):
            pass
    except OSError as exc:
        return CheckResult(
            "lake-writable",
            Status.FAIL,
            f"cannot create a file in {directory}: {exc.strerror or exc}",
            "make the lake directory writable by otelcost's user (volume mount, permissions, space)",
        )
    if metrics is not None:
        errors = int(metrics.value("otelcost_lake_flush_errors_total"))
        buffered = int(metrics.value("otelcost_lake_buffered_rows"))
        if errors and buffered:
            return CheckResult(
                "lake-writable",
                Status.FAIL,
                f"{errors} lake flushes failed since start and {buffered} rows wait",
                "read the server's log for the flush error; the rows are kept and written once it succeeds",
            )
        if errors:
            return CheckResult(
                "lake-writable",
                Status.WARN,
                f"{errors} lake flushes failed since start; none waits now",
                "read the server's log for what failed (it recovered)",
            )
    return CheckResult("lake-writable", Status.OK, f"{directory} is writable")


def newest_file_time(lake_dir: Path) -> datetime | None:
    """The modification time of the lake's newest data file (every day, since a backfill or a
    compaction can write into any of them)."""
    newest: float | None = None
    for day in list_partitions(lake_dir):
        for path in data_files(partition_dir(lake_dir, day)):
            try:
                mtime = path.stat().st_mtime
            except FileNotFoundError:  # compacted away meanwhile
                continue
            newest = mtime if newest is None else max(newest, mtime)
    return None if newest is None else datetime.fromtimestamp(newest, UTC)


def check_lake_lag(target: Target, metrics: Metrics | None, limits: Limits, now: datetime) -> CheckResult:
    if target.lake_dir is None or not target.lake_dir.exists():
        return _not_visible("lake-lag", target.lake_dir)
    try:
        newest = newest_file_time(target.lake_dir)
    except OtelcostError as exc:
        return CheckResult("lake-lag", Status.FAIL, f"cannot list the lake: {exc}", "see lake-writable")
    waiting = 0
    if metrics is not None:
        waiting = int(metrics.value("otelcost_lake_buffered_rows")) + int(
            metrics.value("otelcost_spool_depth_records")
        )
    if newest is None:
        if waiting:
            return CheckResult(
                "lake-lag",
                Status.FAIL,
                f"no file in the lake yet and {waiting} rows/records wait",
                "see lake-writable; the writer has not managed a single flush",
            )
        return CheckResult("lake-lag", Status.OK, "the lake is empty and nothing waits (no traffic yet)")
    age = (now - newest).total_seconds()
    message = f"newest lake file written {age:.0f} s ago"
    if waiting and age > limits.lake_max_lag_seconds:
        return CheckResult(
            "lake-lag",
            Status.FAIL,
            f"{message} while {waiting} rows/records wait (limit {limits.lake_max_lag_seconds:g} s)",
            "the writer is not flushing: see lake-writable and the server's log; a held lake lock "
            "(otelcost reprice) also holds flushes",
        )
    return CheckResult("lake-lag", Status.OK, f"{message}; {waiting} rows/records wait")


def check_catalog(pricing: PricingConfig | None, limits: Limits, today: date) -> CheckResult:
    if pricing is None:
        return CheckResult("catalog", Status.WARN, "no configuration given", "pass -c FILE of the deployment")
    entries, issues = read_catalogs(pricing)
    errors = [issue for issue in issues if issue.severity == "error"]
    if errors:
        return CheckResult(
            "catalog",
            Status.FAIL,
            f"{len(errors)} catalog problems, first: {errors[0]}",
            "otelcost pricing check names every problem; fix the catalog file",
        )
    read_by_provider: dict[str, date] = {}
    for entry in entries:
        for version in entry.versions:
            read = version.source.read if version.source is not None else None
            if read is not None and read > read_by_provider.get(entry.provider, date.min):
                read_by_provider[entry.provider] = read
    if not read_by_provider:
        return CheckResult(
            "catalog", Status.WARN, f"{len(entries)} entries, none says when its prices were read"
        )
    provider, oldest = min(read_by_provider.items(), key=lambda item: item[1])
    age = (today - oldest).days
    message = f"{len(entries)} entries; oldest prices: {provider}, read {oldest.isoformat()} ({age} days ago)"
    if age > limits.catalog_max_age_days:
        return CheckResult(
            "catalog",
            Status.WARN,
            f"{message}, over {limits.catalog_max_age_days} days",
            "check the provider's price page; update otelcost or a user catalog (docs/pricing.md), then "
            "otelcost reprice the days a change affects",
        )
    return CheckResult("catalog", Status.OK, message)


def _since(now: datetime, limits: Limits) -> datetime:
    return now - timedelta(seconds=limits.window_seconds)


def check_unpriced(target: Target, metrics: Metrics | None, limits: Limits, now: datetime) -> CheckResult:
    """Unpriced calls since start (``/metrics``) and, from the lake, the models of the window."""
    statuses = metrics.by_label("otelcost_calls_by_pricing_status_total", "status") if metrics else {}
    total = sum(statuses.values())
    unpriced = total - statuses.get("priced", 0)
    models: list[str] = []
    if target.lake_dir is not None and target.lake_dir.exists():
        try:
            table = run_query(
                target.lake_dir,
                "SELECT coalesce(request_model, response_model, '(no model)') AS m, count(*) AS n "
                "FROM llm_calls WHERE received_at >= $since AND pricing_status <> 'priced' "
                "GROUP BY m ORDER BY n DESC, m LIMIT 10",
                {"since": _since(now, limits)},
                timeout=QUERY_TIMEOUT_SECONDS,
            )
        except OtelcostError as exc:
            return CheckResult("unpriced", Status.FAIL, f"cannot read the lake: {exc}", "see lake-writable")
        models = [
            f"{m} ({n})"
            for m, n in zip(table.column("m").to_pylist(), table.column("n").to_pylist(), strict=True)
        ]
    if not unpriced and not models:
        return CheckResult("unpriced", Status.OK, f"every one of {int(total)} calls since start is priced")
    share = f"{unpriced / total:.1%} of {int(total)} calls since start" if total else "no calls since start"
    seen = f"; models of the last {limits.window_seconds:g} s: {', '.join(models)}" if models else ""
    return CheckResult(
        "unpriced",
        Status.WARN,
        f"unpriced: {share}{seen}",
        "add the models to a user catalog (docs/pricing.md; otelcost pricing unknown lists them), "
        "then otelcost reprice the affected days",
    )


def check_clock_skew(target: Target, limits: Limits, now: datetime) -> CheckResult:
    """The median of received_at - end_ts per service over the window: a sender whose clock is
    off (or whose exporter holds spans back) shows as a service far from zero."""
    if target.lake_dir is None or not target.lake_dir.exists():
        return _not_visible("clock-skew", target.lake_dir)
    try:
        table = run_query(
            target.lake_dir,
            "SELECT coalesce(service, '(no service)') AS service, count(*) AS n, "
            "median(epoch(received_at) - epoch(coalesce(end_ts, ts))) AS skew "
            "FROM llm_calls WHERE received_at >= $since GROUP BY 1 ORDER BY abs(skew) DESC, 1",
            {"since": _since(now, limits)},
            timeout=QUERY_TIMEOUT_SECONDS,
        )
    except OtelcostError as exc:
        return CheckResult("clock-skew", Status.FAIL, f"cannot read the lake: {exc}", "see lake-writable")
    rows = list(
        zip(
            table.column("service").to_pylist(),
            table.column("n").to_pylist(),
            table.column("skew").to_pylist(),
            strict=True,
        )
    )
    if not rows:
        return CheckResult(
            "clock-skew", Status.OK, f"no call received in the last {limits.window_seconds:g} s"
        )
    skewed = [(s, n, float(k)) for s, n, k in rows if abs(float(k)) > limits.clock_max_skew_seconds]
    if not skewed:
        service, _, skew = rows[0]
        return CheckResult(
            "clock-skew",
            Status.OK,
            f"{len(rows)} services; largest median skew {float(skew):+.1f} s ({service})",
        )
    described = ", ".join(f"{s} {k:+.0f} s over {n} calls" for s, n, k in skewed[:5])
    return CheckResult(
        "clock-skew",
        Status.WARN,
        f"spans arrive far from their end time (received - end, median): {described}",
        "positive: the sender's clock is behind or its exporter queues spans (backfills look the same); "
        "negative: its clock is ahead. Run NTP/chrony on the sending hosts",
    )


def _not_visible(name: str, path: Path | None) -> CheckResult:
    where = f"{path} does not exist here" if path is not None else "no data directory given"
    return CheckResult(
        name,
        Status.WARN,
        f"skipped: {where}",
        "run otelcost doctor where the data directory is mounted, with -c FILE or --data-dir",
    )
