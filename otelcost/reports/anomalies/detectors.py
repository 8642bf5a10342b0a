"""The SQL of the anomaly detectors: one query per kind of finding, all of it run in DuckDB.

Each function returns the text of one statement over ``llm_calls``. The text holds only fixed
SQL and the expressions of whitelisted dimensions (``dimensions.DIMENSIONS``); every value (the
days, the thresholds, the filters) is a bound ``$parameter``: those of the WHERE fragment
(``dimensions.calls_where`` over the days judged and the history before them), and the ones its
docstring names. ``$judge_first``/``$judge_last`` are the first and last day judged (the
report's period, cut at now); ``$baseline_days``, ``$min_history`` and ``$min_usd`` are
``baseline_days``, ``min_baseline_days`` and ``min_daily_usd`` of ``AnomaliesConfig``.

A detector that looks at several scopes of the same calls (a team and its feature, a trace and
its session) answers, for every candidate, how much of its spend it shares with each other
candidate (``shared_ids``, ``shared_usd``): the report folds a candidate into a larger one when
they are the same calls, so one incident is one finding. Every query returns at least one row:
the counts of what it judged (``scopes_checked``, ``units_checked``), with the candidate columns
NULL when there is none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from otelcost.reports.dimensions import DIMENSIONS
from otelcost.reports.sql import money_mean

__all__ = [
    "MIN_NORM_FLOWS",
    "context_growth_bounds_sql",
    "context_growth_sql",
    "first_day_sql",
    "model_switch_sql",
    "non_production_sql",
    "runaway_minutes_sql",
    "runaway_sql",
    "runaway_workflows_sql",
    "shared_scope_sql",
    "spike_sql",
    "week_over_week_sql",
]

MIN_NORM_FLOWS: Final = 5
"""Traces (or sessions) of a workflow in the baseline before its norm is trusted; with fewer,
the runaway floors alone decide (the live detector does the same)."""


def _dimension_columns(dimensions: Sequence[str]) -> str:
    for name in dimensions:
        if name not in DIMENSIONS:
            raise ValueError(f"unknown dimension {name!r}")
    return "".join(f", {DIMENSIONS[name]} AS dim_{i}" for i, name in enumerate(dimensions))


def _scope_daily(early: bool = False) -> str:
    """CTEs ``daily`` (spend and sum of squared call costs per watched dimension value and day
    since ``$since``, from the rollup's ``scope_days``; with ``early``, each day also split at
    the rollup's ``early``) and ``spent`` (the same with one id per dimension value, from
    ``scopes``). Dimensions are referred to by position (``dim``)."""
    key = "day, early" if early else "day"
    return f"""daily AS MATERIALIZED (
    SELECT dim, value, {key}, sum(spend) AS spend, sum(spend_sq) AS spend_sq
    FROM scope_days WHERE day >= $since
    GROUP BY ALL
),
scopes AS MATERIALIZED (
    SELECT row_number() OVER (ORDER BY dim, value) AS scope_id, dim, value
    FROM (SELECT DISTINCT dim, value FROM daily)
),
spent AS (
    SELECT p.scope_id, d.* EXCLUDE (dim, value)
    FROM daily d JOIN scopes p ON p.dim = d.dim AND p.value IS NOT DISTINCT FROM d.value
)"""


def shared_scope_sql(dimensions: Sequence[str], where: str) -> str:
    """How much each candidate of ``spike_sql`` or ``week_over_week_sql`` shares with each other
    one: the spend of the calls both see (a team's spike is also its feature's).

    The candidates are the parallel lists ``$run_id``, ``$run_dim``, ``$run_value``,
    ``$run_first``, ``$run_last`` (their days, inclusive); ``where`` should read only those days.
    A call belongs to a candidate when it has the candidate's value of its dimension on one of its
    days, so calls alike in their day and in every watched dimension are summed once into a
    cell before the candidates' cells are matched. Returns ``run_id``, ``shared_ids`` and
    ``shared_usd`` for the candidates that share anything."""
    columns = _dimension_columns(dimensions)
    keys = ", ".join(f"dim_{i}" for i in range(len(dimensions)))
    members = "\n    UNION ALL\n    ".join(
        f"SELECT r.run_id, c.cell, c.cost_usd FROM cells c JOIN runs r ON r.dim = {i} "
        f"AND r.value IS NOT DISTINCT FROM c.dim_{i} AND c.day BETWEEN r.first_day AND r.last_day"
        for i in range(len(dimensions))
    )
    return f"""
WITH runs AS MATERIALIZED (
    SELECT unnest($run_id) AS run_id, unnest($run_dim) AS dim, unnest($run_value) AS value,
           unnest($run_first) AS first_day, unnest($run_last) AS last_day
),
cells AS MATERIALIZED (
    SELECT row_number() OVER () AS cell, *
    FROM (
        SELECT day, {keys}, sum(cost_usd) AS cost_usd
        FROM (SELECT date AS day, cost_usd{columns} FROM llm_calls WHERE {where})
        GROUP BY ALL
    )
),
members AS (
    {members}
)
SELECT run_id, list(other ORDER BY other) AS shared_ids, list(usd ORDER BY other) AS shared_usd
FROM (
    SELECT a.run_id, b.run_id AS other, sum(a.cost_usd) AS usd
    FROM members a JOIN members b ON b.cell = a.cell AND b.run_id <> a.run_id
    GROUP BY ALL
)
GROUP BY run_id
ORDER BY run_id
"""


def spike_sql() -> str:
    """Days a scope spent far above its robust baseline (kind ``spike``), over the rollup.

    Daily spend of every value of every dimension, 0 on the days with traffic since the scope
    first spent. The baseline of a day is the median of the same kind of day (weekday with
    weekdays, weekend with weekend days) among the ``$baseline_days`` before it (``quantile_disc``:
    the lower middle value, an actual day's spend, exact). Its spread is the MAD (``mad()``: the
    median of the absolute deviations from the median), but at least ``$mad_floor`` times the
    median and at least the chance noise of the scope's calls: the square root of the mean daily
    sum of squared call costs, the standard deviation of a day made of independent calls. A day
    is flagged when the scope has ``$min_history`` days of history, spent at least ``$min_usd``
    and ``$min_ratio`` times the median, and the excess is at least ``$threshold`` spreads.
    Consecutive flagged days of a scope are one candidate (what it shares with the others:
    ``shared_scope_sql``).
    """
    return f"""
WITH {_scope_daily()},
active AS (SELECT DISTINCT day FROM daily),
grid AS (
    SELECT k.scope_id, a.day, isodow(a.day) >= 6 AS weekend,
           coalesce(d.spend, 0)::DECIMAL(38, 12) AS spend, coalesce(d.spend_sq, 0) AS spend_sq
    FROM (SELECT scope_id, min(day) AS since FROM spent GROUP BY scope_id) k
    JOIN active a ON a.day >= k.since
    LEFT JOIN spent d ON d.scope_id = k.scope_id AND d.day = a.day
),
baselines AS (
    SELECT *,
           row_number() OVER (PARTITION BY scope_id ORDER BY day) AS day_no,
           count(*) OVER history AS history_days,
           count(*) OVER same_kind AS samples,
           quantile_disc(spend, 0.5) OVER same_kind AS baseline,
           mad(spend) OVER same_kind AS mad,
           avg(spend_sq) OVER same_kind AS noise_variance
    FROM grid
    WINDOW history AS (PARTITION BY scope_id ORDER BY day
                       RANGE BETWEEN to_days($baseline_days) PRECEDING AND INTERVAL 1 DAY PRECEDING),
           same_kind AS (PARTITION BY scope_id, weekend ORDER BY day
                         RANGE BETWEEN to_days($baseline_days) PRECEDING AND INTERVAL 1 DAY PRECEDING)
),
judged AS (
    SELECT *, greatest(mad::DOUBLE, baseline::DOUBLE * $mad_floor, sqrt(noise_variance)) AS spread
    FROM baselines
    WHERE day BETWEEN $judge_first AND $judge_last AND history_days >= $min_history AND samples > 0
),
flagged AS (
    SELECT *, spend - baseline AS excess,
           CASE WHEN spread > 0 THEN (spend - baseline)::DOUBLE / spread END AS score
    FROM judged
    WHERE spend > baseline
      AND spend >= $min_usd
      AND spend >= baseline * $min_ratio
      AND (spread = 0 OR (spend - baseline)::DOUBLE >= spread * $threshold)
),
islands AS (
    SELECT scope_id, min(day) AS first_day, max(day) AS last_day, count(*) AS days,
           sum(spend) AS spend, sum(baseline) AS baseline, sum(excess) AS excess,
           max(score) AS score, arg_min(weekend, day) AS weekend
    FROM (SELECT *, day_no - row_number() OVER (PARTITION BY scope_id ORDER BY day) AS island FROM flagged)
    GROUP BY scope_id, island
),
runs AS (
    SELECT row_number() OVER (ORDER BY i.scope_id, i.first_day) AS run_id, i.*, p.dim, p.value
    FROM islands i JOIN scopes p USING (scope_id)
)
SELECT c.scopes_checked, c.units_checked, r.*
FROM (SELECT count(DISTINCT scope_id) AS scopes_checked, count(*) AS units_checked FROM judged) c
LEFT JOIN runs r ON true
ORDER BY r.run_id
"""


def week_over_week_sql() -> str:
    """Weeks a scope spent ``$ratio`` times the week before (kind ``week_over_week``), over the
    rollup.

    The weeks are given as parallel lists ``$week_no``, ``$week_start``, ``$week_end``,
    ``$week_days`` (ISO weeks from Monday; the last may be cut at now, and is then compared with
    the same elapsed time of the week before), with the days they cover: ``$week_first`` to
    ``$week_last``, and the week before's ``$prev_first`` to ``$prev_last``, plus the calls before
    ``$split`` (now less 7 days) of ``$prev_partial``, the day the week before is cut (NULL when
    it is not). A week is flagged when the week before spent something, and the week spent
    ``$ratio`` times as much and at least ``$min_usd`` per day, and the increase is at least
    ``$threshold`` times the chance noise of two such weeks (the square root of twice the week
    before's sum of squared call costs). Consecutive flagged weeks of a scope are one candidate
    (what it shares with the others: ``shared_scope_sql``).
    """
    return f"""
WITH {_scope_daily(early=True)},
weeks AS (
    SELECT unnest($week_no) AS week_no, unnest($week_start) AS week_start,
           unnest($week_end) AS week_end, unnest($week_days) AS week_days,
           unnest($week_first) AS first_day, unnest($week_last) AS last_day,
           unnest($prev_first) AS prev_first, unnest($prev_last) AS prev_last,
           unnest($prev_partial) AS prev_partial
),
placed AS (
    SELECT s.*, w.week_no, w.week_start, w.week_end, w.week_days,
           s.day BETWEEN w.first_day AND w.last_day AS this_week,
           s.day BETWEEN w.prev_first AND w.prev_last OR (s.day = w.prev_partial AND s.early) AS week_before
    FROM spent s JOIN weeks w ON s.day BETWEEN w.prev_first AND w.last_day
),
weekly AS (
    SELECT scope_id, week_no, week_start, week_end, week_days,
           coalesce(sum(spend) FILTER (WHERE this_week), 0)::DECIMAL(38, 12) AS spend,
           coalesce(sum(spend) FILTER (WHERE week_before), 0)::DECIMAL(38, 12) AS previous,
           coalesce(sum(spend_sq) FILTER (WHERE week_before), 0) AS previous_sq
    FROM placed
    WHERE this_week OR week_before
    GROUP BY ALL
),
judged AS (
    SELECT *, CASE WHEN previous_sq > 0 THEN (spend - previous)::DOUBLE / sqrt(2 * previous_sq) END AS score
    FROM weekly WHERE previous > 0
),
flagged AS (
    SELECT * FROM judged
    WHERE spend >= previous * $ratio AND spend >= $min_usd * week_days
      AND (score IS NULL OR score >= $threshold)
),
islands AS (
    SELECT scope_id, min(week_start) AS first_start, max(week_end) AS last_end, count(*) AS weeks,
           sum(spend) AS spend, sum(previous) AS baseline, sum(spend - previous) AS excess,
           max(score) AS score
    FROM (
        SELECT *, week_no - row_number() OVER (PARTITION BY scope_id ORDER BY week_no) AS island
        FROM flagged
    )
    GROUP BY scope_id, island
),
runs AS (
    SELECT row_number() OVER (ORDER BY i.scope_id, i.first_start) AS run_id, i.*, p.dim, p.value
    FROM islands i JOIN scopes p USING (scope_id)
)
SELECT c.scopes_checked, c.units_checked, r.*
FROM (SELECT count(DISTINCT scope_id) AS scopes_checked, count(*) AS units_checked FROM judged) c
LEFT JOIN runs r ON true
ORDER BY r.run_id
"""


def first_day_sql() -> str:
    """The first day of the lake from ``$first`` to ``$last`` (NULL when it has none), whatever
    the filters: the history there is to compare with."""
    return "SELECT min(date) AS first_day FROM llm_calls WHERE date BETWEEN $first AND $last"


_SHARED: Final = """shared AS (
    -- spend each candidate shares with each other one: the same calls seen from two scopes
    SELECT run_id, list(other ORDER BY other) AS shared_ids, list(usd ORDER BY other) AS shared_usd
    FROM (
        SELECT a.run_id, b.run_id AS other, sum(a.cost_usd) AS usd
        FROM members a JOIN members b ON b.call_no = a.call_no AND b.run_id <> a.run_id
        GROUP BY ALL
    )
    GROUP BY run_id
)"""


_FLOW_MINUTE: Final = "hash(coalesce(session_id, trace_id), epoch_us(ts) // 60000000)"
"""A call's flow-minute for the warm-minute pass: its session's, else its trace's (a hash)."""


def runaway_minutes_sql(where: str) -> str:
    """What the runaway detector judges, and the minutes it must look at closely (one pass).

    The calls ``where`` selects (the judged days: a flow that starts in them has its busy
    minutes in them too) are counted per minute of their session, or of their trace when they
    have no session: ``units_checked`` is how many such flow-minutes there are. A
    minute can only run away if its calls reach ``$min_calls`` or its tokens ``$min_tokens``
    (the limits are never below these floors), and a trace's calls in a minute are all in its
    session's, so only the minutes at the floors are returned (``warm``: hashes of id and
    minute), and :func:`runaway_sql` then counts traces and sessions exactly, in their
    workflows only. Grouping by a 64-bit hash rather than by the id strings makes this pass
    faster; two flows whose hashes collide are only counted together here, which can add a warm
    minute, never hide one. What this misses: a trace whose calls in one minute are split
    between sessions (or between a session and none), none of the parts reaching the floors.
    """
    return f"""
WITH minutes AS (
    SELECT count(*) AS calls, sum(tokens) AS tokens, flow_minute
    FROM (
        SELECT {_FLOW_MINUTE} AS flow_minute, input_tokens + output_tokens AS tokens
        FROM llm_calls WHERE {where}
    )
    GROUP BY flow_minute
)
SELECT count(*) AS units_checked,
       coalesce(list(flow_minute) FILTER (WHERE calls >= $min_calls OR tokens >= $min_tokens), []) AS warm
FROM minutes
"""


def runaway_workflows_sql(where: str) -> str:
    """The workflows of the calls in the ``$warm`` minutes of :func:`runaway_minutes_sql`
    (same ``where``)."""
    return f"""
SELECT DISTINCT coalesce(workflow, service, '') AS workflow
FROM llm_calls
WHERE {where} AND {_FLOW_MINUTE} IN (SELECT unnest($warm))
ORDER BY workflow
"""


def runaway_sql(where: str) -> str:
    """Traces and sessions calling far faster than their workflow's norm (kind ``runaway_loop``).

    Each trace (``trace_id``) and session (``session_id``) is counted in minutes
    (``time_bucket``): calls and tokens (input + output) per minute; its peak is its busiest
    minute. Its workflow is ``workflow``, else ``service``. The norm of a trace is the median
    peak of the traces (sessions: of the sessions) of the same workflow that started in the
    ``$baseline_days`` before its day, once there are MIN_NORM_FLOWS of them. A minute runs away
    when its calls reach ``$min_calls`` and ``$factor`` times the norm, or its tokens reach
    ``$min_tokens`` and ``$factor`` times the token norm (without a norm: the floors alone).
    A candidate is a trace or session with such minutes; it starts at the first of them.

    Only the calls of the workflows ``$workflows`` are read: those :func:`runaway_workflows_sql`
    found in warm minutes (a norm needs every trace or session of its workflow, and nothing
    else; when no minute is warm the report does not run this statement at all).
    """
    return f"""
WITH calls AS MATERIALIZED (
    SELECT row_number() OVER () AS call_no, ts, date AS day, trace_id, session_id,
           coalesce(workflow, service, '') AS workflow, input_tokens + output_tokens AS tokens, cost_usd
    FROM llm_calls
    WHERE {where} AND coalesce(workflow, service, '') IN (SELECT unnest($workflows))
),
grouped AS MATERIALIZED (
    SELECT 0 AS dim, trace_id AS value, call_no, ts, day, workflow, tokens, cost_usd FROM calls
    UNION ALL
    SELECT 1 AS dim, session_id AS value, call_no, ts, day, workflow, tokens, cost_usd
    FROM calls WHERE session_id IS NOT NULL
),
minutes AS MATERIALIZED (
    SELECT dim, value, time_bucket(INTERVAL 1 MINUTE, ts) AS minute,
           count(*) AS calls, sum(tokens) AS tokens, sum(cost_usd) AS cost_usd
    FROM grouped GROUP BY ALL
),
flows AS (
    SELECT g.dim, g.value, min(g.day) AS day, mode(g.workflow) AS workflow, count(*) AS calls,
           max(m.peak_calls) AS peak_calls, max(m.peak_tokens) AS peak_tokens
    FROM grouped g
    JOIN (SELECT dim, value, max(calls) AS peak_calls, max(tokens) AS peak_tokens FROM minutes GROUP BY ALL) m
      USING (dim, value)
    GROUP BY g.dim, g.value
),
normed AS (
    SELECT *,
           count(*) OVER norm AS norm_flows,
           quantile_disc(peak_calls, 0.5) OVER norm AS norm_calls,
           quantile_disc(peak_tokens, 0.5) OVER norm AS norm_tokens
    FROM flows
    WINDOW norm AS (PARTITION BY dim, workflow ORDER BY day
                    RANGE BETWEEN to_days($baseline_days) PRECEDING AND INTERVAL 1 DAY PRECEDING)
),
judged AS (
    SELECT *,
           CASE WHEN norm_flows >= {MIN_NORM_FLOWS} THEN greatest($min_calls, $factor * norm_calls)
                ELSE $min_calls END AS calls_limit,
           CASE WHEN norm_flows >= {MIN_NORM_FLOWS} THEN greatest($min_tokens, $factor * norm_tokens)
                ELSE $min_tokens END AS tokens_limit
    FROM normed
    WHERE day BETWEEN $judge_first AND $judge_last
),
hot AS (
    SELECT j.dim, j.value, m.minute, m.calls, m.tokens, m.cost_usd
    FROM judged j JOIN minutes m USING (dim, value)
    WHERE m.calls >= j.calls_limit OR m.tokens >= j.tokens_limit
),
candidates AS (
    SELECT j.dim, j.value, j.day, j.workflow, j.calls AS flow_calls, j.peak_calls, j.peak_tokens,
           CASE WHEN j.norm_flows >= {MIN_NORM_FLOWS} THEN j.norm_calls END AS norm_calls,
           CASE WHEN j.norm_flows >= {MIN_NORM_FLOWS} THEN j.norm_tokens END AS norm_tokens,
           min(h.minute) AS first_minute, max(h.minute) + INTERVAL 1 MINUTE AS last_end,
           count(*) AS hot_minutes, sum(h.calls) AS hot_calls, sum(h.cost_usd) AS spend
    FROM judged j JOIN hot h USING (dim, value)
    GROUP BY ALL
    HAVING sum(h.cost_usd) >= $min_usd
),
runs AS MATERIALIZED (
    SELECT row_number() OVER (ORDER BY dim, value) AS run_id, * FROM candidates
),
members AS (
    SELECT r.run_id, g.call_no, g.cost_usd
    FROM runs r
    JOIN hot h ON h.dim = r.dim AND h.value = r.value
    JOIN grouped g ON g.dim = h.dim AND g.value = h.value AND time_bucket(INTERVAL 1 MINUTE, g.ts) = h.minute
),
{_SHARED}
SELECT c.scopes_checked, c.units_checked, r.*, s.shared_ids, s.shared_usd
FROM (SELECT count(DISTINCT (dim, workflow)) AS scopes_checked, count(*) AS units_checked FROM judged) c
LEFT JOIN (runs r LEFT JOIN shared s USING (run_id)) ON true
ORDER BY r.run_id
"""


def model_switch_sql() -> str:
    """Features whose cost per call stepped up as their calls moved to other models (kind
    ``model_switch``), over the rollup's ``feature_models`` since ``$since``.

    Per feature and day: calls, spend, cost per call (exact mean) and the share of the calls of
    each model. The baseline of a day is the median daily cost per call of the feature's days
    among the ``$baseline_days`` before it, and its model mix over those days. A day is flagged
    when the feature has ``$min_history`` such days, spent at least ``$min_usd``, its cost per
    call is ``$ratio`` times the baseline, and at least ``$min_shift`` of its calls moved model
    (the total variation distance between the two mixes: half the sum of the share changes).
    Consecutive flagged days of a feature are one candidate.
    """
    return f"""
WITH calls AS MATERIALIZED (
    SELECT feature, model, day, calls, spend FROM feature_models WHERE day >= $since AND feature IS NOT NULL
),
daily AS (
    SELECT feature, day, sum(calls) AS calls, sum(spend) AS spend,
           {money_mean("sum(spend)", "sum(calls)")} AS cost_per_call
    FROM calls GROUP BY ALL
),
baselines AS (
    SELECT *,
           row_number() OVER (PARTITION BY feature ORDER BY day) AS day_no,
           count(*) OVER history AS history_days,
           quantile_disc(cost_per_call, 0.5) OVER history AS baseline_cost_per_call
    FROM daily
    WINDOW history AS (PARTITION BY feature ORDER BY day
                       RANGE BETWEEN to_days($baseline_days) PRECEDING AND INTERVAL 1 DAY PRECEDING)
),
mix AS (
    -- every model the feature used, on every day of the feature (0 calls where unused), with
    -- its calls on the day and over the baseline days before it
    SELECT d.feature, d.day, m.model, coalesce(c.calls, 0) AS calls,
           sum(coalesce(c.calls, 0)) OVER (
               PARTITION BY d.feature, m.model ORDER BY d.day
               RANGE BETWEEN to_days($baseline_days) PRECEDING AND INTERVAL 1 DAY PRECEDING
           ) AS past_calls
    FROM daily d
    JOIN (SELECT DISTINCT feature, model FROM calls) m USING (feature)
    LEFT JOIN calls c
      ON c.feature = d.feature AND c.day = d.day AND c.model IS NOT DISTINCT FROM m.model
),
shares AS (
    SELECT feature, day, model,
           calls / sum(calls) OVER (PARTITION BY feature, day) AS share,
           coalesce(past_calls / nullif(sum(past_calls) OVER (PARTITION BY feature, day), 0), 0) AS past_share
    FROM mix
),
shifts AS (
    SELECT feature, day, 0.5 * sum(abs(share - past_share)) AS shift,
           arg_max(model, share - past_share) AS to_model, arg_min(model, share - past_share) AS from_model
    FROM shares GROUP BY ALL
),
judged AS (
    SELECT b.*, s.shift, s.to_model, s.from_model,
           (b.calls * b.baseline_cost_per_call)::DECIMAL(38, 12) AS expected
    FROM baselines b JOIN shifts s USING (feature, day)
    WHERE b.day BETWEEN $judge_first AND $judge_last AND b.history_days >= $min_history
),
flagged AS (
    SELECT * FROM judged
    WHERE spend >= $min_usd
      AND cost_per_call > baseline_cost_per_call
      AND cost_per_call >= baseline_cost_per_call * $ratio
      AND shift >= $min_shift
),
runs AS (
    SELECT feature, min(day) AS first_day, max(day) AS last_day, count(*) AS days,
           sum(calls) AS calls, sum(spend) AS spend, sum(expected) AS baseline,
           sum(spend - expected) AS excess,
           arg_min(baseline_cost_per_call, day) AS baseline_cost_per_call,
           arg_min(cost_per_call, day) AS cost_per_call,
           arg_min(from_model, day) AS from_model, arg_min(to_model, day) AS to_model,
           arg_min(shift, day) AS shift
    FROM (SELECT *, day_no - row_number() OVER (PARTITION BY feature ORDER BY day) AS island FROM flagged)
    GROUP BY feature, island
)
SELECT c.scopes_checked, c.units_checked, r.*
FROM (SELECT count(DISTINCT feature) AS scopes_checked, count(*) AS units_checked FROM judged) c
LEFT JOIN runs r ON true
ORDER BY r.feature, r.first_day
"""


def context_growth_bounds_sql(where: str) -> str:
    """What the context-growth detector judges, and the sessions that may be growing (one pass).

    The exact test (:func:`context_growth_sql`) orders every call of a session, which over a
    month of calls is a sort of all of them. Most sessions can be cleared without it: per
    session, feature and day this counts the calls and sums their input tokens, with the
    smallest and largest call. The days, in order, place each call within a position range, so
    the calls of the first third (``ntile(3)``: the first ``calls // 3 + (calls % 3 >= 1)``) and
    of the last third (the last ``calls // 3``) are known exactly on the days wholly inside a
    third, and bounded on the day a third starts or ends (its k earliest calls sum to at least
    ``max(k * smallest, sum - (n - k) * largest)``, its k latest to at most
    ``min(k * largest, sum - (n - k) * smallest)``). A session whose highest possible last-third
    mean is under ``$ratio`` times its lowest possible first-third mean cannot grow; the others
    are returned (``sessions``, ``features``: parallel lists) for the exact test.
    ``scopes_checked`` and ``units_checked`` count the judged sessions (``$min_calls`` calls or
    more, started in the judged days) and their features, as :func:`context_growth_sql` would.
    """
    return f"""
WITH days AS (
    SELECT session_id, feature, date AS day, count(*) AS n, sum(input_tokens) AS total,
           min(input_tokens) AS low, max(input_tokens) AS high
    FROM llm_calls
    WHERE {where} AND session_id IS NOT NULL
    GROUP BY ALL
),
placed AS (
    SELECT *,
           sum(n) OVER (PARTITION BY session_id, feature ORDER BY day ROWS UNBOUNDED PRECEDING) - n AS before,
           sum(n) OVER (PARTITION BY session_id, feature) AS calls,
           min(day) OVER (PARTITION BY session_id, feature) AS first_day
    FROM days
),
thirds AS (
    SELECT *, greatest(0, least(first_size, before + n) - before) AS in_first,
           greatest(0, before + n - greatest(before, calls - last_size)) AS in_last
    FROM (SELECT *, calls // 3 + (calls % 3 >= 1)::BIGINT AS first_size, calls // 3 AS last_size FROM placed)
),
bounded AS (
    SELECT session_id, feature, any_value(calls) AS calls, any_value(first_day) AS day,
           any_value(first_size) AS first_size, any_value(last_size) AS last_size,
           sum(CASE WHEN in_first = n THEN total
                    WHEN in_first > 0 THEN greatest(in_first * low, total - (n - in_first) * high)
                    ELSE 0 END) AS first_low,
           sum(CASE WHEN in_last = n THEN total
                    WHEN in_last > 0 THEN least(in_last * high, total - (n - in_last) * low)
                    ELSE 0 END) AS last_high
    FROM thirds
    GROUP BY session_id, feature
),
judged AS (
    SELECT *, last_high * first_size >= $ratio * first_low * last_size AS may_grow
    FROM bounded
    WHERE calls >= $min_calls AND day BETWEEN $judge_first AND $judge_last
)
SELECT count(DISTINCT feature) AS scopes_checked, count(*) AS units_checked,
       coalesce(list(session_id ORDER BY session_id, feature) FILTER (WHERE may_grow), []) AS sessions,
       coalesce(list(feature ORDER BY session_id, feature) FILTER (WHERE may_grow), []) AS features
FROM judged
"""


def context_growth_sql(where: str) -> str:
    """Sessions whose input tokens per call grew call after call (kind ``context_growth``).

    The calls of each session and feature that started in the judged days, in order, are cut in
    thirds (``ntile(3)``). A session grows when it has ``$min_calls`` calls and the mean input
    tokens of its last third are ``$ratio`` times those of its first third. Its extra cost is its
    spend minus its calls at the cost per call of its first third. One candidate per feature:
    its growing sessions (largest extra cost first), from the first one's start.

    Only the sessions ``$sessions``/``$features`` (parallel lists: those
    :func:`context_growth_bounds_sql` could not clear) are read.
    """
    return f"""
WITH calls AS (
    SELECT c.*
    FROM (
        SELECT session_id, feature, ts, span_id, date AS day, input_tokens, cost_usd
        FROM llm_calls
        WHERE {where} AND session_id IS NOT NULL
    ) c
    SEMI JOIN (SELECT unnest($sessions) AS session_id, unnest($features) AS feature) k
           ON c.session_id = k.session_id AND c.feature IS NOT DISTINCT FROM k.feature
),
ordered AS (
    SELECT *, ntile(3) OVER (PARTITION BY session_id, feature ORDER BY ts, span_id) AS third
    FROM calls
),
sessions AS (
    SELECT session_id, feature, min(day) AS day, count(*) AS calls, min(ts) AS first_ts, max(ts) AS last_ts,
           avg(input_tokens) FILTER (WHERE third = 1) AS first_input,
           avg(input_tokens) FILTER (WHERE third = 3) AS last_input,
           sum(cost_usd) AS spend,
           {money_mean("sum(cost_usd) FILTER (WHERE third = 1)", "count(*) FILTER (WHERE third = 1)")}
               AS first_cost_per_call
    FROM ordered GROUP BY ALL
),
judged AS (
    SELECT * FROM sessions WHERE calls >= $min_calls AND day BETWEEN $judge_first AND $judge_last
),
growing AS (
    SELECT *, last_input / first_input AS growth,
           greatest(spend - calls * first_cost_per_call, 0)::DECIMAL(38, 12) AS excess
    FROM judged
    WHERE first_input > 0 AND last_input >= first_input * $ratio
),
features AS (
    SELECT feature, min(first_ts) AS first_ts,
           time_bucket(INTERVAL 1 MINUTE, max(last_ts)) + INTERVAL 1 MINUTE AS last_end,
           count(*) AS sessions, sum(calls) AS calls, sum(spend) AS spend, sum(excess) AS excess,
           quantile_disc(growth, 0.5) AS growth, max(growth) AS max_growth,
           min(first_input) AS min_first_input, max(last_input) AS max_last_input,
           list(session_id ORDER BY excess DESC, session_id) AS session_ids,
           min(day) AS first_day, max(day) AS last_day
    FROM growing GROUP BY feature
    HAVING sum(spend) >= $min_usd
)
SELECT c.scopes_checked, c.units_checked, f.*
FROM (SELECT count(DISTINCT feature) AS scopes_checked, count(*) AS units_checked FROM judged) c
LEFT JOIN features f ON true
ORDER BY f.feature
"""


def non_production_sql() -> str:
    """Days a non-production environment made ``$share`` or more of all spend (kind
    ``non_production``), over the rollup's ``environment_days`` since ``$since``.

    Non-production: an ``environment`` that is set and not in ``$production`` (lower-cased).
    A day is flagged when the environment spent at least ``$min_usd`` and its share of the
    day's spend (of the calls the filters keep) reaches ``$share``. Consecutive flagged days
    (among the days with traffic) of an environment are one candidate.
    """
    return """
WITH calls AS MATERIALIZED (
    SELECT environment, day, spend FROM environment_days WHERE day >= $since
),
days AS (
    SELECT day, sum(spend) AS total, row_number() OVER (ORDER BY day) AS day_no
    FROM calls GROUP BY day
),
judged AS (
    SELECT c.environment, c.day, d.day_no, d.total, sum(c.spend) AS spend,
           CASE WHEN d.total > 0 THEN sum(c.spend) / d.total END AS share
    FROM calls c JOIN days d USING (day)
    WHERE c.environment IS NOT NULL AND NOT list_contains($production, lower(c.environment))
    GROUP BY c.environment, c.day, d.day_no, d.total
),
flagged AS (SELECT * FROM judged WHERE spend >= $min_usd AND share >= $share),
runs AS (
    SELECT environment, min(day) AS first_day, max(day) AS last_day, count(*) AS days,
           sum(spend) AS spend, sum(total) AS total
    FROM (SELECT *, day_no - row_number() OVER (PARTITION BY environment ORDER BY day) AS island FROM flagged)
    GROUP BY environment, island
)
SELECT c.scopes_checked, c.units_checked, r.*
FROM (
    SELECT (SELECT count(DISTINCT environment) FROM calls) AS scopes_checked,
           (SELECT count(*) FROM days) AS units_checked
) c
LEFT JOIN runs r ON true
ORDER BY r.environment, r.first_day
"""
