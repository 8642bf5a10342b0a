"""Configuration of pricing: user catalogs and contract discounts (``pricing:`` in YAML)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from otelcost.configtypes import Section

__all__ = ["Discount", "PricingConfig"]


class Discount(Section):
    """A contract discount: ``percent`` off list price for a provider, optionally one model pattern.

    Exactly one discount applies to a call: the most specific that matches its provider, its
    catalog model id and its day (an exact model id beats a glob, a longer glob beats a shorter
    one, a named provider beats ``*``; ties go to the one listed first). The discounted cost is
    rounded half-to-even to the picodollar.
    """

    provider: str = Field(description="gen_ai.provider.name of the calls (openai, aws.bedrock ...) or *.")
    model: str = Field("*", description="Catalog model id or glob (gpt-4o*).")
    percent: Decimal = Field(ge=0, le=100, description="Exact percent off list price, e.g. 12.5.")
    effective_from: date | None = Field(None, description="First day (UTC) the discount applies.")
    effective_to: date | None = Field(None, description="First day (UTC) it no longer applies.")

    @field_validator("percent")
    @classmethod
    def _at_most_six_decimals(cls, value: Decimal) -> Decimal:
        exponent = value.normalize().as_tuple().exponent
        if isinstance(exponent, int) and exponent < -6:
            raise ValueError("at most 6 decimal places")
        return value

    @model_validator(mode="after")
    def _ordered_dates(self) -> Discount:
        if self.effective_from and self.effective_to and self.effective_to <= self.effective_from:
            raise ValueError("effective_to must be after effective_from")
        return self


class PricingConfig(Section):
    """The price catalog: the shipped one, extended and overridden by user catalog files."""

    catalogs: list[Path] = Field(
        default_factory=list,
        description="User catalog files or directories, loaded after the shipped one; later files override.",
    )
    shipped_catalog: bool = Field(True, description="Load the catalog shipped with otelcost.")
    discounts: list[Discount] = Field(
        default_factory=list, description="Contract discounts that fill effective_cost_usd."
    )
