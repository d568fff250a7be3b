"""Spans read back from the telemetry store: decoding, a trace's tree order, trace summaries.

A span stored twice (delivery is at-least-once) is shown once: the first stored copy.
Parent links that form a cycle, or point to a span that is not stored, do not lose spans:
such spans are listed at depth 0 (``missing_parent`` when their parent is absent).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from gateway.store.telemetry_records import SpanEvent, SpanLink, StoredSpan, TraceSummary
from gateway.store.telemetry_rows import attributes_dict

_KINDS = {
    Span.SPAN_KIND_UNSPECIFIED: "unspecified", Span.SPAN_KIND_INTERNAL: "internal",
    Span.SPAN_KIND_SERVER: "server", Span.SPAN_KIND_CLIENT: "client",
    Span.SPAN_KIND_PRODUCER: "producer", Span.SPAN_KIND_CONSUMER: "consumer",
}  # fmt: skip
_STATUSES = {Status.STATUS_CODE_UNSET: "unset", Status.STATUS_CODE_OK: "ok",
             Status.STATUS_CODE_ERROR: "error"}  # fmt: skip
ERROR = Status.STATUS_CODE_ERROR


def decode_span(
    blob: bytes, service: str, start: int, duration: int, resource: dict[str, Any], scope: str
) -> StoredSpan:
    """A stored span from its protobuf encoding and the columns stored next to it (the
    start time as stored, i.e. after the writer corrected it)."""
    span = Span.FromString(blob)
    return StoredSpan(
        trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
        parent_span_id=_parent(span.parent_span_id),
        service=service, name=span.name, kind=_KINDS.get(span.kind, "unspecified"),
        start_time_unix_nano=start, end_time_unix_nano=start + duration, duration_ns=duration,
        status_code=_STATUSES.get(span.status.code, "unset"),
        status_message=span.status.message, attributes=attributes_dict(span.attributes),
        events=[
            SpanEvent(e.name, e.time_unix_nano, attributes_dict(e.attributes))
            for e in span.events
        ],
        links=[
            SpanLink(link.trace_id.hex(), link.span_id.hex(), attributes_dict(link.attributes))
            for link in span.links
        ],
        resource=resource, scope_name=scope,
    )  # fmt: skip


def tree_order(spans: Sequence[StoredSpan]) -> list[StoredSpan]:
    """``spans`` (sorted by start) depth first: a span, then its children by start time.
    Roots and spans whose parent is missing come first in start order, at depth 0; spans
    caught in a parent cycle follow, at depth 0 too."""
    unique: dict[str, StoredSpan] = {}
    for span in spans:
        unique.setdefault(span.span_id, span)
    children: dict[str, list[StoredSpan]] = {}
    tops: list[StoredSpan] = []
    for span in unique.values():
        parent = span.parent_span_id
        if parent is None or parent not in unique or parent == span.span_id:
            span.missing_parent = parent is not None and parent != span.span_id
            tops.append(span)
        else:
            children.setdefault(parent, []).append(span)
    ordered: list[StoredSpan] = []
    placed: set[str] = set()
    _walk(tops, children, ordered, placed)
    if len(placed) < len(unique):  # a cycle: nothing above it is a root
        rest = [s for s in unique.values() if s.span_id not in placed]
        for span in rest:
            if span.span_id not in placed:
                _walk([span], children, ordered, placed)
    return ordered


def _walk(
    tops: list[StoredSpan],
    children: dict[str, list[StoredSpan]],
    ordered: list[StoredSpan],
    placed: set[str],
) -> None:
    """Depth first from ``tops`` (at depth 0), without recursion (traces can be deep)."""
    stack = [(span, 0) for span in reversed(tops)]
    while stack:
        span, depth = stack.pop()
        if span.span_id in placed:
            continue
        placed.add(span.span_id)
        span.depth = depth
        ordered.append(span)
        below = children.get(span.span_id, [])
        stack.extend((child, depth + 1) for child in reversed(below))


def summarize(trace_id: bytes, rows: Sequence[tuple[Any, ...]]) -> TraceSummary:
    """A trace's summary from its rows of ``(trace_id, span_id, parent_span_id, service,
    name, start, duration, status)``."""
    unique: dict[bytes, tuple[Any, ...]] = {}
    for row in sorted(rows, key=lambda r: r[5]):
        unique.setdefault(row[1], row)
    spans = list(unique.values())
    roots = [r for r in spans if r[2] is None]
    root = roots[0] if roots else spans[0]
    start = spans[0][5]
    end = max(r[5] + r[6] for r in spans)
    return TraceSummary(
        trace_id=trace_id.hex(), root_service=root[3], root_name=root[4],
        has_root=bool(roots), start_time_unix_nano=start, duration_ns=end - start,
        span_count=len(spans), error_count=sum(1 for r in spans if r[7] == ERROR),
        services=sorted({r[3] for r in spans}),
    )  # fmt: skip


def _parent(parent_span_id: bytes) -> str | None:
    valid = len(parent_span_id) == 8 and any(parent_span_id)
    return parent_span_id.hex() if valid else None
