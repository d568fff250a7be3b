"""Builders and a scripted CloudWatch Logs client for the cloudwatch exporter's tests.

:class:`ScriptedClient` answers like CloudWatch Logs (the behaviours of ``tests/support/
moto_server.py``'s docstring: unknown group or stream, existing group or stream, events out of
order), keeps what it stored, and raises the real botocore ``ClientError`` of a code when a test
queues one: throttling, 5xx, refused credentials, ``rejectedLogEventsInfo``...
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from typing import Any

from botocore.exceptions import ClientError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from prometheus_client import CollectorRegistry

from exporters.cloudwatch.config import CloudWatchExporterConfig
from exporters.cloudwatch.exporter import CloudWatchExporter, create_cloudwatch
from gateway.components import standalone_host
from gateway.otlp.batch import Batch, Signal
from gateway.selfmetrics import GatewayMetrics

NOW_NS = time.time_ns()
NOW_MS = NOW_NS // 1_000_000
HOUR_MS = 3_600_000


def kv(key: str, value: Any) -> KeyValue:
    field = {bool: "bool_value", int: "int_value", float: "double_value", bytes: "bytes_value"}
    return KeyValue(key=key, value=AnyValue(**{field.get(type(value), "string_value"): value}))


def record(body: str, ms: int = NOW_MS, **attributes: Any) -> LogRecord:
    return LogRecord(
        time_unix_nano=ms * 1_000_000,
        severity_number=9,  # type: ignore[arg-type]
        severity_text="INFO",
        body=AnyValue(string_value=body),
        attributes=[kv(k, v) for k, v in attributes.items()],
    )


def logs(records: list[LogRecord], **resource: Any) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    add_resource_logs(request, records, **resource)
    return request


def add_resource_logs(
    request: ExportLogsServiceRequest, records: list[LogRecord], **resource: Any
) -> None:
    rl = request.resource_logs.add()
    rl.resource.attributes.extend(kv(k, v) for k, v in {"service.name": "checkout",
                                                         **resource}.items())  # fmt: skip
    sl = rl.scope_logs.add()
    sl.scope.name, sl.scope.version = "app.orders", "2.1"
    sl.log_records.extend(records)


def metrics(metric_list: list[Metric], **resource: Any) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.extend(kv(k, v) for k, v in {"service.name": "checkout",
                                                         **resource}.items())  # fmt: skip
    sm = rm.scope_metrics.add()
    sm.scope.name = "app.orders"
    sm.metrics.extend(metric_list)
    return request


def batch(request: ExportLogsServiceRequest | ExportMetricsServiceRequest) -> Batch:
    signal = Signal.LOGS if isinstance(request, ExportLogsServiceRequest) else Signal.METRICS
    return Batch.from_request(signal, request)


def client_error(code: str, message: str = "", status: int = 400, op: str = "PutLogEvents") -> Any:
    """The exception botocore raises for an AWS error answer."""
    response = {"Error": {"Code": code, "Message": message or code},
                "ResponseMetadata": {"HTTPStatusCode": status}}  # fmt: skip
    return ClientError(response, op)


class ScriptedClient:
    """A ``logs`` client: stores events per group and stream like CloudWatch Logs; a queued
    answer (``script[op]``: an exception to raise or a response to return) comes first."""

    def __init__(self) -> None:
        self.groups: dict[str, int | None] = {}  # name -> retention days
        self.stored: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.script: dict[str, deque[Any]] = defaultdict(deque)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        # Events whose message contains this make their call an InvalidParameterException.
        self.bad_marker: str | None = None

    def fail(self, op: str, *answers: Any) -> None:
        self.script[op].extend(answers)

    def ops(self, name: str) -> list[dict[str, Any]]:
        return [args for op, args in self.calls if op == name]

    def _scripted(self, op: str, args: dict[str, Any]) -> Any:
        self.calls.append((op, args))
        if self.script[op]:
            answer = self.script[op].popleft()
            if isinstance(answer, BaseException):
                raise answer
            return answer
        return None

    async def put_log_events(self, **args: Any) -> dict[str, Any]:
        answer = self._scripted("put_log_events", args)
        group, stream, events = args["logGroupName"], args["logStreamName"], args["logEvents"]
        if group not in self.groups:
            raise client_error(
                "ResourceNotFoundException", "The specified log group does not exist."
            )
        if (group, stream) not in self.stored:
            raise client_error(
                "ResourceNotFoundException", "The specified log stream does not exist."
            )
        stamps = [e["timestamp"] for e in events]
        if stamps != sorted(stamps):
            raise client_error("InvalidParameterException", "Log events in a single PutLogEvents "
                               "request must be in chronological order.")  # fmt: skip
        if self.bad_marker and any(self.bad_marker in e["message"] for e in events):
            raise client_error("InvalidParameterException", "Log event too large or malformed")
        info = (answer or {}).get("rejectedLogEventsInfo", {})
        old = max(info.get("tooOldLogEventEndIndex", 0), info.get("expiredLogEventEndIndex", 0))
        new = info.get("tooNewLogEventStartIndex", len(events))  # AWS: exclusive / inclusive
        self.stored[(group, stream)] += events[old:new]
        return {"nextSequenceToken": "0", **(answer or {})}

    async def create_log_group(self, **args: Any) -> dict[str, Any]:
        if (answer := self._scripted("create_log_group", args)) is not None:
            return dict(answer)
        if args["logGroupName"] in self.groups:
            raise client_error("ResourceAlreadyExistsException", op="CreateLogGroup")
        self.groups[args["logGroupName"]] = None
        return {}

    async def create_log_stream(self, **args: Any) -> dict[str, Any]:
        if (answer := self._scripted("create_log_stream", args)) is not None:
            return dict(answer)
        key = (args["logGroupName"], args["logStreamName"])
        if key[0] not in self.groups:
            raise client_error("ResourceNotFoundException", op="CreateLogStream")
        if key in self.stored:
            raise client_error("ResourceAlreadyExistsException", op="CreateLogStream")
        self.stored[key] = []
        return {}

    async def put_retention_policy(self, **args: Any) -> dict[str, Any]:
        if (answer := self._scripted("put_retention_policy", args)) is not None:
            return dict(answer)
        self.groups[args["logGroupName"]] = args["retentionInDays"]
        return {}


def make_exporter(
    client: Any = None, gateway_metrics: GatewayMetrics | None = None, **settings: Any
) -> CloudWatchExporter:
    """A cloudwatch exporter of ``settings`` (region us-east-1 unless given), using ``client``
    when given (not started)."""
    config = CloudWatchExporterConfig.model_validate({"region": "us-east-1", **settings})
    host = standalone_host(gateway_metrics or GatewayMetrics(CollectorRegistry()))
    exporter = create_cloudwatch("cloudwatch", config, host)
    exporter.client = client
    return exporter


def stored_messages(client: ScriptedClient) -> list[str]:
    return [e["message"] for events in client.stored.values() for e in events]
