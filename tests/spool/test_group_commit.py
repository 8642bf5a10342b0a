"""Group commit: concurrent appends share fsyncs, and an ack never comes before its fsync."""

from __future__ import annotations

import asyncio
import threading
import time

from tests.waiting import wait_until_async

from .conftest import SpoolFactory, payload_for


def test_concurrent_async_appends_share_fsyncs(open_spool: SpoolFactory) -> None:
    spool = open_spool()

    async def append_all() -> list[int]:
        return await asyncio.gather(*(spool.append(payload_for(key, 4096)) for key in range(100)))

    seqs = asyncio.run(append_all())
    assert sorted(seqs) == list(range(1, 101))
    # Without group commit this would be 100 fsyncs. With it, appends written while an fsync runs
    # share the next one; how many share depends on thread scheduling (2 to 17 in 8 runs here).
    assert spool.commits <= 30, spool.stats()
    assert spool.fsyncs <= spool.commits + 1, spool.stats()  # + the first segment's directory entry


def test_concurrent_threads_share_fsyncs(open_spool: SpoolFactory) -> None:
    spool = open_spool()
    results: list[int] = []
    lock = threading.Lock()

    def worker(worker_id: int) -> None:
        for i in range(25):
            seq = spool.append_sync(payload_for(worker_id * 100 + i, 4096))
            with lock:
                results.append(seq)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == list(range(1, 401))
    assert spool.commits < 400 / 2, spool.stats()
    assert [r.seq for r in spool.replay()] == list(range(1, 401))


def test_commit_interval_gathers_appends_into_one_fsync(open_spool: SpoolFactory) -> None:
    spool = open_spool(commit_interval="60ms")

    async def staggered(key: int) -> tuple[int, float]:
        await asyncio.sleep(key * 0.002)  # the appends arrive spaced out, all within the window
        started = time.perf_counter()
        seq = await spool.append(payload_for(key))
        return seq, time.perf_counter() - started

    async def run() -> list[tuple[int, float]]:
        return await asyncio.gather(*(staggered(key) for key in range(10)))

    outcomes = asyncio.run(run())
    assert sorted(seq for seq, _ in outcomes) == list(range(1, 11))
    assert spool.commits <= 2, spool.stats()
    assert outcomes[0][1] >= 0.05  # the first append waited for the window to close


def test_an_ack_comes_only_after_its_fsync(open_spool: SpoolFactory) -> None:
    spool = open_spool()
    for key in range(20):
        before = spool.fsyncs
        spool.append_sync(payload_for(key))
        assert spool.fsyncs > before


def test_a_cancelled_appender_leaves_a_working_spool(open_spool: SpoolFactory) -> None:
    spool = open_spool(commit_interval="20ms")

    async def run() -> int:
        task = asyncio.create_task(spool.append(b"abandoned"))
        await wait_until_async(lambda: spool.last_seq == 1, poll=0, what="the record to be written")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return await spool.append(b"kept")

    assert asyncio.run(run()) == 2
    # The cancelled caller got no ack, but its record was written and stays in the log.
    assert [r.payload for r in spool.replay()] == [b"abandoned", b"kept"]
