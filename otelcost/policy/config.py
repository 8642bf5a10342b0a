"""Configuration of the API listener: policy endpoint, admin API, health and metrics (``api:``).

::

    api:
      listen: 127.0.0.1:4320       # --api-listen
      admin_token: s3cret          # or OTELCOST_API__ADMIN_TOKEN: an admin key, audited as "admin"
      admin_tokens: {alice: t1}    # more admin keys, by name (the name is what the audit log records)
      check_deny_status: 429       # /v1/check's answer when a call is refused (403 for nginx)
      max_wait: 60s                # longest ?wait= a long poll may ask for

The section configures the API listener (``otelcost/api/``) but is defined here, in the layer
below the domain, because ``otelcost/config.py`` composes every section and sits below ``api``
in the layer order: it may not import ``otelcost.api`` (nor should ``otelcost config check``
import aiohttp). What it sets is the decision protocol as the policy package defines it (the
deny status, the longest long poll) plus where to listen; this module imports pydantic only.

Who may call which route is ``auth:`` (``otelcost/auth/config.py``: keys with roles, anonymous
access; docs/security.md). ``admin_token`` and ``admin_tokens`` are kept for existing
deployments: the key ring turns each into a key with the admin role (``Server.keys``), so they
work as ``Authorization: Bearer <token>`` on every route. They are held in clear, unlike
``auth.keys`` (digests only), so prefer an ``auth.keys`` entry with ``roles: [admin]``. With no
admin key of either kind the admin API answers 403.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from otelcost.auth.config import TlsConfig
from otelcost.configtypes import Duration, ListenAddress, Section

__all__ = ["ADMIN_TOKEN_NAME", "ApiConfig"]

ADMIN_TOKEN_NAME = "admin"
"""The audit log's name for whoever used ``api.admin_token``."""


class ApiConfig(Section):
    """The HTTP API listener (``--api-listen``): decisions, checks, admin, health, metrics."""

    enabled: bool = True
    listen: ListenAddress = Field("127.0.0.1:4320", description="HOST:PORT of the API listener.")
    admin_token: SecretStr | None = Field(
        None,
        description="An admin key in clear, for older deployments (audited as 'admin'); prefer "
        "auth.keys with roles [admin]. No admin key at all: the admin API answers 403.",
    )
    admin_tokens: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="More admin keys in clear, by name (the name is audited); prefer auth.keys.",
    )
    check_deny_status: int = Field(
        429, ge=400, le=499, description="Status of a refused /v1/check (403 for nginx auth_request)."
    )
    check_when_stale: Literal["decide", "allow", "deny"] = Field(
        "decide",
        description="/v1/check while the shared budget store cannot be reached (decisions stale): "
        "decide from this process's totals, allow every call (fail open) or deny (fail closed). "
        "A request may ask for another with X-Otelcost-When-Stale.",
    )
    max_wait: Duration = Field(
        timedelta(seconds=60), description="Longest long poll (?wait=) of GET /v1/decisions."
    )
    tls: TlsConfig | None = Field(
        None,
        description="The API over HTTPS: {cert_file, key_file, client_ca_file (mTLS), "
        "reload_interval}; unset: plain HTTP (docs/security.md, 'TLS and mTLS').",
    )

    @field_validator("max_wait")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be greater than zero")
        return value

    @field_validator("admin_tokens")
    @classmethod
    def _named(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, token in value.items():
            if not name or not token.get_secret_value():
                raise ValueError("every admin token needs a name and a non-empty value")
        return value

    def tokens(self) -> dict[str, str]:
        """Admin token value -> the name recorded in the audit log."""
        named = {token.get_secret_value(): name for name, token in self.admin_tokens.items()}
        if self.admin_token is not None and self.admin_token.get_secret_value():
            named[self.admin_token.get_secret_value()] = ADMIN_TOKEN_NAME
        return named
