"""Attribution: fill team, feature, user, tenant ... for each call from ordered rules.

Each dimension has an ordered list of sources; the first that yields a non-empty value wins:

- ``span: KEY`` / ``baggage: KEY``: the call span's attribute ``KEY``; when ``inherit`` is on and
  the call lacks it, the same attribute on its nearest ancestor in the same trace (within the
  trace memory's window and depth). Baggage reaches a span only when the application copies it
  there (OpenTelemetry's BaggageSpanProcessor copies each entry under its own name), so a baggage
  source reads an attribute exactly like a span source; the two kinds exist to say what is meant.
- ``resource: KEY``: the resource attribute ``KEY`` of the service that emitted the call.
- ``ownership: KEY``: the row of the ownership table whose key column matches the call's
  ``service`` (KEY ``service``) or its resource attribute KEY; the value is the row's column
  named like the dimension.
- ``default: VALUE``: a literal.

A span, baggage or resource source with ``json: PATH`` reads the attribute as a JSON object
(OpenInference's ``metadata``) and takes the value at the dotted ``PATH`` inside it.

A call missing a *required* dimension is still stored, with ``attribution_status = incomplete``
and the dimension listed in ``missing_dimensions``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from otelcost.errors import ConfigError
from otelcost.normalize.config import AttributionConfig, OwnershipConfig
from otelcost.normalize.values import attribute_text
from otelcost.schema import ATTRIBUTION_DIMENSIONS

__all__ = ["Attribution", "Attributor", "OwnershipTable", "load_ownership"]

_SPAN, _RESOURCE, _OWNERSHIP, _DEFAULT = range(4)
_Path = tuple[str, ...]
_Rule = tuple[int, str, _Path | None]
"""(kind code, key, JSON path or None)."""
_KIND_CODES: Final = {
    "span": _SPAN,
    "baggage": _SPAN,
    "resource": _RESOURCE,
    "ownership": _OWNERSHIP,
    "default": _DEFAULT,
}


@dataclass(frozen=True)
class OwnershipTable:
    """Static owners per key value (per service by default): ``rows[value][column]``."""

    key: str = "service"
    rows: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def lookup(self, value: str | None) -> Mapping[str, str] | None:
        return None if value is None else self.rows.get(value)


def _clean_row(row: Mapping[Any, Any], where: str, key: str) -> tuple[str, dict[str, str]]:
    cleaned = {
        str(column).strip(): str(value).strip()
        for column, value in row.items()
        if column is not None and value is not None and str(value).strip() != ""
    }
    key_value = cleaned.pop(key, None)
    if key_value is None:
        raise ConfigError(f"{where}: row has no {key!r} value: {dict(row)!r}")
    return key_value, cleaned


def _read_file_rows(path: Path) -> list[Mapping[Any, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"attribution.ownership.file: cannot read {path}: {exc.strerror}") from exc
    suffix = path.suffix.lower()
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames:
            raise ConfigError(f"attribution.ownership.file: {path} has no header row")
        return list(reader)
    if suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"attribution.ownership.file: {path} is not valid YAML: {exc}") from exc
        if data is None:
            return []
        if isinstance(data, list) and all(isinstance(row, Mapping) for row in data):
            return data
        raise ConfigError(f"attribution.ownership.file: {path} must be a YAML list of mappings")
    raise ConfigError(f"attribution.ownership.file: {path}: expected a .csv, .yaml or .yml file")


def load_ownership(config: OwnershipConfig) -> OwnershipTable:
    """Read the inline rows and the file; raise ConfigError naming the problem.

    A key value that appears twice (in the file, inline, or across both) is an error: which row
    would win is not obvious, and ownership tables are for settling exactly that.
    """
    sources: list[tuple[str, Mapping[Any, Any]]] = []
    if config.file is not None:
        where = f"attribution.ownership.file ({config.file})"
        sources.extend((where, row) for row in _read_file_rows(config.file))
    sources.extend(("attribution.ownership.rows", row) for row in config.rows)
    rows: dict[str, dict[str, str]] = {}
    for where, row in sources:
        key_value, columns = _clean_row(row, where, config.key)
        if key_value in rows:
            raise ConfigError(f"{where}: {config.key} {key_value!r} appears more than once")
        rows[key_value] = columns
    return OwnershipTable(config.key, rows)


@dataclass(frozen=True, slots=True)
class Attribution:
    """The dimension values of one call, in ``schema.ATTRIBUTION_DIMENSIONS`` order."""

    values: tuple[str | None, ...]
    missing: tuple[str, ...]
    inherited: tuple[str, ...]
    """Dimensions whose value came from an ancestor span."""
    claimed: tuple[tuple[str, str | None], ...] = ()
    """Dimensions the ingest key fixed, each with what the rules had found on the span."""

    def bound_to(self, bind: Mapping[str, str]) -> Attribution:
        """This attribution with the key's bound dimensions in place of what the span claimed.

        ``bind`` may hold ``service`` too, which is not a dimension (the resource reading took it).
        """
        values = list(self.values)
        claimed: list[tuple[str, str | None]] = []
        for index, dimension in enumerate(ATTRIBUTION_DIMENSIONS):
            bound = bind.get(dimension)
            if bound is not None:
                claimed.append((dimension, values[index]))
                values[index] = bound
        if not claimed:
            return self
        fixed = {dimension for dimension, _ in claimed}
        return Attribution(
            tuple(values),
            tuple(d for d in self.missing if d not in fixed),
            tuple(d for d in self.inherited if d not in fixed),
            tuple(claimed),
        )


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if type(value) is str else attribute_text(value) or None


_NOT_AN_OBJECT: Final[dict[str, Any]] = {}


def _json_object(raw: Any, parsed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``raw`` (an attribute value) as a JSON object, parsed once per call; {} if it is not one.

    Metadata is written by applications, not by us: text that is not a JSON object is no value,
    never an error (the call is still stored, and counted as missing the dimension if required).
    """
    if type(raw) is not str:
        return _NOT_AN_OBJECT
    found = parsed.get(raw)
    if found is None:
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
            value = None
        found = value if isinstance(value, dict) else _NOT_AN_OBJECT
        parsed[raw] = found
    return found


def _json_lookup(document: Any, path: _Path) -> str | None:
    """The scalar at ``path`` in ``document``; a key spelled with dots is matched whole first."""
    for index, part in enumerate(path):
        if not isinstance(document, dict):
            return None
        whole = ".".join(path[index:])
        if index < len(path) - 1 and whole in document:
            document = document[whole]
            break
        document = document.get(part)
    if isinstance(document, (dict, list)):
        return None  # an object or array is not a dimension value
    if isinstance(document, bool):
        return "true" if document else "false"
    return _text(document)


def _read_json(raw: Any, path: _Path, parsed: dict[str, dict[str, Any]]) -> str | None:
    return _json_lookup(_json_object(raw, parsed), path)


class Attributor:
    """Compiled attribution rules; :meth:`attribute` runs them for one call."""

    def __init__(self, config: AttributionConfig, ownership: OwnershipTable) -> None:
        compiled = []
        for dimension in ATTRIBUTION_DIMENSIONS:
            rules = tuple(
                (_KIND_CODES[s.kind], s.key, tuple(s.json_path.split(".")) if s.json_path else None)
                for s in config.dimensions.get(dimension, ())
            )
            span_keys = frozenset(key for kind, key, _ in rules if kind == _SPAN)
            others = tuple(rule for rule in rules if rule[0] != _SPAN)
            compiled.append((dimension, rules, span_keys, others))
        self._compiled: tuple[tuple[str, tuple[_Rule, ...], frozenset[str], tuple[_Rule, ...]], ...]
        self._compiled = tuple(compiled)
        self._required = frozenset(config.required)
        self._inherit = config.inherit
        self._ownership = ownership
        self.span_keys: frozenset[str] = frozenset().union(*(c[2] for c in compiled))
        """Span attribute keys any rule reads: what the trace memory keeps of every span."""

    def attribute(
        self,
        attrs: Mapping[str, Any],
        resource: Mapping[str, Any],
        service: str | None,
        ancestors: Callable[[], Sequence[Mapping[str, Any]]],
        bind: Mapping[str, str] | None = None,
    ) -> Attribution:
        """``ancestors`` returns the remembered span-level values of the call's ancestors,
        nearest first (only called when inheritance is on). ``bind``: the dimensions the
        request's API key fixes, which win over every rule."""
        present = self.span_keys.intersection(attrs)
        chain: Sequence[Mapping[str, Any]] = ancestors() if self._inherit else ()
        available = present.union(*chain) if chain else present
        row: Mapping[str, str] | None = None
        row_looked_up = False
        values: list[str | None] = []
        missing: list[str] = []
        inherited: list[str] = []
        parsed: dict[str, dict[str, Any]] = {}
        for dimension, rules, span_keys, others in self._compiled:
            value: str | None = None
            # Most dimensions have none of their span keys on the call or its ancestors: then
            # only their resource/ownership/default sources can answer, in their order.
            for kind, key, path in rules if not span_keys.isdisjoint(available) else others:
                if kind == _SPAN:
                    if key in present:
                        value = _text(attrs[key]) if path is None else _read_json(attrs[key], path, parsed)
                        if value is not None:
                            break
                    for tags in chain:
                        value = (
                            _text(tags.get(key)) if path is None else _read_json(tags.get(key), path, parsed)
                        )
                        if value is not None:
                            inherited.append(dimension)
                            break
                elif kind == _RESOURCE:
                    value = (
                        _text(resource.get(key))
                        if path is None
                        else _read_json(resource.get(key), path, parsed)
                    )
                elif kind == _OWNERSHIP:
                    if not row_looked_up:
                        lookup = service if key == "service" else _text(resource.get(key))
                        row = self._ownership.lookup(lookup)
                        row_looked_up = True
                    value = row.get(dimension) if row is not None else None
                else:
                    value = key or None
                if value is not None:
                    break
            values.append(value)
            if value is None and dimension in self._required:
                missing.append(dimension)
        attribution = Attribution(tuple(values), tuple(missing), tuple(inherited))
        return attribution if not bind else attribution.bound_to(bind)
