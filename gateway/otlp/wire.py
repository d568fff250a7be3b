"""Editing encoded OTLP requests at the top of the protobuf wire format.

A processor that changes only resources (attributes added, updated or removed) would
otherwise make the gateway re-encode every span, data point and log record of the request,
which costs more than decoding it did. The three ``Export*ServiceRequest`` messages share one
shape: field 1 is the repeated ``Resource{Spans,Metrics,Logs}``, whose field 1 in turn is the
``Resource``. :func:`replace_resources` walks only these two levels of framing (a handful of
tags per request, see https://protobuf.dev/programming-guides/encoding/) and splices in the
newly encoded resources; the bytes of everything else are copied as received.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

_VARINT, _I64, _LEN, _START_GROUP, _END_GROUP, _I32 = 0, 1, 2, 3, 4, 5
_RESOURCE_GROUP = 1  # Export*ServiceRequest.resource_{spans,metrics,logs}
_RESOURCE = 1  # Resource{Spans,Metrics,Logs}.resource


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def _varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WireError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def encode_varint(value: int) -> bytes:
    """The base-128 varint encoding of a non-negative ``value``."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _skip(data: bytes | memoryview, pos: int, number: int, wire_type: int) -> tuple[int, int]:
    """``(start of payload, end)`` of the field whose tag ends at ``pos`` (:func:`fields`
    inlines the common wire types)."""
    if wire_type == _VARINT:
        return pos, _varint(data, pos)[1]
    if wire_type == _I64:
        return pos, pos + 8
    if wire_type == _I32:
        return pos, pos + 4
    if wire_type == _LEN:
        length, pos = _varint(data, pos)
        return pos, pos + length
    if wire_type == _START_GROUP:
        return pos, _group_end(data, pos, number)
    raise WireError(f"unsupported wire type {wire_type} (field {number})")


def _group_end(data: bytes | memoryview, pos: int, number: int) -> int:
    """The end of a group (deprecated; no OTLP field is one, but protobuf's decoders keep one
    as an unknown field, so the walk must step over it as they do): after the END_GROUP tag of
    field ``number``, groups nested inside included, in one linear pass."""
    open_groups = [number]
    while open_groups:
        key, pos = _varint(data, pos)
        inner, wire_type = key >> 3, key & 7
        if wire_type == _END_GROUP:
            if open_groups.pop() != inner:
                raise WireError(f"group of field {inner} ends where none is open")
        elif wire_type == _START_GROUP:
            open_groups.append(inner)
        else:
            pos = _skip(data, pos, inner, wire_type)[1]
        if pos > len(data) or inner == 0:
            raise WireError("field runs past the end of the message")
    return pos


def fields(data: bytes | memoryview) -> Iterator[tuple[int, int, int, int]]:
    """``(field number, start of field, start of payload, end)`` of each top-level field; a
    field's wire type is ``data[start] & 7`` (see :func:`is_message`)."""
    pos, end = 0, len(data)
    while pos < end:
        start = pos
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            _, after = _varint(data, pos)
        elif wire_type == _I64:
            after = pos + 8
        elif wire_type == _I32:
            after = pos + 4
        elif wire_type == _LEN:
            length, pos = _varint(data, pos)
            after = pos + length
        else:  # a group (rare), or an invalid wire type
            pos, after = _skip(data, pos, number, wire_type)
        if after > end or number == 0:
            raise WireError("field runs past the end of the message")
        yield number, start, pos, after
        pos = after


def is_message(data: bytes | memoryview, start: int) -> bool:
    """Whether the field at ``start`` is length-delimited, as a message field must be (a field
    of another wire type, even with a message field's number, is an unknown field)."""
    return data[start] & 7 == _LEN  # the tag's first byte holds its low 7 bits


def _length_delimited(number: int, payload: bytes) -> bytes:
    return encode_varint(number << 3 | _LEN) + encode_varint(len(payload)) + payload


def replace_resources(encoded: bytes, resources: Sequence[bytes]) -> bytes:
    """``encoded`` (an ``Export*ServiceRequest``) with the resource of its i-th resource group
    replaced by the encoded ``Resource`` ``resources[i]``; all other bytes stay as they were.

    Raises :class:`WireError` if the bytes are malformed or the counts do not match.
    """
    view = memoryview(encoded)  # slices of a memoryview copy nothing; join copies once
    out: list[bytes | memoryview] = []
    index = 0
    for number, start, payload, end in fields(encoded):
        if number != _RESOURCE_GROUP or not is_message(view, start):
            out.append(view[start:end])
            continue
        if index >= len(resources):
            raise WireError("more resource groups than resources")
        parts = [(n, payload + s, payload + e) for n, s, _, e in fields(view[payload:end])]
        rest = [view[s:e] for n, s, e in parts if n != _RESOURCE or not is_message(view, s)]
        new = resources[index]
        # An empty resource is written only if one was there: presence stays as it was.
        head = _length_delimited(_RESOURCE, new) if new or len(rest) < len(parts) else b""
        size = len(head) + sum(len(part) for part in rest)
        out += [encode_varint(_RESOURCE_GROUP << 3 | _LEN), encode_varint(size), head, *rest]
        index += 1
    if index != len(resources):
        raise WireError(f"{index} resource groups for {len(resources)} resources")
    return b"".join(out)
