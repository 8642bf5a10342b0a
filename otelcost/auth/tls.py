"""TLS and mTLS of one listener, with certificates that change on disk without a restart.

Each listener that has a ``tls:`` block (``receiver.grpc.tls``, ``receiver.http.tls``,
``api.tls``; :class:`~otelcost.auth.config.TlsConfig`) builds one :class:`ListenerTls`. It reads
and checks the files when it is built, so a missing file, a key that is not the certificate's or
a CA file without a certificate is a ``ConfigError`` naming the dotted key
(``receiver.grpc.tls.key_file: ...``) before anything binds. Then it gives the listener what its
server library takes:

* :meth:`ListenerTls.ssl_context` for aiohttp (OTLP/HTTP and the API). The context handed to the
  server never changes; its SNI callback, which OpenSSL calls for every ClientHello (with or
  without a server name), points the connection at the newest context built from the files.
  A fresh context per change, rather than ``load_cert_chain`` into the running one, because
  loading only adds: a client CA removed from ``client_ca_file`` would stay trusted.
* :meth:`ListenerTls.grpc_credentials` for grpc.aio: dynamic server credentials whose fetcher
  gRPC asks at each new connection; it hands over the newest files' contents.

Both paths call :meth:`ListenerTls.refresh`, which looks at the files (size, mtime, inode) at
most once per ``reload_interval``. A change is loaded and checked exactly as at start; if that
fails (a half-written file, a key that no longer matches), the listener keeps serving what it
had, logs the error once for that state of the files, and tries again when they change. A file
that changes while it is being read is read again, so the certificate and the key handed over
are always a pair. Connections already open keep the certificate they
shook hands with.

The aiohttp listeners issue no session tickets, and an mTLS listener speaks TLS 1.3 only, where
that leaves no resumption at all: every mTLS connection is verified against the client CAs in
force when it opens, so a client whose CA was removed cannot come back in on a session from
before. gRPC builds a new TLS context from each change of the files.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import grpc

from otelcost.auth.config import TlsConfig
from otelcost.errors import ConfigError

__all__ = ["ListenerTls", "TlsFileError", "check_tls", "load_tls"]

log = logging.getLogger("otelcost.tls")

_CERT_RE: Final = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
_KEY_MARK: Final = b"PRIVATE KEY-----"
_ENCRYPTED_MARKS: Final = (b"ENCRYPTED PRIVATE KEY", b"Proc-Type: 4,ENCRYPTED")

FileState = tuple[tuple[int, int, int, int], ...]
"""(device, inode, size, mtime in ns) of each file: what tells that a file changed."""


class TlsFileError(ValueError):
    """A TLS file that cannot be used; ``key`` is the dotted configuration key it came from."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """One consistent reading of a listener's files, checked, and the server context built from it."""

    state: FileState
    cert_chain: bytes
    private_key: bytes
    client_ca: bytes | None
    context: ssl.SSLContext
    fingerprint: str
    """SHA-256 of the leaf certificate (DER), as ``openssl x509 -fingerprint -sha256`` shows it."""


def _no_password() -> bytes:
    # Called by OpenSSL only for an encrypted key; without it OpenSSL would prompt on the
    # terminal and block the listener.
    raise ValueError("the private key is encrypted: otelcost reads unencrypted PEM keys only")


def _state(paths: tuple[Path, ...]) -> FileState:
    stats = [os.stat(path) for path in paths]
    return tuple((s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns) for s in stats)


def _paths(config: TlsConfig) -> tuple[Path, ...]:
    return (config.cert_file, config.key_file, *([config.client_ca_file] if config.client_ca_file else []))


def _read(path: Path, key: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsFileError(key, f"cannot read {path}: {exc.strerror or exc}") from exc


def _base_context(*, mtls: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # A resumed session skips the client certificate check, so a client could come back in on
    # a session from before its CA was removed. TLS 1.3 without tickets has no resumption;
    # TLS 1.2 still resumes by session id from a cache Python offers no switch for, so an mTLS
    # listener speaks TLS 1.3 only.
    context.minimum_version = ssl.TLSVersion.TLSv1_3 if mtls else ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_TICKET
    context.num_tickets = 0
    return context


def _fingerprint(cert_chain: bytes) -> str:
    leaf = _CERT_RE.search(cert_chain)
    assert leaf is not None  # checked by the caller
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(leaf.group().decode("ascii"))).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2)).upper()


def load_tls(config: TlsConfig, where: str) -> TlsMaterial:
    """Read and check the files of ``config`` (the section at dotted key ``where``).

    Raises :class:`TlsFileError` naming the key of the file at fault.
    """
    paths = _paths(config)
    for _ in range(3):  # a file replaced while we read it: read the new one
        try:
            before = _state(paths)
        except OSError:
            before = ()
        material = _load_once(config, where, before)
        try:
            after = _state(paths)
        except OSError as exc:
            raise TlsFileError(where, f"a file went away while it was read: {exc}") from exc
        if after == before:
            return material
    raise TlsFileError(where, "the files keep changing while they are read")


def _load_once(config: TlsConfig, where: str, state: FileState) -> TlsMaterial:
    cert_key, key_key, ca_key = f"{where}.cert_file", f"{where}.key_file", f"{where}.client_ca_file"
    cert_chain = _read(config.cert_file, cert_key)
    private_key = _read(config.key_file, key_key)
    client_ca = _read(config.client_ca_file, ca_key) if config.client_ca_file else None
    if not _CERT_RE.search(cert_chain):
        raise TlsFileError(cert_key, f"{config.cert_file} holds no PEM certificate")
    if _KEY_MARK not in private_key:
        raise TlsFileError(key_key, f"{config.key_file} holds no PEM private key")
    if any(mark in private_key for mark in _ENCRYPTED_MARKS):
        raise TlsFileError(key_key, f"{config.key_file} is encrypted: otelcost reads unencrypted keys only")
    context = _base_context(mtls=client_ca is not None)
    try:
        context.load_cert_chain(config.cert_file, config.key_file, password=_no_password)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise TlsFileError(key_key, f"{config.key_file} is not the private key of {cert_key}") from exc
        raise TlsFileError(
            cert_key, f"{config.cert_file} with {config.key_file} does not load: {exc}"
        ) from exc
    except (OSError, ValueError) as exc:
        raise TlsFileError(cert_key, f"cannot load {config.cert_file}: {exc}") from exc
    if client_ca is not None:
        if not _CERT_RE.search(client_ca):
            raise TlsFileError(ca_key, f"{config.client_ca_file} holds no PEM certificate")
        try:
            context.load_verify_locations(cadata=client_ca.decode("ascii"))
        except (ssl.SSLError, UnicodeDecodeError) as exc:
            raise TlsFileError(ca_key, f"{config.client_ca_file} does not load: {exc}") from exc
        context.verify_mode = ssl.CERT_REQUIRED
    try:
        fingerprint = _fingerprint(cert_chain)
    except ValueError as exc:  # OpenSSL read past a first block that does not decode
        raise TlsFileError(cert_key, f"{config.cert_file}: the first certificate does not decode") from exc
    return TlsMaterial(
        state=state,
        cert_chain=cert_chain,
        private_key=private_key,
        client_ca=client_ca,
        context=context,
        fingerprint=fingerprint,
    )


def check_tls(config: TlsConfig | None, where: str) -> None:
    """``ConfigError`` naming the dotted key when the files of ``config`` cannot serve TLS."""
    if config is not None:
        ListenerTls(config, where)


class ListenerTls:
    """The TLS of one listener: the files of ``config`` (at dotted key ``where``), kept current.

    Built at the listener's start: raises ``ConfigError`` when the files cannot be used. Safe
    to use from gRPC's threads and the event loop at once.
    """

    def __init__(self, config: TlsConfig, where: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.where = where
        self._clock = clock
        self._interval = config.reload_interval.total_seconds()
        try:
            self._current = load_tls(config, where)
        except TlsFileError as exc:
            raise ConfigError(str(exc)) from exc
        self._checked_at = clock()
        self._failed_state: FileState | None = None
        self._lock = threading.Lock()
        self.reloads = 0
        """How many times changed files were loaded."""
        self.failures = 0
        """How many changed states of the files could not be loaded (each logged once)."""

    @property
    def mtls(self) -> bool:
        """Whether clients must present a certificate signed by ``client_ca_file``."""
        return self.config.client_ca_file is not None

    @property
    def current(self) -> TlsMaterial:
        """What new connections get now (after a :meth:`refresh`)."""
        return self._current

    def refresh(self, *, force: bool = False) -> TlsMaterial:
        """Load the files again if ``reload_interval`` has passed (or ``force``) and they changed.

        Never raises: files that cannot be loaded leave the current material in place.
        """
        now = self._clock()
        if not force and now - self._checked_at < self._interval:
            return self._current
        if not self._lock.acquire(blocking=False):
            return self._current  # another connection is checking right now
        try:
            self._checked_at = now
            try:
                state = _state(_paths(self.config))
            except OSError as exc:
                state = ()
                self._failed(state, f"{self.where}: {exc.strerror or exc}: {exc.filename}")
                return self._current
            if state in (self._current.state, self._failed_state):
                return self._current
            try:
                material = load_tls(self.config, self.where)
            except TlsFileError as exc:
                self._failed(state, str(exc))
                return self._current
            self._current = material
            self._failed_state = None
            self.reloads += 1
            log.info("%s: loaded changed TLS files (certificate %s)", self.where, material.fingerprint)
            return material
        finally:
            self._lock.release()

    def _failed(self, state: FileState, message: str) -> None:
        if state != self._failed_state:
            self._failed_state = state
            self.failures += 1
            log.error("%s; still serving certificate %s", message, self._current.fingerprint)

    # -- aiohttp ------------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        """The context to hand ``web.TCPSite(ssl_context=...)``; each connection gets the newest files."""
        front = _base_context(mtls=self.mtls)
        # No certificate of its own: the callback below gives every connection the current
        # context, whose certificate and trust store the connection then uses. The verify mode
        # stays the one of the context the connection was made from, so it is set here too.
        front.verify_mode = ssl.CERT_REQUIRED if self.mtls else ssl.CERT_NONE
        front.sni_callback = self._choose_context
        return front

    def _choose_context(
        self, connection: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext
    ) -> None:
        try:
            connection.context = self.refresh().context
        except Exception:  # an exception here would fail the handshake of a client we can serve
            log.exception("%s: could not switch a connection to the current TLS files", self.where)

    # -- grpc ---------------------------------------------------------------------------------

    def grpc_credentials(self) -> grpc.ServerCredentials:
        """Credentials for ``server.add_secure_port``; new connections get the newest files."""
        served = self._current

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            nonlocal served
            try:
                material = self.refresh()
                if material is served:
                    return None  # gRPC keeps what it has
                served = material
                return _grpc_configuration(material)
            except Exception:  # gRPC would log it and keep the old files too, less clearly
                log.exception("%s: could not hand gRPC the current TLS files", self.where)
                return None

        return grpc.dynamic_ssl_server_credentials(
            _grpc_configuration(served), fetch, require_client_authentication=self.mtls
        )


def _grpc_configuration(material: TlsMaterial) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration(
        [(material.private_key, material.cert_chain)], root_certificates=material.client_ca
    )
