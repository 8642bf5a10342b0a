"""Reading the spans of one request: every span in, the candidate calls (:class:`Draft`) out.

For each span, in one pass over its attributes:

1. decode the attributes into a dict (:mod:`otelcost.normalize.wire`) and remember the span in
   the trace memory (parent link and the values attribution rules read), LLM span or not;
2. recognize it (:func:`~otelcost.normalize.recognition.recognize`): a candidate call, dropped
   (``not_llm``) or rejected (invalid token counts). A span without any convention's marker
   keys and without usage in an event, most spans of a trace, is dropped here without asking
   the adapters;
3. validate what a row needs, ids and timestamps (:mod:`otelcost.normalize.validation`);
4. settle the token counts to the lake contract and keep what the later steps read.

This loop is most of the normalizer's CPU: anything added here is paid once per span.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from otelcost.auth.binding import KEY_NAME_ATTRIBUTE, KeyStamp, read_stamp
from otelcost.normalize.conventions import Tokens, settle
from otelcost.normalize.conventions.common import read_response_id
from otelcost.normalize.lineage import TraceMemory
from otelcost.normalize.recognition import (
    ALL_MARKERS,
    NOT_LLM,
    Dropped,
    Recognized,
    recognize,
    with_event_usage,
)
from otelcost.normalize.validation import ZERO_SPAN_ID, ZERO_TRACE_ID, check_call
from otelcost.normalize.values import attribute_text
from otelcost.normalize.wire import decode_wire_attributes

__all__ = ["Draft", "Resource", "read_spans"]


@dataclass(slots=True)
class Resource:
    """The resource of a group of spans, decoded once per request."""

    attrs: dict[str, Any]
    service: str | None
    sdk_name: str | None
    key: KeyStamp | None = None
    """The API key the request was sent with, as the receiver stamped it (``auth/binding.py``)."""
    claimed_service: str | None = None
    """``service.name`` as sent, when the key's binding replaced it."""
    _text: tuple[list[str], list[str]] | None = None

    def text(self) -> tuple[list[str], list[str]]:
        """Keys and values as text (the ``resource_attributes`` map), rendered once."""
        if self._text is None:
            self._text = (list(self.attrs), [attribute_text(v) for v in self.attrs.values()])
        return self._text


@dataclass(slots=True)
class Draft:
    """A span recognized as an LLM call candidate, before the nested-usage rule."""

    key: bytes
    """``trace_id + span_id``: the span's key in the trace memory."""
    parent_key: bytes | None
    span: Any
    """A ``wire`` span: the fields of ``trace_pb2.Span`` the normalizer reads, same names."""
    attrs: dict[str, Any]
    resource: Resource
    scope_name: str
    convention: str
    operation: str | None
    provider: str | None
    tokens: Tokens
    has_usage: bool
    response_id: str | None


_NO_TOKENS: Final = Tokens(0, 0, 0, 0, 0)
_OPENINFERENCE_KIND: Final = "openinference.span.kind"
_AGENT_NAME: Final = "agent.name"
_NOT_LLM: Final = NOT_LLM.reason


def read_spans(
    wire: Any,
    memory: TraceMemory,
    span_keys: frozenset[str],
    now_ns: int,
    *,
    dropped: Counter[str],
    rejected: Counter[str],
    watched: Mapping[bytes, object] | None = None,
    touched: set[bytes] | None = None,
) -> tuple[list[Draft], int]:
    """The candidate calls of a ``wire`` request, and how many spans it held.

    Every span is remembered in ``memory`` (with its values for ``span_keys``, the keys
    attribution rules read); spans that are not calls are counted in ``dropped``, invalid ones
    in ``rejected``, by reason. The trace ids of ``watched`` (calls waiting for ancestors,
    ``pending.py``) that a span of this request belongs to are added to ``touched``.
    """
    drafts: list[Draft] = []
    spans_seen = 0
    for resource_spans in wire.resource_spans:
        resource = _read_resource(resource_spans.resource.attributes)
        sdk_name = resource.sdk_name
        for scope_spans in resource_spans.scope_spans:
            scope_name = scope_spans.scope.name
            for span in scope_spans.spans:
                spans_seen += 1
                attrs = decode_wire_attributes(span.attributes)
                if attrs.get(_OPENINFERENCE_KIND) == "AGENT" and _AGENT_NAME not in attrs:
                    # OpenInference's LangChain instrumentation names an agent's span after it
                    # but leaves out agent.name, which its conventions define (and the OpenAI
                    # Agents instrumentation sets): the name is what the workflow rule reads.
                    attrs[_AGENT_NAME] = span.name
                trace_id = span.trace_id
                span_id = span.span_id
                parent_id = span.parent_span_id
                ids_valid = (
                    len(trace_id) == 16
                    and len(span_id) == 8
                    and len(parent_id) in (0, 8)
                    and trace_id != ZERO_TRACE_ID
                    and span_id != ZERO_SPAN_ID
                )
                key = trace_id + span_id
                parent_key = trace_id + parent_id if parent_id and parent_id != ZERO_SPAN_ID else None
                if ids_valid:
                    common = span_keys.intersection(attrs)
                    tags = {k: attrs[k] for k in common} if common else None
                    memory.observe(key, parent_key, tags, now_ns)
                    if watched and trace_id in watched and touched is not None:
                        touched.add(trace_id)
                if ALL_MARKERS.isdisjoint(attrs):
                    found = with_event_usage(span, attrs) if span.events else None
                    if found is None:
                        dropped[_NOT_LLM] += 1
                        continue
                    attrs_for_usage = found
                else:
                    attrs_for_usage = attrs
                # isinstance, not match: a class pattern costs ~0.1 µs more per span (CPython 3.11).
                outcome = recognize(attrs, attrs_for_usage, span, sdk_name, scope_name)
                if not isinstance(outcome, Recognized):
                    if isinstance(outcome, Dropped):
                        dropped[outcome.reason] += 1
                    else:
                        rejected[outcome.reason] += 1
                    continue
                problem = check_call(span, ids_valid, now_ns)
                if problem is not None:
                    rejected[problem.reason] += 1
                    continue
                adapter, raw, ctx = outcome.adapter, outcome.usage, outcome.context
                tokens = settle(raw) if raw is not None else _NO_TOKENS
                if outcome.usage_from_event:
                    tokens = Tokens(
                        tokens.input,
                        tokens.output,
                        tokens.cache_read,
                        tokens.cache_write,
                        tokens.reasoning,
                        notes=(*tokens.notes, "usage_from_event"),
                    )
                # Positional, in field order: keyword arguments cost ~0.6 µs more per call.
                drafts.append(
                    Draft(
                        key,
                        parent_key,
                        span,
                        attrs,
                        resource,
                        scope_name,
                        adapter.label(attrs, ctx),
                        adapter.operation(attrs, span.name) or _operation_from_name(span.name),
                        ctx.provider,
                        tokens,
                        raw is not None,
                        read_response_id(attrs),
                    )
                )
    return drafts, spans_seen


def _read_resource(attributes: Any) -> Resource:
    attrs = decode_wire_attributes(attributes)
    key = read_stamp(attrs) if KEY_NAME_ATTRIBUTE in attrs else None
    service = attrs.get("service.name")
    sdk_name = attrs.get("telemetry.sdk.name")
    claimed_service = service if isinstance(service, str) else None
    if key is not None and (bound := key.bind.get("service")) is not None:
        # Rules that read the resource's service.name (and ownership by service) see the key's.
        attrs["service.name"] = service = bound
    return Resource(
        attrs,
        service if isinstance(service, str) else None,
        sdk_name.lower() if isinstance(sdk_name, str) else None,
        key,
        claimed_service,
    )


_NAME_OPERATIONS: Final = frozenset(
    {"chat", "text_completion", "generate_content", "embeddings", "invoke_agent", "execute_tool"}
)


def _operation_from_name(name: str) -> str | None:
    """``chat gpt-4o`` -> ``chat``: the span-name pattern of the GenAI conventions."""
    head = name.split(" ", 1)[0]
    return head if head in _NAME_OPERATIONS else None
