"""The durable sink contract (``otelcost/stages.py``): the pipeline drives every sink alike.

Each of the pipeline's sinks (a real ``LakeWriter`` over a temporary lake, the budget evaluator
through ``DerivedSink``) is wrapped in a recorder that passes every call on, so the tests see
exactly how the pipeline drives them on a live commit, on a refusal, and on the replay after a
crash, and that the real lake and budgets come out right.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pytest

from otelcost.config import LakeConfig
from otelcost.errors import TransientIngestError
from otelcost.lake.layout import partition_dir
from otelcost.lake.recovery import read_partition_seqs
from otelcost.lake.seqs import SeqSet
from otelcost.lake.writer import BUFFER_BOUND_FACTOR, LakeWriter
from otelcost.pipeline import Pipeline
from otelcost.stages import DerivedSink, DurableSink, Sink
from tests.e2e.test_spool_replay import (
    abandon,
    budget_matches_lake,
    export,
    lake_figures,
    make_request,
    pipeline_config,
)
from tests.lake.rows import DEFAULT_DAY, make_calls

pytestmark = pytest.mark.slow

Call = tuple[str, str, int, int | None]
"""(sink, method, rows, seq)."""


@dataclass
class Journal:
    calls: list[Call] = field(default_factory=list)
    appended: dict[tuple[str, int | None], list[str]] = field(default_factory=dict)
    """(sink, seq) -> the span ids appended with that seq."""

    def of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call[1] == method]


class Recording:
    """A DurableSink that records each call and passes it on to the real one."""

    def __init__(self, inner: DurableSink, name: str, journal: Journal) -> None:
        self.inner, self.name, self.journal = inner, name, journal

    def _note(self, method: str, rows: int = 0, seq: int | None = None) -> None:
        self.journal.calls.append((self.name, method, rows, seq))

    def start(self) -> None:
        self.inner.start()

    def shutdown(self) -> None:
        self.inner.shutdown()

    def reserve(self, rows: int) -> None:
        self._note("reserve", rows)
        self.inner.reserve(rows)

    def release(self, rows: int) -> None:
        self._note("release", rows)
        self.inner.release(rows)

    def append(self, batch: pa.Table, *, seq: int | None) -> None:
        self._note("append", batch.num_rows, seq)
        self.journal.appended.setdefault((self.name, seq), []).extend(batch["span_id"].to_pylist())
        self.inner.append(batch, seq=seq)

    @property
    def flush_due(self) -> bool:
        return self.inner.flush_due

    def flush(self) -> int:
        self._note("flush")
        return self.inner.flush()

    def unrecorded(self, batch: pa.Table, *, seq: int) -> pa.Table:
        part = self.inner.unrecorded(batch, seq=seq)
        self._note("unrecorded", part.num_rows, seq)
        return part


def recorded(pipeline: Pipeline) -> Journal:
    """Wrap every sink of a pipeline (before its start) in a recorder; the sinks' journal."""
    journal = Journal()
    names = ["lake", "budgets", *(f"extra{i}" for i in range(len(pipeline.sinks) - 2))]
    wrapped = (Recording(sink, name, journal) for sink, name in zip(pipeline.sinks, names, strict=True))
    pipeline.sinks = tuple(wrapped)
    return journal


def test_the_lake_writer_and_the_evaluator_are_durable_sinks(tmp_path: Path) -> None:
    pipeline = Pipeline(pipeline_config(tmp_path / "data"))
    assert pipeline.sinks[0] is pipeline.lake
    assert isinstance(pipeline.lake, DurableSink) and isinstance(pipeline.lake, Sink)
    [budgets] = pipeline.sinks[1:]
    assert isinstance(budgets, DerivedSink) and budgets.sink is pipeline.evaluator
    assert budgets.source is pipeline.lake
    assert all(isinstance(sink, DurableSink) for sink in pipeline.sinks)


def test_a_commit_reserves_in_every_sink_then_spools_then_appends_to_every_sink(tmp_path: Path) -> None:
    pipeline = Pipeline(pipeline_config(tmp_path / "data"))
    journal = recorded(pipeline)
    pipeline.start()
    try:
        for spans in (3, 5):
            export(pipeline, make_request(spans))
        export(pipeline, make_request(0))  # no LLM call: no record, nothing for the sinks
        assert journal.calls == [
            ("lake", "reserve", 3, None),
            ("budgets", "reserve", 3, None),
            ("lake", "append", 3, 1),
            ("budgets", "append", 3, 1),
            ("lake", "reserve", 5, None),
            ("budgets", "reserve", 5, None),
            ("lake", "append", 5, 2),
            ("budgets", "append", 5, 2),
        ]
        assert pipeline.spool is not None and pipeline.spool.last_seq == 2
        assert pipeline.counters_snapshot().requests == 3
    finally:
        pipeline.shutdown()


def test_with_the_spool_off_a_commit_appends_without_a_seq(tmp_path: Path) -> None:
    pipeline = Pipeline(pipeline_config(tmp_path / "data", spool={"enabled": False}))
    journal = recorded(pipeline)
    pipeline.start()
    try:
        export(pipeline, make_request(2))
    finally:
        pipeline.shutdown()
    lake_calls = [call[1:] for call in journal.calls if call[0] == "lake"]
    assert lake_calls == [("reserve", 2, None), ("append", 2, None)]
    assert lake_figures(pipeline.config.lake_dir)["n"] == 2


class Refusing:
    """A durable sink whose buffer is always full."""

    def start(self) -> None: ...
    def shutdown(self) -> None: ...

    def reserve(self, rows: int) -> None:
        raise TransientIngestError("full", retry_after=1.0)

    def release(self, rows: int) -> None:
        raise AssertionError("a refused reservation is not given back")

    def append(self, batch: pa.Table, *, seq: int | None) -> None:
        raise AssertionError("never appended after a refusal")

    flush_due = False

    def flush(self) -> int:
        return 0

    def unrecorded(self, batch: pa.Table, *, seq: int) -> pa.Table:
        return batch


def test_a_refusal_by_any_sink_comes_before_the_append_and_gives_back_the_other_reservations(
    tmp_path: Path,
) -> None:
    config = pipeline_config(tmp_path / "data", lake={"flush_interval": "1h", "max_buffer_rows": 10})
    pipeline = Pipeline(config)
    refusing: DurableSink = Refusing()
    pipeline.sinks = (*pipeline.sinks, refusing)
    journal = recorded(pipeline)
    pipeline.start()
    try:
        with pytest.raises(TransientIngestError, match="full"):
            export(pipeline, make_request(4))
        assert journal.calls == [
            ("lake", "reserve", 4, None),
            ("budgets", "reserve", 4, None),
            ("extra0", "reserve", 4, None),
            ("lake", "release", 4, None),
            ("budgets", "release", 4, None),
        ]
        assert pipeline.spool is not None and pipeline.spool.last_seq == 0  # never appended
        assert pipeline.counters_snapshot().refused_requests == 1
        pipeline.lake.reserve(BUFFER_BOUND_FACTOR * 10)  # the lake's room is all free again
    finally:
        pipeline.shutdown()


def test_the_replay_drives_the_sinks_as_the_commit_did_minus_what_the_lake_holds(tmp_path: Path) -> None:
    config = pipeline_config(tmp_path / "data")
    first = Pipeline(config)
    live = recorded(first)
    first.start()
    first.lake._on_seqs_durable = None  # the crash comes before any checkpoint is written
    for spans in (3, 4, 2):
        export(first, make_request(spans))
    first.lake.flush()  # seqs 1..3 in Parquet, the checkpoint still 0
    for spans in (5, 1):
        export(first, make_request(spans))  # seqs 4, 5: only in the spool and the buffer
    abandon(first)

    second = Pipeline(config)
    replay = recorded(second)
    second.start()
    try:
        asked = [(sink, rows, seq) for sink, _, rows, seq in replay.of("unrecorded")]
        assert asked == [
            (sink, rows, seq)
            for seq, rows in [(1, 0), (2, 0), (3, 0), (4, 5), (5, 1)]
            for sink in ("lake", "budgets")
        ]
        # The records the lake lacked are appended to every sink as the live commit appended
        # them: same seqs, same rows, in the same order; nothing is reserved for them.
        assert replay.of("append") == [call for call in live.of("append") if call[3] in (4, 5)]
        for key in [("lake", 4), ("lake", 5), ("budgets", 4), ("budgets", 5)]:
            assert replay.appended[key] == live.appended[key]
        assert replay.of("reserve") == []
        assert replay.calls[-2:] == [("lake", "flush", 0, None), ("budgets", "flush", 0, None)]
        assert second.replayed.records == 2 and second.replayed.records_in_lake == 3
        assert second.spool is not None and second.spool.checkpointed_seq == 5
        figures = lake_figures(config.lake_dir)
        assert figures["n"] == figures["ids"] == 3 + 4 + 2 + 5 + 1
        live_totals, lake_totals = budget_matches_lake(second, config.lake_dir)
        assert live_totals == lake_totals
    finally:
        second.shutdown()


def test_a_derived_sink_lacks_what_its_source_lacks(tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    config = LakeConfig.model_validate({"flush_interval": "1h", "max_buffer_rows": 10})
    writer = LakeWriter(lake_dir=lake_dir, config=config)
    consumed: list[int] = []

    class Counting:
        def start(self) -> None: ...
        def shutdown(self) -> None: ...
        def consume(self, batch: pa.Table) -> None:
            consumed.append(batch.num_rows)

    derived = DerivedSink(Counting(), source=writer)
    writer.start()
    try:
        writer.append(make_calls(3, seed=1), seq=1)
        writer.flush()
        assert read_partition_seqs(lake_dir, DEFAULT_DAY) == SeqSet.of([1])
        held, fresh = make_calls(3, seed=1), make_calls(2, seed=2)
        assert derived.unrecorded(held, seq=1).num_rows == writer.unrecorded(held, seq=1).num_rows == 0
        assert derived.unrecorded(fresh, seq=2).num_rows == writer.unrecorded(fresh, seq=2).num_rows == 2
        derived.reserve(10**9)  # never refuses: the room is the source's to give
        derived.append(fresh, seq=2)
        assert consumed == [2]
        assert derived.flush() == 0 and not derived.flush_due
    finally:
        writer.shutdown()
    assert len(list(partition_dir(lake_dir, DEFAULT_DAY).glob("*.parquet"))) == 1


def test_a_replayed_record_is_appended_whatever_the_bound_and_makes_the_lake_due(tmp_path: Path) -> None:
    config = LakeConfig.model_validate({"flush_interval": "1h", "max_buffer_rows": 10})
    writer = LakeWriter(lake_dir=tmp_path / "lake", config=config)  # no flush thread: the replay flushes
    try:
        big = make_calls(BUFFER_BOUND_FACTOR * 10 + 5)
        writer.append(big, seq=1)  # a replayed record: accepted before the crash, needs no reservation
        assert writer.buffered_rows == big.num_rows and writer.flush_due
        with pytest.raises(TransientIngestError, match="buffer is full"):
            writer.reserve(1)  # new traffic is refused until the replay flushes
        assert writer.flush() == big.num_rows and not writer.flush_due
    finally:
        writer.shutdown()
