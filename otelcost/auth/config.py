"""The ``auth`` configuration section (API keys and who may go without one) and the ``tls``
block of each listener.

::

    auth:
      anonymous:
        ingest: loopback     # allow | loopback | deny: OTLP without a key
        api: loopback        # the same for decisions, check and reports (never admin)
      keys:
        - name: search-prod
          digest: sha256:5e8a...      # otelcost auth hash-key; never the key itself
          roles: [ingest]
          bind: {team: search, tenant_id: acme}
      keys_file: /etc/otelcost/keys.yaml   # more keys, re-read on SIGHUP and admin reload

Keys are stored as SHA-256 digests: an otelcost key is 32 random bytes (``otelcost auth
new-key``), so an unsalted digest cannot be reversed and a config dump, a log line or
``/metrics`` never holds a usable key. A key's ``digest`` may be a list, so a key is rotated by
adding the new digest, reloading, moving the senders, and removing the old one.

This module imports pydantic only: it sits low in the layer order so that the receivers'
and the API's sections can hold a :class:`TlsConfig`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Final, Literal

from pydantic import Field, field_validator, model_validator

from otelcost.configtypes import Duration, Section

__all__ = [
    "BINDABLE_DIMENSIONS",
    "ROLES",
    "AnonymousAccess",
    "AnonymousConfig",
    "ApiKeyConfig",
    "AuthConfig",
    "Role",
    "TlsConfig",
]

Role = Literal["ingest", "gateway", "viewer", "admin"]
ROLES: Final[tuple[Role, ...]] = ("ingest", "gateway", "viewer", "admin")
"""``ingest``: send OTLP. ``gateway``: ``/v1/decisions`` and ``/v1/check``. ``viewer``: the
reports (and what a gateway may). ``admin``: everything, including ``/v1/admin/...``."""

BindableDimension = Literal["tenant_id", "team", "cost_center", "service"]
BINDABLE_DIMENSIONS: Final[tuple[BindableDimension, ...]] = ("tenant_id", "team", "cost_center", "service")
"""What a key may be bound to; a bound value overrides what a span claims (docs/security.md)."""

AnonymousAccess = Literal["allow", "loopback", "deny"]

_DIGEST_RE: Final = re.compile(r"^sha256:[0-9a-f]{64}$")
_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


class AnonymousConfig(Section):
    """Who may go without a key. ``loopback``: only callers on 127.0.0.0/8, ::1 or a Unix socket."""

    ingest: AnonymousAccess = Field(
        "loopback", description="OTLP without a key: allow, loopback (the default) or deny."
    )
    api: AnonymousAccess = Field(
        "loopback",
        description="Decisions, check and reports without a key: allow, loopback or deny "
        "(the admin API always needs a key).",
    )


class ApiKeyConfig(Section):
    """One API key: its name (audited, and on every call it sent), digest(s), roles and binding."""

    name: str = Field(description="Who holds the key; recorded in ingest_key and the audit log.")
    digest: tuple[str, ...] = Field(
        description="sha256:<hex> of the key (otelcost auth hash-key); a list while rotating."
    )
    roles: tuple[Role, ...] = Field(("ingest",), description="ingest, gateway, viewer, admin.")
    bind: dict[BindableDimension, str] = Field(
        default_factory=dict,
        description="Dimensions the key fixes: its spans are charged there whatever they claim; "
        "a tenant_id also limits what a viewer sees.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError("a key name is 1-100 letters, digits, '.', '_', '@' or '-'")
        return value

    @field_validator("digest", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("digest")
    @classmethod
    def _digests(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("a key needs at least one digest")
        for digest in value:
            if not _DIGEST_RE.match(digest):
                raise ValueError(
                    "expected sha256:<64 lower-case hex digits> (otelcost auth hash-key), not the key itself"
                )
        return value

    @field_validator("roles")
    @classmethod
    def _some_role(cls, value: tuple[Role, ...]) -> tuple[Role, ...]:
        if not value:
            raise ValueError("a key needs at least one role")
        return value

    @field_validator("bind")
    @classmethod
    def _bound_values(cls, value: dict[BindableDimension, str]) -> dict[BindableDimension, str]:
        if any(not text.strip() for text in value.values()):
            raise ValueError("a bound dimension needs a non-empty value")
        return value


class AuthConfig(Section):
    """API keys for OTLP ingest and the API, and what callers without one may do."""

    anonymous: AnonymousConfig = AnonymousConfig()
    keys: tuple[ApiKeyConfig, ...] = Field((), description="API keys (docs/security.md).")
    keys_file: Path | None = Field(
        None,
        description="YAML list of more keys in the same form; re-read on SIGHUP and "
        "POST /v1/admin/auth/reload, so keys rotate without a restart.",
    )

    @model_validator(mode="after")
    def _unique(self) -> AuthConfig:
        check_unique_keys(self.keys, where="auth.keys")
        return self


def check_unique_keys(keys: tuple[ApiKeyConfig, ...], *, where: str) -> None:
    """Two keys with one name would share an audit identity; one digest under two names would
    make who sent a call ambiguous."""
    names: set[str] = set()
    digests: set[str] = set()
    for key in keys:
        if key.name in names:
            raise ValueError(f"{where}: key name {key.name!r} appears more than once")
        names.add(key.name)
        for digest in key.digest:
            if digest in digests:
                raise ValueError(f"{where}: key {key.name!r} repeats a digest of another key")
            digests.add(digest)


class TlsConfig(Section):
    """TLS of one listener; with ``client_ca_file`` also mTLS (clients must show a certificate).

    Used by ``otelcost/auth/tls.py`` (``ListenerTls``), which checks the files at start and
    loads them again when they change (docs/security.md, "TLS and mTLS").
    """

    cert_file: Path = Field(description="PEM server certificate (chain), leaf first.")
    key_file: Path = Field(description="PEM private key of cert_file, unencrypted.")
    client_ca_file: Path | None = Field(
        None, description="PEM CA bundle; set: clients must present a certificate it signed (mTLS)."
    )
    reload_interval: Duration = Field(
        timedelta(seconds=30),
        description="How often, at most, the files are looked at for changes (at a new "
        "connection); changed files are loaded without a restart and new connections use them. "
        "0: at every new connection.",
    )

    @field_validator("reload_interval")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("must not be negative")
        return value
