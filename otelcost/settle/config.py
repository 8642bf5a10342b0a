"""Configuration of call settlement (``settle:`` in YAML; docs/conventions.md, "One call, many
spans", and docs/attribution.md, "Late ancestors")."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from otelcost.configtypes import Duration, Section

__all__ = ["SettleConfig"]


class SettleConfig(Section):
    """How the serve process settles each call: counted once, under its final attribution.

    One call reported by several spans (a provider SDK's own span and an instrumentation's,
    often in two traces) is counted once, and attribution that arrives after a call was stored
    moves it (docs/conventions.md, "One call, many spans")."""

    dedup: bool = Field(True, description="Fold spans of the same provider call into one call.")
    fingerprint: bool = Field(
        True,
        description="Where a span has no response id, match on service, provider, model, tokens and time.",
    )
    fingerprint_tolerance: Duration = Field(
        timedelta(seconds=2),
        description="How far apart the starts (and the ends) of two spans of one call may be.",
    )
    window: Duration = Field(
        timedelta(minutes=10),
        description="How long a call is remembered, from its arrival, for later spans and attribution.",
    )
    max_calls: int = Field(
        100_000, ge=1, description="Calls remembered at most (oldest forgotten first); ~1.4 KB each."
    )
