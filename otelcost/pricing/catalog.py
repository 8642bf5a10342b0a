"""The price catalog: validated, effective-dated entries and the lookups that find them.

The catalog shipped with otelcost lives in ``otelcost/pricing/catalog/`` (one file per
provider); users add files and directories with ``pricing.catalogs``, which override it
(:mod:`otelcost.pricing.catalog_loader` reads and layers them). The format
(``docs/pricing.md`` has the full reference; :mod:`otelcost.pricing.catalog_models` validates
it)::

    provider: openai                 # or a list: the first names the entries, all are matched
    currency: USD                    # the only currency: money columns are USD
    match_without_provider: true     # price calls that name no provider from this file
    source: {url: https://..., read: 2026-08-21}   # default for every version
    models:
      - id: gpt-4o
        kind: chat                   # chat | embedding | completion (informational)
        aliases: [gpt-4o-2024-08-06] # exact names (matched case-insensitively)
        patterns: ["ft:gpt-4o-2024-08-06:*"]   # shell-style globs
        versions:
          - effective_from: 2024-10-02          # a date (00:00 UTC) or an ISO date-time
            effective_to: null                  # exclusive; default: the next version
            prices: {input: "2.50", cache_read: "1.25", output: "10.00"}
            tiers:
              batch: {scale: "0.5"}
              priority: {input: "4.25", cache_read: "2.125", output: "17.00"}
            source: {url: https://..., read: 2026-08-21}
      - id: my-deployment            # prices copied from another entry
        prices_from: openai/gpt-4o
        inherit_tiers: [batch]

:meth:`Catalog.load` raises :class:`~otelcost.errors.PricingError` listing every problem, each
naming the file, the entry and the key (``catalog/openai.yaml: openai/gpt-4o:
versions[1].prices.input: ...``). :func:`check` returns the same problems (and warnings)
without raising, for ``otelcost pricing check``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from otelcost.errors import PricingError
from otelcost.pricing.catalog_loader import CatalogIssue, read_catalogs
from otelcost.pricing.config import PricingConfig
from otelcost.pricing.entries import Entry
from otelcost.pricing.names import candidates

__all__ = ["Catalog", "check"]

_MAX_ISSUES_IN_ERROR: Final = 20


def _specificity(pattern: str) -> int:
    return sum(1 for ch in pattern if ch not in "*?[]")


class Catalog:
    """A loaded, validated catalog with its lookup indexes.

    Lookup by exact alias is a dict access per provider; glob patterns are tried only for names
    no alias matches, most specific (most literal characters) first. The engine resolves each
    distinct (provider, model) pair of a batch once and caches it.
    """

    def __init__(self, entries: Sequence[Entry], *, warnings: Sequence[CatalogIssue] = ()) -> None:
        self.entries: tuple[Entry, ...] = tuple(entries)
        self.warnings: tuple[CatalogIssue, ...] = tuple(warnings)
        self._exact: dict[str, dict[str, int]] = {}
        self._patterns: dict[str, list[tuple[re.Pattern[str], int]]] = {}
        self._fallback_providers: list[str] = []
        pattern_rows: dict[str, list[tuple[int, int, str, int]]] = {}
        for index, entry in enumerate(self.entries):
            for provider in entry.providers:
                exact = self._exact.setdefault(provider, {})
                for name in (entry.id, *entry.aliases):
                    exact[name] = index  # later layers come later: they win
                rows = pattern_rows.setdefault(provider, [])
                for pattern in entry.patterns:
                    rows.append((_specificity(pattern), index, pattern, index))
            if entry.match_without_provider and entry.provider not in self._fallback_providers:
                self._fallback_providers.append(entry.provider)
        for provider, rows in pattern_rows.items():
            rows.sort(key=lambda row: (-row[0], -row[1]))
            self._patterns[provider] = [(re.compile(fnmatch.translate(p)), i) for _, _, p, i in rows]

    # -- loading -----------------------------------------------------------------------------

    @classmethod
    def load(cls, config: PricingConfig) -> Catalog:
        """The shipped catalog (unless disabled) overridden by the user's catalogs, in order."""
        catalog, issues = cls._build(config)
        errors = [issue for issue in issues if issue.severity == "error"]
        if errors:
            shown = "\n  ".join(str(issue) for issue in errors[:_MAX_ISSUES_IN_ERROR])
            more = len(errors) - _MAX_ISSUES_IN_ERROR
            tail = f"\n  ... and {more} more (run `otelcost pricing check`)" if more > 0 else ""
            raise PricingError(f"invalid price catalog ({len(errors)} problems):\n  {shown}{tail}")
        return catalog

    @classmethod
    def _build(cls, config: PricingConfig, extra: Sequence[Path] = ()) -> tuple[Catalog, list[CatalogIssue]]:
        entries, issues = read_catalogs(config, extra)
        return cls(entries, warnings=[i for i in issues if i.severity == "warning"]), issues

    # -- lookup --------------------------------------------------------------------------------

    def resolve(self, provider: str | None, model: str | None) -> Entry | None:
        """The entry that prices ``model`` called through ``provider``; None when none does.

        A call without a provider is looked up among the files marked
        ``match_without_provider`` (the model makers' own price lists), in load order.
        """
        if not model:
            return None
        names = candidates(model)
        providers = [provider.strip().lower()] if provider else self._fallback_providers
        for name in names:
            for p in providers:
                index = self._exact.get(p, {}).get(name)
                if index is not None:
                    return self.entries[index]
        for name in names:
            for p in providers:
                for regex, index in self._patterns.get(p, ()):
                    if regex.fullmatch(name):
                        return self.entries[index]
        return None

    def entry(self, key: str) -> Entry | None:
        """The entry with ``provider/id``."""
        for entry in self.entries:
            if entry.key == key:
                return entry
        return None

    @property
    def providers(self) -> list[str]:
        return sorted(self._exact)


def check(config: PricingConfig, extra: Sequence[Path] = ()) -> tuple[Catalog, list[CatalogIssue]]:
    """Load like :meth:`Catalog.load` but return every problem instead of raising."""
    return Catalog._build(config, extra)
