"""The telemetry writer: what a batch becomes (times, ids, bodies, severities, sources), the
file it shares with the rest of the store, reopening, and reading while it writes."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, SeverityNumber

from gateway.otlp.batch import Batch, Signal
from gateway.store.sqlite import SqliteStore
from gateway.store.telemetry_queries import TelemetryReader
from gateway.store.telemetry_records import LogQuery
from gateway.store.telemetry_writer import TelemetryWriter
from tests.factories import metrics_request
from tests.gateway.store.telemetry_data import (
    BASE_NS,
    MS,
    SpanSpec,
    attr,
    log_fact,
    logs_batch,
    order_number,
    spans_batch,
    trace_hex,
)

NOW = BASE_NS / 1e9 + 60  # one minute after the test records' times
HOUR_NS = 3600 * 1_000_000_000


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "otelgate.db"


@pytest.fixture
def writer(path: Path) -> Iterator[TelemetryWriter]:
    writer = TelemetryWriter(
        path, retention=86400, max_size_bytes=64 << 20, search_attributes=["http.route"],
        clock=lambda: NOW,
    )  # fmt: skip
    yield writer
    writer.close()


@pytest.fixture
def reader(path: Path, writer: TelemetryWriter) -> Iterator[TelemetryReader]:
    reader = TelemetryReader(path)
    yield reader
    reader.close()


def one_log_batch(*records: LogRecord, service: str = "checkout") -> Batch:
    request = ExportLogsServiceRequest()
    group = request.resource_logs.add()
    group.resource.attributes.append(attr("service.name", service))
    group.scope_logs.add().log_records.extend(records)
    return Batch.from_request(Signal.LOGS, request)


def body_of(reader: TelemetryReader, **filters: object) -> list[str]:
    return [r.body for r in reader.search_logs(LogQuery(**filters)).records]  # type: ignore[arg-type]


def test_metrics_are_not_stored(writer: TelemetryWriter):
    assert writer.write(Batch.from_request(Signal.METRICS, metrics_request())) == 0


def test_times_fall_back_and_absurd_future_times_are_clamped(
    writer: TelemetryWriter, reader: TelemetryReader
):
    now_ns = int(NOW * 1e9)
    records = [
        LogRecord(time_unix_nano=BASE_NS, body=AnyValue(string_value="own")),
        LogRecord(observed_time_unix_nano=BASE_NS + MS, body=AnyValue(string_value="observed")),
        LogRecord(body=AnyValue(string_value="received")),
        LogRecord(time_unix_nano=now_ns + HOUR_NS // 2, body=AnyValue(string_value="skewed")),
        LogRecord(time_unix_nano=now_ns + 2 * HOUR_NS, body=AnyValue(string_value="future")),
        LogRecord(time_unix_nano=2**64 - 1, observed_time_unix_nano=2**64 - 1,
                  body=AnyValue(string_value="max")),
    ]  # fmt: skip
    assert writer.write(one_log_batch(*records)) == 6
    times = {r.body: r.time_unix_nano for r in reader.search_logs(LogQuery()).records}
    assert times == {
        "own": BASE_NS, "observed": BASE_NS + MS, "received": now_ns,
        "skewed": now_ns + HOUR_NS // 2, "future": now_ns, "max": now_ns,
    }  # fmt: skip
    spans = spans_batch(3, [SpanSpec(1, None, "a", "endless", 0, 1), SpanSpec(2, 1, "a", "x", 0, 1),
                            SpanSpec(3, 1, "a", "unstarted", 0, 1)])  # fmt: skip
    endless, future, unstarted = spans.request.resource_spans[0].scope_spans[0].spans  # type: ignore[union-attr]
    endless.end_time_unix_nano = 2**64 - 1
    future.start_time_unix_nano = future.end_time_unix_nano = 2**64 - 1
    unstarted.start_time_unix_nano = 0
    assert writer.write(spans) == 3
    stored = {s.span_id[-1]: s for s in reader.trace(trace_hex(3))}
    assert stored["1"].start_time_unix_nano == BASE_NS
    assert stored["1"].end_time_unix_nano == now_ns + HOUR_NS  # cut to the limit
    assert (stored["2"].start_time_unix_nano, stored["2"].duration_ns) == (now_ns, 0)
    assert (stored["3"].start_time_unix_nano, stored["3"].duration_ns) == (now_ns, 0)


def test_non_string_bodies_are_json_and_searchable(
    writer: TelemetryWriter, reader: TelemetryReader
):
    kvlist = KeyValueList(values=[KeyValue(key="user", value=AnyValue(string_value="ada"))])
    bodies = [
        AnyValue(kvlist_value=kvlist),
        AnyValue(int_value=42),
        AnyValue(array_value=ArrayValue(values=[AnyValue(bool_value=True)])),
        AnyValue(bytes_value=b"\x00\x01"),
        AnyValue(),
    ]
    writer.write(one_log_batch(*(LogRecord(time_unix_nano=BASE_NS + i, body=b)
                                 for i, b in enumerate(bodies))))  # fmt: skip
    assert body_of(reader) == ["", '"AAE="', "[true]", "42", '{"user":"ada"}']
    assert body_of(reader, q="ada") == ['{"user":"ada"}']


def test_ids_severity_and_attributes(writer: TelemetryWriter, reader: TelemetryReader):
    records = [
        LogRecord(time_unix_nano=BASE_NS, trace_id=bytes(16), span_id=bytes(8),
                  severity_text="Warning", body=AnyValue(string_value="zero ids")),
        LogRecord(time_unix_nano=BASE_NS + 1, trace_id=b"\x01" * 15, span_id=b"\x01",
                  severity_number=SeverityNumber.SEVERITY_NUMBER_ERROR,
                  body=AnyValue(string_value="short ids")),
        LogRecord(time_unix_nano=BASE_NS + 2, severity_text="chatty",
                  body=AnyValue(string_value="unknown text"),
                  attributes=[attr("http.route", "/pay"), attr("other", "x")]),
    ]  # fmt: skip
    writer.write(one_log_batch(*records))
    found = {r.body: r for r in reader.search_logs(LogQuery()).records}
    assert found["zero ids"].trace_id is None and found["zero ids"].span_id is None
    assert found["short ids"].trace_id is None and found["short ids"].span_id is None
    assert found["zero ids"].severity_number == 13  # from its text
    assert found["zero ids"].severity_text == "Warning"
    assert found["unknown text"].severity_number == 0
    assert found["unknown text"].attributes == {"http.route": "/pay", "other": "x"}
    assert body_of(reader, severity="warn") == ["short ids", "zero ids"]
    assert body_of(reader, q="pay") == ["unknown text"]  # a searchable attribute
    assert body_of(reader, q="other") == []


def test_resources_are_stored_once(writer: TelemetryWriter, path: Path):
    facts = [log_fact(i, 100) for i in range(100)]
    writer.write(logs_batch(facts[:50]))
    writer.write(logs_batch(facts[50:]))
    writer.write(spans_batch(7, [SpanSpec(1, None, "checkout", "GET", 0, 5)]))
    with sqlite3.connect(path) as db:
        services = db.execute("SELECT service FROM telemetry_sources ORDER BY service")
        # four log services, and the span's resource (no host.name: another resource)
        assert [s for (s,) in services] == sorted(
            ["checkout", "payments", "inventory", "frontend", "checkout"]
        )


def test_spans_without_valid_ids_are_dropped_and_counted(writer: TelemetryWriter):
    batch = spans_batch(7, [SpanSpec(1, None, "a", "ok", 0, 5), SpanSpec(2, 1, "a", "ok", 1, 2)])
    request = batch.request
    spans = request.resource_spans[0].scope_spans[0].spans  # type: ignore[union-attr]
    spans[1].span_id = bytes(8)
    assert writer.write(batch) == 1
    assert writer.counts.spans_written == 1
    assert writer.counts.spans_dropped == 1


def test_shares_the_file_with_the_rest_of_the_store(path: Path):
    store = SqliteStore(path)  # created first, with its own tables (and these, idempotently)
    store.add_slo_buckets({("slo", 1): (1, 2)})
    writer = TelemetryWriter(path, retention=3600, max_size_bytes=8 << 20,
                             search_attributes=[], clock=lambda: NOW)  # fmt: skip
    writer.write(logs_batch([log_fact(i, 10) for i in range(10)]))
    store.add_slo_buckets({("slo", 1): (1, 1)})
    assert store.load_slo_buckets(["slo"], 0) == {"slo": {1: (2.0, 3.0)}}
    reader = TelemetryReader(path)
    assert len(reader.search_logs(LogQuery()).records) == 10
    for closing in (reader, writer, store):
        closing.close()


def test_reopening_continues_the_ids(path: Path):
    def open_writer() -> TelemetryWriter:
        return TelemetryWriter(path, retention=3600, max_size_bytes=8 << 20,
                               search_attributes=[], clock=lambda: NOW)  # fmt: skip

    facts = [log_fact(i, 20) for i in range(20)]
    first = open_writer()
    first.write(logs_batch(facts[:10]))
    first.close()
    second = open_writer()
    second.write(logs_batch(facts[10:]))
    second.close()
    reader = TelemetryReader(path)
    records = reader.search_logs(LogQuery()).records
    assert sorted(r.id for r in records) == list(range(1, 21))
    assert sorted(order_number(r.body) for r in records) == list(range(20))
    reader.close()


def test_a_reader_before_any_writer_finds_nothing(tmp_path: Path):
    reader = TelemetryReader(tmp_path / "new" / "otelgate.db")
    assert reader.search_logs(LogQuery(q="anything")).records == []
    assert reader.trace(trace_hex(1)) == []
    reader.close()


def test_reads_while_the_writer_writes_and_deletes(path: Path):
    # A small cap: the writer also deletes (and checkpoints) while the readers read.
    writer = TelemetryWriter(path, retention=3600, max_size_bytes=4 << 20,
                             search_attributes=["http.route"], clock=lambda: NOW)  # fmt: skip
    reader = TelemetryReader(path)
    errors: list[BaseException] = []
    done = threading.Event()
    reads = [0]

    def read() -> None:
        try:
            while not done.is_set():
                reader.search_logs(LogQuery(q="payment", limit=50))
                reader.search_logs(LogQuery(service="checkout", severity="warn"))
                reader.trace(trace_hex(3))
                reads[0] += 1
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    facts = [log_fact(i, 20_000) for i in range(20_000)]
    for k in range(0, 20_000, 500):
        writer.write(logs_batch(facts[k : k + 500]))
        writer.write(spans_batch(k + 1, [SpanSpec(1, None, "a", "root", 0, 9)]))
        if k % 5000 == 0:
            writer.enforce_retention()
    done.set()
    for thread in threads:
        thread.join()
    reader.close()
    writer.close()
    assert errors == []
    assert reads[0] > 3
    assert writer.counts.deleted.logs_by_size > 0
