"""Request body decompression: gzip, both shapes of deflate, and a hard cap against zip bombs."""

from __future__ import annotations

import gzip
import os
import tracemalloc
import zlib

import pytest

from otelcost.receiver.compression import content_coding, decompress
from otelcost.receiver.errors import MalformedRequestError, RequestTooLargeError, UnsupportedMediaTypeError

PAYLOAD = os.urandom(1000) + b"spans " * 5000


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("header", "encode"),
    [
        (None, lambda b: b),
        ("identity", lambda b: b),
        ("gzip", gzip.compress),
        ("GZip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),  # zlib-wrapped: what the OpenTelemetry Python exporter sends
        ("deflate", raw_deflate),  # raw RFC 1951 deflate, sent by some clients
    ],
)
def test_decompresses(header: str | None, encode: object) -> None:
    assert callable(encode)
    body = encode(PAYLOAD)
    assert decompress(body, content_coding(header), max_size=len(PAYLOAD)) == PAYLOAD


@pytest.mark.parametrize("header", ["br", "zstd", "gzip, br", "compress"])
def test_unsupported_codings_are_refused_before_reading(header: str) -> None:
    with pytest.raises(UnsupportedMediaTypeError, match="unsupported Content-Encoding"):
        content_coding(header)


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_a_zip_bomb_stops_at_the_cap(coding: str) -> None:
    bomb_content = bytes(32 * 2**20)  # 32 MiB of zeros ...
    bomb = gzip.compress(bomb_content) if coding == "gzip" else zlib.compress(bomb_content)
    del bomb_content
    assert len(bomb) < 64 * 1024  # ... in a small body
    tracemalloc.start()
    try:
        with pytest.raises(RequestTooLargeError, match="larger than 65536 bytes after decompression"):
            decompress(bomb, coding, max_size=65536)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024  # it stopped near the cap instead of inflating 32 MiB first


def test_exactly_at_the_cap_is_accepted() -> None:
    data = b"x" * 4096
    assert decompress(gzip.compress(data), "gzip", max_size=4096) == data
    with pytest.raises(RequestTooLargeError):
        decompress(gzip.compress(data), "gzip", max_size=4095)
    with pytest.raises(RequestTooLargeError):
        decompress(data, "identity", max_size=4095)


@pytest.mark.parametrize(
    ("coding", "body", "message"),
    [
        ("gzip", b"this is not gzip", "invalid gzip body"),
        ("gzip", gzip.compress(PAYLOAD)[:-100], "truncated"),
        ("deflate", b"\x78\x9c garbage", "invalid deflate body"),
        ("gzip", b"", "truncated"),
    ],
)
def test_corrupt_streams_are_malformed(coding: str, body: bytes, message: str) -> None:
    with pytest.raises(MalformedRequestError, match=message):
        decompress(body, coding, max_size=10 * len(PAYLOAD))
