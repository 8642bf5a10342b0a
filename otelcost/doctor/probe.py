"""Reads over the network: a TCP connect, an HTTP GET, and ``/metrics`` parsed into samples.

Standard library HTTP on purpose: the doctor runs where otelcost is installed, and a probe that
needs nothing beyond it cannot fail for a reason of its own. An API with ``api.tls`` is read over
HTTPS with the context of :func:`api_ssl_context`.
"""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from otelcost.doctor.model import Endpoint

__all__ = ["HttpAnswer", "Metrics", "api_ssl_context", "connect_error", "http_get", "parse_metrics"]


def connect_error(endpoint: Endpoint, timeout: float) -> str | None:
    """None when a TCP connection to ``endpoint`` opens, else why it did not."""
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """An HTTP status and body, or (status None) why there was no answer."""

    status: int | None
    body: str
    error: str = ""


def api_ssl_context(
    *,
    ca_file: Path | None = None,
    served_cert: Path | None = None,
    client_cert: Path | None = None,
    client_key: Path | None = None,
) -> ssl.SSLContext:
    """How the doctor checks an HTTPS API: the system's CAs, or ``ca_file`` instead.

    Without ``ca_file``, the certificate the configuration says the API serves (``served_cert``,
    ``api.tls.cert_file``) is trusted too, as itself: on the host that serves it a private or
    self-signed certificate then needs no flag. The host name is checked either way.
    ``client_cert``/``client_key``: what to present to an API with ``api.tls.client_ca_file``.
    """
    context = ssl.create_default_context(cafile=ca_file)
    if ca_file is None and served_cert is not None:
        try:
            context.load_verify_locations(cafile=served_cert)
            # Lets the served certificate itself end the chain, though no CA signed it here.
            context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        except (OSError, ssl.SSLError):
            pass  # not readable from here: the system's CAs must do, or --ca-file
    if client_cert is not None:
        context.load_cert_chain(client_cert, client_key)
    return context


def http_get(url: str, timeout: float, context: ssl.SSLContext | None = None) -> HttpAnswer:
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return HttpAnswer(response.status, response.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        return HttpAnswer(exc.code, exc.read().decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return HttpAnswer(None, "", str(reason))


@dataclass
class Metrics:
    """Samples of one scrape: sample name (``otelcost_calls_total``) -> [(labels, value)]."""

    samples: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return name in self.samples

    def value(self, name: str, **labels: str) -> float:
        """The sum over the samples of ``name`` whose labels include ``labels`` (0 if none)."""
        return sum(
            value
            for sample_labels, value in self.samples.get(name, [])
            if all(sample_labels.get(k) == v for k, v in labels.items())
        )

    def by_label(self, name: str, label: str) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for sample_labels, value in self.samples.get(name, []):
            totals[sample_labels.get(label, "")] += value
        return dict(totals)


def parse_metrics(text: str) -> Metrics:
    metrics = Metrics()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            metrics.samples.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return metrics
