"""Elasticsearch documents from any OTLP value or key: always valid JSON, one per record."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from exporters.elasticsearch.mapping import (
    MAX_DEPTH,
    DocumentMapping,
    MappingMode,
    data_stream_part,
    field_name,
    value,
)
from tests.exporters.loki.helpers import kv, logs, record

MODES: list[MappingMode] = ["otel", "ecs"]


def strict_json(source: bytes) -> Any:
    """Parse as strict JSON: NaN / Infinity are refused, as Elasticsearch's parser does."""

    def refuse(token: str) -> None:
        raise ValueError(token)

    return json.loads(source, parse_constant=refuse)


def bad_names(doc: Any, path: str = "") -> list[str]:
    """Field names Elasticsearch refuses: empty, or a dot-separated part empty or blank."""
    out: list[str] = []
    if isinstance(doc, list):
        for item in doc:
            out += bad_names(item, path)
    elif isinstance(doc, dict):
        for key, item in doc.items():
            if any(not part.strip() for part in key.split(".")):
                out.append(f"{path}/{key!r}")
            out += bad_names(item, f"{path}/{key}")
    return out


def documents(request: ExportLogsServiceRequest, mode: MappingMode) -> list[Any]:
    out = DocumentMapping(mode).documents(request)
    for d in out:
        assert d.index.startswith("logs-")
        _, dataset, namespace = d.index.split("-")
        assert data_stream_part(dataset) == dataset and data_stream_part(namespace) == namespace
    parsed = [strict_json(d.source) for d in out]
    for doc in parsed:
        assert bad_names(doc) == []
    return parsed


def body_of(v: AnyValue, mode: MappingMode) -> Any:
    rec = record(0)
    rec.body.CopyFrom(v)
    [doc] = documents(logs([rec]), mode)
    return doc["body"] if mode == "otel" else doc.get("message")


@pytest.mark.parametrize(
    ("v", "expected"),
    [(AnyValue(string_value="é 漢 🙂"), "é 漢 🙂"), (AnyValue(bool_value=False), False),
     (AnyValue(int_value=2**63 - 1), 2**63 - 1), (AnyValue(int_value=-(2**63)), -(2**63)),
     (AnyValue(double_value=-0.5), -0.5), (AnyValue(bytes_value=b"\x00\x01\xfe"), "AAH+"),
     (AnyValue(), None), (AnyValue(array_value=ArrayValue()), []),
     (AnyValue(kvlist_value=KeyValueList()), {}),
     (AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1), AnyValue()])), [1, None])],
)  # fmt: skip
def test_values_of_every_kind(v: AnyValue, expected: Any) -> None:
    assert value(v) == expected
    [doc] = documents(logs([record(0, a=v)]), "otel")
    assert doc["attributes"]["a"] == expected


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("mode", MODES)
def test_nan_and_infinity_become_null(number: float, mode: MappingMode) -> None:
    array = AnyValue(array_value=ArrayValue(values=[AnyValue(double_value=number)]))
    rec = record(0, x=number, arr=array)
    [doc] = documents(logs([rec]), mode)
    attrs = doc["attributes"] if mode == "otel" else doc
    assert attrs["x"] is None and attrs["arr"] == [None]


@pytest.mark.parametrize(
    ("number", "text"), [(math.nan, "NaN"), (math.inf, "+Inf"), (-math.inf, "-Inf")]
)
def test_nan_body_as_text_like_pdata(number: float, text: str) -> None:
    assert body_of(AnyValue(double_value=number), "otel") == {"text": text}


@pytest.mark.parametrize(
    ("key", "name"),
    [("", "_"), (".", "_._"), ("a..b", "a._.b"), (" ", "_"), ("a. .b", "a._.b"), (".a", "_.a"),
     ("a.", "a._"), ("ok.name", "ok.name"), ("ünï cödé", "ünï cödé"), ("x" * 10_000, "x" * 10_000)],
)  # fmt: skip
@pytest.mark.parametrize("mode", MODES)
def test_odd_keys_become_accepted_names(key: str, name: str, mode: MappingMode) -> None:
    assert field_name(key) == name
    nested = AnyValue(kvlist_value=KeyValueList(values=[kv(key, 1)]))
    [doc] = documents(logs([record(0, None, **{key: "v", "m": nested})]), mode)
    if mode == "otel":
        assert doc["attributes"][name] == "v" and doc["attributes"]["m"] == {name: 1}
    else:
        first = name.split(".")[0]
        assert first in doc and "m" in doc


def nest_into(node: AnyValue, depth: int, kind: str) -> None:
    """Build in place: deeper than protobuf would parse (or copy) it."""
    for _ in range(depth):
        if kind == "kvlist":
            node = node.kvlist_value.values.add(key="k").value
        else:
            node = node.array_value.values.add()
    node.string_value = "leaf"


@pytest.mark.parametrize("kind", ["kvlist", "array"])
@pytest.mark.parametrize("mode", MODES)
def test_deep_nesting_is_cut_to_a_text(kind: str, mode: MappingMode) -> None:
    request = logs([record(0)])
    rec = request.resource_logs[0].scope_logs[0].log_records[0]
    nest_into(rec.attributes.add(key="ok").value, MAX_DEPTH - 1, kind)  # within the limit
    nest_into(rec.body, 300, kind)
    nest_into(request.resource_logs[0].resource.attributes.add(key="deep").value, 300, kind)
    [doc] = documents(request, mode)
    text = orjson.dumps(doc).decode()
    assert text.count(f"nested deeper than {MAX_DEPTH} levels") == 2
    assert '"leaf"' in text  # only the one within the limit


def test_a_key_with_many_dots_stays_within_jsons_depth() -> None:
    key = ".".join(f"p{i}" for i in range(500))
    [doc] = documents(logs([record(0, None, **{key: 1})]), "ecs")
    node, depth = doc["p0"], 1
    while isinstance(node, dict):
        [node] = node.values()
        depth += 1
    assert node == 1 and depth == 33


# --- any request ----------------------------------------------------------------------------

keys = st.one_of(
    st.sampled_from(["", ".", "a..b", " ", "message", "data_stream.dataset", "event.name",
                     "data_stream.namespace", "host.name", "service.name", "a", "a.b", "labels",
                     "trace"]),
    st.text(max_size=12),
)  # fmt: skip
scalars = st.one_of(
    st.builds(lambda s: AnyValue(string_value=s), st.text(max_size=20)),
    st.builds(lambda b: AnyValue(bool_value=b), st.booleans()),
    st.builds(lambda i: AnyValue(int_value=i), st.integers(-(2**63), 2**63 - 1)),
    st.builds(lambda f: AnyValue(double_value=f), st.floats(allow_nan=True, allow_infinity=True)),
    st.builds(lambda b: AnyValue(bytes_value=b), st.binary(max_size=8)),
    st.just(AnyValue()),
)
any_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.builds(
            lambda v: AnyValue(array_value=ArrayValue(values=v)),
            st.lists(inner, max_size=3),
        ),
        st.builds(
            lambda kvs: AnyValue(kvlist_value=KeyValueList(values=kvs)),
            st.lists(st.builds(lambda k, v: KeyValue(key=k, value=v), keys, inner), max_size=3),
        ),
    ),
    max_leaves=8,
)  # fmt: skip
key_values = st.builds(lambda k, v: KeyValue(key=k, value=v), keys, any_values)
attribute_lists = st.lists(key_values, max_size=4)
records = st.builds(
    lambda attrs, body, t, o, n, s, ids: LogRecord(
        attributes=attrs, body=body, time_unix_nano=t, observed_time_unix_nano=o,
        severity_number=n, severity_text=s, trace_id=ids[0], span_id=ids[1]),
    attribute_lists, any_values, st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1),
    st.integers(-5, 30), st.text(max_size=6),
    st.sampled_from([(b"", b""), (bytes(16), bytes(8)), (b"\x01" * 16, b"\x02" * 8)]),
)  # fmt: skip


@st.composite
def requests(draw: st.DrawFn) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    for _ in range(draw(st.integers(0, 3))):
        rl = request.resource_logs.add()
        rl.resource.attributes.extend(draw(attribute_lists))
        for _ in range(draw(st.integers(0, 2))):
            sl = rl.scope_logs.add()
            sl.scope.name = draw(st.text(max_size=5))
            sl.scope.attributes.extend(draw(attribute_lists))
            sl.log_records.extend(draw(st.lists(records, max_size=4)))
    return request


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_any_request_gives_one_valid_document_per_record(request: ExportLogsServiceRequest) -> None:
    count = sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
    for mode in MODES:
        assert len(documents(request, mode)) == count
