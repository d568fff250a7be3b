"""Per-item validation of decoded OTLP requests.

Invalid items are removed from the request in place and counted, so that the receiver can
answer with OTLP ``partial_success`` (HTTP 200 / gRPC OK) and the valid items go on. The
checks are the ones a backend would otherwise reject the whole batch for: trace and span ids
of the wrong length or all zero.

Resource and scope groups left without items are removed too (they carry no data), so a request
of a million empty groups costs nothing after it. Removal is linear however many items go: a
few are deleted in place, more are removed by rebuilding the list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from gateway.otlp.batch import ExportRequest, Signal

_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
_DELETE_IN_PLACE = 32  # more removals than this rebuild the list (each del shifts the rest)


class _Repeated(Protocol):
    """A repeated message field of a decoded request."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> Any: ...
    def __delitem__(self, index: int | slice) -> None: ...
    def extend(self, values: Sequence[Any]) -> None: ...


def remove_indices(repeated: _Repeated, indices: Sequence[int]) -> None:
    """Delete the elements at ``indices`` (ascending) from a repeated field in linear time."""
    if len(indices) <= _DELETE_IN_PLACE:
        for i in reversed(indices):
            del repeated[i]
        return
    gone = set(indices)
    kept = [repeated[i] for i in range(len(repeated)) if i not in gone]
    del repeated[:]
    repeated.extend(kept)


def _prune(resources: _Repeated, scopes: str, items: str) -> bool:
    """Remove the scope groups without ``items`` and then the resource groups without
    ``scopes`` (field names); True if any went."""
    pruned = False
    for i in range(len(resources)):
        groups = getattr(resources[i], scopes)
        empty = [j for j in range(len(groups)) if not getattr(groups[j], items)]
        if empty:
            remove_indices(groups, empty)
            pruned = True
    empty = [i for i in range(len(resources)) if not getattr(resources[i], scopes)]
    if empty:
        remove_indices(resources, empty)
    return pruned or bool(empty)


@dataclass(slots=True)
class Rejection:
    """How many items were removed and why (the first few reasons, for the error message)."""

    count: int = 0
    reasons: list[str] | None = None
    warnings: list[str] | None = None
    pruned: bool = False  # empty groups were removed

    def merge(self, other: Rejection) -> None:
        """Add ``other`` (of another piece of the same request) to this one."""
        self.count += other.count
        for reason in other.reasons or ():
            self._note(reason)
        for warning in other.warnings or ():
            self.warn(warning)
        self.pruned |= other.pruned

    def add(self, reason: str) -> None:
        """Count one rejected item."""
        self.count += 1
        self._note(reason)

    def _note(self, reason: str) -> None:
        if self.reasons is None:
            self.reasons = []
        if len(self.reasons) < 5 and reason not in self.reasons:
            self.reasons.append(reason)

    def warn(self, warning: str) -> None:
        """Something was fixed up without rejecting an item (sent as a partial-success
        message with zero rejected, which OTLP defines as a warning)."""
        if self.warnings is None:
            self.warnings = []
        if len(self.warnings) < 5 and warning not in self.warnings:
            self.warnings.append(warning)

    @property
    def changed(self) -> bool:
        """True when the request was modified (its received bytes no longer match)."""
        return bool(self.count or self.warnings or self.pruned)

    @property
    def message(self) -> str:
        parts = []
        if self.count:
            parts.append(f"{self.count} invalid item(s) rejected: " + "; ".join(self.reasons or []))
        if self.warnings:
            parts.append("; ".join(self.warnings))
        return "; ".join(parts)


def _span_problem(span: Span) -> str | None:
    trace_id, span_id = span.trace_id, span.span_id
    if len(trace_id) != 16 or trace_id == _ZERO_TRACE:
        return "span trace_id must be 16 bytes (32 hex characters) and not all zero"
    if len(span_id) != 8 or span_id == _ZERO_SPAN:
        return "span span_id must be 8 bytes (16 hex characters) and not all zero"
    if span.parent_span_id and len(span.parent_span_id) != 8:
        return "span parent_span_id must be empty or 8 bytes"
    for link in span.links:
        if len(link.trace_id) != 16 or len(link.span_id) != 8:
            return "span link ids must be 16 and 8 bytes"
    return None


def _log_problem(record: LogRecord) -> str | None:
    if record.trace_id and len(record.trace_id) != 16:
        return "log record trace_id must be empty or 16 bytes (32 hex characters)"
    if record.span_id and len(record.span_id) != 8:
        return "log record span_id must be empty or 8 bytes (16 hex characters)"
    return None


def _validate_traces(request: ExportTraceServiceRequest, rejection: Rejection) -> None:
    zero_trace, zero_span = _ZERO_TRACE, _ZERO_SPAN
    empty = False  # a group without items seen: prune afterwards (rare; costs nothing else)
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            spans = scope_spans.spans
            # The checks of _span_problem inlined: this runs for every span received, and a
            # function call plus repeated field reads per span cost more than the decode.
            # The walrus names keep each id to one read; only bad spans get a reason.
            bad = [
                i
                for i, span in enumerate(spans)
                if len(trace_id := span.trace_id) != 16
                or trace_id == zero_trace
                or len(span_id := span.span_id) != 8
                or span_id == zero_span
                or len(span.parent_span_id) not in (0, 8)
                or (span.links and _span_problem(span) is not None)
            ]
            for i in bad:
                rejection.add(_span_problem(spans[i]) or "")
            if bad:
                remove_indices(spans, bad)
            empty = empty or not spans
        empty = empty or not resource_spans.scope_spans
    if empty:
        rejection.pruned |= _prune(request.resource_spans, "scope_spans", "spans")


def _validate_logs(request: ExportLogsServiceRequest, rejection: Rejection) -> None:
    empty = False
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            records = scope_logs.log_records
            # _log_problem inlined, as for spans (an empty id is allowed).
            bad = [
                i
                for i, record in enumerate(records)
                if len(record.trace_id) not in (0, 16) or len(record.span_id) not in (0, 8)
            ]
            for i in bad:
                rejection.add(_log_problem(records[i]) or "")
            if bad:
                remove_indices(records, bad)
            empty = empty or not records
        empty = empty or not resource_logs.scope_logs
    if empty:
        rejection.pruned |= _prune(request.resource_logs, "scope_logs", "log_records")


def _validate_metrics(request: ExportMetricsServiceRequest, rejection: Rejection) -> None:
    empty = False
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if not metric.name:
                    kind = metric.WhichOneof("data")
                    points = len(getattr(metric, kind).data_points) if kind else 0
                    for _ in range(points):
                        rejection.add("metric name must not be empty")
            bad = [i for i, m in enumerate(scope_metrics.metrics) if not m.name]
            if bad:
                remove_indices(scope_metrics.metrics, bad)
            for metric in scope_metrics.metrics:
                _drop_bad_exemplars(metric, rejection)
            empty = empty or not scope_metrics.metrics
        empty = empty or not resource_metrics.scope_metrics
    if empty:
        rejection.pruned |= _prune(request.resource_metrics, "scope_metrics", "metrics")


def _drop_bad_exemplars(metric: Metric, rejection: Rejection) -> None:
    kind = metric.WhichOneof("data")
    if kind not in ("gauge", "sum", "histogram", "exponential_histogram"):
        return
    for point in getattr(metric, kind).data_points:
        exemplars = point.exemplars
        bad = [
            i
            for i, e in enumerate(exemplars)
            if (e.trace_id and len(e.trace_id) != 16) or (e.span_id and len(e.span_id) != 8)
        ]
        if bad:
            remove_indices(exemplars, bad)
            rejection.warn("exemplars with invalid trace_id/span_id were removed")


def validate(signal: Signal, request: ExportRequest) -> Rejection:
    """Remove invalid items from ``request`` in place; return what was removed."""
    rejection = Rejection()
    if signal is Signal.TRACES:
        assert isinstance(request, ExportTraceServiceRequest)
        _validate_traces(request, rejection)
    elif signal is Signal.LOGS:
        assert isinstance(request, ExportLogsServiceRequest)
        _validate_logs(request, rejection)
    else:
        assert isinstance(request, ExportMetricsServiceRequest)
        _validate_metrics(request, rejection)
    return rejection
