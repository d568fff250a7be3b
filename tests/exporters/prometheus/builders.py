"""OTLP metrics requests to translate, built in a line: shared by the Prometheus exporter
tests (translation, series state, pull, remote write, labels) and the end-to-end tests."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

from exporters.prometheus.translate import PromPoint

T0 = 1_700_000_000_000_000_000
SEC = 1_000_000_000
CUMULATIVE: Any = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA: Any = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
RESOURCE = {
    "service.name": "checkout",
    "service.namespace": "shop",
    "service.instance.id": "pod-1",
    "deployment.environment": "test",
}


def attrs(values: dict[str, Any]) -> list[KeyValue]:
    out = []
    for key, value in values.items():
        if isinstance(value, bool):
            any_value = AnyValue(bool_value=value)
        elif isinstance(value, int):
            any_value = AnyValue(int_value=value)
        elif isinstance(value, float):
            any_value = AnyValue(double_value=value)
        else:
            any_value = AnyValue(string_value=str(value))
        out.append(KeyValue(key=key, value=any_value))
    return out


def request_of(
    *metrics: metrics_pb2.Metric,
    resource: dict[str, Any] | None = None,
    scope: tuple[str, str] = ("my.lib", "1.2"),
    scope_attributes: dict[str, Any] | None = None,
) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.extend(attrs(RESOURCE if resource is None else resource))
    sm = rm.scope_metrics.add()
    sm.scope.name, sm.scope.version = scope
    sm.scope.attributes.extend(attrs(scope_attributes or {}))
    sm.metrics.extend(metrics)
    return request


def sum_metric(
    name: str,
    values: list[tuple[dict[str, Any], float]],
    *,
    unit: str = "",
    monotonic: bool = True,
    temporality: Any = CUMULATIVE,
    t: int = T0 + SEC,
) -> metrics_pb2.Metric:
    metric = metrics_pb2.Metric(name=name, unit=unit, description=f"{name} help")
    metric.sum.is_monotonic = monotonic
    metric.sum.aggregation_temporality = temporality
    for labels, value in values:
        metric.sum.data_points.add(
            attributes=attrs(labels), as_double=value, time_unix_nano=t, start_time_unix_nano=T0
        )
    return metric


def gauge_metric(name: str, value: float, unit: str = "", t: int = T0 + SEC) -> metrics_pb2.Metric:
    metric = metrics_pb2.Metric(name=name, unit=unit)
    metric.gauge.data_points.add(as_int=int(value), time_unix_nano=t)
    return metric


def histogram_metric(
    name: str,
    bounds: list[float],
    counts: list[int],
    total: float,
    *,
    unit: str = "s",
    temporality: Any = CUMULATIVE,
    t: int = T0 + SEC,
    labels: dict[str, Any] | None = None,
) -> metrics_pb2.Metric:
    metric = metrics_pb2.Metric(name=name, unit=unit, description=f"{name} help")
    metric.histogram.aggregation_temporality = temporality
    metric.histogram.data_points.add(
        attributes=attrs(labels or {}),
        explicit_bounds=bounds,
        bucket_counts=counts,
        count=sum(counts),
        sum=total,
        time_unix_nano=t,
        start_time_unix_nano=T0,
    )
    return metric


def summary_metric(
    name: str,
    quantiles: dict[float, float],
    *,
    labels: dict[str, Any] | None = None,
    unit: str = "s",
    t: int = T0 + SEC,
) -> metrics_pb2.Metric:
    metric = metrics_pb2.Metric(name=name, unit=unit, description=f"{name} help")
    dp = metric.summary.data_points.add(
        attributes=attrs(labels or {}), count=10, sum=55.0, time_unix_nano=t,
        start_time_unix_nano=T0,
    )  # fmt: skip
    for quantile, value in quantiles.items():
        dp.quantile_values.add(quantile=quantile, value=value)
    return metric


def only(points: list[PromPoint]) -> PromPoint:
    assert len(points) == 1, points
    return points[0]
