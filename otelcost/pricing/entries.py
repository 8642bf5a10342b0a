"""The entries of a loaded catalog: what prices a model, from when to when, and where it was read.

These are the resolved records the pricer and the commands read (prices in picodollars, every
version with its end, ``prices_from`` copied); the file format they are read from is
:mod:`otelcost.pricing.catalog_models`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

from otelcost.pricing.rates import PriceSet

__all__ = ["Entry", "Source", "Version"]


@dataclass(frozen=True, slots=True)
class Source:
    """Where a price was read: the provider's page and the day it was read."""

    url: str
    read: date | None
    note: str | None = None

    def describe(self) -> str:
        read = f" (read {self.read.isoformat()})" if self.read else ""
        note = f"; {self.note}" if self.note else ""
        return f"{self.url}{read}{note}"


@dataclass(frozen=True, slots=True)
class Version:
    """The prices of an entry from ``effective_from`` (inclusive) to ``effective_to`` (exclusive)."""

    effective_from: datetime | None
    effective_to: datetime | None
    prices: PriceSet
    tiers: Mapping[str, PriceSet]
    source: Source | None
    note: str | None = None

    @property
    def label(self) -> str:
        """The version part of ``price_ref``: the effective date (or date-time), ``start`` if open."""
        when = self.effective_from
        if when is None:
            return "start"
        if when.time() == time(0):
            return when.date().isoformat()
        return when.strftime("%Y-%m-%dT%H:%MZ") if when.second == 0 else when.strftime("%Y-%m-%dT%H:%M:%SZ")

    def price_set(self, tier: str) -> tuple[str, PriceSet]:
        """The tier actually applied (a tier the version does not price falls back to standard)."""
        if tier != "standard" and tier in self.tiers:
            return tier, self.tiers[tier]
        return "standard", self.prices

    def in_force(self, when: datetime) -> bool:
        if self.effective_from is not None and when < self.effective_from:
            return False
        return self.effective_to is None or when < self.effective_to


@dataclass(frozen=True, slots=True)
class Entry:
    """One priced model: its names, and its versions in effective-date order."""

    provider: str
    id: str
    providers: tuple[str, ...]
    kind: str
    aliases: tuple[str, ...]
    patterns: tuple[str, ...]
    versions: tuple[Version, ...]
    file: Path
    catalog: str | None  # None: the shipped catalog; else the user catalog's name (file stem)
    match_without_provider: bool = False
    note: str | None = None
    prices_from: str | None = field(default=None, compare=False)
    inherit_tiers: tuple[str, ...] = field(default=(), compare=False)

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.id}"

    def version_at(self, when: datetime) -> Version | None:
        found = None
        for version in self.versions:
            if version.in_force(when):
                found = version
        return found

    def price_ref(self, version: Version, applied_tier: str = "standard", variant: str | None = None) -> str:
        """``[catalog:]provider/id@version[#tier,variant]`` — what priced a call; see docs/pricing.md."""
        prefix = f"{self.catalog}:" if self.catalog else ""
        suffix = [part for part in (applied_tier if applied_tier != "standard" else None, variant) if part]
        return f"{prefix}{self.key}@{version.label}" + (f"#{','.join(suffix)}" if suffix else "")
