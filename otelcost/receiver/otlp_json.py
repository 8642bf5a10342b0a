"""OTLP/JSON: decode ``ExportTraceServiceRequest`` bodies, encode ``ExportTraceServiceResponse``.

OTLP/JSON is the proto3 JSON mapping with deviations (``opentelemetry-proto``
``docs/specification.md``, "JSON Protobuf Encoding"):

* ``traceId``, ``spanId``, ``parentSpanId`` (and the ids of links) are case-insensitive **hex**
  strings, not base64. ``google.protobuf.json_format`` does not know this and silently
  base64-decodes a 32-digit hex trace id into 24 bytes of garbage, which is why this module exists.
* Enums are integers. (Enum *names* are forbidden for senders; like the Collector we accept them.)
* Keys are lowerCamelCase; fields with unknown names are ignored. (The proto field names,
  ``trace_id``, are accepted too, as the Collector does.)
* 64-bit integers may be JSON numbers or decimal strings.

The decoder is compiled once from the protobuf descriptors, so every field of the installed
``opentelemetry-proto`` version is understood, and it fills the message directly. That is about
ten times faster than ``json_format.ParseDict``, which walks the descriptors for every value.
Errors name the JSON path of the offending value, for example
``resourceSpans[0].scopeSpans[0].spans[2].traceId: expected 32 hex digits (16 bytes), got 'abc'``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from typing import Any, Final

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from otelcost.receiver.errors import MalformedRequestError

__all__ = ["decode_export_request", "encode_export_request", "encode_export_response"]

_ID_LENGTHS: Final = {"trace_id": 16, "span_id": 8, "parent_span_id": 8}
"""Bytes fields that OTLP/JSON writes as hex, wherever they occur, and their lengths in bytes."""


class _JsonError(Exception):
    """A decoding problem; ``path`` grows as the error travels up to the document root."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str | int] = []

    def within(self, step: str | int) -> _JsonError:
        self.path.append(step)
        return self

    def dotted_path(self) -> str:
        text = ""
        for step in reversed(self.path):
            text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
        return text


_Setter = Callable[[Any, Any], None]
_Table = dict[str, _Setter]


def decode_export_request(body: bytes) -> ExportTraceServiceRequest:
    """Decode an OTLP/JSON request body; raise ``MalformedRequestError`` saying where it is wrong."""
    try:
        document = json.loads(body)
    except UnicodeDecodeError as exc:
        raise MalformedRequestError(f"invalid OTLP/JSON: the body is not UTF-8 text ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise MalformedRequestError(
            f"invalid OTLP/JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:
        raise MalformedRequestError("invalid OTLP/JSON: the document is nested too deeply") from exc
    except ValueError as exc:  # e.g. an integer literal over CPython's 4,300-digit conversion limit
        raise MalformedRequestError(f"invalid OTLP/JSON: {exc}") from exc
    request = ExportTraceServiceRequest()
    try:
        _decode_message(request, document, _REQUEST_TABLE)
    except _JsonError as exc:
        path = exc.dotted_path()
        where = f"{path}: " if path else ""
        raise MalformedRequestError(f"invalid OTLP/JSON: {where}{exc.message}", field=path) from exc
    except RecursionError as exc:
        raise MalformedRequestError("invalid OTLP/JSON: values are nested too deeply") from exc
    return request


def encode_export_request(request: ExportTraceServiceRequest) -> bytes:
    """Encode a request as OTLP/JSON (hex ids, integer enums); for tools and tests, not a hot path."""
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    _hex_ids(document)
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def encode_export_response(response: ExportTraceServiceResponse) -> bytes:
    """Encode a response as OTLP/JSON: ``{}``, or ``{"partialSuccess": {...}}`` when it is set.

    Both partial-success fields are always written when ``partialSuccess`` is present;
    ``rejectedSpans`` is a decimal string, as proto3 JSON writes 64-bit integers.
    """
    if not response.HasField("partial_success"):
        return b"{}"
    partial = response.partial_success
    document = {
        "partialSuccess": {
            "rejectedSpans": str(partial.rejected_spans),
            "errorMessage": partial.error_message,
        }
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


# -- decoding ---------------------------------------------------------------------------------


def _decode_message(message: Message, value: Any, table: _Table) -> None:
    if not isinstance(value, dict):
        raise _JsonError(f"expected a JSON object, got {_describe(value)}")
    for key, item in value.items():
        setter = table.get(key)
        if setter is None or item is None:  # unknown field, or null meaning "default"
            continue
        try:
            setter(message, item)
        except _JsonError as exc:
            raise exc.within(key) from None


_TABLES: dict[str, _Table] = {}


def _table_for(descriptor: Descriptor) -> _Table:
    """Setters by JSON key (lowerCamelCase and proto name) for one message type, built once."""
    table = _TABLES.get(descriptor.full_name)
    if table is not None:
        return table
    table = {}
    _TABLES[descriptor.full_name] = table  # registered first: AnyValue and KeyValue nest each other
    for field in descriptor.fields:
        setter = _setter_for(field)
        table[field.json_name] = setter
        table[field.name] = setter
    return table


def _setter_for(field: FieldDescriptor) -> _Setter:
    name = field.name
    repeated = field.is_repeated
    sub_type = field.message_type
    if sub_type is not None:
        if sub_type.GetOptions().map_entry or sub_type.full_name.startswith("google.protobuf."):
            raise RuntimeError(
                f"otlp_json cannot decode {field.full_name}: maps and well-known types are unsupported"
            )
        sub_table = _table_for(sub_type)
        if repeated:
            return _repeated_message_setter(name, sub_table)
        return _message_setter(name, sub_table)
    convert = _converter_for(field)
    if repeated:
        return _repeated_scalar_setter(name, convert)
    return _scalar_setter(name, convert)


def _message_setter(name: str, table: _Table) -> _Setter:
    def set_message(message: Any, value: Any) -> None:
        sub = getattr(message, name)
        sub.SetInParent()
        _decode_message(sub, value, table)

    return set_message


def _repeated_message_setter(name: str, table: _Table) -> _Setter:
    def set_messages(message: Any, value: Any) -> None:
        if not isinstance(value, list):
            raise _JsonError(f"expected a JSON array, got {_describe(value)}")
        container = getattr(message, name)
        for index, item in enumerate(value):
            try:
                _decode_message(container.add(), item, table)
            except _JsonError as exc:
                raise exc.within(index) from None

    return set_messages


def _scalar_setter(name: str, convert: Callable[[Any], Any]) -> _Setter:
    def set_scalar(message: Any, value: Any) -> None:
        try:
            setattr(message, name, convert(value))
        except (ValueError, TypeError) as exc:  # out of range for the field's integer type
            raise _JsonError(f"{value!r} does not fit: {exc}") from None

    return set_scalar


def _repeated_scalar_setter(name: str, convert: Callable[[Any], Any]) -> _Setter:
    def set_scalars(message: Any, value: Any) -> None:
        if not isinstance(value, list):
            raise _JsonError(f"expected a JSON array, got {_describe(value)}")
        container = getattr(message, name)
        for index, item in enumerate(value):
            try:
                container.append(convert(item))
            except _JsonError as exc:
                raise exc.within(index) from None
            except (ValueError, TypeError) as exc:
                raise _JsonError(f"{item!r} does not fit: {exc}").within(index) from None

    return set_scalars


_INTEGER_TYPES: Final = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_SFIXED64,
    }
)


def _converter_for(field: FieldDescriptor) -> Callable[[Any], Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return _to_string
    if kind == FieldDescriptor.TYPE_BOOL:
        return _to_bool
    if kind in _INTEGER_TYPES:
        return _to_integer
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return _to_float
    if kind == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
        return _enum_converter(field.enum_type)
    if kind == FieldDescriptor.TYPE_BYTES:
        length = _ID_LENGTHS.get(field.name)
        return _bytes_from_base64 if length is None else _hex_id_converter(length)
    raise RuntimeError(f"otlp_json cannot decode {field.full_name}: unsupported field type {kind}")


def _to_string(value: Any) -> str:
    if not isinstance(value, str):
        raise _JsonError(f"expected a string, got {_describe(value)}")
    return value


def _to_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _JsonError(f"expected true or false, got {_describe(value)}")
    return value


def _to_integer(value: Any) -> int:
    # bool is an int subclass in Python but not an integer in JSON.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip(), 10)
        except ValueError:
            pass
        try:  # proto3 JSON allows "1e3" for integers, as long as the value is whole
            number = float(value)
        except ValueError:
            number = math.nan
        if math.isfinite(number) and number.is_integer():
            return int(number)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _JsonError(f"expected an integer (number or decimal string), got {_describe(value)}")


_FLOAT_WORDS: Final = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _to_float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        word = _FLOAT_WORDS.get(value)
        if word is not None:
            return word
        try:
            return float(value)
        except ValueError:
            pass
    raise _JsonError(f"expected a number, got {_describe(value)}")


def _enum_converter(enum: EnumDescriptor) -> Callable[[Any], int]:
    by_name = {value.name: value.number for value in enum.values}

    def to_enum(value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value  # proto3 enums are open: unknown numbers are kept
        if isinstance(value, str) and value in by_name:
            return by_name[value]
        raise _JsonError(f"expected an integer {enum.name} value, got {_describe(value)}")

    return to_enum


def _hex_id_converter(length: int) -> Callable[[Any], bytes]:
    digits = 2 * length

    def to_id(value: Any) -> bytes:
        if not isinstance(value, str):
            raise _JsonError(f"expected {digits} hex digits ({length} bytes), got {_describe(value)}")
        if not value:
            return b""  # unset, as in the binary encoding; the pipeline judges empty ids
        if len(value) != digits:
            raise _JsonError(f"expected {digits} hex digits ({length} bytes), got {_describe(value)}")
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise _JsonError(
                f"expected {digits} hex digits ({length} bytes), got {_describe(value)}"
            ) from None

    return to_id


def _bytes_from_base64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise _JsonError(f"expected a base64 string, got {_describe(value)}")
    # proto3 JSON accepts standard or URL-safe base64, with or without padding.
    text = value.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        raise _JsonError(f"expected a base64 string, got {_describe(value)}") from None


def _describe(value: Any) -> str:
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "..."
        return repr(shown)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return repr(value)


# Compiled at import, never lazily: decoding may run in worker threads (large bodies), and a
# table being filled must never be visible to another thread.
_REQUEST_TABLE: Final = _table_for(ExportTraceServiceRequest.DESCRIPTOR)


# -- encoding ---------------------------------------------------------------------------------

_ID_JSON_KEYS: Final = frozenset({"traceId", "spanId", "parentSpanId"})


def _hex_ids(node: Any) -> None:
    """Rewrite base64 ids written by ``json_format`` as OTLP's hex, in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_JSON_KEYS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                _hex_ids(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids(item)
