"""OTLP metrics -> Prometheus points, following the OTel "Prometheus and OpenMetrics
compatibility" specification (OTLP metric points to Prometheus).

Pure functions and small value types, shared by the pull exporter (:mod:`exporters.prometheus`)
and remote write (:mod:`exporters.remote_write`). What happens to delta points, series limits
and expiry is :mod:`exporters.prom_state`'s business.
"""

from __future__ import annotations

import base64
import enum
import json
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
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

Labels = tuple[tuple[str, str], ...]  # sorted by name, no empty values

_DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
_NO_RECORDED_VALUE = metrics_pb2.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")
_UNDERSCORES = re.compile(r"__+")
_ANNOTATION = re.compile(r"\{[^}]*\}")
# Resource attributes that become job/instance instead of target_info labels.
_IDENTIFYING = frozenset({"service.name", "service.namespace", "service.instance.id"})
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
    (job, instance), and how many data points were dropped, by reason."""

    points: list[PromPoint] = field(default_factory=list)
    targets: dict[tuple[str, str], Labels] = field(default_factory=dict)
    dropped: Counter[str] = field(default_factory=Counter)


# --- names -----------------------------------------------------------------------------------


def _collapse(text: str) -> str:
    return _UNDERSCORES.sub("_", text)


def prometheus_unit(unit: str) -> str:
    """The Prometheus word for an OTel (UCUM) unit: ``ms`` -> ``milliseconds``, ``{packet}``
    -> ``""``, ``m/s`` -> ``meters_per_second``, ``1`` -> ``""`` (``ratio`` is gauge-only)."""
    main, _, per = unit.partition("/")
    main = _ANNOTATION.sub("", main).strip()
    per = _ANNOTATION.sub("", per).strip()
    main = _UNITS.get(main, main)
    per = _PER_UNITS.get(per, per)
    word = f"{main}_per_{per}" if main and per else f"per_{per}" if per else main
    return _collapse(_INVALID_LABEL_CHARS.sub("_", word)).strip("_")


def metric_name(name: str, unit: str, kind: Kind) -> tuple[str, str]:
    """``(family name, unit word)`` for an OTel metric.

    Invalid characters become ``_`` and runs of ``_`` collapse; the unit word is appended
    unless the name already contains it; gauges with unit ``1`` get ``ratio``. Counters lose
    a trailing ``_total`` here: it is the type suffix, added after the unit on output. The
    unit word is returned only when the family name ends with it (what OpenMetrics
    ``# UNIT`` requires), else ``""``.
    """
    base = _collapse(_INVALID_NAME_CHARS.sub("_", name))
    if base[:1].isdigit():
        base = "_" + base
    if kind is Kind.COUNTER and base.endswith("_total") and base != "_total":
        base = base.removesuffix("_total")
    word = prometheus_unit(unit)
    if kind is Kind.GAUGE and unit.strip() == "1":
        word = "ratio"
    if word and f"_{word}_" not in f"_{base}_":
        base = f"{base}_{word}"
    base = _collapse(base)
    return base, word if word and base.endswith(f"_{word}") else ""


def label_name(key: str) -> str:
    """A valid Prometheus label name: invalid characters -> ``_``, runs collapsed, a leading
    digit gets ``key_`` and a leading ``_`` gets ``key`` (``__`` is reserved)."""
    name = _collapse(_INVALID_LABEL_CHARS.sub("_", key))
    if not name:
        return "key_"
    if name[0].isdigit():
        return "key_" + name
    if name[0] == "_":
        return "key" + name
    return name


def attribute_value(value: AnyValue) -> str:
    """An attribute value as a label value (non-strings as in the OTel attribute spec)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind is None:
        return ""
    plain = _plain(value)
    return plain if isinstance(plain, str) else json.dumps(plain, separators=(",", ":"))


def _plain(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return _float_text(value.double_value)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind == "array_value":
        return [_json(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _json(kv.value) for kv in value.kvlist_value.values}
    return value.string_value if kind == "string_value" else ""


def _json(value: AnyValue) -> Any:
    """Nested values keep their JSON type (numbers stay numbers inside arrays)."""
    kind = value.WhichOneof("value")
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        number = value.double_value
        return number if math.isfinite(number) else _float_text(number)
    return _plain(value)


def _float_text(number: float) -> str:
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return repr(number)


def labels_from(attributes: Iterable[KeyValue]) -> dict[str, str]:
    """Sanitised labels; keys that collide are joined with ``;`` in original-key order.
    Empty values are left out (Prometheus treats them as absent)."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    for kv in attributes:
        text = attribute_value(kv.value)
        if text:
            grouped.setdefault(label_name(kv.key), []).append((kv.key, text))
    return {name: ";".join(v for _, v in sorted(pairs)) for name, pairs in grouped.items()}


def job_instance(resource_attributes: Iterable[KeyValue]) -> tuple[str, str]:
    """``job`` (``service.namespace/service.name`` or ``service.name``) and ``instance``
    (``service.instance.id``); empty when absent."""
    found = {kv.key: attribute_value(kv.value) for kv in resource_attributes
             if kv.key in _IDENTIFYING}  # fmt: skip
    name, namespace = found.get("service.name", ""), found.get("service.namespace", "")
    job = f"{namespace}/{name}" if namespace and name else name
    return job, found.get("service.instance.id", "")


def _freeze(labels: dict[str, str]) -> Labels:
    return tuple(sorted((k, v) for k, v in labels.items() if v))


# --- points ----------------------------------------------------------------------------------


def translate(request: ExportMetricsServiceRequest) -> Translation:
    """Every data point of ``request`` as a :class:`PromPoint`, plus target_info labels."""
    out = Translation()
    for rm in request.resource_metrics:
        attributes = rm.resource.attributes
        job, instance = job_instance(attributes)
        others = labels_from(kv for kv in attributes if kv.key not in _IDENTIFYING)
        if others:
            out.targets[(job, instance)] = _freeze({**others, "job": job, "instance": instance})
        for sm in rm.scope_metrics:
            scope = {
                "otel_scope_name": sm.scope.name,
                "otel_scope_version": sm.scope.version,
                "otel_scope_schema_url": sm.schema_url,
                "job": job,
                "instance": instance,
            }
            for metric in sm.metrics:
                _metric_points(metric, scope, out)
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
            point = _point(base, num, scope, delta)
            point.value = _number(num)
            if monotonic:
                point.exemplars = tuple(_exemplars(num.exemplars))
            out.points.append(point)
    elif data == "histogram":
        delta = metric.histogram.aggregation_temporality == _DELTA
        for hist in metric.histogram.data_points:
            point = _point(base, hist, scope, delta)
            _fill_histogram(point, hist)
            out.points.append(point)
    elif data == "exponential_histogram":
        if metric.exponential_histogram.aggregation_temporality == _DELTA:
            out.dropped["delta_exponential_histogram"] += len(
                metric.exponential_histogram.data_points
            )
            return
        for exp in metric.exponential_histogram.data_points:
            point = _point(base, exp, scope, False)
            point.bounds, point.counts = exponential_buckets(exp)
            point.count = exp.count
            point.sum = exp.sum if exp.HasField("sum") and not _negative(exp) else None
            point.exemplars = tuple(_exemplars(exp.exemplars))
            out.points.append(point)
    else:
        for summ in metric.summary.data_points:
            point = _point(base, summ, scope, False)
            point.count, point.sum = summ.count, summ.sum
            point.quantiles = tuple(sorted((q.quantile, q.value) for q in summ.quantile_values))
            out.points.append(point)


def _point(base: PromPoint, dp: Any, scope: dict[str, str], delta: bool) -> PromPoint:
    labels = labels_from(dp.attributes)
    labels.update(scope)  # scope and job/instance win over a data point attribute
    return PromPoint(
        base.family, base.kind, base.help, base.unit, _freeze(labels),
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
        yield PromExemplar(_freeze(labels), _number(ex), ex.time_unix_nano)


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
