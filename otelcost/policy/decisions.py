"""Decisions and the snapshot that carries them: the data model of the policy endpoint.

A **decision** says what a gateway should do with calls that match a scope: ``allow``,
``notify`` (allowed, but a threshold was crossed), ``throttle`` or ``block``. The budget
evaluator (``otelcost/budgets/``) produces one decision per budget instance that is past a
threshold, and one per kill-switch override; an **exemption** (an ``allow`` override) lifts
budget decisions for the calls it matches.

A **snapshot** is the immutable set of all current decisions and exemptions, with a ``version``
that grows by one whenever a decision changes. The evaluator swaps snapshots by reference, so a
reader holding one never sees it change; ``etag`` identifies it across restarts (``epoch`` is
new for every evaluator run, so a version number reused after a restart never matches).

:meth:`Snapshot.check` answers "may a call with these dimensions go ahead?" from the snapshot
alone. The policy endpoint's ``/v1/check`` and the gateway-side client
(``otelcost.policy.client``) both use it, so the server and a gateway answering locally agree.
A lookup is a handful of dictionary probes (decisions are indexed by the dimensions their scope
names), whatever the number of decisions.

This module uses only the standard library: the gateway-side client imports it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Final, Generic, Literal, TypeVar

__all__ = [
    "Action",
    "CheckResult",
    "Decision",
    "Exemption",
    "ScopeValue",
    "Snapshot",
    "format_scope",
]

ScopeValue = str | tuple[str, ...]
"""A scope term: one exact value, or a tuple of values any of which matches."""

NS_PER_SECOND: Final = 1_000_000_000


class Action(enum.StrEnum):
    """What a gateway does with a matching call, from least to most severe."""

    ALLOW = "allow"
    NOTIFY = "notify"
    THROTTLE = "throttle"
    BLOCK = "block"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @property
    def denies(self) -> bool:
        """Throttle and block refuse the call at a gateway that only knows yes or no."""
        return self in (Action.THROTTLE, Action.BLOCK)


_SEVERITY: Final = {Action.ALLOW: 0, Action.NOTIFY: 1, Action.THROTTLE: 2, Action.BLOCK: 3}


def format_scope(scope: Mapping[str, ScopeValue]) -> str:
    """``team=ml,user_id=u1`` (lists as ``a|b``); ``*`` for the empty (global) scope."""
    if not scope:
        return "*"
    return ",".join(
        f"{dim}={'|'.join(value) if isinstance(value, tuple) else value}"
        for dim, value in sorted(scope.items())
    )


def scope_matches(scope: Mapping[str, ScopeValue], dimensions: Mapping[str, str]) -> bool:
    """Whether a call with ``dimensions`` is inside ``scope`` (every term: the value, or one of
    a tuple of values). Shared with ``policy/reservations.py``; not part of the pinned gateway
    surface (``__all__``)."""
    for dim, value in scope.items():
        given = dimensions.get(dim)
        if given is None:
            return False
        if isinstance(value, tuple):
            if given not in value:
                return False
        elif given != value:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Decision:
    """The evaluator's verdict for one budget instance (or one kill-switch override).

    ``scope`` names the calls it applies to; a call matches when each of its dimensions equals
    the scope's value (or is one of a tuple's values). Amounts are exact: USD for the cost
    metrics, counts for tokens and requests. Times are Unix nanoseconds, UTC.

    Freshness: ``as_of_ns`` is when otelcost received the newest call counted in ``spent``;
    ``computed_at_ns`` is when the decision was evaluated. ``retry_at_ns`` is when the action
    lapses if nothing changes (the end of a calendar window, the moment a rolling window drains
    below the threshold, an override's expiry); gateways use it for ``Retry-After``.
    """

    budget: str
    scope: Mapping[str, ScopeValue]
    action: Action
    reason: str
    computed_at_ns: int
    source: Literal["budget", "override"] = "budget"
    metric: str = ""
    spent: Decimal | None = None
    limit: Decimal | None = None
    threshold: Decimal | None = None
    window: str = ""
    window_start_ns: int | None = None
    window_end_ns: int | None = None
    retry_at_ns: int | None = None
    as_of_ns: int | None = None
    unpriced_calls: int = 0
    override_id: str | None = None

    @property
    def percent(self) -> float | None:
        """Spent as a percentage of the limit, for display (the decision itself is exact)."""
        if self.spent is None or not self.limit:
            return None
        return float(round(self.spent * 100 / self.limit, 2))

    def lapsed(self, now_ns: int) -> bool:
        return self.retry_at_ns is not None and self.retry_at_ns <= now_ns

    def matches(self, dimensions: Mapping[str, str]) -> bool:
        return scope_matches(self.scope, dimensions)

    def retry_after_seconds(self, now_ns: int) -> int | None:
        """Whole seconds until ``retry_at`` (at least 1), or None when the action has no end."""
        if self.retry_at_ns is None:
            return None
        return max(1, -(-(self.retry_at_ns - now_ns) // NS_PER_SECOND))


@dataclass(frozen=True, slots=True)
class Exemption:
    """An ``allow`` override: budget decisions (of ``budget``, or of every budget when it is
    None) do not apply to calls matching ``scope``. Kill-switch blocks still do."""

    override_id: str
    scope: Mapping[str, ScopeValue]
    budget: str | None = None
    until_ns: int | None = None
    reason: str = ""

    def lapsed(self, now_ns: int) -> bool:
        return self.until_ns is not None and self.until_ns <= now_ns

    def matches(self, dimensions: Mapping[str, str]) -> bool:
        return scope_matches(self.scope, dimensions)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The answer to "may this call go ahead?".

    ``decision`` is the most severe decision that applies (None when nothing applies);
    ``decisions`` lists every applicable one, most severe first.
    """

    action: Action
    decision: Decision | None
    decisions: tuple[Decision, ...]
    version: int
    reason: str
    retry_after: int | None = None

    @property
    def allowed(self) -> bool:
        return not self.action.denies


_ALLOWED_NOTHING_APPLIES = "no budget decision applies"


_Item = TypeVar("_Item", Decision, Exemption)


class _ScopeIndex(Generic[_Item]):
    """Items grouped by the exact-valued dimensions of their scope, for O(groups) lookups."""

    def __init__(self, items: Iterable[_Item]) -> None:
        groups: dict[tuple[str, ...], dict[tuple[str, ...], list[_Item]]] = {}
        for item in items:
            exact = tuple(sorted(d for d, v in item.scope.items() if not isinstance(v, tuple)))
            key = tuple(str(item.scope[d]) for d in exact)
            groups.setdefault(exact, {}).setdefault(key, []).append(item)
        self._groups: list[tuple[tuple[str, ...], dict[tuple[str, ...], list[_Item]]]] = list(groups.items())

    def lookup(self, dimensions: Mapping[str, str]) -> list[_Item]:
        found: list[_Item] = []
        for dims, table in self._groups:
            key = []
            for dim in dims:
                value = dimensions.get(dim)
                if value is None:
                    break
                key.append(value)
            else:
                for item in table.get(tuple(key), ()):
                    if item.matches(dimensions):  # the tuple-valued terms
                        found.append(item)
        return found


@dataclass(frozen=True, eq=False)
class Snapshot:
    """All current decisions and exemptions, immutable, identified by ``(epoch, version)``.

    ``as_of_ns`` is when otelcost received the newest call the evaluator had counted when it
    computed this snapshot at ``computed_at_ns`` (None before the first call).
    """

    version: int
    epoch: str
    computed_at_ns: int
    as_of_ns: int | None = None
    decisions: tuple[Decision, ...] = ()
    exemptions: tuple[Exemption, ...] = ()
    stale: bool = False
    """The totals behind these decisions may be behind: a shared budget store (Redis) cannot
    be reached, so this process counts only its own calls since (docs/scale-out.md)."""
    _cache: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)

    @property
    def etag(self) -> str:
        """Strong entity tag of this snapshot (without the quotes)."""
        return f"{self.epoch}.{self.version}"

    @cached_property
    def _decision_index(self) -> _ScopeIndex[Decision]:
        return _ScopeIndex(self.decisions)

    @cached_property
    def _exemption_index(self) -> _ScopeIndex[Exemption]:
        return _ScopeIndex(self.exemptions)

    def applicable(self, dimensions: Mapping[str, str], now_ns: int) -> list[Decision]:
        """Decisions that apply to a call with ``dimensions`` at ``now_ns``, most severe first.

        Lapsed decisions (past ``retry_at``) are skipped: a calendar window that has rolled
        over no longer blocks, even before the evaluator has published the next snapshot.
        """
        found = [d for d in self._decision_index.lookup(dimensions) if not d.lapsed(now_ns)]
        if found and self.exemptions:
            exemptions = [e for e in self._exemption_index.lookup(dimensions) if not e.lapsed(now_ns)]
            if exemptions:
                exempt_all = any(e.budget is None for e in exemptions)
                exempt_budgets = {e.budget for e in exemptions}
                found = [
                    d
                    for d in found
                    if d.source == "override" or not (exempt_all or d.budget in exempt_budgets)
                ]
        found.sort(key=lambda d: (-d.action.severity, d.budget, format_scope(d.scope)))
        return found

    def check(self, dimensions: Mapping[str, str], now_ns: int) -> CheckResult:
        """Allow, or the most severe applicable decision (with its Retry-After in seconds)."""
        found = self.applicable(dimensions, now_ns)
        if not found:
            return CheckResult(Action.ALLOW, None, (), self.version, _ALLOWED_NOTHING_APPLIES)
        top = found[0]
        retry_after = top.retry_after_seconds(now_ns) if top.action.denies else None
        return CheckResult(top.action, top, tuple(found), self.version, top.reason, retry_after)
