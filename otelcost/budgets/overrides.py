"""Overrides: a person's decision that beats the numbers, for a while or until removed.

Three kinds, each on a scope of exact dimension values (``{team: ml}``; empty = every call):

* ``block`` -- the kill switch. Calls in scope are refused now, whatever their spend.
  With ``budget`` set it shows as that budget's decision; without, as a decision of its own.
  Blocks are never lifted by an ``allow`` override (when in doubt, stop the spend).
* ``allow`` -- budget decisions (of ``budget``, or of every budget) do not apply to calls in
  scope: a launch day, an incident. Published as an *exemption* next to the decisions.
* ``raise_limit`` -- ``budget``'s instances inside the scope use ``limit`` instead of the
  configured one. Needs ``budget`` and ``limit``.

``until`` (RFC 3339) ends an override by itself; the evaluator drops it when the time comes
and republishes. Overrides are changed through the admin API (``PUT /v1/admin/overrides/{id}``),
persisted in ``<data_dir>/budgets/state.json`` and audited; see docs/budgets.md.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from otelcost.budgets.config import check_dimensions

__all__ = ["OVERRIDE_ID_PATTERN", "Override", "OverrideSpec"]

OVERRIDE_ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


class OverrideSpec(BaseModel):
    """The body of ``PUT /v1/admin/overrides/{id}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["block", "allow", "raise_limit"]
    scope: dict[str, str] = Field(default_factory=dict)
    budget: str | None = None
    limit: Decimal | None = Field(None, gt=0)
    until: AwareDatetime | None = None
    reason: str = ""

    @field_validator("scope")
    @classmethod
    def _exact_values(cls, value: dict[str, str]) -> dict[str, str]:
        check_dimensions(value)
        for dim, term in value.items():
            if not term or term == "*":
                raise ValueError(f"{dim}: an override names exact values (no '*', not empty)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> OverrideSpec:
        if self.action == "raise_limit" and (self.budget is None or self.limit is None):
            raise ValueError("raise_limit needs a budget and a limit")
        if self.action != "raise_limit" and self.limit is not None:
            raise ValueError(f"limit only goes with raise_limit, not {self.action}")
        return self

    @property
    def until_ns(self) -> int | None:
        if self.until is None:
            return None
        delta = self.until.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


class Override(OverrideSpec):
    """A stored override: the spec plus who set it and when."""

    id: str
    created_by: str
    created_at: AwareDatetime

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not OVERRIDE_ID_PATTERN.match(value):
            raise ValueError("must be 1-128 letters, digits, '_', '.', ':' or '-'")
        return value
