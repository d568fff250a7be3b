"""The SQLite file behind the embedded store (stdlib ``sqlite3``, WAL journal).

Calls block: the gateway makes them from a worker thread (``asyncio.to_thread``), batched by
its producers, never from the event loop per request. One connection serves every thread,
serialised by a lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

from gateway.store.alerts_schema import ALERTS_SCHEMA
from gateway.store.errors_schema import ERRORS_SCHEMA
from gateway.store.telemetry_schema import TELEMETRY_SCHEMA

T = TypeVar("T")

SCHEMA_VERSION = 3  # 2: alert tables; 3: error groups, logs and spans
_SCHEMA = """
CREATE TABLE IF NOT EXISTS slo_buckets (
    slo TEXT NOT NULL,
    minute INTEGER NOT NULL,  -- floor(unix seconds / 60)
    good REAL NOT NULL,
    total REAL NOT NULL,
    PRIMARY KEY (slo, minute)
) WITHOUT ROWID;
"""

MEMORY = ":memory:"  # a store that lives as long as the process (store.enabled: false)

# A bucket: (good, total) events of one SLO in one minute.
Bucket = tuple[float, float]


class SqliteStore:
    """One SQLite database file; create it (and its directory) if missing."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != MEMORY:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            self._db.close()
            raise RuntimeError(f"{self.path} has schema {version}, newer than this otelgate")
        self._db.executescript(_SCHEMA + ALERTS_SCHEMA + ERRORS_SCHEMA + TELEMETRY_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @property
    def journal_mode(self) -> str:
        """SQLite's journal mode (``wal``)."""
        with self._lock:
            return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    def transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` with the connection inside one transaction (rolled back if it raises)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = work(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return result

    def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` (queries only) with the connection."""
        with self._lock:
            return work(self._db)

    def add_slo_buckets(self, deltas: Mapping[tuple[str, int], Bucket]) -> None:
        """Add ``(good, total)`` increments to the ``(slo, minute)`` buckets, in one
        transaction (a restart never loses or doubles a committed flush)."""
        rows = [(slo, minute, good, total) for (slo, minute), (good, total) in deltas.items()]
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT INTO slo_buckets (slo, minute, good, total) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (slo, minute) DO UPDATE SET good = good + excluded.good, "
                    "total = total + excluded.total",
                    rows,
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def load_slo_buckets(
        self, slos: Iterable[str], since_minute: int
    ) -> dict[str, dict[int, Bucket]]:
        """The buckets of ``slos`` from ``since_minute`` on, by SLO and minute."""
        names = list(slos)
        found: dict[str, dict[int, Bucket]] = {name: {} for name in names}
        if not names:
            return found
        marks = ",".join("?" * len(names))
        with self._lock:
            rows = self._db.execute(
                f"SELECT slo, minute, good, total FROM slo_buckets "
                f"WHERE minute >= ? AND slo IN ({marks})",
                [since_minute, *names],
            ).fetchall()
        for slo, minute, good, total in rows:
            found[slo][int(minute)] = (float(good), float(total))
        return found

    def delete_slo_buckets_before(self, minute: int) -> int:
        """Retention: drop every bucket older than ``minute``; returns how many."""
        with self._lock:
            cursor = self._db.execute("DELETE FROM slo_buckets WHERE minute < ?", (minute,))
            return int(cursor.rowcount)

    def close(self) -> None:
        """Checkpoint the WAL and close."""
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._db.close()
