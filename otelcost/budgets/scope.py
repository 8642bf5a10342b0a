"""Budget scopes: which calls a budget counts, and how they split into instances.

A scope maps dimensions (record columns such as ``team`` or ``model``) to terms:

* ``"*"`` -- one independent budget **instance** per distinct value (``{team: "*"}`` gives each
  team its own 5,000 USD). Calls without a value for that dimension (NULL) are not counted by a
  ``'*'`` budget: give unattributed calls a value with an attribution default if they must be
  budgeted.
* ``"ml"`` -- only calls with exactly that value.
* ``["ml", "search"]`` -- calls with any of the values, counted together in one shared budget.

An empty scope is one budget over every call. An instance is identified by the tuple of its
``'*'`` values, in the order the scope lists them; :meth:`Scope.instance_scope` turns it back
into the decision's scope (fixed terms included, so a gateway can match it).

Matching a batch is vectorised (``pyarrow.compute.is_in`` / ``is_valid`` per dimension).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from otelcost.budgets.config import WILDCARD
from otelcost.policy.decisions import ScopeValue

__all__ = ["InstanceKey", "Scope"]

InstanceKey = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Scope:
    """A compiled scope: ``'*'`` dimensions, and fixed terms (one value or a set)."""

    wildcards: tuple[str, ...]
    fixed: tuple[tuple[str, tuple[str, ...]], ...]

    @classmethod
    def of(cls, scope: Mapping[str, str | Sequence[str]]) -> Scope:
        wildcards = tuple(dim for dim, term in scope.items() if term == WILDCARD)
        fixed = tuple(
            (dim, (term,) if isinstance(term, str) else tuple(term))
            for dim, term in scope.items()
            if term != WILDCARD
        )
        return cls(wildcards, fixed)

    @property
    def dimensions(self) -> tuple[str, ...]:
        return self.wildcards + tuple(dim for dim, _ in self.fixed)

    def mask(self, batch: pa.Table) -> npt.NDArray[np.bool_] | None:
        """Rows of ``batch`` in scope (None: all of them)."""
        mask: npt.NDArray[np.bool_] | None = None
        for dim in self.wildcards:
            column = batch[dim]
            if column.null_count == 0:
                continue
            mask = _and(mask, pc.is_valid(column))
        for dim, values in self.fixed:
            mask = _and(mask, pc.is_in(batch[dim], value_set=_value_set(values)))
        return mask

    def instance_scope(self, key: InstanceKey) -> dict[str, ScopeValue]:
        """The decision scope of the instance ``key`` (wildcard values plus fixed terms)."""
        scope: dict[str, ScopeValue] = dict(zip(self.wildcards, key, strict=True))
        for dim, values in self.fixed:
            scope[dim] = values[0] if len(values) == 1 else values
        return scope

    def covers(self, key: InstanceKey, terms: Mapping[str, str]) -> bool:
        """Whether an override scope of exact ``terms`` includes every call of instance ``key``.

        True when each term names a wildcard dimension with that instance value, or a fixed
        term of exactly that one value. An empty ``terms`` covers every instance.
        """
        values = dict(zip(self.wildcards, key, strict=True))
        fixed = dict(self.fixed)
        for dim, value in terms.items():
            if dim in values:
                if values[dim] != value:
                    return False
            elif fixed.get(dim) != (value,):
                return False
        return True


@functools.lru_cache(maxsize=1024)
def _value_set(values: tuple[str, ...]) -> pa.Array:
    return pa.array(values, pa.string())


def _and(mask: npt.NDArray[np.bool_] | None, condition: pa.ChunkedArray | pa.Array) -> npt.NDArray[np.bool_]:
    values = np.asarray(condition.to_numpy(zero_copy_only=False), dtype=np.bool_)
    return values if mask is None else mask & values
