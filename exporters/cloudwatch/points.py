"""OTLP data points as EMF metric values.

| OTLP | EMF value |
|---|---|
| gauge | the value |
| sum, delta temporality, or not monotonic | the value |
| sum, cumulative and monotonic | the change since the series' previous point (:mod:`.deltas`) |
| histogram, exponential histogram | a distribution of its buckets (:mod:`.distributions`) |
| summary | a statistic set of its count, sum, 0 and 1 quantiles |

Cumulative histograms and summaries are sent as deltas too (of their count, sum and buckets).

What gives no value is not an error: a point flagged "no recorded value", the baseline point of
a cumulative series, the same point again, a histogram or summary with no observation since
the previous point. Those are reported in ``skip`` (counted as adjusted). NaN, infinities and
values beyond CloudWatch's ±2^360 cannot be carried: the point is refused, as is a cumulative
point older than its series' last.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    DataPointFlags,
    ExponentialHistogramDataPoint,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    SummaryDataPoint,
)

from exporters.cloudwatch.deltas import DeltaTracker, Values
from exporters.cloudwatch.distributions import (
    distribution,
    explicit_buckets,
    exponential_buckets,
    statistic_set,
)
from exporters.cloudwatch.limits import EMF_MAX_MAGNITUDE

CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
NO_VALUE = DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
NOT_FINITE = "NaN, infinite or beyond ±2^360 (CloudWatch cannot carry it)"
OUT_OF_ORDER = "cumulative point not newer than its series' last one"
TOO_FAR = "exponential histogram bucket beyond what a float holds"
AnyPoint = NumberDataPoint | HistogramDataPoint | ExponentialHistogramDataPoint | SummaryDataPoint


@dataclass(slots=True)
class Reading:
    """What became of one data point: an EMF ``value``, nothing to write (``skip``, the
    adjustment reason) or a refusal (``refused``, the reason)."""

    point: AnyPoint
    value: Any = None
    skip: str | None = None
    refused: str | None = None


def finite(value: Any) -> bool:
    """Whether every number in ``value`` is one CloudWatch takes."""
    if isinstance(value, dict):
        return all(finite(v) for v in value.values())
    if isinstance(value, list):
        return all(finite(v) for v in value)
    return math.isfinite(value) and abs(value) < EMF_MAX_MAGNITUDE


def _key(prefix: Hashable, point: AnyPoint) -> Hashable:
    attributes = sorted((kv.key, kv.value.SerializeToString()) for kv in point.attributes)
    return (prefix, tuple(attributes))


class PointReader:
    """Reads every data point of a metric, with the delta state of cumulative series."""

    def __init__(self, tracker: DeltaTracker) -> None:
        self.tracker = tracker

    def read(self, metric: Metric, series: Hashable) -> Iterator[Reading]:
        """A reading per data point; ``series`` identifies the resource and scope."""
        kind = metric.WhichOneof("data")
        prefix = (series, metric.name, kind)
        if kind == "gauge":
            for p in metric.gauge.data_points:
                yield self._number(p)
        elif kind == "sum":
            temporality = metric.sum.aggregation_temporality
            cumulative = metric.sum.is_monotonic and temporality == CUMULATIVE
            for p in metric.sum.data_points:
                yield self._counter(p, _key(prefix, p)) if cumulative else self._number(p)
        elif kind == "histogram":
            cumulative = metric.histogram.aggregation_temporality == CUMULATIVE
            for hp in metric.histogram.data_points:
                yield self._histogram(hp, _key(prefix, hp) if cumulative else None)
        elif kind == "exponential_histogram":
            cumulative = metric.exponential_histogram.aggregation_temporality == CUMULATIVE
            for ep in metric.exponential_histogram.data_points:
                yield self._exponential(ep, _key(prefix, ep) if cumulative else None)
        elif kind == "summary":
            for sp in metric.summary.data_points:
                yield self._summary(sp, _key(prefix, sp))

    @staticmethod
    def _checked(reading: Reading) -> Reading:
        if reading.value is not None and not finite(reading.value):
            reading.value, reading.refused = None, NOT_FINITE
        return reading

    def _number(self, p: NumberDataPoint) -> Reading:
        if p.flags & NO_VALUE:
            return Reading(p, skip="no_recorded_value")
        value = p.as_int if p.WhichOneof("value") == "as_int" else p.as_double
        return self._checked(Reading(p, value))

    def _delta(self, p: AnyPoint, key: Hashable, values: Values, shape: Hashable = None) -> Any:
        """The delta of a cumulative point, or a Reading saying why there is none."""
        if p.flags & NO_VALUE:
            return Reading(p, skip="no_recorded_value")
        if not all(math.isfinite(v) for v in values):
            return Reading(p, refused=NOT_FINITE)
        found = self.tracker.delta(key, p.start_time_unix_nano, p.time_unix_nano, values, shape)
        if found == "out_of_order":
            return Reading(p, refused=OUT_OF_ORDER)
        if isinstance(found, str):
            return Reading(p, skip=f"cumulative_{found}")
        return found

    def _counter(self, p: NumberDataPoint, key: Hashable) -> Reading:
        value = float(p.as_int) if p.WhichOneof("value") == "as_int" else p.as_double
        found = self._delta(p, key, (value,))
        if isinstance(found, Reading):
            return found
        delta = found[0]
        return self._checked(Reading(p, int(delta) if p.WhichOneof("value") == "as_int" else delta))

    def _histogram(self, p: HistogramDataPoint, key: Hashable | None) -> Reading:
        counts: tuple[float, ...] = tuple(float(c) for c in p.bucket_counts)
        values: Values = (float(p.count), p.sum if p.HasField("sum") else 0.0, *counts)
        whole = key is None
        if key is not None:
            found = self._delta(p, key, values, tuple(p.explicit_bounds))
            if isinstance(found, Reading):
                return found
            whole, values = found is values, found
        elif p.flags & NO_VALUE:
            return Reading(p, skip="no_recorded_value")
        count = int(values[0])
        if count <= 0:
            return Reading(p, skip="no_observations")
        low = p.min if whole and p.HasField("min") else None
        high = p.max if whole and p.HasField("max") else None
        buckets = explicit_buckets(p.explicit_bounds, values[2:], low, high)
        total = values[1] if p.HasField("sum") else None
        return self._checked(Reading(p, distribution(buckets, count, total, low, high)))

    def _exponential(self, p: ExponentialHistogramDataPoint, key: Hashable | None) -> Reading:
        pos, neg = tuple(p.positive.bucket_counts), tuple(p.negative.bucket_counts)
        values: Values = (
            float(p.count), p.sum if p.HasField("sum") else 0.0, float(p.zero_count),
            *map(float, pos), *map(float, neg),
        )  # fmt: skip
        whole = key is None
        if key is not None:
            shape = (p.scale, p.positive.offset, len(pos), p.negative.offset, len(neg))
            found = self._delta(p, key, values, shape)
            if isinstance(found, Reading):
                return found
            whole, values = found is values, found
        elif p.flags & NO_VALUE:
            return Reading(p, skip="no_recorded_value")
        count = int(values[0])
        if count <= 0:
            return Reading(p, skip="no_observations")
        rest = [int(v) for v in values[3:]]
        try:
            buckets = exponential_buckets(
                p.scale, int(values[2]), (p.positive.offset, rest[: len(pos)]),
                (p.negative.offset, rest[len(pos) :]),
            )  # fmt: skip
        except OverflowError:
            return Reading(p, refused=TOO_FAR)
        low = p.min if whole and p.HasField("min") else None
        high = p.max if whole and p.HasField("max") else None
        total = values[1] if p.HasField("sum") else None
        return self._checked(Reading(p, distribution(buckets, count, total, low, high)))

    def _summary(self, p: SummaryDataPoint, key: Hashable) -> Reading:
        found = self._delta(p, key, (float(p.count), p.sum))
        if isinstance(found, Reading):
            return found
        count, total = int(found[0]), found[1]
        if count <= 0:
            return Reading(p, skip="no_observations")
        quantiles = {q.quantile: q.value for q in p.quantile_values}
        value = statistic_set(count, total, quantiles.get(0.0), quantiles.get(1.0))
        return self._checked(Reading(p, value))
