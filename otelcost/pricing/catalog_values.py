"""How each value of a catalog file is read: YAML with exact numbers, and one reader per kind
of value (prices, dates, names, time windows ...), as the ``Annotated`` types the file models
of :mod:`otelcost.pricing.catalog_models` declare their keys with.

A reader raises ``ValueError`` with what is wrong; pydantic adds the key path. Numbers are
never binary floats: the YAML loader reads them as :class:`~decimal.Decimal` from their text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final

import yaml
from pydantic import BeforeValidator, PlainValidator

from otelcost.money import per_million_to_pico_per_token
from otelcost.pricing.names import normalize
from otelcost.pricing.rates import SERVICE_TIERS

__all__ = [
    "KINDS",
    "Amount",
    "ClockRanges",
    "Currency",
    "Identifier",
    "InheritTiers",
    "Kind",
    "ModelId",
    "Names",
    "Note",
    "Price",
    "PricesFrom",
    "Providers",
    "Quantity",
    "ReadDate",
    "Text",
    "Threshold",
    "Truthy",
    "Weekdays",
    "Weight",
    "When",
    "a_list",
    "load_yaml",
    "not_null",
    "read_model_id",
    "read_providers",
    "tier_names",
]

KINDS: Final = ("chat", "embedding", "completion")
_PRICED_TIERS: Final = SERVICE_TIERS[1:]  # standard is a version's ``prices``
_SECONDS_PER_DAY: Final = 86_400


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


# -- values ------------------------------------------------------------------------------------


def _amount(value: object) -> Decimal:
    """An exact, finite, non-negative number."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected a number of USD per 1M tokens, got {value!r}")
    if isinstance(value, float):
        # Loaded catalogs never produce floats (the loader reads numbers as Decimal), but a
        # caller building a catalog in Python might: go through the shortest repr, not binary.
        value = repr(value)
    try:
        number = Decimal(str(value).strip().replace("_", ""))
    except InvalidOperation:
        raise ValueError(f"expected a number of USD per 1M tokens, got {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    if number < 0:
        raise ValueError(f"a price cannot be negative ({number})")
    return number


def _price(value: object) -> Decimal:
    """USD per 1M tokens that is a whole number of picodollars per token."""
    number = _amount(value)
    try:
        per_million_to_pico_per_token(number)
    except ValueError:
        raise ValueError(
            f"{number} USD per 1M tokens is finer than a picodollar per token (at most 6 decimal places)"
        ) from None
    return number


def _positive_amount(value: object) -> Decimal:
    number = _amount(value)
    if number <= 0:
        raise ValueError("must be greater than zero")
    return number


def _when(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"expected a date (2024-10-02) or an ISO date-time, got {value!r}")


def _read_date(value: object) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"expected a date, got {value!r}") from None


def read_providers(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError("expected a provider name (gen_ai.provider.name) or a list of them")
    return tuple(v.strip().lower() for v in value)


def read_model_id(value: object) -> str:
    if not isinstance(value, str | int | Decimal) or not str(value).strip():
        raise ValueError(f"expected a model id, got {value!r}")
    return normalize(str(value))


def _names(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int | Decimal) for v in value):
        raise ValueError("expected a list of names")
    names = tuple(normalize(str(v)) for v in value)
    if any(not n for n in names):
        raise ValueError("a name is empty")
    return names


def _kind(value: object) -> str:
    if value not in KINDS:
        raise ValueError(f"expected one of {', '.join(KINDS)}, got {value!r}")
    return str(value)


def _inherit_tiers(value: object) -> tuple[str, ...]:
    value = value or []
    if not isinstance(value, list) or not all(t in _PRICED_TIERS for t in value):
        raise ValueError("expected a list of batch, flex, priority")
    return tuple(value)


def _prices_from(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or "/" not in value:
        raise ValueError("expected provider/id of another entry")
    return normalize(value)


def _note(value: object) -> str | None:
    return str(value) if value else None


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _usd(value: object) -> str:
    if value != "USD":
        raise ValueError(f"only USD is supported (money columns are USD), got {value!r}")
    return "USD"


def a_list(what: str, *, empty_if_unset: bool = False) -> Callable[[object], object]:
    """A check that the value is a YAML list (``null`` or nothing as an empty one if asked)."""

    def check(value: object) -> object:
        if empty_if_unset:
            value = value or []
        if not isinstance(value, list):
            raise ValueError(f"expected a list of {what}")
        return value

    return check


def not_null(value: object) -> object:
    if value is None:
        raise ValueError("expected a mapping, got None")
    return value


def _clock(text: str) -> int:
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit():
        raise ValueError(f"expected HH:MM, got {text!r}")
    value = int(hours) * 3600 + int(minutes) * 60
    if not 0 <= value <= _SECONDS_PER_DAY or int(minutes) >= 60:
        raise ValueError(f"{text!r} is not a time of day")
    return value % _SECONDS_PER_DAY if value == _SECONDS_PER_DAY else value


def _clock_range(value: object) -> tuple[int, int]:
    """``"16:30-00:30"`` -> seconds of the UTC day (start, end exclusive); may wrap past midnight."""
    start, sep, end = str(value).partition("-")
    if not sep:
        raise ValueError(f"expected HH:MM-HH:MM, got {value!r}")
    first, last = _clock(start), _clock(end)
    if first == last:
        raise ValueError(f"the window {value!r} is empty")
    return first, last


def _windows(value: object) -> object:
    if not isinstance(value, list) or not value:
        raise ValueError("expected a list of UTC ranges such as '16:30-00:30'")
    return value


def _weekdays(value: object) -> frozenset[int]:
    if not isinstance(value, list) or not value or not all(d in range(1, 8) for d in value):
        raise ValueError("expected ISO weekdays 1 (Monday) to 7 (Sunday)")
    return frozenset(value)


def _identifier(value: object) -> str:
    if not isinstance(value, str) or not value.isidentifier():
        raise ValueError("expected a short identifier such as off_peak")
    return value


def _threshold(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("the threshold must be a positive whole number of input tokens")
    return value


Price = Annotated[Decimal | None, PlainValidator(_price)]
"""USD per 1M tokens, exact; left out is None, ``null`` is an error."""
Amount = Annotated[Decimal | None, PlainValidator(_amount)]
When = Annotated[datetime | None, PlainValidator(_when)]
Note = Annotated[str | None, PlainValidator(_note)]
Providers = Annotated[tuple[str, ...] | None, PlainValidator(read_providers)]
Quantity = Annotated[Decimal, PlainValidator(_amount)]
Weight = Annotated[Decimal, PlainValidator(_positive_amount)]
ReadDate = Annotated[date | None, PlainValidator(_read_date)]
Text = Annotated[str | None, PlainValidator(_text)]
Threshold = Annotated[int | None, PlainValidator(_threshold)]
Identifier = Annotated[str, PlainValidator(_identifier)]
ClockRanges = Annotated[
    tuple[Annotated[tuple[int, int], PlainValidator(_clock_range)], ...], BeforeValidator(_windows)
]
Weekdays = Annotated[frozenset[int], PlainValidator(_weekdays)]
ModelId = Annotated[str, PlainValidator(read_model_id)]
Kind = Annotated[str, PlainValidator(_kind)]
Names = Annotated[tuple[str, ...], PlainValidator(_names)]
InheritTiers = Annotated[tuple[str, ...], PlainValidator(_inherit_tiers)]
PricesFrom = Annotated[str | None, PlainValidator(_prices_from)]
Currency = Annotated[str, PlainValidator(_usd)]
Truthy = Annotated[bool, PlainValidator(bool)]
"""Any value, read as true or false the way Python reads it (as the loader always has)."""


def tier_names(value: object) -> object:
    """``tiers``: a mapping (``null`` or nothing as none) of batch, flex and priority."""
    value = value or {}
    if not isinstance(value, Mapping):
        raise ValueError("expected a mapping of batch / flex / priority")
    for tier in value:
        if tier not in _PRICED_TIERS:
            raise ValueError(f"unknown tier {tier!r} (batch, flex or priority; standard is prices)")
    return value
