"""OTLP log records as CloudWatch Logs events.

| OTLP | CloudWatch Logs event |
|---|---|
| ``time_unix_nano`` (else ``observed_time_unix_nano``, else now) | ``timestamp`` in ms |
| resource attributes | the log group and stream, through their ``{placeholders}`` |
| the record | ``message``: a JSON object (below), or with ``raw_log`` the body as text |

The JSON object follows the Collector's awscloudwatchlogs exporter: ``body`` (a string, or the
map / array as JSON), then, when set, ``severity_number``, ``severity_text``, ``event_name``,
``flags``, ``trace_id`` and ``span_id`` (hex), ``dropped_attributes_count``, ``attributes``,
``resource`` (the resource attributes) and ``scope`` (name and version). With ``raw_log`` a
record without a body is refused: CloudWatch takes no empty event.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from exporters.cloudwatch.batching import Destination, Event, Plan, event
from exporters.cloudwatch.names import NameTemplate, attribute_texts
from gateway.otlp.values import to_python, to_text

EMPTY = "log record without a body (raw_log sends the body; CloudWatch takes no empty event)"


def _mapping(attributes: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: to_python(kv.value) for kv in attributes}


def json_message(record: LogRecord, resource: dict[str, Any], scope: InstrumentationScope) -> str:
    """The record as the JSON object of the module doc."""
    doc: dict[str, Any] = {"body": to_python(record.body)}
    if record.severity_number:
        doc["severity_number"] = int(record.severity_number)
    if record.severity_text:
        doc["severity_text"] = record.severity_text
    if getattr(record, "event_name", ""):
        doc["event_name"] = record.event_name
    if record.flags:
        doc["flags"] = record.flags
    if record.trace_id:
        doc["trace_id"] = record.trace_id.hex()
    if record.span_id:
        doc["span_id"] = record.span_id.hex()
    if record.dropped_attributes_count:
        doc["dropped_attributes_count"] = record.dropped_attributes_count
    if record.attributes:
        doc["attributes"] = _mapping(record.attributes)
    if resource:
        doc["resource"] = resource
    if scope.name:
        doc["scope"] = {"name": scope.name, **({"version": scope.version} if scope.version else {})}
    try:
        return orjson.dumps(doc).decode()
    except (orjson.JSONEncodeError, RecursionError):  # nested past what JSON encoders take
        doc["body"] = to_text(record.body)
        doc.pop("attributes", None)
        return orjson.dumps(doc).decode()


def timestamp_ms(record: LogRecord, now_ns: int) -> int:
    """When the record happened, in milliseconds."""
    return (record.time_unix_nano or record.observed_time_unix_nano or now_ns) // 1_000_000


class LogMapping:
    """Turns a logs request into events per log group and stream."""

    def __init__(
        self, group: NameTemplate, stream: NameTemplate, *, raw: bool, max_event_size: int
    ) -> None:
        self.group = group
        self.stream = stream
        self.raw = raw
        self.max_event_size = max_event_size
        self._keys = (*group.keys, *stream.keys)

    def events(
        self, request: ExportLogsServiceRequest, plan: Plan, now_ns: int | None = None
    ) -> dict[Destination, list[Event]]:
        """The events of every record, by destination; what cannot be sent is refused in
        ``plan`` and what had to change is counted in ``plan.adjusted``."""
        now = time.time_ns() if now_ns is None else now_ns
        out: dict[Destination, list[Event]] = defaultdict(list)
        position = -1
        for rl in request.resource_logs:
            attributes = attribute_texts(rl.resource.attributes, self._keys)
            where = (self.group.render(attributes), self.stream.render(attributes))
            resource = {} if self.raw else _mapping(rl.resource.attributes)
            events = out[where]
            for sl in rl.scope_logs:
                for record in sl.log_records:
                    position += 1
                    if self.raw:
                        message = to_text(record.body)
                        if not message:
                            plan.refuse(1, EMPTY)
                            continue
                    else:
                        message = json_message(record, resource, sl.scope)
                    stamp = timestamp_ms(record, now)
                    events.append(event(stamp, message, self.max_event_size, plan, position))
        return dict(out)
