"""monthly: the month's LLM spend on one page a finance reader can open anywhere.

``otelcost report monthly --period 2026-11 --format html`` writes one self-contained HTML page
(inline style and SVG charts, no script, nothing fetched: it works offline and as an e-mail
attachment): the headline figures, spend by team as a bar chart, the daily trend, the top movers
against the previous month, the budgets and their projection, the anomalies, the unattributed
share and the cost per business outcome where it is known. ``--format table|json|csv`` prints
the same figures as sections; each section is the data behind one chart or table of the page:

``summary``
    One row: calls, list and effective cost of the month (to date), the previous month cut to
    the same elapsed length with the change, and the unattributed spend (calls with
    ``attribution_status = 'incomplete'``, docs/attribution.md) and its share.
``spend_by_team``
    The showback report by team (calls, cost, share, previous cost, change), teams that spent
    this month; the bar chart.
``daily``
    Calls and cost for every day of the month so far (days without calls are 0); the trend.
``movers``
    The ``--top`` rows of the showback report by ``--by`` (default team and feature) whose
    cost changed most against the previous month, in either direction.
``reconciliation``, ``reconciliation_findings``
    With ``invoice_files`` and ``invoice_provider``: the summary and findings of
    ``otelcost.reconcile`` for the whole month (docs/reconciliation.md); the page's "Invoice
    reconciliation" section.
``budgets``, ``projection``, ``anomalies``, ``unattributed``, ``outcomes``
    Sections of the ``forecast`` (its budgets, and its projection of the month for the total
    and each team), ``anomalies`` (its findings), ``unattributed`` (its services) and
    ``unit-economics`` (its outcomes) reports for the same month and filters, as those reports
    compute them (:data:`COMPOSED`; docs/reports.md describes each). A report that is not
    installed, or cannot cover the month (the forecast of a month not begun), leaves its
    sections out, with a note.

Money is the list price (``cost_usd``) unless a column says ``effective``, except in the
sections of the forecast and unit-economics, which are in the cost those reports are configured
with (``reports.forecast.cost``, ``reports.unit_economics.cost``: effective by default). Every
amount is exact; forecast amounts are estimates rounded to 1e-6 USD.
The month is cut at now: the current month is month-to-date, compared with the same number of
days of the month before (``Period.compared``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from otelcost.errors import ReportError
from otelcost.pricing.catalog import Catalog
from otelcost.pricing.config import PricingConfig
from otelcost.reconcile import reconcile
from otelcost.reports.base import REPORTS, ReportContext, ReportRequest, ReportResult, register, run_report
from otelcost.reports.dimensions import calls_where
from otelcost.reports.html import page, percent_text, table_html
from otelcost.reports.period import Period
from otelcost.reports.svg import bar_chart, change_chart, column_chart, dollars
from otelcost.schema import MONEY_TYPE

__all__ = ["COMPOSED", "DEFAULT_MOVERS_BY", "monthly", "render_monthly"]

DEFAULT_MOVERS_BY: Final = ("team", "feature")
NO_VALUE: Final = "(none)"
NO_TEAM: Final = "(no team)"

COMPOSED: Final[tuple[tuple[str, str, str], ...]] = (
    # (section here, report, its section); each report runs once, for the same month and filters
    ("budgets", "forecast", "budgets"),
    ("projection", "forecast", "projection"),
    ("anomalies", "anomalies", "findings"),
    ("unattributed", "unattributed", "services"),
    ("outcomes", "unit-economics", "outcomes"),
)
"""The sections taken from other reports through :func:`run_report`, when they are registered."""

COMPOSED_BY: Final[dict[str, tuple[str, ...]]] = {"forecast": ("team",)}
"""The ``--by`` a composed report runs with: the forecast projects the total, each team and each
budget (not features: the page has the movers for those)."""

SUMMARY_SQL: Final = """
SELECT count(*) AS calls,
       coalesce(sum(cost_usd), 0)::DECIMAL(38, 12) AS cost_usd,
       coalesce(sum(effective_cost_usd), 0)::DECIMAL(38, 12) AS effective_cost_usd,
       coalesce(sum(cost_usd) FILTER (WHERE attribution_status = 'incomplete'), 0)::DECIMAL(38, 12)
           AS unattributed_cost_usd
FROM llm_calls
WHERE {where}
"""

DAILY_SQL: Final = """
SELECT date AS day,
       count(*) AS calls,
       sum(cost_usd)::DECIMAL(38, 12) AS cost_usd,
       sum(effective_cost_usd)::DECIMAL(38, 12) AS effective_cost_usd
FROM llm_calls
WHERE {where}
GROUP BY date
"""


def _money(values: Sequence[Decimal | None]) -> pa.Array:
    return pa.array(list(values), MONEY_TYPE)


def _ratio(numerator: Decimal, denominator: Decimal) -> float | None:
    # A share or a change ratio is a proportion, not money: DOUBLE, rounded like showback's.
    return None if denominator == 0 else round(float(numerator / denominator), 6)


def _daily(context: ReportContext, period: Period, filters: Sequence[tuple[str, str]]) -> pa.Table:
    where, params = calls_where(period, filters)
    found = {row["day"]: row for row in context.query(DAILY_SQL.format(where=where), params).to_pylist()}
    days: list[date] = period.days
    zero = {"calls": 0, "cost_usd": Decimal(0), "effective_cost_usd": Decimal(0)}
    rows = [found.get(day, zero) for day in days]
    return pa.table(
        {
            "day": pa.array(days, pa.date32()),
            "calls": pa.array([row["calls"] for row in rows], pa.int64()),
            "cost_usd": _money([row["cost_usd"] for row in rows]),
            "effective_cost_usd": _money([row["effective_cost_usd"] for row in rows]),
        }
    )


def _summary(
    context: ReportContext, current: Period, previous: Period, request: ReportRequest, teams: pa.Table
) -> pa.Table:
    where, params = calls_where(current, request.filters)
    (row,) = context.query(SUMMARY_SQL.format(where=where), params).to_pylist()
    # Showback's rows by team are a full outer join of both months, so they hold every call of
    # the previous month too: its total is theirs.
    previous_cost = sum(teams.column("previous_cost_usd").to_pylist(), Decimal(0))
    cost: Decimal = row["cost_usd"]
    return pa.table(
        {
            "calls": pa.array([row["calls"]], pa.int64()),
            "cost_usd": _money([cost]),
            "effective_cost_usd": _money([row["effective_cost_usd"]]),
            "previous_start": pa.array([previous.start], pa.timestamp("us", tz="UTC")),
            "previous_end": pa.array([previous.end], pa.timestamp("us", tz="UTC")),
            "previous_cost_usd": _money([previous_cost]),
            "change_usd": _money([cost - previous_cost]),
            "change_ratio": pa.array([_ratio(cost - previous_cost, previous_cost)], pa.float64()),
            "unattributed_cost_usd": _money([row["unattributed_cost_usd"]]),
            "unattributed_share": pa.array([_ratio(row["unattributed_cost_usd"], cost)], pa.float64()),
        }
    )


def _reconciliation(
    context: ReportContext, month: Period, request: ReportRequest, notes: list[str]
) -> dict[str, pa.Table]:
    if request.invoice_provider is None:
        raise ReportError("invoice_files need invoice_provider: openai, anthropic, bedrock or azure-openai")
    result = reconcile(
        context.lake_dir,
        request.invoice_provider,
        request.invoice_files,
        month.start,
        month.end,
        catalog=Catalog.load(context.pricing or PricingConfig()),
        timeout=context.timeout,
    )
    notes.extend(f"reconciliation: {note}" for note in result.notes)
    return {
        "reconciliation": result.sections["summary"],
        "reconciliation_findings": result.sections["findings"],
    }


def _movers(spend: pa.Table, by: Sequence[str], top: int) -> pa.Table:
    columns = [*by, "previous_cost_usd", "cost_usd", "change_usd", "change_ratio"]
    rows = [row for row in spend.select(columns).to_pylist() if row["change_usd"] != 0]
    rows.sort(key=lambda row: (-abs(row["change_usd"]), [str(row[d]) for d in by]))
    return pa.Table.from_pylist(rows[:top], schema=spend.select(columns).schema)


def _composed(context: ReportContext, request: ReportRequest, notes: list[str]) -> dict[str, pa.Table]:
    results: dict[str, ReportResult | None] = {}
    sections: dict[str, pa.Table] = {}
    for here, report, section in COMPOSED:
        if report not in results:
            results[report] = _run_composed(report, context, request, notes)
        result = results[report]
        if result is None:
            continue
        table = result.sections.get(section)
        if table is None:
            notes.append(f"{here}: the {report} report has no section {section!r}")
            continue
        if here == "projection":  # the month's rows; the forecast also projects the quarter
            table = table.filter(pc.equal(table.column("period"), "month"))
        sections[here] = table
    if request.filters and "unattributed" in sections:
        notes.append("unattributed: the services listed are not filtered (the share in the summary is)")
    return sections


def _run_composed(
    report: str, context: ReportContext, request: ReportRequest, notes: list[str]
) -> ReportResult | None:
    if report not in REPORTS:
        notes.append(f"the {report} report is not installed: its sections are left out")
        return None
    update: dict[str, object] = {"sections": tuple(s for _, r, s in COMPOSED if r == report)}
    if report in COMPOSED_BY:
        update["by"] = COMPOSED_BY[report]
    try:
        # Only the sections the page shows: a report may skip the work of the others.
        result = run_report(report, context, request.model_copy(update=update))
    except ReportError as exc:  # a month the report cannot cover (the forecast of a future month)
        notes.append(f"{report}: {exc}")
        return None
    notes.extend(f"{report}: {note}" for note in result.notes)
    return result


# -- the page -----------------------------------------------------------------------------------------


def _label(values: Sequence[object], missing: str = NO_VALUE) -> str:
    return " / ".join(missing if v is None else str(v) for v in values)


def _month_projection(projection: pa.Table | None) -> dict[str, object] | None:
    """The forecast's row for the whole month, while the month is under way."""
    if projection is None:
        return None
    for row in projection.to_pylist():
        if row["scope_kind"] == "total" and row["days_remaining"]:
            return dict(row)
    return None


def _figures(summary: dict[str, object], projection: dict[str, object] | None) -> str:
    cost = summary["cost_usd"]
    change = summary["change_usd"]
    ratio = summary["change_ratio"]
    assert isinstance(cost, Decimal) and isinstance(change, Decimal)
    change_text = dollars(change, signed=True)
    if isinstance(ratio, float):
        change_text += f" ({ratio * 100:+.1f}%)"
    share = summary["unattributed_share"]
    items = [
        ("Spend (list price)", dollars(cost)),
        ("Effective spend", dollars(summary["effective_cost_usd"])),  # type: ignore[arg-type]
        ("Change vs previous month", change_text),
        ("Unattributed share", percent_text(share if isinstance(share, float) else 0.0)),
        ("LLM calls", f"{summary['calls']:,}"),
    ]
    if projection is not None:
        projected = dollars(projection["projected"])  # type: ignore[arg-type]
        low, high = projection["low"], projection["high"]
        if isinstance(low, Decimal) and isinstance(high, Decimal):
            projected += f" ({dollars(low)} to {dollars(high)})"
        items.insert(1, ("Projected month end (effective)", projected))
    cells = "".join(f"<div><dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd></div>" for k, v in items)
    return f'<dl class="figures">{cells}</dl>'


HEADINGS: Final = {
    "team": "Team",
    "calls": "Calls",
    "cost_usd": "Cost (USD)",
    "effective_cost_usd": "Effective cost (USD)",
    "share": "Share",
    "previous_cost_usd": "Previous month (USD)",
    "change_usd": "Change (USD)",
    "change_ratio": "Change",
    "day": "Day",
    "scope_kind": "Kind",
    "scope": "Scope",
    "actual_to_date": "Spent so far (USD)",
    "projected": "Projected (USD)",
    "low": "Low (USD)",
    "high": "High (USD)",
    "run_rate": "Run rate (USD)",
    "days_remaining": "Days left",
    "budget": "Budget",
    "window_label": "Window",
    "limit": "Limit",
    "spent": "Spent",
    "projected_share": "Projected share of limit",
    "runs_out_on": "Runs out on",
    "status": "Status",
}
"""Column name -> the heading the page prints (the sections keep the column names)."""


def _present(table: pa.Table, columns: Sequence[str], missing: str = NO_VALUE) -> pa.Table:
    """``columns`` of ``table`` under their headings, an empty dimension value shown as ``missing``."""
    chosen = table.select(list(columns))
    arrays = [
        pc.fill_null(column, missing) if pa.types.is_string(column.type) else column
        for column in chosen.columns
    ]
    names = [HEADINGS.get(name, name.replace("_", " ")) for name in columns]
    return pa.table(arrays, names=names)


def _section(title: str, body: str, key: str) -> str:
    return f'<section id="{key}"><h2>{html.escape(title)}</h2>{body}</section>'


def _empty(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _teams_html(teams: pa.Table) -> str:
    if teams.num_rows == 0:
        return _empty("No spend in this month.")
    bars = [(_label([row["team"]], NO_TEAM), row["cost_usd"]) for row in teams.to_pylist()]
    chart = bar_chart(
        bars,
        key="spend-by-team-chart",
        title="Spend by team",
        description="List-price spend of each team this month, largest first.",
    )
    shown = _present(
        teams, ["team", "calls", "cost_usd", "effective_cost_usd", "share", "previous_cost_usd"], NO_TEAM
    )
    return chart + table_html(shown, percent={HEADINGS["share"]})


def _daily_html(daily: pa.Table) -> str:
    days = daily.column("day").to_pylist()
    costs = daily.column("cost_usd").to_pylist()
    chart = column_chart(
        [(day.isoformat(), cost) for day, cost in zip(days, costs, strict=True)],
        key="daily-spend-chart",
        title="Daily spend",
        description="List-price spend of each day of the month, in order.",
        ticks=[str(day.day) for day in days],
        tick_every=1 if len(days) <= 31 else 7,
    )
    figures = table_html(_present(daily, daily.column_names))
    return chart + f"<details><summary>Daily figures</summary>{figures}</details>"


def _movers_html(movers: pa.Table) -> str:
    if movers.num_rows == 0:
        return _empty("No change against the previous month.")
    keys = [name for name in movers.column_names if name not in _MOVER_FIGURES]
    rows = movers.to_pylist()
    chart = change_chart(
        [(_label([row[k] for k in keys]), row["change_usd"]) for row in rows],
        key="movers-chart",
        title="Top movers",
        description=f"Largest changes of spend by {', '.join(keys)} against the previous month.",
    )
    return chart + table_html(_present(movers, movers.column_names), percent={HEADINGS["change_ratio"]})


_MOVER_FIGURES: Final = frozenset({"previous_cost_usd", "cost_usd", "change_usd", "change_ratio"})


def _unattributed_html(summary: dict[str, object], services: pa.Table | None) -> str:
    share = summary["unattributed_share"]
    amount = summary["unattributed_cost_usd"]
    assert isinstance(amount, Decimal)
    text = (
        f"{dollars(amount)} of {dollars(summary['cost_usd'])} "  # type: ignore[arg-type]
        f"({percent_text(share if isinstance(share, float) else 0.0)}) came from calls missing a "
        "required attribution dimension."
    )
    parts = [f"<p>{html.escape(text)}</p>"]
    if services is not None and services.num_rows:
        parts.append(table_html(services))
    return "".join(parts)


def _reconciliation_html(sections: dict[str, pa.Table]) -> str:
    summary = sections["reconciliation"].to_pylist()[0]
    share = summary["explained_share"]
    if summary["basis"] == "usd":
        text = (
            f"{dollars(summary['explained_usd'])} of {dollars(summary['billed_usd'])} billed by "
            f"{summary['provider']} is explained by the lake's calls "
            f"({percent_text(share if isinstance(share, float) else 0.0)}); unexplained "
            f"{dollars(summary['unexplained_usd'])}, "
            f"over-attributed {dollars(summary['over_attributed_usd'])}."
        )
    else:
        text = f"{summary['explained_tokens']:,} of {summary['billed_tokens']:,} billed tokens are explained."
    findings = sections["reconciliation_findings"]
    columns = ["kind", "cause", "model", "token_class", "first_day", "last_day", "usd", "likely_cause"]
    body = table_html(findings.select(columns), css="wrap-last") if findings.num_rows else ""
    return f"<p>{html.escape(text)}</p>{body}"


def _budgets_html(budgets: pa.Table | None, projection: pa.Table | None) -> str:
    parts = []
    if budgets is not None and budgets.num_rows:
        columns = ["budget", "scope", "window_label", "metric", "limit", "spent", "projected", "low", "high"]
        columns += ["projected_share", "runs_out_on", "status"]
        shown = _present(budgets, [c for c in columns if c in budgets.column_names])
        parts.append(table_html(shown, percent={HEADINGS["projected_share"]}))
    else:
        parts.append(_empty("No month or quarter budget to project."))
    if projection is not None and projection.num_rows:
        columns = ["scope_kind", "scope", "actual_to_date", "projected", "low", "high", "run_rate"]
        columns.append("days_remaining")
        # The budgets' own rows are the table above; "total" has no scope value to show.
        shown = projection.filter(pc.not_equal(projection.column("scope_kind"), "budget"))
        is_total = pc.equal(shown.column("scope_kind"), "total")
        scope = pc.if_else(is_total, pa.scalar("all calls"), pc.fill_null(shown.column("scope"), NO_VALUE))
        shown = shown.set_column(shown.schema.get_field_index("scope"), "scope", scope)
        parts.append("<h3>Projected month end (effective cost)</h3>")
        parts.append(table_html(_present(shown, [c for c in columns if c in shown.column_names])))
    return "".join(parts)


def _anomalies_html(findings: pa.Table) -> str:
    if findings.num_rows == 0:
        return _empty("No anomalies found this month.")
    needed = {"kind", "scope_kind", "scope_value", "start", "size_usd", "detail"}
    if not needed <= set(findings.column_names):  # a report of another shape: show it as it is
        return table_html(findings)
    rows = findings.to_pylist()
    shown = pa.table(
        {
            "Kind": [row["kind"].replace("_", " ") for row in rows],
            "Scope": [f"{row['scope_kind']}={_label([row['scope_value']])}" for row in rows],
            "From": [row["start"].date().isoformat() for row in rows],
            "Size (USD)": pa.array([row["size_usd"] for row in rows], MONEY_TYPE),
            "What happened": [row["detail"] for row in rows],
        }
    )
    return table_html(shown, css="wrap-last")  # only the long description wraps


def render_monthly(result: ReportResult) -> str:
    """The monthly page of ``result`` (a result of :func:`monthly`): figures, charts, tables."""
    sections = result.sections
    summary = sections["summary"].to_pylist()[0]
    period = result.period
    last_day = (period.end - timedelta(microseconds=1)).date()
    previous_end = summary["previous_end"] - timedelta(microseconds=1)
    subtitle = (
        f"{period.start.date().isoformat()} to {last_day.isoformat()} (UTC), compared with "
        f"{summary['previous_start'].date().isoformat()} to {previous_end.date().isoformat()}. "
        "Amounts in USD at list price unless marked effective."
    )
    parts = [_figures(summary, _month_projection(sections.get("projection")))]
    parts.append(_section("Spend by team", _teams_html(sections["spend_by_team"]), "spend-by-team"))
    parts.append(_section("Daily spend", _daily_html(sections["daily"]), "daily"))
    parts.append(_section("Top movers", _movers_html(sections["movers"]), "movers"))
    if "budgets" in sections or "projection" in sections:
        body = _budgets_html(sections.get("budgets"), sections.get("projection"))
        parts.append(_section("Budgets and projection", body, "budgets"))
    if "anomalies" in sections:
        parts.append(_section("Anomalies", _anomalies_html(sections["anomalies"]), "anomalies"))
    parts.append(
        _section(
            "Unattributed spend", _unattributed_html(summary, sections.get("unattributed")), "unattributed"
        )
    )
    if "reconciliation" in sections:
        parts.append(_section("Invoice reconciliation", _reconciliation_html(sections), "reconciliation"))
    if "outcomes" in sections and sections["outcomes"].num_rows:  # "where known": else no section
        parts.append(_section("Cost per outcome", table_html(sections["outcomes"]), "outcomes"))
    if result.notes:
        notes = "".join(f"<li>{html.escape(note)}</li>" for note in result.notes)
        parts.append(_section("Notes", f'<ul class="note">{notes}</ul>', "notes"))
    return page(f"LLM spend {period.label}", subtitle, "".join(parts))


@register(
    "monthly",
    "The month on one page: spend by team, daily trend, movers, budgets, anomalies, unattributed share.",
    html=render_monthly,
)
def monthly(context: ReportContext, request: ReportRequest) -> ReportResult:
    """The monthly sections of ``request`` (see the module docstring); ``--format html`` is the page."""
    now = context.now()
    month = request.resolved_period(now)
    if month.unit != "month":
        raise ReportError(
            f"the monthly report covers one calendar month, such as 2026-11; got {month.label!r}"
        )
    current, previous = month.compared(now)
    scoped = ReportRequest(
        period=month.label,
        filters=request.filters,
        top=request.top,
        outcomes_file=request.outcomes_file,
    )
    teams = run_report("showback", context, scoped.model_copy(update={"by": ("team",)})).table
    by = request.by or DEFAULT_MOVERS_BY
    movers = run_report("showback", context, scoped.model_copy(update={"by": by})).table
    notes = [
        f"compared with {previous.start.date().isoformat()} to {previous.end.isoformat()}"
        + (" (the previous month, cut to the same elapsed length)" if current.end < month.end else "")
    ]
    sections: dict[str, pa.Table] = {
        "summary": _summary(context, current, previous, request, teams),
        "spend_by_team": teams.filter(pc.greater(teams.column("cost_usd"), 0)),
        "daily": _daily(context, current, request.filters),
        "movers": _movers(movers, by, request.top),
    }
    sections |= _composed(context, scoped, notes)
    if request.invoice_files:
        sections |= _reconciliation(context, month, request, notes)
    return ReportResult("monthly", current, sections, tuple(notes))
