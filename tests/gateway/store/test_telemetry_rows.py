"""What the full-text index gets from a record's searchable attributes: the quick reading of
the record's encoding must agree with walking its attributes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from gateway.store.telemetry_rows import SearchText

KEYS = ("http.route", "exception.message", "k" * 200)
SEARCH = SearchText(KEYS)

values = st.one_of(
    st.text(max_size=300).map(lambda s: AnyValue(string_value=s)),
    st.integers(-(2**63), 2**63 - 1).map(lambda i: AnyValue(int_value=i)),
    st.booleans().map(lambda b: AnyValue(bool_value=b)),
    st.binary(max_size=20).map(lambda b: AnyValue(bytes_value=b)),
    st.just(AnyValue()),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=30))


@given(st.lists(st.tuples(keys, values), max_size=12))
def test_reading_the_encoding_agrees_with_walking_the_attributes(pairs):
    record = LogRecord(attributes=[KeyValue(key=k, value=v) for k, v in pairs])
    assert SEARCH(record, record.SerializeToString()) == SEARCH.walk(record)


def kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def text(record: LogRecord) -> str:
    return SEARCH(record, record.SerializeToString())


def test_values_in_order_strings_as_they_are_others_as_json():
    record = LogRecord(attributes=[
        kv("http.route", AnyValue(string_value="/pay/é")),
        kv("other", AnyValue(string_value="not searched")),
        kv("exception.message", AnyValue(int_value=7)),
        kv("k" * 200, AnyValue(string_value="x" * 500)),  # two-byte lengths
    ])  # fmt: skip
    assert text(record) == "/pay/é 7 " + "x" * 500


def test_bytes_that_only_look_like_a_key_are_not_taken_for_one():
    fake = b"\n\nhttp.route\x12\x05\n\x03abc".decode()
    record = LogRecord(attributes=[kv("note", AnyValue(string_value=fake))])
    assert text(record) in ("", "abc")  # found as a key at worst: only its own record's text
    assert SEARCH.walk(record) == ""


def test_a_key_nested_in_a_map_value():
    nested = KeyValueList(values=[kv("http.route", AnyValue(string_value="/inner"))])
    record = LogRecord(attributes=[kv("request", AnyValue(kvlist_value=nested))])
    assert text(record) in ("", "/inner")  # documented: may be found


def test_no_searchable_attributes():
    record = LogRecord(attributes=[kv("a", AnyValue(string_value="b"))])
    assert text(record) == ""
    assert SearchText([])(record, record.SerializeToString()) == ""
