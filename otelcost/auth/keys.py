"""The key ring: which key is whose, what it may do, and what it fixes of the calls it sends.

A receiver or the API listener hands :meth:`KeyRing.authenticate` the key a request presented
(:func:`presented_key` reads it from ``Authorization: Bearer <key>`` or ``X-Otelcost-Key``, the
headers an OpenTelemetry Collector's ``bearertokenauth`` and ``headers`` settings send) and
whether the peer is on loopback; it gets a :class:`Principal` back or an ``AuthError``.

Keys are looked up by the SHA-256 digest of what was presented, never compared in clear. The ring
is replaced whole by :meth:`KeyRing.reload` (``keys_file`` re-read), so a request sees either the
old keys or the new ones, never a mix.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

import yaml
from pydantic import TypeAdapter, ValidationError

from otelcost.auth.config import ROLES, ApiKeyConfig, AuthConfig, Role, check_unique_keys
from otelcost.errors import AuthenticationError, ConfigError, PermissionDeniedError

__all__ = [
    "ANONYMOUS",
    "KEY_HEADER",
    "KEY_PREFIX",
    "KeyRing",
    "Principal",
    "Surface",
    "is_loopback",
    "key_digest",
    "load_keys_file",
    "new_key",
    "presented_key",
]

Surface = Literal["ingest", "api"]
KEY_HEADER: Final = "X-Otelcost-Key"
KEY_PREFIX: Final = "otc_"
"""Generated keys start with this, so a leaked one is recognisable to secret scanners."""

ANONYMOUS: Final = "anonymous"

_ANONYMOUS_ROLES: Final[Mapping[Surface, frozenset[Role]]] = {
    "ingest": frozenset({"ingest"}),
    "api": frozenset({"gateway", "viewer"}),
}
_IMPLIED: Final[Mapping[Role, frozenset[Role]]] = {
    "ingest": frozenset({"ingest"}),
    "gateway": frozenset({"gateway"}),
    "viewer": frozenset({"viewer", "gateway"}),
    "admin": frozenset(ROLES),
}
"""A viewer may read decisions too; an admin may do everything."""
_LEGACY_ADMIN_ROLES: Final[frozenset[Role]] = frozenset({"admin", "viewer", "gateway"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request is: a key's name (or ``anonymous``), its roles and the dimensions it fixes."""

    name: str
    roles: frozenset[Role]
    bind: Mapping[str, str] = field(default_factory=dict)
    anonymous: bool = False

    @property
    def tenant(self) -> str | None:
        """The tenant a bound viewer is limited to; None: every tenant."""
        return self.bind.get("tenant_id")

    def can(self, role: Role) -> bool:
        return role in self.roles

    def require(self, role: Role) -> None:
        if role not in self.roles:
            raise PermissionDeniedError(
                f"{'an anonymous caller' if self.anonymous else f'key {self.name!r}'} "
                f"does not have the {role} role"
            )


def key_digest(key: str) -> str:
    """``sha256:<hex>`` of a key, as ``auth.keys[].digest`` holds it."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh key: the prefix and 32 random bytes, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def presented_key(authorization: str | None, key_header: str | None) -> str | None:
    """The key a request carries: ``Authorization: Bearer <key>`` or the ``X-Otelcost-Key`` header."""
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    if key_header and key_header.strip():
        return key_header.strip()
    return None


def is_loopback(peer: str | None) -> bool:
    """Whether a peer address is this machine: an IP on loopback, or a Unix socket.

    Takes aiohttp's ``request.remote`` (``127.0.0.1``) and gRPC's ``context.peer()``
    (``ipv4:127.0.0.1:5555``, ``ipv6:[::1]:5555``, ``unix:/path``) forms.
    """
    if not peer:
        return False
    if peer.startswith("unix:"):
        return True
    host = peer
    if peer.startswith(("ipv4:", "ipv6:")):
        host = peer.split(":", 1)[1]
        host = host[1 : host.index("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
    host = host.split("%", 1)[0]  # a zone id
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


_KEYS_ADAPTER: Final = TypeAdapter(tuple[ApiKeyConfig, ...])


def load_keys_file(path: Path) -> tuple[ApiKeyConfig, ...]:
    """The keys of ``auth.keys_file``: a YAML list of keys (or ``{keys: [...]}``)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"auth.keys_file: cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"auth.keys_file: {path} is not valid YAML: {exc}") from exc
    if isinstance(data, dict) and set(data) == {"keys"}:
        data = data["keys"]
    try:
        keys = _KEYS_ADAPTER.validate_python(data or ())
        check_unique_keys(keys, where=f"auth.keys_file ({path})")
    except ValidationError as exc:
        # Each problem by its place and message, never the input: it may be a pasted clear key.
        problems = "; ".join(
            "["
            + "].".join(str(part) for part in problem["loc"])
            + ": "
            + problem["msg"].removeprefix("Value error, ")
            for problem in exc.errors()
        )
        raise ConfigError(f"auth.keys_file: {path}: {problems}") from None
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return keys


@dataclass(frozen=True, slots=True)
class _Ring:
    by_digest: Mapping[str, Principal]
    names: tuple[str, ...]
    has_admin: bool


class KeyRing:
    """The keys in force, with the anonymous policy; thread-safe, reloaded whole.

    ``legacy_admin`` maps clear admin tokens (``api.admin_token`` / ``api.admin_tokens``, kept
    for existing deployments) to their names; they become keys with the API's roles (admin,
    viewer, gateway) but not ingest, and only the serve process knows them.
    """

    def __init__(self, config: AuthConfig, *, legacy_admin: Mapping[str, str] | None = None) -> None:
        self.config = config
        self._legacy = {key_digest(token): name for token, name in (legacy_admin or {}).items()}
        self._lock = threading.Lock()
        self.outcomes: Counter[tuple[str, str]] = Counter()
        """(surface, outcome) -> requests: outcome is key, anonymous, unauthenticated, forbidden."""
        self._ring = self._build()
        self.reloads = 0

    def _build(self) -> _Ring:
        keys = tuple(self.config.keys)
        if self.config.keys_file is not None:
            keys += load_keys_file(self.config.keys_file)
            check_unique_keys(keys, where="auth.keys and auth.keys_file")
        by_digest: dict[str, Principal] = {}
        for digest, name in self._legacy.items():
            # API tokens from before keys existed: the API's roles, not ingest.
            by_digest[digest] = Principal(name=name, roles=_LEGACY_ADMIN_ROLES)
        for key in keys:
            roles = frozenset().union(*(_IMPLIED[role] for role in key.roles))
            principal = Principal(name=key.name, roles=roles, bind={str(k): v for k, v in key.bind.items()})
            for digest in key.digest:
                by_digest[digest] = principal
        names = tuple(sorted({p.name for p in by_digest.values()}))
        return _Ring(by_digest, names, any(p.can("admin") for p in by_digest.values()))

    def reload(self) -> tuple[str, ...]:
        """Re-read ``auth.keys_file`` and swap the ring; on an error the old ring stays.

        Returns the key names now in force. Raises ConfigError when the file is invalid.
        """
        ring = self._build()
        with self._lock:
            self._ring = ring
            self.reloads += 1
        return ring.names

    @property
    def names(self) -> tuple[str, ...]:
        return self._ring.names

    @property
    def has_admin(self) -> bool:
        """Whether any key in force has the admin role (else the admin API is off)."""
        return self._ring.has_admin

    def principals(self) -> list[Principal]:
        """One per key name (without digests): what ``GET /v1/admin/auth/keys`` lists."""
        seen: dict[str, Principal] = {}
        for principal in self._ring.by_digest.values():
            seen.setdefault(principal.name, principal)
        return [seen[name] for name in sorted(seen)]

    def authenticate(self, key: str | None, *, surface: Surface, peer_is_loopback: bool) -> Principal:
        """The principal of ``key``; raise AuthenticationError for a missing or unknown key.

        A request without a key is anonymous when ``auth.anonymous.<surface>`` allows it from
        this peer; an anonymous caller may ingest (on the ingest surface) or read decisions and
        reports (on the API), never administer.
        """
        if key is None:
            policy = getattr(self.config.anonymous, surface)
            if policy == "allow" or (policy == "loopback" and peer_is_loopback):
                self._count(surface, ANONYMOUS)
                return Principal(name=ANONYMOUS, roles=_ANONYMOUS_ROLES[surface], anonymous=True)
            self._count(surface, "unauthenticated")
            where = "" if policy == "deny" else " from a non-loopback address"
            raise AuthenticationError(
                f"an API key is needed{where}: send Authorization: Bearer <key> "
                f"(see auth.anonymous.{surface})"
            )
        principal = self._ring.by_digest.get(key_digest(key))
        if principal is None:
            self._count(surface, "unauthenticated")
            raise AuthenticationError("the API key is not valid (unknown, revoked or mistyped)")
        self._count(surface, "key")
        return principal

    def admit(self, key: str | None, *, surface: Surface, peer_is_loopback: bool, role: Role) -> Principal:
        """:meth:`authenticate`, then require ``role``: what every listener asks of a request.

        Raises AuthenticationError for an anonymous caller without the role too (a key would
        help it), PermissionDeniedError (counted as ``forbidden``) for a known key without it.
        """
        principal = self.authenticate(key, surface=surface, peer_is_loopback=peer_is_loopback)
        if principal.can(role):
            return principal
        if principal.anonymous:
            raise AuthenticationError(
                f"this needs a key with the {role} role: send Authorization: Bearer <key>"
            )
        self.count_forbidden(surface)
        raise PermissionDeniedError(f"key {principal.name!r} does not have the {role} role")

    def count_forbidden(self, surface: Surface) -> None:
        self._count(surface, "forbidden")

    def _count(self, surface: str, outcome: str) -> None:
        with self._lock:
            self.outcomes[surface, outcome] += 1

    def outcomes_snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self.outcomes)
