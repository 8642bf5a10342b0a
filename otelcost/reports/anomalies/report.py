"""anomalies: what spent out of the ordinary in a period, each finding with the query to see it.

The report judges the days of its period (cut at now) against what came before them, with six
detectors (their SQL is in ``detectors.py``; the thresholds are ``reports.anomalies``,
``AnomaliesConfig``). Spend is list price, ``cost_usd``.

``spike``
    A day a scope (every value of each of ``dimensions``: team, feature, model, tenant, service)
    spent far above its robust baseline: the median of the same kind of day (a weekday against
    the weekdays, a Saturday or Sunday against the weekend days) of the ``baseline_days`` before
    it. Far above: ``min_ratio`` times the median, and ``threshold`` times the spread above it.
    The spread is the MAD (median absolute deviation), but never less than ``mad_floor`` times
    the median, nor than the noise the scope's calls make by chance (the square root of the mean
    daily sum of squared call costs: a few expensive calls more or less are not an anomaly).
``week_over_week``
    An ISO week (Monday to Sunday) that spent ``week_over_week_ratio`` times the week before,
    and ``threshold`` times the chance noise of the two weeks more.
``runaway_loop``
    A trace or session whose busiest minute had far more calls (or tokens) than the traces or
    sessions of its workflow usually have in theirs.
``model_switch``
    A feature whose cost per call stepped up while its calls moved to other models.
``context_growth``
    A feature whose sessions send more and more input tokens per call as they go on.
``non_production``
    A day on which a non-production environment made a large share of all spend.

Consecutive flagged days (or weeks) of the same scope are one finding, from its first day. One
incident seen from several scopes (a team's spike is also its feature's, its service's and its
model's; a looping trace is also its session's) is one finding: candidates are ranked (the
first of ``dimensions`` first, so a team's spike is named by the team; traces before sessions;
then the largest), and one that shares at least half its size (spend on the same calls) with a
candidate ranked before it is named in that one's ``also`` instead of being a finding.

Sections: ``findings`` (largest ``size_usd`` first) and ``scopes_checked`` (what each detector
judged, so an empty report can be told from one that looked at nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

import pyarrow as pa

from otelcost.money import format_amount
from otelcost.reports.anomalies import detectors, evidence
from otelcost.reports.anomalies.rollup import Rollup, read_rollup
from otelcost.reports.base import ReportContext, ReportRequest, ReportResult, register
from otelcost.reports.config import AnomaliesConfig
from otelcost.reports.dimensions import calls_where
from otelcost.reports.period import Period
from otelcost.schema import MONEY_TYPE

__all__ = ["FINDINGS_SCHEMA", "KINDS", "SUMMARY_SCHEMA", "anomalies", "fold_incidents", "judged_weeks"]

KINDS: Final = ("spike", "week_over_week", "runaway_loop", "model_switch", "context_growth", "non_production")

SAME_INCIDENT_SHARE: Final = Decimal("0.5")
"""A candidate sharing at least this share of its size with a larger one is the same incident."""

MAX_ALSO: Final = 20
"""Scopes (or sessions) named in ``also`` and in an evidence query at most."""

_RUNAWAY_SCOPES: Final = ("trace_id", "session_id")

FINDINGS_SCHEMA: Final = pa.schema(
    [
        pa.field("kind", pa.string(), nullable=False),
        pa.field("scope_kind", pa.string(), nullable=False),
        pa.field("scope_value", pa.string()),
        pa.field("start", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("end", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("size_usd", MONEY_TYPE, nullable=False),
        pa.field("ratio", pa.float64()),
        pa.field("spend_usd", MONEY_TYPE, nullable=False),
        pa.field("baseline_usd", MONEY_TYPE),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("also", pa.list_(pa.string()), nullable=False),
        pa.field("evidence", pa.string(), nullable=False),
    ]
)
"""One row per finding (docs/reports.md, "anomalies", has the meaning of each column)."""

SUMMARY_SCHEMA: Final = pa.schema(
    [
        pa.field("kind", pa.string(), nullable=False),
        pa.field("scopes_checked", pa.int64(), nullable=False),
        pa.field("units_checked", pa.int64(), nullable=False),
        pa.field("unit", pa.string(), nullable=False),
        pa.field("candidates", pa.int64(), nullable=False),
        pa.field("findings", pa.int64(), nullable=False),
    ]
)


@dataclass(slots=True)
class Candidate:
    """One flagged run of one scope, before incidents are folded together."""

    kind: str
    scope_kind: str
    scope_value: str | None
    start: datetime
    end: datetime
    size: Decimal
    ratio: float | None
    spend: Decimal
    baseline: Decimal | None
    detail: str
    evidence: str
    rank: tuple[Any, ...] = ()
    run_id: int = 0
    shared: dict[int, Decimal] = field(default_factory=dict)
    also: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.scope_kind}={_shown(self.scope_value)}"


@dataclass(frozen=True, slots=True)
class Checked:
    """What one detector judged and found."""

    kind: str
    scopes: int
    units: int
    unit: str
    candidates: list[Candidate]


@dataclass(frozen=True, slots=True)
class Window:
    """The days judged and the report's filters: every day the period (cut at now) touches, whole
    from midnight (a ``--since 7d`` judges seven days and the part of today), up to its end."""

    period: Period
    filters: tuple[tuple[str, str], ...]

    @property
    def first_day(self) -> date:
        return self.period.days[0]

    @property
    def last_day(self) -> date:
        return self.period.days[-1]

    def read(self, since: datetime) -> tuple[str, dict[str, object]]:
        """WHERE and params for the calls from ``since`` to the end of the judged days."""
        return calls_where(Period(min(since, self.period.start), self.period.end, "read"), self.filters)

    def before(self, days: int) -> datetime:
        """Midnight ``days`` days before the first judged day."""
        return _midnight(self.first_day - timedelta(days=days))

    def end_of(self, last: date) -> datetime:
        """The end of a run of days ending on ``last``: the next midnight, or the period's end."""
        return min(_midnight(last + timedelta(days=1)), self.period.end)

    @property
    def judged(self) -> dict[str, object]:
        """``$judge_first`` and ``$judge_last`` of the detectors' SQL."""
        return {"judge_first": self.first_day, "judge_last": self.last_day}


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _shown(value: str | None) -> str:
    return "(none)" if value is None else value


def _usd(amount: Decimal) -> str:
    quantum = Decimal("0.01") if abs(amount) >= 1 else Decimal("0.000001")
    return "$" + format_amount(amount.quantize(quantum))


def _times(ratio: float | None) -> str:
    return "" if ratio is None else f" (x{ratio:.1f})"


def _ratio(numerator: Decimal | int | float, denominator: Decimal | int | float | None) -> float | None:
    if denominator is None or denominator == 0:
        return None
    return float(numerator) / float(denominator)


def _rows(table: pa.Table, key: str) -> tuple[int, int, list[dict[str, Any]]]:
    """(scopes_checked, units_checked, candidate rows) of a detector's answer; ``key`` is a
    column that is NULL only on the row that says there is no candidate."""
    rows = table.to_pylist()
    first = rows[0]
    return int(first["scopes_checked"]), int(first["units_checked"]), [r for r in rows if r[key] is not None]


def _shared(row: dict[str, Any]) -> dict[int, Decimal]:
    ids, amounts = row.get("shared_ids") or [], row.get("shared_usd") or []
    return dict(zip(ids, amounts, strict=True))


def _shared_of_scopes(
    context: ReportContext,
    window: Window,
    dimensions: Sequence[str],
    runs: Sequence[tuple[int, int, Any, date, date]],
) -> dict[int, dict[int, Decimal]]:
    """What each spike (or week-over-week) candidate ``(run_id, dim, value, first_day, last_day)``
    shares with the others, read only over the candidates' days, and only when there are two."""
    if len(runs) < 2:
        return {}
    first, last = min(r[3] for r in runs), max(r[4] for r in runs)
    span = Period(_midnight(first), window.end_of(last), "shared")
    where, params = calls_where(span, window.filters)
    params |= {
        "run_id": [r[0] for r in runs],
        "run_dim": [r[1] for r in runs],
        "run_value": [r[2] for r in runs],
        "run_first": [r[3] for r in runs],
        "run_last": [r[4] for r in runs],
    }
    table = context.query(detectors.shared_scope_sql(dimensions, where), params)
    return {row["run_id"]: _shared(row) for row in table.to_pylist()}


def fold_incidents(candidates: Sequence[Candidate]) -> list[Candidate]:
    """One finding per incident: in ``rank`` order, a candidate that shares at least half its
    size with a kept one (the same calls seen from another scope) joins that one's ``also``."""
    kept: list[Candidate] = []
    for candidate in sorted(candidates, key=lambda c: c.rank):
        limit = candidate.size * SAME_INCIDENT_SHARE
        lead = next((k for k in kept if k.shared.get(candidate.run_id, Decimal(0)) >= limit), None)
        if lead is None:
            kept.append(candidate)
        elif candidate.label not in lead.also and len(lead.also) < MAX_ALSO:
            lead.also.append(candidate.label)
    return kept


def judged_weeks(period: Period, cut: bool) -> list[tuple[datetime, datetime]]:
    """The ISO weeks judged: those whose Sunday is a judged day, and, when the period was cut at
    now, the week to date. Each is ``[Monday, min(next Monday, end of the judged days))``."""
    days = period.days
    mondays = [day - timedelta(days=day.weekday()) for day in days if day.isoweekday() == 7]
    if cut:
        mondays.append(days[-1] - timedelta(days=days[-1].weekday()))
    weeks: list[tuple[datetime, datetime]] = []
    for monday in sorted(set(mondays)):
        start = _midnight(monday)
        weeks.append((start, min(start + timedelta(days=7), period.end)))
    return weeks


# -- the detectors ------------------------------------------------------------------------------


def _spikes(
    context: ReportContext, window: Window, config: AnomaliesConfig, dimensions: Sequence[str], rollup: Rollup
) -> Checked:
    params: dict[str, object] = {
        "since": window.before(config.baseline_days).date(),
        **window.judged,
        "baseline_days": config.baseline_days,
        "min_history": config.min_baseline_days,
        "min_usd": config.min_daily_usd,
        "mad_floor": float(config.mad_floor),
        "min_ratio": config.min_ratio,
        "threshold": float(config.threshold),
    }
    scopes, units, rows = _rows(rollup.query(detectors.spike_sql(), params), "run_id")
    shared = _shared_of_scopes(
        context,
        window,
        dimensions,
        [(r["run_id"], r["dim"], r["value"], r["first_day"], r["last_day"]) for r in rows],
    )
    candidates = []
    for row in rows:
        dimension, value = dimensions[row["dim"]], row["value"]
        first, last, days = row["first_day"], row["last_day"], row["days"]
        ratio = _ratio(row["spend"], row["baseline"])
        if days == 1:
            kind_of_day = "weekend days" if row["weekend"] else "weekdays"
            against = (
                f"on {first.isoformat()}, against a median of {_usd(row['baseline'])} on the {kind_of_day} "
                f"of the {config.baseline_days} days before"
            )
        else:
            against = (
                f"over {days} days from {first.isoformat()}, against {_usd(row['baseline'])} for the "
                "medians of those days (each of the same kind of day before it)"
            )
        if row["score"] is not None:
            against += (
                f"{_times(ratio)}; {'' if days == 1 else 'at most '}{row['score']:.1f} times its usual "
            )
            against += "spread above it"
        else:
            against += _times(ratio)
        detail = f"{dimension} {_shown(value)} spent {_usd(row['spend'])} {against}"
        candidates.append(
            Candidate(
                kind="spike",
                scope_kind=dimension,
                scope_value=value,
                start=_midnight(first),
                end=window.end_of(last),
                size=row["excess"],
                ratio=ratio,
                spend=row["spend"],
                baseline=row["baseline"],
                detail=detail,
                evidence=evidence.daily_evidence(
                    dimension, value, first - timedelta(days=config.baseline_days), last, window.filters
                ),
                rank=(row["dim"], -row["excess"], first, _shown(value)),
                run_id=row["run_id"],
                shared=shared.get(row["run_id"], {}),
            )
        )
    return Checked("spike", scopes, units, "scope-days", candidates)


def _wow_weeks(context: ReportContext, window: Window, cut: bool) -> list[tuple[datetime, datetime]]:
    """The weeks the week-over-week detector judges: :func:`judged_weeks` that the lake holds a
    whole week before."""
    weeks = judged_weeks(window.period, cut)
    if weeks:
        # a week is compared with a whole week before it, not with the part the lake holds
        (history,) = (
            context.query(
                detectors.first_day_sql(),
                {"first": weeks[0][0].date() - timedelta(days=7), "last": window.last_day},
            )
            .column("first_day")
            .to_pylist()
        )
        weeks = [w for w in weeks if history is not None and history <= w[0].date() - timedelta(days=7)]
    return weeks


def _week_over_week(
    context: ReportContext,
    window: Window,
    config: AnomaliesConfig,
    dimensions: Sequence[str],
    *,
    weeks: Sequence[tuple[datetime, datetime]],
    rollup: Rollup,
) -> Checked:
    if not weeks:
        return Checked("week_over_week", 0, 0, "scope-weeks", [])
    before = [end - timedelta(days=7) for _, end in weeks]
    params: dict[str, object] = {
        "since": (weeks[0][0] - timedelta(days=7)).date(),
        "week_no": [start.date().toordinal() // 7 for start, _ in weeks],
        "week_start": [start for start, _ in weeks],
        "week_end": [end for _, end in weeks],
        "week_days": [-(-(end - start) // timedelta(days=1)) for start, end in weeks],
        "week_first": [start.date() for start, _ in weeks],
        "week_last": [(end - timedelta(microseconds=1)).date() for _, end in weeks],
        "prev_first": [start.date() - timedelta(days=7) for start, _ in weeks],
        "prev_last": [end.date() - timedelta(days=1) for end in before],
        # the week to date ends at now, so the week before ends within a day (the rollup's
        # ``early`` calls of that day are the ones before it)
        "prev_partial": [None if end == _midnight(end.date()) else end.date() for end in before],
        "ratio": config.week_over_week_ratio,
        "min_usd": config.min_daily_usd,
        "threshold": float(config.threshold),
    }
    scopes, units, rows = _rows(rollup.query(detectors.week_over_week_sql(), params), "run_id")
    shared = _shared_of_scopes(
        context,
        window,
        dimensions,
        [
            (
                r["run_id"],
                r["dim"],
                r["value"],
                r["first_start"].date(),
                (r["last_end"] - timedelta(microseconds=1)).date(),
            )
            for r in rows
        ],
    )
    candidates = []
    for row in rows:
        dimension, value = dimensions[row["dim"]], row["value"]
        start, end = row["first_start"], row["last_end"]
        ratio = _ratio(row["spend"], row["baseline"])
        weeks_text = "the week" if row["weeks"] == 1 else f"the {row['weeks']} weeks"
        detail = (
            f"{dimension} {_shown(value)} spent {_usd(row['spend'])} in {weeks_text} from "
            f"{start.date().isoformat()}, against {_usd(row['baseline'])} the week before{_times(ratio)}"
            + ("" if row["score"] is None else f"; {row['score']:.1f} times its usual spread above it")
        )
        candidates.append(
            Candidate(
                kind="week_over_week",
                scope_kind=dimension,
                scope_value=value,
                start=start,
                end=end,
                size=row["excess"],
                ratio=ratio,
                spend=row["spend"],
                baseline=row["baseline"],
                detail=detail,
                evidence=evidence.daily_evidence(
                    dimension,
                    value,
                    start.date() - timedelta(days=7),
                    (end - timedelta(microseconds=1)).date(),
                    window.filters,
                ),
                rank=(row["dim"], -row["excess"], start, _shown(value)),
                run_id=row["run_id"],
                shared=shared.get(row["run_id"], {}),
            )
        )
    return Checked("week_over_week", scopes, units, "scope-weeks", candidates)


def _runaways(context: ReportContext, window: Window, config: AnomaliesConfig, rollup: Rollup) -> Checked:
    floors: dict[str, object] = {
        "min_calls": config.runaway_min_calls_per_minute,
        "min_tokens": config.runaway_min_tokens_per_minute,
    }
    judged_where, judged_params = window.read(window.before(0))
    (first,) = context.query(detectors.runaway_minutes_sql(judged_where), judged_params | floors).to_pylist()
    units = int(first["units_checked"])
    workflows_checked = rollup.query(
        "SELECT count(DISTINCT workflow) AS workflows FROM workflow_days WHERE day >= $since",
        {"since": window.first_day},
    )
    (scopes,) = workflows_checked.column("workflows").to_pylist()
    unit = "session (else trace) minutes"
    if not first["warm"]:
        return Checked("runaway_loop", scopes, units, unit, [])
    workflows = context.query(
        detectors.runaway_workflows_sql(judged_where), judged_params | {"warm": first["warm"]}
    )
    where, params = window.read(window.before(config.baseline_days))
    params |= floors | {
        **window.judged,
        "baseline_days": config.baseline_days,
        "factor": config.runaway_factor,
        "min_usd": config.min_daily_usd,
        "workflows": workflows.column("workflow").to_pylist(),
    }
    _, _, rows = _rows(context.query(detectors.runaway_sql(where), params), "run_id")
    candidates = []
    for row in rows:
        column = _RUNAWAY_SCOPES[row["dim"]]
        ratios = [
            r
            for r in (
                _ratio(row["peak_calls"], row["norm_calls"]),
                _ratio(row["peak_tokens"], row["norm_tokens"]),
            )
            if r is not None
        ]
        ratio = max(ratios) if ratios else None
        norm = (
            f"its workflow {row['workflow'] or '(none)'} peaks at {row['norm_calls']} calls and "
            f"{row['norm_tokens']} tokens a minute"
            if row["norm_calls"] is not None
            else f"no norm yet for workflow {row['workflow'] or '(none)'}: over the floors"
        )
        start, end = row["first_minute"], row["last_end"]
        detail = (
            f"{'trace' if row['dim'] == 0 else 'session'} made {row['hot_calls']} calls in "
            f"{row['hot_minutes']} minute(s) from {start.isoformat()}, at most {row['peak_calls']} calls and "
            f"{row['peak_tokens']} tokens a minute; {norm}{_times(ratio)}"
        )
        candidates.append(
            Candidate(
                kind="runaway_loop",
                scope_kind=column,
                scope_value=row["value"],
                start=start,
                end=end,
                size=row["spend"],
                ratio=ratio,
                spend=row["spend"],
                baseline=None,
                detail=detail,
                evidence=evidence.runaway_evidence(
                    column,
                    row["value"],
                    start.date(),
                    (end - timedelta(microseconds=1)).date(),
                    window.filters,
                ),
                rank=(row["dim"], -row["spend"], start, row["value"]),
                run_id=row["run_id"],
                shared=_shared(row),
            )
        )
    return Checked("runaway_loop", scopes, units, unit, candidates)


def _model_switches(window: Window, config: AnomaliesConfig, rollup: Rollup) -> Checked:
    params: dict[str, object] = {
        "since": window.before(config.baseline_days).date(),
        **window.judged,
        "baseline_days": config.baseline_days,
        "min_history": config.min_baseline_days,
        "min_usd": config.min_daily_usd,
        "ratio": config.model_switch_ratio,
        "min_shift": float(config.model_switch_min_shift),
    }
    scopes, units, rows = _rows(rollup.query(detectors.model_switch_sql(), params), "first_day")
    candidates = []
    for row in rows:
        first, last = row["first_day"], row["last_day"]
        ratio = _ratio(row["spend"], row["baseline"])
        detail = (
            f"feature {row['feature']}: cost per call {_usd(row['baseline_cost_per_call'])} -> "
            f"{_usd(row['cost_per_call'])} from {first.isoformat()}"
            f"{_times(_ratio(row['cost_per_call'], row['baseline_cost_per_call']))}, "
            f"{row['shift']:.0%} of its calls moved ({row['from_model']} -> {row['to_model']}); "
            f"{_usd(row['spend'])} spent over {row['days']} day(s) against {_usd(row['baseline'])} "
            "at the old cost per call"
        )
        candidates.append(
            Candidate(
                kind="model_switch",
                scope_kind="feature",
                scope_value=row["feature"],
                start=_midnight(first),
                end=window.end_of(last),
                size=row["excess"],
                ratio=ratio,
                spend=row["spend"],
                baseline=row["baseline"],
                detail=detail,
                evidence=evidence.model_switch_evidence(
                    row["feature"], first - timedelta(days=config.baseline_days), last, window.filters
                ),
            )
        )
    return Checked("model_switch", scopes, units, "feature-days", candidates)


def _context_growth(context: ReportContext, window: Window, config: AnomaliesConfig) -> Checked:
    where, params = window.read(window.before(0))
    params |= {
        **window.judged,
        "min_calls": config.context_growth_min_calls,
        "ratio": float(config.context_growth_ratio),
    }
    (first,) = context.query(detectors.context_growth_bounds_sql(where), params).to_pylist()
    scopes, units = int(first["scopes_checked"]), int(first["units_checked"])
    if not first["sessions"]:
        return Checked("context_growth", scopes, units, "sessions", [])
    params |= {"min_usd": config.min_daily_usd, "sessions": first["sessions"], "features": first["features"]}
    _, _, rows = _rows(context.query(detectors.context_growth_sql(where), params), "first_ts")
    candidates = []
    for row in rows:
        sessions: list[str] = row["session_ids"]
        shown = sessions[:MAX_ALSO]
        detail = (
            f"{row['sessions']} session(s) of feature {_shown(row['feature'])} grew their input per call "
            f"x{row['growth']:.1f} (median; at most x{row['max_growth']:.1f}) from their first to their "
            f"last third of calls (last thirds of up to {row['max_last_input']:.0f} input tokens a call); "
            f"{_usd(row['excess'])} over what they would have cost at their first calls' cost"
        )
        candidates.append(
            Candidate(
                kind="context_growth",
                scope_kind="feature",
                scope_value=row["feature"],
                start=row["first_ts"],
                end=row["last_end"],
                size=row["excess"],
                ratio=row["growth"],
                spend=row["spend"],
                baseline=row["spend"] - row["excess"],
                detail=detail,
                evidence=evidence.context_growth_evidence(
                    row["feature"], shown, row["first_day"], window.last_day, window.filters
                ),
                also=[f"session_id={s}" for s in shown],
            )
        )
    return Checked("context_growth", scopes, units, "sessions", candidates)


def _non_production(window: Window, config: AnomaliesConfig, rollup: Rollup) -> Checked:
    params: dict[str, object] = {
        "since": window.before(0).date(),
        "production": sorted({name.strip().lower() for name in config.production_environments}),
        "min_usd": config.min_daily_usd,
        "share": float(config.non_production_share),
    }
    scopes, units, rows = _rows(rollup.query(detectors.non_production_sql(), params), "first_day")
    candidates = []
    for row in rows:
        first, last = row["first_day"], row["last_day"]
        share = _ratio(row["spend"], row["total"])
        when = (
            f"on {first.isoformat()}"
            if row["days"] == 1
            else f"over {row['days']} days from {first.isoformat()}"
        )
        detail = (
            f"environment {row['environment']} spent {_usd(row['spend'])} of {_usd(row['total'])} {when}"
            + ("" if share is None else f" ({share:.0%} of all spend)")
        )
        candidates.append(
            Candidate(
                kind="non_production",
                scope_kind="environment",
                scope_value=row["environment"],
                start=_midnight(first),
                end=window.end_of(last),
                size=row["spend"],
                ratio=share,
                spend=row["spend"],
                baseline=None,
                detail=detail,
                evidence=evidence.non_production_evidence(first, last, window.filters),
            )
        )
    return Checked("non_production", scopes, units, "days", candidates)


def _read_rollup(
    context: ReportContext,
    window: Window,
    config: AnomaliesConfig,
    dimensions: Sequence[str],
    weeks: Sequence[tuple[datetime, datetime]],
) -> Rollup:
    """The day-level spend every day detector reads, from the earliest day any of them needs;
    the week to date, when the period was cut at now, is compared with the week before up to
    the same instant, so that week's cut day is split there."""
    since = window.before(config.baseline_days)
    if weeks:
        since = min(since, weeks[0][0] - timedelta(days=7))
    where, params = window.read(since)
    split = window.period.end - timedelta(days=7)
    partial = None if split == _midnight(split.date()) else split.date()
    return read_rollup(context, dimensions, where, params, partial_day=partial, split=split)


# -- the report ---------------------------------------------------------------------------------


def _findings_table(findings: Sequence[Candidate]) -> pa.Table:
    columns: dict[str, Callable[[Candidate], object]] = {
        "kind": lambda c: c.kind,
        "scope_kind": lambda c: c.scope_kind,
        "scope_value": lambda c: c.scope_value,
        "start": lambda c: c.start,
        "end": lambda c: c.end,
        "size_usd": lambda c: c.size,
        "ratio": lambda c: c.ratio,
        "spend_usd": lambda c: c.spend,
        "baseline_usd": lambda c: c.baseline,
        "detail": lambda c: c.detail,
        "also": lambda c: c.also,
        "evidence": lambda c: c.evidence,
    }
    return pa.table(
        {
            name: pa.array([get(c) for c in findings], FINDINGS_SCHEMA.field(name).type)
            for name, get in columns.items()
        },
        schema=FINDINGS_SCHEMA,
    )


@register(
    "anomalies",
    "Spend out of the ordinary: spikes, weekly jumps, runaway loops, model switches, context growth, "
    "non-production spend.",
)
def anomalies(context: ReportContext, request: ReportRequest) -> ReportResult:
    """The findings of every detector over the days of ``request``'s period (sections
    ``findings`` and ``scopes_checked``)."""
    config = context.config.anomalies
    now = context.now()
    asked = request.resolved_period(now)
    period = asked.cut(now)
    window = Window(period, request.filters)
    dimensions = request.by or tuple(config.dimensions)
    weeks = _wow_weeks(context, window, cut=period.end < asked.end)
    with _read_rollup(context, window, config, dimensions, weeks) as rollup:
        checks = [
            _spikes(context, window, config, dimensions, rollup),
            _week_over_week(context, window, config, dimensions, weeks=weeks, rollup=rollup),
            _runaways(context, window, config, rollup),
            _model_switches(window, config, rollup),
            _context_growth(context, window, config),
            _non_production(window, config, rollup),
        ]
    found = {check.kind: fold_incidents(check.candidates) for check in checks}
    findings = sorted(
        (finding for kind in KINDS for finding in found[kind]),
        key=lambda c: (-c.size, c.start, KINDS.index(c.kind), c.scope_kind, _shown(c.scope_value)),
    )
    summary = pa.Table.from_pylist(
        [
            {
                "kind": check.kind,
                "scopes_checked": check.scopes,
                "units_checked": check.units,
                "unit": check.unit,
                "candidates": len(check.candidates),
                "findings": len(found[check.kind]),
            }
            for check in checks
        ],
        schema=SUMMARY_SCHEMA,
    )
    notes = (
        f"judged {period.days[0].isoformat()} to {period.days[-1].isoformat()} against up to "
        f"{config.baseline_days} days before each day; spend is list price (cost_usd)",
        "spikes compare a weekday with the weekdays before it and a weekend day with the weekend days",
    )
    return ReportResult(
        "anomalies", period, {"findings": _findings_table(findings), "scopes_checked": summary}, notes
    )
