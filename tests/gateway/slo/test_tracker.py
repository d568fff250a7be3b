"""The SLO tracker: what counts as good and total, minute buckets, persistence across restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, NumberDataPoint
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from gateway.otlp.batch import Batch, Signal
from gateway.slo.config import SloConfig
from gateway.slo.tracker import SloTracker
from gateway.store.sqlite import SqliteStore

T0 = 1_800_000_000.0  # a whole minute (30_000_000)
SERVER, CLIENT = Span.SpanKind.SPAN_KIND_SERVER, Span.SpanKind.SPAN_KIND_CLIENT
OK, ERROR, UNSET = (
    Status.StatusCode.STATUS_CODE_OK,
    Status.StatusCode.STATUS_CODE_ERROR,
    Status.StatusCode.STATUS_CODE_UNSET,
)
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def spans(service: str, *items: tuple[Any, ...]) -> Batch:
    """items: (name, kind, status, duration_ms)."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.append(_kv("service.name", service))
    scope = rs.scope_spans.add()
    for name, kind, status, duration_ms in items:
        start = 1_700_000_000_000_000_000
        scope.spans.add(
            trace_id=b"\x01" * 16,
            span_id=b"\x02" * 8,
            name=name,
            kind=kind,
            start_time_unix_nano=start,
            end_time_unix_nano=start + round(duration_ms * 1e6),
            status=Status(code=status),
        )
    return Batch.from_request(Signal.TRACES, request)


def counter(
    service: str,
    name: str,
    points: list[tuple[dict[str, Any], float, int]],
    temporality: int,
    monotonic: bool = True,
) -> Batch:
    """points: (attributes, value, start_time_unix_nano)."""
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.append(_kv("service.name", service))
    metric = rm.scope_metrics.add().metrics.add(name=name)
    metric.sum.aggregation_temporality = temporality  # type: ignore[assignment]
    metric.sum.is_monotonic = monotonic
    for attrs, value, start in points:
        point = NumberDataPoint(start_time_unix_nano=start, time_unix_nano=start + 1)
        point.attributes.extend(_kv(k, v) for k, v in attrs.items())
        if isinstance(value, float):
            point.as_double = value
        else:
            point.as_int = value
        metric.sum.data_points.append(point)
    return Batch.from_request(Signal.METRICS, request)


def slo(name: str, sli: dict[str, Any], objective: float = 0.99, **more: Any) -> SloConfig:
    return SloConfig.model_validate(
        {"name": name, "service": "orders", "objective": objective, "sli": sli, **more}
    )


def counts(tracker: SloTracker, name: str, window: str = "5m") -> tuple[float, float]:
    result = tracker.evaluate(name).windows[window].counts
    return result.good, result.total


def test_availability_counts_server_spans_of_the_service():
    tracker = SloTracker([slo("avail", {"availability": None})], clock=Clock())
    tracker.observe(
        spans(
            "orders",
            ("GET /", SERVER, OK, 5),
            ("GET /", SERVER, UNSET, 5),
            ("GET /", SERVER, ERROR, 5),
            ("call db", CLIENT, ERROR, 5),
        )
    )
    tracker.observe(spans("payments", ("GET /", SERVER, ERROR, 5)))  # another service
    assert counts(tracker, "avail") == (2, 3)
    result = tracker.evaluate("avail").windows["5m"]
    assert result.sli == pytest.approx(2 / 3)
    assert result.burn_rate == pytest.approx((1 / 3) / 0.01)


def test_span_name_filter():
    tracker = SloTracker(
        [slo("checkout", {"availability": {"span_name": "POST /checkout"}})], clock=Clock()
    )
    tracker.observe(
        spans(
            "orders",
            ("POST /checkout", SERVER, ERROR, 1),
            ("GET /", SERVER, ERROR, 1),
            ("POST /checkout", SERVER, OK, 1),
        )
    )
    assert counts(tracker, "checkout") == (1, 2)


def test_latency_threshold_is_inclusive():
    tracker = SloTracker([slo("fast", {"latency": {"threshold": "250ms"}})], clock=Clock())
    tracker.observe(
        spans(
            "orders",
            ("a", SERVER, OK, 250),
            ("a", SERVER, OK, 250.000001),
            ("a", SERVER, ERROR, 10),
            ("a", SERVER, OK, 3000),
        )
    )
    # 250ms exactly is good (<=), 1ns more is not; latency ignores the status.
    assert counts(tracker, "fast") == (2, 4)


def test_events_fall_into_minute_buckets_and_leave_the_windows():
    clock = Clock()
    tracker = SloTracker([slo("avail", {"availability": None}, window="1d")], clock=clock)
    tracker.observe(spans("orders", ("a", SERVER, ERROR, 1)))
    clock.now += 59.9  # same minute
    tracker.observe(spans("orders", ("a", SERVER, OK, 1)))
    clock.now = T0 + 4 * 60  # the 5th minute: both still in the 5m window
    tracker.observe(spans("orders", ("a", SERVER, OK, 1)))
    assert counts(tracker, "avail") == (2, 3)
    clock.now = T0 + 5 * 60  # the first minute left the 5m window, not the 30m one
    assert counts(tracker, "avail") == (1, 1)
    assert counts(tracker, "avail", "30m") == (2, 3)
    clock.now = T0 + 1440 * 60  # a day later: only the 3d window still sees them
    assert counts(tracker, "avail", "1d") == (1, 1)
    assert counts(tracker, "avail", "3d") == (2, 3)


RATIO = {
    "ratio": {
        "good": {"metric": "http.requests", "attributes": {"code": 200}},
        "total": {"metric": "http.requests"},
    }
}


def test_ratio_from_cumulative_counters_handles_baselines_and_resets():
    clock = Clock()
    tracker = SloTracker([slo("ratio", RATIO, objective=0.9)], clock=clock)
    old = int((T0 - 3600) * 1e9)  # started before the tracker: the first point is a baseline
    ok, bad = {"code": "200"}, {"code": 500}

    def send(ok_value: int, bad_value: int, start: int = old) -> None:
        tracker.observe(
            counter(
                "orders",
                "http.requests",
                [(ok, ok_value, old), (bad, bad_value, start)],
                CUMULATIVE,
            )
        )

    send(100, 10)
    assert counts(tracker, "ratio") == (0, 0)
    send(150, 12)  # +50 good, +2 bad
    assert counts(tracker, "ratio") == (50, 52)
    send(150, 12)  # no change
    assert counts(tracker, "ratio") == (50, 52)
    send(160, 3, start=old + 10**9)  # the 500 series restarted (new start time): +3
    assert counts(tracker, "ratio") == (60, 65)
    send(160, 1, start=old + 10**9)  # lower value, same start: a reset too, +1
    assert counts(tracker, "ratio") == (60, 66)
    # A series that began after the tracker started counts in full from its first point.
    fresh = int((T0 + 1) * 1e9)
    tracker.observe(counter("orders", "http.requests", [({"code": 200}, 7, fresh)], CUMULATIVE))
    assert counts(tracker, "ratio") == (67, 73)


def test_ratio_from_delta_counters_and_what_is_ignored():
    tracker = SloTracker([slo("ratio", RATIO, objective=0.9)], clock=Clock())
    start = int(T0 * 1e9)
    tracker.observe(
        counter(
            "orders",
            "http.requests",
            [({"code": 200}, 9.0, start), ({"code": 503}, 1.0, start)],
            DELTA,
        )
    )
    tracker.observe(counter("orders", "http.requests", [({"code": 200}, 4, start)], DELTA))
    # Not counted: another service, a non-monotonic sum, another metric.
    tracker.observe(counter("other", "http.requests", [({"code": 500}, 5, start)], DELTA))
    tracker.observe(
        counter("orders", "http.requests", [({"code": 500}, 5, start)], DELTA, monotonic=False)
    )
    tracker.observe(counter("orders", "http.other", [({"code": 500}, 5, start)], DELTA))
    assert counts(tracker, "ratio") == (13, 14)
    assert tracker.evaluate("ratio").windows["5m"].burn_rate == pytest.approx((1 / 14) / 0.1)


def test_ratio_of_two_metrics():
    two = {"ratio": {"good": {"metric": "jobs.succeeded"}, "total": {"metric": "jobs.started"}}}
    tracker = SloTracker([slo("jobs", two)], clock=Clock())
    start = int(T0 * 1e9)
    tracker.observe(counter("orders", "jobs.started", [({}, 20, start)], DELTA))
    tracker.observe(counter("orders", "jobs.succeeded", [({}, 19, start)], DELTA))
    assert counts(tracker, "jobs") == (19, 20)


async def test_restart_in_the_middle_of_a_window_continues_the_numbers(tmp_path: Path):
    path = tmp_path / "otelgate.db"
    clock = Clock()
    definitions = [slo("avail", {"availability": None}, objective=0.9, window="1d")]
    first = SloTracker(definitions, SqliteStore(path), flush_interval=3600, clock=clock)
    await first.start()
    first.observe(spans("orders", *[("a", SERVER, OK, 1)] * 8, ("a", SERVER, ERROR, 1)))
    clock.now += 120
    first.observe(spans("orders", ("a", SERVER, ERROR, 1)))
    await first.stop()  # writes what the periodic flush has not
    assert first.store is not None
    first.store.close()

    clock.now = T0 + 3 * 3600  # restarted three hours later, inside the 1-day window
    second = SloTracker(definitions, SqliteStore(path), flush_interval=3600, clock=clock)
    await second.start()
    assert counts(second, "avail", "1d") == (8, 10)
    assert counts(second, "avail", "5m") == (0, 0)  # those minutes left the 5m window
    assert counts(second, "avail", "6h") == (8, 10)
    second.observe(spans("orders", *[("a", SERVER, OK, 1)] * 10))
    result = second.evaluate("avail")
    assert (result.window.counts.good, result.window.counts.total) == (18, 20)
    # Budget over the day: 10% of 20 = 2 bad events allowed, 2 happened.
    assert result.budget.allowed == pytest.approx(2)
    assert result.budget.remaining_ratio == pytest.approx(0.0)
    await second.stop()

    # After the window has passed, a restart starts from an empty window.
    clock.now = T0 + 2 * 86400
    assert second.store is not None
    second.store.close()
    third = SloTracker(definitions, SqliteStore(path), clock=clock)
    await third.start()
    assert counts(third, "avail", "1d") == (0, 0)
    assert counts(third, "avail", "3d") == (18, 20)  # the store keeps window + a day
    await third.stop()
    assert third.store is not None
    third.store.close()


async def test_periodic_flush_writes_increments(tmp_path: Path):
    store = SqliteStore(tmp_path / "db")
    clock = Clock()
    tracker = SloTracker(
        [slo("avail", {"availability": None})], store, flush_interval=0.05, clock=clock
    )
    await tracker.start()
    tracker.observe(spans("orders", ("a", SERVER, OK, 1), ("a", SERVER, ERROR, 1)))
    minute = int(T0 // 60)
    for _ in range(100):
        if store.load_slo_buckets(["avail"], 0)["avail"]:
            break
        await asyncio.sleep(0.05)
    assert store.load_slo_buckets(["avail"], 0) == {"avail": {minute: (1.0, 2.0)}}
    tracker.observe(spans("orders", ("a", SERVER, OK, 1)))
    await tracker.stop()
    assert store.load_slo_buckets(["avail"], 0) == {"avail": {minute: (2.0, 3.0)}}
    store.close()


async def test_a_failed_write_is_retried_with_the_next_flush(tmp_path: Path):
    class Flaky(SqliteStore):
        failures = 1

        def add_slo_buckets(self, deltas):
            if self.failures:
                self.failures -= 1
                raise OSError("disk full")
            super().add_slo_buckets(deltas)

    store = Flaky(tmp_path / "db")
    tracker = SloTracker([slo("avail", {"availability": None})], store, clock=Clock())
    tracker.observe(spans("orders", ("a", SERVER, ERROR, 1)))
    with pytest.raises(OSError):
        await tracker.flush()
    tracker.observe(spans("orders", ("a", SERVER, OK, 1)))
    await tracker.flush()
    assert store.load_slo_buckets(["avail"], 0) == {"avail": {int(T0 // 60): (1.0, 2.0)}}
    store.close()


@pytest.mark.parametrize(("window", "kept_days"), [("1d", 4), ("7d", 8)])
async def test_retention_keeps_the_longest_window_plus_a_day(tmp_path: Path, window, kept_days):
    # Kept: the SLO window, or the 3-day window when shorter (alerts use it), plus a day.
    store = SqliteStore(tmp_path / "db")
    now = int(T0 // 60)
    oldest = now - kept_days * 1440
    store.add_slo_buckets(
        {("avail", oldest - 1): (1, 1), ("avail", oldest): (2, 2), ("gone", oldest - 1): (1, 1)}
    )
    tracker = SloTracker(
        [slo("avail", {"availability": None}, window=window)], store, clock=Clock()
    )
    assert tracker.retention_minutes == kept_days * 1440
    await tracker.start()
    assert store.load_slo_buckets(["avail", "gone"], 0) == {
        "avail": {oldest: (2.0, 2.0)},
        "gone": {},
    }
    await tracker.stop()
    store.close()


async def test_without_a_store_counts_stay_in_memory_only():
    clock = Clock()
    tracker = SloTracker([slo("avail", {"availability": None})], clock=clock)
    await tracker.start()
    tracker.observe(spans("orders", ("a", SERVER, OK, 1)))
    await tracker.flush()
    assert counts(tracker, "avail") == (1, 1)
    assert not tracker._pending  # nothing accumulates for a store that is not there
    clock.now += 31 * 86400  # buckets that left every window are forgotten
    await tracker.flush()
    assert tracker._buckets["avail"] == {}
    await tracker.stop()


def test_evaluation_is_cached_until_the_minute_or_the_counts_change():
    clock = Clock()
    tracker = SloTracker([slo("avail", {"availability": None})], clock=clock)
    first = tracker.evaluate("avail")
    assert tracker.evaluate("avail") is first
    tracker.observe(spans("orders", ("a", SERVER, OK, 1)))
    second = tracker.evaluate("avail")
    assert second is not first and second.windows["5m"].counts.total == 1
    clock.now += 60
    assert tracker.evaluate("avail") is not second
