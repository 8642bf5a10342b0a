"""Request counters of one receiver, by outcome; read by the metrics endpoint at scrape time.

Outcomes: ``accepted`` (full success), ``partial_success``, ``empty`` (no spans: answered success
without calling the intake), and the refusal reasons of ``errors.ProtocolStatus.reason``
(``invalid``, ``too_large``, ``unsupported_media_type``, ``method_not_allowed``, ``not_found``,
``overloaded``, ``internal_error``). Counting is an integer increment on the event loop; nothing is
logged per request.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["ReceiverStats"]


@dataclass
class ReceiverStats:
    requests: Counter[str] = field(default_factory=Counter)
    """Requests by outcome."""
    spans: int = 0
    """Spans in requests handed to the intake (accepted or partially accepted)."""

    def snapshot(self) -> ReceiverStats:
        return ReceiverStats(Counter(self.requests), self.spans)
