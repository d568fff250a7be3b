"""Prometheus remote write 1.0 messages (``prometheus.WriteRequest`` and what it holds),
built at import time from a hand-written descriptor, so no ``protoc`` step is needed.

Field numbers match Prometheus' ``prompb/remote.proto`` and ``prompb/types.proto``; native
histograms (``TimeSeries.histograms``, field 4) are not declared since we never send them.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_REPEATED, _OPTIONAL = _F.LABEL_REPEATED, _F.LABEL_OPTIONAL


def _message(
    file: descriptor_pb2.FileDescriptorProto, name: str, fields: list[tuple[str, int, int, int]]
) -> descriptor_pb2.DescriptorProto:
    """Add message ``name`` with ``(field name, number, type, label)`` fields."""
    message = file.message_type.add(name=name)
    for field_name, number, type_, label in fields:
        field = message.field.add(name=field_name, number=number, type=type_, label=label)
        if type_ in (_F.TYPE_MESSAGE, _F.TYPE_ENUM):
            field.type_name = f".prometheus.{_TYPE_NAMES[field_name]}"
    return message


_TYPE_NAMES = {
    "labels": "Label",
    "samples": "Sample",
    "exemplars": "Exemplar",
    "timeseries": "TimeSeries",
    "metadata": "MetricMetadata",
    "type": "MetricMetadata.MetricType",
}


def _build() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="otelgate/prometheus_remote_write.proto", package="prometheus", syntax="proto3"
    )
    msg, string, double, int64, enum = (
        _F.TYPE_MESSAGE, _F.TYPE_STRING, _F.TYPE_DOUBLE, _F.TYPE_INT64, _F.TYPE_ENUM
    )  # fmt: skip
    _message(file, "Label", [("name", 1, string, _OPTIONAL), ("value", 2, string, _OPTIONAL)])
    _message(file, "Sample", [("value", 1, double, _OPTIONAL), ("timestamp", 2, int64, _OPTIONAL)])
    _message(
        file,
        "Exemplar",
        [("labels", 1, msg, _REPEATED), ("value", 2, double, _OPTIONAL),
         ("timestamp", 3, int64, _OPTIONAL)],
    )  # fmt: skip
    _message(
        file,
        "TimeSeries",
        [("labels", 1, msg, _REPEATED), ("samples", 2, msg, _REPEATED),
         ("exemplars", 3, msg, _REPEATED)],
    )  # fmt: skip
    metadata = _message(
        file,
        "MetricMetadata",
        [("type", 1, enum, _OPTIONAL), ("metric_family_name", 2, string, _OPTIONAL),
         ("help", 4, string, _OPTIONAL), ("unit", 5, string, _OPTIONAL)],
    )  # fmt: skip
    kinds = metadata.enum_type.add(name="MetricType")
    for number, kind in enumerate(
        ["UNKNOWN", "COUNTER", "GAUGE", "HISTOGRAM", "GAUGEHISTOGRAM", "SUMMARY", "INFO",
         "STATESET"]
    ):  # fmt: skip
        kinds.value.add(name=kind, number=number)
    request = _message(
        file,
        "WriteRequest",
        [("timeseries", 1, msg, _REPEATED), ("metadata", 3, msg, _REPEATED)],
    )
    request.reserved_range.add(start=2, end=3)
    return file


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_build())


def _class(name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"prometheus.{name}"))


WriteRequest: Any = _class("WriteRequest")
TimeSeries: Any = _class("TimeSeries")
Label: Any = _class("Label")
Sample: Any = _class("Sample")
Exemplar: Any = _class("Exemplar")
MetricMetadata: Any = _class("MetricMetadata")

METRIC_TYPES = {
    name: number for number, name in enumerate(
        ["unknown", "counter", "gauge", "histogram", "gaugehistogram", "summary", "info",
         "stateset"]
    )
}  # fmt: skip
