"""OTLP attribute values: decoding to Python, rendering as text, reading token counts.

An OTLP ``AnyValue`` holds exactly one of string, bool, int, double, bytes, array or kvlist.
:func:`decode_attributes` turns a repeated ``KeyValue`` field into a plain ``dict`` in one pass
(the only per-attribute Python work the normalizer does); :func:`attribute_text` renders a decoded
value the way the lake's ``attributes`` map stores it; :func:`read_count` reads a token count
whatever way the sender encoded it (int, integral double, numeric string).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any, Final

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = [
    "MAX_TOKEN_COUNT",
    "InvalidCountError",
    "attribute_text",
    "decode_any",
    "decode_attributes",
    "read_count",
]

MAX_TOKEN_COUNT: Final = 1_000_000_000
"""Largest token count accepted for one call. The largest context windows are around ten million
tokens; a count above a billion is a broken sender, and pricing it would poison every sum."""


class InvalidCountError(ValueError):
    """A token count that cannot be trusted; ``reason`` is the rejection reason reported."""

    def __init__(self, reason: str, key: str, value: object) -> None:
        super().__init__(f"{key}={value!r}: {reason}")
        self.reason = reason


def decode_any(value: AnyValue) -> Any:
    """One ``AnyValue`` as a Python value: str, bool, int, float, bytes, list, dict or None."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bool_value":
        return value.bool_value
    if which == "array_value":
        return [decode_any(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: decode_any(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return value.bytes_value
    return None


def decode_attributes(attributes: Iterable[KeyValue]) -> dict[str, Any]:
    """A repeated ``KeyValue`` field as a dict; a repeated key keeps its last value."""
    decoded: dict[str, Any] = {}
    for kv in attributes:
        value = kv.value
        # Most attributes are non-empty strings, then non-zero ints: reading the field settles
        # them in one call, where asking which field is set first would cost a second call on
        # every attribute. Empty strings, zeros and the other kinds take the general path.
        text = value.string_value
        if text:
            decoded[kv.key] = text
            continue
        number = value.int_value
        decoded[kv.key] = number if number else decode_any(value)
    return decoded


def _json_default(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


_JSON_MEMO: dict[tuple[Any, ...], str] = {}
_JSON_MEMO_LIMIT: Final = 4096


def _array_text(value: list[Any]) -> str:
    # Arrays of scalars repeat across spans (finish reasons, stop sequences): memoize their JSON.
    try:
        key = tuple(value)
        cached = _JSON_MEMO.get(key)
    except TypeError:  # nested arrays or maps are not hashable
        key, cached = None, None
    if cached is not None:
        return cached
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    if key is not None:
        if len(_JSON_MEMO) >= _JSON_MEMO_LIMIT:
            _JSON_MEMO.clear()
        _JSON_MEMO[key] = text
    return text


def attribute_text(value: Any) -> str:
    """How a decoded value is stored in the ``attributes`` map.

    Strings as they are; ints and doubles as their decimal text; bools as ``true``/``false``;
    bytes as lower-case hex; arrays and kvlists as compact JSON; an empty value as ``""``.
    """
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return repr(value)
    if kind is bytes:
        return value.hex()  # type: ignore[no-any-return]
    if value is None:
        return ""
    if kind is list:
        return _array_text(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def read_count(value: Any, key: str) -> int:
    """A token count from an attribute value; raise :class:`InvalidCountError` when it is not one.

    Accepted: int; a double with an integral value (JavaScript SDKs send every number that way);
    a string holding an integer or an integral decimal (OTLP/JSON senders, hand-made attributes).
    Rejected: bools, fractional or non-finite numbers, other strings, negative counts and counts
    above :data:`MAX_TOKEN_COUNT`.
    """
    kind = type(value)
    if kind is int:
        count = value
    elif kind is float:
        if not math.isfinite(value) or not value.is_integer():
            raise InvalidCountError("invalid_token_count", key, value)
        count = int(value)
    elif kind is str:
        text = value.strip()
        try:
            count = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise InvalidCountError("invalid_token_count", key, value) from None
            if not math.isfinite(number) or not number.is_integer():
                raise InvalidCountError("invalid_token_count", key, value) from None
            count = int(number)
    else:  # bool, bytes, arrays, maps, empty values
        raise InvalidCountError("invalid_token_count", key, value)
    if count < 0:
        raise InvalidCountError("negative_token_count", key, value)
    if count > MAX_TOKEN_COUNT:
        raise InvalidCountError("absurd_token_count", key, value)
    return count  # type: ignore[no-any-return]
