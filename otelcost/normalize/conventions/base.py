"""What a convention adapter is, and the usage record every adapter produces.

An adapter knows one telemetry convention: which attribute keys reveal it (its *markers*),
whether a span is an LLM call or a framework span wrapped around calls (:meth:`Adapter.classify`),
and how to read its token counts (:meth:`Adapter.usage`) together with the convention's token
*semantics*: does its input count include cached tokens, does its output count include reasoning
tokens. :func:`settle` turns those raw counts into the lake contract (input includes cache reads
and writes, output includes reasoning) once, the same way for every convention.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Protocol

from otelcost.normalize.values import read_count

__all__ = [
    "Adapter",
    "RawUsage",
    "Role",
    "SpanContext",
    "Tokens",
    "first_count",
    "settle",
]


class Role(Enum):
    CALL = "call"
    """The span is one request to a model (chat, completion, embeddings ...)."""
    WRAPPER = "wrapper"
    """A framework span (agent, workflow, chain, tool) that may carry usage of calls below it."""


@dataclass(frozen=True, slots=True)
class SpanContext:
    """What an adapter may need beyond the attributes to read a span right."""

    span_name: str
    scope_name: str
    provider: str | None
    sdk_name: str | None
    """Resource ``telemetry.sdk.name`` (``openlit`` changes token semantics)."""


@dataclass(frozen=True, slots=True)
class RawUsage:
    """Token counts as the convention reported them, with the convention's semantics."""

    input: int | None = None
    output: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    reasoning: int | None = None
    total: int | None = None
    input_includes_cache: bool = True
    output_includes_reasoning: bool = True


@dataclass(frozen=True, slots=True)
class Tokens:
    """Counts in the lake contract, plus what had to be inferred (for counters and the row)."""

    input: int
    output: int
    cache_read: int
    cache_write: int
    reasoning: int
    notes: tuple[str, ...] = ()


def first_count(attrs: Mapping[str, Any], keys: Sequence[str]) -> int | None:
    """The first of ``keys`` present in ``attrs``, read as a token count.

    A present but invalid value raises :class:`~otelcost.normalize.values.InvalidCountError`: it does
    not fall through to the next key, because a broken primary key means the usage is untrustworthy.
    """
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            return read_count(value, key)
    return None


def settle(raw: RawUsage) -> Tokens:
    """Convert raw counts to the lake contract.

    - A span with only a total keeps it as input tokens (a lower bound of the cost: input is the
      cheaper side), noted ``total_only``. With a total and one side, the other side is
      ``total - side`` (noted ``derived_from_total``).
    - Input that excludes cached tokens gets cache reads and writes added (``cache_added``).
      Input that claims to include them but is smaller than their sum cannot: it is treated as
      exclusive too (``cache_exceeds_input``).
    - Output that excludes reasoning gets it added (``reasoning_added``); output smaller than its
      reasoning part is treated the same way (``reasoning_exceeds_output``).
    """
    notes: list[str] = []
    input_tokens, output_tokens, total = raw.input, raw.output, raw.total
    if input_tokens is None and output_tokens is None and total is not None:
        input_tokens, output_tokens = total, 0
        notes.append("total_only")
    elif total is not None and input_tokens is None and output_tokens is not None:
        input_tokens = max(total - output_tokens, 0)
        notes.append("derived_from_total")
    elif total is not None and output_tokens is None and input_tokens is not None:
        output_tokens = max(total - input_tokens, 0)
        notes.append("derived_from_total")
    input_tokens = input_tokens or 0
    output_tokens = output_tokens or 0
    cache_read = raw.cache_read or 0
    cache_write = raw.cache_write or 0
    reasoning = raw.reasoning or 0
    cached = cache_read + cache_write
    if cached:
        if not raw.input_includes_cache and "total_only" not in notes:
            input_tokens += cached
            notes.append("cache_added")
        elif cached > input_tokens:
            input_tokens += cached
            notes.append("cache_exceeds_input")
    if reasoning:
        if not raw.output_includes_reasoning:
            output_tokens += reasoning
            notes.append("reasoning_added")
        elif reasoning > output_tokens:
            output_tokens += reasoning
            notes.append("reasoning_exceeds_output")
    return Tokens(input_tokens, output_tokens, cache_read, cache_write, reasoning, tuple(notes))


class Adapter(Protocol):
    """One telemetry convention. Adapters are stateless; one instance serves every span."""

    name: ClassVar[str]
    """The ``convention`` column value for calls this adapter recognized."""
    markers: ClassVar[frozenset[str]]
    """Attribute keys whose presence means the span may speak this convention."""
    usage_keys: ClassVar[frozenset[str]]
    """Attribute keys that carry token counts (used to find usage in span events)."""

    def classify(self, attrs: Mapping[str, Any], span_name: str) -> Role | None:
        """CALL, WRAPPER, or None when the span is not this convention's LLM business."""
        ...

    def usage(self, attrs: Mapping[str, Any], ctx: SpanContext) -> RawUsage | None:
        """The span's token counts, or None when it carries none. Raises InvalidCountError."""
        ...

    def operation(self, attrs: Mapping[str, Any], span_name: str) -> str | None:
        """The operation in ``gen_ai.operation.name`` vocabulary (chat, embeddings ...)."""
        ...

    def label(self, attrs: Mapping[str, Any], ctx: SpanContext) -> str:
        """The ``convention`` value for this span (an adapter may tell variants apart)."""
        ...
