"""Admission with reservations: bound a budget's overshoot under concurrency.

A decision snapshot says what each budget instance past a threshold has ``spent`` of its
``limit``. Checking it alone lets every request in flight pass while none of their spend has
landed, so N concurrent requests can all spend past the limit. A :class:`Reservations` ledger
closes that gap on the gateway: before a call it **reserves** an estimate of the call's spend
(an upper bound, from the request's max output tokens and prompt size, priced with the
catalog: ``otelcost.integrations.estimate``) and admits the call only when, for every
applicable decision that publishes a limit,

    spent + (reservations held in the decision's scope) + this estimate <= limit

::

    reservations = Reservations(policy_client, settle_after=15)
    with reservations.reserve({"team": "ml"}, estimate) as hold:   # raises ReservationRefusedError
        response = call_the_model()
        hold.settle(actual)                 # optional: the call's real spend, once known

Leaving the block **releases** the hold, but its amount keeps counting until the published
``spent`` can include the call: for ``settle_after`` seconds after the release (export delay +
pipeline + spend refresh + long poll), while the client's polling works; when it fails, until
the client holds a snapshot computed that long after the release. Dropping the hold at once
would let the call's spend vanish from both sides for that time.

The bound this gives, its assumptions and the measurement are in docs/budgets.md ("How far a
budget can overshoot"). Decisions exist only from an instance's first threshold on, so a budget
that should be reserved against from the start needs a low first threshold (``{at: 0.01,
action: notify, alert: false}``); holds of calls admitted before the decision appeared still
count once it does. Thread-safe; standard library only (like the client).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from otelcost.errors import OtelcostError
from otelcost.policy.client import PolicyClient
from otelcost.policy.decisions import Action, CheckResult, Decision, ScopeValue, format_scope, scope_matches

__all__ = ["Estimate", "Hold", "ReservationRefusedError", "Reservations"]

NS_PER_SECOND: Final = 1_000_000_000
_METRICS: Final = frozenset(
    {"cost_usd", "effective_cost_usd", "input_tokens", "output_tokens", "total_tokens", "requests"}
)


class ReservationRefusedError(OtelcostError):
    """The call may not go ahead: a decision denies it, or its estimate does not fit the
    headroom left in one of its budgets. ``result`` is the check that refused it."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.reason)
        self.result = result


@dataclass(frozen=True, slots=True)
class Estimate:
    """What one call may spend at most: USD (list price; None when the model is unpriced) and
    tokens. Every metric a budget can count is derived from these."""

    cost_usd: Decimal | None
    input_tokens: int
    output_tokens: int

    def amount(self, metric: str) -> Decimal:
        if metric in ("cost_usd", "effective_cost_usd"):
            # An unpriced call costs nothing in a cost budget (it is flagged there instead).
            return self.cost_usd or Decimal(0)
        if metric == "input_tokens":
            return Decimal(self.input_tokens)
        if metric == "output_tokens":
            return Decimal(self.output_tokens)
        if metric == "total_tokens":
            return Decimal(self.input_tokens + self.output_tokens)
        return Decimal(1)  # requests


class _Group:
    """The holds of one set of dimensions, summed: admission walks groups, not holds."""

    __slots__ = ("calls", "cost_usd", "dimensions", "input_tokens", "output_tokens")

    def __init__(self, dimensions: Mapping[str, str]) -> None:
        self.dimensions = dict(dimensions)
        self.cost_usd = Decimal(0)
        self.input_tokens = 0
        self.output_tokens = 0
        self.calls = 0

    def add(self, estimate: Estimate, sign: int) -> None:
        self.cost_usd += sign * (estimate.cost_usd or Decimal(0))
        self.input_tokens += sign * estimate.input_tokens
        self.output_tokens += sign * estimate.output_tokens
        self.calls += sign

    def amount(self, metric: str) -> Decimal:
        if metric == "requests":
            return Decimal(self.calls)
        return Estimate(self.cost_usd, self.input_tokens, self.output_tokens).amount(metric)


class Hold:
    """One reservation: the call's dimensions and what it may spend."""

    __slots__ = ("_group", "_ledger", "counted", "dimensions", "estimate", "released_ns")

    def __init__(self, ledger: Reservations, group: _Group, estimate: Estimate) -> None:
        self._ledger = ledger
        self._group = group
        self.dimensions = group.dimensions
        self.estimate = estimate
        self.released_ns: int | None = None
        self.counted = True  # False once dropped (published, or past max_hold)

    def settle(self, actual: Estimate) -> None:
        """The call's real spend, once known. The hold keeps the larger of the two (a real
        spend above the estimate is counted until it is published; below, the estimate stays
        until then, which only errs on the safe side)."""
        self._ledger._settle(self, actual)

    def release(self) -> None:
        """The call has ended (idempotent). Its amount counts until it can be published."""
        self._ledger._release(self)


class Reservations:
    """Holds of calls in flight (and recently ended) against a :class:`PolicyClient`'s snapshot.

    ``settle_after`` (seconds): how long after a call ends its spend may take to show in the
    published ``spent`` (default 15 s: the OTel SDK's 5 s export delay, the pipeline, the
    evaluator's 5 s ``snapshot_refresh`` and the long poll, with a margin). ``max_hold``
    (seconds) ends holds that were never released (a lost callback) so they cannot block forever.
    """

    def __init__(
        self,
        client: PolicyClient,
        *,
        settle_after: float = 15.0,
        max_hold: float = 3600.0,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        if settle_after < 0 or max_hold <= 0:
            raise ValueError("settle_after must be >= 0 and max_hold > 0")
        self.client = client
        self.settle_after_ns = int(settle_after * NS_PER_SECOND)
        self.max_hold_ns = int(max_hold * NS_PER_SECOND)
        self._clock_ns = clock_ns
        self._lock = threading.Lock()
        self._live: dict[int, tuple[Hold, int]] = {}  # id -> (hold, reserved at)
        self._settling: deque[Hold] = deque()  # released, in release order
        self._groups: dict[tuple[tuple[str, str], ...], _Group] = {}
        # (dimension, value) -> keys of the groups that have it: a decision's scope finds its
        # groups without walking every group (thousands, with a per-user dimension).
        self._by_term: dict[tuple[str, str], set[tuple[tuple[str, str], ...]]] = {}
        # Running totals per decision scope asked about, kept up to date as holds come and go, so
        # an admission costs the same with ten or ten thousand distinct callers in a team.
        self._scope_totals: dict[_ScopeKey, tuple[Mapping[str, ScopeValue], _Group]] = {}
        self._scopes_by_term: dict[tuple[str, str] | tuple[()], set[_ScopeKey]] = {}
        self.admitted = 0
        self.refused = 0

    # -- admission -------------------------------------------------------------------------------

    def try_reserve(
        self, dimensions: Mapping[str, str], estimate: Estimate
    ) -> tuple[CheckResult, Hold | None]:
        """The check and, when admitted, the hold (release it when the call ends)."""
        result = self.client.check(dimensions)
        if not result.allowed:
            with self._lock:
                self.refused += 1
            return result, None
        now = self._clock_ns()
        with self._lock:
            self._expire(now)
            for decision in result.decisions:
                refusal = self._exceeds(decision, dimensions, estimate, result, now)
                if refusal is not None:
                    self.refused += 1
                    return refusal, None
            key = tuple(sorted(dimensions.items()))
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = _Group(dimensions)
                for term in key:
                    self._by_term.setdefault(term, set()).add(key)
            hold = Hold(self, group, estimate)
            group.add(estimate, 1)
            self._apply(group.dimensions, estimate, 1)
            self._live[id(hold)] = (hold, now)
            self.admitted += 1
        return result, hold

    @contextmanager
    def reserve(self, dimensions: Mapping[str, str], estimate: Estimate) -> Iterator[Hold]:
        """Admit or raise :class:`ReservationRefusedError`; the hold is released on leaving."""
        result, hold = self.try_reserve(dimensions, estimate)
        if hold is None:
            raise ReservationRefusedError(result)
        try:
            yield hold
        finally:
            hold.release()

    def held(self, scope: Mapping[str, ScopeValue] | None = None, metric: str = "cost_usd") -> Decimal:
        """What the holds in ``scope`` (None: all) count now in ``metric``, for tests and metrics."""
        with self._lock:
            self._expire(self._clock_ns())
            groups = self._groups.values() if scope is None else self._in_scope(scope)
            return sum((g.amount(metric) for g in groups), Decimal(0))

    # -- internals (under the lock) --------------------------------------------------------------

    def _exceeds(
        self,
        decision: Decision,
        dimensions: Mapping[str, str],
        estimate: Estimate,
        result: CheckResult,
        now: int,
    ) -> CheckResult | None:
        if decision.limit is None or decision.spent is None or decision.metric not in _METRICS:
            return None  # a kill switch, or a decision without a published amount
        held = self._scope_total(decision.scope).amount(decision.metric)
        wanted = estimate.amount(decision.metric)
        if decision.spent + held + wanted <= decision.limit:
            return None
        headroom = decision.limit - decision.spent - held
        reason = (
            f"budget {decision.budget} ({format_scope(decision.scope)}): {wanted} {decision.metric} "
            f"reserved for this call does not fit the {max(headroom, Decimal(0))} left "
            f"({decision.spent} spent + {held} in flight of {decision.limit})"
        )
        # The headroom comes back when calls in flight end: retry soon, not at the window's end.
        return CheckResult(Action.THROTTLE, decision, result.decisions, result.version, reason, retry_after=1)

    def _expire(self, now: int) -> None:
        # How recent the spend figures the client holds are known to be: the snapshot's own time
        # or, while the client's polling works (a long poll returns within milliseconds of a
        # change), now. When polling fails, holds wait for a snapshot that is newer than they.
        snapshot = self.client.snapshot
        published = snapshot.computed_at_ns if snapshot is not None else 0
        if snapshot is not None and self.client.last_error is None:
            published = max(published, now)
        while self._settling:
            released = self._settling[0].released_ns or 0
            if released + self.settle_after_ns > published and released + self.max_hold_ns > now:
                break
            self._drop(self._settling.popleft())
        if self._live:
            for key in [k for k, (_, at) in self._live.items() if at + self.max_hold_ns <= now]:
                self._drop(self._live.pop(key)[0])

    def _scope_total(self, scope: Mapping[str, ScopeValue]) -> _Group:
        key = _scope_key(scope)
        cached = self._scope_totals.get(key)
        if cached is not None:
            return cached[1]
        total = _Group({})
        for group in self._in_scope(scope):
            total.cost_usd += group.cost_usd
            total.input_tokens += group.input_tokens
            total.output_tokens += group.output_tokens
            total.calls += group.calls
        if total.calls:  # an empty total is not kept: it is recomputed (cheaply) when asked again
            self._scope_totals[key] = (scope, total)
            for term in _terms(scope):
                self._scopes_by_term.setdefault(term, set()).add(key)
        return total

    def _apply(self, dimensions: Mapping[str, str], estimate: Estimate, sign: int) -> None:
        """Add (or take away) one hold's amounts in every cached scope total it falls in."""
        candidates = set(self._scopes_by_term.get((), ()))
        for dim, value in dimensions.items():
            candidates |= self._scopes_by_term.get((dim, value), set())
        for key in candidates:
            scope, total = self._scope_totals[key]
            if not scope_matches(scope, dimensions):
                continue
            total.add(estimate, sign)
            if total.calls == 0:
                del self._scope_totals[key]
                for term in _terms(scope):
                    members = self._scopes_by_term[term]
                    members.discard(key)
                    if not members:
                        del self._scopes_by_term[term]

    def _in_scope(self, scope: Mapping[str, ScopeValue]) -> list[_Group]:
        exact = next(((d, v) for d, v in scope.items() if isinstance(v, str)), None)
        if exact is not None:
            keys: Iterable[tuple[tuple[str, str], ...]] = self._by_term.get(exact, ())
        elif scope:  # only lists of values: the groups with any value of the first
            dim, values = next(iter(scope.items()))
            found: set[tuple[tuple[str, str], ...]] = set()
            for value in values if isinstance(values, tuple) else ():
                found |= self._by_term.get((dim, str(value)), set())
            keys = found
        else:
            keys = self._groups.keys()
        return [g for k in keys if scope_matches(scope, (g := self._groups[k]).dimensions)]

    def _drop(self, hold: Hold) -> None:
        hold.counted = False
        group = hold._group
        group.add(hold.estimate, -1)
        self._apply(group.dimensions, hold.estimate, -1)
        if group.calls == 0:
            key = tuple(sorted(group.dimensions.items()))
            self._groups.pop(key, None)
            for term in key:
                members = self._by_term.get(term)
                if members is not None:
                    members.discard(key)
                    if not members:
                        del self._by_term[term]

    def _release(self, hold: Hold) -> None:
        with self._lock:
            if self._live.pop(id(hold), None) is None:
                return
            hold.released_ns = self._clock_ns()
            self._settling.append(hold)

    def _settle(self, hold: Hold, actual: Estimate) -> None:
        with self._lock:
            held = hold.estimate
            larger = Estimate(
                cost_usd=max(held.cost_usd or Decimal(0), actual.cost_usd or Decimal(0)),
                input_tokens=max(held.input_tokens, actual.input_tokens),
                output_tokens=max(held.output_tokens, actual.output_tokens),
            )
            if not hold.counted:
                hold.estimate = larger  # already dropped: nothing is counted any more
                return
            hold._group.add(held, -1)
            hold._group.add(larger, 1)
            self._apply(hold.dimensions, held, -1)
            self._apply(hold.dimensions, larger, 1)
            hold.estimate = larger


_ScopeKey = tuple[tuple[str, object], ...]


def _scope_key(scope: Mapping[str, ScopeValue]) -> _ScopeKey:
    return tuple(sorted(scope.items()))


def _terms(scope: Mapping[str, ScopeValue]) -> list[tuple[str, str] | tuple[()]]:
    """The index terms of a scope: each exact ``(dimension, value)``; for a scope of lists only,
    each value of its first list; ``()`` for the empty (global) scope."""
    exact: list[tuple[str, str] | tuple[()]] = [(d, v) for d, v in scope.items() if isinstance(v, str)]
    if exact:
        return exact[:1]
    if scope:
        dim, values = next(iter(scope.items()))
        return [(dim, str(v)) for v in (values if isinstance(values, tuple) else ())]
    return [()]
