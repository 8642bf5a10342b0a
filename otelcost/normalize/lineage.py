"""The trace memory: a bounded, time-windowed record of recently seen spans.

For every span the normalizer sees (LLM or not) it remembers, keyed by trace id + span id, the
parent link, the span's values for the attribute keys attribution rules read, and two flags:

- ``BELOW_USAGE``: a usage-carrying LLM call is a descendant of this span. A call or wrapper with
  this flag is not counted (its usage is its descendants' usage): it is dropped.
- ``BELOW_CALL``: some LLM call (with or without usage) is a descendant. A call *without* usage
  with this flag is a framework span around a call: it is dropped.
- ``EMITTED``: this span became a row with usage. A call whose ancestor was already emitted is
  covered by that ancestor's usage (the ancestor arrived first, so it could not know): dropped.

Parents usually *end* after their children, and exporters send spans when they end, so a parent
tends to arrive in the same request as its children or in a later one, rarely an earlier one.
The memory serves both directions: children mark their (possibly not yet seen) ancestors BELOW,
and a call can read attribution from ancestors that did arrive earlier. Entries are forgotten
``window`` after their first sighting, or oldest first beyond ``max_spans``; the memory lives in
the process (a restart forgets it). docs/attribution.md states what this does and does not cover.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["BELOW_CALL", "BELOW_USAGE", "EMITTED", "TraceMemory"]

BELOW_USAGE: Final = 1
BELOW_CALL: Final = 2
EMITTED: Final = 4

# An entry: [parent_key | None (unknown yet), tags | None, flags, first_seen_ns]
_PARENT, _TAGS, _FLAGS, _SEEN = range(4)
_UNKNOWN: Final = b""


class TraceMemory:
    """Span keys are ``trace_id + span_id`` bytes (24 bytes): cheap to build, unique per span."""

    def __init__(self, *, window_ns: int, max_spans: int, max_depth: int) -> None:
        self._window_ns = window_ns
        self._max_spans = max_spans
        self._max_depth = max_depth
        self._entries: dict[bytes, list[Any]] = {}
        self._arrivals: deque[tuple[bytes, int]] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    def evict(self, now_ns: int) -> int:
        """Forget entries older than the window, then the oldest beyond ``max_spans``."""
        cutoff = now_ns - self._window_ns
        entries, arrivals = self._entries, self._arrivals
        forgotten = 0
        while arrivals and (arrivals[0][1] < cutoff or len(entries) > self._max_spans):
            key, seen = arrivals.popleft()
            entry = entries.get(key)
            if entry is not None and entry[_SEEN] == seen:
                del entries[key]
                forgotten += 1
        return forgotten

    def _new(
        self, key: bytes, parent: bytes | None, tags: Mapping[str, Any] | None, flags: int, now_ns: int
    ) -> list[Any]:
        entry = [parent, tags, flags, now_ns]
        self._entries[key] = entry
        self._arrivals.append((key, now_ns))
        return entry

    def observe(self, key: bytes, parent: bytes | None, tags: Mapping[str, Any] | None, now_ns: int) -> None:
        """Record a span as it arrives. ``parent`` is None for a root span."""
        entry = self._entries.get(key)
        if entry is None:
            self._new(key, parent, tags, 0, now_ns)
            return
        was_placeholder = entry[_PARENT] is _UNKNOWN
        entry[_PARENT] = parent
        entry[_TAGS] = tags
        if was_placeholder and parent is not None:
            # A call below this span was seen before the span itself: pass the marks upwards.
            for flag in (BELOW_USAGE, BELOW_CALL):
                if entry[_FLAGS] & flag:
                    self.mark_below(parent, flag, now_ns)

    def mark_below(self, key: bytes, flag: int, now_ns: int) -> None:
        """Set ``flag`` (BELOW_USAGE or BELOW_CALL) on ``key`` and its known ancestors."""
        entries = self._entries
        for _ in range(self._max_depth):
            entry = entries.get(key)
            if entry is None:
                self._new(key, _UNKNOWN, None, flag, now_ns)
                return
            if entry[_FLAGS] & flag:
                return
            entry[_FLAGS] |= flag
            parent = entry[_PARENT]
            if not parent:  # root, or not seen yet
                return
            key = parent

    def flags(self, key: bytes) -> int:
        entry = self._entries.get(key)
        return 0 if entry is None else int(entry[_FLAGS])

    def mark_emitted(self, key: bytes) -> None:
        entry = self._entries.get(key)
        if entry is not None:
            entry[_FLAGS] |= EMITTED

    def ancestors(self, parent: bytes | None) -> list[list[Any]]:
        """Known ancestor entries, nearest first, up to ``max_depth``."""
        chain: list[list[Any]] = []
        entries = self._entries
        key = parent
        while key and len(chain) < self._max_depth:
            entry = entries.get(key)
            if entry is None:
                break
            chain.append(entry)
            key = entry[_PARENT]
        return chain

    def chain_complete(self, parent: bytes) -> bool:
        """Whether every ancestor above a span whose parent is ``parent`` is known: the walk
        up reaches a root (or ``max_depth``) without meeting a span not seen yet."""
        entries = self._entries
        key: bytes | None = parent
        for _ in range(self._max_depth):
            if key is None:
                return True
            entry = entries.get(key)
            if entry is None or entry[_PARENT] is _UNKNOWN:
                return False
            key = entry[_PARENT]
        return True

    def ancestor_emitted(self, parent: bytes | None) -> bool:
        return any(entry[_FLAGS] & EMITTED for entry in self.ancestors(parent))

    def ancestor_tags(self, parent: bytes | None) -> list[Mapping[str, Any]]:
        return [entry[_TAGS] for entry in self.ancestors(parent) if entry[_TAGS]]
