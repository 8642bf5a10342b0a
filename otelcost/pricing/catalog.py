"""The price catalog: YAML files of effective-dated prices, loaded, validated and indexed.

The catalog shipped with otelcost lives in ``otelcost/pricing/catalog/`` (one file per
provider); users add files and directories with ``pricing.catalogs``. Files load in order —
shipped first, then the user's in the order given — and a later file *overrides* an earlier
one: an entry with the same provider and id replaces the earlier entry's versions and adds to
its aliases and patterns, and an alias or pattern claimed again points to the later entry.
Within one layer (the shipped catalog, or one user file) a duplicate is an error instead.

The format (``docs/pricing.md`` has the full reference)::

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

Loading raises :class:`~otelcost.errors.PricingError` listing every problem, each naming the
file and the entry (``catalog/openai.yaml: openai/gpt-4o versions[1]: ...``).
:func:`check` returns the same problems (and warnings) without raising, for
``otelcost pricing check``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any, Final

import yaml

from otelcost.errors import PricingError
from otelcost.pricing.config import PricingConfig
from otelcost.pricing.names import candidates, normalize
from otelcost.pricing.rates import (
    PriceSet,
    RateError,
    override_price_set,
    parse_price_set,
    scale_price_set,
)

__all__ = [
    "SERVICE_TIERS",
    "Catalog",
    "CatalogIssue",
    "Entry",
    "Source",
    "Version",
    "check",
    "load_yaml",
    "shipped_catalog_files",
]

SERVICE_TIERS: Final = ("standard", "batch", "flex", "priority")
"""Tiers a call can be priced at (``service_tier`` column). ``standard`` is a version's ``prices``."""

KINDS: Final = ("chat", "embedding", "completion")
_FILE_KEYS: Final = frozenset(
    {"provider", "currency", "source", "match_without_provider", "models", "description"}
)
_ENTRY_KEYS: Final = frozenset(
    {"id", "provider", "kind", "aliases", "patterns", "versions", "prices_from", "inherit_tiers", "note"}
)
_VERSION_KEYS: Final = frozenset({"effective_from", "effective_to", "prices", "tiers", "source", "note"})
_MAX_ISSUES_IN_ERROR: Final = 20


# -- YAML with exact numbers -------------------------------------------------------------------


_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml if built in


class _ExactLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that reads YAML floats as Decimal: ``2.5`` is exactly 2.5, never a binary float."""


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    text = str(loader.construct_scalar(node)).replace("_", "")
    try:
        return Decimal(text)
    except InvalidOperation:
        return Decimal("NaN")  # ".inf" / ".nan": rejected later as "not a finite number"


_ExactLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


def load_yaml(text: str) -> Any:
    """Parse YAML with floats as :class:`~decimal.Decimal` (the catalog's loader)."""
    return yaml.load(text, Loader=_ExactLoader)


# -- data model -----------------------------------------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class CatalogIssue:
    """A problem in a catalog file; ``entry`` is ``provider/id`` (plus a position) or None."""

    file: str
    entry: str | None
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        where = f"{self.file}: {self.entry}: " if self.entry else f"{self.file}: "
        return f"{where}{self.message}"


class _Issues:
    def __init__(self) -> None:
        self.items: list[CatalogIssue] = []

    def error(self, file: str, entry: str | None, message: str) -> None:
        self.items.append(CatalogIssue(file, entry, message))

    def warning(self, file: str, entry: str | None, message: str) -> None:
        self.items.append(CatalogIssue(file, entry, message, "warning"))

    @property
    def errors(self) -> list[CatalogIssue]:
        return [issue for issue in self.items if issue.severity == "error"]


# -- parsing ----------------------------------------------------------------------------------------


def _when(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=UTC)
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"expected a date (2024-10-02) or an ISO date-time, got {value!r}") from None
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"expected a date (2024-10-02) or an ISO date-time, got {value!r}")


def _source(value: object) -> Source:
    if isinstance(value, str):
        return Source(value, None)
    if not isinstance(value, Mapping) or not isinstance(value.get("url"), str):
        raise ValueError("source: expected {url: ..., read: YYYY-MM-DD, note: ...}")
    unknown = set(value) - {"url", "read", "note"}
    if unknown:
        raise ValueError(f"source: unknown key {sorted(unknown)[0]!r}")
    read = value.get("read")
    if read is not None and not isinstance(read, date):
        try:
            read = date.fromisoformat(str(read))
        except ValueError:
            raise ValueError(f"source.read: expected a date, got {read!r}") from None
    if isinstance(read, datetime):
        read = read.date()
    note = value.get("note")
    return Source(value["url"], read, str(note) if note is not None else None)


def _names(value: object, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int | Decimal) for v in value):
        raise ValueError(f"{key}: expected a list of names")
    names = tuple(normalize(str(v)) for v in value)
    if any(not n for n in names):
        raise ValueError(f"{key}: a name is empty")
    return names


def _tier_price_set(spec: object, standard: PriceSet, key: str) -> PriceSet:
    if not isinstance(spec, Mapping):
        raise RateError(f"{key}: expected a mapping (scale: 0.5, or rates)")
    if "scale" in spec:
        scaled = scale_price_set(standard, spec["scale"], f"{key}.scale")
        rest = {k: v for k, v in spec.items() if k != "scale"}
        if "long_context" in rest or "time_of_day" in rest:
            raise RateError(f"{key}: a scaled tier takes its variants from the standard prices")
        return override_price_set(scaled, rest, key)
    return parse_price_set(spec, key)


def _version(raw: object, key: str, default_source: Source | None) -> Version:
    if not isinstance(raw, Mapping):
        raise ValueError("expected a mapping with prices (and effective_from, tiers, source)")
    unknown = set(raw) - _VERSION_KEYS
    if unknown:
        raise ValueError(f"unknown key {sorted(unknown)[0]!r}")
    if "prices" not in raw:
        raise ValueError("prices are missing")
    effective_from = _when(raw.get("effective_from"))
    effective_to = _when(raw.get("effective_to"))
    if effective_from and effective_to and effective_to <= effective_from:
        raise ValueError("effective_to must be after effective_from")
    prices = parse_price_set(raw["prices"], f"{key}.prices")
    tiers_raw = raw.get("tiers") or {}
    if not isinstance(tiers_raw, Mapping):
        raise ValueError("tiers: expected a mapping of batch / flex / priority")
    tiers = {}
    for tier, spec in tiers_raw.items():
        if tier not in SERVICE_TIERS or tier == "standard":
            raise ValueError(f"tiers: unknown tier {tier!r} (batch, flex or priority; standard is prices)")
        tiers[tier] = _tier_price_set(spec, prices, f"{key}.tiers.{tier}")
    source = _source(raw["source"]) if raw.get("source") is not None else default_source
    note = raw.get("note")
    return Version(effective_from, effective_to, prices, tiers, source, str(note) if note else None)


def _check_versions(versions: Sequence[Version]) -> str | None:
    for i, version in enumerate(versions):
        if i and version.effective_from is None:
            return f"versions[{i}]: only the first version may omit effective_from"
    for i in range(1, len(versions)):
        previous, current = versions[i - 1], versions[i]
        assert current.effective_from is not None
        if previous.effective_from is not None and current.effective_from <= previous.effective_from:
            return f"versions[{i}]: versions must be in increasing effective_from order, without repeats"
        if previous.effective_to is not None and previous.effective_to > current.effective_from:
            return (
                f"versions[{i - 1}] and versions[{i}] overlap: {previous.effective_to.isoformat()} "
                f"is after {current.effective_from.isoformat()}"
            )
    return None


def _fill_effective_to(versions: Sequence[Version]) -> tuple[Version, ...]:
    """Give every version its end: its own effective_to, else the next version's start."""
    filled = []
    for i, version in enumerate(versions):
        end = version.effective_to
        if end is None and i + 1 < len(versions):
            end = versions[i + 1].effective_from
        filled.append(replace(version, effective_to=end))
    return tuple(filled)


def _providers(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError("provider: expected a provider name (gen_ai.provider.name) or a list of them")
    return tuple(v.strip().lower() for v in value)


def _parse_entry(
    raw: object,
    position: int,
    *,
    file_label: str,
    path: Path,
    catalog: str | None,
    file_providers: tuple[str, ...] | None,
    default_source: Source | None,
    match_without_provider: bool,
    require_source: bool,
    issues: _Issues,
) -> Entry | None:
    if not isinstance(raw, Mapping):
        issues.error(file_label, f"models[{position}]", "expected a mapping with id and versions")
        return None
    raw_id = raw.get("id")
    try:
        providers = _providers(raw["provider"]) if "provider" in raw else file_providers
    except ValueError as exc:
        issues.error(file_label, f"models[{position}] ({raw_id})", str(exc))
        return None
    if not isinstance(raw_id, str | int | Decimal) or not str(raw_id).strip():
        issues.error(file_label, f"models[{position}]", "id is missing")
        return None
    entry_id = normalize(str(raw_id))
    if providers is None:
        issues.error(
            file_label, f"models[{position}] ({entry_id})", "no provider (give it in the file or entry)"
        )
        return None
    label = f"{providers[0]}/{entry_id}"
    unknown = set(raw) - _ENTRY_KEYS
    if unknown:
        issues.error(file_label, label, f"unknown key {sorted(unknown)[0]!r}")
        return None
    kind = raw.get("kind", "chat")
    if kind not in KINDS:
        issues.error(file_label, label, f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
        return None
    try:
        aliases = _names(raw.get("aliases"), "aliases")
        patterns = _names(raw.get("patterns"), "patterns")
    except ValueError as exc:
        issues.error(file_label, label, str(exc))
        return None
    prices_from = raw.get("prices_from")
    inherit_raw = raw.get("inherit_tiers") or []
    if not isinstance(inherit_raw, list) or not all(t in SERVICE_TIERS[1:] for t in inherit_raw):
        issues.error(file_label, label, "inherit_tiers: expected a list of batch, flex, priority")
        return None
    versions_raw = raw.get("versions")
    versions: list[Version] = []
    if prices_from is not None:
        if versions_raw:
            issues.error(file_label, label, "give either prices_from or versions, not both")
            return None
        if not isinstance(prices_from, str) or "/" not in prices_from:
            issues.error(file_label, label, "prices_from: expected provider/id of another entry")
            return None
    else:
        if inherit_raw:
            issues.error(file_label, label, "inherit_tiers only goes with prices_from")
            return None
        if not isinstance(versions_raw, list) or not versions_raw:
            issues.error(file_label, label, "versions are missing (or use prices_from)")
            return None
        for i, version_raw in enumerate(versions_raw):
            try:
                version = _version(version_raw, f"versions[{i}]", default_source)
            except (ValueError, RateError) as exc:
                message = str(exc)
                issues.error(
                    file_label,
                    label,
                    message if message.startswith("versions[") else f"versions[{i}]: {message}",
                )
                return None
            if require_source and (version.source is None or version.source.read is None):
                issues.error(file_label, label, f"versions[{i}]: source with url and read date is required")
            versions.append(version)
        problem = _check_versions(versions)
        if problem:
            issues.error(file_label, label, problem)
            return None
    note = raw.get("note")
    return Entry(
        provider=providers[0],
        id=entry_id,
        providers=providers,
        kind=kind,
        aliases=aliases,
        patterns=patterns,
        versions=_fill_effective_to(versions),
        file=path,
        catalog=catalog,
        match_without_provider=match_without_provider,
        note=str(note) if note else None,
        prices_from=normalize(prices_from) if isinstance(prices_from, str) else None,
        inherit_tiers=tuple(inherit_raw),
    )


def _parse_file(path: Path, text: str, *, catalog: str | None, label: str, issues: _Issues) -> list[Entry]:
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        issues.error(label, None, f"not valid YAML: {exc}")
        return []
    if not isinstance(data, Mapping):
        issues.error(label, None, "the top level must be a mapping with a models list")
        return []
    unknown = set(data) - _FILE_KEYS
    if unknown:
        issues.error(label, None, f"unknown key {sorted(unknown)[0]!r}")
        return []
    currency = data.get("currency", "USD")
    if currency != "USD":
        issues.error(
            label, None, f"currency: only USD is supported (money columns are USD), got {currency!r}"
        )
        return []
    try:
        file_providers = _providers(data["provider"]) if "provider" in data else None
        default_source = _source(data["source"]) if data.get("source") is not None else None
    except ValueError as exc:
        issues.error(label, None, str(exc))
        return []
    models = data.get("models")
    if not isinstance(models, list):
        issues.error(label, None, "models: expected a list of entries")
        return []
    entries = []
    for position, raw in enumerate(models):
        entry = _parse_entry(
            raw,
            position,
            file_label=label,
            path=path,
            catalog=catalog,
            file_providers=file_providers,
            default_source=default_source,
            match_without_provider=bool(data.get("match_without_provider", False)),
            require_source=catalog is None,
            issues=issues,
        )
        if entry is not None:
            entries.append(entry)
    return entries


# -- layering, copying and indexing -------------------------------------------------------------------


def shipped_catalog_files() -> list[Path]:
    """The catalog files shipped inside the package, in name order."""
    root = resources.files("otelcost.pricing") / "catalog"
    return sorted(Path(str(item)) for item in root.iterdir() if item.name.endswith((".yaml", ".yml")))


def _expand(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
        else:
            files.append(path)
    return files


def _label(path: Path, *, shipped: bool) -> str:
    return f"catalog/{path.name}" if shipped else str(path)


@dataclass
class _Layered:
    entries: dict[tuple[str, str], Entry] = field(default_factory=dict)
    layer_of: dict[tuple[str, str], str] = field(default_factory=dict)


def _add_layer(state: _Layered, entries: list[Entry], layer: str, label: str, issues: _Issues) -> None:
    seen: set[tuple[str, str]] = set()
    for parsed in entries:
        entry = parsed
        key = (entry.provider, entry.id)
        if key in seen:
            issues.error(label, entry.key, "duplicate entry (same provider and id twice in this catalog)")
            continue
        seen.add(key)
        earlier = state.entries.get(key)
        if earlier is not None and state.layer_of[key] == layer:
            issues.error(
                label, entry.key, f"duplicate entry: also defined in {_label(earlier.file, shipped=True)}"
            )
            continue
        if earlier is not None:
            # An override keeps the names of what it replaces: a negotiated price for gpt-4o still
            # has to match gpt-4o-2024-08-06.
            entry = replace(
                entry,
                aliases=tuple(dict.fromkeys((*earlier.aliases, *entry.aliases))),
                patterns=tuple(dict.fromkeys((*earlier.patterns, *entry.patterns))),
            )
        state.entries[key] = entry
        state.layer_of[key] = layer


def _resolve_prices_from(state: _Layered, issues: _Issues) -> None:
    for key, entry in list(state.entries.items()):
        if entry.prices_from is None:
            continue
        provider, _, target_id = entry.prices_from.partition("/")
        # Provider names contain dots but no slash; ids may contain slashes.
        target = state.entries.get((provider, target_id))
        label = _label(entry.file, shipped=entry.catalog is None)
        if target is None:
            issues.error(label, entry.key, f"prices_from: no entry {entry.prices_from}")
            del state.entries[key]
            continue
        if target.prices_from is not None:
            issues.error(label, entry.key, f"prices_from: {entry.prices_from} itself copies its prices")
            del state.entries[key]
            continue
        versions = tuple(
            replace(v, tiers={t: p for t, p in v.tiers.items() if t in entry.inherit_tiers})
            for v in target.versions
        )
        state.entries[key] = replace(entry, versions=versions)


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
        issues = _Issues()
        state = _Layered()
        if config.shipped_catalog:
            shipped: list[Entry] = []
            for path in shipped_catalog_files():
                label = _label(path, shipped=True)
                shipped.extend(
                    _parse_file(
                        path, path.read_text(encoding="utf-8"), catalog=None, label=label, issues=issues
                    )
                )
            _add_layer(state, shipped, "shipped", "catalog", issues)
        for path in _expand([*config.catalogs, *extra]):
            label = _label(path, shipped=False)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                issues.error(label, None, f"cannot read: {exc.strerror or exc}")
                continue
            entries = _parse_file(path, text, catalog=path.stem, label=label, issues=issues)
            _add_layer(state, entries, str(path), label, issues)
        _resolve_prices_from(state, issues)
        entries = list(state.entries.values())
        _check_names(entries, issues)
        catalog = cls(entries, warnings=[i for i in issues.items if i.severity == "warning"])
        return catalog, issues.items

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


def _check_names(entries: Sequence[Entry], issues: _Issues) -> None:
    """Two entries of one layer claiming one name for one provider is ambiguous: an error."""
    owners: dict[tuple[str, str, str | None], Entry] = {}
    for entry in entries:
        for provider in entry.providers:
            for name in (entry.id, *entry.aliases, *(f"pattern:{p}" for p in entry.patterns)):
                key = (provider, name, entry.catalog)
                other = owners.get(key)
                if other is not None and other is not entry:
                    label = _label(entry.file, shipped=entry.catalog is None)
                    what = f"pattern {name[8:]!r}" if name.startswith("pattern:") else f"alias {name!r}"
                    issues.error(label, entry.key, f"duplicate {what} for {provider}: also {other.key}")
                owners[key] = entry


def check(config: PricingConfig, extra: Sequence[Path] = ()) -> tuple[Catalog, list[CatalogIssue]]:
    """Load like :meth:`Catalog.load` but return every problem instead of raising."""
    return Catalog._build(config, extra)
