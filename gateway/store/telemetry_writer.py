"""The writer of the embedded telemetry store: recent logs (full-text searchable) and spans.

This store serves the gateway's own UI and API (the last hours of logs and traces when no
backend is configured, or next to one); it is not a Loki or Jaeger replacement: no
replication, no long-term retention, no query language beyond simple full-text search.

Its tables (:mod:`gateway.store.telemetry_schema`) live in the gateway's SQLite file next to
the SLO and alert tables, but the writer has its own connection, used by one thread at a
time (calls are serialised by a lock): WAL mode lets the reader's connections query while
it writes. ``write`` stores one batch in one transaction.

Limits, both enforced by deleting this store's oldest rows only (other tables are never
touched):

- **Age**: :meth:`TelemetryWriter.enforce_retention` deletes the rows whose record time (log
  time, span start) is older than ``retention`` seconds, in chunks of rows, each in its own
  short transaction (:mod:`gateway.store.telemetry_retention`).
- **Size**: the database file never grows past ``max_size_bytes``. ``PRAGMA max_page_count``
  makes a write that would grow it past the cap minus a small reserve (:data:`RESERVE`, kept
  for the delete markers and merges that deleting needs) fail with SQLITE_FULL, and the
  pages in use are kept below :data:`HIGH_WATER` of the cap by deleting the oldest rows (by
  insertion order, logs and spans together) down to :data:`LOW_WATER`: after a write that
  passed the high-water mark, in ``enforce_retention``, and when a write fails for lack of
  room, before retrying it once; rows of a batch that still do not fit are dropped and
  counted (``counts``). Other connections to the file (the SLO and alert store) are not
  limited by this connection's ``max_page_count``; they find room in the pages this one
  keeps free.
- **WAL**: ``journal_size_limit`` is :func:`wal_limit_bytes`, checkpoints run every quarter
  of it, deletions are sized to a quarter of it: the -wal file stays within the limit unless
  one write transaction (one batch) is larger than about half of it, or a reader holds an
  old snapshot while much is written.

Times: see :mod:`gateway.store.telemetry_rows` (fallbacks; times more than an hour ahead of
the receive time are replaced by the receive time).

A file already larger than the cap (the cap was lowered) is shrunk once when the writer
opens it: oldest rows deleted, then ``VACUUM``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.otlp.batch import Batch, Signal
from gateway.store.telemetry_retention import Retention, RetentionResult, is_full
from gateway.store.telemetry_rows import (
    MAX_FUTURE_NS,
    SearchText,
    log_rows,
    source_key,
    span_rows,
)
from gateway.store.telemetry_schema import TELEMETRY_SCHEMA

HIGH_WATER = 0.9  # of max_size_bytes: pages in use past this start deleting the oldest rows
LOW_WATER = 0.8  # ... down to this
RESERVE = 0.02  # of max_size_bytes, at least RESERVE_PAGES: only deletions may use it
RESERVE_PAGES = 32
FALLBACK_CHUNK = 100  # rows per transaction when a batch is larger than the room left
BUSY_TIMEOUT_MS = 5000
MIN_SIZE_BYTES = 1024 * 1024

_INSERT_LOG = (
    "INSERT INTO telemetry_logs (id, time, observed_time, source_id, service, severity_number,"
    " severity_text, trace_id, span_id, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_TEXT = "INSERT INTO telemetry_logs_fts (rowid, body, attributes) VALUES (?, ?, ?)"
_INSERT_SPAN = (
    "INSERT INTO telemetry_spans (id, trace_id, span_id, parent_span_id, source_id, service,"
    " name, start, duration, status, span) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_SOURCE = (
    "INSERT INTO telemetry_sources (key, service, resource, scope, last_time)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
    " last_time = max(last_time, excluded.last_time) RETURNING id"
)


def wal_limit_bytes(max_size_bytes: int) -> int:
    """The -wal file's limit for a cap: an eighth of it, between 512 KiB and 64 MiB."""
    return min(max(max_size_bytes // 8, 512 * 1024), 64 * 1024 * 1024)


@dataclass(slots=True)
class WriterCounts:
    """What the writer did since it was created (for self-metrics)."""

    logs_written: int = 0
    spans_written: int = 0
    logs_dropped: int = 0  # did not fit, even after making room
    spans_dropped: int = 0  # did not fit, or had no valid trace / span id
    deleted: RetentionResult = field(default_factory=RetentionResult)


class TelemetryWriter:
    """Stores the logs and spans of batches; enforces retention by age and size."""

    def __init__(
        self,
        path: str | Path,
        *,
        retention: float,
        max_size_bytes: int,
        search_attributes: Sequence[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        if retention <= 0:
            raise ValueError("retention must be positive")
        if max_size_bytes < MIN_SIZE_BYTES:
            raise ValueError(f"max_size_bytes must be at least {MIN_SIZE_BYTES}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.retention = retention
        self.max_size_bytes = max_size_bytes
        self.search_attributes = frozenset(search_attributes)
        self._search = SearchText(self.search_attributes)
        self.clock = clock
        self.counts = WriterCounts()
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._configure()
            self._next_id = self._max_id() + 1
            if self._retention.page_count() > self._max_pages:
                self._shrink()
        except BaseException:
            self._db.close()
            raise

    # --- setup ----------------------------------------------------------------------------

    def _configure(self) -> None:
        db = self._db
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA secure_delete=FAST")
        db.executescript(TELEMETRY_SCHEMA)
        self.page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
        self._max_pages = self.max_size_bytes // self.page_size
        self.wal_limit_bytes = wal_limit = wal_limit_bytes(self.max_size_bytes)
        # A checkpoint every quarter of the limit, deletions in quarters too: the WAL stays
        # under the limit unless one write transaction alone is larger than half of it.
        reserve = min(max(int(self._max_pages * RESERVE), RESERVE_PAGES), self._max_pages // 12)
        self._retention = Retention(
            db, self._lock, page_size=self.page_size, max_pages=self._max_pages,
            write_pages=self._max_pages - reserve, budget_bytes=wal_limit // 4,
        )  # fmt: skip
        db.execute(f"PRAGMA journal_size_limit={wal_limit}")
        db.execute(f"PRAGMA wal_autocheckpoint={max(wal_limit // 4 // self.page_size, 8)}")

    def _max_id(self) -> int:
        row = self._db.execute(
            "SELECT max(coalesce((SELECT max(id) FROM telemetry_logs), 0),"
            " coalesce((SELECT max(id) FROM telemetry_spans), 0))"
        ).fetchone()
        return int(row[0])

    def _shrink(self) -> None:
        """Bring a file larger than the cap (the cap was lowered) below it."""
        self._make_room()
        try:
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the file shrinks here
        except sqlite3.OperationalError:
            return  # busy: the file stays as large as it is; the high-water mark still holds
        self._retention.limit_writes()

    # --- writing --------------------------------------------------------------------------

    def write(self, batch: Batch) -> int:
        """Store the logs or spans of ``batch`` (metrics: nothing); the rows written.

        Blocking: call it from a worker thread.
        """
        if batch.signal is Signal.METRICS:
            return 0
        with self._lock:
            try:
                written = self._insert(batch, chunked=False)
            except sqlite3.Error as exc:
                if not is_full(exc):
                    raise
                self._make_room()
                try:
                    written = self._insert(batch, chunked=False)
                except sqlite3.Error as again:
                    if not is_full(again):
                        raise
                    written = self._insert(batch, chunked=True)
            if self._retention.pages_in_use() > self._max_pages * HIGH_WATER:
                self._make_room()
            return written

    def _insert(self, batch: Batch, *, chunked: bool) -> int:
        """Insert the rows of ``batch``: in one transaction, or (``chunked``, after a failure
        for lack of room) in small transactions until one does not fit; the rest is dropped."""
        db = self._db
        now_ns = int(self.clock() * 1e9)
        db.execute("BEGIN IMMEDIATE")
        try:
            source_id = self._source_ids(now_ns)
            request = batch.request
            if batch.signal is Signal.LOGS:
                assert isinstance(request, ExportLogsServiceRequest)
                rows = log_rows(
                    request, first_id=self._next_id, now_ns=now_ns,
                    search=self._search, source_id=source_id,
                )  # fmt: skip
                statements = [(_INSERT_LOG, rows.logs), (_INSERT_TEXT, rows.texts)]
                total, skipped = len(rows.logs), 0
            else:
                assert isinstance(request, ExportTraceServiceRequest)
                spans = span_rows(
                    request, first_id=self._next_id, now_ns=now_ns, source_id=source_id
                )
                statements = [(_INSERT_SPAN, spans.spans)]
                total, skipped = len(spans.spans), spans.skipped
            if not chunked:
                for sql, rows_of in statements:
                    db.executemany(sql, rows_of)
                db.execute("COMMIT")
                written = total
            else:
                written = self._insert_chunks(statements, total)
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self._next_id += total
        self._count(batch.signal, written, total - written + skipped)
        return written

    def _insert_chunks(
        self, statements: list[tuple[str, list[tuple[object, ...]]]], total: int
    ) -> int:
        """Insert in transactions of :data:`FALLBACK_CHUNK` rows (the first one already
        open) until one fails with SQLITE_FULL; the rows written."""
        db = self._db
        for start in range(0, total, FALLBACK_CHUNK):
            if not db.in_transaction:
                db.execute("BEGIN IMMEDIATE")
            try:
                for sql, rows_of in statements:
                    db.executemany(sql, rows_of[start : start + FALLBACK_CHUNK])
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if not is_full(exc):
                    raise
                if db.in_transaction:
                    db.execute("ROLLBACK")
                return start
        return total

    def _source_ids(self, now_ns: int) -> Callable[[str, bytes, bytes], int]:
        """Upserts ``telemetry_sources`` rows in the open transaction. ``last_time`` is the
        latest time a record of this batch can have (times are clamped to that)."""
        db = self._db
        last_time = now_ns + MAX_FUTURE_NS
        known: dict[bytes, int] = {}

        def source_id(service: str, resource: bytes, scope: bytes) -> int:
            key = source_key(resource, scope)
            found = known.get(key)
            if found is None:
                row = db.execute(_UPSERT_SOURCE, (key, service, resource, scope, last_time))
                found = known[key] = int(row.fetchone()[0])
            return found

        return source_id

    def _count(self, signal: Signal, written: int, dropped: int) -> None:
        if signal is Signal.LOGS:
            self.counts.logs_written += written
            self.counts.logs_dropped += dropped
        else:
            self.counts.spans_written += written
            self.counts.spans_dropped += dropped

    # --- retention ----------------------------------------------------------------------

    def enforce_retention(self) -> RetentionResult:
        """Delete the rows older than the retention, then the oldest rows while the pages in
        use are past the high-water mark; the rows deleted. Chunks of rows, each its own
        transaction, so ``write`` never waits long."""
        result = self._retention.delete_older(int((self.clock() - self.retention) * 1e9))
        with self._lock:
            self.counts.deleted.add(result)
            if self._retention.pages_in_use() > self._max_pages * HIGH_WATER:
                result.add(self._make_room())
        return result

    def _make_room(self) -> RetentionResult:
        deleted = self._retention.make_room(int(self._max_pages * LOW_WATER))
        self.counts.deleted.add(deleted)
        return deleted

    # --- size -----------------------------------------------------------------------------

    def size_bytes(self) -> int:
        """The bytes of the pages in use (page_count - freelist_count, times the page size)."""
        with self._lock:
            return self._retention.pages_in_use() * self.page_size

    def file_bytes(self) -> int:
        """The database file's size on disk (without the -wal file)."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def close(self) -> None:
        """Checkpoint the WAL and close the connection."""
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._db.close()
