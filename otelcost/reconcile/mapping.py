"""How a model named on a bill and a model named in the lake become the same cell.

Both sides are keyed by the **catalog model id** (the lake's ``model`` column, docs/schema.md):
a call's model is what the pricer resolved; a bill's model name is resolved with the same
catalog (``Catalog.resolve``, docs/pricing.md "Which entry") under the lake's provider, so
``gpt-4o-mini-2024-07-18`` on the bill and a call priced as ``gpt-4o-mini`` meet. Names the
catalog does not know are compared as written (trimmed, lower case): the lake's unpriced calls
by their response (else request) model.

The hosts spell models their own way, so their names are turned into catalog spellings first:

* Bedrock: a model id from an ARN is used as it is (``us.anthropic.claude-...``); a product
  name (``Claude Sonnet 4.5``) becomes ``claude-sonnet-4-5``, and ``global.claude-sonnet-4-5``
  when the usage type is the global cross-region rate (the catalog prices the two apart).
* Azure: a meter's model and version (``gpt-4o-mini@0718``) become the dated snapshot
  (``gpt-4o-mini-2024-07-18``, trying years from the newest), then ``gpt-4o-mini-0718``, then
  ``gpt-4o-mini``.

``model_map`` (``--model-map NAME=MODEL``) overrides all of it for a bill name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from otelcost.pricing.catalog import Catalog
from otelcost.pricing.names import normalize
from otelcost.reconcile.invoice import OTHER, InvoiceLine

__all__ = ["ModelKey", "ModelResolver"]

_YEARS: Final = tuple(range(2027, 2022, -1))


@dataclass(frozen=True, slots=True)
class ModelKey:
    """The key of a bill name, and how it was found (``model_map``, ``catalog``, ``as written``)."""

    key: str
    how: str
    entry: str | None = None


class ModelResolver:
    """Bill names -> model keys for one provider, resolved once per distinct name."""

    def __init__(
        self, catalog: Catalog | None, provider: str, lake_provider: str, model_map: Mapping[str, str]
    ) -> None:
        self._catalog = catalog
        self._provider = provider
        self._lake_provider = lake_provider
        self._map = {normalize(k): v.strip() for k, v in model_map.items()}
        self._cache: dict[tuple[str, bool], ModelKey] = {}

    def key(self, line: InvoiceLine) -> ModelKey:
        if line.token_class == OTHER:
            return ModelKey(line.model, "not a model (a non-token charge)")
        cache_key = (line.model, line.host_global)
        if cache_key not in self._cache:
            self._cache[cache_key] = self._resolve(line.model, line.host_global)
        return self._cache[cache_key]

    def _resolve(self, name: str, host_global: bool) -> ModelKey:
        mapped = self._map.get(normalize(name)) or self._map.get(normalize(name.split("@", maxsplit=1)[0]))
        if mapped:
            return ModelKey(mapped, "model_map")
        spellings = list(self._spellings(name, host_global))
        if self._catalog is not None:
            for spelling in spellings:
                entry = self._catalog.resolve(self._lake_provider, spelling)
                if entry is not None:
                    return ModelKey(entry.id, "catalog", entry.key)
        return ModelKey(spellings[-1] if spellings else normalize(name), "as written")

    def _spellings(self, name: str, host_global: bool) -> Iterator[str]:
        text = normalize(name)
        if self._provider == "azure-openai" and "@" in text:
            model, version = text.split("@", 1)
            for year in _YEARS:
                yield f"{model}-{year}-{version[:2]}-{version[2:]}"
            yield f"{model}-{version}"
            yield model
            return
        if self._provider == "bedrock" and (" " in text or "." not in text):
            slug = re.sub(r"[\s.]+", "-", text).strip("-")
            if host_global:
                yield f"global.{slug}"
            yield slug
            return
        yield text
