"""Decoding OTLP/JSON into the protobuf messages without ``json_format``.

``google.protobuf.json_format.ParseDict`` checks and sets every field from Python, which
costs ~1.5 us per field: an OTLP/JSON span took ~1.4 ms per 100 spans in the benchmarks, ten
times the protobuf path. Here a plan per message type, built once from the descriptors, maps
each JSON key (lowerCamelCase or the original snake_case) to the field's Python name and a
converter; the converted tree of dicts and lists is handed to the message constructor, which
builds the nested messages in C (upb accepts dicts for message fields).

The rules are the protobuf JSON mapping with OTLP's differences
(https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding): ``traceId``, ``spanId``
and ``parentSpanId`` are hex, not base64; enums may be integers or names; 64-bit integers may
be strings or numbers; unknown keys are ignored; ``null`` means the default.

Hostile input is bounded. Messages may nest at most :data:`MAX_DEPTH` levels below the request,
the limit protobuf's decoders apply to the binary encoding: a JSON request is accepted only
if its protobuf encoding can be read back. Plans exist per (message type, depth), so the depth
costs nothing per value; past the limit the converter refuses. The error path is linear in the
input: the failing element of an array is found by identity, never by converting it again.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

# A hex id that does not decode becomes this byte: never a valid trace (16) or span (8) id, so
# validation rejects just that item, counted in partial_success, instead of the whole request.
INVALID_ID = b"\xff"
_HEX_ID_FIELDS = frozenset({"trace_id", "span_id", "parent_span_id"})
_INTEGER_TYPES = frozenset({
    FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_SFIXED64,
})  # fmt: skip
_FLOAT_TYPES = frozenset({FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT})
_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
MAX_DEPTH = 100
"""Levels of messages below the request that protobuf's decoders accept (upb, the C++ and Java
runtimes): 31 levels of ``kvlistValue`` or 47 of ``arrayValue`` inside a span attribute, one
more of ``arrayValue`` in a log record's body."""

Convert = Callable[[Any], Any]


class JsonShapeError(ValueError):
    """A value does not fit its field. The JSON path is collected while the error passes up
    through the enclosing objects and arrays, so the happy path builds no path strings."""

    def __init__(self, problem: str, culprit: Any = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path: list[str] = []
        self.culprit = culprit  # the JSON value that failed, at the level reached so far

    def __str__(self) -> str:
        return f"{'$' + ''.join(reversed(self.path))}: {self.problem}"


def _short(value: Any) -> str:
    """``repr`` of a value for an error message, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _hex_id(value: Any) -> bytes:
    if not isinstance(value, str):
        return INVALID_ID
    try:
        return bytes.fromhex(value)
    except ValueError:
        return INVALID_ID


def _base64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise JsonShapeError(f"expected base64 text, got {type(value).__name__}", value)
    try:  # the protobuf JSON mapping accepts standard and URL-safe base64, padded or not
        return base64.b64decode(value.replace("-", "+").replace("_", "/") + "==")
    except (binascii.Error, ValueError) as exc:  # ValueError: text that is not ASCII
        raise JsonShapeError(f"invalid base64: {exc}", value) from None


def _integer(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise JsonShapeError(f"expected an integer, got {_short(value)}", value)


def _float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        special = _SPECIAL_FLOATS.get(value)
        if special is not None:
            return special
        try:
            return float(value)
        except ValueError:
            pass
    raise JsonShapeError(f"expected a number, got {_short(value)}", value)


def _typed(kind: type, name: str) -> Convert:
    def convert(value: Any) -> Any:
        if type(value) is not kind:
            raise JsonShapeError(f"expected {name}, got {_short(value)}", value)
        return value

    return convert


def _is_repeated(field: Any) -> bool:
    """``is_repeated`` (protobuf >= 5.29; ``label`` is gone from protobuf 7's upb)."""
    repeated = getattr(field, "is_repeated", None)
    if repeated is None:
        return bool(field.label == FieldDescriptor.LABEL_REPEATED)
    return bool(repeated)


def _enum(field: FieldDescriptor) -> Convert:
    enum = field.enum_type
    assert enum is not None  # an enum field
    numbers = {v.name: v.number for v in enum.values}

    def convert(value: Any) -> int:
        if isinstance(value, str):
            number = numbers.get(value)
            if number is None:
                raise JsonShapeError(f"unknown {enum.name} {_short(value)}", value)
            return number
        return _integer(value)

    return convert


class _Plan:
    """How to convert the JSON object of one message type at one nesting depth:
    key -> (field name, converter)."""

    def __init__(self, descriptor: Any, depth: int) -> None:
        self.fields: dict[str, tuple[str, Convert]] = {}
        self.descriptor = descriptor
        self.depth = depth

    def fill(self, plans: dict[tuple[str, int], _Plan]) -> None:
        for field in self.descriptor.fields:
            convert = self._converter(field, plans)
            if _is_repeated(field):
                convert = _repeated(convert)
            self.fields[field.json_name] = self.fields[field.name] = (field.name, convert)

    def _converter(self, field: FieldDescriptor, plans: dict[tuple[str, int], _Plan]) -> Convert:
        kind = field.type
        if kind == FieldDescriptor.TYPE_MESSAGE:
            if self.depth >= MAX_DEPTH:
                return _too_deep
            return _plan(field.message_type, plans, self.depth + 1).convert
        if kind == FieldDescriptor.TYPE_BYTES:
            return _hex_id if field.name in _HEX_ID_FIELDS else _base64
        if kind == FieldDescriptor.TYPE_ENUM:
            return _enum(field)
        if kind in _INTEGER_TYPES:
            return _integer
        if kind in _FLOAT_TYPES:
            return _float
        if kind == FieldDescriptor.TYPE_BOOL:
            return _typed(bool, "true or false")
        return _typed(str, "a string")

    def convert(self, value: Any) -> dict[str, Any]:
        """Constructor keyword arguments for the message from its JSON object."""
        if not isinstance(value, dict):
            raise JsonShapeError(f"expected an object, got {type(value).__name__}", value)
        fields, out = self.fields, {}
        for key, item in value.items():
            found = fields.get(key)
            if found is None or item is None:  # unknown key, or null: the default
                continue
            name, convert = found
            try:
                out[name] = convert(item)
            except JsonShapeError as exc:
                exc.path.append(f".{key}")
                exc.culprit = value
                raise
        return out


def _too_deep(value: Any) -> Any:
    raise JsonShapeError(
        f"messages nested deeper than {MAX_DEPTH} levels (protobuf's decoding limit)", value
    )


def _repeated(convert: Convert) -> Convert:
    def each(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise JsonShapeError(f"expected an array, got {type(value).__name__}", value)
        try:
            return [convert(item) for item in value]
        except JsonShapeError as exc:
            # Which element failed: the one that is the culprit (the first such, as the
            # conversion went in order). Found by identity, so the error path stays linear.
            index = next((i for i, item in enumerate(value) if item is exc.culprit), None)
            if index is not None:
                exc.path.append(f"[{index}]")
            exc.culprit = value
            raise

    return each


def _plan(descriptor: Any, plans: dict[tuple[str, int], _Plan], depth: int) -> _Plan:
    key = (descriptor.full_name, depth)
    plan = plans.get(key)
    if plan is None:
        plan = plans[key] = _Plan(descriptor, depth)
        plan.fill(plans)
    return plan


_PLANS: dict[tuple[str, int], _Plan] = {}


def parse(doc: dict[str, Any], message_type: type[Message]) -> Message:
    """The message of ``message_type`` from its OTLP/JSON object; :class:`JsonShapeError`
    (a ValueError) names the path of the first value that does not fit."""
    plan = _plan(message_type.DESCRIPTOR, _PLANS, 0)
    kwargs = plan.convert(doc)
    try:
        return message_type(**kwargs)
    except (TypeError, ValueError) as exc:  # e.g. an integer out of its field's range
        raise JsonShapeError(f"a value does not fit its field: {exc}") from None


def prepare(message_types: list[type[Message]]) -> None:
    """Build the plans of ``message_types`` now (at import), not during a request: decoding
    may run in worker threads, which then only read the plans."""
    for message_type in message_types:
        _plan(message_type.DESCRIPTOR, _PLANS, 0)
