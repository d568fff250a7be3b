"""Service health maths (rates, error ratio, percentiles, window, staleness, thresholds) with an
injected clock."""

from __future__ import annotations

import math
import random

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from gateway.health import sketch
from gateway.health.config import HealthConfig, ServiceThresholds
from gateway.health.services import ServiceHealthTracker, classify
from gateway.otlp.batch import Batch, Signal
from tests.factories import logs_request, metrics_request
from tests.gateway.health.helpers import Clock, spans_batch

T0 = 1_800_000_000.0


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def tracker(clock: Clock, **health) -> ServiceHealthTracker:
    return ServiceHealthTracker(HealthConfig.model_validate(health), clock=clock)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sketch_percentiles_are_within_the_documented_accuracy(seed):
    rng = random.Random(seed)
    values = [rng.lognormvariate(-3, 1.2) for _ in range(5000)] + [0.0, 1e-9, 5e5]
    counts: dict[int, int] = {}
    for v in values:
        counts[sketch.bucket_index(v)] = counts.get(sketch.bucket_index(v), 0) + 1
    qs = (0.01, 0.5, 0.9, 0.95, 0.99, 0.999)
    for q, got in zip(qs, sketch.quantiles(counts, qs), strict=True):
        exact = min(max(nearest_rank(values, q), sketch.MIN_VALUE), sketch.MAX_VALUE)
        assert got is not None
        assert abs(got - exact) <= sketch.RELATIVE_ACCURACY * exact + 1e-12, (q, got, exact)
    assert sketch.quantiles({}, (0.5,)) == [None]
    assert len(counts) < 400  # bounded by the distribution's range, not the sample count


def test_rates_errors_and_latency_from_server_spans():
    clock = Clock()
    health = tracker(clock)
    durations = [(i % 100 + 1) / 1000 for i in range(200)]  # 1..100 ms, twice
    health.observe(spans_batch("orders", durations, errors=set(range(0, 200, 10))))
    health.observe(spans_batch("orders", [5.0] * 50, kind=Span.SPAN_KIND_CLIENT))  # not requests
    clock.now += 30
    report = health.report("orders")
    assert report is not None
    assert (report.requests, report.errors) == (200, 20)
    assert report.error_rate == pytest.approx(0.10)
    assert report.window_seconds == pytest.approx(30)  # since first seen, not the whole window
    assert report.request_rate == pytest.approx(200 / 30)
    for got, q in (
        (report.latency.p50, 0.5),
        (report.latency.p95, 0.95),
        (report.latency.p99, 0.99),
    ):
        exact = nearest_rank(durations, q)
        assert got == pytest.approx(exact, rel=sketch.RELATIVE_ACCURACY)
    assert report.signals == {"traces": T0}
    assert report.status == "unhealthy"  # 10 % errors >= 5 % (default)
    assert report.reasons == ["error rate 10.0% >= 5.0%"]


def test_the_window_slides_and_old_buckets_expire():
    clock = Clock()
    health = tracker(clock, window="60s", bucket="10s", thresholds={"stale_after": "1h"})
    health.observe(spans_batch("svc", [0.010] * 10, errors=set(range(10))))  # t=0: all errors
    clock.now += 35
    health.observe(spans_batch("svc", [0.200] * 30))  # t=35: slow, fine
    report = health.report("svc")
    assert report is not None and (report.requests, report.errors) == (40, 10)
    clock.now += 30  # t=65: the t=0 bucket left the window
    report = health.report("svc")
    assert report is not None and (report.requests, report.errors) == (30, 0)
    assert report.latency.p50 == pytest.approx(0.2, rel=0.02)
    # The live buckets cover t=10..65 (the current one is partial): rates use those 55 s.
    assert report.window_seconds == pytest.approx(55)
    clock.now += 60  # t=125: nothing left, but the service is remembered
    report = health.report("svc")
    assert report is not None and report.requests == 0 and report.error_rate is None
    assert report.latency.p99 is None and report.status == "healthy"
    # Memory stays O(buckets): one bucket per 10 s at most, and old ones are dropped.
    for _ in range(100):
        clock.now += 10
        health.observe(spans_batch("svc", [0.001]))
    assert len(health._services["svc"].buckets) <= 6


def test_services_go_stale_when_nothing_arrives_from_any_signal():
    clock = Clock()
    health = tracker(clock, thresholds={"stale_after": "60s"})
    health.observe(spans_batch("api", [0.01]))
    health.observe(Batch.from_request(Signal.LOGS, logs_request(service="worker")))
    clock.now += 50
    health.observe(Batch.from_request(Signal.METRICS, metrics_request(service="api")))
    clock.now += 20  # api: 20 s ago (metrics count too); worker: 70 s ago
    api, worker = health.report("api"), health.report("worker")
    assert api is not None and api.status == "healthy"
    assert api.signals == {"traces": T0, "metrics": T0 + 50}
    assert worker is not None and worker.status == "stale"
    assert worker.reasons == ["nothing received for 70s (stale after 60s)"]
    assert worker.seconds_since_seen == pytest.approx(70)
    assert [r.name for r in health.reports()] == ["api", "worker"]
    assert health.report("nobody") is None


def test_per_service_overrides_change_only_what_they_name():
    config = HealthConfig.model_validate(
        {
            "thresholds": {"error_rate_degraded": 0.01, "error_rate_unhealthy": 0.05},
            "services": {"batch-jobs": {"error_rate_unhealthy": 0.5, "latency_p99_degraded": 3}},
        }
    )
    jobs = config.thresholds_for("batch-jobs")
    assert (jobs.error_rate_degraded, jobs.error_rate_unhealthy) == (0.01, 0.5)
    assert (jobs.latency_p99_degraded, jobs.latency_p99_unhealthy) == (3, 5.0)
    assert config.thresholds_for("other") == config.thresholds
    clock = Clock()
    health = ServiceHealthTracker(config, clock=clock)
    errors = set(range(0, 100, 10))  # 10 %
    health.observe(spans_batch("batch-jobs", [0.1] * 100, errors))
    health.observe(spans_batch("web", [0.1] * 100, errors))
    jobs_report, web = health.report("batch-jobs"), health.report("web")
    assert jobs_report is not None and jobs_report.status == "degraded"
    assert web is not None and web.status == "unhealthy"


def test_override_that_contradicts_the_global_thresholds_is_a_config_error():
    with pytest.raises(ValueError, match=r"services\.x: error_rate_degraded \(0\.2\) must not be"):
        HealthConfig.model_validate({"services": {"x": {"error_rate_degraded": 0.2}}})


@pytest.mark.parametrize(
    ("since", "requests", "error_rate", "p99", "status", "reasons"),
    [
        (0, 100, 0.0, 0.1, "healthy", []),
        (61, 100, 0.5, 9.0, "stale", ["nothing received for 61s (stale after 60s)"]),
        (60, 100, 0.0, 0.1, "healthy", []),  # exactly stale_after is not stale yet
        (0, 9, 1.0, 9.0, "healthy", []),  # fewer than min_requests: no verdict on rates
        (0, 10, 0.01, 0.1, "degraded", ["error rate 1.0% >= 1.0%"]),  # inclusive
        (0, 10, 0.05, 0.1, "unhealthy", ["error rate 5.0% >= 5.0%"]),
        (0, 10, 0.0, 1.0, "degraded", ["p99 latency 1.000s >= 1s"]),
        (0, 10, 0.0, 5.5, "unhealthy", ["p99 latency 5.500s >= 5s"]),
        (0, 10, 0.02, 6.0, "unhealthy", ["p99 latency 6.000s >= 5s", "error rate 2.0% >= 1.0%"]),
    ],
)
def test_classify(since, requests, error_rate, p99, status, reasons):
    assert classify(ServiceThresholds(), since, requests, error_rate, p99) == (status, reasons)


def test_the_number_of_services_is_capped_and_stale_ones_make_room():
    clock = Clock()
    health = tracker(clock, max_services=2, thresholds={"stale_after": "60s"})
    health.observe(spans_batch("a", [0.01]))
    clock.now += 30
    health.observe(spans_batch("b", [0.01]))
    health.observe(spans_batch("c", [0.01]))  # a and b are fresh: c is not tracked
    assert health.names() == ["a", "b"] and health.untracked == 1
    clock.now += 40  # a is stale now (70 s), b is not (40 s)
    health.observe(spans_batch("c", [0.01]))
    assert health.names() == ["b", "c"] and health.untracked == 1
