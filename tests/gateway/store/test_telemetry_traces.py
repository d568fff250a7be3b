"""Traces read back from the telemetry store: one trace in tree order, and trace search."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from gateway.store.telemetry_queries import TelemetryReader
from gateway.store.telemetry_records import TraceQuery
from gateway.store.telemetry_writer import TelemetryWriter
from tests.gateway.store.telemetry_data import (
    BASE_NS,
    MS,
    SpanSpec,
    attr,
    spans_batch,
    trace_hex,
)

NOW = BASE_NS / 1e9 + 3600

# Trace 1: frontend -> checkout -> (payments, inventory), spans arriving in two requests,
# children out of start order within each request.
TRACE_1 = [
    SpanSpec(1, None, "frontend", "GET /cart", 0, 100),
    SpanSpec(3, 2, "payments", "charge", 30, 60, error=True),
    SpanSpec(2, 1, "checkout", "checkout", 10, 90),
    SpanSpec(4, 2, "inventory", "reserve", 20, 25),
    SpanSpec(5, 4, "inventory", "SELECT", 21, 24),
]
# Trace 2: the root never arrived; two spans whose parents are missing, one child.
TRACE_2 = [
    SpanSpec(12, 10, "checkout", "late", 500, 520),
    SpanSpec(11, 10, "payments", "early", 400, 700),
    SpanSpec(13, 11, "payments", "child", 410, 420),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[TelemetryWriter, TelemetryReader]]:
    path = tmp_path / "otelgate.db"
    writer = TelemetryWriter(path, retention=86400, max_size_bytes=16 << 20,
                             search_attributes=[], clock=lambda: NOW)  # fmt: skip
    reader = TelemetryReader(path)
    yield writer, reader
    reader.close()
    writer.close()


@pytest.fixture
def reader(store: tuple[TelemetryWriter, TelemetryReader]) -> TelemetryReader:
    writer, reader = store
    writer.write(spans_batch(1, TRACE_1[:2]))
    writer.write(spans_batch(1, TRACE_1[2:]))
    writer.write(spans_batch(2, TRACE_2))
    return reader


def shape(reader: TelemetryReader, trace: int) -> list[tuple[str, int, bool]]:
    return [(s.name, s.depth, s.missing_parent) for s in reader.trace(trace_hex(trace))]


def test_parent_before_children_siblings_by_start(reader: TelemetryReader):
    assert shape(reader, 1) == [
        ("GET /cart", 0, False),
        ("checkout", 1, False),
        ("reserve", 2, False),
        ("SELECT", 3, False),
        ("charge", 2, False),
    ]


def test_spans_whose_parent_is_missing_are_listed_at_the_top(reader: TelemetryReader):
    assert shape(reader, 2) == [("early", 0, True), ("child", 1, False), ("late", 0, True)]


def test_a_span_in_full(reader: TelemetryReader):
    charge = next(s for s in reader.trace(trace_hex(1)) if s.name == "charge")
    assert charge.trace_id == trace_hex(1)
    assert charge.span_id == (3).to_bytes(8, "big").hex()
    assert charge.parent_span_id == (2).to_bytes(8, "big").hex()
    assert charge.service == "payments"
    assert charge.kind == "server"
    assert charge.start_time_unix_nano == BASE_NS + 30 * MS
    assert charge.end_time_unix_nano == BASE_NS + 60 * MS
    assert charge.duration_ns == 30 * MS
    assert (charge.status_code, charge.status_message) == ("error", "boom")
    assert charge.attributes == {"http.route": "/charge"}
    assert charge.resource == {"service.name": "payments"}
    assert charge.scope_name == "tests"


def test_events_and_links(store: tuple[TelemetryWriter, TelemetryReader]):
    writer, reader = store
    batch = spans_batch(5, [SpanSpec(1, None, "a", "op", 0, 10)])
    span = batch.request.resource_spans[0].scope_spans[0].spans[0]  # type: ignore[union-attr]
    event = span.events.add(name="exception", time_unix_nano=BASE_NS + 5 * MS)
    event.attributes.extend([attr("exception.type", "ValueError"),
                             KeyValue(key="n", value=AnyValue(int_value=3))])  # fmt: skip
    link = span.links.add(trace_id=(9).to_bytes(16, "big"), span_id=(8).to_bytes(8, "big"))
    link.attributes.append(attr("why", "retry"))
    writer.write(batch)
    (stored,) = reader.trace(trace_hex(5))
    assert [(e.name, e.time_unix_nano, e.attributes) for e in stored.events] == [
        ("exception", BASE_NS + 5 * MS, {"exception.type": "ValueError", "n": 3})
    ]
    assert [(k.trace_id, k.span_id, k.attributes) for k in stored.links] == [
        (trace_hex(9), (8).to_bytes(8, "big").hex(), {"why": "retry"})
    ]


def test_duplicates_and_cycles_do_not_lose_or_repeat_spans(
    store: tuple[TelemetryWriter, TelemetryReader],
):
    writer, reader = store
    specs = [SpanSpec(1, 2, "a", "x", 0, 10), SpanSpec(2, 1, "a", "y", 1, 9),
             SpanSpec(3, 3, "a", "self", 2, 3)]  # fmt: skip
    writer.write(spans_batch(6, specs))
    writer.write(spans_batch(6, specs[:1]))  # delivered twice
    assert sorted(s.name for s in reader.trace(trace_hex(6))) == ["self", "x", "y"]
    assert shape(reader, 6)[0] == ("self", 0, False)


def test_unknown_and_invalid_traces(reader: TelemetryReader):
    assert reader.trace(trace_hex(404)) == []
    with pytest.raises(ValueError, match="32 hex digits"):
        reader.trace("abc")


# --- trace search -------------------------------------------------------------------------


def test_summaries(reader: TelemetryReader):
    second, first = reader.traces(TraceQuery())
    assert first.trace_id == trace_hex(1)
    assert (first.root_service, first.root_name, first.has_root) == ("frontend", "GET /cart", True)
    assert first.start_time_unix_nano == BASE_NS
    assert first.duration_ns == 100 * MS
    assert (first.span_count, first.error_count) == (5, 1)
    assert first.services == ["checkout", "frontend", "inventory", "payments"]
    assert second.trace_id == trace_hex(2)  # newer: started later
    assert (second.root_service, second.root_name, second.has_root) == ("payments", "early", False)
    assert second.duration_ns == 300 * MS
    assert (second.span_count, second.error_count) == (3, 0)


@pytest.mark.parametrize(
    ("query", "traces"),
    [
        (TraceQuery(service="inventory"), [1]),
        (TraceQuery(service="payments"), [2, 1]),
        (TraceQuery(name="late"), [2]),
        (TraceQuery(status="error"), [1]),
        (TraceQuery(status="ok"), [2]),
        (TraceQuery(min_duration=0.2), [2]),
        (TraceQuery(min_duration=0.08), [2, 1]),
        (TraceQuery(since=(BASE_NS + 300 * MS) / 1e9), [2]),
        (TraceQuery(until=(BASE_NS + 300 * MS) / 1e9), [1]),
        (TraceQuery(limit=1), [2]),
        (TraceQuery(service="payments", status="error"), [1]),
        (TraceQuery(service="nobody"), []),
    ],
)
def test_search_filters(reader: TelemetryReader, query: TraceQuery, traces: list[int]):
    assert [s.trace_id for s in reader.traces(query)] == [trace_hex(t) for t in traces]


def test_many_traces_newest_first(store: tuple[TelemetryWriter, TelemetryReader]):
    writer, reader = store
    for t in range(1, 301):
        specs = [SpanSpec(1, None, "svc", "root", t * 10, t * 10 + 5, error=t % 7 == 0),
                 SpanSpec(2, 1, "db", "query", t * 10 + 1, t * 10 + 2)]  # fmt: skip
        writer.write(spans_batch(t, specs))
    found = reader.traces(TraceQuery(limit=50))
    assert [s.trace_id for s in found] == [trace_hex(t) for t in range(300, 250, -1)]
    errors = reader.traces(TraceQuery(status="error", limit=1000))
    assert [s.trace_id for s in errors] == [trace_hex(t) for t in range(294, 0, -7)]
    ok = reader.traces(TraceQuery(status="ok", service="db", limit=10))
    assert [s.trace_id for s in ok] == [trace_hex(t) for t in range(300, 286, -1) if t % 7][:10]


@pytest.mark.parametrize(
    ("query", "message"),
    [(TraceQuery(limit=0), "limit"), (TraceQuery(status="bad"), "status")],  # type: ignore[arg-type]
)
def test_bad_trace_queries(reader: TelemetryReader, query: TraceQuery, message: str):
    with pytest.raises(ValueError, match=message):
        reader.traces(query)
