"""What a report can group and filter by, and how each name becomes SQL.

Only the names in :data:`DIMENSIONS` ever reach the SQL text, as the fixed expression written
here; the *values* of filters are always bound parameters. So nothing a user types (``--by``,
``--filter``, ``?by=`` on the API) is interpolated into a query.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Final

from otelcost.reports.period import Period

__all__ = ["ALIASES", "DIMENSIONS", "calls_where", "dimension_sql", "parse_dimensions"]

DIMENSIONS: Final[Mapping[str, str]] = {
    "team": "team",
    "cost_center": "cost_center",
    "feature": "feature",
    "tenant_id": "tenant_id",
    "project": "project",
    "workflow": "workflow",
    "user_id": "user_id",
    "session_id": "session_id",
    "environment": "environment",
    "service": "service",
    "provider": "provider",
    # The catalog id when the call was priced, else the name the provider answered with: an
    # unpriced model is still a model someone pays for.
    "model": "coalesce(model, response_model, request_model)",
    "service_tier": "service_tier",
    "operation": "operation",
}
"""Dimension name -> its SQL expression over ``llm_calls``."""

ALIASES: Final[Mapping[str, str]] = {"tenant": "tenant_id", "user": "user_id", "session": "session_id"}


def _canonical(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in DIMENSIONS:
        raise ValueError(f"unknown dimension {name!r}; expected one of {', '.join(DIMENSIONS)}")
    return key


def parse_dimensions(names: str | Iterable[str]) -> tuple[str, ...]:
    """``"team,feature"`` or ``["team", "tenant"]`` -> canonical names, each once, in order."""
    parts = names.split(",") if isinstance(names, str) else [p for n in names for p in n.split(",")]
    out: list[str] = []
    for part in parts:
        if part.strip():
            key = _canonical(part)
            if key not in out:
                out.append(key)
    return tuple(out)


def dimension_sql(name: str) -> str:
    """``name AS name`` for a SELECT list (``name`` canonical)."""
    return f"{DIMENSIONS[name]} AS {name}"


def calls_where(
    period: Period, filters: Mapping[str, str] | Sequence[tuple[str, str]] = (), *, prefix: str = ""
) -> tuple[str, dict[str, object]]:
    """A WHERE condition selecting the calls of ``period`` that match ``filters``, and its params.

    The ``date`` partition bounds come first so DuckDB reads only the partitions of the period
    (Hive pruning); ``ts`` then cuts the exact instants. ``prefix`` keeps the parameter names of
    two periods in one query apart.
    """
    params: dict[str, object] = {
        f"{prefix}start": period.start,
        f"{prefix}end": period.end,
        f"{prefix}first_day": period.start.date(),
        f"{prefix}last_day": (period.end - timedelta(microseconds=1)).date(),
    }
    parts = [
        f"date BETWEEN ${prefix}first_day AND ${prefix}last_day",
        f"ts >= ${prefix}start",
        f"ts < ${prefix}end",
    ]
    items = filters.items() if isinstance(filters, Mapping) else filters
    for index, (name, value) in enumerate(items):
        key = _canonical(name)
        parts.append(f"{DIMENSIONS[key]} = ${prefix}filter_{index}")
        params[f"{prefix}filter_{index}"] = value
    return " AND ".join(parts), params
