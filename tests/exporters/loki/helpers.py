"""OTLP log requests for the Loki exporter's tests."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from gateway.otlp.batch import Batch, Signal
from tests.support.otlp_samples import sample_request

TRACE = bytes(range(1, 17))

SPAN = bytes(range(0xA0, 0xA8))


def kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, AnyValue):
        return KeyValue(key=key, value=value)
    field = {bool: "bool_value", int: "int_value", float: "double_value", bytes: "bytes_value"}
    return KeyValue(key=key, value=AnyValue(**{field.get(type(value), "string_value"): value}))


def logs(records: list[LogRecord], **resource: Any) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    attrs = {"service.name": "checkout", **resource}
    rl = request.resource_logs.add()
    rl.resource.attributes.extend(kv(k, v) for k, v in attrs.items())
    sl = rl.scope_logs.add()
    sl.scope.name, sl.scope.version = "app.orders", "2.1"
    sl.log_records.extend(records)
    return request


def record(i: int, body: str | None = None, **attrs: Any) -> LogRecord:
    rec = LogRecord(
        time_unix_nano=T0 + i,
        severity_number=9,  # type: ignore[arg-type]
        severity_text="INFO",
        body=AnyValue(string_value=body if body is not None else f"line {i}"),
        attributes=[kv(k, v) for k, v in attrs.items()],
    )
    return rec


def sample_logs(n: int) -> ExportLogsServiceRequest:
    request = sample_request(Signal.LOGS, n)
    assert isinstance(request, ExportLogsServiceRequest)
    return request


def batch(request: ExportLogsServiceRequest) -> Batch:
    return Batch.from_request(Signal.LOGS, request)


T0 = 1_700_000_000_000_000_000
