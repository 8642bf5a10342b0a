"""Decompress HTTP request bodies without letting a small body become a huge one.

A few kilobytes of gzip can inflate to gigabytes ("zip bomb"), so the output is produced with
``zlib``'s ``max_length`` and the request is refused as too large as soon as the cap is passed,
never after. ``deflate`` arrives in two shapes: zlib-wrapped (RFC 1950, what HTTP means by
``deflate`` and what the OpenTelemetry Python exporter sends) and raw deflate (RFC 1951, which some
clients send); the zlib header tells them apart.
"""

from __future__ import annotations

import zlib
from typing import Final

from otelcost.receiver.errors import MalformedRequestError, RequestTooLargeError, UnsupportedMediaTypeError

__all__ = ["SUPPORTED_ENCODINGS", "content_coding", "decompress"]

SUPPORTED_ENCODINGS: Final = ("identity", "gzip", "deflate")
_ALIASES: Final = {"": "identity", "x-gzip": "gzip"}

_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS
_ZLIB_WBITS: Final = zlib.MAX_WBITS
_RAW_DEFLATE_WBITS: Final = -zlib.MAX_WBITS
_CHUNK: Final = 1 << 20


def content_coding(header: str | None) -> str:
    """The coding named by a ``Content-Encoding`` header (absent means identity).

    Raises ``UnsupportedMediaTypeError`` for anything but identity, gzip and deflate, before the
    body is read.
    """
    coding = (header or "").strip().lower()
    coding = _ALIASES.get(coding, coding)
    if coding not in SUPPORTED_ENCODINGS:
        raise UnsupportedMediaTypeError(
            f"unsupported Content-Encoding {header!r}: use one of {', '.join(SUPPORTED_ENCODINGS)}"
        )
    return coding


def decompress(body: bytes, coding: str, *, max_size: int) -> bytes:
    """Undo ``coding`` (from :func:`content_coding`) on ``body``; the result is at most ``max_size`` bytes.

    Raises ``RequestTooLargeError`` past the cap and ``MalformedRequestError`` for a corrupt or
    truncated stream.
    """
    if coding == "identity":
        if len(body) > max_size:
            raise _too_large(max_size)
        return body
    if coding == "gzip":
        return _inflate(body, _GZIP_WBITS, "gzip", max_size)
    if coding == "deflate":
        return _inflate(
            body, _ZLIB_WBITS if _has_zlib_header(body) else _RAW_DEFLATE_WBITS, "deflate", max_size
        )
    raise ValueError(f"unknown coding {coding!r}: pass the result of content_coding()")


def _has_zlib_header(body: bytes) -> bool:
    # RFC 1950: CM = 8 (deflate), CINFO <= 7, and the two header bytes are a multiple of 31.
    return len(body) >= 2 and body[0] & 0x0F == 8 and body[0] >> 4 <= 7 and (body[0] << 8 | body[1]) % 31 == 0


def _inflate(body: bytes, wbits: int, name: str, max_size: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    parts: list[bytes] = []
    size = 0
    pending = body
    try:
        while True:
            # Ask for one byte more than still allowed: getting it proves the body is too large.
            part = inflater.decompress(pending, min(_CHUNK, max_size - size + 1))
            size += len(part)
            if size > max_size:
                raise _too_large(max_size)
            parts.append(part)
            pending = inflater.unconsumed_tail
            if inflater.eof or (not pending and not part):
                break
        if not inflater.eof:
            raise MalformedRequestError(f"invalid {name} body: the compressed stream is truncated")
    except zlib.error as exc:
        raise MalformedRequestError(f"invalid {name} body: {exc}") from exc
    # Trailing bytes after the end of the stream (a second gzip member, or garbage) are ignored, as
    # most servers do; concatenated gzip members are rare enough not to be worth a loop here.
    return b"".join(parts)


def _too_large(max_size: int) -> RequestTooLargeError:
    return RequestTooLargeError(
        f"request body is larger than {max_size} bytes after decompression (receiver max_request_size)"
    )
