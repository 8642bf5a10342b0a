"""Live anomaly detection in ``otelcost serve``: runaway loops and spend spikes, alerted in seconds.

The anomaly reports read the lake after the fact; these detectors watch the live stream, so an
agent stuck in a loop or a feature that suddenly spends ten times its norm is reported while it
is still burning money. :class:`LiveAnomalies` is a pipeline sink (``Pipeline(extra_sinks=)``,
wrapped like the budget evaluator in ``stages.DerivedSink``): every committed batch reaches
:meth:`LiveAnomalies.consume`, which hands the calls to a :class:`StreamingDetector` and sends
each anomaly it finds once, as a webhook alert through the budget alerts' delivery
(``budgets/alerts.py``: bounded queue, retries, Slack-compatible ``text``; the webhook is
``budgeting.alerts.webhook_url``). The detector itself does no I/O: it takes batches and returns
:class:`Anomaly` values.

What counts: calls only (``schema.calls_only``): spans folded into another call are not spend,
and attribution change rows are not new calls; a call repeated by a sender's retry (same
``trace_id``, ``span_id``) counts once. Spend is the list price, ``cost_usd``, in exact
picodollars. Buckets use event time (``ts``, the call's start), so a burst is seen as it
happened even when its spans arrive in one export.

Runaway loop (kind ``runaway_loop``): the calls of one ``trace_id``, and of one ``session_id``,
are counted in 10-second slots; the calls of the last six slots are its calls per minute. A
trace or session is a runaway once that rate is at least ``runaway_min_calls_per_minute`` and
more than ``runaway_factor`` times the norm of its workflow (``workflow``, else its ``service``):
the median of the peak per-minute rates of that workflow's recent traces (or sessions). A trace
or session idle for two minutes is done: its peak joins the norm (the last 101 of each
workflow), unless it was a runaway itself. Until a workflow has five finished traces, the floor
alone decides.

Spend spike (kind ``spike``): for every dimension in ``reports.anomalies.dimensions`` (team,
feature, model ...), the spend of each value is summed in windows of ``spike_window`` (aligned
to the epoch). A window is a spike when its spend (so far: it is judged as calls arrive, not
when it closes) is at least ``spike_min_usd``, at least ``min_ratio`` times the median of the
windows of the last ``spike_baseline``, and ``threshold`` MADs above that median. Only windows in
which the stream carried any traffic make the baseline (an idle or stopped server is not a
quiet scope), and a scope is judged only once ``spike_min_baseline`` of such windows exist.

One incident, one alert. Candidates found in the same batch that share calls (a team's spike is
also its feature's and its model's; a looping trace is also its session's) become one alert
naming every scope. After an alert, the same kind and scope stay quiet for ``stream_cooldown``,
and a later candidate whose calls in the batch all belong to a scope alerted within that time is
the same incident (counted as suppressed). ``alert_id`` is a hash of (kind, scope, window start),
recorded in ``<data_dir>/anomalies/alerts.jsonl`` (the budget alerts' journal format) before the
alert is queued; at start the journal restores the ids and the cooldowns, and alerts not
delivered before the stop are queued again. So a restart sends nothing twice.

Old traffic never alerts: a window that ended more than ``stream_max_lateness`` (default 10 min)
ago only teaches the baselines, and calls older than ``spike_baseline`` plus one window are
ignored altogether (counted). This is what keeps the start quiet: the spool replay appends the
rows the lake lacks (seconds of traffic before a stop; ``DerivedSink``) and they are judged like
live rows, and the journal drops an alert already sent for them. At start the spike baselines
are rebuilt from the lake's last ``spike_baseline``, so spikes are judged from the first minute;
the runaway norms are learned again from the stream (until then the floor decides).

Memory is bounded: at most ``stream_max_keys`` traces, sessions and scopes each (the least
recently seen go first, counted in ``evicted``), ten-second slots of the last minute per trace
or session, windows of the last ``spike_baseline`` per scope, 101 peaks per workflow for at most
``stream_max_keys`` workflows, and a dedup index of the last five minutes of received calls
(``budgets/dedup.py``, at most a million keys).

Threads: ``consume`` runs on the pipeline's thread (the event loop of the receivers, or the
replay at start) and is cheap: Arrow groupings, then Python once per trace, session and scope
touched. It never raises (the lake has the batch already). Metric scrapes read
:meth:`LiveAnomalies.counters` under the same lock.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from otelcost.budgets.alerts import AlertDispatcher
from otelcost.budgets.config import AlertsConfig
from otelcost.budgets.dedup import DedupIndex, span_keys
from otelcost.budgets.rebuild import LakeQuery, lake_query
from otelcost.budgets.store import AlertJournal
from otelcost.money import decimal_array_to_pico, format_amount, pico_to_decimal
from otelcost.reports.anomalies.evidence import sql_literal
from otelcost.reports.config import AnomaliesConfig
from otelcost.reports.dimensions import DIMENSIONS
from otelcost.schema import MONEY_TYPE, calls_only
from otelcost.timefmt import format_time, parse_time

__all__ = [
    "RUNAWAY_LOOP",
    "SPIKE",
    "Anomaly",
    "Delivery",
    "LiveAnomalies",
    "StreamingCounters",
    "StreamingDetector",
    "alert_id",
    "seed_sql",
]

log = logging.getLogger(__name__)

RUNAWAY_LOOP: Final = "runaway_loop"
SPIKE: Final = "spike"
KINDS: Final = (RUNAWAY_LOOP, SPIKE)

SLOT_NS: Final = 10 * 10**9
"""Runaway rates are counted in slots of 10 s; a minute is the last WINDOW_SLOTS of them."""
WINDOW_SLOTS: Final = 6
IDLE_NS: Final = 120 * 10**9
"""A trace or session without a new call for this long (wall time) is done."""
NORM_SAMPLES: Final = 101
MIN_NORM_SAMPLES: Final = 5
DEDUP_HORIZON_NS: Final = 5 * 60 * 10**9
DEDUP_MAX_IDS: Final = 1_000_000
JOURNAL_KEEP_NS: Final = 86_400 * 10**9
"""Alerts whose window started more than a day ago leave the journal at start."""

_ARROW_DIMENSIONS: Final[Mapping[str, tuple[str, ...]]] = {
    # The columns an Arrow batch coalesces for a dimension whose SQL is not a bare column
    # (dimensions.DIMENSIONS): an unpriced model is still a model someone pays for.
    "model": ("model", "response_model", "request_model"),
}
_FLOW_KINDS: Final = (("trace", "trace_id"), ("session", "session_id"))
_CONTEXT: Final = ("session_id", "workflow", "service")

I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


class Delivery(Protocol):
    """What sends alert payloads: ``budgets.alerts.AlertDispatcher`` in serve."""

    delivered: int
    failed: int
    dropped: int

    @property
    def pending(self) -> int: ...

    def start(self) -> None: ...

    def shutdown(self, timeout: float = 2.0) -> None: ...

    def submit(self, payload: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One alert's worth: what, where (every scope of the incident), when, how big."""

    kind: str
    dimension: str
    """The dimension that identifies the incident: ``trace_id``, ``session_id`` or a scope's."""
    scope: dict[str, str]
    start_ns: int
    end_ns: int
    size_pico: int
    ratio: float | None
    text: str
    evidence: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def alert_id(self) -> str:
        return alert_id(self.kind, {self.dimension: self.scope[self.dimension]}, self.start_ns)

    def payload(self) -> dict[str, Any]:
        """The webhook body (``text`` for Slack; every other field for a program)."""
        return {
            "text": self.text,
            "alert_id": self.alert_id,
            "kind": self.kind,
            "dimension": self.dimension,
            "scope": dict(sorted(self.scope.items())),
            "start": format_time(self.start_ns),
            "end": format_time(self.end_ns),
            "size_usd": format_amount(pico_to_decimal(self.size_pico)),
            "ratio": self.ratio,
            "evidence": self.evidence,
            **self.details,
        }


def alert_id(kind: str, key: Mapping[str, str], start_ns: int) -> str:
    """Stable across restarts: the same incident window always hashes to the same id."""
    parts = [kind, *(f"{name}={value}" for name, value in sorted(key.items())), str(start_ns)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class StreamingCounters:
    """What the live detectors took in and raised (``otelcost_anomalies_*``, docs/metrics.md)."""

    calls_seen: int
    calls_ignored: dict[str, int]
    raised: dict[str, int]
    suppressed: dict[str, int]
    evicted: dict[str, int]
    tracked: dict[str, int]
    consume_errors: int
    seconds: float
    alerts_delivered: int
    alerts_failed: int
    alerts_dropped: int
    alerts_pending: int


# -- the detector -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Flow:
    """The recent calls of one trace or session (one per call in flight: kept small)."""

    session: str | None
    workflow: str | None
    service: str | None
    slots: dict[int, list[int]]  # slot -> [calls, picodollars]
    touched_ns: int
    peak: int = 0
    runaway: bool = False

    @property
    def group(self) -> str:
        """Whose norm a flow is judged by: its workflow, else its service."""
        if self.workflow:
            return f"workflow={self.workflow}"
        return f"service={self.service}" if self.service else ""

    @property
    def context(self) -> dict[str, str]:
        known = {"session_id": self.session, "workflow": self.workflow, "service": self.service}
        return {name: value for name, value in known.items() if value is not None}


@dataclass(slots=True)
class _Scope:
    """The spend of one dimension value per spike window."""

    windows: dict[int, int] = field(default_factory=dict)  # window -> picodollars
    newest: int = 0


@dataclass(slots=True)
class _Candidate:
    kind: str
    dimension: str
    value: str
    start_ns: int
    end_ns: int
    size_pico: int
    ratio: float | None
    rank: float
    mask: Mask
    facts: dict[str, Any]
    context: dict[str, str] = field(default_factory=dict)


class StreamingDetector:
    """Runaway loops and spend spikes over batches of priced calls (no I/O, not thread-safe).

    :meth:`observe` takes a RECORD_SCHEMA batch and the wall clock and returns the anomalies
    that batch completes, each once per cooldown (see the module docstring).
    """

    def __init__(self, config: AnomaliesConfig) -> None:
        self.config = config
        self.window_ns = _ns(config.spike_window)
        self.baseline_windows = max(2, _ns(config.spike_baseline) // self.window_ns)
        self.min_baseline_windows = max(1, _ns(config.spike_min_baseline) // self.window_ns)
        self.lateness_ns = _ns(config.stream_max_lateness)
        self.cooldown_ns = _ns(config.stream_cooldown)
        self.horizon_ns = (self.baseline_windows + 1) * self.window_ns
        self.min_spike_pico = int(config.spike_min_usd * 10**12)
        self.dimensions = tuple(config.dimensions)
        self._flows: dict[str, OrderedDict[str, _Flow]] = {kind: OrderedDict() for kind, _ in _FLOW_KINDS}
        self._norms: OrderedDict[str, deque[int]] = OrderedDict()
        self._scopes: OrderedDict[tuple[str, str], _Scope] = OrderedDict()
        self._active: dict[int, bool] = {}  # windows in which the stream carried traffic
        self._cooldown: OrderedDict[tuple[str, str, str], int] = OrderedDict()  # -> window start
        self._alerted: dict[str, int] = {}  # alert id -> window start
        self._dedup = DedupIndex(horizon_ns=DEDUP_HORIZON_NS, max_ids=DEDUP_MAX_IDS)
        self.calls_seen = 0
        self.calls_ignored = {"stale": 0, "duplicate": 0}
        self.raised = dict.fromkeys(KINDS, 0)
        self.suppressed = dict.fromkeys(KINDS, 0)
        self.evicted = {"trace": 0, "session": 0, "scope": 0, "workflow": 0}

    @property
    def tracked(self) -> dict[str, int]:
        return {
            "trace": len(self._flows["trace"]),
            "session": len(self._flows["session"]),
            "scope": len(self._scopes),
            "workflow": len(self._norms),
        }

    # -- state from elsewhere ------------------------------------------------------------------

    def remember(self, payload: Mapping[str, Any]) -> None:
        """An alert sent before (the journal, at start): never again, and cool its scopes down."""
        start = parse_time(payload.get("start"))
        kind, scope = payload.get("kind"), payload.get("scope")
        if start is None or not isinstance(kind, str) or not isinstance(scope, dict):
            return
        self._alerted[str(payload.get("alert_id"))] = start
        if kind == RUNAWAY_LOOP:
            names: Iterable[Any] = ("trace_id", "session_id")  # as _runaways cools them
        else:
            named = payload.get("scopes")
            names = named if isinstance(named, list) else [payload.get("dimension")]
        for name in names:
            value = scope.get(name) if isinstance(name, str) else None
            if isinstance(value, str):
                self._cool(kind, name, value, start)

    def seed_spend(self, rows: pa.Table) -> None:
        """Spend per (dimension, value, window) from the lake; ``dimension`` NULL: the stream's
        traffic per window. Columns: dimension, value, window, cost_usd (MONEY_TYPE)."""
        if rows.num_rows == 0:
            return
        picos = decimal_array_to_pico(rows["cost_usd"].cast(MONEY_TYPE)).tolist()
        for dimension, value, window, pico in zip(
            rows["dimension"].to_pylist(),
            rows["value"].to_pylist(),
            rows["window"].to_pylist(),
            picos,
            strict=True,
        ):
            if dimension is None:
                self._active[int(window)] = True
            elif value is not None and dimension in self.dimensions:
                scope = self._scope(dimension, str(value))
                scope.windows[int(window)] = scope.windows.get(int(window), 0) + pico
                scope.newest = max(scope.newest, int(window))

    # -- the data path ---------------------------------------------------------------------------

    def observe(self, batch: pa.Table, now_ns: int) -> list[Anomaly]:
        """Count the calls of ``batch``; return the anomalies they complete."""
        calls = calls_only(batch)
        if calls.num_rows == 0:
            return []
        rows = self._admitted(calls, now_ns)
        self._expire(now_ns)
        if rows is None:
            return []
        anomalies = self._runaways(rows, now_ns)
        anomalies += self._spikes(rows, now_ns)
        for anomaly in anomalies:
            self.raised[anomaly.kind] += 1
        return anomalies

    def _admitted(self, calls: pa.Table, now_ns: int) -> pa.Table | None:
        """The calls that count, with slot, window and picodollar columns; None when none do."""
        self.calls_seen += calls.num_rows
        ts_ns = _int64(calls["ts"]) * 1000
        keep = ts_ns >= now_ns - self.horizon_ns
        self.calls_ignored["stale"] += int(np.count_nonzero(~keep))
        if not keep.any():
            return None
        if not keep.all():
            calls, ts_ns = calls.filter(pa.array(keep)), ts_ns[keep]
        keys = span_keys(calls["trace_id"], calls["span_id"])
        new = self._dedup.admit(keys, int(_int64(calls["received_at"]).max()) * 1000)
        self.calls_ignored["duplicate"] += int(np.count_nonzero(~new))
        if not new.any():
            return None
        if not new.all():
            calls, ts_ns = calls.filter(pa.array(new)), ts_ns[new]
        columns: dict[str, pa.Array | pa.ChunkedArray] = {
            name: calls[name] for name in ("trace_id", "session_id", "workflow", "service")
        }
        for dimension in self.dimensions:
            if dimension not in columns:
                columns[dimension] = _dimension(calls, dimension)
        columns["slot"] = pa.array(ts_ns // SLOT_NS)
        columns["window"] = pa.array(ts_ns // self.window_ns)
        columns["pico"] = pa.array(decimal_array_to_pico(calls["cost_usd"]))
        rows = pa.table(columns)
        for window in np.unique(ts_ns // self.window_ns).tolist():
            self._active[int(window)] = True
        return rows

    # -- runaway loops ---------------------------------------------------------------------------

    def _runaways(self, rows: pa.Table, now_ns: int) -> list[Anomaly]:
        candidates: list[_Candidate] = []
        floor = self.config.runaway_min_calls_per_minute
        cap = self.config.stream_max_keys
        for kind, column in _FLOW_KINDS:
            context = [name for name in _CONTEXT if name != column]
            grouped = rows.group_by([column, "slot"], use_threads=False).aggregate(
                [("pico", "sum"), ("pico", "count"), *((name, "max") for name in context)]
            )
            flows = self._flows[kind]
            touched: dict[str, _Flow] = {}
            keys = grouped[column].to_pylist()
            slots = grouped["slot"].to_pylist()
            picos = grouped["pico_sum"].to_pylist()
            counts = grouped["pico_count"].to_pylist()
            sessions = grouped["session_id_max"].to_pylist() if kind == "trace" else [None] * len(keys)
            workflows = grouped["workflow_max"].to_pylist()
            services = grouped["service_max"].to_pylist()
            # Python once per (key, slot): this loop is the detector's hot path.
            for key, slot, count, pico, session, workflow, service in zip(
                keys, slots, counts, picos, sessions, workflows, services, strict=True
            ):
                if key is None:
                    continue
                flow = flows.get(key)
                if flow is None:
                    flow = flows[key] = _Flow(session, workflow, service, {slot: [count, pico]}, now_ns)
                    if len(flows) > cap:
                        self._cap(kind, flows)
                else:
                    flows.move_to_end(key)
                    flow.touched_ns = now_ns
                    cell = flow.slots.get(slot)
                    if cell is None:
                        flow.slots[slot] = [count, pico]
                    else:
                        cell[0] += count
                        cell[1] += pico
                touched[key] = flow
            for key, flow in touched.items():
                held = flow.slots
                if len(held) == 1:  # most traces: one call, or a burst in one slot
                    (calls, _), *_ = held.values()
                    flow.peak = max(flow.peak, calls)
                    if calls < floor:
                        continue
                elif (total := sum(cell[0] for cell in held.values())) < floor and total <= flow.peak:
                    # Below the floor whatever the minute, and no busier than its peak: only
                    # the slots of the past go.
                    newest = max(held)
                    for slot in [slot for slot in held if slot <= newest - WINDOW_SLOTS]:
                        del held[slot]
                    continue
                if key not in flows:
                    continue  # this batch alone touched more than stream_max_keys: it went first
                candidate = self._judge_flow(kind, column, key, flow, now_ns=now_ns)
                if candidate is not None:
                    candidate.mask = _equals(rows[column], key)
                    candidates.append(candidate)
        covered = self._covered(RUNAWAY_LOOP, rows, ("trace_id", "session_id"), now_ns)
        anomalies: list[Anomaly] = []
        for group in self._incidents(RUNAWAY_LOOP, candidates, covered):
            anomaly = _runaway_anomaly(group, self.config)
            if self._first(anomaly):
                anomalies.append(anomaly)
            for member in group:
                self._cool(RUNAWAY_LOOP, member.dimension, member.value, member.start_ns)
                flows = self._flows["trace" if member.dimension == "trace_id" else "session"]
                if (flow := flows.get(member.value)) is not None:
                    flow.runaway = True
                # A trace's loop is also its session's: the session's later batches are the
                # same incident.
                if session := member.context.get("session_id"):
                    self._cool(RUNAWAY_LOOP, "session_id", session, member.start_ns)
        return anomalies

    def _judge_flow(self, kind: str, column: str, key: str, flow: _Flow, *, now_ns: int) -> _Candidate | None:
        """The busiest minute of ``flow`` that is a runaway, if any; forgets slots of the past."""
        found: _Candidate | None = None
        newest = max(flow.slots)
        typical = self._typical(kind, flow.group)
        # Every minute ending at a slot still held: at most the last minute and this batch's.
        for end in sorted(flow.slots):
            window = [
                (slot, flow.slots[slot])
                for slot in range(end - WINDOW_SLOTS + 1, end + 1)
                if slot in flow.slots
            ]
            calls = sum(cell[0] for _, cell in window)
            flow.peak = max(flow.peak, calls)
            end_ns = (end + 1) * SLOT_NS
            if end_ns < now_ns - self.lateness_ns or (found is not None and calls <= found.facts["calls"]):
                continue  # too old to alert, or not above the busiest minute found in this batch
            if calls < self.config.runaway_min_calls_per_minute:
                continue
            if typical is not None and Decimal(calls) <= self.config.runaway_factor * typical:
                continue
            start_ns = window[0][0] * SLOT_NS
            if self._cooling(RUNAWAY_LOOP, column, key, start_ns):
                continue
            found = _Candidate(
                kind=RUNAWAY_LOOP,
                dimension=column,
                value=key,
                start_ns=start_ns,
                end_ns=end_ns,
                size_pico=sum(cell[1] for _, cell in window),
                ratio=float(calls / typical) if typical else None,
                rank=2.0 if column == "trace_id" else 1.0,  # the trace is the more precise scope
                mask=np.zeros(0, dtype=np.bool_),
                facts={
                    "calls": calls,
                    "typical_calls_per_minute": float(typical) if typical is not None else None,
                    "norm": flow.group or None,
                },
                context=flow.context,
            )
        for slot in [slot for slot in flow.slots if slot <= newest - WINDOW_SLOTS]:
            del flow.slots[slot]
        return found

    def _typical(self, kind: str, group: str) -> Decimal | None:
        peaks = self._norms.get(f"{kind}\x1f{group}")
        if peaks is None or len(peaks) < MIN_NORM_SAMPLES:
            return None
        ordered = sorted(peaks)
        middle = len(ordered) // 2
        if len(ordered) % 2:
            return Decimal(ordered[middle])
        return Decimal(ordered[middle - 1] + ordered[middle]) / 2

    def _learn(self, kind: str, flow: _Flow) -> None:
        if flow.runaway or flow.peak == 0:
            return  # a runaway is not the norm it is judged against
        key = f"{kind}\x1f{flow.group}"
        peaks = self._norms.get(key)
        if peaks is None:
            peaks = self._norms[key] = deque(maxlen=NORM_SAMPLES)
            while len(self._norms) > self.config.stream_max_keys:
                self._norms.popitem(last=False)
                self.evicted["workflow"] += 1
        else:
            self._norms.move_to_end(key)
        peaks.append(flow.peak)

    def _cap(self, kind: str, flows: OrderedDict[str, _Flow]) -> None:
        while len(flows) > self.config.stream_max_keys:
            _, oldest = flows.popitem(last=False)
            self._learn(kind, oldest)
            self.evicted[kind] += 1

    # -- spend spikes ----------------------------------------------------------------------------

    def _spikes(self, rows: pa.Table, now_ns: int) -> list[Anomaly]:
        touched: list[tuple[str, str, int]] = []
        oldest = (now_ns - self.horizon_ns) // self.window_ns
        for dimension in self.dimensions:
            grouped = rows.group_by([dimension, "window"], use_threads=False).aggregate([("pico", "sum")])
            for value, window, pico in zip(
                grouped[dimension].to_pylist(),
                grouped["window"].to_pylist(),
                grouped["pico_sum"].to_pylist(),
                strict=True,
            ):
                if value is None:
                    continue
                scope = self._scope(dimension, value)
                scope.windows[window] = scope.windows.get(window, 0) + pico
                scope.newest = max(scope.newest, window)
                if min(scope.windows) < oldest:
                    scope.windows = {w: spend for w, spend in scope.windows.items() if w >= oldest}
                touched.append((dimension, value, window))
        candidates: list[_Candidate] = []
        for dimension, value, window in touched:
            candidate = self._judge_window(dimension, value, window, now_ns)
            if candidate is not None:
                candidate.mask = _equals(rows[dimension], value) & (_int64(rows["window"]) == window)
                candidates.append(candidate)
        covered = self._covered(SPIKE, rows, self.dimensions, now_ns)
        anomalies: list[Anomaly] = []
        for group in self._incidents(SPIKE, candidates, covered):
            # The scope a reader knows best leads: the first in reports.anomalies.dimensions.
            group.sort(key=lambda member: self.dimensions.index(member.dimension))
            anomaly = _spike_anomaly(group, self.config, self.window_ns, self.baseline_windows)
            if self._first(anomaly):
                anomalies.append(anomaly)
            for member in group:
                self._cool(SPIKE, member.dimension, member.value, member.start_ns)
        return anomalies

    def _judge_window(self, dimension: str, value: str, window: int, now_ns: int) -> _Candidate | None:
        start_ns, end_ns = window * self.window_ns, (window + 1) * self.window_ns
        if end_ns < now_ns - self.lateness_ns:
            return None
        scope = self._scopes.get((dimension, value))
        if scope is None:
            return None  # this batch alone touched more than stream_max_keys: it went first
        history = scope.windows
        spend = history.get(window, 0)
        if spend < self.min_spike_pico or spend == 0:
            return None
        baseline = [
            history.get(w, 0) for w in range(window - self.baseline_windows, window) if w in self._active
        ]
        if len(baseline) < self.min_baseline_windows:
            return None
        median = _median(baseline)
        if median and Decimal(spend) < self.config.min_ratio * median:
            return None
        mad = _median([abs(Decimal(x) - median) for x in baseline])
        excess = Decimal(spend) - median
        if excess <= 0 or (mad and excess < self.config.threshold * mad):
            return None
        if self._cooling(SPIKE, dimension, value, start_ns):
            return None
        ratio = float(spend / median) if median else None
        return _Candidate(
            kind=SPIKE,
            dimension=dimension,
            value=value,
            start_ns=start_ns,
            end_ns=end_ns,
            size_pico=spend,
            ratio=ratio,
            rank=ratio if ratio is not None else float("inf"),
            mask=np.zeros(0, dtype=np.bool_),
            facts={
                "baseline_usd": format_amount(median.scaleb(-12)),
                "baseline_windows": len(baseline),
                "mads": round(float(excess / mad), 1) if mad else None,
            },
        )

    def _scope(self, dimension: str, value: str) -> _Scope:
        key = (dimension, value)
        scope = self._scopes.get(key)
        if scope is None:
            scope = self._scopes[key] = _Scope()
            while len(self._scopes) > self.config.stream_max_keys:
                self._scopes.popitem(last=False)
                self.evicted["scope"] += 1
        else:
            self._scopes.move_to_end(key)
        return scope

    # -- one incident, one alert -----------------------------------------------------------------

    def _incidents(self, kind: str, candidates: list[_Candidate], covered: Mask) -> list[list[_Candidate]]:
        """Candidates grouped by shared calls; those whose calls a recent alert covers are dropped."""
        groups: list[tuple[Mask, list[_Candidate]]] = []
        for candidate in sorted(candidates, key=lambda c: -c.rank):
            if not (candidate.mask & ~covered).any():
                self.suppressed[kind] += 1
                continue
            for index, (mask, members) in enumerate(groups):
                if (mask & candidate.mask).any():
                    members.append(candidate)
                    groups[index] = (mask | candidate.mask, members)
                    break
            else:
                groups.append((candidate.mask, [candidate]))
        return [members for _, members in groups]

    def _covered(self, kind: str, rows: pa.Table, dimensions: Iterable[str], now_ns: int) -> Mask:
        """Rows of ``rows`` in a scope of ``kind`` alerted within the cooldown."""
        covered = np.zeros(rows.num_rows, dtype=np.bool_)
        since = now_ns - self.cooldown_ns
        cooling: dict[str, list[str]] = {}
        for (cooled_kind, dimension, value), start in self._cooldown.items():
            if cooled_kind == kind and start >= since:
                cooling.setdefault(dimension, []).append(value)
        for dimension in dimensions:
            if dimension in cooling:
                covered |= np.asarray(
                    pc.fill_null(pc.is_in(rows[dimension], pa.array(cooling[dimension])), False),
                    dtype=np.bool_,
                )
        return covered

    def _cooling(self, kind: str, dimension: str, value: str, start_ns: int) -> bool:
        last = self._cooldown.get((kind, dimension, value))
        return last is not None and abs(start_ns - last) < self.cooldown_ns

    def _cool(self, kind: str, dimension: str, value: str, start_ns: int) -> None:
        key = (kind, dimension, value)
        self._cooldown[key] = max(start_ns, self._cooldown.get(key, start_ns))
        self._cooldown.move_to_end(key)
        while len(self._cooldown) > self.config.stream_max_keys:
            self._cooldown.popitem(last=False)

    def _first(self, anomaly: Anomaly) -> bool:
        if anomaly.alert_id in self._alerted:
            return False
        self._alerted[anomaly.alert_id] = anomaly.start_ns
        return True

    # -- forgetting ------------------------------------------------------------------------------

    def _expire(self, now_ns: int) -> None:
        for kind, _ in _FLOW_KINDS:
            flows = self._flows[kind]
            while flows:
                key, flow = next(iter(flows.items()))
                if flow.touched_ns >= now_ns - IDLE_NS:
                    break
                del flows[key]
                self._learn(kind, flow)
        oldest = (now_ns - self.horizon_ns) // self.window_ns
        for window in [w for w in self._active if w < oldest]:
            del self._active[window]
        while self._scopes:
            scope_key, scope = next(iter(self._scopes.items()))
            if scope.newest >= oldest:
                break
            del self._scopes[scope_key]
        quiet = now_ns - self.cooldown_ns - self.lateness_ns - self.horizon_ns
        while self._cooldown and next(iter(self._cooldown.values())) < quiet:
            self._cooldown.popitem(last=False)
        if self._alerted and min(self._alerted.values()) < quiet:  # alerts are rare: a short dict
            self._alerted = {key: start for key, start in self._alerted.items() if start >= quiet}


def _median(values: Sequence[int | Decimal]) -> Decimal:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return Decimal(ordered[middle])
    return (Decimal(ordered[middle - 1]) + Decimal(ordered[middle])) / 2


def _ns(duration: timedelta) -> int:
    return (duration.days * 86_400 + duration.seconds) * 10**9 + duration.microseconds * 1000


def _int64(column: pa.ChunkedArray | pa.Array) -> I64:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_timestamp(array.type):
        array = array.view(pa.int64())
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.int64)


def _equals(column: pa.ChunkedArray | pa.Array, value: str) -> Mask:
    return np.asarray(pc.fill_null(pc.equal(column, pa.scalar(value)), False), dtype=np.bool_)


def _dimension(calls: pa.Table, name: str) -> pa.ChunkedArray | pa.Array:
    sources = _ARROW_DIMENSIONS.get(name)
    if sources is None:
        if DIMENSIONS[name] != name:
            raise ValueError(f"dimension {name!r} has no Arrow expression")  # a new DIMENSIONS entry
        return calls[name]
    return pc.coalesce(*(calls[column] for column in sources))


# -- alerts -------------------------------------------------------------------------------------


def _sql_time(ns: int) -> str:
    return f"TIMESTAMPTZ {sql_literal(str(format_time(ns)))}"


def _dates(start_ns: int, end_ns: int) -> str:
    first = datetime.fromtimestamp(start_ns // 10**9, UTC).date()
    last = datetime.fromtimestamp((end_ns - 1) // 10**9, UTC).date()
    return f"date BETWEEN DATE '{first.isoformat()}' AND DATE '{last.isoformat()}'"


def _describe(scope: Mapping[str, str], names: Iterable[str]) -> str:
    return ", ".join(f"{name.removesuffix('_id')} {scope[name]}" for name in names if name in scope)


def _runaway_anomaly(group: list[_Candidate], config: AnomaliesConfig) -> Anomaly:
    primary = group[0]
    scope: dict[str, str] = {}
    for member in group:
        scope.update(member.context)
    for member in group:
        scope[member.dimension] = member.value
    calls = int(primary.facts["calls"])
    typical = primary.facts["typical_calls_per_minute"]
    who = "trace" if primary.dimension == "trace_id" else "session"
    context = _describe(
        scope, [name for name in ("session_id", "workflow", "service") if name != primary.dimension]
    )
    if typical is not None:
        per_minute = format_amount(Decimal(str(typical)))
        norm = f"{primary.ratio:.1f}x the norm of {primary.facts['norm']} ({per_minute} per minute)"
    else:
        norm = f"at or above the floor of {config.runaway_min_calls_per_minute} per minute"
    size = format_amount(pico_to_decimal(primary.size_pico))
    text = (
        f":repeat: otelcost runaway loop: {who} {primary.value}"
        f"{f' ({context})' if context else ''} made {calls} LLM calls in one minute from "
        f"{format_time(primary.start_ns)}, {norm}; {size} USD in that minute."
    )
    evidence = (
        "SELECT count(*) AS calls, sum(cost_usd) AS cost_usd, min(ts) AS first_call, max(ts) AS last_call "
        f"FROM llm_calls WHERE {_dates(primary.start_ns, primary.end_ns)} "
        f"AND {primary.dimension} = {sql_literal(primary.value)} "
        f"AND ts >= {_sql_time(primary.start_ns)} AND ts < {_sql_time(primary.end_ns)}"
    )
    return Anomaly(
        kind=RUNAWAY_LOOP,
        dimension=primary.dimension,
        scope=scope,
        start_ns=primary.start_ns,
        end_ns=primary.end_ns,
        size_pico=primary.size_pico,
        ratio=primary.ratio,
        text=text,
        evidence=evidence,
        details={
            **primary.facts,
            "limit_calls_per_minute": _limit(config, typical),
            "scopes": [member.dimension for member in group],
        },
    )


def _limit(config: AnomaliesConfig, typical: float | None) -> int:
    """The fewest calls per minute that are a runaway."""
    floor = config.runaway_min_calls_per_minute
    if typical is None:
        return floor
    return max(floor, int(config.runaway_factor * Decimal(str(typical))) + 1)


def _spike_anomaly(group: list[_Candidate], config: AnomaliesConfig, window_ns: int, windows: int) -> Anomaly:
    primary = group[0]
    scope = {member.dimension: member.value for member in group}
    minutes = format_amount(Decimal(window_ns) / (60 * 10**9))
    size = format_amount(pico_to_decimal(primary.size_pico))
    median = primary.facts["baseline_usd"]
    ratio = f"{primary.ratio:.1f}x" if primary.ratio is not None else "against no spend at all in"
    also = [f"{m.dimension}={m.value}" for m in group[1:]]
    text = (
        f":chart_with_upwards_trend: otelcost spend spike: {primary.dimension}={primary.value} "
        f"spent {size} USD in the {minutes} min from {format_time(primary.start_ns)}, {ratio} "
        f"the median of {median} USD per {minutes} min over the last "
        f"{format_amount(Decimal(windows * window_ns) / (60 * 10**9))} min."
        + (f" Same calls: {', '.join(also)}." if also else "")
    )
    start_baseline = primary.start_ns - windows * window_ns
    seconds = window_ns // 10**9
    evidence = (
        f"SELECT time_bucket(INTERVAL '{seconds} seconds', ts, TIMESTAMPTZ '1970-01-01 00:00:00+00') "
        "AS window_start, count(*) AS calls, sum(cost_usd) AS cost_usd "
        f"FROM llm_calls WHERE {_dates(start_baseline, primary.end_ns)} "
        f"AND {DIMENSIONS[primary.dimension]} = {sql_literal(primary.value)} "
        f"AND ts >= {_sql_time(start_baseline)} AND ts < {_sql_time(primary.end_ns)} "
        "GROUP BY window_start ORDER BY window_start"
    )
    return Anomaly(
        kind=SPIKE,
        dimension=primary.dimension,
        scope=scope,
        start_ns=primary.start_ns,
        end_ns=primary.end_ns,
        size_pico=primary.size_pico,
        ratio=primary.ratio,
        text=text,
        evidence=evidence,
        details={
            **primary.facts,
            "window": config.model_dump(mode="json")["spike_window"],
            "scopes": [member.dimension for member in group],
        },
    )


# -- the pipeline sink ---------------------------------------------------------------------------


def seed_sql(dimensions: Sequence[str]) -> str:
    """Spend per dimension value and spike window since ``$since``, and the traffic per window."""
    where = "FROM llm_calls WHERE date >= $first_day AND ts >= $since"
    parts = [
        f"SELECT '{name}' AS dimension, CAST({DIMENSIONS[name]} AS VARCHAR) AS value, "
        f"epoch_us(ts) // $window_us AS window, CAST(sum(cost_usd) AS DECIMAL(38, 12)) AS cost_usd "
        f"{where} GROUP BY ALL"
        for name in dimensions
    ]
    parts.append(
        "SELECT CAST(NULL AS VARCHAR) AS dimension, CAST(NULL AS VARCHAR) AS value, "
        f"epoch_us(ts) // $window_us AS window, CAST(sum(cost_usd) AS DECIMAL(38, 12)) AS cost_usd "
        f"{where} GROUP BY ALL"
    )
    return " UNION ALL ".join(parts)


class LiveAnomalies:
    """The pipeline sink of the live detectors: detect, record once, deliver.

    ``delivery`` sends payloads (an ``AlertDispatcher``); ``journal`` remembers what was sent
    across restarts (None: nothing is); ``lake`` rebuilds the spike baselines at start (None:
    they are learned from the stream). ``clock_ns`` is the wall clock.
    """

    def __init__(
        self,
        config: AnomaliesConfig,
        *,
        delivery: Delivery,
        journal: AlertJournal | None = None,
        lake: LakeQuery | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.config = config
        self.detector = StreamingDetector(config)
        self.delivery = delivery
        self._journal = journal
        self._lake = lake
        self._clock_ns = clock_ns
        self._lock = threading.Lock()
        self.consume_errors = 0
        self.seconds = 0.0

    @classmethod
    def for_serve(
        cls,
        config: AnomaliesConfig,
        *,
        alerts: AlertsConfig,
        data_dir: Path,
        lake_dir: Path,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> LiveAnomalies:
        """The sink of a serve process: alerts to ``budgeting.alerts``, journal under
        ``<data_dir>/anomalies``, baselines rebuilt from the lake in ``lake_dir``."""
        journal = AlertJournal(data_dir / "anomalies")
        dispatcher = AlertDispatcher(alerts, on_done=lambda alert, outcome: journal.record(outcome, alert))
        return cls(config, delivery=dispatcher, journal=journal, lake=lake_query(lake_dir), clock_ns=clock_ns)

    def start(self) -> None:
        """Restore the journal, rebuild the spike baselines from the lake, start delivering."""
        now = self._clock_ns()
        pending: list[dict[str, Any]] = []
        with self._lock:
            if self._journal is not None:
                kept: list[dict[str, Any]] = []

                def recent(payload: dict[str, Any]) -> bool:
                    # Asked once for every alert in the journal: the ones kept are also the
                    # ones whose ids and cooldowns the detector must know.
                    start = parse_time(payload.get("start"))
                    if start is None or start < now - JOURNAL_KEEP_NS:
                        return False
                    kept.append(payload)
                    return True

                _, pending = self._journal.load(keep_if=recent)
                for payload in kept:
                    self.detector.remember(payload)
            if self._lake is not None:
                self._seed(self._lake, now)
        self.delivery.start()
        for payload in pending:
            self.delivery.submit(payload)

    def _seed(self, lake: LakeQuery, now_ns: int) -> None:
        detector = self.detector
        since_ns = now_ns - detector.horizon_ns
        since = datetime.fromtimestamp(since_ns // 10**9, UTC)
        started = time.monotonic()
        try:
            rows = lake(
                seed_sql(detector.dimensions),
                {"since": since, "first_day": since.date(), "window_us": detector.window_ns // 1000},
            )
            detector.seed_spend(rows)
        except Exception as exc:  # the baselines are then learned from the stream
            log.warning("live anomaly baselines could not be rebuilt from the lake: %s", exc)
            return
        log.info(
            "live anomaly baselines rebuilt from the lake in %.2fs (%d scopes)",
            time.monotonic() - started,
            detector.tracked["scope"],
        )

    def shutdown(self) -> None:
        """Stop delivering; alerts still queued stay pending in the journal for the next start."""
        self.delivery.shutdown()

    def consume(self, batch: pa.Table) -> None:
        """Detect over ``batch``; never raises (the lake has already taken it)."""
        if batch.num_rows == 0:
            return
        started = time.perf_counter()
        try:
            with self._lock:
                anomalies = self.detector.observe(batch, self._clock_ns())
        except Exception:
            self.consume_errors += 1
            log.exception("live anomaly detection over a batch of %d rows failed", batch.num_rows)
            return
        finally:
            self.seconds += time.perf_counter() - started
        for anomaly in anomalies:
            payload = anomaly.payload()
            log.warning("%s", anomaly.text)
            if self._journal is not None:
                self._journal.record("crossed", anomaly.alert_id, payload)
            self.delivery.submit(payload)

    def counters(self) -> StreamingCounters:
        with self._lock:
            detector = self.detector
            return StreamingCounters(
                calls_seen=detector.calls_seen,
                calls_ignored=dict(detector.calls_ignored),
                raised=dict(detector.raised),
                suppressed=dict(detector.suppressed),
                evicted=dict(detector.evicted),
                tracked=detector.tracked,
                consume_errors=self.consume_errors,
                seconds=self.seconds,
                alerts_delivered=self.delivery.delivered,
                alerts_failed=self.delivery.failed,
                alerts_dropped=self.delivery.dropped,
                alerts_pending=self.delivery.pending,
            )
