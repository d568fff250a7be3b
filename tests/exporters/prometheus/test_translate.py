"""OTel -> Prometheus translation (exporters.prometheus.translate), table-driven: names,
units and labels; resource, scope and the kinds of points."""

from __future__ import annotations

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

from exporters.prometheus.translate import (
    Kind,
    attribute_value,
    bucket_exemplars,
    exponential_buckets,
    label_name,
    labels_from,
    metric_name,
    translate,
)
from tests.exporters.prometheus.builders import (
    DELTA,
    T0,
    attrs,
    gauge_metric,
    histogram_metric,
    only,
    request_of,
    sum_metric,
)

# --- names and labels -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "unit", "kind", "family", "unit_word"),
    [
        (
            "http.server.request.duration",
            "s",
            Kind.HISTOGRAM,
            "http_server_request_duration_seconds",
            "seconds",
        ),
        ("rpc.duration", "ms", Kind.HISTOGRAM, "rpc_duration_milliseconds", "milliseconds"),
        ("process.memory.usage", "By", Kind.GAUGE, "process_memory_usage_bytes", "bytes"),
        ("app.requests", "{request}", Kind.COUNTER, "app_requests", ""),
        ("app.requests.total", "{request}", Kind.COUNTER, "app_requests", ""),
        ("system.cpu.utilization", "1", Kind.GAUGE, "system_cpu_utilization_ratio", "ratio"),
        ("items", "1", Kind.COUNTER, "items", ""),
        ("car.speed", "m/s", Kind.GAUGE, "car_speed_meters_per_second", "meters_per_second"),
        ("disk.used", "%", Kind.GAUGE, "disk_used_percent", "percent"),
        ("duration_seconds", "s", Kind.HISTOGRAM, "duration_seconds", "seconds"),
        ("sent_bytes_total", "By", Kind.COUNTER, "sent_bytes", "bytes"),
        ("sent_total", "By", Kind.COUNTER, "sent_bytes", "bytes"),
        ("net.io", "{packet}/s", Kind.GAUGE, "net_io_per_second", "per_second"),
        ("a..b--c", "", Kind.GAUGE, "a_b_c", ""),
        ("2xx.responses", "", Kind.COUNTER, "_2xx_responses", ""),
        ("queue", "KiBy", Kind.GAUGE, "queue_kibibytes", "kibibytes"),
        ("temp", "Cel", Kind.GAUGE, "temp_celsius", "celsius"),
        ("weird", "widgets", Kind.GAUGE, "weird_widgets", "widgets"),
        ("bytes.in.flight", "By", Kind.GAUGE, "bytes_in_flight", ""),  # contains it: no suffix
    ],
)
def test_metric_names_and_units(name, unit, kind, family, unit_word):
    assert metric_name(name, unit, kind) == (family, unit_word)


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("http.method", "http_method"),
        ("http.response.status_code", "http_response_status_code"),
        ("2xx", "key_2xx"),
        ("_private", "key_private"),
        ("__reserved", "key_reserved"),
        ("a..b", "a_b"),
        ("ünïcode", "key_n_code"),
        ("ok", "ok"),
    ],
)
def test_label_names(key, label):
    assert label_name(key) == label


def test_colliding_label_keys_join_values_in_key_order():
    labels = labels_from(attrs({"a_b": "underscore", "a.b": "dot", "a-b": "dash", "c": "x"}))
    # original keys sorted: "a-b" < "a.b" < "a_b"
    assert labels == {"a_b": "dash;dot;underscore", "c": "x"}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (AnyValue(string_value="s"), "s"),
        (AnyValue(bool_value=True), "true"),
        (AnyValue(int_value=-42), "-42"),
        (AnyValue(double_value=0.25), "0.25"),
        (AnyValue(bytes_value=b"\x00\x01"), "AAE="),
        (
            AnyValue(
                array_value=ArrayValue(values=[AnyValue(int_value=1), AnyValue(string_value="a")])
            ),
            '[1,"a"]',
        ),
        (AnyValue(), ""),
    ],
)
def test_attribute_values_become_strings(value, text):
    assert attribute_value(value) == text


def test_empty_attribute_values_are_left_out():
    assert labels_from(attrs({"a": "", "b": "x"})) == {"b": "x"}


# --- resource, scope and kinds ----------------------------------------------------------------


def test_job_instance_scope_labels_and_target_info():
    out = translate(request_of(sum_metric("app.requests", [({"http.route": "/a"}, 3.0)])))
    point = only(out.points)
    assert (point.family, point.kind, point.value) == ("app_requests", Kind.COUNTER, 3.0)
    assert dict(point.labels) == {
        "http_route": "/a",
        "job": "shop/checkout",
        "instance": "pod-1",
        "otel_scope_name": "my.lib",
        "otel_scope_version": "1.2",
    }
    assert [name for name, _ in point.labels] == sorted(dict(point.labels))
    assert out.targets == {
        ("shop/checkout", "pod-1"): (
            ("deployment_environment", "test"),
            ("instance", "pod-1"),
            ("job", "shop/checkout"),
        )
    }


@pytest.mark.parametrize(
    ("resource", "job", "instance"),
    [
        ({"service.name": "api"}, "api", ""),
        ({"service.name": "api", "service.namespace": "ns"}, "ns/api", ""),
        ({"service.name": "api", "service.instance.id": "i-1"}, "api", "i-1"),
        ({}, "", ""),
    ],
)
def test_job_and_instance(resource, job, instance):
    out = translate(request_of(gauge_metric("g", 1), resource=resource))
    labels = dict(only(out.points).labels)
    assert labels.get("job", "") == job
    assert labels.get("instance", "") == instance
    assert out.targets == {}  # only identifying attributes: no target_info


def test_resource_and_scope_labels_win_over_point_attributes():
    metric = sum_metric("c", [({"job": "fake", "otel_scope_name": "fake", "x": "1"}, 1.0)])
    labels = dict(only(translate(request_of(metric)).points).labels)
    assert (labels["job"], labels["otel_scope_name"], labels["x"]) == (
        "shop/checkout",
        "my.lib",
        "1",
    )


def test_non_monotonic_sums_are_gauges_and_delta_ones_are_dropped():
    cumulative = sum_metric("queue.size", [({}, -3.0)], unit="{item}", monotonic=False)
    delta = sum_metric("queue.delta", [({}, 1.0)], monotonic=False, temporality=DELTA)
    out = translate(request_of(cumulative, delta))
    point = only(out.points)
    assert (point.family, point.kind, point.value) == ("queue_size", Kind.GAUGE, -3.0)
    assert out.dropped == {"delta_non_monotonic_sum": 1}


def test_histogram_point():
    metric = histogram_metric("latency", [0.1, 1.0], [2, 3, 1], 4.5)
    point = only(translate(request_of(metric)).points)
    assert (point.family, point.kind, point.unit) == ("latency_seconds", Kind.HISTOGRAM, "seconds")
    assert (point.bounds, point.counts, point.count, point.sum) == ((0.1, 1.0), (2, 3, 1), 6, 4.5)


def test_histogram_sum_left_out_when_negative_values_were_seen():
    metric = histogram_metric("temp", [0.0], [1, 1], -1.0, unit="Cel")
    metric.histogram.data_points[0].min = -3.0
    assert only(translate(request_of(metric)).points).sum is None


def test_summary_quantiles_sorted():
    metric = metrics_pb2.Metric(name="rpc.latency", unit="ms")
    dp = metric.summary.data_points.add(count=10, sum=55.0, time_unix_nano=T0)
    dp.quantile_values.add(quantile=0.99, value=9.0)
    dp.quantile_values.add(quantile=0.5, value=5.0)
    point = only(translate(request_of(metric)).points)
    assert point.kind is Kind.SUMMARY
    assert point.family == "rpc_latency_milliseconds"
    assert point.quantiles == ((0.5, 5.0), (0.99, 9.0))


def test_exponential_histogram_becomes_explicit_buckets():
    dp = metrics_pb2.ExponentialHistogramDataPoint(
        scale=0, zero_count=1, count=1 + 2 + 3 + 4, sum=10.0, time_unix_nano=T0
    )
    dp.positive.offset, dp.positive.bucket_counts[:] = 0, [2, 3]  # (1,2], (2,4]
    dp.negative.offset, dp.negative.bucket_counts[:] = 1, [4]  # [-4,-2)
    bounds, counts = exponential_buckets(dp)
    assert bounds == (-2.0, 0.0, 2.0, 4.0)
    assert counts == (4, 1, 2, 3, 0)
    assert sum(counts) == dp.count


def test_delta_exponential_histograms_are_dropped_with_a_reason():
    metric = metrics_pb2.Metric(name="eh")
    metric.exponential_histogram.aggregation_temporality = DELTA
    metric.exponential_histogram.data_points.add(count=1, time_unix_nano=T0)
    out = translate(request_of(metric))
    assert out.points == [] and out.dropped == {"delta_exponential_histogram": 1}


def test_exemplars_carry_trace_and_span_ids_and_pick_one_per_bucket():
    metric = histogram_metric("lat", [1.0, 2.0], [1, 1, 0], 2.0)
    dp = metric.histogram.data_points[0]
    dp.exemplars.add(as_double=0.5, time_unix_nano=T0, trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    dp.exemplars.add(as_double=0.7, time_unix_nano=T0, trace_id=b"\x03" * 16, span_id=b"\x04" * 8)
    point = only(translate(request_of(metric)).points)
    chosen = bucket_exemplars(point.bounds, point.exemplars)
    assert [e.value if e else None for e in chosen] == [0.7, 0.7, 0.7]  # carried upwards
    assert chosen[0] is not None
    assert dict(chosen[0].labels) == {"trace_id": "03" * 16, "span_id": "04" * 8}
