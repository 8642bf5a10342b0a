"""Calls whose ancestors have not all arrived yet, and what they say once they do.

A span is exported when it ends, so the span around an LLM call (an HTTP handler that sets
``app.team``, an agent run that sets the workflow) usually ends, and arrives, *after* the call.
When it comes in the same export request as the call, attribution reads it as usual. When it
comes later, the call was already emitted without it. So every emitted call whose chain of
ancestors is still open (it ends at a span not seen yet) is remembered here, with the attribute
values it was attributed from; when a later request brings a span of its trace, the call is
attributed again over the ancestors known now. A call whose attribution changed is *proposed*:
a row of the call (the columns the normalizer made, attribute maps left empty) with the new
attribution and ``attribution_change`` = ``proposed``. The settle stage turns it into a
before/after pair that moves the call's spend (``otelcost/settle``).

A call stops waiting once its chain is complete (it reaches a root, or ``max_depth``), or
``window`` after it was emitted, or, beyond ``max_calls``, oldest first. The budget counts the
call at once under its first attribution; only the attribution settles later.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

import pyarrow as pa

from otelcost.normalize.attribution import Attribution
from otelcost.normalize.lineage import TraceMemory
from otelcost.normalize.spans import Draft
from otelcost.schema import (
    ATTRIBUTION_DIMENSIONS,
    CALL_SCHEMA,
    CHANGE_PROPOSED,
    REASON_LATE_ANCESTOR,
)
from otelcost.tables import gather_rows

__all__ = ["PendingCalls"]

_KEPT_COLUMNS: Final = tuple(
    name for name in CALL_SCHEMA.names if name not in ("attributes", "resource_attributes")
)

Attribute = Callable[
    [
        Mapping[str, Any],
        Mapping[str, Any],
        str | None,
        Callable[[], Sequence[Mapping[str, Any]]],
        Mapping[str, str] | None,
    ],
    Attribution,
]


@dataclass(slots=True, eq=False)
class _Pending:
    key: bytes
    parent_key: bytes
    tags: Mapping[str, Any]
    resource: Mapping[str, Any]
    service: str | None
    bind: Mapping[str, str] | None
    """The API key's bound dimensions: they still win when the call is attributed again."""
    values: tuple[str | None, ...]
    stored: pa.Table
    position: int
    done: bool = False


class PendingCalls:
    """Not thread-safe: the normalizer calls it under its lock."""

    def __init__(
        self, memory: TraceMemory, span_keys: frozenset[str], *, window_ns: int, max_calls: int
    ) -> None:
        self._memory = memory
        self._span_keys = span_keys
        self._window_ns = window_ns
        self._max_calls = max_calls
        self._by_trace: dict[bytes, list[_Pending]] = {}
        self._arrivals: deque[tuple[int, _Pending]] = deque()
        self._size = 0
        self.proposed = 0

    def __len__(self) -> int:
        return self._size

    @property
    def traces(self) -> Mapping[bytes, object]:
        """The trace ids with calls waiting (the normalizer notes which of them a request touches)."""
        return self._by_trace

    def evict(self, now_ns: int) -> None:
        cutoff = now_ns - self._window_ns
        while self._arrivals and (self._arrivals[0][0] < cutoff or self._size > self._max_calls):
            self._drop(self._arrivals.popleft()[1])

    def add(
        self, kept: Sequence[Draft], attributions: Sequence[Attribution], table: pa.Table, now_ns: int
    ) -> None:
        """Remember the calls of this request whose chain of ancestors is still open."""
        stored: pa.Table | None = None
        memory = self._memory
        for position, draft in enumerate(kept):
            parent = draft.parent_key
            if parent is None or memory.chain_complete(parent):
                continue
            if stored is None:
                stored = table.select(list(_KEPT_COLUMNS))  # zero-copy, without the maps
            common = self._span_keys.intersection(draft.attrs)
            tags = {k: draft.attrs[k] for k in common}
            pending = _Pending(
                draft.key,
                parent,
                tags,
                draft.resource.attrs,
                draft.resource.service,
                None if draft.resource.key is None else draft.resource.key.bind,
                attributions[position].values,
                stored,
                position,
            )
            self._by_trace.setdefault(draft.key[:16], []).append(pending)
            self._arrivals.append((now_ns, pending))
            self._size += 1
        while self._size > self._max_calls:
            self._drop(self._arrivals.popleft()[1])

    def revisit(self, traces: Iterable[bytes], attribute: Attribute) -> pa.Table | None:
        """Attribute the waiting calls of ``traces`` again; the proposals (CALL_SCHEMA), if any."""
        memory = self._memory
        changed: list[tuple[_Pending, Attribution]] = []
        for trace in traces:
            for pending in list(self._by_trace.get(trace, ())):
                parent = pending.parent_key
                attribution = attribute(
                    pending.tags,
                    pending.resource,
                    pending.service,
                    partial(memory.ancestor_tags, parent),
                    pending.bind,
                )
                if attribution.values != pending.values:
                    pending.values = attribution.values
                    changed.append((pending, attribution))
                if memory.chain_complete(parent):
                    self._drop(pending)
        if not changed:
            return None
        self.proposed += len(changed)
        return _proposals(changed)

    def _drop(self, pending: _Pending) -> None:
        if pending.done:
            return
        pending.done = True
        self._size -= 1
        trace = pending.key[:16]
        waiting = self._by_trace.get(trace)
        if waiting is not None:
            waiting.remove(pending)
            if not waiting:
                del self._by_trace[trace]


def _proposals(changed: list[tuple[_Pending, Attribution]]) -> pa.Table:
    rows = gather_rows([(pending.stored, pending.position) for pending, _ in changed])
    n = rows.num_rows
    columns: dict[str, Any] = {
        name: pa.array([a.values[index] for _, a in changed], type=pa.string())
        for index, name in enumerate(ATTRIBUTION_DIMENSIONS)
    }
    columns["missing_dimensions"] = pa.array(
        [list(a.missing) for _, a in changed], type=CALL_SCHEMA.field("missing_dimensions").type
    )
    columns["attribution_status"] = pa.array(["incomplete" if a.missing else "complete" for _, a in changed])
    columns["attribution_change"] = pa.array([CHANGE_PROPOSED] * n)
    columns["attribution_change_reason"] = pa.array([REASON_LATE_ANCESTOR] * n)
    arrays = [
        columns[f.name]
        if f.name in columns
        else rows[f.name]
        if f.name in _KEPT_COLUMNS
        else pa.nulls(n, f.type)
        for f in CALL_SCHEMA
    ]
    return pa.Table.from_arrays(arrays, schema=CALL_SCHEMA)
