"""The worker link's frames and the workers' counters, without processes."""

from __future__ import annotations

import asyncio
import struct
from collections import Counter

import pytest

from otelcost.normalize import NormalizerCounters
from otelcost.receiver.stats import ReceiverStats
from otelcost.workers.frames import Frame, FrameError, read_frame, write_frame
from otelcost.workers.stats import WorkerStats


async def _round_trip(frames: list[tuple[dict[str, object], bytes]]) -> list[Frame]:
    server_got: list[Frame] = []
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (frame := await read_frame(reader)) is not None:
            server_got.append(frame)
        writer.close()
        done.set()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    for header, payload in frames:
        write_frame(writer, header, payload)
    await writer.drain()
    writer.close()
    await done.wait()
    server.close()
    return server_got


def test_frames_carry_header_and_payload_in_order() -> None:
    sent: list[tuple[dict[str, object], bytes]] = [
        ({"type": "batch", "id": 1, "dropped": {"not_llm": 3}}, b"\x00arrow\xff" * 1000),
        ({"type": "stop"}, b""),
    ]
    got = asyncio.run(_round_trip(sent))
    assert [(frame.header, frame.payload) for frame in got] == sent


async def _read(data: bytes) -> object:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return await read_frame(reader)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (struct.pack(">II", 10, 0) + b"{}", "ended inside a frame"),
        (struct.pack(">II", 3, 0) + b"[1]", "not a JSON object"),
        (struct.pack(">II", 2, 0) + b"{x", "not JSON"),
        (struct.pack(">II", 2**30, 0), "too large"),
        (b"\x00\x00", "ended inside a frame"),
    ],
)
def test_a_broken_stream_is_a_frame_error_not_a_frame(data: bytes, problem: str) -> None:
    with pytest.raises(FrameError, match=problem):
        asyncio.run(_read(data))


def test_a_clean_end_of_stream_is_none() -> None:
    assert asyncio.run(_read(b"")) is None


def _stats(spans: int, calls: int, memory: int) -> WorkerStats:
    normalizer = NormalizerCounters(
        spans_seen=spans,
        calls=calls,
        dropped=Counter({"not_llm": spans - calls}),
        calls_by_convention=Counter({"gen_ai": calls}),
        trace_memory_spans=memory,
    )
    return WorkerStats({"grpc": ReceiverStats(Counter({"accepted": 2}), spans)}, normalizer)


def test_worker_stats_survive_json_and_sum_with_retired_workers_kept() -> None:
    first = WorkerStats.from_json(_stats(10, 4, 7).to_json())
    assert first == _stats(10, 4, 7)
    total = WorkerStats()
    retired = WorkerStats()
    retired.add(first, gauges=False)  # a worker that died: counters kept, its gauge gone
    total.add(retired)
    total.add(_stats(5, 5, 3))
    assert total.normalizer.spans_seen == 15
    assert total.normalizer.calls_by_convention == Counter({"gen_ai": 9})
    assert total.normalizer.dropped == Counter({"not_llm": 6})
    assert total.normalizer.trace_memory_spans == 3
    assert total.receivers["grpc"].requests == Counter({"accepted": 4})
    assert total.receivers["grpc"].spans == 15
