"""Configuration of the normalizer and attribution (``attribution:`` in YAML).

Which sources fill each dimension, which dimensions are required, the ownership table, and the
bounded trace memory that ancestor inheritance and nested-usage de-duplication rely on. The rules
are documented in docs/attribution.md.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_serializer, model_validator

from otelcost.configtypes import Dimension, Duration, Section

__all__ = ["AttributionConfig", "AttributionSource", "OwnershipConfig", "TraceMemoryConfig"]


class AttributionSource(Section):
    """Where one dimension value may come from. Exactly one key is set.

    ``span``: a span attribute (of the call, else of its nearest ancestor that has it, when
    ``inherit`` is on). ``baggage``: a W3C baggage entry copied onto the span as an attribute of
    the same name (what OpenTelemetry's BaggageSpanProcessor does); read like ``span``.
    ``resource``: a resource attribute. ``ownership``: look the call up in the ownership table by
    this key (it must equal ``ownership.key``) and take the column named like the dimension.
    ``default``: a literal value.

    ``json`` (with ``span``, ``baggage`` or ``resource``): the attribute holds a JSON object as
    text (OpenInference's ``metadata``) and the value is at this dotted path inside it, e.g.
    ``{span: metadata, json: team}``.
    """

    span: str | None = None
    baggage: str | None = None
    resource: str | None = None
    ownership: str | None = None
    default: str | None = None
    json_path: str | None = Field(None, alias="json")

    @model_validator(mode="before")
    @classmethod
    def _from_shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):  # "span:app.team"
            kind, sep, key = data.partition(":")
            if not sep:
                raise ValueError(f"expected KIND:KEY such as span:app.team, got {data!r}")
            return {kind.strip(): key.strip()}
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> AttributionSource:
        if len(self._set_items()) != 1:
            raise ValueError("a source sets exactly one of span, baggage, resource, ownership, default")
        if self.json_path is not None:
            if self.kind not in ("span", "baggage", "resource"):
                raise ValueError("json applies to a span, baggage or resource source")
            if not self.json_path or any(not part for part in self.json_path.split(".")):
                raise ValueError(
                    f"json must be a dotted path such as team or app.team, got {self.json_path!r}"
                )
        return self

    def _set_items(self) -> list[tuple[str, str]]:
        return [
            (k, v)
            for k in ("span", "baggage", "resource", "ownership", "default")
            if (v := getattr(self, k)) is not None
        ]

    @property
    def kind(self) -> str:
        return self._set_items()[0][0]

    @property
    def key(self) -> str:
        return self._set_items()[0][1]

    @model_serializer
    def _as_mapping(self) -> dict[str, str]:
        if self.json_path is None:
            return {self.kind: self.key}
        return {self.kind: self.key, "json": self.json_path}


class OwnershipConfig(Section):
    """A static table mapping a key (a service, say) to owners: inline rows or a CSV/YAML file."""

    key: str = Field(
        "service", description="Column the table is looked up by (service, or a resource attribute)."
    )
    file: Path | None = Field(None, description="CSV with a header row, or YAML list of mappings.")
    rows: list[dict[str, str]] = Field(
        default_factory=list, description="Inline rows, e.g. {service: checkout, team: payments}."
    )


def _default_rules() -> dict[Dimension, list[AttributionSource]]:
    def rules(*sources: str | dict[str, str]) -> list[AttributionSource]:
        return [AttributionSource.model_validate(s) for s in sources]

    def metadata(key: str) -> dict[str, str]:
        # OpenInference's using_attributes(metadata={...}) / using_metadata: one JSON-object
        # attribute on every span started inside it (LangChain's run metadata lands there too).
        return {"span": "metadata", "json": key}

    def langfuse(key: str) -> tuple[str | dict[str, str], ...]:
        # Langfuse reads its metadata flattened (langfuse.{trace,observation}.metadata.<key>) or
        # as one JSON object attribute (what its Python SDK writes for a non-flat value).
        return (
            f"span:langfuse.trace.metadata.{key}",
            f"span:langfuse.observation.metadata.{key}",
            {"span": "langfuse.trace.metadata", "json": key},
            {"span": "langfuse.observation.metadata", "json": key},
        )

    # Each list: the project's own keys first, then the keys the conventions define for the same
    # thing (OpenTelemetry, OpenLLMetry association properties, Vercel AI SDK telemetry metadata,
    # Langfuse, OpenInference), then baggage, then the resource and the ownership table.
    return {
        "team": rules(
            "span:app.team",
            "span:traceloop.association.properties.team",
            "span:ai.telemetry.metadata.team",
            *langfuse("team"),
            metadata("team"),
            "baggage:team",
            "resource:app.team",
            "ownership:service",
        ),
        "feature": rules(
            "span:app.feature",
            "span:traceloop.association.properties.feature",
            "span:ai.telemetry.metadata.feature",
            *langfuse("feature"),
            metadata("feature"),
            "baggage:feature",
        ),
        "user_id": rules(
            "span:user.id",
            "span:enduser.id",
            "span:langfuse.user.id",
            "span:traceloop.association.properties.user_id",
            "span:ai.telemetry.metadata.userId",
            "span:langfuse.trace.metadata.langfuse_user_id",
            "baggage:user.id",
            "baggage:langfuse_user_id",
        ),
        "tenant_id": rules(
            "span:app.tenant",
            "span:tenant.id",
            "span:app.tenant.id",
            "span:traceloop.association.properties.customer_id",
            "span:traceloop.association.properties.tenant_id",
            "span:ai.telemetry.metadata.tenantId",
            *langfuse("tenant_id"),
            metadata("tenant_id"),
            "baggage:tenant.id",
            "resource:tenant.id",
        ),
        "session_id": rules(
            "span:session.id",
            "span:gen_ai.conversation.id",
            "span:langfuse.session.id",
            "span:traceloop.association.properties.session_id",
            "span:ai.telemetry.metadata.sessionId",
            "span:langfuse.trace.metadata.langfuse_session_id",
            "baggage:session.id",
            "baggage:langfuse_session_id",
        ),
        "project": rules(
            "span:app.project",
            metadata("project"),
            "resource:app.project",
            "resource:openinference.project.name",
            "ownership:service",
        ),
        "cost_center": rules(
            "span:app.cost_center",
            metadata("cost_center"),
            "resource:app.cost_center",
            "ownership:service",
        ),
        "workflow": rules(
            "span:app.workflow",
            metadata("workflow"),
            "span:gen_ai.workflow.name",
            "span:gen_ai.agent.name",
            "span:traceloop.workflow.name",
            "span:agent.name",
            "span:ai.telemetry.functionId",
            "span:langfuse.trace.name",
        ),
        "environment": rules(
            "span:deployment.environment.name",
            "span:langfuse.environment",
            "resource:deployment.environment.name",
            "resource:deployment.environment",
        ),
    }


class TraceMemoryConfig(Section):
    """What the normalizer remembers of recently seen spans, per trace (docs/attribution.md).

    Spans of one trace arrive in different export requests; remembering each span's parent link
    and its attribution values for a while lets a call inherit attribution from an ancestor that
    arrived earlier, and lets a wrapper span that arrives after the call inside it be recognized
    as a duplicate of that call's usage.
    """

    window: Duration = Field(
        timedelta(minutes=10), description="How long a seen span is remembered (from its arrival)."
    )
    max_spans: int = Field(
        200_000, ge=1_000, description="Most spans remembered; the oldest are forgotten first."
    )
    max_depth: int = Field(32, ge=1, le=1_000, description="Most ancestors walked up from a call.")
    max_pending_calls: int = Field(
        100_000,
        ge=0,
        description="Most calls waiting for ancestors that arrive after them (late_ancestors).",
    )

    @model_validator(mode="after")
    def _positive_window(self) -> TraceMemoryConfig:
        if self.window <= timedelta(0):
            raise ValueError("window must be greater than zero")
        return self


class AttributionConfig(Section):
    """How each attribution dimension is filled: the first source with a value wins."""

    dimensions: dict[Dimension, list[AttributionSource]] = Field(
        default_factory=_default_rules,
        description="Dimension -> ordered sources (span:, baggage:, resource:, ownership:, default:).",
    )
    required: list[Dimension] = Field(
        default_factory=list, description="Dimensions a call must have; missing ones mark it incomplete."
    )
    ownership: OwnershipConfig = OwnershipConfig()
    inherit: bool = Field(
        True,
        description="span: and baggage: sources also read the call's ancestors in the same trace.",
    )
    late_ancestors: bool = Field(
        True,
        description=(
            "A call emitted before its ancestors arrived is attributed again when they do, within "
            "trace_memory.window; a changed attribution moves its spend (docs/attribution.md)."
        ),
    )
    trace_memory: TraceMemoryConfig = TraceMemoryConfig()
    max_attribute_value_length: int = Field(
        65_536,
        ge=256,
        description=(
            "Longest attribute value kept in the lake's attributes and resource_attributes maps, "
            "in characters; a longer one (a captured prompt, a blob) is cut to this length and "
            "marked (docs/security.md). Attribution and pricing read the whole value first."
        ),
    )

    @field_validator("dimensions", mode="after")
    @classmethod
    def _keep_unmentioned_defaults(
        cls, value: dict[Dimension, list[AttributionSource]]
    ) -> dict[Dimension, list[AttributionSource]]:
        # Configuring one dimension must not silently drop the default rules of the others;
        # an empty list switches a dimension off.
        return {**_default_rules(), **value}

    @model_validator(mode="after")
    def _ownership_sources_match_table(self) -> AttributionConfig:
        for dimension, sources in self.dimensions.items():
            for index, source in enumerate(sources):
                if source.kind == "ownership" and source.key != self.ownership.key:
                    raise ValueError(
                        f"dimensions.{dimension}[{index}]: ownership source {source.key!r} does not match "
                        f"ownership.key {self.ownership.key!r} (the table is looked up by that key)"
                    )
        return self
