"""OTLP metrics -> Prometheus points, following the OTel "Prometheus and OpenMetrics
compatibility" specification (OTLP metric points to Prometheus).

Pure functions and small value types, shared by the pull exporter (:mod:`exporters.prometheus.pull`)
and remote write (:mod:`exporters.prometheus.remote_write`). What happens to delta points, series
limits
and expiry is :mod:`exporters.prometheus.state`'s business.
"""

from __future__ import annotations

import enum
import math
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2

from exporters.prometheus.labels import (
    IDENTIFYING,
    Labels,
    collapse,
    freeze,
    job_instance,
    labels_from,
    reserve,
    scope_labels,
)

# Re-exported: the label helpers lived here before labels.py (gateway.slo.rules uses them).
from exporters.prometheus.labels import attribute_value as attribute_value
from exporters.prometheus.labels import label_name as label_name

_DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
_NO_RECORDED_VALUE = metrics_pb2.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")
_ANNOTATION = re.compile(r"\{[^}]*\}")
# OpenMetrics: an exemplar's label names and values together are at most 128 characters.
_EXEMPLAR_LABEL_CHARS = 128

_UNITS = {
    # time
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds",
    "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds",
    # information
    "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes",
    "TiBy": "tibibytes", "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes",
    "TBy": "terabytes", "bit": "bits",
    # SI and others
    "m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams",
    "Cel": "celsius", "Hz": "hertz", "%": "percent", "1": "",
}  # fmt: skip
_PER_UNITS = {
    "s": "second", "m": "minute", "min": "minute", "h": "hour", "d": "day", "w": "week",
    "mo": "month", "y": "year",
}  # fmt: skip


class Kind(enum.StrEnum):
    """The Prometheus metric type a point becomes."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"
    SUMMARY = "summary"


@dataclass(frozen=True, slots=True)
class PromExemplar:
    """An exemplar: ``trace_id``/``span_id`` (+ filtered attributes) labels, value, time."""

    labels: Labels
    value: float
    time_ns: int


@dataclass(slots=True)
class PromPoint:
    """One OTLP data point, named and labelled the Prometheus way.

    ``family`` is the metric family name: for counters without ``_total`` (the exposition and
    remote write add it). Histogram ``counts`` are per bucket (not cumulative), one more than
    ``bounds`` (the last is the ``+Inf`` bucket).
    """

    family: str
    kind: Kind
    help: str
    unit: str
    labels: Labels
    time_ns: int
    start_ns: int = 0
    delta: bool = False
    stale: bool = False  # the NoRecordedValue flag: the series ended
    value: float = 0.0
    bounds: tuple[float, ...] = ()
    counts: tuple[int, ...] = ()
    count: int = 0
    sum: float | None = None
    quantiles: tuple[tuple[float, float], ...] = ()
    exemplars: tuple[PromExemplar, ...] = ()


@dataclass(slots=True)
class Translation:
    """Everything one request turns into: points, target_info label sets keyed by
    (job, instance), how many data points were dropped, by reason, and how many attribute
    labels were renamed or dropped so that every series stays valid, by reason
    (``le_renamed``, ``le_dropped``, ``quantile_renamed``, ``quantile_dropped``,
    ``scope_attribute_dropped``; once per data point)."""

    points: list[PromPoint] = field(default_factory=list)
    targets: dict[tuple[str, str], Labels] = field(default_factory=dict)
    dropped: Counter[str] = field(default_factory=Counter)
    relabelled: Counter[str] = field(default_factory=Counter)


# --- names -----------------------------------------------------------------------------------


def prometheus_unit(unit: str) -> str:
    """The Prometheus word for an OTel (UCUM) unit: ``ms`` -> ``milliseconds``, ``{packet}``
    -> ``""``, ``m/s`` -> ``meters_per_second``, ``1`` -> ``""`` (``ratio`` is gauge-only)."""
    main, _, per = unit.partition("/")
    main = _ANNOTATION.sub("", main).strip()
    per = _ANNOTATION.sub("", per).strip()
    main = _UNITS.get(main, main)
    per = _PER_UNITS.get(per, per)
    word = f"{main}_per_{per}" if main and per else f"per_{per}" if per else main
    return collapse(_INVALID_LABEL_CHARS.sub("_", word)).strip("_")


def metric_name(name: str, unit: str, kind: Kind) -> tuple[str, str]:
    """``(family name, unit word)`` for an OTel metric.

    Invalid characters become ``_`` and runs of ``_`` collapse; the unit word is appended
    unless the name already contains it; gauges with unit ``1`` get ``ratio``. Counters lose
    a trailing ``_total`` here: it is the type suffix, added after the unit on output. The
    unit word is returned only when the family name ends with it (what OpenMetrics
    ``# UNIT`` requires), else ``""``.
    """
    base = collapse(_INVALID_NAME_CHARS.sub("_", name))
    if base[:1].isdigit():
        base = "_" + base
    if kind is Kind.COUNTER and base.endswith("_total") and base != "_total":
        base = base.removesuffix("_total")
    word = prometheus_unit(unit)
    if kind is Kind.GAUGE and unit.strip() == "1":
        word = "ratio"
    if word and f"_{word}_" not in f"_{base}_":
        base = f"{base}_{word}"
    base = collapse(base)
    return base, word if word and base.endswith(f"_{word}") else ""


# --- points ----------------------------------------------------------------------------------


def translate(request: ExportMetricsServiceRequest) -> Translation:
    """Every data point of ``request`` as a :class:`PromPoint`, plus target_info labels."""
    out = Translation()
    for rm in request.resource_metrics:
        attributes = rm.resource.attributes
        job, instance = job_instance(attributes)
        others = labels_from(kv for kv in attributes if kv.key not in IDENTIFYING)
        if others:
            out.targets[(job, instance)] = freeze({**others, "job": job, "instance": instance})
        for sm in rm.scope_metrics:
            scope, conflicts = scope_labels(
                sm.scope.name, sm.scope.version, sm.schema_url, sm.scope.attributes
            )
            scope.update(job=job, instance=instance)
            before = len(out.points)
            for metric in sm.metrics:
                _metric_points(metric, scope, out)
            if conflicts:
                out.relabelled["scope_attribute_dropped"] += conflicts * (len(out.points) - before)
    return out


def _metric_points(metric: metrics_pb2.Metric, scope: dict[str, str], out: Translation) -> None:
    data = metric.WhichOneof("data")
    if data is None:
        return
    if data == "sum":
        monotonic = metric.sum.is_monotonic
        kind = Kind.COUNTER if monotonic else Kind.GAUGE
        if not monotonic and metric.sum.aggregation_temporality == _DELTA:
            # A delta up-down counter has no cumulative meaning for Prometheus (spec: drop).
            out.dropped["delta_non_monotonic_sum"] += len(metric.sum.data_points)
            return
    elif data == "gauge":
        kind, monotonic = Kind.GAUGE, False
    elif data in ("histogram", "exponential_histogram"):
        kind, monotonic = Kind.HISTOGRAM, False
    else:
        kind, monotonic = Kind.SUMMARY, False
    family, unit = metric_name(metric.name, metric.unit, kind)
    if not family.strip("_"):
        out.dropped["invalid_name"] += len(getattr(metric, data).data_points)
        return
    base = PromPoint(family, kind, metric.description, unit, (), 0)
    if data in ("sum", "gauge"):
        delta = data == "sum" and metric.sum.aggregation_temporality == _DELTA
        for num in getattr(metric, data).data_points:
            point = _point(base, num, scope, delta, out)
            point.value = _number(num)
            if monotonic:
                point.exemplars = tuple(_exemplars(num.exemplars))
            out.points.append(point)
    elif data == "histogram":
        delta = metric.histogram.aggregation_temporality == _DELTA
        for hist in metric.histogram.data_points:
            point = _point(base, hist, scope, delta, out)
            _fill_histogram(point, hist)
            out.points.append(point)
    elif data == "exponential_histogram":
        if metric.exponential_histogram.aggregation_temporality == _DELTA:
            out.dropped["delta_exponential_histogram"] += len(
                metric.exponential_histogram.data_points
            )
            return
        for exp in metric.exponential_histogram.data_points:
            point = _point(base, exp, scope, False, out)
            point.bounds, point.counts = exponential_buckets(exp)
            point.count = exp.count
            point.sum = exp.sum if exp.HasField("sum") and not _negative(exp) else None
            point.exemplars = tuple(_exemplars(exp.exemplars))
            out.points.append(point)
    else:
        for summ in metric.summary.data_points:
            point = _point(base, summ, scope, False, out)
            point.count, point.sum = summ.count, summ.sum
            point.quantiles = tuple(sorted((q.quantile, q.value) for q in summ.quantile_values))
            out.points.append(point)


def _point(
    base: PromPoint, dp: Any, scope: dict[str, str], delta: bool, out: Translation
) -> PromPoint:
    labels = labels_from(dp.attributes)
    labels.update(scope)  # scope and job/instance win over a data point attribute
    if base.kind is Kind.HISTOGRAM:  # the exposition adds le / quantile: theirs win
        reserve(labels, "le", out.relabelled)
    elif base.kind is Kind.SUMMARY:
        reserve(labels, "quantile", out.relabelled)
    return PromPoint(
        base.family, base.kind, base.help, base.unit, freeze(labels),
        dp.time_unix_nano or time.time_ns(),  # a point without a time counts as "now"
        start_ns=dp.start_time_unix_nano, delta=delta,
        stale=bool(dp.flags & _NO_RECORDED_VALUE),
    )  # fmt: skip


def _negative(dp: Any) -> bool:
    """Whether the point saw negative values, which makes ``_sum`` non-monotonic."""
    return bool(dp.HasField("min") and dp.min < 0)


def _fill_histogram(point: PromPoint, hist: metrics_pb2.HistogramDataPoint) -> None:
    bounds = tuple(hist.explicit_bounds)
    counts = tuple(hist.bucket_counts)
    if len(counts) != len(bounds) + 1:  # no buckets at all (or malformed): count only
        bounds, counts = (), (hist.count,)
    point.bounds, point.counts, point.count = bounds, counts, hist.count
    point.sum = hist.sum if hist.HasField("sum") and not _negative(hist) else None
    point.exemplars = tuple(_exemplars(hist.exemplars))


def exponential_buckets(
    dp: metrics_pb2.ExponentialHistogramDataPoint,
) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """Explicit ``(upper bounds, per-bucket counts)`` for an exponential histogram point.

    Bucket ``i`` holds ``(base**i, base**(i+1)]`` with ``base = 2**(2**-scale)``; negative
    buckets mirror it; the zero bucket's upper bound is the zero threshold. The last count
    is the (empty) ``+Inf`` bucket.
    """
    base = 2.0 ** (2.0**-dp.scale)
    pairs: list[tuple[float, int]] = []
    negative = dp.negative
    for k in range(len(negative.bucket_counts) - 1, -1, -1):
        pairs.append((-(base ** (negative.offset + k)), negative.bucket_counts[k]))
    pairs.append((dp.zero_threshold, dp.zero_count))
    positive = dp.positive
    for k, count in enumerate(positive.bucket_counts):
        pairs.append((base ** (positive.offset + k + 1), count))
    bounds: list[float] = []
    counts: list[int] = []
    for bound, count in pairs:  # keep bounds strictly ascending and finite
        if not math.isfinite(bound):
            break
        if bounds and bound <= bounds[-1]:
            counts[-1] += count
        else:
            bounds.append(bound)
            counts.append(count)
    overflow = dp.count - sum(counts)
    return tuple(bounds), (*counts, max(0, overflow))


def _exemplars(exemplars: Iterable[metrics_pb2.Exemplar]) -> Iterator[PromExemplar]:
    for ex in exemplars:
        labels: dict[str, str] = {}
        if ex.trace_id:
            labels["trace_id"] = ex.trace_id.hex()
        if ex.span_id:
            labels["span_id"] = ex.span_id.hex()
        extra = labels_from(ex.filtered_attributes)
        size = sum(len(k) + len(v) for k, v in {**labels, **extra}.items())
        if size <= _EXEMPLAR_LABEL_CHARS:
            labels = {**extra, **labels}
        yield PromExemplar(freeze(labels), _number(ex), ex.time_unix_nano)


def _number(dp: metrics_pb2.NumberDataPoint | metrics_pb2.Exemplar) -> float:
    return float(dp.as_int if dp.WhichOneof("value") == "as_int" else dp.as_double)


def bucket_exemplars(
    bounds: tuple[float, ...], exemplars: tuple[PromExemplar, ...]
) -> list[PromExemplar | None]:
    """One exemplar per bucket (``+Inf`` included): the largest one falling in the bucket,
    else the one chosen for the bucket below (as the spec asks of pull exporters)."""
    chosen: list[PromExemplar | None] = []
    previous: PromExemplar | None = None
    lower = -math.inf
    for upper in (*bounds, math.inf):
        inside = [e for e in exemplars if lower < e.value <= upper]
        if inside:
            previous = max(inside, key=lambda e: e.value)
        chosen.append(previous)
        lower = upper
    return chosen
