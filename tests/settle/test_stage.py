"""The settle stage on priced batches: which spans are folded into which call and why, and the
attribution changes it writes (before/after rows) for attribution that arrives late."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyarrow as pa
import pytest

from otelcost.pricing import Catalog, Pricer
from otelcost.pricing.config import PricingConfig
from otelcost.schema import ATTRIBUTION_DIMENSIONS, RECORD_SCHEMA, calls_only
from otelcost.settle import SettleConfig, Settler
from tests.pricing.calls import at, calls_table

START = at("2026-11-20T10:00")
PRICER = Pricer(Catalog.load(PricingConfig()), PricingConfig())


def _call(trace: int, span: int, **overrides: Any) -> dict[str, Any]:
    """A priced Anthropic call as the SDK's own span reports it (1700 in, 80 out)."""
    row = {
        "ts": START,
        "end_ts": START + timedelta(milliseconds=900),
        "trace_id": f"{trace:032x}",
        "span_id": f"{span:016x}",
        "service": "checkout",
        # Two spans of one call come from two libraries: the SDK's own and an instrumentation.
        "scope_name": "com.anthropic.sdk.python" if span % 2 else "openinference.instrumentation.anthropic",
        "provider": "anthropic",
        "request_model": "claude-sonnet-4-5",
        "response_model": "claude-sonnet-4-5-20250929",
        "response_id": "msg_01",
        "input_tokens": 1700,
        "output_tokens": 80,
        "cache_read_tokens": 1000,
        "cache_write_tokens": 500,
    }
    row.update(overrides)
    return row


def _batch(*rows: dict[str, Any]) -> pa.Table:
    return PRICER.price(calls_table(list(rows)))


def _dedup(**config: Any) -> tuple[Settler, list[int]]:
    clock = [int(START.timestamp() * 1e9)]
    return Settler(SettleConfig.model_validate(config), clock_ns=lambda: clock[0]), clock


def _folds(table: pa.Table) -> list[tuple[str, str | None, str | None]]:
    """(span_id, folded into span_id, reason) per row."""
    return list(
        zip(
            table["span_id"].to_pylist(),
            table["duplicate_of_span_id"].to_pylist(),
            table["duplicate_reason"].to_pylist(),
            strict=True,
        )
    )


def test_two_traces_one_response_id_make_one_call_with_the_other_span_audited() -> None:
    dedup, _ = _dedup()
    marked = dedup.settle(_batch(_call(1, 1), _call(2, 2)))
    assert marked.table.schema == RECORD_SCHEMA
    assert _folds(marked.table) == [(f"{1:016x}", None, None), (f"{2:016x}", f"{1:016x}", "response_id")]
    assert marked.table["duplicate_of_trace_id"][1].as_py() == f"{1:032x}"
    assert calls_only(marked.table).num_rows == 1
    assert marked.folded == {"response_id": 1}


def test_the_span_with_richer_usage_and_attribution_survives_and_takes_what_it_lacks() -> None:
    # The instrumentation's span comes first but lost the cache split; the SDK's span has it.
    # The instrumentation's span has the team the application set; the survivor takes it.
    poor = _call(1, 1, cache_read_tokens=0, cache_write_tokens=0, team="payments",
                 attribution_status="incomplete", missing_dimensions=["feature"])  # fmt: skip
    rich = _call(2, 2, feature="receipts", attribution_status="incomplete", missing_dimensions=["team"])
    dedup, _ = _dedup()
    marked = dedup.settle(_batch(poor, rich))
    assert _folds(marked.table) == [(f"{1:016x}", f"{2:016x}", "response_id"), (f"{2:016x}", None, None)]
    (survivor,) = calls_only(marked.table).to_pylist()
    assert (survivor["team"], survivor["feature"]) == ("payments", "receipts")
    assert survivor["cache_read_tokens"] == 1000
    assert (survivor["attribution_status"], survivor["missing_dimensions"]) == ("complete", [])
    assert marked.carried == {"team": 1}


def test_across_batches_the_first_arrival_survives() -> None:
    dedup, _ = _dedup()
    first = dedup.settle(_batch(_call(1, 1, cache_read_tokens=0)))
    dedup.committed(first)
    second = dedup.settle(_batch(_call(2, 2)))
    assert first.folded == {}
    assert _folds(second.table) == [(f"{2:016x}", f"{1:016x}", "response_id")]


def test_the_same_span_again_is_not_a_duplicate_of_itself() -> None:
    """A retried export carries the very span again: it stays a call (the lake's replay rules
    and the evaluator's span key handle retries)."""
    dedup, _ = _dedup()
    dedup.settle(_batch(_call(1, 1)))
    again = dedup.settle(_batch(_call(1, 1)))
    assert again.folded == {}


def test_response_ids_are_per_service() -> None:
    dedup, _ = _dedup()
    marked = dedup.settle(_batch(_call(1, 1), _call(2, 2, service="search")))
    assert marked.folded == {}


@pytest.mark.parametrize(
    ("change", "folded"),
    [
        ({}, True),
        ({"request_model": None, "response_model": "claude-sonnet-4-5-20250929"}, True),
        ({"ts": START + timedelta(seconds=0.5), "end_ts": START + timedelta(seconds=1.4)}, True),
        ({"ts": START + timedelta(seconds=1.5), "end_ts": START + timedelta(seconds=2.4)}, False),  # after
        ({"ts": START + timedelta(seconds=3), "end_ts": START + timedelta(seconds=3.9)}, False),
        ({"end_ts": START + timedelta(seconds=4)}, False),
        ({"scope_name": "com.anthropic.sdk.python"}, False),  # one library, two calls
        ({"output_tokens": 81}, False),
        ({"provider": "aws.bedrock"}, False),
        ({"request_model": "claude-haiku-4-5", "response_model": "claude-haiku-4-5-20251001"}, False),
        ({"response_id": "msg_02"}, False),  # two ids: two calls, whatever else agrees
    ],
)
def test_fingerprint_where_one_span_has_no_response_id(change: dict[str, Any], folded: bool) -> None:
    """OpenInference's span of ``messages.stream`` has no response id; the SDK's span has one."""
    dedup, _ = _dedup()
    with_id = _call(1, 1)
    without = _call(2, 2, **{"response_id": None, **change})
    marked = dedup.settle(_batch(with_id, without))
    assert marked.folded == ({"fingerprint": 1} if folded else {})


def test_fingerprint_in_either_order_and_the_id_is_adopted() -> None:
    """The id-less span first, then the SDK's, then a third span with the same id."""
    dedup, _ = _dedup()
    dedup.settle(_batch(_call(1, 1, response_id=None)))
    second = dedup.settle(_batch(_call(2, 2)))
    third = dedup.settle(_batch(_call(3, 3, output_tokens=81)))
    assert _folds(second.table)[0][1:] == (f"{1:016x}", "fingerprint")
    assert _folds(third.table)[0][1:] == (f"{1:016x}", "response_id")


def test_no_fingerprint_for_calls_without_usage_or_when_switched_off() -> None:
    dedup, _ = _dedup()
    empty = dict(input_tokens=0, output_tokens=0, cache_read_tokens=0, cache_write_tokens=0)
    marked = dedup.settle(_batch(_call(1, 1, **empty), _call(2, 2, response_id=None, **empty)))
    assert marked.folded == {}
    dedup, _ = _dedup(fingerprint=False)
    assert dedup.settle(_batch(_call(1, 1), _call(2, 2, response_id=None))).folded == {}


def test_a_withdrawn_batch_is_forgotten() -> None:
    """A batch refused after marking (full buffer, spool error) must not shadow the other span."""
    dedup, _ = _dedup()
    refused = dedup.settle(_batch(_call(1, 1)))
    dedup.withdraw(refused)
    assert dedup.settle(_batch(_call(2, 2))).folded == {}
    assert dedup.counters_snapshot().folded == {}


def test_calls_are_forgotten_after_the_window_and_beyond_max_calls() -> None:
    dedup, clock = _dedup(window="1m")
    dedup.settle(_batch(_call(1, 1)))
    clock[0] += 61 * 10**9
    assert dedup.settle(_batch(_call(2, 2))).folded == {}
    dedup, _ = _dedup(max_calls=2)
    dedup.settle(_batch(_call(1, 1, response_id="a"), _call(2, 2, response_id="b")))
    dedup.settle(_batch(_call(3, 3, response_id="c")))
    dedup.settle(_batch(_call(4, 4, response_id="d")))  # evicts "a" (and "b") on arrival
    assert dedup.settle(_batch(_call(5, 5, response_id="a"))).folded == {}
    assert dedup.counters_snapshot().remembered_calls <= 3


def test_dedup_off_folds_nothing() -> None:
    dedup, _ = _dedup(dedup=False)
    batch = _batch(_call(1, 1), _call(2, 2))
    assert dedup.settle(batch).table is batch


def test_a_batch_without_duplicates_is_returned_as_is() -> None:
    dedup, _ = _dedup()
    batch = _batch(_call(1, 1, response_id="a"), _call(2, 2, response_id="b"))
    assert dedup.settle(batch).table is batch


def test_counters_count_committed_folds() -> None:
    dedup, _ = _dedup()
    third = _call(3, 3, response_id=None, scope_name="opentelemetry.instrumentation.anthropic")
    marked = dedup.settle(_batch(_call(1, 1), _call(2, 2), third))
    assert dedup.counters_snapshot().folded == {}
    dedup.committed(marked)
    assert dedup.counters_snapshot().folded == {"response_id": 1, "fingerprint": 1}


def _changes(table: pa.Table) -> list[tuple[str, str, str | None, str | None, str]]:
    """(span_id, before|after, team, feature, reason) of the change rows."""
    rows = table.filter(pa.compute.is_valid(table["attribution_change"])).to_pylist()
    return [
        (r["span_id"], r["attribution_change"], r["team"], r["feature"], r["attribution_change_reason"])
        for r in rows
    ]


def test_a_later_span_carries_attribution_to_the_stored_call_as_a_change() -> None:
    dedup, _ = _dedup()
    first = dedup.settle(_batch(_call(1, 1, feature="receipts", attribution_status="incomplete",
                                     missing_dimensions=["team"])))  # fmt: skip
    second = dedup.settle(_batch(_call(2, 2, team="payments", feature="other")))
    survivor = f"{1:016x}"
    assert first.changes == {}
    assert _changes(second.table) == [
        (survivor, "before", None, "receipts", "folded_span"),
        (survivor, "after", "payments", "receipts", "folded_span"),  # fills, never overrides
    ]
    before, after = second.table.filter(pa.compute.is_valid(second.table["attribution_change"])).to_pylist()
    assert (before["attribution_status"], after["attribution_status"]) == ("incomplete", "complete")
    assert before["cost_usd"] == after["cost_usd"] > 0  # the stored call's cost, both sides
    assert before["input_tokens"] == after["input_tokens"] == 1700
    assert second.carried == {"team": 1} and second.folded == {"response_id": 1}
    # A third span brings nothing new: no change.
    assert dedup.settle(_batch(_call(3, 3, team="payments"))).changes == {}


def _proposal(trace: int, span: int, **dims: str) -> pa.Table:
    batch = _batch(_call(trace, span, **dims))
    column = batch.schema.get_field_index("attribution_change")
    return batch.set_column(column, "attribution_change", pa.array(["proposed"]))


def test_a_proposal_from_late_ancestors_becomes_a_change_against_the_call_now() -> None:
    dedup, _ = _dedup()
    dedup.settle(_batch(_call(1, 1, feature="receipts")))
    settled = dedup.settle(_proposal(1, 1, team="payments"))
    span = f"{1:016x}"
    assert _changes(settled.table) == [
        (span, "before", None, "receipts", "late_ancestor"),
        (span, "after", "payments", "receipts", "late_ancestor"),
    ]
    # The next change starts from the last one's after.
    settled = dedup.settle(_proposal(1, 1, team="payments-eu", feature="receipts"))
    assert _changes(settled.table)[0][1:4] == ("before", "payments", "receipts")
    assert settled.table.num_rows == 2  # the proposal itself is never stored


def test_proposals_of_unknown_calls_or_without_change_are_dropped() -> None:
    dedup, _ = _dedup()
    dedup.settle(_batch(_call(1, 1, team="payments")))
    settled = dedup.settle(pa.concat_tables([_proposal(9, 9, team="x"), _proposal(1, 1, team="payments")]))
    assert settled.table.num_rows == 0
    assert settled.dropped_proposals == 2


def test_change_rows_have_the_record_schema_and_every_dimension() -> None:
    dedup, _ = _dedup()
    dedup.settle(_batch(_call(1, 1)))
    settled = dedup.settle(_proposal(1, 1, **{d: f"v-{d}" for d in ATTRIBUTION_DIMENSIONS}))
    assert settled.table.schema == RECORD_SCHEMA
    after = settled.table.to_pylist()[1]
    assert [after[d] for d in ATTRIBUTION_DIMENSIONS] == [f"v-{d}" for d in ATTRIBUTION_DIMENSIONS]
    assert calls_only(settled.table).num_rows == 0


def test_one_response_id_in_one_trace_folds_across_services() -> None:
    """An application and the LLM gateway it calls both report the gateway's call."""
    dedup, _ = _dedup()
    marked = dedup.settle(_batch(_call(1, 1, service="gateway"), _call(1, 2, service="checkout")))
    assert marked.folded == {"response_id": 1}
    assert dedup.settle(_batch(_call(2, 3, service="search"))).folded == {}  # other trace, other service
