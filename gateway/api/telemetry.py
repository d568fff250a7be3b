"""The logs and traces API on the admin listener, over the embedded telemetry store.

``GET /logs`` (full-text search and filters, newest first, cursor pages), ``GET /traces``
(trace search) and ``GET /traces/{trace_id}`` (one trace in tree order). The store serves the
gateway's own UI: recent data only (its retention), not a Loki or Jaeger replacement.

Store queries block, so the endpoints are plain functions: FastAPI runs them in its thread
pool, never on the event loop. A malformed query (full-text syntax, ids, severity, cursor)
is answered 400 with the reason; parameters of the wrong type or range, 422. The router
takes the reader, or a function returning it (None while the store is not open: 503).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, NoReturn

from fastapi import APIRouter, HTTPException, Path, Query

from gateway.api.telemetry_models import (
    LogList,
    TraceDetail,
    TraceList,
    log_view,
    trace_detail,
    trace_summary_view,
)
from gateway.api.times import optional_epoch
from gateway.store.telemetry_queries import TelemetryReader
from gateway.store.telemetry_records import DEFAULT_LIMIT, MAX_LIMIT, LogQuery, TraceQuery
from gateway.store.telemetry_search import MAX_QUERY_CHARS, trace_id_bytes

SINCE = "At or after (RFC 3339 or unix seconds)"
UNTIL = "Before (RFC 3339 or unix seconds)"
Q = (
    'Full-text search of body and searchable attributes: words (all must match), "a phrase", '
    "prefix*, -excluded"
)
_BAD: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed query (the detail says why)"},
    503: {"description": "The store is not open"},
}


ReaderSource = TelemetryReader | Callable[[], TelemetryReader | None]


def telemetry_router(
    source: ReaderSource, errors_in_trace: Callable[[str], list[str]] | None = None
) -> APIRouter:
    """The logs and traces routes, for ``Gateway.admin_routers``; ``errors_in_trace`` gives
    the error groups seen in a trace (blocking), so a trace links to its errors."""
    router = APIRouter(tags=["telemetry"])

    def store() -> TelemetryReader:
        reader = source if isinstance(source, TelemetryReader) else source()
        if reader is None:
            raise HTTPException(503, "the telemetry store is not open (yet)")
        return reader

    @router.get("/logs", response_model=LogList, summary="Search stored logs", responses=_BAD)
    def logs(
        q: Annotated[str | None, Query(description=Q, max_length=MAX_QUERY_CHARS)] = None,
        service: str | None = None,
        severity: Annotated[
            str | None,
            Query(description="Minimum: trace, debug, info, warn, error, fatal, or 1-24"),
        ] = None,
        trace_id: Annotated[str | None, Query(description="32 hex digits")] = None,
        span_id: Annotated[str | None, Query(description="16 hex digits")] = None,
        since: Annotated[datetime | None, Query(description=SINCE)] = None,
        until: Annotated[datetime | None, Query(description=UNTIL)] = None,
        limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    ) -> LogList:
        query = LogQuery(
            q=q, service=service, severity=severity, trace_id=trace_id, span_id=span_id,
            since=optional_epoch(since), until=optional_epoch(until), limit=limit, cursor=cursor,
        )  # fmt: skip
        try:
            page = store().search_logs(query)
        except ValueError as exc:
            _bad_request(exc)
        return LogList(logs=[log_view(r) for r in page.records], next_cursor=page.next_cursor)

    @router.get("/traces", response_model=TraceList, summary="Search stored traces", responses=_BAD)
    def traces(
        service: Annotated[str | None, Query(description="A span of this service")] = None,
        name: Annotated[str | None, Query(description="A span of this name")] = None,
        min_duration: Annotated[
            float | None, Query(ge=0, description="Seconds the trace (and a span) lasted at least")
        ] = None,
        status: Annotated[
            Literal["error", "ok"] | None, Query(description="error: a span failed; ok: none")
        ] = None,
        since: Annotated[datetime | None, Query(description=SINCE)] = None,
        until: Annotated[datetime | None, Query(description=UNTIL)] = None,
        limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    ) -> TraceList:
        query = TraceQuery(
            service=service, name=name, min_duration=min_duration, status=status,
            since=optional_epoch(since), until=optional_epoch(until), limit=limit,
        )  # fmt: skip
        try:
            found = store().traces(query)
        except ValueError as exc:
            _bad_request(exc)
        return TraceList(traces=[trace_summary_view(s) for s in found])

    @router.get(
        "/traces/{trace_id}",
        response_model=TraceDetail,
        summary="One stored trace, spans in parent/child order",
        responses={**_BAD, 404: {"description": "No span of this trace is stored"}},
    )
    def one_trace(
        trace_id: Annotated[str, Path(description="32 hex digits")],
    ) -> TraceDetail:
        try:
            trace_id = trace_id_bytes(trace_id).hex()
        except ValueError as exc:
            _bad_request(exc)
        reader = store()
        spans = reader.trace(trace_id)
        if not spans:
            raise HTTPException(
                404, f"no span of trace {trace_id} is stored (unknown, or past the retention)"
            )
        errors = errors_in_trace(trace_id) if errors_in_trace is not None else []
        return trace_detail(trace_id, spans, reader.count_logs(trace_id), errors)

    return router


def _bad_request(exc: ValueError) -> NoReturn:
    raise HTTPException(400, str(exc)) from None
