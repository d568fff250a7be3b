"""OTLP metrics as CloudWatch Embedded Metric Format records, written as log events.

One record per (log group and stream, timestamp, dimensions and other properties) carries every
metric of that time and those dimensions (at most 100, a record per extra 100 or per repeated
name), so CloudWatch extracts each as a metric of ``namespace``::

    {"_aws": {"Timestamp": 1700000000000, "CloudWatchMetrics": [{"Namespace": "otelgate",
      "Dimensions": [["service.name", "http.route"]],
      "Metrics": [{"Name": "http.server.requests", "Unit": "Count"}]}]},
     "service.name": "checkout", "http.route": "/pay", "http.server.requests": 12}

Dimensions: the configured resource attributes (``resource_dimensions``, in order), then the
point's attributes (sorted by key; with ``attribute_dimensions``), all as strings. CloudWatch
takes at most 30 per set, names of 1-250 and values of 1-1024 ASCII characters, not blank, a
name not starting with ``:``: other attributes stay in the record as plain properties (counted
as adjusted: ``dimensions_over_limit``, ``dimension_invalid``). Units follow UCUM as far as
CloudWatch has them (:data:`UNITS`; a sum's ``1`` or ``{annotation}`` is ``Count``). A record
over the event size limit is split by its metrics; values never get cut.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from exporters.cloudwatch.batching import Destination, Event, Plan, utf8_size
from exporters.cloudwatch.deltas import DeltaTracker
from exporters.cloudwatch.limits import (
    EMF_MAX_DIMENSION_NAME,
    EMF_MAX_DIMENSION_VALUE,
    EMF_MAX_DIMENSIONS,
    EMF_MAX_METRIC_NAME,
    EMF_MAX_METRICS,
)
from exporters.cloudwatch.names import NameTemplate, attribute_texts
from exporters.cloudwatch.points import PointReader
from gateway.otlp.values import to_text

UNITS = {
    "s": "Seconds", "ms": "Milliseconds", "us": "Microseconds", "By": "Bytes",
    "kBy": "Kilobytes", "KBy": "Kilobytes", "KiBy": "Kilobytes", "MBy": "Megabytes",
    "MiBy": "Megabytes", "GBy": "Gigabytes", "GiBy": "Gigabytes", "TBy": "Terabytes",
    "TiBy": "Terabytes", "bit": "Bits", "kbit": "Kilobits", "Kibit": "Kilobits",
    "Mbit": "Megabits", "Mibit": "Megabits", "Gbit": "Gigabits", "Tbit": "Terabits",
    "%": "Percent", "By/s": "Bytes/Second", "kBy/s": "Kilobytes/Second",
    "KiBy/s": "Kilobytes/Second", "MBy/s": "Megabytes/Second", "MiBy/s": "Megabytes/Second",
    "GBy/s": "Gigabytes/Second", "TBy/s": "Terabytes/Second", "bit/s": "Bits/Second",
    "kbit/s": "Kilobits/Second", "Mbit/s": "Megabits/Second", "Gbit/s": "Gigabits/Second",
    "Tbit/s": "Terabits/Second", "1/s": "Count/Second", "{count}/s": "Count/Second",
}  # fmt: skip
RESERVED = "_aws"
# (destination, timestamp, properties, dimensions): the points that share one record
RecordKey = tuple[Destination, int, tuple[tuple[str, str], ...], tuple[str, ...]]
BAD_NAME = "metric name empty, over 1024 characters or _aws"
NAME_TAKEN = "metric name equals an attribute of its data point"
TOO_BIG = "EMF record of one metric over the event size limit"


def cloudwatch_unit(unit: str, kind: str | None) -> str | None:
    """The CloudWatch unit of an OTLP (UCUM) unit, or None to leave it out."""
    if unit in UNITS:
        return UNITS[unit]
    if kind == "sum" and (unit in ("", "1") or (unit.startswith("{") and unit.endswith("}"))):
        return "Count"
    return None


def valid_dimension(name: str, value: str) -> bool:
    """Whether CloudWatch takes ``name=value`` as a dimension."""
    return (
        0 < len(name) <= EMF_MAX_DIMENSION_NAME and bool(name.strip()) and name.isascii()
        and not name.startswith(":") and 0 < len(value) <= EMF_MAX_DIMENSION_VALUE
        and bool(value.strip()) and value.isascii()
    )  # fmt: skip


@dataclass(slots=True)
class Record:
    """One EMF record being filled: its properties (dimensions first) and metrics."""

    timestamp: int
    properties: dict[str, str]
    dimensions: list[str]
    metrics: dict[str, tuple[Any, str | None, int]] = field(default_factory=dict)  # +position

    def document(self, namespace: str, high_resolution: bool) -> dict[str, Any]:
        """The EMF JSON object."""
        definitions = [
            {"Name": name, **({"Unit": unit} if unit else {}),
             **({"StorageResolution": 1} if high_resolution else {})}
            for name, (_, unit, _) in self.metrics.items()
        ]  # fmt: skip
        directive = {
            "Namespace": namespace, "Dimensions": [self.dimensions], "Metrics": definitions
        }  # fmt: skip
        aws = {"Timestamp": self.timestamp, "CloudWatchMetrics": [directive]}
        doc: dict[str, Any] = {"_aws": aws}
        doc.update(self.properties)
        doc.update((name, value) for name, (value, _, _) in self.metrics.items())
        return doc


class EmfMapping:
    """Turns a metrics request into EMF events per log group and stream."""

    def __init__(
        self,
        group: NameTemplate,
        stream: NameTemplate,
        tracker: DeltaTracker,
        *,
        namespace: str,
        resource_dimensions: list[str],
        attribute_dimensions: bool = True,
        high_resolution: bool = False,
        max_event_size: int,
    ) -> None:
        self.group, self.stream, self.namespace = group, stream, namespace
        self.resource_dimensions = resource_dimensions
        self.attribute_dimensions = attribute_dimensions
        self.high_resolution = high_resolution
        self.max_event_size = max_event_size
        self.reader = PointReader(tracker)
        self._keys = (*group.keys, *stream.keys, *resource_dimensions)

    def events(
        self, request: ExportMetricsServiceRequest, plan: Plan, now_ns: int | None = None
    ) -> dict[Destination, list[Event]]:
        """The EMF events of every data point, by destination; refusals go to ``plan``."""
        now = time.time_ns() if now_ns is None else now_ns
        records: dict[RecordKey, list[Record]] = defaultdict(list)
        self.reader.tracker.sweep()
        position = 0
        for rm in request.resource_metrics:
            texts = attribute_texts(rm.resource.attributes, self._keys)
            destination = (self.group.render(texts), self.stream.render(texts))
            base = [(k, texts[k]) for k in self.resource_dimensions if k in texts]
            resource_id = tuple(sorted((a.key, to_text(a.value)) for a in rm.resource.attributes))
            for sm in rm.scope_metrics:
                series = (resource_id, sm.scope.name, sm.scope.version)
                for metric in sm.metrics:
                    name = metric.name
                    if not name or len(name) > EMF_MAX_METRIC_NAME or name == RESERVED:
                        plan.refuse(_points(metric), BAD_NAME)
                        position += _points(metric)
                        continue
                    unit = cloudwatch_unit(metric.unit, metric.WhichOneof("data"))
                    for reading in self.reader.read(metric, series):
                        position += 1
                        if reading.refused:
                            plan.refuse(1, reading.refused)
                            continue
                        if reading.skip:
                            plan.adjusted[reading.skip] += 1
                            continue
                        p = reading.point
                        stamp = (p.time_unix_nano or now) // 1_000_000
                        props, dims = self._properties(base, p.attributes, plan)
                        if name in props:
                            plan.refuse(1, NAME_TAKEN)
                            continue
                        key = (destination, stamp, tuple(props.items()), tuple(dims))
                        metric_value = (reading.value, unit, position - 1)
                        _add(records[key], stamp, props, dims, name, metric_value)
        out: dict[Destination, list[Event]] = defaultdict(list)
        for (destination, *_), group in records.items():
            for record in group:
                out[destination].extend(self._encode(record, plan))
        return dict(out)

    def _properties(
        self, base: list[tuple[str, str]], attributes: Any, plan: Plan
    ) -> tuple[dict[str, str], list[str]]:
        """A point's properties (resource dimensions, then its attributes) and dimensions."""
        props = dict(base)
        dims = [k for k, v in base if valid_dimension(k, v)]
        extra: list[KeyValue] = sorted(attributes, key=lambda kv: kv.key)
        over = invalid = False
        for kv in extra:
            if kv.key == RESERVED or kv.key in props:
                continue
            value = to_text(kv.value)
            props[kv.key] = value
            if not self.attribute_dimensions:
                continue
            if not valid_dimension(kv.key, value):
                invalid = True
            elif len(dims) >= EMF_MAX_DIMENSIONS:
                over = True
            else:
                dims.append(kv.key)
        if invalid:
            plan.adjusted["dimension_invalid"] += 1
        if over:
            plan.adjusted["dimensions_over_limit"] += 1
        return props, dims

    def _encode(self, record: Record, plan: Plan) -> list[Event]:
        """The record as events of at most ``max_event_size`` bytes (split by metrics)."""
        text = orjson.dumps(record.document(self.namespace, self.high_resolution)).decode()
        size = utf8_size(text)
        items = len(record.metrics)
        if size <= self.max_event_size:
            positions = tuple(position for _, _, position in record.metrics.values())
            return [Event(record.timestamp, text, size, positions)]
        if items == 1:
            plan.refuse(1, TOO_BIG)
            return []
        names = list(record.metrics)
        halves = names[: items // 2], names[items // 2 :]
        return [
            event
            for half in halves
            for event in self._encode(
                Record(record.timestamp, record.properties, record.dimensions,
                       {n: record.metrics[n] for n in half}),
                plan,
            )
        ]  # fmt: skip


def _add(
    group: list[Record], stamp: int, props: dict[str, str], dims: list[str],
    name: str, value: tuple[Any, str | None, int],
) -> None:  # fmt: skip
    """Put a metric (value, unit, position) in the first record of ``group`` with room and
    without that name."""
    for record in group:
        if name not in record.metrics and len(record.metrics) < EMF_MAX_METRICS:
            record.metrics[name] = value
            return
    group.append(Record(stamp, props, dims, {name: value}))


def _points(metric: Any) -> int:
    kind = metric.WhichOneof("data")
    return len(getattr(metric, kind).data_points) if kind else 0
