"""The same (trace_id, span_id) never counts twice; the index stays bounded."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from otelcost.budgets.dedup import DedupIndex, span_keys

NS = 1_000_000_000


def keys(pairs: list[tuple[str, str]]) -> np.ndarray:
    traces, spans = zip(*pairs, strict=True)
    return span_keys(pa.chunked_array([pa.array(traces)]), pa.chunked_array([pa.array(spans)]))


def test_keys_separate_ids_that_a_naive_xor_would_merge() -> None:
    # Sequential ids, as some test SDKs make them: trace 1/span 2 and trace 2/span 1 differ.
    pairs = [(f"{t:032x}", f"{s:016x}") for t in range(1, 60) for s in range(1, 60)]
    assert len(set(keys(pairs).tolist())) == len(pairs)


def test_keys_ignore_hex_case_and_chunking() -> None:
    trace, span = "0AF7651916CD43DD8448EB211C80319C", "B7AD6B7169203331"
    lower = keys([(trace.lower(), span.lower())])
    upper = keys([(trace, span)])
    chunked = span_keys(
        pa.chunked_array([pa.array(["x" * 32]), pa.array([trace.lower()])]).slice(1),
        pa.chunked_array([pa.array(["y" * 16]), pa.array([span.lower()])]).slice(1),
    )
    assert lower.tolist() == upper.tolist() == chunked.tolist()


def test_ids_that_are_not_hex_still_get_distinct_keys() -> None:
    odd = keys([("not-hex", "1"), ("not-hex", "2"), ("abc", "1")])
    assert len(set(odd.tolist())) == 3
    assert keys([("not-hex", "1")]).tolist() == odd[:1].tolist()


def test_duplicates_within_and_across_batches_are_dropped() -> None:
    index = DedupIndex(horizon_ns=600 * NS, max_ids=1_000_000)
    first = keys([("a" * 32, "1" * 16), ("a" * 32, "2" * 16), ("a" * 32, "1" * 16)])
    assert index.admit(first, 100 * NS).tolist() == [True, True, False]
    again = keys([("a" * 32, "2" * 16), ("b" * 32, "1" * 16)])
    assert index.admit(again, 101 * NS).tolist() == [False, True]
    assert index.duplicates == 2
    assert len(index) == 3


def test_sealed_generations_are_searched_and_expire_after_the_horizon() -> None:
    index = DedupIndex(horizon_ns=600 * NS, max_ids=1_000_000)
    old = keys([("c" * 32, f"{i:016x}") for i in range(100)])
    index.admit(old, 0)
    # Five minutes later: a new generation; the old keys are sealed (sorted array) and found.
    assert not index.admit(old[:10], 300 * NS).any()
    # Past the horizon the old generation is forgotten.
    assert index.admit(old[:10], 2000 * NS).all()
    assert len(index) == 10


def test_the_index_is_bounded_and_evicts_oldest_first() -> None:
    index = DedupIndex(horizon_ns=3600 * NS, max_ids=1000)
    for minute in range(10):
        batch = keys([(f"{minute:032x}", f"{i:016x}") for i in range(400)])
        index.admit(batch, minute * 240 * NS)
    assert len(index) <= 1000
    assert index.evicted >= 3000
    newest = keys([("9".zfill(32), f"{i:016x}") for i in range(400)])
    assert not index.admit(newest, 9 * 240 * NS).any()


def test_seeded_keys_are_recognised() -> None:
    index = DedupIndex(horizon_ns=900 * NS, max_ids=1_000_000)
    seeded = keys([("d" * 32, f"{i:016x}") for i in range(5)])
    index.seed(seeded, 1000 * NS)
    assert index.admit(seeded, 1001 * NS).tolist() == [False] * 5
