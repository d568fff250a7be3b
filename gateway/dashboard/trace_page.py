"""The Traces pages: recent traces (``/ui/traces``) and one trace as a waterfall
(``/ui/traces/{trace_id}``) with each span's details, the trace's logs and error groups."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.config.values import parse_duration
from gateway.dashboard.render import page
from gateway.dashboard.sources import DashboardSources
from gateway.dashboard.telemetry_views import (
    STORE_ERRORS,
    STORE_OFF,
    blank,
    link,
    log_row,
    nano_time,
    parse_since,
    show,
    since_choices,
    store_failed,
)
from gateway.store.telemetry_records import LogQuery, SpanEvent, StoredSpan, TraceQuery
from gateway.store.telemetry_search import trace_id_bytes

TRACES_SHOWN = 50
TRACE_LOGS_SHOWN = 200
BAR_WIDTH = 1000  # the bars' viewBox width
MIN_BAR = 2.0  # so that a very short span still shows
MAX_INDENT = 32
EXCEPTION_KEYS = ("exception.type", "exception.message", "exception.stacktrace")
_STATUS_BADGE = {"error": "error", "ok": "ok"}


def _event(event: SpanEvent, start_ns: int) -> dict[str, Any]:
    attributes = dict(event.attributes)
    exception = None
    if event.name == "exception":
        kind, message, stack = (show(attributes.pop(k, "")) for k in EXCEPTION_KEYS)
        exception = {"type": kind, "message": message, "stack": stack}
    return {
        "name": event.name,
        "offset": (event.time_unix_nano - start_ns) / 1e9,
        "exception": exception,
        "attributes": {k: show(v) for k, v in attributes.items()},
    }


def waterfall(spans: list[StoredSpan]) -> list[dict[str, Any]]:
    """Each span (in the tree order given) with its indentation and its bar, placed by its
    start and duration within the whole trace on a 0-1000 scale."""
    start = min(s.start_time_unix_nano for s in spans)
    total = max(max(s.end_time_unix_nano for s in spans) - start, 1)
    rows = []
    for span in spans:
        width = max(span.duration_ns / total * BAR_WIDTH, MIN_BAR)
        offset = (span.start_time_unix_nano - start) / 1e9
        x = min(offset * 1e9 / total * BAR_WIDTH, BAR_WIDTH - width)
        rows.append({
            "span": span,
            "indent": "\u2003" * min(span.depth, MAX_INDENT),
            "x": round(x, 1),
            "width": round(width, 1),
            "offset": offset,
            "duration": span.duration_ns / 1e9,
            "status_class": _STATUS_BADGE.get(span.status_code, "info"),
            "error": span.status_code == "error",
            "attributes": {k: show(v) for k, v in span.attributes.items()},
            "resource": {k: show(v) for k, v in span.resource.items()},
            "events": [_event(e, start) for e in span.events],
        })  # fmt: skip
    return rows


def add_routes(router: APIRouter, sources: DashboardSources) -> None:
    """``GET /ui/traces`` and ``GET /ui/traces/{trace_id}``."""

    @router.get("/ui/traces", response_model=None)
    def traces(
        request: Request,
        service: str | None = None,
        min_duration: str | None = None,
        errors: str | None = None,
        since: str | None = None,
        trace_id: str | None = None,
    ) -> Response:
        if (wanted := blank(trace_id)) is not None:  # the "open a trace" form
            return RedirectResponse(f"/ui/traces/{quote(wanted, safe='')}", status_code=303)
        filters = {"service": blank(service), "min_duration": blank(min_duration),
                   "errors": "1" if blank(errors) else None, "since": blank(since)}  # fmt: skip
        reader = sources.telemetry()
        error, status, found = None, 200, []
        if reader is None:
            error, status = STORE_OFF, 503
        else:
            try:
                minimum = filters["min_duration"]
                query = TraceQuery(
                    service=filters["service"],
                    min_duration=parse_duration(minimum) if minimum else None,
                    status="error" if filters["errors"] else None,
                    since=parse_since(filters["since"]), limit=TRACES_SHOWN,
                )  # fmt: skip
                found = reader.traces(query)
            except ValueError as exc:
                error, status = str(exc), 400
            except STORE_ERRORS as exc:
                error, status = store_failed(exc), 503
        return page(
            request, "traces.html", title="Traces", section="traces", refresh=sources.refresh,
            status_code=status, error=error, filters=filters, traces=found,
            since_choices=since_choices(filters["since"]),
        )  # fmt: skip

    @router.get("/ui/traces/{trace_id}")
    def one_trace(request: Request, trace_id: str) -> HTMLResponse:
        def answer(status: int, **context: Any) -> HTMLResponse:
            return page(request, "trace.html", title=f"Trace {trace_id[:32]}", section="traces",
                        refresh=sources.refresh, status_code=status, trace_id=trace_id[:64],
                        **context)  # fmt: skip

        try:
            trace_id = trace_id_bytes(trace_id).hex()
        except ValueError as exc:
            return answer(400, error=str(exc))
        reader = sources.telemetry()
        if reader is None:
            return answer(503, error=STORE_OFF)
        try:
            spans = reader.trace(trace_id)
            found = reader.search_logs(LogQuery(trace_id=trace_id, limit=TRACE_LOGS_SHOWN))
        except STORE_ERRORS as exc:
            return answer(503, error=store_failed(exc))
        if not spans:
            message = f"No span of trace {trace_id} is stored (unknown, or past the retention)."
            return answer(404, error=message)
        logs = [log_row(r) for r in reversed(found.records)]  # oldest first, like the spans
        groups = None
        if sources.errors is not None:
            known = sources.errors.tracker.groups
            groups = [(g, known.get(g)) for g in sources.errors.groups_in_trace(trace_id)]
        start = min(s.start_time_unix_nano for s in spans)
        end = max(s.end_time_unix_nano for s in spans)
        return answer(
            200, error=None, rows=waterfall(spans), start=nano_time(start),
            duration=(end - start) / 1e9, services=sorted({s.service for s in spans}),
            logs=logs, more_logs=found.next_cursor is not None, error_groups=groups,
            logs_url=link("/ui/logs", trace_id=trace_id),
        )  # fmt: skip
