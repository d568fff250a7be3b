"""The audit trail writer: append-only, hash-chained JSON lines (docs/audit.md).

:meth:`AuditTrail.record` is synchronous and cheap (one ``write`` to the page cache under a
lock), so request handlers call it directly. fsync runs every ``sync_interval`` seconds in a
worker thread (0: after every entry, on the caller's thread), and at rotation and stop.
The active file rotates past ``max_size`` and at the first entry (or maintenance pass) after
``daily_at`` (UTC); compression and retention of rotated files are :mod:`.upkeep`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from gateway import __version__
from gateway.audit.aggregate import MinuteAggregator
from gateway.audit.chain import (
    AUDIT_START,
    AUDIT_STOP,
    AUTH_FAILURE,
    MAX_ACTOR_CHARS,
    Entry,
    bounded_details,
    check_action,
)
from gateway.audit.config import AuditConfig
from gateway.audit.files import TrailLock
from gateway.audit.resume import AuditError
from gateway.audit.writer import ChainWriter
from gateway.audit.writer import Head as Head  # importable from here, as before
from gateway.tasks import cancel_and_wait

log = logging.getLogger("otelgate.audit")


class AuditTrail(ChainWriter):
    """An append-only, hash-chained audit log in ``path`` (rotated beside it).

    The keyword arguments are :class:`~gateway.audit.writer.ChainWriter`'s (whose defaults
    rotate by size only and keep every file as written; ``from_config`` applies ``audit:``'s:
    daily at 00:00 UTC, gzip) and ``auth_failures_per_minute``.
    """

    def __init__(
        self, path: str | Path, *, auth_failures_per_minute: int = 60, **writer: Any
    ) -> None:
        super().__init__(path, **writer)
        self._aggregator = MinuteAggregator(auth_failures_per_minute)
        self._file_lock = TrailLock(self.path)
        self._minute = 0
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_config(
        cls,
        config: AuditConfig,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
    ) -> AuditTrail:
        """A trail as ``config`` describes (reads the key file now)."""
        return cls(
            config.resolved_path(environ), key=config.key(), max_size=config.max_size,
            max_files=config.max_files, daily_at=config.daily_at, compress=config.compress,
            max_age=config.max_age, check_interval=config.check_interval,
            free_space=config.free_space,
            auth_failures_per_minute=config.auth_failures_per_minute,
            sync_interval=config.sync_interval, registry=registry, clock=clock,
        )  # fmt: skip

    # --- life cycle --------------------------------------------------------------------------

    def open(self) -> None:
        """Resume the chain (or start it) and write ``audit.start``.

        AuditError when the chain cannot be resumed safely (another process writes it, an
        HMAC trail without its key, no readable entry at the end of the file); OSError when
        the directory or file cannot be created.
        """
        with self._lock:
            if self._fd is not None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._file_lock.acquire()
            except OSError as exc:
                raise AuditError(str(exc)) from None
            try:
                self._upkeep.repair()
                self._resume()
            except BaseException:
                self._file_lock.release()
                raise
            self._written = 0
            details = {
                "pid": os.getpid(), "host": socket.gethostname(), "version": __version__,
                "alg": self.linker.alg, "file": self.path.name,
            }  # fmt: skip
            self._append(AUDIT_START, None, details)
        self._upkeep.start()

    def close(self) -> None:
        """Stop maintenance (applying retention once more), write what is aggregated and
        ``audit.stop``, fsync, close; logs the head hash."""
        self._upkeep.stop()
        with self._lock:
            if self._fd is None and not self._reopen:
                return
            with self._not_rotating():  # the stop entry ends this run's file
                self._flush(None)
                self._append(AUDIT_STOP, None, {"entries": self._written + 1})
            fd, self._fd, self._reopen = self._fd, None, False
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.fsync(fd)
                os.close(fd)
            self._file_lock.release()
            log.info(
                "audit trail %s stopped at seq %d, head %s (keep it to detect a removed tail: "
                "otelgate audit verify --head %s)", self.path, self._seq, self._head, self._head,
            )  # fmt: skip

    async def start(self) -> None:
        """:meth:`open` (in a thread), then a task that writes aggregates and fsyncs."""
        await asyncio.to_thread(self.open)
        self._task = asyncio.create_task(self._run(), name="audit-trail")

    async def stop(self) -> None:
        """Stop the task and :meth:`close`."""
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None
        await asyncio.to_thread(self.close)

    async def _run(self) -> None:
        tick = min(1.0, self.sync_interval) if self.sync_interval > 0 else 1.0
        last_sync = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            try:
                self.flush()
                if self.sync_interval > 0 and time.monotonic() - last_sync >= self.sync_interval:
                    last_sync = time.monotonic()
                    await asyncio.to_thread(self.sync)
            except Exception:  # keep writing aggregates and syncing whatever one round did
                log.exception("audit trail %s: background flush failed", self.path)

    # --- what the gateway calls --------------------------------------------------------------

    def record(
        self, action: str, actor: str | None = None, details: dict[str, Any] | None = None
    ) -> Entry | None:
        """Append an entry now; the entry written, or None if it could not be (counted, logged).

        ``action`` is dotted lower case (ValueError otherwise); ``details`` must hold no secret.
        """
        check_action(action)
        if actor is not None:
            actor = str(actor)[:MAX_ACTOR_CHARS]
        data = bounded_details(details)
        with self._lock:
            self._flush_before_now()
            return self._append(action, actor, data)

    def note_token_use(self, name: str, requests: int = 1, items: int = 0) -> None:
        """Count a request authenticated as ``name``; one ``auth.token_use`` per minute."""
        with self._lock:
            self._flush_before_now()
            self._aggregator.token_use(self._minute, str(name), requests, items)

    def note_auth_failure(
        self, reason: str, peer: str | None = None, name: str | None = None
    ) -> None:
        """An authentication failure: written now, or summarised past the per-minute cap."""
        with self._lock:
            self._flush_before_now()
            reason = str(reason)[:MAX_ACTOR_CHARS]
            peer = None if peer is None else str(peer)[:MAX_ACTOR_CHARS]
            if self._aggregator.auth_failure(self._minute, reason, peer):
                actor = None if name is None else str(name)[:MAX_ACTOR_CHARS]
                self._append(AUTH_FAILURE, actor, {"reason": reason, "peer": peer})

    def flush(self, final: bool = False) -> int:
        """Write the aggregates of past minutes (all of them when ``final``); how many."""
        with self._lock:
            if final:
                return self._flush(None)
            return self._flush_before_now()

    def sync(self) -> None:
        """fsync the active file if something was written since the last time."""
        with self._lock:
            if self._fd is None or not self._dirty:
                return
            fd, self._dirty = os.dup(self._fd), False
        try:
            os.fsync(fd)  # on a duplicate: a rotation may close the original meanwhile
        except OSError as exc:
            with self._lock:
                self._error("fsync", exc)
        else:
            self._upkeep.tracker.succeeded("write")
        finally:
            os.close(fd)

    # --- inside the lock ---------------------------------------------------------------------

    def _flush_before_now(self) -> int:
        minute = int(self.clock() // 60)
        if minute <= self._minute:
            return 0
        self._minute = minute
        return self._flush(minute)

    def _flush(self, minute: int | None) -> int:
        due = self._aggregator.due(minute)
        for action, actor, details in due:
            self._append(action, actor, details)
        return len(due)
