"""OTLP batches carrying exceptions, for the error-tracking tests."""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, SeverityNumber
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from gateway.otlp.batch import Batch, Signal
from gateway.otlp.builders import attributes

PY_STACK = """Traceback (most recent call last):
  File "/srv/app/shop/api.py", line 40, in checkout
    return orders.create(cart)
  File "/srv/app/shop/orders.py", line {line}, in create
    raise ValueError(f"cart {{cart.id}} is empty")
ValueError: cart {cart} is empty
"""
OTHER_STACK = """Traceback (most recent call last):
  File "/srv/app/shop/api.py", line 70, in refund
    return payments.refund(order)
  File "/srv/app/shop/payments.py", line 12, in refund
    raise KeyError(order)
KeyError: 'o-1'
"""


def resource(service: str = "shop", version: str | None = "1.0.0", **extra: str) -> Resource:
    values = {"service.name": service, "telemetry.sdk.language": "python", **extra}
    if version is not None:
        values["service.version"] = version
    return Resource(attributes=attributes(values))


def exception_attributes(kind: str, message: str, stack: str) -> dict[str, str]:
    return {"exception.type": kind, "exception.message": message, "exception.stacktrace": stack}


def span_with_exception(
    kind: str = "ValueError",
    message: str = "cart 42 is empty",
    stack: str | None = None,
    trace_id: bytes | None = None,
    span_attributes: Mapping[str, str | int] | None = None,
    time_ns: int = 1_700_000_000_000_000_000,
) -> Span:
    span = Span(
        trace_id=trace_id or os.urandom(16),
        span_id=os.urandom(8),
        name="POST /checkout",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=time_ns - 1000,
        end_time_unix_nano=time_ns,
        attributes=attributes(dict(span_attributes or {"http.route": "/checkout"})),
    )
    event = span.events.add(name="exception", time_unix_nano=time_ns)
    stack = PY_STACK.format(line=41, cart=42) if stack is None else stack
    event.attributes.extend(attributes(exception_attributes(kind, message, stack)))
    return span


def traces(*spans: Span, res: Resource | None = None) -> Batch:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.CopyFrom(res or resource())
    rs.scope_spans.add().spans.extend(spans)
    return Batch.from_request(Signal.TRACES, request)


def log_with_exception(
    kind: str = "ValueError",
    message: str = "cart 42 is empty",
    stack: str | None = None,
    trace_id: bytes = b"",
    time_ns: int = 1_700_000_000_000_000_000,
) -> LogRecord:
    stack = PY_STACK.format(line=41, cart=42) if stack is None else stack
    record = LogRecord(
        time_unix_nano=time_ns,
        severity_number=SeverityNumber.SEVERITY_NUMBER_ERROR,
        trace_id=trace_id,
        span_id=os.urandom(8) if trace_id else b"",
        attributes=attributes(exception_attributes(kind, message, stack)),
    )
    record.body.string_value = "checkout failed"
    return record


def logs(*records: LogRecord, res: Resource | None = None) -> Batch:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.CopyFrom(res or resource())
    rl.scope_logs.add().log_records.extend(records)
    return Batch.from_request(Signal.LOGS, request)
