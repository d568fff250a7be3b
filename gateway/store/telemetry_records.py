"""What the telemetry store's reader takes and returns: queries, log records, spans, traces.

Times are unix nanoseconds (``*_unix_nano``) in results and unix seconds in queries; ids are
lowercase hex. Attribute values are JSON-able (bytes as base64).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class LogQuery:
    """A log search, newest first. ``q``: full-text query (:mod:`.telemetry_search` syntax);
    ``severity``: the minimum, a name (``warn``) or number (1-24); ``since`` <= time <
    ``until``; ``cursor``: the ``next_cursor`` of the previous page."""

    q: str | None = None
    service: str | None = None
    severity: str | int | None = None
    trace_id: str | None = None
    span_id: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    #: Records stored after this id, oldest stored first (a live tail); not with ``cursor``.
    after_id: int | None = None


@dataclass(slots=True)
class StoredLog:
    """One stored log record. ``time_unix_nano`` is the time it is sorted and kept by: its
    own time, else its observed time, else when the gateway received it."""

    id: int
    time_unix_nano: int
    observed_time_unix_nano: int
    service: str
    severity_number: int
    severity_text: str
    body: str
    trace_id: str | None
    span_id: str | None
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope_name: str
    event_name: str = ""
    flags: int = 0


@dataclass(slots=True)
class LogPage:
    """One page of a log search; ``next_cursor`` is None on the last page."""

    records: list[StoredLog]
    next_cursor: str | None


@dataclass(slots=True)
class SpanEvent:
    """An event of a span."""

    name: str
    time_unix_nano: int
    attributes: dict[str, Any]


@dataclass(slots=True)
class SpanLink:
    """A link from a span to another span."""

    trace_id: str
    span_id: str
    attributes: dict[str, Any]


@dataclass(slots=True)
class StoredSpan:
    """One stored span, with its place in the trace's tree: ``depth`` 0 for a root or for a
    span whose parent is not stored (``missing_parent``)."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    service: str
    name: str
    kind: str  # internal, server, client, producer, consumer, unspecified
    start_time_unix_nano: int
    end_time_unix_nano: int
    duration_ns: int
    status_code: str  # unset, ok, error
    status_message: str
    attributes: dict[str, Any]
    events: list[SpanEvent]
    links: list[SpanLink]
    resource: dict[str, Any]
    scope_name: str
    depth: int = 0
    missing_parent: bool = False


@dataclass(frozen=True, slots=True)
class TraceQuery:
    """A trace search, newest first. A trace matches when one of its spans has the
    ``service``, the ``name`` and a duration of at least ``min_duration`` seconds, and
    starts in [``since``, ``until``); then the whole trace must last ``min_duration`` too.
    ``status``: ``error`` (a span failed) or ``ok`` (none did)."""

    service: str | None = None
    name: str | None = None
    min_duration: float | None = None
    status: Literal["error", "ok"] | None = None
    since: float | None = None
    until: float | None = None
    limit: int = DEFAULT_LIMIT


@dataclass(slots=True)
class TraceSummary:
    """One trace of a trace search. The root is the span without a parent (the earliest one
    if several), else the earliest span (``has_root`` False)."""

    trace_id: str
    root_service: str
    root_name: str
    has_root: bool
    start_time_unix_nano: int
    duration_ns: int
    span_count: int
    error_count: int
    services: list[str] = field(default_factory=list)
