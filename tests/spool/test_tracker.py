"""The checkpoint follows the contiguous prefix of seqs the lake has made durable."""

from __future__ import annotations

import threading

from otelcost.spool.tracker import CheckpointTracker


def test_only_the_contiguous_prefix_is_checkpointed() -> None:
    tracker = CheckpointTracker(10)
    assert tracker.mark([12, 13]) is None  # 11 is not durable yet
    assert tracker.waiting == 2
    assert tracker.mark([11]) == 13
    assert tracker.mark([9, 10, 13]) is None  # at or below the prefix: nothing moves
    assert tracker.mark([15]) is None
    assert tracker.mark([14]) == 15
    assert tracker.prefix == 15 and tracker.waiting == 0


def test_marks_from_several_threads() -> None:
    tracker = CheckpointTracker()
    seqs = list(range(1, 4001))

    def mark(part: list[int]) -> None:
        for seq in part:
            tracker.mark([seq])

    threads = [threading.Thread(target=mark, args=(seqs[i::4][::-1],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tracker.prefix == 4000
