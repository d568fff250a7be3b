"""Label sanitising: ``le`` / ``quantile`` attributes, scope attributes, reserved and empty
names. Every label set the translation makes must be valid for Prometheus as it is."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.metrics.v1 import metrics_pb2
from prometheus_client import CollectorRegistry

from exporters.prometheus.labels import label_name, reserve, scope_labels
from exporters.prometheus.remote_write import samples
from exporters.prometheus.state import store_for
from exporters.prometheus.translate import Kind, translate
from tests.exporters.prometheus.builders import (
    T0,
    attrs,
    histogram_metric,
    only,
    request_of,
    sum_metric,
    summary_metric,
)

VALID_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def labels_of(metric: metrics_pb2.Metric, **kwargs: Any) -> dict[str, str]:
    return dict(only(translate(request_of(metric, **kwargs)).points).labels)


@pytest.mark.parametrize(
    ("before", "after", "counted"),
    [
        ({"le": "x", "a": "1"}, {"exported_le": "x", "a": "1"}, {"le_renamed": 1}),
        ({"le": "x", "exported_le": "y"}, {"exported_le": "y"}, {"le_dropped": 1}),
        ({"a": "1"}, {"a": "1"}, {}),
    ],
)
def test_reserve_renames_or_drops_and_counts(before, after, counted):
    counts: Counter[str] = Counter()
    labels = dict(before)
    reserve(labels, "le", counts)
    assert labels == after
    assert counts == counted


def test_histogram_le_attribute_is_renamed_and_the_bucket_le_wins():
    out = translate(request_of(histogram_metric("lat", [0.5], [1, 2], 2.0, labels={"le": "x"})))
    point = only(out.points)
    assert dict(point.labels)["exported_le"] == "x" and "le" not in dict(point.labels)
    assert out.relabelled == {"le_renamed": 1}
    for name, labels, _, _ in samples(point):
        names = [k for k, _ in labels]
        assert len(names) == len(set(names)), (name, labels)
        if name.endswith("_bucket"):
            assert dict(labels)["le"] in ("0.5", "+Inf")


def test_le_is_dropped_when_exported_le_is_taken_too():
    metric = histogram_metric("lat", [0.5], [1, 2], 2.0, labels={"le": "x", "exported_le": "y"})
    out = translate(request_of(metric))
    assert dict(only(out.points).labels)["exported_le"] == "y"
    assert out.relabelled == {"le_dropped": 1}


def test_summary_quantile_attribute_is_renamed():
    metric = summary_metric("rpc", {0.5: 1.0}, labels={"quantile": "p50", "le": "kept"})
    out = translate(request_of(metric))
    labels = dict(only(out.points).labels)
    assert (labels["exported_quantile"], labels["le"]) == ("p50", "kept")
    assert "quantile" not in labels
    assert out.relabelled == {"quantile_renamed": 1}


def test_exponential_histogram_le_attribute_is_renamed():
    metric = metrics_pb2.Metric(name="eh")
    dp = metric.exponential_histogram.data_points.add(count=1, zero_count=1, time_unix_nano=T0)
    dp.attributes.extend(attrs({"le": "x"}))
    out = translate(request_of(metric))
    assert dict(only(out.points).labels)["exported_le"] == "x"
    assert out.relabelled == {"le_renamed": 1}


def test_le_and_quantile_stay_on_counters_and_gauges():
    # Valid there (promtool's lint only warns): nothing to rename.
    out = translate(request_of(sum_metric("c", [({"le": "1", "quantile": "2"}, 1.0)])))
    labels = dict(only(out.points).labels)
    assert (labels["le"], labels["quantile"]) == ("1", "2")
    assert out.relabelled == {}


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("", "key_"),
        ("_", "key_"),
        ("__", "key_"),
        ("__name__", "key_name_"),
        ("__meta_x", "key_meta_x"),
        (".", "key_"),
        ("-", "key_"),
        ("9", "key_9"),
    ],
)
def test_reserved_and_empty_names_never_leave_the_translation(key, label):
    assert label_name(key) == label
    labels = labels_of(sum_metric("c", [({key: "v"}, 1.0)]))
    assert labels[label] == "v"
    assert all(VALID_LABEL.fullmatch(k) and not k.startswith("__") for k in labels)


def test_scope_attributes_become_otel_scope_labels():
    metric = sum_metric("c", [({"otel_scope_lib_mascot": "point", "x": "1"}, 1.0)])
    scope = {"lib.mascot": "gopher", "_private": "p", "count": 3, "empty": ""}
    labels = labels_of(metric, scope_attributes=scope)
    assert labels == {
        "otel_scope_lib_mascot": "gopher",  # the scope's wins over the point's
        "otel_scope_private": "p",  # prefix first, then sanitised: runs of _ collapse
        "otel_scope_count": "3",
        "otel_scope_name": "my.lib",
        "otel_scope_version": "1.2",
        "x": "1",
        "job": "shop/checkout",
        "instance": "pod-1",
    }


def test_scope_attributes_conflicting_with_name_version_schema_url_are_dropped():
    request = request_of(
        sum_metric("c", [({"a": "1"}, 1.0), ({"a": "2"}, 2.0)]),
        scope_attributes={"name": "evil", "version": "9", "schema.url": "u", "ok": "y"},
    )
    request.resource_metrics[0].scope_metrics[0].schema_url = "https://opentelemetry.io/s/1"
    out = translate(request)
    for point in out.points:
        labels = dict(point.labels)
        assert labels["otel_scope_name"] == "my.lib"
        assert labels["otel_scope_version"] == "1.2"
        assert labels["otel_scope_schema_url"] == "https://opentelemetry.io/s/1"
        assert labels["otel_scope_ok"] == "y"
    assert out.relabelled == {"scope_attribute_dropped": 3 * 2}  # 3 attributes, 2 points


def test_colliding_scope_attributes_join_in_key_order():
    labels, dropped = scope_labels("s", "", "", attrs({"a.b": "dot", "a_b": "under"}))
    assert labels["otel_scope_a_b"] == "dot;under" and dropped == 0


def test_conflicts_are_counted_on_the_gateway_registry():
    registry = CollectorRegistry()
    store = store_for("prometheusremotewrite", registry, expiration=300, max_series_per_metric=0)
    store.apply(translate(request_of(
        histogram_metric("lat", [1.0], [1, 0], 0.5, labels={"le": "x"}),
        summary_metric("rpc", {0.5: 1.0}, labels={"quantile": "q", "exported_quantile": "e"}),
    )))  # fmt: skip
    metric = "otelgate_prometheus_label_conflicts_total"
    exporter = {"exporter": "prometheusremotewrite"}
    assert registry.get_sample_value(metric, {**exporter, "reason": "le_renamed"}) == 1
    assert registry.get_sample_value(metric, {**exporter, "reason": "quantile_dropped"}) == 1


_KEYS = st.one_of(
    st.sampled_from(["le", "quantile", "exported_le", "exported_quantile", "__name__", "", "_",
                     "job", "otel_scope_name", "a.b", "a_b"]),
    st.text(max_size=8),
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    point_keys=st.lists(_KEYS, max_size=6),
    scope_keys=st.lists(_KEYS, max_size=4),
    kind=st.sampled_from([Kind.HISTOGRAM, Kind.SUMMARY, Kind.COUNTER]),
)
def test_every_sample_has_valid_unique_label_names(point_keys, scope_keys, kind):
    point_attrs = {k: "v" for k in point_keys}
    if kind is Kind.HISTOGRAM:
        metric = histogram_metric("h", [1.0], [1, 1], 1.0, labels=point_attrs)
    elif kind is Kind.SUMMARY:
        metric = summary_metric("s", {0.5: 1.0}, labels=point_attrs)
    else:
        metric = sum_metric("c", [(point_attrs, 1.0)])
    request = request_of(metric, scope_attributes={k: "s" for k in scope_keys})
    point = only(translate(request).points)
    for _, labels, _, _ in samples(point, created=True):
        names = [k for k, _ in labels]
        assert len(names) == len(set(names)), labels
        assert all(VALID_LABEL.fullmatch(k) and not k.startswith("__") for k in names), labels
