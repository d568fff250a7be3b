"""The spanmetrics processor: calls and duration histograms from spans, cumulative across
flushes, bounded cardinality, emitted through the gateway's emit callback."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from prometheus_client import CollectorRegistry

from gateway.components import build_processor
from gateway.config.issues import ConfigError
from gateway.config.loading import parse_config
from gateway.otlp.batch import Batch, Signal
from gateway.otlp.builders import instance_id
from gateway.otlp.validation import validate
from gateway.processors.spanmetrics import CALLS, DEFAULT_BUCKETS, DURATION, SpanMetricsProcessor
from gateway.selfmetrics import GatewayMetrics
from tests.factories import attr, metrics_request

CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
NS = 1_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000 * NS

    def __call__(self) -> int:
        return self.now


def spans(service: str | None, *items: tuple[str, int, int, float]) -> Batch:
    """Spans (name, kind, status code, seconds) of one resource."""
    request = Signal.TRACES.request_type()
    rs = request.resource_spans.add()  # type: ignore[union-attr]
    if service is not None:
        rs.resource.attributes.append(attr("service.name", service))
    ss = rs.scope_spans.add()
    for i, (name, kind, code, seconds) in enumerate(items):
        start = 1_700_000_000 * NS + i
        ss.spans.append(
            Span(
                trace_id=b"\1" * 16,
                span_id=(i + 1).to_bytes(8, "big"),
                name=name,
                kind=kind,  # type: ignore[arg-type]
                start_time_unix_nano=start,
                end_time_unix_nano=start + round(seconds * NS),
                status=Status(code=code),  # type: ignore[arg-type]
            )
        )
    return Batch.from_request(Signal.TRACES, request)


SERVER, CLIENT = Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT
OK, ERROR, UNSET = Status.STATUS_CODE_OK, Status.STATUS_CODE_ERROR, Status.STATUS_CODE_UNSET


def points(processor: SpanMetricsProcessor) -> tuple[dict, dict]:
    """(calls by labels, histogram points by labels) from one collect()."""
    request = processor.collect()
    assert request is not None
    assert validate(Signal.METRICS, request).count == 0
    [rm] = request.resource_metrics
    resource = {kv.key: kv.value.string_value for kv in rm.resource.attributes}
    assert resource["service.name"] == "otelgate"
    assert resource["service.instance.id"] == instance_id()
    metrics = {m.name: m for m in rm.scope_metrics[0].metrics}
    assert set(metrics) == {CALLS, DURATION}
    calls, duration = metrics[CALLS], metrics[DURATION]
    assert (calls.unit, duration.unit) == ("1", "s")
    assert calls.sum.is_monotonic and calls.sum.aggregation_temporality == CUMULATIVE
    assert duration.histogram.aggregation_temporality == CUMULATIVE

    def key(point) -> tuple[str, ...]:
        found = {kv.key: kv.value.string_value for kv in point.attributes}
        assert set(found) == {"service.name", "span.name", "span.kind", "status.code"}
        return (found["service.name"], found["span.name"], found["span.kind"], found["status.code"])

    return (
        {key(p): p for p in calls.sum.data_points},
        {key(p): p for p in duration.histogram.data_points},
    )


def test_calls_and_duration_histograms_per_service_operation_kind_and_status():
    processor = SpanMetricsProcessor("spanmetrics", buckets=[0.1, 0.5, 1.0], clock_ns=Clock())
    batch = spans(
        "orders",
        ("GET /orders", SERVER, OK, 0.05),
        ("GET /orders", SERVER, OK, 0.1),  # on a boundary: bucket (0.05, 0.1] is inclusive
        ("GET /orders", SERVER, OK, 0.7),
        ("GET /orders", SERVER, ERROR, 3.0),  # above every bound: the +Inf bucket
        ("SELECT", CLIENT, UNSET, 0.002),
    )
    original = batch.serialized()
    assert processor.process(batch) is batch
    assert batch.serialized() == original  # never changes the spans
    processor.process(spans(None, ("cron", Span.SPAN_KIND_INTERNAL, OK, 0.3)))
    calls, hist = points(processor)
    ok = ("orders", "GET /orders", "SPAN_KIND_SERVER", "STATUS_CODE_OK")
    err = ("orders", "GET /orders", "SPAN_KIND_SERVER", "STATUS_CODE_ERROR")
    db = ("orders", "SELECT", "SPAN_KIND_CLIENT", "STATUS_CODE_UNSET")
    cron = ("unknown_service", "cron", "SPAN_KIND_INTERNAL", "STATUS_CODE_OK")
    assert {k: p.as_int for k, p in calls.items()} == {ok: 3, err: 1, db: 1, cron: 1}
    assert list(hist[ok].explicit_bounds) == [0.1, 0.5, 1.0]
    assert list(hist[ok].bucket_counts) == [2, 0, 1, 0]
    assert hist[ok].count == 3 and hist[ok].sum == pytest.approx(0.85)
    assert (hist[ok].min, hist[ok].max) == pytest.approx((0.05, 0.7))
    assert list(hist[err].bucket_counts) == [0, 0, 0, 1]
    assert list(hist[db].bucket_counts) == [1, 0, 0, 0]


def test_totals_are_cumulative_across_flushes_with_a_fixed_start_time():
    clock = Clock()
    processor = SpanMetricsProcessor("spanmetrics", clock_ns=clock)
    assert processor.collect() is None  # nothing seen, nothing to emit
    key = ("api", "GET /", "SPAN_KIND_SERVER", "STATUS_CODE_OK")
    processor.process(spans("api", ("GET /", SERVER, OK, 0.02), ("GET /", SERVER, OK, 0.2)))
    first_calls, first_hist = points(processor)
    clock.now += 15 * NS
    processor.process(spans("api", ("GET /", SERVER, OK, 0.02)))
    clock.now += 15 * NS
    calls, hist = points(processor)
    assert (first_calls[key].as_int, calls[key].as_int) == (2, 3)
    assert calls[key].start_time_unix_nano == first_calls[key].start_time_unix_nano
    assert calls[key].time_unix_nano - first_calls[key].time_unix_nano == 30 * NS
    assert (first_hist[key].count, hist[key].count) == (2, 3)
    assert hist[key].sum == pytest.approx(0.24)
    # Default buckets: 0.02 s falls in (0.01, 0.025], 0.2 s in (0.1, 0.25].
    assert list(hist[key].explicit_bounds) == list(DEFAULT_BUCKETS)
    assert hist[key].bucket_counts[2] == 2 and hist[key].bucket_counts[5] == 1


def test_cardinality_is_bounded_per_service_and_overall():
    registry = CollectorRegistry()
    processor = SpanMetricsProcessor(
        "spanmetrics/x", max_operations_per_service=2, max_services=2, registry=registry
    )
    names = [f"GET /users/{i}" for i in range(5)]
    processor.process(spans("a", *[(n, SERVER, OK, 0.01) for n in names]))
    processor.process(spans("a", (names[1], SERVER, OK, 0.01)))  # a known name stays itself
    processor.process(spans("b", ("x", SERVER, OK, 0.01)))
    processor.process(spans("c", ("y", SERVER, OK, 0.01), ("z", SERVER, OK, 0.01)))
    calls, _ = points(processor)
    by_name = {(k[0], k[1]): p.as_int for k, p in calls.items()}
    assert by_name == {
        ("a", names[0]): 1,
        ("a", names[1]): 2,
        ("a", "other"): 3,
        ("b", "x"): 1,
        ("other", "y"): 1,  # the third service is folded
        ("other", "z"): 1,
    }

    def overflow(limit: str) -> float | None:
        labels = {"processor": "spanmetrics/x", "limit": limit}
        return registry.get_sample_value("otelgate_spanmetrics_overflow_spans_total", labels)

    assert overflow("operations") == 3
    assert overflow("services") == 1
    assert processor.series == 6


def test_metrics_batches_pass_through_untouched():
    processor = SpanMetricsProcessor("spanmetrics")
    batch = Batch.from_request(Signal.METRICS, metrics_request())
    assert processor.process(batch) is batch
    assert processor.series == 0


async def test_flushes_go_through_emit_periodically_and_once_more_on_stop():
    emitted: list[tuple[Batch, str | None]] = []

    async def emit(batch: Batch, source: str | None) -> bool:
        emitted.append((batch, source))
        return True

    processor = build_processor(
        "spanmetrics",
        parse_config(
            "receivers: {otlp: {protocols: {grpc: }}}\nexporters: {file: {path: x}}\n"
            "processors: {spanmetrics: {flush_interval: 50ms, buckets: [10ms, 1]}}\n"
            "service: {pipelines: {traces: {receivers: [otlp], processors: [spanmetrics], "
            "exporters: [file]}}}\n",
            environ={},
        ).processors["spanmetrics"],
        emit=emit,
        metrics=GatewayMetrics(CollectorRegistry()),
    )
    assert isinstance(processor, SpanMetricsProcessor)
    assert processor.bounds == (0.01, 1.0)
    await processor.start()
    try:
        await asyncio.sleep(0.12)
        assert emitted == []  # nothing seen: nothing emitted
        processor.process(spans("api", ("GET /", SERVER, OK, 0.005)))
        for _ in range(100):
            if emitted:
                break
            await asyncio.sleep(0.01)
        assert emitted, "no flush within 1s"
        batch, source = emitted[-1]
        assert batch.signal is Signal.METRICS and source is None  # into every metrics pipeline
        assert batch.items == 2  # one calls point, one histogram point
        processor.process(spans("api", ("GET /", SERVER, OK, 0.005)))
    finally:
        await processor.stop()
    final = emitted[-1][0].request.resource_metrics[0].scope_metrics[0].metrics  # type: ignore[union-attr]
    assert final[0].sum.data_points[0].as_int == 2  # the stop flush has the last span
    count = len(emitted)
    await asyncio.sleep(0.12)
    assert len(emitted) == count


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("{buckets: [1, 0.5]}", "processors.spanmetrics.buckets: must be positive and strictly"),
        ("{buckets: []}", "processors.spanmetrics.buckets: must not be empty"),
        ("{flush_interval: 0}", "processors.spanmetrics.flush_interval: must be greater than 0"),
        ("{max_operations_per_service: 0}", "max_operations_per_service: must be greater than 0"),
    ],
)
def test_config_errors(settings, message):
    text = (
        "receivers: {otlp: {protocols: {grpc: }}}\nexporters: {file: {path: x}}\n"
        f"processors: {{spanmetrics: {settings}}}\n"
        "service: {pipelines: {traces: {receivers: [otlp], exporters: [file]}}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ={})
    assert message in str(caught.value)
