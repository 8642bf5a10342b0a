"""Certificates for the TLS tests, made with the openssl commands docs/security.md shows.

The commands are read from the page's ``<!-- tls-example: STEP -->`` blocks (``ca``, ``server``,
``client``) and run as written in a directory of their own, so the page's example is proven by
every run of the tests. A second CA, a renewed server certificate and so on are the same steps
run again in another directory.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

REPO = Path(__file__).resolve().parent.parent.parent
SECURITY_DOC = REPO / "docs" / "security.md"

Step = Literal["ca", "server", "client"]


def example_commands(step: Step) -> str:
    """The shell commands of the page's ``tls-example`` block for ``step``."""
    text = SECURITY_DOC.read_text(encoding="utf-8")
    match = re.search(rf"<!-- tls-example: {step} -->\n```sh\n(.*?)```", text, re.DOTALL)
    assert match, f"docs/security.md has no <!-- tls-example: {step} --> block"
    return match.group(1)


def run_step(step: Step, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["sh", "-e", "-c", example_commands(step)],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"the {step} step of docs/security.md failed:\n{result.stderr}"


@dataclass(frozen=True)
class Pki:
    """One directory of the example: a CA, a server certificate and a client certificate."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    @property
    def client_cert(self) -> Path:
        return self.directory / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.directory / "client.key"

    def client_context(self, *, trust: Path | None = None, present: Pki | None = None) -> ssl.SSLContext:
        """A client context trusting ``trust`` (this CA), presenting ``present``'s client certificate."""
        context = ssl.create_default_context(cafile=str(trust or self.ca))
        if present is not None:
            context.load_cert_chain(present.client_cert, present.client_key)
        return context


def make_pki(directory: Path) -> Pki:
    """Run the page's three steps in ``directory``."""
    for step in ("ca", "server", "client"):
        run_step(step, directory)
    return Pki(directory)


def renew_server(pki: Pki, directory: Path) -> Pki:
    """The page's server step again, with ``pki``'s CA, in ``directory``: a new key and serial."""
    directory.mkdir(parents=True)
    for name in ("ca.crt", "ca.key", "ca.srl"):
        if (pki.directory / name).exists():
            shutil.copy(pki.directory / name, directory / name)
    run_step("server", directory)
    return Pki(directory)


def replace_file(target: Path, content: bytes) -> None:
    """Move new content over ``target`` in one rename, as cert-manager does."""
    staged = target.with_name(f".{target.name}.new")
    staged.write_bytes(content)
    staged.replace(target)


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def file_fingerprint(pem_file: Path) -> str:
    """The fingerprint of the first certificate in ``pem_file``."""
    text = pem_file.read_text(encoding="ascii")
    first = text[: text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    return fingerprint(ssl.PEM_cert_to_DER_cert(first))


def served_fingerprint(port: int, context: ssl.SSLContext, *, alpn: list[str] | None = None) -> str:
    """Shake hands with 127.0.0.1:``port`` and return the fingerprint of the certificate it served."""
    context.check_hostname = True
    if alpn:
        context.set_alpn_protocols(alpn)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return fingerprint(der)


def http_admitted(port: int, context: ssl.SSLContext) -> bool:
    """Whether an HTTPS listener at ``port`` answers a request over a connection from ``context``.

    With TLS 1.3 a client finishes its side of the handshake before the server has checked the
    client's certificate, so a refusal shows as an alert or a closed connection at the first
    read; an admitted client gets an HTTP answer.
    """
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            return tls.recv(16).startswith(b"HTTP/1.1 ")
    except (ssl.SSLError, ConnectionError):
        return False
