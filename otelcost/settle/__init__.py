"""Settling each call in the serve process: counted once, attributed as it finally is.

``Settler`` (``stage.py``) folds the rows of a priced batch that repeat a provider call already
seen (by response id, or by fingerprint where a span has none: ``index.py``) and turns late
attribution (a folded span's, or ancestors that arrived after the call) into before/after
change rows (``changes.py``). The lake stores folded spans in ``duplicate_spans`` and changes
in ``attribution_changes``; the budgets skip the one and move spend by the other.
"""

from otelcost.settle.changes import AFTER, BEFORE, PROPOSED, REASON_FOLDED_SPAN, REASON_LATE_ANCESTOR
from otelcost.settle.config import SettleConfig
from otelcost.settle.stage import REASON_FINGERPRINT, REASON_RESPONSE_ID, SettleCounters, Settled, Settler

__all__ = [
    "AFTER",
    "BEFORE",
    "PROPOSED",
    "REASON_FINGERPRINT",
    "REASON_FOLDED_SPAN",
    "REASON_LATE_ANCESTOR",
    "REASON_RESPONSE_ID",
    "SettleConfig",
    "SettleCounters",
    "Settled",
    "Settler",
]
