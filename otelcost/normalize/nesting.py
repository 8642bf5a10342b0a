"""The nested-usage rule: usage is counted once per chain of spans (docs/attribution.md).

Applied to the candidate calls of a whole request at once, after every span of it is in the
trace memory. Every call first marks its ancestors; then, in span order, a candidate is dropped
when

- it was already kept in this request (``duplicate_span``: the same span sent twice);
- it has usage and a usage-carrying call below it (``wrapper_usage``: its usage is theirs);
- it has no usage and any call below it (``wrapper_no_usage``: a framework span around a call);
- an ancestor was already emitted with usage (``ancestor_counted``: the ancestor arrived first).

Spans of one provider call that do not nest (siblings in a trace, or two traces: a provider
SDK's own span and an instrumentation's) are folded later, in the serve process, by the settle
stage (``otelcost/settle``), which keeps them auditable in ``duplicate_spans``.
"""

from __future__ import annotations

from collections import Counter

from otelcost.normalize.lineage import BELOW_CALL, BELOW_USAGE, TraceMemory
from otelcost.normalize.spans import Draft

__all__ = ["apply_nesting_rule"]


def apply_nesting_rule(
    drafts: list[Draft], memory: TraceMemory, dropped: Counter[str], now_ns: int
) -> list[Draft]:
    """The drafts counted as calls, in order; the others are counted in ``dropped`` by reason."""
    for draft in drafts:
        if draft.parent_key is not None:
            memory.mark_below(draft.parent_key, BELOW_CALL, now_ns)
            if draft.has_usage:
                memory.mark_below(draft.parent_key, BELOW_USAGE, now_ns)
    kept: list[Draft] = []
    seen: set[bytes] = set()
    for draft in drafts:
        flags = memory.flags(draft.key)
        if draft.key in seen:
            dropped["duplicate_span"] += 1
        elif draft.has_usage and flags & BELOW_USAGE:
            dropped["wrapper_usage"] += 1
        elif not draft.has_usage and flags & BELOW_CALL:
            dropped["wrapper_no_usage"] += 1
        elif memory.ancestor_emitted(draft.parent_key):
            dropped["ancestor_counted"] += 1
        else:
            if draft.has_usage:
                memory.mark_emitted(draft.key)
            seen.add(draft.key)
            kept.append(draft)
    return kept
