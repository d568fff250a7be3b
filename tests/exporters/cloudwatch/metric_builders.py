"""OTLP metrics for the EMF tests: each kind of metric with its points."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    ExponentialHistogramDataPoint,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    SummaryDataPoint,
)

from tests.exporters.cloudwatch.helpers import NOW_NS, kv

DELTA, CUMULATIVE = 1, 2
START_NS = NOW_NS - 3_600_000_000_000  # an hour before: before any exporter of the tests


def number(
    value: float, ns: int = NOW_NS, start: int = START_NS, /, **attrs: Any
) -> NumberDataPoint:
    p = NumberDataPoint(time_unix_nano=ns, start_time_unix_nano=start,
                        attributes=[kv(k, v) for k, v in attrs.items()])  # fmt: skip
    if isinstance(value, int):
        p.as_int = value
    else:
        p.as_double = value
    return p


def gauge(name: str, *points: NumberDataPoint, unit: str = "") -> Metric:
    metric = Metric(name=name, unit=unit)
    metric.gauge.data_points.extend(points)
    return metric


def counter(name: str, *points: NumberDataPoint, temporality: int = CUMULATIVE,
            monotonic: bool = True, unit: str = "{requests}") -> Metric:  # fmt: skip
    metric = Metric(name=name, unit=unit)
    metric.sum.aggregation_temporality = temporality  # type: ignore[assignment]
    metric.sum.is_monotonic = monotonic
    metric.sum.data_points.extend(points)
    return metric


def hpoint(counts: list[int], bounds: list[float], total: float | None, ns: int = NOW_NS,
           start: int = START_NS, low: float | None = None, high: float | None = None,
           **attrs: Any) -> HistogramDataPoint:  # fmt: skip
    p = HistogramDataPoint(time_unix_nano=ns, start_time_unix_nano=start, count=sum(counts),
                           bucket_counts=counts, explicit_bounds=bounds,
                           attributes=[kv(k, v) for k, v in attrs.items()])  # fmt: skip
    if total is not None:
        p.sum = total
    if low is not None:
        p.min = low
    if high is not None:
        p.max = high
    return p


def histogram(name: str, *points: HistogramDataPoint, temporality: int = DELTA,
              unit: str = "ms") -> Metric:  # fmt: skip
    metric = Metric(name=name, unit=unit)
    metric.histogram.aggregation_temporality = temporality  # type: ignore[assignment]
    metric.histogram.data_points.extend(points)
    return metric


def exponential(name: str, scale: int, positive: tuple[int, list[int]], zero: int = 0,
                negative: tuple[int, list[int]] = (0, []), total: float | None = None,
                temporality: int = DELTA, ns: int = NOW_NS) -> Metric:  # fmt: skip
    p = ExponentialHistogramDataPoint(time_unix_nano=ns, start_time_unix_nano=START_NS,
                                      scale=scale, zero_count=zero)  # fmt: skip
    p.positive.offset, p.negative.offset = positive[0], negative[0]
    p.positive.bucket_counts.extend(positive[1])
    p.negative.bucket_counts.extend(negative[1])
    p.count = zero + sum(positive[1]) + sum(negative[1])
    if total is not None:
        p.sum = total
    metric = Metric(name=name, unit="s")
    metric.exponential_histogram.aggregation_temporality = temporality  # type: ignore[assignment]
    metric.exponential_histogram.data_points.append(p)
    return metric


def summary(name: str, count: int, total: float, quantiles: dict[float, float],
            ns: int = NOW_NS, start: int = START_NS) -> Metric:  # fmt: skip
    p = SummaryDataPoint(time_unix_nano=ns, start_time_unix_nano=start, count=count, sum=total)
    for q, v in quantiles.items():
        p.quantile_values.add(quantile=q, value=v)
    metric = Metric(name=name, unit="s")
    metric.summary.data_points.append(p)
    return metric
