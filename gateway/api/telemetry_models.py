"""The response bodies of the logs and traces API (documented in ``/openapi.json``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from gateway.store.telemetry_records import StoredLog, StoredSpan, TraceSummary


class LogView(BaseModel):
    """One stored log record."""

    id: int = Field(description="Store id (insertion order)")
    time: datetime = Field(description="Record time, else observed time, else receive time")
    time_unix_nano: int
    observed_time_unix_nano: int
    service: str
    severity_number: int = Field(description="0 when unknown; from the text when not sent")
    severity_text: str
    body: str = Field(description="The body; a body that is not a string, as JSON")
    trace_id: str | None
    span_id: str | None
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope_name: str
    event_name: str
    links: dict[str, str] = Field(description='{"trace": "/traces/<id>"} with a trace id')


class LogList(BaseModel):
    """A page of log records, newest first."""

    logs: list[LogView]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: last")


class SpanEventView(BaseModel):
    """An event of a span."""

    name: str
    time: datetime
    time_unix_nano: int
    attributes: dict[str, Any]


class SpanLinkView(BaseModel):
    """A link from a span to another one."""

    trace_id: str
    span_id: str
    attributes: dict[str, Any]


class SpanView(BaseModel):
    """One span of a trace, with its depth in the trace's tree."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    service: str
    name: str
    kind: str
    start: datetime
    start_time_unix_nano: int
    end_time_unix_nano: int
    duration_ms: float
    status_code: str = Field(description="unset, ok or error")
    status_message: str
    attributes: dict[str, Any]
    events: list[SpanEventView]
    links: list[SpanLinkView]
    resource: dict[str, Any]
    scope_name: str
    depth: int = Field(description="0 for a root, or a span whose parent is not stored")
    missing_parent: bool


class TraceDetail(BaseModel):
    """One trace: its spans, each before its children (siblings by start time)."""

    trace_id: str
    start: datetime
    duration_ms: float
    span_count: int
    services: list[str]
    logs: int = Field(description="Stored log records of this trace")
    links: dict[str, str] = Field(description='{"logs": "/logs?trace_id=<id>"}')
    error_groups: list[str] = Field(
        default_factory=list, description="Ids of the error groups seen in this trace (/errors)"
    )
    spans: list[SpanView]


class TraceSummaryView(BaseModel):
    """One trace found by a trace search."""

    trace_id: str
    root_service: str
    root_name: str
    has_root: bool = Field(description="False: the root is not stored; root_* is the earliest")
    start: datetime
    start_time_unix_nano: int
    duration_ms: float
    span_count: int
    error_count: int
    services: list[str]
    links: dict[str, str] = Field(description='{"trace": "/traces/<id>"}')


class TraceList(BaseModel):
    """Traces, newest first."""

    traces: list[TraceSummaryView]


def _time(unix_nano: int) -> datetime:
    return datetime.fromtimestamp(unix_nano / 1e9, UTC)


def log_view(log: StoredLog) -> LogView:
    """The API shape of a stored log record."""
    return LogView(
        id=log.id, time=_time(log.time_unix_nano), time_unix_nano=log.time_unix_nano,
        observed_time_unix_nano=log.observed_time_unix_nano, service=log.service,
        severity_number=log.severity_number, severity_text=log.severity_text, body=log.body,
        trace_id=log.trace_id, span_id=log.span_id, attributes=log.attributes,
        resource=log.resource, scope_name=log.scope_name, event_name=log.event_name,
        links={"trace": f"/traces/{log.trace_id}"} if log.trace_id else {},
    )  # fmt: skip


def span_view(span: StoredSpan) -> SpanView:
    """The API shape of a stored span."""
    return SpanView(
        trace_id=span.trace_id, span_id=span.span_id, parent_span_id=span.parent_span_id,
        service=span.service, name=span.name, kind=span.kind,
        start=_time(span.start_time_unix_nano), start_time_unix_nano=span.start_time_unix_nano,
        end_time_unix_nano=span.end_time_unix_nano, duration_ms=span.duration_ns / 1e6,
        status_code=span.status_code, status_message=span.status_message,
        attributes=span.attributes,
        events=[
            SpanEventView(name=e.name, time=_time(e.time_unix_nano),
                          time_unix_nano=e.time_unix_nano, attributes=e.attributes)
            for e in span.events
        ],
        links=[
            SpanLinkView(trace_id=k.trace_id, span_id=k.span_id, attributes=k.attributes)
            for k in span.links
        ],
        resource=span.resource, scope_name=span.scope_name, depth=span.depth,
        missing_parent=span.missing_parent,
    )  # fmt: skip


def trace_detail(
    trace_id: str, spans: list[StoredSpan], logs: int, error_groups: list[str] | None = None
) -> TraceDetail:
    """The API shape of one trace (``spans`` in tree order, not empty)."""
    start = min(s.start_time_unix_nano for s in spans)
    end = max(s.end_time_unix_nano for s in spans)
    return TraceDetail(
        trace_id=trace_id, start=_time(start), duration_ms=(end - start) / 1e6,
        span_count=len(spans), services=sorted({s.service for s in spans}), logs=logs,
        links={"logs": f"/logs?trace_id={trace_id}"}, spans=[span_view(s) for s in spans],
        error_groups=error_groups or [],
    )  # fmt: skip


def trace_summary_view(summary: TraceSummary) -> TraceSummaryView:
    """The API shape of a trace search result."""
    return TraceSummaryView(
        trace_id=summary.trace_id, root_service=summary.root_service,
        root_name=summary.root_name, has_root=summary.has_root,
        start=_time(summary.start_time_unix_nano),
        start_time_unix_nano=summary.start_time_unix_nano,
        duration_ms=summary.duration_ns / 1e6, span_count=summary.span_count,
        error_count=summary.error_count, services=summary.services,
        links={"trace": f"/traces/{summary.trace_id}"},
    )  # fmt: skip
