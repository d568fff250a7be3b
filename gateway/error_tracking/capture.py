"""Finding exceptions in accepted telemetry: span events named ``exception`` and log records
carrying ``exception.type`` / ``exception.message`` (OpenTelemetry semantic conventions).

Most batches hold no exception at all, so a batch is first searched for the bytes
``exception`` in its protobuf encoding (attribute keys and event names are stored verbatim):
one C-speed substring search per request, no Python loop over its items. Only batches that
contain the word are walked. An occurrence keeps references to the protobuf objects it came
from; their attributes are read only when the occurrence becomes a sample.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from gateway.otlp.batch import Batch, Signal
from gateway.otlp.builders import UNKNOWN_SERVICE
from gateway.otlp.values import to_text

EXCEPTION_EVENT = "exception"
_MARKER = b"exception"
_TYPE, _MESSAGE, _STACK = "exception.type", "exception.message", "exception.stacktrace"
_EXCEPTION_KEYS = frozenset((_TYPE, _MESSAGE, _STACK))

#: Attributes a sample keeps (from the span or log record, then the event), when present.
SAMPLE_ATTRIBUTES = (
    "http.route",
    "http.request.method",
    "http.method",
    "http.response.status_code",
    "http.status_code",
    "url.path",
    "http.target",
    "rpc.method",
    "user.id",
    "enduser.id",
    "http.request.id",
    "exception.escaped",
    "code.function",
    "code.namespace",
    "logger.name",
)
_SAMPLE_KEYS = frozenset(SAMPLE_ATTRIBUTES)


@dataclass(frozen=True, slots=True)
class Origin:
    """Who reported an exception: the resource's service, version, environment, language."""

    service: str
    version: str | None
    environment: str | None
    language: str | None


@dataclass(slots=True)
class Occurrence:
    """One reported exception."""

    type: str
    message: str
    stacktrace: str
    time: float  # unix seconds
    trace_id: bytes  # b"" without trace context
    span_id: bytes
    origin: Origin
    source: str  # "span" or "log"
    context: Sequence[KeyValue]  # the span's or log record's attributes (read when sampled)
    own: Sequence[KeyValue]  # the event's attributes (spans) or the record's (logs)

    def attributes(self) -> dict[str, str]:
        """The request context a sample keeps (route, method, status, user id, ...)."""
        found: dict[str, str] = {}
        for kvs in (self.context, self.own):
            for kv in kvs:
                if kv.key in _SAMPLE_KEYS:
                    found[kv.key] = to_text(kv.value)
        return found


def might_hold_exceptions(batch: Batch) -> bool:
    """False when no exception can be in ``batch`` (traces and logs that lack the marker)."""
    if batch.signal is Signal.METRICS:
        return False
    return _MARKER in batch.serialized()


def occurrences(batch: Batch, now: float | None = None) -> list[Occurrence]:
    """Every exception in ``batch`` (span events and log records), in order."""
    if not might_hold_exceptions(batch):
        return []
    received = time.time() if now is None else now
    if batch.signal is Signal.TRACES:
        return list(_from_spans(batch, received))
    return list(_from_logs(batch, received))


def _from_spans(batch: Batch, received: float) -> Iterable[Occurrence]:
    for rs in batch.request.resource_spans:  # type: ignore[union-attr]
        origin: Origin | None = None
        for ss in rs.scope_spans:
            for span in ss.spans:
                if not span.events:
                    continue
                for event in span.events:
                    if event.name != EXCEPTION_EVENT:
                        continue
                    fields = _exception_fields(event.attributes)
                    if fields is None:
                        continue
                    origin = origin or origin_of(rs.resource)
                    yield Occurrence(
                        *fields,
                        time=_seconds(event.time_unix_nano, received),
                        trace_id=span.trace_id,
                        span_id=span.span_id,
                        origin=origin,
                        source="span",
                        context=span.attributes,
                        own=event.attributes,
                    )


def _from_logs(batch: Batch, received: float) -> Iterable[Occurrence]:
    for rl in batch.request.resource_logs:  # type: ignore[union-attr]
        origin: Origin | None = None
        for sl in rl.scope_logs:
            for record in sl.log_records:
                for kv in record.attributes:  # inline: this loop runs for every record
                    if kv.key in _EXCEPTION_KEYS:
                        break
                else:
                    continue
                fields = _exception_fields(record.attributes)
                if fields is None:
                    continue
                kind, message, stack = fields
                if not message and record.body.WhichOneof("value") == "string_value":
                    message = record.body.string_value
                origin = origin or origin_of(rl.resource)
                when = record.time_unix_nano or record.observed_time_unix_nano
                yield Occurrence(
                    kind,
                    message,
                    stack,
                    time=_seconds(when, received),
                    trace_id=record.trace_id,
                    span_id=record.span_id,
                    origin=origin,
                    source="log",
                    context=(),
                    own=record.attributes,
                )


def _exception_fields(kvs: Iterable[KeyValue]) -> tuple[str, str, str] | None:
    """``(type, message, stacktrace)`` when the attributes describe an exception (a type or a
    message is required by the semantic conventions), else None."""
    found: dict[str, str] = {}
    for kv in kvs:
        if kv.key in _EXCEPTION_KEYS:
            found[kv.key] = to_text(kv.value)
    if not found.get(_TYPE) and not found.get(_MESSAGE):
        return None
    return found.get(_TYPE, ""), found.get(_MESSAGE, ""), found.get(_STACK, "")


def _seconds(unix_nano: int, received: float) -> float:
    """A timestamp in seconds; the receive time when missing or absurd (over a day ahead)."""
    if unix_nano <= 0:
        return received
    seconds = unix_nano / 1e9
    return received if seconds > received + 86400 else seconds


def origin_of(resource: Resource) -> Origin:
    """The service, version, environment and SDK language a resource names."""
    service = version = environment = language = None
    for kv in resource.attributes:
        key = kv.key
        if key == "service.name":
            service = kv.value.string_value
        elif key == "service.version":
            version = kv.value.string_value or None
        elif key in ("deployment.environment.name", "deployment.environment"):
            environment = environment or kv.value.string_value or None
        elif key == "telemetry.sdk.language":
            language = kv.value.string_value or None
    return Origin(service or UNKNOWN_SERVICE, version, environment, language)


def exception_subset(batch: Batch) -> Batch | None:
    """The spans with an ``exception`` event and the log records with ``exception.*``
    attributes of ``batch``, with their resources and scopes: what :func:`occurrences` reads,
    so it finds the same in the subset (a worker sends only this to error tracking in the
    supervisor, gateway.workers); None when there are none."""
    if not might_hold_exceptions(batch):
        return None
    holds: Callable[[Any], bool]
    if batch.signal is Signal.TRACES:
        fields, holds = ("resource_spans", "scope_spans", "spans"), _span_holds_exception
    else:
        fields, holds = ("resource_logs", "scope_logs", "log_records"), _record_holds_exception
    groups_field, scopes_field, items_field = fields
    subset: Any = batch.signal.request_type()
    for group in getattr(batch.request, groups_field):
        kept_group = None
        for scope in getattr(group, scopes_field):
            items = [item for item in getattr(scope, items_field) if holds(item)]
            if not items:
                continue
            if kept_group is None:
                kept_group = getattr(subset, groups_field).add()
                kept_group.resource.CopyFrom(group.resource)
                kept_group.schema_url = group.schema_url
            kept_scope = getattr(kept_group, scopes_field).add()
            kept_scope.scope.CopyFrom(scope.scope)
            kept_scope.schema_url = scope.schema_url
            getattr(kept_scope, items_field).extend(items)
    found = Batch.from_request(batch.signal, subset)
    return found if found.items else None


def _span_holds_exception(span: Span) -> bool:
    return bool(span.events) and any(e.name == EXCEPTION_EVENT for e in span.events)


def _record_holds_exception(record: LogRecord) -> bool:
    return any(kv.key in _EXCEPTION_KEYS for kv in record.attributes)
