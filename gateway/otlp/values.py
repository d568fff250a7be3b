"""OTLP ``AnyValue`` as plain Python values."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def to_python(value: AnyValue) -> Any:
    """An AnyValue as a JSON-able Python value: maps as dicts, arrays as lists, bytes as
    base64 text, an empty value as None."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "kvlist_value":
        return {kv.key: to_python(kv.value) for kv in value.kvlist_value.values}
    if kind == "array_value":
        return [to_python(v) for v in value.array_value.values]
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None if kind is None else getattr(value, kind)


def to_text(value: AnyValue) -> str:
    """An AnyValue as text: a string as it is, nothing as ``""``, anything else as JSON."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind is None:
        return ""
    try:
        return orjson.dumps(to_python(value)).decode()
    except (orjson.JSONEncodeError, RecursionError):  # nested past what JSON tools take
        return f"<{kind} too deeply nested to show>"
