"""The messages between the serve process and its receiver workers, over one socket pair each.

A frame is a JSON header (always an object with a ``type``) and an optional binary payload::

    uint32 header length | uint32 payload length | header (UTF-8 JSON) | payload

Big-endian lengths. The payload is only used for a priced batch (the Arrow IPC bytes that become
the spool record as they are), so batches never pass through JSON. Both ends are the same
otelcost installation (the serve process starts the workers), so there is no version field.

Messages (``type``):

=================  ==========  ===============================================================
``config``         to worker   the whole configuration (``Config.model_dump(mode="json")``)
``ready``          to serve    receivers are listening
``failed``         to serve    the worker could not start (``error``: why); it exits
``batch``          to serve    one request's priced rows (payload) and counts; has an ``id``
``result``         to worker   the batch is durable: ``rejected`` spans and ``message``
``refused``        to worker   the batch was not taken: ``kind`` (``transient``, ``permanent``,
                               ``internal``), ``message``, ``retry_after``
``stats``          to serve    cumulative receiver and normalizer counters of the worker
``stop``           to worker   stop accepting, finish requests in flight, exit
=================  ==========  ===============================================================
"""

from __future__ import annotations

import asyncio
import json
import struct
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Frame", "FrameError", "read_frame", "write_frame"]

_LENGTHS: Final = struct.Struct(">II")
MAX_HEADER_BYTES: Final = 16 * 2**20
MAX_PAYLOAD_BYTES: Final = 2**31
"""A batch is at most a request's worth of rows (a request is capped by ``max_request_size``)."""


class FrameError(Exception):
    """The other end sent something that is not a frame: the link is closed."""


@dataclass(frozen=True, slots=True)
class Frame:
    header: dict[str, Any]
    payload: bytes = b""

    @property
    def type(self) -> str:
        return str(self.header.get("type", ""))


async def read_frame(reader: asyncio.StreamReader) -> Frame | None:
    """The next frame, or None at a clean end of the stream (the other process is gone)."""
    try:
        prefix = await reader.readexactly(_LENGTHS.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise FrameError("the stream ended inside a frame") from exc
        return None
    header_size, payload_size = _LENGTHS.unpack(prefix)
    if header_size > MAX_HEADER_BYTES or payload_size > MAX_PAYLOAD_BYTES:
        raise FrameError(f"frame too large: header {header_size} bytes, payload {payload_size} bytes")
    try:
        header = json.loads(await reader.readexactly(header_size))
        payload = await reader.readexactly(payload_size) if payload_size else b""
    except asyncio.IncompleteReadError as exc:
        raise FrameError("the stream ended inside a frame") from exc
    except ValueError as exc:
        raise FrameError(f"a frame header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise FrameError("a frame header is not a JSON object")
    return Frame(header, payload)


def write_frame(writer: asyncio.StreamWriter, header: dict[str, Any], payload: Any = b"") -> None:
    """Queue one frame (``payload``: bytes or a buffer); the caller drains when it must."""
    encoded = json.dumps(header, separators=(",", ":")).encode()
    size = memoryview(payload).nbytes
    writer.write(_LENGTHS.pack(len(encoded), size) + encoded)
    if size:
        writer.write(memoryview(payload))
