"""Reads over the network: a TCP connect, an HTTP GET, and ``/metrics`` parsed into samples.

Standard library HTTP on purpose: the doctor runs where otelcost is installed, and a probe that
needs nothing beyond it cannot fail for a reason of its own.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from otelcost.doctor.model import Endpoint

__all__ = ["HttpAnswer", "Metrics", "connect_error", "http_get", "parse_metrics"]


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


def http_get(url: str, timeout: float) -> HttpAnswer:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
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
