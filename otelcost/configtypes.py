"""Value types shared by the configuration sections: durations, sizes, listen addresses.

Each package that has configuration defines its section model next to its code (for example
``otelcost/pricing/config.py``) from these types; ``otelcost/config.py`` composes the sections
into the one :class:`~otelcost.config.Config` model.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
)

from otelcost.schema import ATTRIBUTION_DIMENSIONS

__all__ = ["ByteSize", "Dimension", "Duration", "ListenAddress", "Section", "parse_duration", "parse_listen"]


class Section(BaseModel):
    """Base of every configuration section: immutable, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_DURATION_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$")
_SIZE_UNITS: Final = {
    None: 1,
    "B": 1,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
}


def parse_duration(value: object) -> object:
    """Turn ``500ms``/``5s``/``1m``/``24h``/``7d`` into a timedelta; pass other values through."""
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if not match:
            raise ValueError(f"expected a duration such as 500ms, 5s, 1m, 24h or 7d, got {value!r}")
        return timedelta(seconds=float(match[1]) * _DURATION_UNITS[match[2]])
    return value


def _format_duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    return f"{seconds:g}s" if seconds >= 1 or seconds == 0 else f"{seconds * 1000:g}ms"


def _parse_size(value: object) -> object:
    if isinstance(value, str):
        match = _SIZE_RE.match(value)
        if not match:
            raise ValueError(f"expected a size such as 4194304, 512KiB or 64MiB, got {value!r}")
        return int(match[1]) * _SIZE_UNITS[match[2]]
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(_format_duration, return_type=str),
]
"""A duration: ``500ms``, ``5s``, ``1m``, ``24h``, ``7d``, or a number of seconds."""

ByteSize = Annotated[int, BeforeValidator(_parse_size), Field(gt=0)]
"""A size in bytes: ``67108864``, ``512KiB`` or ``64MiB``."""

Dimension = Literal[
    "team",
    "feature",
    "user_id",
    "tenant_id",
    "session_id",
    "project",
    "cost_center",
    "workflow",
    "environment",
]
assert set(Dimension.__args__) == set(ATTRIBUTION_DIMENSIONS)  # type: ignore[attr-defined]


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (or ``[v6]:PORT``) into its parts; raise ValueError when malformed."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:4317, got {value!r}")
    return host.strip("[]"), int(port)


def _check_listen(value: str) -> str:
    parse_listen(value)
    return value


ListenAddress = Annotated[str, AfterValidator(_check_listen)]
"""``HOST:PORT`` to bind, ``[::1]:PORT`` for IPv6."""
