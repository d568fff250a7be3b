"""Prometheus series state (exporters.prometheus.state): delta -> cumulative, ordering,
expiry and limits."""

from __future__ import annotations

import math

from opentelemetry.proto.metrics.v1 import metrics_pb2
from prometheus_client import CollectorRegistry

from exporters.prometheus.state import SeriesStore, store_for
from exporters.prometheus.translate import Kind, translate
from tests.exporters.prometheus.builders import (
    DELTA,
    RESOURCE,
    SEC,
    T0,
    gauge_metric,
    histogram_metric,
    request_of,
    sum_metric,
)


def test_delta_sums_accumulate_and_repeats_are_dropped():
    dropped: list[tuple[str, int]] = []
    store = SeriesStore(on_dropped=lambda reason, n: dropped.append((reason, n)))
    for i, value in enumerate([2.0, 3.0, 5.0], start=1):
        metric = sum_metric("jobs", [({}, value)], temporality=DELTA, t=T0 + i * SEC)
        [result] = store.apply(translate(request_of(metric)))
        assert result.kind is Kind.COUNTER
    assert result.value == 10.0
    repeat = sum_metric("jobs", [({}, 5.0)], temporality=DELTA, t=T0 + 3 * SEC)
    assert store.apply(translate(request_of(repeat))) == []
    assert dropped == [("out_of_order", 1)]
    [series] = store.families["jobs"].series.values()
    assert series.point.value == 10.0


def test_delta_histograms_accumulate_per_bucket():
    store = SeriesStore()
    for i in (1, 2):
        metric = histogram_metric("h", [1.0], [1, 2], 3.0, temporality=DELTA, t=T0 + i * SEC)
        [result] = store.apply(translate(request_of(metric)))
    assert (result.counts, result.count, result.sum) == ((2, 4), 6, 6.0)


def test_cumulative_points_replace_and_older_ones_are_ignored():
    store = SeriesStore()
    store.apply(translate(request_of(sum_metric("c", [({}, 5.0)], t=T0 + 2 * SEC))))
    assert store.apply(translate(request_of(sum_metric("c", [({}, 3.0)], t=T0 + SEC)))) == []
    [result] = store.apply(translate(request_of(sum_metric("c", [({}, 7.0)], t=T0 + 3 * SEC))))
    assert result.value == 7.0


def test_series_and_targets_expire():
    now = [1000.0]
    store = SeriesStore(expiration=60.0, clock=lambda: now[0])
    store.apply(translate(request_of(gauge_metric("g", 1), resource=RESOURCE)))
    other = dict(RESOURCE, **{"service.instance.id": "pod-2"})
    now[0] += 40
    store.apply(translate(request_of(gauge_metric("g", 2, t=T0 + 2 * SEC), resource=other)))
    assert store.series_count == 2 and len(store.targets) == 2
    now[0] += 30  # pod-1 silent for 70 s, pod-2 for 30 s
    assert store.expire() == 1
    assert [dict(s.point.labels)["instance"] for s in store.families["g"].series.values()] == [
        "pod-2"
    ]
    assert list(store.targets) == [("shop/checkout", "pod-2")]
    now[0] += 61
    store.expire()
    assert store.families == {} and store.targets == {}


def test_cardinality_cap_refuses_new_series_and_counts_them():
    registry = CollectorRegistry()
    store = store_for("prometheus/t", registry, expiration=300, max_series_per_metric=3)
    values = [({"user": str(i)}, 1.0) for i in range(5)]
    store.apply(translate(request_of(sum_metric("logins", values))))
    assert len(store.families["logins"].series) == 3
    refused = registry.get_sample_value(
        "otelgate_prometheus_refused_series_total",
        {"exporter": "prometheus/t", "metric": "logins"},
    )
    assert refused == 2
    # known series still update
    again = [({"user": "0"}, 9.0)]
    [updated] = store.apply(translate(request_of(sum_metric("logins", again, t=T0 + 2 * SEC))))
    assert updated.value == 9.0
    assert (
        registry.get_sample_value("otelgate_prometheus_series", {"exporter": "prometheus/t"}) == 3
    )


def test_type_conflicts_drop_the_later_kind():
    registry = CollectorRegistry()
    store = store_for("p", registry, expiration=300, max_series_per_metric=0)
    store.apply(translate(request_of(gauge_metric("thing", 1))))
    histogram = histogram_metric("thing", [1.0], [1, 0], 0.5, unit="")
    assert store.apply(translate(request_of(histogram))) == []
    assert store.families["thing"].kind is Kind.GAUGE
    dropped = registry.get_sample_value(
        "otelgate_prometheus_dropped_points_total", {"exporter": "p", "reason": "type_conflict"}
    )
    assert dropped == 1


def test_no_recorded_value_removes_the_series():
    store = SeriesStore()
    store.apply(translate(request_of(gauge_metric("g", 1))))
    metric = gauge_metric("g", 0, t=T0 + 2 * SEC)
    metric.gauge.data_points[0].flags = metrics_pb2.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
    [stale] = store.apply(translate(request_of(metric)))
    assert stale.stale and store.families["g"].series == {}
    assert not math.isnan(stale.value)
