"""The tenant view of a decision snapshot: what a gateway key bound to one tenant is shown.

A snapshot holds every budget's decisions: their names, scopes, amounts spent and limits. A key
bound to a tenant (``bind: {tenant_id: acme}``) must be able to enforce whatever applies to that
tenant's calls without learning anything about the other tenants. :func:`tenant_view` sorts each
decision by its scope's ``tenant_id`` term:

* **own** -- the term is the tenant (``acme``, or a list holding only ``acme``): kept whole, with
  its budget name, amounts and reason. A ``{tenant_id: "*"}`` budget's instance for ``acme`` is
  such a decision, and so is a kill switch scoped to ``acme``.
* **other tenants'** -- the term names other tenants only: dropped.
* **shared** -- no ``tenant_id`` term (a global or per-team budget), or a list that holds the
  tenant among others: the tenant's calls are inside it, so the gateway must enforce it, but its
  limit and spend are everyone's. Only the denying actions are kept (``throttle``, ``block``:
  a ``notify`` changes nothing at a gateway and would tell how close a shared budget is to its
  limit), and only what enforcing needs: the action, the scope narrowed to the tenant
  (``tenant_id`` pinned to it, the other terms kept because the gateway matches on them),
  ``retry_at`` (for ``Retry-After``) and ``source`` (an exemption lifts budgets, not kill
  switches). The budget's name becomes an alias (``shared-1``, ``shared-2`` ... in the order of
  the real names), with no amounts, window or override id, and a reason that says only that a
  shared budget applies.

Exemptions (``allow`` overrides) are sorted the same way: another tenant's are dropped; a shared
one is kept pinned to the tenant, under an alias id, naming the alias of the budget it lifts,
and dropped when the budget it lifts has no decision in the view. So for every call of tenant
``t`` (its dimensions include ``tenant_id: t``), ``tenant_view(s, t).check(dims, now)`` refuses
exactly when ``s.check(dims, now)`` does, with the same action and ``Retry-After``; an allowed
call may say ``allow`` where the full snapshot says ``notify`` for a shared budget.

:class:`TenantViews` caches one view per tenant and snapshot: a long poll re-reads its view
whenever a version is published, and computing it again for every poller would cost a pass over
all decisions each. A view whose content did not change when the snapshot did (another tenant's
decision moved) is the previous view object itself, so its version and entity tag stay, and the
tenant's long polls keep waiting instead of answering the same decisions again. A view's
``epoch`` is the snapshot's with a short digest of the tenant appended, so its entity tag
(``etag``) never equals the full snapshot's or another tenant's.

This module uses only the standard library, like the decision model it reads.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from otelcost.policy.decisions import Decision, Exemption, ScopeValue, Snapshot, format_scope

__all__ = [
    "OTHER",
    "OWN",
    "SHARED",
    "SHARED_PREFIX",
    "TENANT_DIMENSION",
    "TenantViews",
    "tenant_tag",
    "tenant_term_kind",
    "tenant_view",
]

TENANT_DIMENSION: Final = "tenant_id"
SHARED_PREFIX: Final = "shared-"
"""Aliases of shared budgets and exemptions in a tenant view: ``shared-1``, ``shared-2`` ..."""

OWN, SHARED, OTHER = "own", "shared", "other"


def tenant_tag(tenant: str) -> str:
    """A short, header-safe digest of a tenant id, appended to a view's epoch (and so its ETag)."""
    return "t" + hashlib.sha256(tenant.encode()).hexdigest()[:12]


def _kind(scope: Mapping[str, ScopeValue], tenant: str) -> str:
    return tenant_term_kind(scope.get(TENANT_DIMENSION), tenant)


def tenant_term_kind(term: str | Sequence[str] | None, tenant: str) -> str:
    """Whose a scope's ``tenant_id`` term is, seen from ``tenant``: :data:`OWN` (the tenant, or a
    list of only it), :data:`SHARED` (no term, or a list holding it among others) or
    :data:`OTHER`. Budgets' configured scopes (``reports/base.py``) are sorted by it too."""
    if term is None:
        return SHARED
    if not isinstance(term, str):
        if tenant not in term:
            return OTHER
        return OWN if set(term) == {tenant} else SHARED
    return OWN if term == tenant else OTHER


def _pinned(scope: Mapping[str, ScopeValue], tenant: str) -> dict[str, ScopeValue]:
    return {**scope, TENANT_DIMENSION: tenant}


def _shared_reason(decision: Decision) -> str:
    what = "override" if decision.source == "override" else "budget"
    return f"a shared {what} applies to this tenant's calls: {decision.action.value}"


def tenant_view(snapshot: Snapshot, tenant: str) -> Snapshot:
    """The decisions and exemptions of ``snapshot`` that ``tenant`` is shown (module docstring)."""
    kept: list[Decision] = []
    shared: list[Decision] = []
    for decision in snapshot.decisions:
        kind = _kind(decision.scope, tenant)
        if kind == OWN:
            kept.append(decision)
        elif kind == SHARED and decision.action.denies:
            shared.append(decision)
    own_budgets = {d.budget for d in kept if d.budget}
    # Aliases in the order of the real names: deterministic for one snapshot, and a name never
    # leaves the process.
    aliases = {
        name: f"{SHARED_PREFIX}{index}"
        for index, name in enumerate(sorted({d.budget for d in shared if d.budget} - own_budgets), 1)
    }
    redacted: dict[tuple[object, ...], Decision] = {}
    for decision in shared:
        scope = _pinned(decision.scope, tenant)
        alias = aliases.get(decision.budget, decision.budget) if decision.budget else ""
        view = Decision(
            budget=alias,
            scope=scope,
            action=decision.action,
            reason=_shared_reason(decision),
            computed_at_ns=decision.computed_at_ns,
            source=decision.source,
            retry_at_ns=decision.retry_at_ns,
        )
        # Two instances of one shared budget narrowed to the same tenant scope say the same thing.
        key = (alias, format_scope(scope), decision.source, decision.action, decision.retry_at_ns)
        redacted.setdefault(key, view)
    kept.extend(redacted.values())
    kept.sort(key=lambda d: (d.budget, format_scope(d.scope), d.source))
    present = {d.budget for d in kept if d.source == "budget"}
    exemptions: list[Exemption] = []
    shared_exemptions: list[Exemption] = []
    for exemption in snapshot.exemptions:
        kind = _kind(exemption.scope, tenant)
        if kind == OTHER:
            continue
        budget = exemption.budget
        if budget is not None:
            budget = aliases.get(budget, budget)
            if budget not in present:
                continue  # it lifts nothing this tenant is shown
        if kind == OWN and (exemption.budget is None or exemption.budget in own_budgets):
            exemptions.append(exemption)
        else:
            shared_exemptions.append(exemption)
    for index, exemption in enumerate(sorted(shared_exemptions, key=lambda e: e.override_id), 1):
        budget = None if exemption.budget is None else aliases.get(exemption.budget, exemption.budget)
        exemptions.append(
            Exemption(
                override_id=f"{SHARED_PREFIX}exemption-{index}",
                scope=_pinned(exemption.scope, tenant),
                budget=budget,
                until_ns=exemption.until_ns,
            )
        )
    exemptions.sort(key=lambda e: e.override_id)
    return Snapshot(
        version=snapshot.version,
        epoch=f"{snapshot.epoch}-{tenant_tag(tenant)}",
        computed_at_ns=snapshot.computed_at_ns,
        as_of_ns=snapshot.as_of_ns,
        decisions=tuple(kept),
        exemptions=tuple(exemptions),
    )


def _content(view: Snapshot) -> tuple[object, ...]:
    """What a gateway acts on, without the evaluation times (they move on every evaluation)."""
    decisions = tuple(
        (
            d.budget,
            format_scope(d.scope),
            d.action,
            d.reason,
            d.source,
            d.metric,
            d.spent,
            d.limit,
            d.threshold,
            d.window,
            d.window_start_ns,
            d.window_end_ns,
            d.retry_at_ns,
            d.unpriced_calls,
            d.override_id,
        )
        for d in view.decisions
    )
    exemptions = tuple(
        (e.override_id, format_scope(e.scope), e.budget, e.until_ns, e.reason) for e in view.exemptions
    )
    return (view.epoch, decisions, exemptions)


@dataclass(frozen=True, slots=True)
class _Cached:
    snapshot: Snapshot
    view: Snapshot
    content: tuple[object, ...]


class TenantViews:
    """One :func:`tenant_view` per tenant, recomputed only when the snapshot object changes.

    Thread-safe; holds one entry per tenant that asked (bounded by the keys bound to tenants).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[str, _Cached] = {}

    def view(self, snapshot: Snapshot, tenant: str) -> Snapshot:
        """The view of ``snapshot`` for ``tenant``; the previous view object when unchanged."""
        cached = self._cache.get(tenant)
        if cached is not None and cached.snapshot is snapshot:
            return cached.view
        fresh = tenant_view(snapshot, tenant)
        content = _content(fresh)
        with self._lock:
            cached = self._cache.get(tenant)
            if cached is not None and cached.snapshot is snapshot:
                return cached.view
            if cached is not None and cached.content == content and cached.view.version <= snapshot.version:
                view = cached.view
            else:
                view = fresh
            self._cache[tenant] = _Cached(snapshot, view, content)
            return view
