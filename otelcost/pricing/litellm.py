"""Convert LiteLLM's community price map into an otelcost catalog file.

LiteLLM's ``model_prices_and_context_window.json`` prices thousands of models. Importing it as
a user catalog gives breadth on day one; the shipped catalog stays the effective-dated,
sourced reference for the models it covers (by default they are left out of the import).

The field mapping (``docs/pricing.md`` has the full table and the rules LiteLLM applies):

==========================================================  ===================================
LiteLLM field (USD per token, a JSON float)                 otelcost catalog (USD per 1M tokens)
==========================================================  ===================================
``input_cost_per_token``                                    ``input``
``output_cost_per_token`` (absent: 0)                       ``output``
``cache_read_input_token_cost``                             ``cache_read``
``input_cost_per_token_cache_hit`` (legacy, DeepSeek)       ``cache_read`` when the above is absent
``cache_creation_input_token_cost``                         ``cache_write`` (5-minute writes)
``cache_creation_input_token_cost_above_1hr`` (a TTL!)      ``cache_write_1h``
``output_cost_per_reasoning_token``                         ``reasoning``
``<field>_above_<N>k_tokens``                               ``long_context: [{above: N*1000}]``
                                                            (``at_least`` for xAI, as LiteLLM)
``<field>_batches`` / ``_flex`` / ``_priority``             ``tiers: batch`` / ``flex`` / ``priority``
``tiered_pricing`` ranges                                   base = the range from 0, the others
                                                            ``long_context: [{above: lo}]``
``litellm_provider``                                        ``provider`` (gen_ai.provider.name)
``source``                                                  ``source.url``
==========================================================  ===================================

Every JSON float goes through its shortest decimal text (``repr``), never binary arithmetic:
``1.25e-06`` becomes exactly ``1.25`` per million. A rate finer than a picodollar per token is
rounded half-to-even to six decimals per million and counted in the report. A tier or long-
context level that lacks a class gets the base class rate, as LiteLLM falls back. Dropped (and
counted): per-image, per-second, per-character, per-query and per-request prices, audio / image
token rates, ``_above_12hr`` cache writes, ``_balanced`` / ``_ultrafast`` / ``_decisions``
tiers, ``off_peak_pricing`` and regional multipliers. LiteLLM has no effective dates: imported
versions apply from the start.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final

import yaml

from otelcost.errors import PricingError
from otelcost.pricing.catalog import Catalog

__all__ = ["DEFAULT_MODES", "PROVIDER_MAP", "ImportReport", "convert", "convert_file_text"]

DEFAULT_MODES: Final = ("chat", "completion", "responses", "embedding")
SOURCE_URL: Final = "https://github.com/BerriAI/litellm/blob/main/model_prices_and_context_window.json"

PROVIDER_MAP: Final[dict[str, str]] = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",
    "azure": "azure.ai.openai",
    "azure_text": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "mistral": "mistral_ai",
    "codestral": "mistral_ai",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "groq": "groq",
    "perplexity": "perplexity",
    "moonshot": "moonshot_ai",
    "watsonx": "ibm.watsonx.ai",
}
"""LiteLLM ``litellm_provider`` -> OpenTelemetry ``gen_ai.provider.name``; ``vertex_ai-*`` routes
map to ``gcp.vertex_ai``; any other provider keeps LiteLLM's name."""

_BASE_FIELDS: Final = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cache_read",
    "cache_creation_input_token_cost": "cache_write",
    "cache_creation_input_token_cost_above_1hr": "cache_write_1h",
    "output_cost_per_reasoning_token": "reasoning",
}
_TIER_SUFFIXES: Final = {"_batches": "batch", "_flex": "flex", "_priority": "priority"}
_THRESHOLD: Final = re.compile(r"^(?P<base>.+?)_above_(?P<n>\d+)(?P<k>k?)_tokens$")
_INCLUSIVE_PROVIDERS: Final = frozenset({"x_ai"})
_MILLION: Final = Decimal(10**6)
_SIX_PLACES: Final = Decimal("0.000001")
_IGNORED_METADATA: Final = frozenset(
    {
        "litellm_provider",
        "mode",
        "max_tokens",
        "max_input_tokens",
        "max_output_tokens",
        "output_vector_size",
        "deprecation_date",
        "source",
        "metadata",
        "comment",
        "tiered_pricing",
        "input_cost_per_token_cache_hit",
    }
)


@dataclass
class ImportReport:
    """What the conversion took, skipped and dropped, for the command to print."""

    imported: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    dropped_fields: Counter[str] = field(default_factory=Counter)
    rounded: list[str] = field(default_factory=list)
    providers: Counter[str] = field(default_factory=Counter)


def _gen_ai_provider(litellm_provider: str) -> str:
    if litellm_provider.startswith("vertex_ai"):
        return "gcp.vertex_ai"
    return PROVIDER_MAP.get(litellm_provider, litellm_provider)


def _per_million(value: object, key: str, report: ImportReport) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    per_million = (Decimal(repr(value)) * _MILLION).normalize()
    if per_million < 0:
        return None
    if per_million != per_million.quantize(_SIX_PLACES, rounding=ROUND_HALF_EVEN):
        report.rounded.append(key)
        per_million = per_million.quantize(_SIX_PLACES, rounding=ROUND_HALF_EVEN)
    return per_million if per_million != per_million.to_integral_value() else per_million.quantize(Decimal(1))


def _split(name: str) -> tuple[str, int | None, str | None] | None:
    """``input_cost_per_token_above_200k_tokens_batches`` -> (``input``, 200000, ``batch``)."""
    tier = None
    for suffix, tier_name in _TIER_SUFFIXES.items():
        if name.endswith(suffix):
            name, tier = name[: -len(suffix)], tier_name
            break
    threshold = None
    match = _THRESHOLD.match(name)
    if match and match["base"] in _BASE_FIELDS:
        name = match["base"]
        threshold = int(match["n"]) * (1000 if match["k"] else 1)
    if name not in _BASE_FIELDS:
        return None
    return _BASE_FIELDS[name], threshold, tier


def _entry_prices(
    spec: Mapping[str, Any], provider: str, key: str, report: ImportReport
) -> dict[str, Any] | None:
    # rates[tier][threshold][class]; tier None = standard, threshold None = base
    rates: dict[str | None, dict[int | None, dict[str, Decimal]]] = {}
    for name, value in spec.items():
        parsed = _split(name)
        if parsed is None:
            if name not in _IGNORED_METADATA and ("cost" in name or "pric" in name):
                report.dropped_fields[name] += 1
            continue
        rate_class, threshold, tier = parsed
        amount = _per_million(value, f"{key}.{name}", report)
        if amount is not None:
            rates.setdefault(tier, {}).setdefault(threshold, {})[rate_class] = amount
    standard = rates.get(None, {}).get(None, {})
    if "cache_read" not in standard and "input_cost_per_token_cache_hit" in spec:
        hit = _per_million(
            spec["input_cost_per_token_cache_hit"], f"{key}.input_cost_per_token_cache_hit", report
        )
        if hit is not None:
            standard["cache_read"] = hit
    tiered = spec.get("tiered_pricing")
    if isinstance(tiered, list) and tiered:
        for level in tiered:
            span = level.get("range") if isinstance(level, Mapping) else None
            if not (isinstance(span, list) and span):
                continue
            low = int(span[0])
            target = standard if low == 0 else rates.setdefault(None, {}).setdefault(low, {})
            for name, value in level.items():
                if name in _BASE_FIELDS:
                    amount = _per_million(value, f"{key}.tiered_pricing.{name}", report)
                    if amount is not None:
                        target[_BASE_FIELDS[name]] = amount
    if "input" not in standard:
        return None
    standard.setdefault("output", Decimal(0))
    inclusive = provider in _INCLUSIVE_PROVIDERS

    def price_set(tier: str | None) -> dict[str, Any]:
        levels = rates.get(tier, {})
        base = {**standard, **levels.get(None, {})} if tier else dict(standard)
        result: dict[str, Any] = dict(sorted(base.items(), key=lambda item: _ORDER[item[0]]))
        thresholds = sorted(
            {t for t in rates.get(None, {}) if t is not None} | {t for t in levels if t is not None}
        )
        long_context = []
        for threshold in thresholds:
            level = {**rates.get(None, {}).get(threshold, {}), **(levels.get(threshold, {}) if tier else {})}
            if not level:
                continue
            entry: dict[str, Any] = {("at_least" if inclusive else "above"): threshold}
            entry.update(sorted(level.items(), key=lambda item: _ORDER[item[0]]))
            long_context.append(entry)
        if long_context:
            result["long_context"] = long_context
        return result

    version: dict[str, Any] = {"prices": price_set(None)}
    tiers = {name: price_set(name) for name in ("batch", "flex", "priority") if name in rates}
    if tiers:
        version["tiers"] = tiers
    return version


_ORDER: Final = {
    name: i
    for i, name in enumerate(("input", "cache_read", "cache_write", "cache_write_1h", "output", "reasoning"))
}


def _entry_id(key: str, litellm_provider: str) -> str:
    for prefix in (f"{litellm_provider}/", f"{litellm_provider.split('-', 1)[0]}/"):
        if key.lower().startswith(prefix.lower()):
            return key[len(prefix) :].lower()
    return key.lower()


def convert(
    data: Mapping[str, Any],
    *,
    modes: tuple[str, ...] = DEFAULT_MODES,
    read: date,
    skip_catalog: Catalog | None = None,
) -> tuple[dict[str, Any], ImportReport]:
    """Turn the parsed price map into a catalog document (a dict ready for YAML) and a report."""
    report = ImportReport()
    models: list[dict[str, Any]] = []
    taken: dict[str, set[str]] = {}
    for key, spec in data.items():
        if key in ("sample_spec", "rules") or not isinstance(spec, Mapping):
            report.skipped["not a model"] += 1
            continue
        litellm_provider = spec.get("litellm_provider")
        if not isinstance(litellm_provider, str):
            report.skipped["no litellm_provider"] += 1
            continue
        if spec.get("mode") not in modes:
            report.skipped[f"mode {spec.get('mode')}"] += 1
            continue
        provider = _gen_ai_provider(litellm_provider)
        entry_id = _entry_id(key, litellm_provider)
        if skip_catalog is not None and skip_catalog.resolve(provider, entry_id) is not None:
            report.skipped["already in the shipped catalog"] += 1
            continue
        version = _entry_prices(spec, provider, key, report)
        if version is None:
            report.skipped["no per-token input price"] += 1
            continue
        names = taken.setdefault(provider, set())
        if entry_id in names:
            entry_id = key.lower()
            if entry_id in names:
                report.skipped["duplicate name"] += 1
                continue
        names.add(entry_id)
        entry: dict[str, Any] = {"id": entry_id, "provider": provider}
        if spec.get("mode") == "embedding":
            entry["kind"] = "embedding"
        elif spec.get("mode") == "completion":
            entry["kind"] = "completion"
        alias = key.lower()
        if alias != entry_id and alias not in names:
            entry["aliases"] = [alias]
            names.add(alias)
        if isinstance(spec.get("source"), str):
            version["source"] = {"url": spec["source"], "read": read}
        if spec.get("deprecation_date"):
            version["note"] = f"LiteLLM deprecation_date {spec['deprecation_date']}"
        entry["versions"] = [version]
        models.append(entry)
        report.imported += 1
        report.providers[provider] += 1
    document = {
        "currency": "USD",
        "source": {
            "url": SOURCE_URL,
            "read": read,
            "note": "imported with `otelcost pricing import-litellm`; LiteLLM has no effective dates",
        },
        "models": models,
    }
    return document, report


class _Dumper(yaml.SafeDumper):
    pass


def _represent_decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.ScalarNode:
    # Quoted: the catalog loader would read a bare 2.5 exactly too, but a quoted string survives
    # any other YAML tool that might touch the file.
    return dumper.represent_scalar("tag:yaml.org,2002:str", format(value, "f"), style='"')


_Dumper.add_representer(Decimal, _represent_decimal)


def convert_file_text(
    text: str,
    *,
    modes: tuple[str, ...] = DEFAULT_MODES,
    read: date,
    skip_catalog: Catalog | None = None,
) -> tuple[str, ImportReport]:
    """Parse the JSON text of the price map and return catalog YAML text and the report."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PricingError(f"not a LiteLLM price map (invalid JSON): {exc}") from exc
    if not isinstance(data, dict):
        raise PricingError("not a LiteLLM price map: the top level must be an object of models")
    document, report = convert(data, modes=modes, read=read, skip_catalog=skip_catalog)
    header = (
        "# Generated by `otelcost pricing import-litellm` from LiteLLM's "
        "model_prices_and_context_window.json.\n"
        "# Prices are USD per 1M tokens; see docs/pricing.md for the field mapping.\n"
    )
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)
    return header + body, report
