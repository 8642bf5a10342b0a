"""The memory of recent calls: by span, by provider response id, by fingerprint.

Two spans are the same provider call when

- **response id**: they carry the same provider response id (``response_id`` column) and come
  from the same ``service`` (whatever their traces) or the same trace (whatever their services:
  an application and the LLM gateway it calls both report the gateway's call); or, where one
  of them has no id,
- **fingerprint**: same ``service``, ``provider`` and token counts (input and output), a model
  name in common (request or response model, either side), reported by two different
  instrumentation scopes (one library does not report a call twice), and overlapping in time,
  with starts and ends each within ``tolerance`` of the other's (the two spans of one call are
  both open while it runs; two calls made one after the other never overlap). Two spans that
  both carry an id are never matched this way: two different ids are two different calls.

Each remembered call (:class:`Held`) also keeps where its stored row is (a zero-copy slice of
its batch, without the attribute maps) and its attribution now, so a later change can be written
as *before* and *after*. A call is forgotten ``window`` after it arrived, or oldest first beyond
``max_calls``. The memory lives in the serve process; a restart forgets it (docs/conventions.md).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

import pyarrow as pa

__all__ = ["NO_END", "CallIndex", "Fingerprint", "Held"]

Fingerprint = tuple[str | None, str | None, int, int]
"""(service, provider, input_tokens, output_tokens)."""

NO_END: Final = -1


@dataclass(slots=True, eq=False)
class Held:
    """A remembered call."""

    trace_id: str
    span_id: str
    response_id: str | None
    models: tuple[str, ...]
    start_us: int
    end_us: int
    scope: str | None
    stored: pa.Table
    """The batch the call's row is in (no attribute maps), shared by the batch's calls."""
    position: int
    """Its row in ``stored``."""
    batch_row: int | None = None
    """Its row in the batch being settled, None once that batch is done."""
    dims: tuple[str | None, ...] | None = None
    """Its attribution now, when it changed since it was stored (else read from ``stored``)."""
    missing: tuple[str, ...] = ()
    """With ``dims``: the required dimensions it still lacks."""
    carried: frozenset[str] = frozenset()
    """Dimensions it took from spans folded into it."""
    service: str | None = None
    id_trace: str | None = None
    """With the response id: the service and trace id its id is indexed under."""
    fingerprint: Fingerprint | None = None
    forgotten: bool = False


class CallIndex:
    """Not thread-safe: the stage (``stage.py``) holds a lock around every use."""

    def __init__(self, *, window_us: int, max_calls: int, tolerance_us: int) -> None:
        self._window_us = window_us
        self._max_calls = max_calls
        self._tolerance_us = tolerance_us
        self._by_span: dict[tuple[str, str], Held] = {}
        self._by_id: dict[tuple[str | None, str], Held] = {}
        """(service, response id) -> the call."""
        self._by_trace_id: dict[tuple[str, str], Held] = {}
        """(trace id, response id) -> the call."""
        self._by_fingerprint: dict[Fingerprint, list[Held]] = {}
        self._arrivals: deque[tuple[int, Held]] = deque()

    def __len__(self) -> int:
        return len(self._by_span)

    def evict(self, now_us: int) -> None:
        cutoff = now_us - self._window_us
        arrivals = self._arrivals
        while arrivals and (arrivals[0][0] < cutoff or len(self._by_span) > self._max_calls):
            self.forget(arrivals.popleft()[1])

    def find_span(self, trace_id: str, span_id: str) -> Held | None:
        return self._by_span.get((trace_id, span_id))

    def find_by_id(self, service: str | None, trace_id: str, response_id: str) -> Held | None:
        return self._by_id.get((service, response_id)) or self._by_trace_id.get((trace_id, response_id))

    def find_by_fingerprint(
        self,
        fingerprint: Fingerprint,
        response_id: str | None,
        models: tuple[str, ...],
        scope: str | None,
        span: tuple[int, int],
    ) -> Held | None:
        """The remembered call this span matches by fingerprint (see the module docstring)."""
        candidates = self._by_fingerprint.get(fingerprint)
        if not candidates:
            return None
        tolerance = self._tolerance_us
        start_us, end_us = span
        for held in candidates:
            if response_id is not None and held.response_id is not None:
                continue
            if held.scope == scope or abs(held.start_us - start_us) > tolerance:
                continue
            if NO_END not in (end_us, held.end_us) and (
                abs(held.end_us - end_us) > tolerance
                or max(start_us, held.start_us) > min(end_us, held.end_us)
            ):
                continue
            if not models or not held.models or any(model in held.models for model in models):
                return held
        return None

    def remember(
        self, held: Held, *, service: str | None, fingerprint: Fingerprint | None, now_us: int
    ) -> None:
        self._by_span[held.trace_id, held.span_id] = held
        if held.response_id is not None:
            self._index_id(held, service, held.response_id)
        if fingerprint is not None:
            held.fingerprint = fingerprint
            self._by_fingerprint.setdefault(fingerprint, []).append(held)
        self._arrivals.append((now_us, held))

    def adopt_id(self, held: Held, service: str | None, response_id: str) -> None:
        """``held`` (remembered without an id) turned out to have ``response_id``: index it."""
        if held.response_id is None:
            held.response_id = response_id
            self._index_id(held, service, response_id)

    def _index_id(self, held: Held, service: str | None, response_id: str) -> None:
        held.service, held.id_trace = service, held.trace_id
        self._by_id.setdefault((service, response_id), held)
        self._by_trace_id.setdefault((held.trace_id, response_id), held)

    def replace_span(self, held: Held, trace_id: str, span_id: str) -> None:
        """``held`` now stands for another span of the same call (a better survivor)."""
        if self._by_span.get((held.trace_id, held.span_id)) is held:
            del self._by_span[held.trace_id, held.span_id]
        held.trace_id, held.span_id = trace_id, span_id
        self._by_span[trace_id, span_id] = held

    def forget(self, held: Held) -> None:
        """Drop ``held`` from the index (evicted, or its batch was not committed)."""
        if held.forgotten:
            return
        held.forgotten = True
        if self._by_span.get((held.trace_id, held.span_id)) is held:
            del self._by_span[held.trace_id, held.span_id]
        if held.response_id is not None:
            by_service = (held.service, held.response_id)
            if self._by_id.get(by_service) is held:
                del self._by_id[by_service]
            by_trace = (held.id_trace or held.trace_id, held.response_id)
            if self._by_trace_id.get(by_trace) is held:
                del self._by_trace_id[by_trace]
        if held.fingerprint is not None:
            bucket = self._by_fingerprint.get(held.fingerprint)
            if bucket is not None:
                bucket[:] = [other for other in bucket if other is not held]
                if not bucket:
                    del self._by_fingerprint[held.fingerprint]
