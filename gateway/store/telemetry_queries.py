"""Queries of the embedded telemetry store: log search, one trace, trace search.

The reader has its own read-only connections to the gateway's SQLite file (WAL: they read
while the writer writes), one per concurrent caller, a few kept for reuse. Calls block: make them
from a worker thread. Query results are decoded here, from the protobuf blobs the writer
stored (:mod:`gateway.store.telemetry_schema`).

Costs: a log search without ``q`` walks an index newest first and stops at ``limit``; with
``q``, every record matching the full-text query is checked against the other filters and
sorted by time, so a very common word over a large store costs more (give a time range or
a service). A trace search reads spans newest first until it has ``limit`` traces, at most
:data:`MAX_SCANNED_SPANS` spans; one trace returns at most :data:`MAX_TRACE_SPANS` spans.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from gateway.store.telemetry_records import (
    MAX_LIMIT,
    LogPage,
    LogQuery,
    StoredLog,
    StoredSpan,
    TraceQuery,
    TraceSummary,
)
from gateway.store.telemetry_rows import attributes_dict
from gateway.store.telemetry_schema import TELEMETRY_SCHEMA
from gateway.store.telemetry_search import (
    decode_cursor,
    encode_cursor,
    fts_query,
    severity_number,
    span_id_bytes,
    trace_id_bytes,
)
from gateway.store.telemetry_spans import decode_span, summarize, tree_order

BUSY_TIMEOUT_MS = 5000
MAX_IDLE_CONNECTIONS = 4  # more concurrent queries open more, closed when done
MAX_TRACE_SPANS = 10_000
MAX_SCANNED_SPANS = 200_000
_SCAN_BATCH = 500
_INT64_NS_LIMIT = 9.2e18

_LOG_COLUMNS = (
    "l.id, l.time, l.observed_time, l.service, l.severity_number, l.severity_text,"
    " l.trace_id, l.span_id, l.record, f.body, s.resource, s.scope"
)


class TelemetryReader:
    """Read-only queries of the telemetry tables in the SQLite file at ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._closed = False
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(TELEMETRY_SCHEMA)  # so that queries work before any write
        finally:
            db.close()

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise RuntimeError("the telemetry reader is closed")
            db = self._idle.pop() if self._idle else None
        if db is None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA query_only=ON")
        try:
            yield db
        finally:
            if db.in_transaction:
                db.execute("ROLLBACK")
            with self._lock:
                keep = not self._closed and len(self._idle) < MAX_IDLE_CONNECTIONS
                if keep:
                    self._idle.append(db)
            if not keep:
                db.close()

    def close(self) -> None:
        """Close the idle connections (those in use close when their query ends)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for db in idle:
            db.close()

    # --- logs -----------------------------------------------------------------------------

    def search_logs(self, query: LogQuery) -> LogPage:
        """Log records matching ``query``, newest first (ties: last stored first); with
        ``after_id``, those stored after it, in the order they were stored.

        Raises ``ValueError`` for a malformed full-text query, id, severity, cursor or limit.
        """
        if not 1 <= query.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
        where: list[str] = []
        params: list[Any] = []
        text = query.q.strip() if query.q else ""
        if text:
            where.append("f.telemetry_logs_fts MATCH ?")
            params.append(fts_query(text))
        # A tail (after_id) reads a range of ids: the unary + keeps SQLite from walking the
        # service or severity index (every row of the service) instead of that range.
        tail = "+" if query.after_id is not None else ""
        if query.service is not None:
            where.append(f"{tail}l.service = ?")
            params.append(query.service)
        if query.severity is not None:
            where.append(f"{tail}l.severity_number >= ?")
            params.append(severity_number(query.severity))
        if query.trace_id is not None:
            where.append("l.trace_id = ?")
            params.append(trace_id_bytes(query.trace_id))
        if query.span_id is not None:
            where.append("l.span_id = ?")
            params.append(span_id_bytes(query.span_id))
        if query.since is not None:
            where.append("l.time >= ?")
            params.append(_ns(query.since))
        if query.until is not None:
            where.append("l.time < ?")
            params.append(_ns(query.until))
        if query.after_id is not None:
            if query.cursor is not None:
                raise ValueError("after_id and cursor cannot be combined")
            where.append("l.id > ?")
            params.append(query.after_id)
            if text:  # and the full-text index starts at that id too
                where.append("f.rowid > ?")
                params.append(query.after_id)
        if query.cursor is not None:
            time_ns, row_id = decode_cursor(query.cursor)
            where.append("(l.time, l.id) < (?, ?)")
            params.extend((time_ns, row_id))
        # With a full-text query, the index of matches drives; else the logs' indexes do
        # (CROSS JOIN: SQLite keeps this order instead of guessing).
        join = (
            "telemetry_logs_fts AS f CROSS JOIN telemetry_logs AS l ON l.id = f.rowid"
            if text
            else "telemetry_logs AS l CROSS JOIN telemetry_logs_fts AS f ON f.rowid = l.id"
        )
        sql = (
            f"SELECT {_LOG_COLUMNS} FROM {join}"
            " LEFT JOIN telemetry_sources AS s ON s.id = l.source_id"
            + (" WHERE " + " AND ".join(where) if where else "")
            + (
                " ORDER BY l.id LIMIT ?"
                if query.after_id is not None
                else " ORDER BY l.time DESC, l.id DESC LIMIT ?"
            )
        )
        params.append(query.limit + 1)
        with self._connection() as db:
            try:
                rows = db.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if "fts5" in str(exc):
                    raise ValueError(f"invalid full-text query: {exc}") from None
                raise
        more = len(rows) > query.limit
        sources = _Sources()
        records = [_log(row, sources) for row in rows[: query.limit]]
        last = records[-1] if more and query.after_id is None else None
        cursor = encode_cursor(last.time_unix_nano, last.id) if last else None
        return LogPage(records=records, next_cursor=cursor)

    def last_log_id(self) -> int:
        """The id of the newest stored log record (0 when none): a live tail starts there."""
        with self._connection() as db:
            row = db.execute("SELECT max(id) FROM telemetry_logs").fetchone()
        return int(row[0] or 0)

    def count_logs(self, trace_id: str) -> int:
        """How many stored log records belong to the trace ``trace_id``."""
        tid = trace_id_bytes(trace_id)
        with self._connection() as db:
            row = db.execute("SELECT count(*) FROM telemetry_logs WHERE trace_id = ?", (tid,))
            return int(row.fetchone()[0])

    # --- traces ---------------------------------------------------------------------------

    def trace(self, trace_id: str) -> list[StoredSpan]:
        """The spans of one trace (at most :data:`MAX_TRACE_SPANS`, the earliest) in tree
        order: each span before its children, siblings by start time, spans whose parent is
        missing at depth 0 among the roots; ``[]`` when unknown."""
        tid = trace_id_bytes(trace_id)
        with self._connection() as db:
            rows = db.execute(
                "SELECT sp.span, sp.service, sp.start, sp.duration, s.resource, s.scope"
                " FROM telemetry_spans AS sp"
                " LEFT JOIN telemetry_sources AS s ON s.id = sp.source_id"
                " WHERE sp.trace_id = ? ORDER BY sp.start, sp.id LIMIT ?",
                (tid, MAX_TRACE_SPANS),
            ).fetchall()
        sources = _Sources()
        spans = [
            decode_span(blob, service, start, duration, *sources.get(resource, scope))
            for blob, service, start, duration, resource, scope in rows
        ]
        return tree_order(spans)

    def traces(self, query: TraceQuery) -> list[TraceSummary]:
        """Traces matching ``query`` (see :class:`TraceQuery`), newest first by start."""
        if not 1 <= query.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
        if query.status not in (None, "error", "ok"):
            raise ValueError("status must be 'error' or 'ok'")
        where: list[str] = ["1"]
        params: list[Any] = []
        if query.service is not None:
            where.append("service = ?")
            params.append(query.service)
        if query.name is not None:
            where.append("name = ?")
            params.append(query.name)
        min_ns = _ns(query.min_duration) if query.min_duration is not None else 0
        if min_ns:
            where.append("duration >= ?")
            params.append(min_ns)
        if query.status == "error":
            where.append("status = 2")  # a literal: lets SQLite use the partial index
        if query.since is not None:
            where.append("start >= ?")
            params.append(_ns(query.since))
        if query.until is not None:
            where.append("start < ?")
            params.append(_ns(query.until))
        sql = (
            f"SELECT trace_id FROM telemetry_spans WHERE {' AND '.join(where)} ORDER BY start DESC"
        )
        found: dict[bytes, TraceSummary] = {}
        seen: set[bytes] = set()
        with self._connection() as db:
            db.execute("BEGIN")  # one snapshot for the scan and the summaries
            scan = db.execute(sql, params)
            scanned = 0
            while len(found) < query.limit and scanned < MAX_SCANNED_SPANS:
                batch = scan.fetchmany(_SCAN_BATCH)
                if not batch:
                    break
                scanned += len(batch)
                fresh = list(dict.fromkeys(t for (t,) in batch if t not in seen))
                seen.update(fresh)
                for summary in self._summaries(db, fresh):
                    if query.status == "ok" and summary.error_count:
                        continue
                    if summary.duration_ns < min_ns:
                        continue
                    if len(found) < query.limit:
                        found[bytes.fromhex(summary.trace_id)] = summary
        return sorted(found.values(), key=lambda s: s.start_time_unix_nano, reverse=True)

    def _summaries(self, db: sqlite3.Connection, trace_ids: list[bytes]) -> list[TraceSummary]:
        """Summaries of ``trace_ids``, in that order."""
        if not trace_ids:
            return []
        marks = ",".join("?" * len(trace_ids))
        rows = db.execute(
            "SELECT trace_id, span_id, parent_span_id, service, name, start, duration, status"
            f" FROM telemetry_spans WHERE trace_id IN ({marks})",
            trace_ids,
        ).fetchall()
        by_trace: dict[bytes, list[tuple[Any, ...]]] = {t: [] for t in trace_ids}
        for row in rows:
            by_trace[row[0]].append(row)
        return [summarize(t, spans) for t, spans in by_trace.items() if spans]


def _ns(seconds: float) -> int:
    """Unix seconds as nanoseconds, within SQLite's integers (year 1678 to 2262)."""
    if math.isnan(seconds):
        raise ValueError("a time or duration is not a number")
    return int(max(min(seconds * 1e9, _INT64_NS_LIMIT), -_INT64_NS_LIMIT))


class _Sources:
    """Decoded (resource attributes, scope name) by their encodings, within one query."""

    def __init__(self) -> None:
        self._known: dict[tuple[bytes | None, bytes | None], tuple[dict[str, Any], str]] = {}

    def get(self, resource: bytes | None, scope: bytes | None) -> tuple[dict[str, Any], str]:
        """The resource's attributes (a copy per call) and the scope's name."""
        key = (resource, scope)
        found = self._known.get(key)
        if found is None:
            attributes = (
                attributes_dict(Resource.FromString(resource).attributes) if resource else {}
            )
            name = InstrumentationScope.FromString(scope).name if scope else ""
            found = self._known[key] = (attributes, name)
        return dict(found[0]), found[1]


def _log(row: tuple[Any, ...], sources: _Sources) -> StoredLog:
    (row_id, time_ns, observed, service, severity, severity_text, trace_id, span_id, blob,
     body, resource, scope) = row  # fmt: skip
    record = LogRecord.FromString(blob)
    resource_attributes, scope_name = sources.get(resource, scope)
    return StoredLog(
        id=row_id, time_unix_nano=time_ns, observed_time_unix_nano=observed, service=service,
        severity_number=severity, severity_text=severity_text, body=body,
        trace_id=trace_id.hex() if trace_id else None,
        span_id=span_id.hex() if span_id else None,
        attributes=attributes_dict(record.attributes), resource=resource_attributes,
        scope_name=scope_name, event_name=record.event_name, flags=record.flags,
    )  # fmt: skip
