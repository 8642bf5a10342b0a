"""The settle stage: a priced batch in, the batch as it must be stored and counted out.

Runs in the serve process, just before a batch is committed (``Pipeline.commit``), for batches
it prepared itself and for those of receiver workers alike. Two jobs, on one memory of recent
calls (:class:`~otelcost.settle.index.CallIndex`):

**One call, many spans.** A provider SDK that traces itself (the anthropic SDK's
``anthropic.messages.create``) and an instrumentation library (OpenLLMetry, OpenInference)
around it report one provider call twice, often in two traces, where the nesting rule cannot
see it. Every call is matched against the calls remembered and the rows before it in the batch
(``index.py`` says when two spans are one call); a match is *folded*: its
``duplicate_of_trace_id``, ``duplicate_of_span_id`` and ``duplicate_reason`` name the call it
repeats. The lake stores folded rows in ``duplicate_spans``; the budgets never count them.
Which span survives: within a batch the best one (:func:`_preference`: more token classes
reported, then more attribution dimensions, then the earlier row), which takes every dimension
it lacks from the spans folded into it; across batches the first to arrive, which was counted
already: when the later span has dimensions it lacks, they are carried over as an attribution
change (``folded_span``).

**Attribution that arrives late.** The normalizer sends a ``proposed`` row when the ancestors of
a call it emitted arrived afterwards and the call's attribution is now different
(``late_ancestor``). Here it becomes an attribution change against what the call has now.

An attribution change is a *before* and an *after* row (``changes.py``): the lake stores them in
``attribution_changes`` and its ``llm_calls`` view shows the latest *after*; the budgets move the
spend from the one scope to the other.

A batch that is then refused (a full buffer, a failed spool append) is withdrawn: its calls must
not make the sender's retry, or another span of the same call, look like a duplicate of
something never stored. (A change it made to a remembered call's attribution stays: the retry
carries the same span and finds no change left to make, so at worst the change is lost, never
counted twice.)
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from otelcost.schema import ATTRIBUTION_DIMENSIONS
from otelcost.settle.changes import (
    PROPOSED,
    REASON_FOLDED_SPAN,
    REASON_LATE_ANCESTOR,
    STORED_COLUMNS,
    Attribution,
    attribution_of,
    change_rows,
)
from otelcost.settle.config import SettleConfig
from otelcost.settle.index import NO_END, CallIndex, Fingerprint, Held
from otelcost.tables import gather_rows

__all__ = ["REASON_FINGERPRINT", "REASON_RESPONSE_ID", "SettleCounters", "Settled", "Settler"]

REASON_RESPONSE_ID: Final = "response_id"
REASON_FINGERPRINT: Final = "fingerprint"

_KEY_COLUMNS: Final = (
    "trace_id",
    "span_id",
    "service",
    "scope_name",
    "provider",
    "response_id",
    "request_model",
    "response_model",
    "input_tokens",
    "output_tokens",
)
_TOKEN_COLUMNS: Final = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)
_PROPOSED: Final = pa.scalar(PROPOSED)


@dataclass(frozen=True)
class Settled:
    """A batch after :meth:`Settler.settle`. ``table is`` the input when nothing changed."""

    table: pa.Table
    folded: Counter[str] = field(default_factory=Counter)
    """Rows folded into another call, by reason."""
    changes: Counter[str] = field(default_factory=Counter)
    """Attribution changes written, by reason."""
    dropped_proposals: int = 0
    """Proposed changes of calls no longer remembered, or that changed nothing."""
    carried: Counter[str] = field(default_factory=Counter)
    """Dimensions calls took from the spans folded into them."""
    remembered: tuple[Held, ...] = ()
    """The calls of this batch now remembered (what :meth:`Settler.withdraw` takes back)."""


@dataclass
class SettleCounters:
    """Running totals of committed batches, for self-metrics (:meth:`Settler.counters_snapshot`)."""

    folded: Counter[str] = field(default_factory=Counter)
    changes: Counter[str] = field(default_factory=Counter)
    dropped_proposals: int = 0
    attribution_carried: Counter[str] = field(default_factory=Counter)
    remembered_calls: int = 0
    """Calls remembered now (a gauge)."""
    seconds: float = 0.0
    """Time spent settling batches."""


@dataclass
class _Change:
    held: Held
    before: Attribution
    after: Attribution
    reason: str
    source: tuple[pa.Table, int]
    """The call's row: a table (RECORD_SCHEMA, or at least STORED_COLUMNS) and its index."""


class Settler:
    """Settles priced batches (``RECORD_SCHEMA``). Thread-safe."""

    def __init__(self, config: SettleConfig, *, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.config = config
        self._clock_ns = clock_ns
        self._index = CallIndex(
            window_us=int(config.window.total_seconds() * 1e6),
            max_calls=config.max_calls,
            tolerance_us=int(config.fingerprint_tolerance.total_seconds() * 1e6),
        )
        self._lock = threading.Lock()
        self._counters = SettleCounters()

    def counters_snapshot(self) -> SettleCounters:
        with self._lock:
            c = self._counters
            return SettleCounters(
                Counter(c.folded),
                Counter(c.changes),
                c.dropped_proposals,
                Counter(c.attribution_carried),
                len(self._index),
                c.seconds,
            )

    def settle(self, batch: pa.Table) -> Settled:
        """Fold repeated calls, carry their attribution over, turn proposals into changes."""
        if batch.num_rows == 0:
            return Settled(batch)
        started = time.perf_counter()
        with self._lock:
            settled = self._settle(batch)
            self._counters.seconds += time.perf_counter() - started
        return settled

    def committed(self, settled: Settled) -> None:
        """Count a settled batch that is now committed (the counters count only those)."""
        if settled.folded or settled.changes or settled.dropped_proposals:
            with self._lock:
                c = self._counters
                c.folded.update(settled.folded)
                c.changes.update(settled.changes)
                c.dropped_proposals += settled.dropped_proposals
                c.attribution_carried.update(settled.carried)

    def withdraw(self, settled: Settled) -> None:
        """Forget the calls of a batch that was not committed after all."""
        with self._lock:
            for held in settled.remembered:
                self._index.forget(held)

    # -- the batch ---------------------------------------------------------------------------

    def _settle(self, batch: pa.Table) -> Settled:
        now_us = self._clock_ns() // 1000
        self._index.evict(now_us)
        proposals: pa.Table | None = None
        calls = batch
        if batch["attribution_change"].null_count != batch.num_rows:  # calls only, usually
            proposed_mask = pc.equal(batch["attribution_change"], _PROPOSED)
            proposals = batch.filter(proposed_mask)
            calls = batch.filter(pc.invert(pc.fill_null(proposed_mask, False)))
        folds: dict[int, tuple[Held, str]] = {}
        remembered: list[Held] = []
        changes: list[_Change] = []
        carried: Counter[str] = Counter()
        if calls.num_rows:
            folds = self._match(calls, now_us, remembered, changes, carried)
        marked = calls
        if folds:
            marked = _with_folds(_carry_in_batch(calls, folds, carried), folds)
            stored = marked.select(list(STORED_COLUMNS))  # with the attribution carried in
            for held in remembered:
                held.stored = stored
        for held in remembered:
            held.batch_row = None
        dropped = 0
        if proposals is not None and proposals.num_rows:
            dropped = self._propose(proposals, changes)
        if not folds and not changes and proposals is None:
            return Settled(batch, remembered=tuple(remembered))
        parts = [marked] if marked.num_rows else []
        if changes:
            projected: dict[int, pa.Table] = {}  # one projection per source table, not per row
            sources = []
            for table, row in (change.source for change in changes):
                if id(table) not in projected:
                    projected[id(table)] = table.select(list(STORED_COLUMNS))
                sources.append((projected[id(table)], row))
            parts.append(
                change_rows(
                    gather_rows(sources),
                    [c.before for c in changes],
                    [c.after for c in changes],
                    [c.reason for c in changes],
                    now_us,
                )
            )
        table = pa.concat_tables(parts) if parts else batch.slice(0, 0)
        return Settled(
            table,
            Counter(reason for _, reason in folds.values()),
            Counter(c.reason for c in changes),
            dropped,
            carried,
            tuple(remembered),
        )

    def _match(
        self,
        calls: pa.Table,
        now_us: int,
        remembered: list[Held],
        changes: list[_Change],
        carried: Counter[str],
    ) -> dict[int, tuple[Held, str]]:
        """Remember every call of ``calls``; return the rows folded into another call."""
        index = self._index
        column = {name: calls.column(name).to_pylist() for name in _KEY_COLUMNS}
        trace_ids, span_ids, services = column["trace_id"], column["span_id"], column["service"]
        providers, response_ids = column["provider"], column["response_id"]
        request_models, response_models = column["request_model"], column["response_model"]
        inputs, outputs = column["input_tokens"], column["output_tokens"]
        scopes = column["scope_name"]
        starts = calls.column("ts").cast(pa.int64()).to_pylist()
        ends = calls.column("end_ts").cast(pa.int64()).fill_null(NO_END).to_pylist()
        stored = calls.select(list(STORED_COLUMNS))  # zero-copy: the maps are not kept alive
        dedup, use_fingerprint = self.config.dedup, self.config.dedup and self.config.fingerprint
        preference = _Preference(calls)
        folds: dict[int, tuple[Held, str]] = {}
        for row in range(calls.num_rows):
            service, response_id = services[row], response_ids[row]
            models = tuple(m for m in (request_models[row], response_models[row]) if m)
            fingerprint: Fingerprint | None = None
            if use_fingerprint and (inputs[row] or outputs[row]):
                fingerprint = (service, providers[row], inputs[row], outputs[row])
            match: Held | None = None
            reason = REASON_RESPONSE_ID
            if dedup and response_id is not None:
                match = index.find_by_id(service, trace_ids[row], response_id)
            if match is None and fingerprint is not None:
                match = index.find_by_fingerprint(
                    fingerprint, response_id, models, scopes[row], (starts[row], ends[row])
                )
                reason = REASON_FINGERPRINT
            if match is None or (match.trace_id, match.span_id) == (trace_ids[row], span_ids[row]):
                if match is None and index.find_span(trace_ids[row], span_ids[row]) is None:
                    held = Held(
                        trace_ids[row],
                        span_ids[row],
                        response_id,
                        models,
                        starts[row],
                        ends[row],
                        scopes[row],
                        stored,
                        row,
                    )
                    held.batch_row = row
                    index.remember(held, service=service, fingerprint=fingerprint, now_us=now_us)
                    remembered.append(held)
                # else: the same span again (a retry); the lake's replay rules and the
                # evaluator's span key cover it.
                continue
            if match.batch_row is not None and preference.better(row, match.batch_row):
                # Both in this batch, and this row is the better survivor: it takes the place
                # (rows folded into ``match`` follow, since they refer to the same Held).
                folds[match.batch_row] = (match, reason)
                index.replace_span(match, trace_ids[row], span_ids[row])
                match.position = match.batch_row = row
            else:
                folds[row] = (match, reason)
                if match.batch_row is None:
                    self._carry_across(match, calls, row, changes, carried)
            if response_id is not None and match.response_id is None:
                index.adopt_id(match, service, response_id)
            match.models = tuple(dict.fromkeys((*match.models, *models)))
        return folds

    def _carry_across(
        self, survivor: Held, calls: pa.Table, row: int, changes: list[_Change], carried: Counter[str]
    ) -> None:
        """A span of an earlier batch's call brings dimensions the call lacks: change it."""
        values, _ = attribution_of(calls, row)
        if all(value is None for value in values):
            return
        before = self._current(survivor)
        filled = tuple(b if b is not None else v for b, v in zip(before[0], values, strict=True))
        if filled == before[0]:
            return
        after = (filled, tuple(d for d in before[1] if filled[ATTRIBUTION_DIMENSIONS.index(d)] is None))
        newly = {d for d, b, a in zip(ATTRIBUTION_DIMENSIONS, before[0], filled, strict=True) if b != a}
        survivor.carried = survivor.carried | newly
        carried.update(newly)
        source = (survivor.stored, survivor.position)
        self._record(_Change(survivor, before, after, REASON_FOLDED_SPAN, source), changes)

    def _propose(self, proposals: pa.Table, changes: list[_Change]) -> int:
        """Turn the normalizer's proposed attribution of stored calls into changes."""
        index = self._index
        trace_ids, span_ids = proposals["trace_id"].to_pylist(), proposals["span_id"].to_pylist()
        found = [index.find_span(t, s) for t, s in zip(trace_ids, span_ids, strict=True)]
        known = [row for row, held in enumerate(found) if held is not None]
        dropped = len(found) - len(known)
        proposed = [proposals.column(name).to_pylist() for name in ATTRIBUTION_DIMENSIONS]
        helds = [held for held in found if held is not None]
        for row, held, as_read in zip(known, helds, _currents(helds), strict=True):
            # An earlier proposal of this batch may have changed it since it was read.
            before = (held.dims, held.missing) if held.dims is not None else as_read
            # Ancestors only ever add or outrank values; what a folded span carried stays.
            values = tuple(
                p[row] if p[row] is not None else b for p, b in zip(proposed, before[0], strict=True)
            )
            if values == before[0]:
                dropped += 1
                continue
            after = (values, tuple(d for d in before[1] if values[ATTRIBUTION_DIMENSIONS.index(d)] is None))
            self._record(_Change(held, before, after, REASON_LATE_ANCESTOR, (proposals, row)), changes)
        return dropped

    def _current(self, held: Held) -> Attribution:
        return _currents([held])[0]

    @staticmethod
    def _record(change: _Change, changes: list[_Change]) -> None:
        change.held.dims, change.held.missing = change.after
        changes.append(change)


def _currents(helds: Sequence[Held]) -> list[Attribution]:
    """The attribution of each remembered call now: as changed, else as stored (read with one
    ``take`` per stored batch)."""
    currents: list[Attribution | None] = [
        (held.dims, held.missing) if held.dims is not None else None for held in helds
    ]
    unread = [
        (held.stored, held.position) for held, current in zip(helds, currents, strict=True) if current is None
    ]
    if unread:
        rows = gather_rows(unread).select([*ATTRIBUTION_DIMENSIONS, "missing_dimensions"])
        columns = [rows.column(name).to_pylist() for name in ATTRIBUTION_DIMENSIONS]
        missing = rows.column("missing_dimensions").to_pylist()
        read = iter(range(rows.num_rows))
        for slot, current in enumerate(currents):
            if current is None:
                row = next(read)
                currents[slot] = (tuple(c[row] for c in columns), tuple(missing[row] or ()))
    return [current for current in currents if current is not None]


class _Preference:
    """Which of two rows of a batch makes the better survivor (read only for rows that match)."""

    def __init__(self, batch: pa.Table) -> None:
        self._batch = batch

    def _score(self, row: int) -> tuple[int, int, int]:
        batch = self._batch
        tokens = sum(1 for name in _TOKEN_COLUMNS if batch.column(name)[row].as_py())
        dimensions = sum(1 for name in ATTRIBUTION_DIMENSIONS if batch.column(name)[row].is_valid)
        return tokens, dimensions, -row

    def better(self, row: int, than: int) -> bool:
        return self._score(row) > self._score(than)


def _carry_in_batch(batch: pa.Table, folds: dict[int, tuple[Held, str]], carried: Counter[str]) -> pa.Table:
    """Fill the dimensions each survivor in this batch lacks from the rows folded into it."""
    survivors: dict[int, list[int]] = {}
    for row, (held, _) in folds.items():
        if held.batch_row is not None:
            survivors.setdefault(held.batch_row, []).append(row)
    if not survivors:
        return batch
    columns = {name: batch.column(name).to_pylist() for name in ATTRIBUTION_DIMENSIONS}
    missing = batch.column("missing_dimensions").to_pylist()
    changed = False
    for survivor, folded_rows in survivors.items():
        for name, values in columns.items():
            if values[survivor] is not None:
                continue
            value = next((values[r] for r in sorted(folded_rows) if values[r] is not None), None)
            if value is not None:
                values[survivor] = value
                carried[name] += 1
                changed = True
        if missing[survivor]:
            missing[survivor] = [d for d in missing[survivor] if columns[d][survivor] is None]
    if not changed:
        return batch
    for name, values in columns.items():
        batch = _replace(batch, name, values)
    batch = _replace(batch, "missing_dimensions", missing)
    return _replace(batch, "attribution_status", ["incomplete" if m else "complete" for m in missing])


def _replace(batch: pa.Table, name: str, values: list[object]) -> pa.Table:
    position = batch.schema.get_field_index(name)
    field = batch.schema.field(name)
    return batch.set_column(position, field, pa.array(values, type=field.type))


def _with_folds(batch: pa.Table, folds: dict[int, tuple[Held, str]]) -> pa.Table:
    n = batch.num_rows
    of_trace: list[object] = [None] * n
    of_span: list[object] = [None] * n
    reasons: list[object] = [None] * n
    for row, (held, reason) in folds.items():
        of_trace[row], of_span[row], reasons[row] = held.trace_id, held.span_id, reason
    batch = _replace(batch, "duplicate_of_trace_id", of_trace)
    batch = _replace(batch, "duplicate_of_span_id", of_span)
    return _replace(batch, "duplicate_reason", reasons)
