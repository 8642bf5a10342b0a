"""Run every check against one target, in the order an operator would look: can it be reached,
is it ready, is its data safe, is its data right."""

from __future__ import annotations

from datetime import UTC, datetime

from otelcost.doctor import checks
from otelcost.doctor.model import CheckResult, Limits, Target
from otelcost.doctor.probe import Metrics, http_get, parse_metrics

__all__ = ["run_checks"]


def run_checks(target: Target, limits: Limits, *, now: datetime | None = None) -> list[CheckResult]:
    now = now or datetime.now(UTC)
    api = target.api_url.rstrip("/")
    tls = target.api_tls
    healthz = http_get(f"{api}/healthz", limits.timeout_seconds, tls)
    results = [
        checks.check_api(api, healthz),
        checks.check_port("otlp-grpc", target.otlp_grpc, limits),
        checks.check_port("otlp-http", target.otlp_http, limits),
    ]
    metrics: Metrics | None = None
    if healthz.status is not None:
        results.append(checks.check_readiness(http_get(f"{api}/readyz", limits.timeout_seconds, tls)))
        scraped = http_get(f"{api}/metrics", limits.timeout_seconds, tls)
        if scraped.status == 200:
            metrics = parse_metrics(scraped.body)
    results += [
        checks.check_spool(metrics, target.spool_max_size),
        checks.check_budget_store(metrics),
        checks.check_disk(target, limits),
        checks.check_lake_writable(target, metrics),
        checks.check_lake_lag(target, metrics, limits, now),
        checks.check_catalog(target.pricing, limits, now.date()),
        checks.check_unpriced(target, metrics, limits, now),
        checks.check_clock_skew(target, limits, now),
    ]
    return results
