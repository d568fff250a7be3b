"""Signals the gateway produces itself (host metrics, span metrics) and the health it derives.

This module holds what those producers share: the gateway's own OTLP resource and small
builders for OTLP metric messages, so every internal metric carries the same identity.
"""

from __future__ import annotations

import platform
import socket
import time
import uuid
from collections.abc import Iterable, Mapping

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    Metric,
    NumberDataPoint,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from gateway import __version__

SERVICE_NAME = "otelgate"
UNKNOWN_SERVICE = "unknown_service"
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE


_INSTANCE_ID = str(uuid.uuid4())
_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "x86",
    "i686": "x86",
    "ppc64le": "ppc64",
    "s390x": "s390x",
}


def instance_id() -> str:
    """This process's ``service.instance.id`` (a UUID, new on every start, as the SDK does)."""
    return _INSTANCE_ID


def attribute(key: str, value: str | int | float | bool) -> KeyValue:
    """An OTLP attribute from a Python scalar."""
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def attributes(values: Mapping[str, str | int | float | bool]) -> list[KeyValue]:
    """OTLP attributes from a mapping, in its order."""
    return [attribute(k, v) for k, v in values.items()]


def gateway_resource() -> Resource:
    """The resource of everything the gateway emits about itself."""
    system = platform.system().lower()
    machine = platform.machine().lower()
    values: dict[str, str] = {
        "service.name": SERVICE_NAME,
        "service.instance.id": instance_id(),
        "service.version": __version__,
        "host.name": socket.gethostname(),
        "os.type": system or "unknown",
        "host.arch": _ARCH.get(machine, machine or "unknown"),
    }
    return Resource(attributes=attributes(values))


def service_name(resource: Resource) -> str:
    """A resource's ``service.name`` (``unknown_service`` when missing or empty)."""
    for kv in resource.attributes:
        if kv.key == "service.name":
            return kv.value.string_value or UNKNOWN_SERVICE
    return UNKNOWN_SERVICE


def scope(name: str) -> InstrumentationScope:
    """The instrumentation scope of one internal producer."""
    return InstrumentationScope(name=name, version=__version__)


def now_ns() -> int:
    """Wall-clock time in nanoseconds since the epoch."""
    return time.time_ns()


def number_point(
    value: float | int,
    labels: Mapping[str, str | int | float | bool],
    time_ns: int,
    start_ns: int = 0,
) -> NumberDataPoint:
    """A data point; ints stay ints (``as_int``), floats are doubles."""
    point = NumberDataPoint(
        attributes=attributes(labels), time_unix_nano=time_ns, start_time_unix_nano=start_ns
    )
    if isinstance(value, int) and not isinstance(value, bool):
        point.as_int = value
    else:
        point.as_double = float(value)
    return point


def gauge(name: str, unit: str, description: str, points: Iterable[NumberDataPoint]) -> Metric:
    """A gauge metric."""
    metric = Metric(name=name, unit=unit, description=description)
    metric.gauge.data_points.extend(points)
    return metric


def cumulative_sum(
    name: str, unit: str, description: str, points: Iterable[NumberDataPoint], *, monotonic: bool
) -> Metric:
    """A cumulative sum: a counter when ``monotonic``, else an up-down counter."""
    metric = Metric(name=name, unit=unit, description=description)
    metric.sum.aggregation_temporality = CUMULATIVE
    metric.sum.is_monotonic = monotonic
    metric.sum.data_points.extend(points)
    return metric
