"""Deleting the telemetry store's old rows: by age, and oldest first to stay under a size.

Both work in chunks, one short transaction each, so that a pass never holds the write lock
long and the WAL stays small: after each chunk a passive checkpoint reports how many pages
the chunk wrote to the WAL, and the next chunk is resized so that it writes about
``budget_bytes`` (deleting rows also rewrites the pages of the random-ordered trace id
indexes, so rows-per-page guesses are poor). At most :data:`CHUNK_ROWS` rows a chunk. Only
this store's tables are touched, never the other tables of the file.

Deleting a row from the FTS5 index does not free its pages: FTS5 writes delete markers and
drops both only when a merge of segments reaches the oldest one. The writer sets the index's
``automerge`` and ``usermerge`` to 2 (merge as soon as two segments share a level), and each
chunk that deleted logs is followed by a bounded amount of merge work (``'merge'`` with a
positive page count); that keeps the index within about three times its live size. (A
negative page count, "merge every level", would reclaim more but corrupts the index on
SQLite 3.40 once rows have been deleted: seen in testing, so it is not used.) Delete markers
and merges need pages before any are freed: writes stop at ``write_pages`` (``PRAGMA
max_page_count``), deletions may use the pages above, up to ``max_pages``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

T = TypeVar("T")

CHUNK_ROWS = 5000  # at most this many rows deleted per transaction
MIN_CHUNK_ROWS = 4
MAX_CHUNKS = 500  # per age pass; the rest is left for the next pass
_FTS_COMMAND = "INSERT INTO telemetry_logs_fts (telemetry_logs_fts, rank) VALUES (?, ?)"
_MERGE = "INSERT INTO telemetry_logs_fts (telemetry_logs_fts, rank) VALUES ('merge', ?)"


@dataclass(slots=True)
class RetentionResult:
    """Rows deleted, per table and reason (``sources``: resource/scope rows no longer used)."""

    logs_by_age: int = 0
    spans_by_age: int = 0
    logs_by_size: int = 0
    spans_by_size: int = 0
    sources: int = 0

    def add(self, other: RetentionResult) -> None:
        """Add ``other``'s counts to these."""
        self.logs_by_age += other.logs_by_age
        self.spans_by_age += other.spans_by_age
        self.logs_by_size += other.logs_by_size
        self.spans_by_size += other.spans_by_size
        self.sources += other.sources


def is_full(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` is SQLITE_FULL (the database reached ``max_page_count``)."""
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def run_in_transaction(db: sqlite3.Connection, work: Callable[[], T]) -> T:
    """Run ``work`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back if it raises)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work()
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return result


class Retention:
    """Deletes rows of the telemetry tables through the writer's connection and lock."""

    def __init__(
        self,
        db: sqlite3.Connection,
        lock: threading.RLock,
        *,
        page_size: int,
        max_pages: int,
        write_pages: int,
        budget_bytes: int,
    ) -> None:
        self._db = db
        self._lock = lock
        self.page_size = page_size
        self.max_pages = max_pages
        self.write_pages = write_pages
        self.budget_pages = max(budget_bytes // page_size, 8)
        self.chunk = max(self.budget_pages // 4, MIN_CHUNK_ROWS)  # adapted after each chunk
        self.limit_writes()
        for setting in ("automerge", "usermerge"):
            run_in_transaction(db, partial(db.execute, _FTS_COMMAND, (setting, 2)))

    def limit_writes(self) -> None:
        """Writes may grow the file up to ``write_pages`` (never below its current size)."""
        pages = max(self.write_pages, self.page_count())
        self._db.execute(f"PRAGMA max_page_count={pages}")

    @contextmanager
    def _reserve(self) -> Iterator[None]:
        """Let deletions use the pages between ``write_pages`` and ``max_pages``."""
        self._db.execute(f"PRAGMA max_page_count={max(self.max_pages, self.page_count())}")
        try:
            yield
        finally:
            self.limit_writes()

    def page_count(self) -> int:
        """Pages of the database file (free ones included)."""
        return int(self._db.execute("PRAGMA page_count").fetchone()[0])

    def pages_in_use(self) -> int:
        """Pages holding data: ``page_count - freelist_count``."""
        free = int(self._db.execute("PRAGMA freelist_count").fetchone()[0])
        return self.page_count() - free

    # --- by age ---------------------------------------------------------------------------

    def delete_older(self, cutoff_ns: int) -> RetentionResult:
        """Delete logs and spans whose time is before ``cutoff_ns``; once none is left, the
        sources no row can refer to any more. Stops after :data:`MAX_CHUNKS` chunks."""
        result = RetentionResult()
        for _ in range(MAX_CHUNKS):
            with self._lock, self._reserve():
                chunk = self.chunk
                logs, spans = self._delete_chunk(partial(self._delete_older, cutoff_ns, chunk))
            result.logs_by_age += logs
            result.spans_by_age += spans
            if logs < chunk and spans < chunk:
                break
        else:
            return result
        with self._lock:
            result.sources = run_in_transaction(
                self._db, partial(self._delete_sources_before, cutoff_ns)
            )
        return result

    def _delete_older(self, cutoff_ns: int, chunk: int) -> tuple[int, int]:
        db = self._db
        logs = db.execute(
            "DELETE FROM telemetry_logs WHERE id IN"
            " (SELECT id FROM telemetry_logs WHERE time < ? LIMIT ?)",
            (cutoff_ns, chunk),
        ).rowcount
        spans = db.execute(
            "DELETE FROM telemetry_spans WHERE id IN"
            " (SELECT id FROM telemetry_spans WHERE start < ? LIMIT ?)",
            (cutoff_ns, chunk),
        ).rowcount
        return int(logs), int(spans)

    def _delete_sources_before(self, cutoff_ns: int) -> int:
        sql = "DELETE FROM telemetry_sources WHERE last_time < ?"
        return int(self._db.execute(sql, (cutoff_ns,)).rowcount)

    # --- by size --------------------------------------------------------------------------

    def make_room(self, target_pages: int) -> RetentionResult:
        """Delete the oldest rows (by insertion order, logs and spans together) until at most
        ``target_pages`` pages are in use or the telemetry tables are empty."""
        result = RetentionResult()
        with self._lock, self._reserve():
            while (in_use := self.pages_in_use()) > target_pages:
                first, last = self._id_range()
                if first is None or last is None:
                    break
                # Rows in proportion to the excess, a little more so that few rounds are needed.
                wanted = int((last - first + 1) * (in_use - target_pages) / in_use * 1.1) + 1
                cut = first + min(wanted, self.chunk)
                try:
                    logs, spans = self._delete_chunk(partial(self._delete_before, cut))
                except sqlite3.Error as exc:
                    # Full: the index's delete markers found no page, and the rows deleted
                    # before them freed none (too few to empty one). Larger steps.
                    if not is_full(exc) or self.chunk >= CHUNK_ROWS:
                        raise
                    self.chunk = min(self.chunk * 2, CHUNK_ROWS)
                    continue
                result.logs_by_size += logs
                result.spans_by_size += spans
        return result

    def _delete_before(self, cut: int) -> tuple[int, int]:
        db = self._db
        logs = db.execute("DELETE FROM telemetry_logs WHERE id < ?", (cut,)).rowcount
        spans = db.execute("DELETE FROM telemetry_spans WHERE id < ?", (cut,)).rowcount
        return int(logs), int(spans)

    def _id_range(self) -> tuple[int | None, int | None]:
        """The smallest and largest id of the logs and spans together (None: no rows)."""
        row = self._db.execute(
            "SELECT min(id), max(id) FROM (SELECT min(id) AS id FROM telemetry_logs"
            " UNION ALL SELECT max(id) FROM telemetry_logs"
            " UNION ALL SELECT min(id) FROM telemetry_spans"
            " UNION ALL SELECT max(id) FROM telemetry_spans)"
        ).fetchone()
        return row[0], row[1]

    # --- one chunk ------------------------------------------------------------------------

    def _delete_chunk(self, delete: Callable[[], tuple[int, int]]) -> tuple[int, int]:
        """Run one chunk's deletion, the index merge work it calls for, and a checkpoint;
        resize the next chunk from the WAL pages this one wrote."""
        self._checkpoint()  # so that the deletion starts a fresh WAL
        logs, spans = run_in_transaction(self._db, delete)
        frames = self._checkpoint()
        if frames > self.budget_pages:
            self.chunk = max(self.chunk // 2, MIN_CHUNK_ROWS)
        elif frames < self.budget_pages // 2 and logs + spans >= self.chunk:
            self.chunk = min(self.chunk + self.chunk // 2 + 1, CHUNK_ROWS)
        if logs:
            self._merge_index(logs)
        return logs, spans

    def _merge_index(self, deleted: int) -> None:
        """Merge work on the full-text index after ``deleted`` of its documents were deleted
        (best effort: when the database is full, the next chunk's merge does it)."""
        pages = min(deleted // 8 + 32, self.budget_pages)
        try:
            run_in_transaction(self._db, partial(self._db.execute, _MERGE, (pages,)))
        except sqlite3.Error as exc:
            if not is_full(exc):
                raise
        self._checkpoint()

    def _checkpoint(self) -> int:
        """A passive checkpoint; the frames the WAL held."""
        row = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[1])
