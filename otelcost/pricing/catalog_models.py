"""The catalog file format: immutable pydantic models of what a file may contain.

The models say what a file may contain (``docs/pricing.md`` has the reference): unknown keys are
errors, and every value is checked where it is declared (the readers are
:mod:`otelcost.pricing.catalog_values`), so a problem is reported at its key
path (``versions[1].prices.input: a price cannot be negative (-1)``, see :func:`first_problem`).
They hold what the file says, as written (USD per 1M tokens as :class:`~decimal.Decimal`);
turning that into priced entries (picodollars, fallbacks, defaults from the file, ``prices_from``)
is :mod:`otelcost.pricing.price_sets` and :mod:`otelcost.pricing.catalog_loader`.

A file is validated in two steps: :class:`CatalogFile` for its own keys, then each of its
``models`` as a :class:`CatalogEntry` on its own, so one bad entry is reported (and left out)
without hiding the problems of the others.

An explicit ``null`` is the key left out where the key is optional and has no other default
(``source``, ``effective_to``, ``aliases`` ...), and an error where a value is expected (a
rate, ``scale``, ``provider``, a tier).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from otelcost.pricing.catalog_values import (
    Amount,
    ClockRanges,
    Currency,
    Identifier,
    InheritTiers,
    Kind,
    ModelId,
    Names,
    Note,
    Price,
    PricesFrom,
    Providers,
    Quantity,
    ReadDate,
    Text,
    Threshold,
    Truthy,
    Weekdays,
    Weight,
    When,
    a_list,
    not_null,
    read_model_id,
    read_providers,
    tier_names,
)
from otelcost.pricing.rates import RATE_CLASSES

__all__ = [
    "AmortizedModel",
    "CatalogEntry",
    "CatalogFile",
    "LongContextModel",
    "PriceSetModel",
    "RatesModel",
    "SourceModel",
    "TierModel",
    "TimeWindowModel",
    "VersionModel",
    "describe",
    "entry_label",
    "first_problem",
]


# -- models --------------------------------------------------------------------------------------


class _FileModel(BaseModel):
    """A mapping of a catalog file: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    shape: ClassVar[str] = "a mapping"
    """What the YAML must look like, for the message when it is something else."""


class SourceModel(_FileModel):
    """``{url, read, note}``, or a bare URL string."""

    url: str
    read: ReadDate = None
    note: Text = None

    @model_validator(mode="before")
    @classmethod
    def _url_or_mapping(cls, data: object) -> object:
        if isinstance(data, str):
            return {"url": data}
        if not isinstance(data, Mapping) or not isinstance(data.get("url"), str):
            raise ValueError("expected {url: ..., read: YYYY-MM-DD, note: ...}")
        return data


class RatesModel(_FileModel):
    """Rates by class (``rates.RATE_CLASSES``), in USD per 1M tokens; a class left out is None."""

    input: Price = None
    cache_read: Price = None
    cache_write: Price = None
    cache_write_1h: Price = None
    output: Price = None
    reasoning: Price = None

    def named(self) -> dict[str, Decimal]:
        """The classes the file names, in ``RATE_CLASSES`` order."""
        return {name: value for name in RATE_CLASSES if (value := getattr(self, name)) is not None}


class AmortizedModel(_FileModel):
    """A GPU-hour cost spread over the tokens the deployment serves in that hour."""

    shape = "a mapping with usd_per_hour and input_tokens_per_hour"

    usd_per_hour: Amount = None
    input_tokens_per_hour: Amount = None
    output_tokens_per_hour: Quantity = Decimal(0)
    output_weight: Weight = Decimal(1)

    @model_validator(mode="after")
    def _serves_tokens(self) -> AmortizedModel:
        if self.usd_per_hour is None or self.input_tokens_per_hour is None:
            raise ValueError("usd_per_hour and input_tokens_per_hour are required")
        if self.input_tokens_per_hour + self.output_weight * self.output_tokens_per_hour <= 0:
            raise ValueError("the throughputs must serve some tokens")
        return self


class LongContextModel(RatesModel):
    """Rates for every token of a call whose input tokens pass the threshold."""

    shape = "a mapping with above (or at_least) and rates"

    above: Threshold = None
    at_least: Threshold = None

    @model_validator(mode="after")
    def _one_threshold_and_a_rate(self) -> LongContextModel:
        if (self.above is None) == (self.at_least is None):
            raise ValueError("give exactly one of above (strictly more input tokens) or at_least")
        if not self.named():
            raise ValueError("a long-context level must name at least one rate")
        return self


class TimeWindowModel(RatesModel):
    """Rates for calls that start in one of ``windows`` (UTC) on one of ``weekdays``."""

    shape = "a mapping with name, windows and rates"

    name: Identifier
    windows: ClockRanges
    weekdays: Weekdays = frozenset(range(1, 8))


class _PriceSetFields(RatesModel):
    amortized: AmortizedModel | None = None
    long_context: Annotated[
        tuple[LongContextModel, ...], BeforeValidator(a_list("long-context levels", empty_if_unset=True))
    ] = ()
    time_of_day: Annotated[
        tuple[TimeWindowModel, ...], BeforeValidator(a_list("time-of-day windows", empty_if_unset=True))
    ] = ()

    _amortized_not_null = field_validator("amortized", mode="before")(not_null)

    @field_validator("long_context")
    @classmethod
    def _levels_in_order(cls, levels: tuple[LongContextModel, ...]) -> tuple[LongContextModel, ...]:
        keys = [(level.at_least or level.above or 0, level.at_least is not None) for level in levels]
        if keys != sorted(keys):
            raise ValueError("list the levels by increasing threshold")
        if len({threshold for threshold, _ in keys}) != len(keys):
            raise ValueError("two levels have the same threshold")
        return levels

    @field_validator("time_of_day")
    @classmethod
    def _unique_window_names(cls, windows: tuple[TimeWindowModel, ...]) -> tuple[TimeWindowModel, ...]:
        if len({window.name for window in windows}) != len(windows):
            raise ValueError("two windows have the same name")
        return windows

    def _check_complete(self) -> None:
        if self.amortized is not None:
            if self.named():
                raise ValueError("give either amortized or per-token rates, not both")
        elif self.input is None:
            raise ValueError("the input rate is missing")
        elif self.output is None:
            # Embedding models bill input only; stating output: 0 keeps that explicit.
            raise ValueError("the output rate is missing (write output: 0 for input-only models)")
        if self.long_context and self.time_of_day:
            raise ValueError("long_context and time_of_day cannot be combined in one price set")


class PriceSetModel(_PriceSetFields):
    """A price set: the base rates (or ``amortized``) and at most one kind of variant."""

    shape = "a mapping of rates (input, output, cache_read ...)"

    @model_validator(mode="after")
    def _complete(self) -> PriceSetModel:
        self._check_complete()
        return self


class TierModel(_PriceSetFields):
    """A service tier: ``scale`` (every standard rate times it, and rates it names replaced) or a
    price set written out in full."""

    shape = "a mapping (scale: 0.5, or rates)"

    scale: Amount = None

    @model_validator(mode="after")
    def _scaled_or_complete(self) -> TierModel:
        if self.scale is None:
            self._check_complete()
        elif {"long_context", "time_of_day"} & self.model_fields_set:
            raise ValueError("a scaled tier takes its variants from the standard prices")
        elif self.amortized is not None:
            raise ValueError("give either scale or amortized, not both")
        return self


class VersionModel(_FileModel):
    """The prices of an entry from ``effective_from`` (inclusive) to ``effective_to`` (exclusive)."""

    shape = "a mapping with prices (and effective_from, tiers, source)"

    effective_from: When = None
    effective_to: When = None
    prices: PriceSetModel
    tiers: Annotated[Mapping[str, TierModel], BeforeValidator(tier_names)] = {}
    source: SourceModel | None = None
    note: Note = None

    @model_validator(mode="after")
    def _ordered_dates(self) -> VersionModel:
        if self.effective_from and self.effective_to and self.effective_to <= self.effective_from:
            raise ValueError("effective_to must be after effective_from")
        return self


class CatalogEntry(_FileModel):
    """One priced model: its names, and its versions (or ``prices_from`` another entry)."""

    shape = "a mapping with id and versions"

    provider: Providers = None
    id: ModelId
    kind: Kind = "chat"
    aliases: Names = ()
    patterns: Names = ()
    inherit_tiers: InheritTiers = ()
    prices_from: PricesFrom = None
    versions: Annotated[
        tuple[VersionModel, ...], BeforeValidator(a_list("versions", empty_if_unset=True))
    ] = ()
    note: Note = None

    @model_validator(mode="after")
    def _versions_or_prices_from(self) -> CatalogEntry:
        if self.prices_from is not None:
            if self.versions:
                raise ValueError("give either prices_from or versions, not both")
            return self
        if self.inherit_tiers:
            raise ValueError("inherit_tiers only goes with prices_from")
        if not self.versions:
            raise ValueError("versions are missing (or use prices_from)")
        problem = _version_order_problem(self.versions)
        if problem:
            raise ValueError(problem)
        return self


def _version_order_problem(versions: Sequence[VersionModel]) -> str | None:
    for i, version in enumerate(versions):
        if i and version.effective_from is None:
            return f"versions[{i}]: only the first version may omit effective_from"
    for i in range(1, len(versions)):
        previous, current = versions[i - 1], versions[i]
        start = current.effective_from
        if start is None:  # not reached: only the first may be open, returned above
            continue
        if previous.effective_from is not None and start <= previous.effective_from:
            return f"versions[{i}]: versions must be in increasing effective_from order, without repeats"
        if previous.effective_to is not None and previous.effective_to > start:
            return (
                f"versions[{i - 1}] and versions[{i}] overlap: {previous.effective_to.isoformat()} "
                f"is after {start.isoformat()}"
            )
    return None


class CatalogFile(_FileModel):
    """A catalog file's own keys; each of ``models`` is validated as a :class:`CatalogEntry`."""

    shape = "a mapping with a models list"

    currency: Currency = "USD"
    provider: Providers = None
    match_without_provider: Truthy = False
    source: SourceModel | None = None
    description: Any = None
    models: Annotated[tuple[Any, ...], BeforeValidator(a_list("entries"))]


# -- reporting -----------------------------------------------------------------------------------

_SHAPES: Final = {
    model.__name__: model.shape
    for model in (
        AmortizedModel,
        LongContextModel,
        TimeWindowModel,
        PriceSetModel,
        TierModel,
        VersionModel,
        CatalogEntry,
        CatalogFile,
    )
}


def _dotted(loc: Sequence[int | str]) -> str:
    """``("versions", 1, "prices", "input")`` -> ``versions[1].prices.input``, as the key reads."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def describe(error: ErrorDetails) -> str:
    """One pydantic error as ``key.path: what is wrong``."""
    loc, kind = error["loc"], error["type"]
    if kind == "extra_forbidden":
        loc, message = loc[:-1], f"unknown key {loc[-1]!r}"
    elif kind == "missing":
        loc, message = loc[:-1], f"missing key {loc[-1]!r}"
    elif kind == "model_type":
        shape = _SHAPES.get(error.get("ctx", {}).get("class_name", ""), "a mapping")
        message = f"expected {shape}, got {error['input']!r}"
    elif kind == "value_error" and "ctx" in error:
        message = str(error["ctx"]["error"])
    else:
        message = error["msg"]
    path = _dotted(loc)
    return f"{path}: {message}" if path else message


def first_problem(error: ValidationError) -> str:
    """The problem to report of those a validation found: one per entry (or file), as a fix
    often clears the next. An unknown key wins over the problems inside its mapping (a typo
    explains them), else the first in key order."""
    errors = error.errors(include_url=False)
    first = errors[0]
    unknown = [
        e
        for e in errors
        if e["type"] == "extra_forbidden" and first["loc"][: len(e["loc"]) - 1] == e["loc"][:-1]
    ]
    if unknown:
        return describe(min(unknown, key=lambda e: len(e["loc"])))  # the outermost mapping first
    return describe(first)


def entry_label(raw: object, position: int, file_providers: tuple[str, ...] | None) -> str:
    """How an entry that failed validation is named: ``provider/id`` when both can be read,
    else its position in ``models`` (with its id when that is known)."""
    if not isinstance(raw, Mapping):
        return f"models[{position}]"
    raw_id = raw.get("id")
    providers = file_providers
    if "provider" in raw:
        try:
            providers = read_providers(raw["provider"])
        except ValueError:
            return f"models[{position}] ({raw_id})"
    try:
        entry_id = read_model_id(raw_id)
    except ValueError:
        return f"models[{position}]"
    if providers is None:
        return f"models[{position}] ({entry_id})"
    return f"{providers[0]}/{entry_id}"
