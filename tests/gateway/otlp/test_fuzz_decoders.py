"""Property-based fuzzing of the OTLP decoders (security issue: fuzzing the ingest path).

Protobuf and OTLP/JSON bodies of all three signals, random and mutated from real requests.
Whatever arrives, :func:`decode` returns or raises :class:`BadRequestError` or
:class:`TooLargeError`; what is accepted is validated and reads back as the same message from
its protobuf and its OTLP/JSON encodings (the file exporter writes the latter); the wire splitter
and splicer raise only their documented errors. ``OTELGATE_FUZZ_SCALE`` multiplies the examples.
"""

from __future__ import annotations

import copy
import json
import os
import re
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.metrics.v1.metrics_pb2 import NumberDataPoint
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from gateway.errors import BadRequestError, TooLargeError
from gateway.otlp.batch import ExportRequest, Signal, count_items
from gateway.otlp.json_codec import encode_json
from gateway.otlp.split import split_request
from gateway.otlp.validation import validate
from gateway.otlp.wire import WireError, encode_varint, fields, is_message, replace_resources
from gateway.receivers.ingest import decode
from tests.support.hostile import nested_value
from tests.support.otlp_samples import sample_request

SCALE = int(os.environ.get("OTELGATE_FUZZ_SCALE", "1"))
REFUSALS = (BadRequestError, TooLargeError)


def fuzz(examples: int) -> Any:
    """Bounded settings: a few seconds per test on a 2-core CI machine."""
    return settings(
        max_examples=examples * SCALE,
        deadline=5000,  # ms per example; each takes a few ms, so only a hang trips it
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


signals = st.sampled_from(list(Signal))


# --- what every accepted request must satisfy ------------------------------------------------


def wire(request: ExportRequest) -> bytes:  # byte-comparable, unlike ``==`` with NaN
    return request.SerializeToString(deterministic=True)


def accept(signal: Signal, body: bytes, encoding: str) -> ExportRequest | None:
    """The request decoded and validated as the gateway would, or None if refused; a refusal
    of any other type fails the test, and what is accepted must read back."""
    try:
        request = decode(signal, body, encoding)  # type: ignore[arg-type]
    except REFUSALS:
        return None
    before = count_items(signal, request)
    rejection = validate(signal, request)
    assert count_items(signal, request) == before - rejection.count
    assert_rereadable(signal, request)
    return request


def assert_rereadable(signal: Signal, request: ExportRequest) -> None:
    """Re-encoded as protobuf and as OTLP/JSON, the request decodes to the same message."""
    encoded = wire(request)
    assert wire(decode(signal, encoded, "protobuf")) == encoded
    known = signal.request_type()
    known.CopyFrom(request)  # type: ignore[arg-type]
    known.DiscardUnknownFields()  # JSON has no place for them
    text = encode_json(known)
    # Compared as JSON: it prints every NaN as "NaN", so a NaN's payload bits cannot survive.
    assert encode_json(decode(signal, text, "json")) == text


# --- mutations of encoded bytes --------------------------------------------------------------


def tag(number: int, wire_type: int) -> bytes:
    return encode_varint(number << 3 | wire_type)


# Groups (deprecated wire types 3 and 4): protobuf's decoders keep one as an unknown field, so
# the walk must step over it too, or a request is accepted under 1 MiB and refused above it.
GROUPS = [
    tag(99, 3) + tag(99, 4),
    tag(5, 3) + tag(1, 0) + b"\x01" + tag(7, 2) + b"\x02ab" + tag(6, 3) + tag(6, 4) + tag(5, 4),
    tag(1, 3) + tag(1, 4),  # numbered like the resource groups, but not a message
    tag(1, 0) + b"\x05",  # the same with a varint
]
KINDS = ["flip", "insert", "delete", "truncate", "varint", "duplicate", "utf8", "group"]
Edit = tuple[str, int, bytes]
edits = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.integers(0, 1 << 20),
        st.binary(min_size=1, max_size=8),
    ),
    max_size=5,
)
BAD_UTF8 = (b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf")


def mutate(body: bytes, changes: list[Edit]) -> bytes:
    data = bytearray(body)
    for kind, position, blob in changes:
        at = position % (len(data) + 1)
        if kind == "flip" and data:
            data[at % len(data)] ^= blob[0] or 0x80
        elif kind == "insert":
            data[at:at] = blob
        elif kind == "delete":
            del data[at : at + blob[0] % 16 + 1]
        elif kind == "truncate":
            del data[at:]
        elif kind == "varint":  # an overlong or unterminated varint where a tag or length was
            data[at:at] = b"\xff" * (blob[0] % 12 + 1)
        elif kind == "duplicate":
            data[at:at] = data[at : at + blob[0] + 1]
        elif kind == "utf8":
            data[at:at] = BAD_UTF8[blob[0] % len(BAD_UTF8)]
        elif kind == "group":
            data[at:at] = GROUPS[blob[0] % len(GROUPS)]
    return bytes(data)


def length_fields(data: bytes, base: int = 0, depth: int = 0) -> list[tuple[int, int, int]]:
    """``(start of the length varint, start of payload, end)`` of every length-delimited field
    found by reading payloads as messages wherever they parse (strings too, harmlessly)."""
    found: list[tuple[int, int, int]] = []
    try:
        for number, start, payload, end in fields(data):
            if payload == end or depth > 12 or not is_message(data, start):
                continue
            key = len(encode_varint(number << 3 | 2))
            found.append((base + start + key, base + payload, base + end))
            found += length_fields(data[payload:end], base + payload, depth + 1)
    except WireError:
        pass
    return found


def set_length(body: bytes, which: int, length: int) -> bytes:
    """``body`` with the length of one length-delimited field rewritten (its payload kept)."""
    found = length_fields(body) or [(0, 0, 0)]
    at, payload, _ = found[which % len(found)]
    return body[:at] + encode_varint(length) + body[payload:]


LENGTHS = st.sampled_from([0, 1, 2, 7, 8, 15, 16, 17, 127, 128, 2**31 - 1, 2**32, 2**63 - 1])


@cache
def seeds(signal: Signal) -> tuple[bytes, ...]:
    """Real encoded requests: several sizes, every metric kind, ids, links, events."""
    return tuple(wire(sample_request(signal, n)) for n in (0, 1, 3, 6))


def nest(value: AnyValue, kinds: list[str]) -> None:
    """Nest ``value`` in place through ``kinds`` (outermost first) around an int; built in
    place because upb copies a message given to a constructor by parsing it, depth-limited."""
    for kind in kinds:
        if kind == "kvlist":
            value = value.kvlist_value.values.add(key="k").value
        else:
            value.array_value.values.add(string_value="s")
            value = value.array_value.values.add()
    value.int_value = 1


def value_slot(signal: Signal, request: Any) -> AnyValue:
    """Where each signal nests deepest: a span attribute, a data point attribute, a log body."""
    if signal is Signal.TRACES:
        span = request.resource_spans[0].scope_spans[0].spans[0]
        return span.attributes.add(key="deep").value
    if signal is Signal.METRICS:
        point = request.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points[0]
        return point.attributes.add(key="deep").value
    return request.resource_logs[0].scope_logs[0].log_records[0].body


leaves = st.one_of(
    st.text(max_size=12).map(lambda v: AnyValue(string_value=v)),
    st.integers(-(2**63), 2**63 - 1).map(lambda v: AnyValue(int_value=v)),
    st.floats().map(lambda v: AnyValue(double_value=v)),  # NaN, infinities, -0.0
    st.booleans().map(lambda v: AnyValue(bool_value=v)),
    st.binary(max_size=12).map(lambda v: AnyValue(bytes_value=v)),
    st.just(AnyValue()),
)
any_values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda vs: AnyValue(array_value=ArrayValue(values=vs))),
        st.lists(st.tuples(st.text(max_size=6), inner), max_size=4).map(
            lambda kvs: AnyValue(
                kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in kvs])
            )
        ),
    ),
    max_leaves=25,
)


def id_holders(signal: Signal, request: Any) -> list[Any]:
    """Spans, log records or gauge exemplars: the messages of ``request`` that carry ids."""
    if signal is Signal.TRACES:
        return [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    if signal is Signal.LOGS:
        return [r for rl in request.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    metrics = [m for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    return [e for m in metrics for p in m.gauge.data_points for e in p.exemplars]


# --- protobuf --------------------------------------------------------------------------------


@fuzz(300)
@given(signal=signals, body=st.binary(max_size=3000))
def test_random_bytes_are_decoded_or_refused(signal: Signal, body: bytes) -> None:
    accept(signal, body, "protobuf")


@fuzz(600)
@given(signal=signals, seed=st.integers(0, 3), changes=edits, which=st.integers(0, 500),
       length=st.none() | LENGTHS)  # fmt: skip
def test_mutated_requests_are_decoded_or_refused(
    signal: Signal, seed: int, changes: list[Edit], which: int, length: int | None
) -> None:
    body = seeds(signal)[seed]
    if length is not None:
        body = set_length(body, which, length)
    body = mutate(body, changes)
    request = accept(signal, body, "protobuf")
    if not changes and length is None and seed:  # seed 0 has no items: its group is pruned
        assert request is not None and wire(request) == body


# Message levels left below each signal's deepest value by protobuf's limit of 100: a kvlist
# level costs 3 (AnyValue, KeyValueList, KeyValue), an array level 2 (AnyValue, ArrayValue).
ROOM = {Signal.TRACES: 95, Signal.METRICS: 93, Signal.LOGS: 96}


@fuzz(250)
@given(signal=signals, kinds=st.lists(st.sampled_from(["kvlist", "array"]), max_size=50),
       changes=edits)  # fmt: skip
def test_nesting_is_accepted_to_the_same_depth_in_protobuf_and_json(
    signal: Signal, kinds: list[str], changes: list[Edit]
) -> None:
    request = sample_request(signal, 1)
    nest(value_slot(signal, request), kinds)
    fits = 3 * kinds.count("kvlist") + 2 * kinds.count("array") <= ROOM[signal]
    body = wire(request)
    assert (accept(signal, body, "protobuf") is not None) == fits
    assert (accept(signal, encode_json(request), "json") is not None) == fits
    accept(signal, mutate(body, changes), "protobuf")


@fuzz(200)
@given(signal=signals, value=any_values, ids=st.lists(st.binary(max_size=18), max_size=6))
def test_any_values_and_ids_of_any_length_are_validated_and_read_back(
    signal: Signal, value: AnyValue, ids: list[bytes]
) -> None:
    request = sample_request(signal, 1)
    value_slot(signal, request).CopyFrom(value)
    holders = id_holders(signal, request)
    names = ("trace_id", "span_id", "parent_span_id")[: 3 if signal is Signal.TRACES else 2]
    for i, id_bytes in enumerate(ids):
        setattr(holders[i % len(holders)], names[i % len(names)], id_bytes)
    assert accept(signal, wire(request), "protobuf") is not None  # items may go, not all of it


# --- the wire splitter and the resource splicer ----------------------------------------------


@fuzz(400)
@example(Signal.TRACES, 3, [("group", 0, b"\x00")], 100)  # refused by the splitter before
@example(Signal.LOGS, 2, [("group", 30, b"\x01")], 60)
@example(Signal.METRICS, 3, [("group", 0, b"\x02"), ("group", 0, b"\x03")], 80)
@given(signal=signals, seed=st.integers(0, 3), changes=edits, limit=st.integers(1, 400))
def test_what_decodes_whole_splits_and_decodes_in_pieces(
    signal: Signal, seed: int, changes: list[Edit], limit: int
) -> None:
    """The large-request path reads what the fast path reads; else only documented errors."""
    body = mutate(seeds(signal)[seed], changes)
    whole = accept(signal, body, "protobuf")
    try:
        pieces = split_request(signal, body, limit, max_entries=2000)
    except TooLargeError:
        return
    except WireError:
        assert whole is None
        return
    decoded = [accept(signal, piece, "protobuf") for piece in pieces]
    if whole is not None:  # every piece decodes, and together they hold the same items
        assert all(piece is not None for piece in decoded)
        items = sum(count_items(signal, decode(signal, p, "protobuf")) for p in pieces)
        assert items == count_items(signal, decode(signal, body, "protobuf"))


def test_a_metric_given_two_kinds_is_split_as_decoders_read_it() -> None:
    """Found fuzzing the splitter: ``Metric.data`` is a oneof, so decoders keep only the kind
    given last; the splitter kept every kind's points, so a request past the fast path's limits
    was delivered with points the same request under them was not."""

    def frame(number: int, payload: bytes) -> bytes:
        return tag(number, 2) + encode_varint(len(payload)) + payload

    def points(n: int) -> bytes:  # the data_points of a Gauge, or of a Sum
        return b"".join(frame(1, NumberDataPoint(as_int=i).SerializeToString()) for i in range(n))

    metric = frame(1, b"m") + frame(5, points(40)) + frame(7, points(30)) + frame(5, points(7))
    body = frame(1, frame(2, frame(2, metric)))  # request > resource > scope > metric
    assert count_items(Signal.METRICS, decode(Signal.METRICS, body, "protobuf")) == 7
    pieces = [
        decode(Signal.METRICS, p, "protobuf") for p in split_request(Signal.METRICS, body, 60)
    ]
    assert len(pieces) > 1 and sum(count_items(Signal.METRICS, p) for p in pieces) == 7


@fuzz(400)
@example(Signal.TRACES, 2, [("group", 0, b"\x02")], [{"a": "b"}])  # not a resource group
@given(signal=signals, seed=st.integers(0, 3), changes=edits,
       resources=st.lists(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
                          max_size=3))  # fmt: skip
def test_splicing_resources_into_mutated_requests(
    signal: Signal, seed: int, changes: list[Edit], resources: list[dict[str, str]]
) -> None:
    body = mutate(seeds(signal)[seed], changes)
    new = [
        Resource(attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in r.items()])
        for r in resources
    ]
    try:
        spliced = replace_resources(body, [wire(r) for r in new])  # type: ignore[arg-type]
    except WireError:
        return
    try:
        original = decode(signal, body, "protobuf")
    except REFUSALS:
        return
    groups = getattr(original, original.DESCRIPTOR.fields[0].name)
    for group, resource in zip(groups, new, strict=True):
        if resource.ByteSize() or group.HasField("resource"):
            group.resource.CopyFrom(resource)
    assert wire(decode(signal, spliced, "protobuf")) == wire(original)


# --- OTLP/JSON -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)
HOSTILE = [
    None, True, 0, -1, 1.5, 2**63, 2**64, -(2**63) - 1, 10**30, "1e5", "0x10", " 7 ", "1_0",
    "", "zz", "0" * 31, "0" * 33, "00" * 8, "ab" * 16, "AbCdEf0123456789", "é" * 16,
    "!!!!", "YWJj", "YWJ", "=", "SGVsbG8=garbage", "NaN", "Infinity", "-Infinity", "nan",
    "SPAN_KIND_SERVER", "SEVERITY_NUMBER_INFO", "AGGREGATION_TEMPORALITY_DELTA", "NOT_AN_ENUM",
    [], [None], [1, "a", {}], {}, {"stringValue": "x", "intValue": "3"},
    nested_value(40, "kvlist"), nested_value(60, "array"),
]  # fmt: skip


def slots(doc: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) of a JSON document."""
    found: list[tuple[Any, Any]] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict | list):
            keys = list(node) if isinstance(node, dict) else range(len(node))
            found += [(node, key) for key in keys]
            stack += [node[key] for key in keys]
    return found


@cache
def json_seeds(signal: Signal) -> tuple[str, ...]:
    return tuple(encode_json(sample_request(signal, n)).decode() for n in (1, 5))


@fuzz(300)
@given(signal=signals, value=json_values)
def test_random_json_values_are_decoded_or_refused(signal: Signal, value: Any) -> None:
    accept(signal, json.dumps(value).encode(), "json")
    if isinstance(value, dict):  # the same value under each of the request's keys
        for key in ("resourceSpans", "resourceMetrics", "resourceLogs", "resource_spans"):
            accept(signal, json.dumps({key: [value]}).encode(), "json")


@fuzz(500)
@given(signal=signals, seed=st.integers(0, 1),
       swaps=st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["", "snake", "unknown"]),
                                st.sampled_from(HOSTILE) | json_values), max_size=4),
       changes=edits)  # fmt: skip
def test_mutated_json_requests_are_decoded_or_refused(
    signal: Signal, seed: int, swaps: list[tuple[int, str, Any]], changes: list[Edit]
) -> None:
    doc = json.loads(json_seeds(signal)[seed])
    for where, rename, value in swaps:
        found = slots(doc)
        node, key = found[where % len(found)]
        if isinstance(node, dict) and rename == "snake":
            node["".join(f"_{c.lower()}" if c.isupper() else c for c in key)] = node.pop(key)
        elif isinstance(node, dict) and rename == "unknown":
            node[key + "X"] = copy.deepcopy(value)
        else:  # a copy: later swaps must not edit HOSTILE (shared by every example)
            node[key] = copy.deepcopy(value)
    text = json.dumps(doc)  # stdlib: ints of any size, NaN and Infinity tokens, deep nesting
    request = accept(signal, text.encode(), "json")
    assert request is not None or swaps  # the seeds themselves are accepted
    accept(signal, ('{"resourceSpans":[],' + text[1:]).encode(), "json")  # a duplicate key
    accept(signal, mutate(text.encode(), changes), "json")


def test_non_ascii_base64_is_a_bad_request_naming_its_path() -> None:
    """Found by the fuzzer: ``base64.b64decode`` raises a bare ValueError for non-ASCII text,
    which escaped the decoder's path-naming error (still a 400, but saying nothing of where)."""
    value = {"key": "a", "value": {"bytesValue": "é=="}}
    body = json.dumps({"resourceSpans": [{"resource": {"attributes": [value]}}]}).encode()
    where = "resourceSpans[0].resource.attributes[0].value.bytesValue: invalid base64"
    with pytest.raises(BadRequestError, match=re.escape(where)):
        decode(Signal.TRACES, body, "json")
