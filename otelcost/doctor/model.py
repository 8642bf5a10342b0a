"""What the doctor is pointed at, the limits it judges by, and what each check answers."""

from __future__ import annotations

import enum
import ssl
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from otelcost.pricing.config import PricingConfig

__all__ = ["CheckResult", "Endpoint", "Limits", "Status", "Target", "worst"]


class Status(enum.Enum):
    """Ordered by severity: the worst status of all checks decides the exit status."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"

    @property
    def severity(self) -> int:
        return {"ok": 0, "warn": 1, "fail": 2}[self.value]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's verdict: ``message`` says what was found, ``fix`` what to do (empty when ok)."""

    name: str
    status: Status
    message: str
    fix: str = ""

    def as_json(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status.value, "message": self.message, "fix": self.fix}


def worst(results: list[CheckResult]) -> Status:
    return max((r.status for r in results), key=lambda s: s.severity, default=Status.OK)


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Target:
    """The deployment to check.

    ``api_url`` is the API listener (``http://host:port``, ``https://`` with ``api.tls``;
    ``api_tls`` is then how its certificate is checked); the OTLP endpoints are what the
    receivers should answer on; ``data_dir`` is the deployment's data directory as seen from
    here and ``lake_dir`` its lake (None: only the network checks run); ``pricing`` and
    ``spool_max_size`` come from its configuration.
    """

    api_url: str
    otlp_grpc: Endpoint | None
    otlp_http: Endpoint | None
    data_dir: Path | None
    lake_dir: Path | None
    pricing: PricingConfig | None
    spool_max_size: int | None
    api_tls: ssl.SSLContext | None = None


class Limits(BaseModel):
    """Where a finding turns from ok into warn or fail (all overridable on the command line)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout_seconds: float = Field(2.0, gt=0, description="Per connection and HTTP request.")
    catalog_max_age_days: int = Field(
        90, ge=0, description="Warn when a provider's prices were last read longer ago than this."
    )
    lake_max_lag_seconds: float = Field(
        300.0, gt=0, description="Fail when rows wait and the lake's newest file is older than this."
    )
    clock_max_skew_seconds: float = Field(
        300.0, gt=0, description="Warn when a service's spans arrive this long after (or before) they end."
    )
    disk_min_free_fraction: float = Field(
        0.10, ge=0, le=1, description="Fail when less of the data directory's disk is free."
    )
    window_seconds: float = Field(
        3600.0, gt=0, description="The lake rows looked at: received this recently."
    )
