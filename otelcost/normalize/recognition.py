"""Recognizing one span: an LLM call (by which convention, with what usage), or why not.

:func:`recognize` asks the adapters whose marker keys the span carries
(:mod:`otelcost.normalize.conventions`, in registry order) and returns one of three results:

- :class:`Recognized`: a candidate call, a CALL span with or without usage or a WRAPPER span
  with usage (the nested-usage rule decides later whether it is counted);
- :class:`Dropped`: not a call and not an error (``not_llm``: no adapter claimed it, or a
  WRAPPER without usage);
- :class:`Rejected`: the span carries token counts that cannot be trusted
  (``invalid_token_count``, ``negative_token_count``, ``absurd_token_count``).

Every span with marker keys passes through here, so the results cost what the tuple and the
string they replace did: a drop or a rejection is a shared instance per reason, never a new
object per span.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from otelcost.normalize.conventions import (
    MARKER_BITS,
    USAGE_KEYS,
    Adapter,
    RawUsage,
    Role,
    SpanContext,
    adapters_for,
)
from otelcost.normalize.conventions.common import read_provider
from otelcost.normalize.values import InvalidCountError
from otelcost.normalize.wire import decode_wire_attributes

__all__ = [
    "ALL_MARKERS",
    "NOT_LLM",
    "Dropped",
    "Recognition",
    "Recognized",
    "Rejected",
    "recognize",
    "rejected",
    "with_event_usage",
]

ALL_MARKERS: Final = frozenset(MARKER_BITS)
"""Every key that may reveal a convention: a span with none of them is not an LLM span, unless
token counts ride on one of its events."""


@dataclass(slots=True)
class Recognized:
    """A candidate call: the adapter that recognized it, what it read, and the context it read with.

    Not frozen on purpose: a frozen dataclass sets each field through ``object.__setattr__``,
    which costs about 0.5 µs more per call than this one, and every candidate call makes one. It
    is created for one span, read once by the span reader, and never shared.
    """

    adapter: Adapter
    usage: RawUsage | None
    """None for a CALL span that carries no token counts (it becomes a row with zero tokens)."""
    usage_from_event: bool
    """The counts were read from a span event, not from the span's attributes."""
    context: SpanContext


@dataclass(frozen=True, slots=True)
class Dropped:
    """Not a row and not an error; ``reason`` is the ``dropped`` counter's label."""

    reason: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """An invalid span, reported to the sender as OTLP partial success; ``reason`` is the
    ``rejected`` counter's label."""

    reason: str


Recognition: TypeAlias = Recognized | Dropped | Rejected

NOT_LLM: Final = Dropped("not_llm")

_REJECTED: dict[str, Rejected] = {}


def rejected(reason: str) -> Rejected:
    """The one :class:`Rejected` instance for ``reason``."""
    found = _REJECTED.get(reason)
    if found is None:
        found = _REJECTED.setdefault(reason, Rejected(reason))
    return found


def recognize(
    attrs: dict[str, Any],
    attrs_for_usage: dict[str, Any],
    span: Any,
    sdk_name: str | None,
    scope_name: str,
) -> Recognition:
    """Classify one span that carries marker keys, or usage in an event (:func:`with_event_usage`).

    ``attrs`` are the span's attributes; ``attrs_for_usage`` are the same dict, or the span's
    attributes over the event's that carry the token counts. ``span`` is a ``wire`` span.
    """
    mask = 0
    for key in ALL_MARKERS.intersection(attrs_for_usage):
        mask |= MARKER_BITS[key]
    ctx = SpanContext(span.name, scope_name, read_provider(attrs_for_usage), sdk_name)
    from_event = attrs_for_usage is not attrs
    first: tuple[Adapter, Role] | None = None
    try:
        for adapter in adapters_for(mask):
            role = adapter.classify(attrs_for_usage, span.name)
            if role is None:
                continue
            raw = adapter.usage(attrs_for_usage, ctx)
            if raw is not None:
                return Recognized(adapter, raw, from_event, ctx)
            if first is None:
                first = (adapter, role)
        if first is not None and not from_event and span.events:
            # Usage may ride on a span event instead of the span (some SDKs, log-style emitters).
            merged = with_event_usage(span, attrs)
            if merged is not None:
                for adapter in adapters_for(mask | _mask(merged)):
                    if adapter.classify(merged, span.name) is None:
                        continue
                    raw = adapter.usage(merged, ctx)
                    if raw is not None:
                        return Recognized(adapter, raw, True, ctx)
    except InvalidCountError as exc:
        return rejected(exc.reason)
    if first is None:
        return NOT_LLM
    adapter, role = first
    if role is Role.WRAPPER:
        return NOT_LLM  # an agent/workflow/tool span without usage is not a call
    return Recognized(adapter, None, False, ctx)


def with_event_usage(span: Any, attrs: dict[str, Any]) -> dict[str, Any] | None:
    """The span's attributes over those of its last event that carries token counts, or None
    when no event does."""
    for event in reversed(span.events):
        event_attrs = decode_wire_attributes(event.attributes)
        if not USAGE_KEYS.isdisjoint(event_attrs):
            return {**event_attrs, **attrs}
    return None


def _mask(attrs: Mapping[str, Any]) -> int:
    mask = 0
    for key in ALL_MARKERS.intersection(attrs):
        mask |= MARKER_BITS[key]
    return mask
