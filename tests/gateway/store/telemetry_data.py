"""Real OTLP requests for the telemetry store's tests, and what the store should make of them.

Log record ``i`` is fully determined by ``i`` (:func:`log_fact`), so a test can compute the
expected answer of any query by filtering the facts in Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from gateway.otlp.batch import Batch, Signal

BASE_NS = 1_700_000_000 * 1_000_000_000
MS = 1_000_000
SERVICES = ("checkout", "payments", "inventory", "frontend")
SEVERITIES = ((1, "TRACE"), (5, "DEBUG"), (9, "INFO"), (13, "WARN"), (17, "ERROR"), (21, "FATAL"))
PHRASES = ("payment declined", "payment accepted", "cart updated", "retrying connection",
           "retried upstream", "timeout waiting")  # fmt: skip
PLACES = ("on checkout-db", "for user", "via gateway", "in region eu-west", "with code 42")
ROUTES = ("cart", "orders", "kiwiroute", "users")  # "kiwiroute": only in an attribute
SECRET = "zebrasecret"  # only in an attribute that is not searchable
SEARCHABLE = ("http.route",)
_TOKEN = re.compile(r"[a-z0-9]+")


def attr(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


@dataclass(frozen=True, slots=True)
class LogFact:
    """What log record ``i`` holds."""

    i: int
    service: str
    severity: int
    time_ns: int
    body: str
    route: str
    secret: bool
    trace_id: bytes | None
    span_id: bytes | None

    @property
    def tokens(self) -> list[str]:
        """The words the full-text index sees (body, then the searchable attribute)."""
        return _TOKEN.findall(self.body.lower()) + _TOKEN.findall(self.route.lower())


def log_fact(i: int, n: int) -> LogFact:
    """Record ``i`` of ``n``: times are a permutation of the records (pairs share a time),
    so time order and insertion order differ."""
    h = (i * 2654435761) % 2**32
    traced = i % 10 < 3
    return LogFact(
        i=i,
        service=SERVICES[i % 4],
        severity=SEVERITIES[(i // 4) % 6][0],
        time_ns=BASE_NS + ((i * 7919) % n) // 2 * MS,
        body=f"{PHRASES[h % 6]} {PLACES[(h >> 8) % 5]} order-{i}",
        route=f"/api/{ROUTES[(h >> 16) % 4]}",
        secret=(h >> 20) % 3 == 0,
        trace_id=(i // 10 + 1).to_bytes(16, "big") if traced else None,
        span_id=(i + 1).to_bytes(8, "big") if traced else None,
    )


def log_record(fact: LogFact) -> LogRecord:
    record = LogRecord(
        time_unix_nano=fact.time_ns,
        observed_time_unix_nano=fact.time_ns + MS,
        severity_number=fact.severity,  # type: ignore[arg-type]
        severity_text=dict(SEVERITIES)[fact.severity],
        body=AnyValue(string_value=fact.body),
        attributes=[attr("http.route", fact.route), attr("order.id", str(fact.i))],
    )
    if fact.secret:
        record.attributes.append(attr("user.note", SECRET))
    if fact.trace_id is not None and fact.span_id is not None:
        record.trace_id = fact.trace_id
        record.span_id = fact.span_id
    return record


def logs_batch(facts: Iterable[LogFact]) -> Batch:
    """One request: a resource per service, records in the order given."""
    request = ExportLogsServiceRequest()
    groups = {}
    for fact in facts:
        if fact.service not in groups:
            group = request.resource_logs.add()
            group.resource.attributes.extend(
                [attr("service.name", fact.service), attr("host.name", "node-1")]
            )
            scope_logs = group.scope_logs.add()
            scope_logs.scope.name = "app.log"
            groups[fact.service] = scope_logs
        groups[fact.service].log_records.append(log_record(fact))
    return Batch.from_request(Signal.LOGS, request)


def expected(facts: Sequence[LogFact], keep: object) -> list[int]:
    """The ``i`` of the facts ``keep`` accepts, newest first (ties: the later record first)."""
    chosen = [f for f in facts if keep(f)]  # type: ignore[operator]
    chosen.sort(key=lambda f: (f.time_ns, f.i), reverse=True)
    return [f.i for f in chosen]


def order_number(body: str) -> int:
    """``i`` back from a stored body."""
    return int(body.rsplit("order-", 1)[1])


@dataclass(frozen=True, slots=True)
class SpanSpec:
    """One span of a test trace: ids are small numbers, times milliseconds after BASE_NS."""

    span: int
    parent: int | None
    service: str
    name: str
    start_ms: int
    end_ms: int
    error: bool = False


def span_message(trace: int, spec: SpanSpec) -> Span:
    span = Span(
        trace_id=trace.to_bytes(16, "big"),
        span_id=spec.span.to_bytes(8, "big"),
        parent_span_id=spec.parent.to_bytes(8, "big") if spec.parent is not None else b"",
        name=spec.name,
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=BASE_NS + spec.start_ms * MS,
        end_time_unix_nano=BASE_NS + spec.end_ms * MS,
        attributes=[attr("http.route", f"/{spec.name}")],
    )
    if spec.error:
        span.status.code = Status.STATUS_CODE_ERROR
        span.status.message = "boom"
    return span


def spans_batch(trace: int, specs: Iterable[SpanSpec]) -> Batch:
    """One request with the spans of one trace, a resource per service."""
    request = ExportTraceServiceRequest()
    groups = {}
    for spec in specs:
        if spec.service not in groups:
            group = request.resource_spans.add()
            group.resource.attributes.append(attr("service.name", spec.service))
            scope_spans = group.scope_spans.add()
            scope_spans.scope.name = "tests"
            groups[spec.service] = scope_spans
        groups[spec.service].spans.append(span_message(trace, spec))
    return Batch.from_request(Signal.TRACES, request)


def trace_hex(trace: int) -> str:
    return trace.to_bytes(16, "big").hex()
