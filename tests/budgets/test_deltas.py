"""A delta survives the trip through its hand-written JSON text exactly: any instance key (quotes,
backslashes, control and non-ASCII characters), any amount a 64-bit total cannot hold."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from otelcost.budgets.deltas import Delta

_amounts = st.integers(min_value=-(10**22), max_value=10**22)


@given(
    key=st.lists(st.text(), max_size=3).map(tuple),
    units=_amounts,
    calls=st.integers(min_value=-(10**6), max_value=10**9),
    unpriced=st.integers(min_value=0, max_value=10**9),
    as_of=st.integers(min_value=0, max_value=2**63 - 1),
    keep=st.integers(min_value=-5, max_value=10**9),
)
def test_a_delta_round_trips_through_its_json(
    *, key: tuple[str, ...], units: int, calls: int, unpriced: int, as_of: int, keep: int
) -> None:
    delta = Delta(
        "team-monthly.v2", "0123456789ab", "w1772323200000000000", key, units, calls, unpriced, as_of
    )
    decoded = json.loads(delta.to_json(keep))
    assert all(isinstance(part, str) for part in decoded)  # cjson would turn numbers into doubles
    assert int(decoded[-1]) == max(1, keep)
    assert Delta.from_json(decoded) == delta
