"""Reading catalog files into entries: validate, resolve, layer, and report every problem.

Files load in order, the shipped catalog first, then the user's in the order given, and a
later file *overrides* an earlier one: an entry with the same provider and id replaces the
earlier entry's versions and adds to its aliases and patterns, and an alias or pattern claimed
again points to the later entry. Within one layer (the shipped catalog, or one user file) a
duplicate is an error instead. ``prices_from`` is resolved once every file is in, so it follows
overrides of its target.

Each problem is a :class:`CatalogIssue` naming the file and the entry, with the key path inside
the entry (``catalog/openai.yaml: openai/gpt-4o: versions[1].prices.input: ...``). A file with a
problem in its own keys is left out; an entry with a problem is left out and the rest of its
file still loads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Final

import yaml
from pydantic import ValidationError

from otelcost.pricing.catalog_models import (
    CatalogEntry,
    CatalogFile,
    SourceModel,
    VersionModel,
    entry_label,
    first_problem,
)
from otelcost.pricing.catalog_values import load_yaml
from otelcost.pricing.config import PricingConfig
from otelcost.pricing.entries import Entry, Source, Version
from otelcost.pricing.price_sets import price_set, tier_price_set
from otelcost.pricing.rates import PriceSet, RateError

__all__ = ["CatalogIssue", "read_catalogs", "shipped_catalog_files"]


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


def shipped_catalog_files() -> list[Path]:
    """The catalog files shipped inside the package, in name order."""
    root = resources.files("otelcost.pricing") / "catalog"
    return sorted(Path(str(item)) for item in root.iterdir() if item.name.endswith((".yaml", ".yml")))


def read_catalogs(
    config: PricingConfig, extra: Sequence[Path] = ()
) -> tuple[list[Entry], list[CatalogIssue]]:
    """The entries of the shipped catalog (unless disabled) overridden by the user's catalogs and
    ``extra`` files, in order, and every problem found (the entries leave out what failed)."""
    issues = _Issues()
    state = _Layered()
    if config.shipped_catalog:
        shipped: list[Entry] = []
        for path in shipped_catalog_files():
            text = path.read_text(encoding="utf-8")
            shipped.extend(
                _parse_file(path, text, catalog=None, label=_label(path, shipped=True), issues=issues)
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
    return entries, issues.items


# -- one file ----------------------------------------------------------------------------------


def _parse_file(path: Path, text: str, *, catalog: str | None, label: str, issues: _Issues) -> list[Entry]:
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        issues.error(label, None, f"not valid YAML: {exc}")
        return []
    if not isinstance(data, Mapping):
        issues.error(label, None, "the top level must be a mapping with a models list")
        return []
    try:
        file = CatalogFile.model_validate(data)
    except ValidationError as exc:
        issues.error(label, None, first_problem(exc))
        return []
    default_source = _source(file.source)
    entries = []
    for position, raw in enumerate(file.models):
        try:
            model = CatalogEntry.model_validate(raw)
        except ValidationError as exc:
            issues.error(label, entry_label(raw, position, file.provider), _entry_problem(exc, raw, file))
            continue
        providers = model.provider or file.provider
        if providers is None:
            issues.error(
                label, f"models[{position}] ({model.id})", "no provider (give it in the file or entry)"
            )
            continue
        entry_key = f"{providers[0]}/{model.id}"
        try:
            versions = tuple(
                _version(version, f"versions[{i}]", default_source)
                for i, version in enumerate(model.versions)
            )
        except RateError as exc:
            issues.error(label, entry_key, str(exc))
            continue
        if catalog is None:  # the shipped catalog says where every price was read
            for i, version in enumerate(versions):
                if version.source is None or version.source.read is None:
                    issues.error(
                        label, entry_key, f"versions[{i}]: source with url and read date is required"
                    )
        entries.append(
            Entry(
                provider=providers[0],
                id=model.id,
                providers=providers,
                kind=model.kind,
                aliases=model.aliases,
                patterns=model.patterns,
                versions=_fill_effective_to(versions),
                file=path,
                catalog=catalog,
                match_without_provider=file.match_without_provider,
                note=model.note,
                prices_from=model.prices_from,
                inherit_tiers=model.inherit_tiers,
            )
        )
    return entries


_NO_PROVIDER: Final = "no provider (give it in the file or entry)"


def _entry_problem(error: ValidationError, raw: object, file: CatalogFile) -> str:
    """What to report of an entry that failed validation: a missing provider is told before
    what is wrong inside the entry (its id and provider are what name it)."""
    no_provider = file.provider is None and isinstance(raw, Mapping) and "provider" not in raw
    if no_provider and error.errors()[0]["loc"][:1] != ("id",):
        return _NO_PROVIDER
    return first_problem(error)


def _source(model: SourceModel | None) -> Source | None:
    return None if model is None else Source(model.url, model.read, model.note)


def _version(model: VersionModel, key: str, default_source: Source | None) -> Version:
    prices = price_set(model.prices)
    tiers: dict[str, PriceSet] = {
        tier: tier_price_set(spec, prices, f"{key}.tiers.{tier}") for tier, spec in model.tiers.items()
    }
    source = _source(model.source) if model.source is not None else default_source
    return Version(model.effective_from, model.effective_to, prices, tiers, source, model.note)


def _fill_effective_to(versions: Sequence[Version]) -> tuple[Version, ...]:
    """Give every version its end: its own effective_to, else the next version's start."""
    filled = []
    for i, version in enumerate(versions):
        end = version.effective_to
        if end is None and i + 1 < len(versions):
            end = versions[i + 1].effective_from
        filled.append(replace(version, effective_to=end))
    return tuple(filled)


# -- layering, copying and names -------------------------------------------------------------------


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
