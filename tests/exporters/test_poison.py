"""One item a backend refuses costs only itself, through the real exporters and a real
Prometheus, or look-alikes that answer like the real backends (tests/support/REAL_LOKI.md,
tests/support/otlp_sink.py).

Each test queues a batch holding one poison item, then a clean batch, on a queue with the
default retry policy (5 minutes) and a single worker: every other item must be delivered
within seconds, exactly one counted failed, and the clean batch must not wait behind it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from prometheus_client import CollectorRegistry

from exporters.base import Exporter
from exporters.jaeger import JaegerExporter
from exporters.loki.exporter import LokiExporter
from exporters.otlp.exporter import OtlpExporter
from exporters.prometheus.remote_write import RemoteWriteExporter
from exporters.queue import ExporterQueue
from gateway.otlp.batch import Batch, Signal
from gateway.selfmetrics import GatewayMetrics
from tests.support.loki_server import LokiServer
from tests.support.otlp_samples import sample_request, span_id, trace_id
from tests.support.otlp_sink import OtlpSink
from tests.support.prometheus_server import PrometheusServer

DEADLINE = 10.0  # seconds; the default retry policy would hold a poison batch for 300


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def _until(check: Callable[[], bool], timeout: float = DEADLINE) -> float:
    """Seconds until ``check()`` held; fails after ``timeout``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, "not delivered in time"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def _queue(exporter: Exporter) -> tuple[ExporterQueue, CollectorRegistry]:
    registry = CollectorRegistry()
    return ExporterQueue("poisoned", exporter, GatewayMetrics(registry), num_consumers=1), registry


def _logs(n: int, first: int = 0) -> ExportLogsServiceRequest:
    """``n`` log records stamped now, each with a distinct body."""
    request = sample_request(Signal.LOGS, n)
    assert isinstance(request, ExportLogsServiceRequest)
    now = time.time_ns()
    for i, record in enumerate(request.resource_logs[0].scope_logs[0].log_records):
        record.time_unix_nano = record.observed_time_unix_nano = now + i
        record.body.string_value = f"record {first + i}"
    return request


def _traces(n: int, first: int = 0) -> ExportTraceServiceRequest:
    request = sample_request(Signal.TRACES, n)
    assert isinstance(request, ExportTraceServiceRequest)
    for i, span in enumerate(request.resource_spans[0].scope_spans[0].spans):
        span.trace_id, span.span_id = trace_id(first + i + 1), span_id(first + i + 1)
        span.name = f"span {first + i}"
    return request


async def test_loki_stores_every_entry_but_the_one_it_refuses() -> None:
    """Real Loki stores the valid entries of a push and answers 400 for one too old; the
    batch is split until the old entry stands alone. Resent entries are not stored twice."""
    poisoned = _logs(200)
    old = poisoned.resource_logs[0].scope_logs[0].log_records[137]
    old.time_unix_nano = time.time_ns() - 30 * 86400 * 10**9
    with LokiServer() as loki:
        exporter = LokiExporter(loki.url)
        queue, registry = _queue(exporter)
        await queue.start()
        try:
            queue.offer(Batch.from_request(Signal.LOGS, poisoned))
            queue.offer(Batch.from_request(Signal.LOGS, _logs(50, first=1000)))
            await _until(lambda: len(loki.entries()) == 249)
            await _until(lambda: queue.size == 0)
        finally:
            await queue.shutdown(5)
        lines = [entry.line for _, entry in loki.entries()]
        assert len(lines) == len(set(lines)) == 249  # each stored once
        assert "record 137" not in lines
        assert _value(registry, "otelgate_exporter_failed_items_total",
                      exporter="poisoned", signal="logs") == 1  # fmt: skip
        assert _value(registry, "otelgate_exporter_sent_items_total",
                      exporter="poisoned", signal="logs") == 249  # fmt: skip
        assert all("too old" in why for why in loki.ignored)
        assert queue.status.last_error is not None and "1 of 200 logs" in queue.status.last_error


async def test_loki_names_with_nothing_valid_are_dropped_not_sent() -> None:
    """Real Loki refuses a whole push (500) for a metadata name like ``.``: the mapping drops
    the attribute, counts it, and delivers the record."""
    request = _logs(20)
    record = request.resource_logs[0].scope_logs[0].log_records[3]
    record.attributes.extend(
        [
            KeyValue(key=".", value=AnyValue(string_value="x")),
            KeyValue(key="ok.key", value=AnyValue(string_value="y")),
        ]
    )
    with LokiServer() as loki:
        registry = CollectorRegistry()
        metrics = GatewayMetrics(registry)
        exporter = LokiExporter(loki.url, on_adjusted=metrics.adjusted_counter("poisoned"))
        queue = ExporterQueue("poisoned", exporter, metrics, num_consumers=1)
        await queue.start()
        try:
            queue.offer(Batch.from_request(Signal.LOGS, request))
            await _until(lambda: len(loki.entries()) == 20)
        finally:
            await queue.shutdown(5)
    meta = next(e.meta for _, e in loki.entries() if e.line == "record 3")
    assert meta["ok_key"] == "y" and "_" not in meta
    assert _value(registry, "otelgate_exporter_adjusted_total",
                  exporter="poisoned", reason="name_dropped") == 1  # fmt: skip
    assert _value(registry, "otelgate_exporter_failed_items_total",
                  exporter="poisoned", signal="logs") == 0  # fmt: skip


async def test_a_push_over_lokis_burst_is_sent_in_pieces_that_fit() -> None:
    """30 records of 300 KB are one 7.9 MB push: over Loki's 6 MB burst, 429 on every try.
    Sent in pieces of at most 1 MiB, every record arrives (lines cut to Loki's 256 KiB)."""
    request = _logs(30)
    for record in request.resource_logs[0].scope_logs[0].log_records:
        record.body.string_value += " " + "z" * 300_000
    with LokiServer() as loki:
        queue, registry = _queue(LokiExporter(loki.url))
        await queue.start()
        try:
            queue.offer(Batch.from_request(Signal.LOGS, request))
            await _until(lambda: len(loki.entries()) == 30)
        finally:
            await queue.shutdown(5)
        assert not [r for r in loki.refused if r.status == 429]
        assert max(sum(len(e.line) for s in p.streams for e in s.entries)
                   for p in loki.pushes) <= 1024 * 1024  # fmt: skip
    assert _value(registry, "otelgate_exporter_sent_items_total",
                  exporter="poisoned", signal="logs") == 30  # fmt: skip


@pytest.mark.parametrize(
    ("protocol", "jaeger"), [("grpc", False), ("http/protobuf", False), ("grpc", True)]
)
async def test_otlp_delivers_every_span_but_the_one_the_backend_refuses(
    protocol: str, jaeger: bool
) -> None:
    """The Collector (and Jaeger, which ingests OTLP with the same code) refuses a whole
    request for one span with an id of the wrong length."""
    poisoned = _traces(200)
    poisoned.resource_spans[0].scope_spans[0].spans[61].trace_id = b"\x01\x02\x03"
    with OtlpSink() as sink:
        endpoint = sink.grpc_endpoint if protocol == "grpc" else sink.http_endpoint
        otlp = OtlpExporter(endpoint, protocol)  # type: ignore[arg-type]
        queue, registry = _queue(JaegerExporter(otlp) if jaeger else otlp)
        await queue.start()
        try:
            queue.offer(Batch.from_request(Signal.TRACES, poisoned))
            queue.offer(Batch.from_request(Signal.TRACES, _traces(40, first=1000)))
            await _until(lambda: len(sink.spans()) == 239)
            await _until(lambda: queue.size == 0)
        finally:
            await queue.shutdown(5)
        names = [span.name for span in sink.spans()]
        assert len(set(names)) == 239 and "span 61" not in names
    assert _value(registry, "otelgate_exporter_failed_items_total",
                  exporter="poisoned", signal="traces") == 1  # fmt: skip
    assert _value(registry, "otelgate_exporter_sent_items_total",
                  exporter="poisoned", signal="traces") == 239  # fmt: skip
    assert _value(registry, "otelgate_exporter_batch_splits_total",
                  exporter="poisoned", signal="traces") >= 7  # log2(200) levels  # fmt: skip


async def test_otlp_requests_stay_under_the_backends_grpc_limit() -> None:
    """grpcio servers refuse messages over 4 MiB; a 9 MB batch goes in pieces under it."""
    request = _traces(30)
    for span in request.resource_spans[0].scope_spans[0].spans:
        span.attributes.add(key="blob", value=AnyValue(string_value="b" * 300_000))
    with OtlpSink() as sink:
        queue, registry = _queue(OtlpExporter(sink.grpc_endpoint, "grpc"))
        await queue.start()
        try:
            queue.offer(Batch.from_request(Signal.TRACES, request))
            await _until(lambda: len(sink.spans()) == 30)
        finally:
            await queue.shutdown(5)
        assert sink.refused == []
        assert max(len(r.body) for r in sink.received) <= 4 * 1024 * 1024
    assert _value(registry, "otelgate_exporter_failed_items_total",
                  exporter="poisoned", signal="traces") == 0  # fmt: skip


@pytest.mark.parametrize(("rejected", "failed"), [(3, 3), (50, 10)])
async def test_a_partial_success_counts_the_rejected_items_failed_and_the_rest_sent(
    rejected: int, failed: int
) -> None:
    """OTLP ``partial_success``: the destination kept all but N items; nothing is retried.
    A destination claiming more rejections than items sent cannot make counts negative."""
    with OtlpSink() as sink:
        sink.partial_success = (rejected, "spans were too old")
        queue, registry = _queue(OtlpExporter(sink.http_endpoint, "http/protobuf"))
        await queue.start()
        try:
            queue.offer(Batch.from_request(Signal.TRACES, _traces(10)))
            await _until(lambda: queue.size == 0)
        finally:
            await queue.shutdown(5)
        assert len(sink.received) == 1
    assert _value(registry, "otelgate_exporter_failed_items_total",
                  exporter="poisoned", signal="traces") == failed  # fmt: skip
    assert _value(registry, "otelgate_exporter_sent_items_total",
                  exporter="poisoned", signal="traces") == 10 - failed  # fmt: skip
    assert queue.status.last_error is not None and "spans were too old" in queue.status.last_error


def _gauges(first: int, n: int, at_ns: int) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    scope = request.resource_metrics.add().scope_metrics.add()
    for i in range(first, first + n):
        metric = scope.metrics.add(name=f"poison_gauge_{i}")
        metric.gauge.data_points.add(as_double=float(i), time_unix_nano=at_ns)
    return request


async def test_remote_write_delivers_every_series_but_the_one_prometheus_refuses(
    tmp_path: Path,
) -> None:
    """A real Prometheus answers 400 ("out of bounds") for a sample 3 h older than its head,
    and keeps (or, in 2.42, rolls back) the rest: the series are halved until the old one
    stands alone; the other 49 are queryable, one point is counted failed."""
    now = time.time_ns()
    poisoned = _gauges(50, 50, now)
    point = poisoned.resource_metrics[0].scope_metrics[0].metrics[17].gauge.data_points[0]
    point.time_unix_nano = now - 3 * 3600 * 10**9
    with PrometheusServer(tmp_path, remote_write_receiver=True) as prometheus:
        exporter = RemoteWriteExporter(prometheus.write_url, registry=CollectorRegistry())
        queue, registry = _queue(exporter)
        await queue.start()
        try:
            queue.offer(Batch.from_request(Signal.METRICS, _gauges(0, 50, now)))
            queue.offer(Batch.from_request(Signal.METRICS, poisoned))
            queue.offer(Batch.from_request(Signal.METRICS, _gauges(100, 10, now)))
            await _until(lambda: queue.size == 0)
        finally:
            await queue.shutdown(5)
        found = prometheus.query('count({__name__=~"poison_gauge_.*"})')
        assert float(found[0]["value"][1]) == 109
        assert prometheus.query("poison_gauge_67") == []
    assert _value(registry, "otelgate_exporter_failed_items_total",
                  exporter="poisoned", signal="metrics") == 1  # fmt: skip
    assert _value(registry, "otelgate_exporter_sent_items_total",
                  exporter="poisoned", signal="metrics") == 109  # fmt: skip
