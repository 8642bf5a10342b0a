"""``otelcost demo``: see the whole loop work in a minute, with nothing else running.

Spans in, money out, and back to the gateway: the demo starts the pipeline on free loopback
ports with one budget (the platform team's daily spend, ``otelcost.demo.DEMO_BUDGETS``), sends
it a simulated company's last month of LLM traffic through the real OpenTelemetry SDK, with a
spike and a runaway agent loop planted in it (``otelcost/demo.py``), and then shows, from the
running server's HTTP API, the budget decision and a ``/v1/check`` that refuses the platform
team's next call. After the server stops it prints spend from the lake, the anomalies the
anomalies report finds, and writes the monthly report's HTML page into the demo's directory.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import click

from otelcost.cli.common import load_cli_config, otelcost_errors
from otelcost.cli.output import emit
from otelcost.config import Config, report_context
from otelcost.demo import (
    DEMO_BUDGETS,
    RUNAWAY_CALLS,
    exporting_providers,
    plant_runaway,
    plant_spike,
    simulate,
)
from otelcost.lake.query import run_query
from otelcost.reports import ReportRequest, run_report
from otelcost.reports.monthly import render_monthly
from otelcost.server import BackgroundServer

__all__ = ["ANOMALIES_SINCE", "COMMANDS", "HISTORY_DAYS", "SPIKE_DAYS_AGO", "demo", "history_days"]

HISTORY_DAYS: Final = 30
"""At least this many days of past traffic before today: the anomaly baselines need a few weeks
(and the history reaches back to the first of the previous month, so the monthly report has a
month to compare with)."""
SPIKE_DAYS_AGO: Final = 2
BUDGET_WAIT_S: Final = 30.0
ANOMALIES_SINCE: Final = "7d"
"""The anomalies shown: the last week's, which holds both planted incidents."""

SPEND_BY_TEAM = """
SELECT team, count(*) AS calls, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
       sum(cost_usd) AS cost_usd
FROM llm_calls GROUP BY team ORDER BY cost_usd DESC
"""
SPEND_BY_MODEL = """
SELECT provider, coalesce(model, response_model) AS model, pricing_status, count(*) AS calls,
       sum(cost_usd) AS cost_usd
FROM llm_calls GROUP BY ALL ORDER BY cost_usd DESC, calls DESC
"""


def history_days(today: date) -> int:
    """Days of past traffic: ``HISTORY_DAYS``, or back to the first of the previous month."""
    first_of_previous = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    return max(HISTORY_DAYS, (today - first_of_previous).days)


def _get(url: str) -> tuple[int, dict[str, str], Any]:
    """GET ``url``: (status, headers, JSON body), a refusal (4xx) included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as refused:
        with refused:
            return refused.code, dict(refused.headers), json.loads(refused.read())


def _budget_decision(api: str, budget: str) -> dict[str, Any] | None:
    status, _, body = _get(f"{api}/v1/decisions")
    if status != 200:
        return None
    for decision in body.get("decisions", []):
        if decision.get("budget") == budget and decision.get("action") == "block":
            return dict(decision)
    return None


def _wait_for_block(api: str, budget: str) -> dict[str, Any] | None:
    # The evaluator counts a call once the pipeline has it; the spans were flushed, so the block
    # comes within about a second.
    deadline = time.monotonic() + BUDGET_WAIT_S
    while time.monotonic() < deadline:
        decision = _budget_decision(api, budget)
        if decision is not None:
            return decision
        time.sleep(0.2)
    return None


def _show_gateway(api: str) -> None:
    budget = DEMO_BUDGETS[0]
    decision = _wait_for_block(api, budget["name"])
    if decision is None:
        click.echo(f"\nBudget {budget['name']} did not block within {BUDGET_WAIT_S:.0f}s.", err=True)
        return
    click.echo(f"\nBudget decision (GET {api}/v1/decisions):\n  {decision['reason']}")
    for team in ("platform", "payments"):
        url = f"{api}/v1/check?team={team}"
        status, headers, body = _get(url)
        verdict = "allowed" if body["allowed"] else "refused"
        retry = f", Retry-After {headers['Retry-After']}s" if "Retry-After" in headers else ""
        click.echo(f"GET {url} -> {status} {verdict} (X-Otelcost-Action: {body['action']}{retry})")


def _show_anomalies(config: Config) -> None:
    result = run_report("anomalies", report_context(config), ReportRequest(since=ANOMALIES_SINCE))
    click.echo(f"\nAnomalies (otelcost report anomalies --since {ANOMALIES_SINCE}):")
    findings = result.table.to_pylist()
    if not findings:
        click.echo("  (none found)")
    for finding in findings:
        click.echo(
            f"  {finding['kind']} {finding['scope_kind']}={finding['scope_value']}: {finding['detail']}"
        )


def _write_monthly(config: Config, data_dir: Path) -> Path:
    result = run_report("monthly", report_context(config), ReportRequest())
    path = data_dir / f"monthly-{result.period.start:%Y-%m}.html"
    path.write_text(render_monthly(result), encoding="utf-8")
    return path


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("otelcost-demo"),
    show_default=True,
    help="Where the demo's lake and monthly report go (kept afterwards, for `otelcost sql --data-dir`).",
)
@click.option(
    "--calls",
    type=click.IntRange(1, 1_000_000),
    default=3_000,
    show_default=True,
    help="Ordinary LLM calls, spread over today and the days back to the first of the previous month "
    "(at least 30); the planted incidents add more.",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the simulated traffic.")
def demo(data_dir: Path, calls: int, seed: int) -> None:
    """Run the whole loop on a simulated company: spend, a budget that blocks, anomalies, a report.

    The traffic goes through the real OpenTelemetry SDK and OTLP exporters (gRPC and HTTP) to
    an otelcost server on free loopback ports, with one budget: the platform team's daily
    spend. A runaway agent loop today pushes the team past it: the demo shows the decision and
    a refused /v1/check from the server's API. A spike two days ago and the loop are what the
    anomalies report finds; the monthly report's page is written into --data-dir.
    """
    loopback = "127.0.0.1:0"
    config = load_cli_config(
        None,
        data_dir,
        receiver={"grpc": {"listen": loopback}, "http": {"listen": loopback}},
        api={"listen": loopback},
        lake={"flush_interval": "500ms"},
        budgets=DEMO_BUDGETS,
    )
    started = time.perf_counter()
    with otelcost_errors():
        with BackgroundServer(config) as running:
            server = running.server
            assert server.grpc is not None and server.http is not None and server.api_port is not None
            click.echo(f"otelcost is listening: {server.describe()}", err=True)
            now = datetime.now(UTC)
            with exporting_providers(
                f"127.0.0.1:{server.grpc.port}", f"http://127.0.0.1:{server.http.port}"
            ) as providers:
                history = history_days(now.date())
                sent = simulate(providers, calls=calls, seed=seed, history_days=history, now=now)
                spike_day = (now - timedelta(days=SPIKE_DAYS_AGO)).date()
                sent += plant_spike(providers, spike_day)
                runaway = plant_runaway(providers, datetime.now(UTC))
                sent += RUNAWAY_CALLS
            elapsed = time.perf_counter() - started
            click.echo(
                f"sent {sent} LLM calls of the last {history} days and today through OTLP/gRPC and "
                f"OTLP/HTTP in {elapsed:.1f}s: planted a spike of the data team's weekly-digest on "
                f"{spike_day.isoformat()} and a runaway code-review agent loop now (trace {runaway})",
                err=True,
            )
            _show_gateway(f"http://127.0.0.1:{server.api_port}")
        click.echo("\nSpend by team:")
        emit(run_query(config.lake_dir, SPEND_BY_TEAM), "table")
        click.echo("\nSpend by model:")
        emit(run_query(config.lake_dir, SPEND_BY_MODEL), "table")
        _show_anomalies(config)
        page = _write_monthly(config, data_dir)
    click.echo(f"\nThe monthly report: {page.resolve().as_uri()}")
    click.echo(
        f"The lake is in {config.lake_dir}. Ask it anything, for example:\n"
        f'  otelcost sql --data-dir {data_dir} "SELECT feature, sum(cost_usd) FROM llm_calls GROUP BY 1"\n'
        f"  otelcost report showback --data-dir {data_dir} --by team,feature",
        err=True,
    )


COMMANDS: list[click.Command] = [demo]
