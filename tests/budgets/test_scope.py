"""Scope matching: '*' gives one instance per value (NULL excluded), values and lists filter."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from otelcost.budgets.scope import Scope
from tests.budgets.rows import at, calls

T = at("2026-03-14T10:00:00")


def batch() -> pa.Table:
    return pa.concat_tables(
        [
            calls(1, at=T, team="ml", user_id="u1", model="gpt-4o"),
            calls(1, at=T, team="ml", user_id="u2", model="claude"),
            calls(1, at=T, team="search", user_id="u1", model="gpt-4o"),
            calls(1, at=T, team=None, user_id="u3", model="gpt-4o"),
        ]
    )


def mask(scope: Scope, table: pa.Table) -> list[bool]:
    result = scope.mask(table)
    return [True] * table.num_rows if result is None else list(np.asarray(result))


def test_wildcard_matches_every_value_but_null() -> None:
    scope = Scope.of({"team": "*"})
    assert mask(scope, batch()) == [True, True, True, False]
    assert scope.instance_scope(("ml",)) == {"team": "ml"}


def test_exact_value_and_list_filters() -> None:
    assert mask(Scope.of({"team": "ml"}), batch()) == [True, True, False, False]
    assert mask(Scope.of({"model": ["gpt-4o", "o3"]}), batch()) == [True, False, True, True]
    combined = Scope.of({"team": "*", "model": ["gpt-4o", "o3"], "user_id": "u1"})
    assert mask(combined, batch()) == [True, False, True, False]
    assert combined.instance_scope(("ml",)) == {"team": "ml", "model": ("gpt-4o", "o3"), "user_id": "u1"}


def test_empty_scope_is_everything() -> None:
    scope = Scope.of({})
    assert scope.mask(batch()) is None
    assert scope.instance_scope(()) == {}


def test_override_coverage() -> None:
    scope = Scope.of({"team": "*", "environment": "production", "model": ["a", "b"]})
    assert scope.covers(("ml",), {})
    assert scope.covers(("ml",), {"team": "ml"})
    assert scope.covers(("ml",), {"team": "ml", "environment": "production"})
    assert not scope.covers(("ml",), {"team": "search"})
    assert not scope.covers(("ml",), {"environment": "staging"})
    assert not scope.covers(("ml",), {"model": "a"})  # the instance also spends on model b
    assert not scope.covers(("ml",), {"user_id": "u1"})  # narrower than the instance
