"""The Logs page (``/ui/logs``): full-text search, filters and cursor pages over the store,
and its live tail (``/ui/logs/tail``), a Server-Sent Events stream of new matching records.

The tail polls the store's reader from a worker thread every :attr:`TailSettings.poll`
seconds for the matching records stored after the last one it sent (store ids are the
insertion order, ``LogQuery.after_id``), in the order they were stored, whatever their own
timestamps. Each record is one ``event: log`` with the store id as its ``id:``, so a
browser that reconnects (``Last-Event-ID``) or resumes a pause
(``?after=<id>``) gets what it missed. A stream ends when the client goes, after
:attr:`TailSettings.max_time` (EventSource reconnects by itself), when the gateway stops or
the store closes; at most :attr:`TailSettings.max_tails` run at once (then 503).
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Annotated

from fastapi import APIRouter, Header, Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse

from gateway.dashboard.render import page
from gateway.dashboard.sources import DashboardSources
from gateway.dashboard.telemetry_views import (
    SEVERITY_CHOICES,
    STORE_ERRORS,
    STORE_OFF,
    blank,
    link,
    log_row,
    parse_since,
    since_choices,
    store_failed,
)
from gateway.store.telemetry_queries import TelemetryReader
from gateway.store.telemetry_records import LogQuery, StoredLog

log = logging.getLogger("otelgate.dashboard")
PAGE_SIZE = 100
Q_HINT = (
    'All words must match; "a phrase" matches words in order; prefix* matches the start of '
    "a word; -word excludes. The body and the searchable attributes are searched, ignoring "
    "case and accents."
)


@dataclass(frozen=True, slots=True)
class TailSettings:
    """How the live tail polls and how long a stream lasts (seconds)."""

    poll: float = 1.0
    keepalive: float = 15.0
    max_time: float = 300.0
    retry: float = 2.0  # the browser's wait before it reconnects
    batch: int = 200  # records read at once
    max_batches: int = 5  # per poll: a burst larger than this waits for the next poll
    max_tails: int = 16


@dataclass(frozen=True, slots=True)
class LogFilters:
    """The page's filters, as the form sends them (empty fields are None)."""

    q: str | None = None
    service: str | None = None
    severity: str | None = None
    trace_id: str | None = None
    since: str | None = None

    @classmethod
    def of(cls, q: str | None, service: str | None, severity: str | None,
           trace_id: str | None, since: str | None) -> LogFilters:  # fmt: skip
        """From the query parameters."""
        trace = blank(trace_id)
        return cls(blank(q), blank(service), blank(severity), trace and trace.lower(), blank(since))

    def query(self, *, limit: int = PAGE_SIZE, cursor: str | None = None) -> LogQuery:
        """The store query (raises ``ValueError`` for a malformed ``since``)."""
        return LogQuery(
            q=self.q, service=self.service, severity=self.severity, trace_id=self.trace_id,
            since=parse_since(self.since), limit=limit, cursor=cursor,
        )  # fmt: skip

    def params(self) -> dict[str, str | None]:
        """As query parameters."""
        return {"q": self.q, "service": self.service, "severity": self.severity,
                "trace_id": self.trace_id, "since": self.since}  # fmt: skip


def sse_event(record: StoredLog) -> str:
    """One ``event: log`` of the tail."""
    data = json.dumps(log_row(record), ensure_ascii=False, separators=(",", ":"))
    return f"id: {record.id}\nevent: log\ndata: {data}\n\n"


def _newer(
    reader: TelemetryReader, query: LogQuery, after: int, batch: int, batches: int
) -> list[StoredLog]:
    """The records matching ``query`` stored after id ``after``, in the order they were
    stored (at most ``batch`` x ``batches``)."""
    found: list[StoredLog] = []
    for _ in range(batches):
        records = reader.search_logs(replace(query, after_id=after, limit=batch)).records
        found.extend(records)
        if len(records) < batch:
            break
        after = records[-1].id
    return found


def _event_id(*values: str | None) -> int | None:
    """The largest of the ids given (Last-Event-ID, ``after``) that are numbers."""
    ids = [int(v) for v in values if v and v.isascii() and v.strip().isdecimal() and len(v) < 20]
    return max(ids) if ids else None


class _Slot:
    """A running stream's place under :attr:`TailSettings.max_tails`."""


class LogTail:
    """The live tail's streams (one object per router: it counts the open streams)."""

    def __init__(self, sources: DashboardSources, settings: TailSettings) -> None:
        self.sources = sources
        self.settings = settings
        # One slot per stream, held by its generator: freed when the stream ends, and also
        # when a stream that never started is dropped (its ``finally`` never runs then).
        self._slots: weakref.WeakSet[_Slot] = weakref.WeakSet()

    @property
    def open(self) -> int:
        """Streams running now."""
        return len(self._slots)

    def stopping(self) -> bool:
        """Whether the gateway is shutting down (streams end so that it need not wait)."""
        return getattr(self.sources.health.gateway, "state", "") in ("stopping", "stopped")

    async def start(self, request: Request, filters: LogFilters, after: int | None) -> Response:
        """Check the filters and the store, then stream (or answer 400/503 with the reason)."""
        reader = self.sources.telemetry()
        if reader is None:
            return PlainTextResponse(STORE_OFF, status_code=503)
        if self.open >= self.settings.max_tails:
            message = f"{self.open} live tails are open already; try again later"
            return PlainTextResponse(message, status_code=503, headers={"Retry-After": "30"})
        slot = _Slot()  # taken now: concurrent starts cannot pass the limit together
        self._slots.add(slot)
        try:
            query = replace(filters.query(), limit=self.settings.batch)
            await asyncio.to_thread(reader.search_logs, query)  # a malformed query: 400
            if after is None:  # a new tail starts at what is stored now
                after = await asyncio.to_thread(reader.last_log_id)
        except ValueError as exc:
            self._slots.discard(slot)
            return PlainTextResponse(str(exc), status_code=400)
        except STORE_ERRORS as exc:
            self._slots.discard(slot)
            return PlainTextResponse(store_failed(exc), status_code=503)
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(
            self.events(request, query, after, slot),
            media_type="text/event-stream",
            headers=headers,
        )

    async def events(
        self, request: Request, query: LogQuery, after: int, slot: _Slot
    ) -> AsyncIterator[str]:
        """The stream: ``ready`` (a retry hint and the id it starts after), then records as
        they are stored, ``: keepalive`` comments when quiet, ``closed`` if the store goes."""
        settings = self.settings
        loop = asyncio.get_running_loop()
        try:
            retry = int(settings.retry * 1000)
            yield f"retry: {retry}\nid: {after}\nevent: ready\ndata: {after}\n\n"
            started = quiet = loop.time()
            while True:
                await asyncio.sleep(settings.poll)
                now = loop.time()
                if now - started >= settings.max_time or self.stopping():
                    return
                if await request.is_disconnected():
                    return
                reader = self.sources.telemetry()
                if reader is None:
                    yield f"event: closed\ndata: {STORE_OFF}\n\n"
                    return
                try:
                    fresh = await asyncio.to_thread(
                        _newer, reader, query, after, settings.batch, settings.max_batches
                    )
                except Exception as exc:  # the store closed or failed: say so and end
                    log.warning("live tail: reading the store failed: %s", exc)
                    yield "event: closed\ndata: reading the store failed; retrying later\n\n"
                    return
                for record in fresh:
                    yield sse_event(record)
                    after = record.id
                if fresh:
                    quiet = now
                elif now - quiet >= settings.keepalive:
                    yield ": keepalive\n\n"
                    quiet = now
        finally:
            self._slots.discard(slot)


def add_routes(
    router: APIRouter, sources: DashboardSources, tail: TailSettings | None = None
) -> None:
    """``GET /ui/logs`` and ``GET /ui/logs/tail``."""
    tails = LogTail(sources, tail or TailSettings())

    @router.get("/ui/logs")
    def logs(
        request: Request,
        q: str | None = None,
        service: str | None = None,
        severity: str | None = None,
        trace_id: str | None = None,
        since: str | None = None,
        cursor: str | None = None,
    ) -> HTMLResponse:
        filters = LogFilters.of(q, service, severity, trace_id, since)
        cursor = blank(cursor)
        reader = sources.telemetry()
        error, status, records, older = None, 200, [], None
        tail_from: str | None = None
        if reader is None:
            error, status = STORE_OFF, 503
        else:
            try:
                found = reader.search_logs(filters.query(cursor=cursor, limit=PAGE_SIZE))
                # The tail goes on from what this page shows (not from when it is switched on).
                start = reader.last_log_id() if cursor is None else None
            except ValueError as exc:
                error, status = str(exc), 400
            except STORE_ERRORS as exc:
                error, status = store_failed(exc), 503
            else:
                if start is not None:
                    tail_from = str(start)
                records = [log_row(r) for r in found.records]
                if found.next_cursor:
                    older = link("/ui/logs", **filters.params(), cursor=found.next_cursor)
        return page(
            request, "logs.html", title="Logs", section="logs", refresh=sources.refresh,
            status_code=status, filters=filters, error=error, records=records,
            older_url=older, newest_url=link("/ui/logs", **filters.params()) if cursor else None,
            tail_url=link("/ui/logs/tail", **filters.params(), after=tail_from), q_hint=Q_HINT,
            severities=SEVERITY_CHOICES, since_choices=since_choices(filters.since),
        )  # fmt: skip

    @router.get("/ui/logs/tail")
    async def log_tail(
        request: Request,
        q: str | None = None,
        service: str | None = None,
        severity: str | None = None,
        trace_id: str | None = None,
        since: str | None = None,
        after: str | None = None,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> Response:
        filters = LogFilters.of(q, service, severity, trace_id, since)
        return await tails.start(request, filters, _event_id(last_event_id, after))
