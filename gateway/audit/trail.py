"""The audit trail writer: append-only, hash-chained JSON lines (docs/audit.md).

:meth:`AuditTrail.record` is synchronous and cheap (one ``write`` to the page cache under a
lock), so request handlers call it directly. fsync runs every ``sync_interval`` seconds in a
worker thread (0: after every entry, on the caller's thread), and at rotation and stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from gateway import __version__
from gateway.audit.aggregate import MinuteAggregator
from gateway.audit.chain import (
    AUDIT_PRUNE,
    AUDIT_ROTATE,
    AUDIT_START,
    AUDIT_STOP,
    AUTH_FAILURE,
    GENESIS,
    MAX_ACTOR_CHARS,
    Entry,
    EntryError,
    Linker,
    bounded_details,
    check_action,
    encode_entry,
    rfc3339,
)
from gateway.audit.config import AuditConfig
from gateway.audit.files import (
    TrailLock,
    fsync_directory,
    read_first_entry,
    read_tail,
    rotated_files,
    rotated_name,
    write_all,
)
from gateway.audit.metrics import AuditMetrics
from gateway.audit.resume import AuditError, plan_resume
from gateway.tasks import cancel_and_wait

log = logging.getLogger("otelgate.audit")

ERROR_LOG_INTERVAL = 60.0


@dataclass(frozen=True)
class Head:
    """The newest entry: its ``seq``, its hash (the next entry's ``prev``) and its file."""

    seq: int
    hash: str
    file: Path


class AuditTrail:
    """An append-only, hash-chained audit log in ``path`` (rotated beside it)."""

    def __init__(
        self,
        path: str | Path,
        *,
        key: bytes | None = None,
        max_size: int = 100 * 1024 * 1024,
        max_files: int | None = None,
        auth_failures_per_minute: int = 60,
        sync_interval: float = 1.0,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.linker = Linker(key)
        self.max_size = max_size
        self.max_files = max_files
        self.sync_interval = sync_interval
        self.clock = clock
        self.metrics = None if registry is None else AuditMetrics(registry)
        self._aggregator = MinuteAggregator(auth_failures_per_minute)
        self._lock = threading.Lock()
        self._file_lock = TrailLock(self.path)
        self._fd: int | None = None
        self._reopen = False  # a failed write left the file in doubt: re-read it first
        self._size = 0
        self._seq = 0
        self._head = GENESIS
        self._first_seq: int | None = None
        self._file_entries = 0
        self._written = 0
        self._dirty = False
        self._rotating = False
        self._minute = 0
        self._errors_unlogged = 0
        self._last_error_log = -ERROR_LOG_INTERVAL
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
            max_files=config.max_files, auth_failures_per_minute=config.auth_failures_per_minute,
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

    def close(self) -> None:
        """Write what is aggregated and ``audit.stop``, fsync, close; logs the head hash."""
        with self._lock:
            if self._fd is None and not self._reopen:
                return
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
        finally:
            os.close(fd)

    @property
    def head(self) -> Head | None:
        """The newest entry's seq and hash, None before the trail is opened."""
        with self._lock:
            return None if self._seq == 0 else Head(self._seq, self._head, self.path)

    def files(self) -> list[Path]:
        """The trail's files, oldest first (rotated files, then the active file)."""
        with self._lock:
            found = [path for _, path in rotated_files(self.path)]
            return [*found, self.path] if self.path.exists() else found

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

    def _append(self, action: str, actor: str | None, details: dict[str, Any]) -> Entry | None:
        if self._fd is None and self._reopen:
            try:
                self._resume()
                self._reopen = False
            except (OSError, AuditError) as exc:
                self._error("reopen", exc)
                return None
        if self._fd is None:
            self._error("write", OSError("the audit trail is not open"))
            return None
        entry = Entry(
            seq=self._seq + 1, time=rfc3339(self.clock()), action=action, actor=actor,
            details=details, alg=self.linker.alg, prev=self._head,
        )  # fmt: skip
        line = encode_entry(entry)
        try:
            write_all(self._fd, line + b"\n")
        except OSError as exc:
            self._write_failed(exc)
            return None
        self._size += len(line) + 1
        self._seq, self._head = entry.seq, self.linker.link(line)
        self._file_entries += 1
        self._written += 1
        self._dirty = True
        if self.metrics is not None:
            self.metrics.entries.labels(action).inc()
        if self.sync_interval == 0:
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
        if self._size >= self.max_size and self._file_entries > 1 and not self._rotating:
            self._rotate()
        return entry

    def _write_failed(self, exc: OSError) -> None:
        self._error("write", exc)
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, self._size)  # no half-written line stays behind
        except OSError:
            os.close(self._fd)
            self._fd, self._reopen = None, True

    def _error(self, what: str, exc: BaseException) -> None:
        if self.metrics is not None:
            self.metrics.write_errors.inc()
        self._errors_unlogged += 1
        now = time.monotonic()
        if now - self._last_error_log >= ERROR_LOG_INTERVAL:
            log.error(
                "audit trail %s: %s failed: %s (%d failure(s) since the last report)",
                self.path, what, exc, self._errors_unlogged,
            )  # fmt: skip
            self._last_error_log, self._errors_unlogged = now, 0

    def _resume(self) -> None:
        plan = plan_resume(self.path, self.linker)
        self._open_active()
        if plan.last is None:
            self._seq, self._head, self._first_seq, self._file_entries = 0, GENESIS, 1, 0
            return
        self._seq, self._head = plan.last.seq, self.linker.link(plan.last_line)
        if plan.first_entry is None:
            self._first_seq = plan.first_seq
            self._file_entries = 2  # not a new file: it may rotate after audit.start
            return
        self._first_seq, self._file_entries = self._seq + 1, 0
        action, details = plan.first_entry
        if self._append(action, None, details) is None:
            raise AuditError(f"{self.path}: cannot write the first entry of a new file")

    def _open_active(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size

    def _rotate(self) -> None:
        assert self._fd is not None
        self._rotating = True
        try:
            size, first = self._size, self._first_seq or self._seq
            try:
                os.fsync(self._fd)
                target = rotated_name(self.path, first)
                os.rename(self.path, target)
            except OSError as exc:
                self._error("rotation", exc)  # keep writing to the same, larger, file
                return
            os.close(self._fd)
            self._fd = None
            fsync_directory(self.path.parent)
            try:
                self._open_active()
            except OSError as exc:
                self._error("rotation", exc)
                self._reopen = True  # the next entry resumes from the rotated file
                return
            self._first_seq, self._file_entries = self._seq + 1, 0
            details = {"previous_file": target.name, "previous_last_seq": self._seq,
                       "previous_size": size, "reason": "size"}  # fmt: skip
            self._append(AUDIT_ROTATE, None, details)
            self._prune()
        finally:
            self._rotating = False

    def _prune(self) -> None:
        if self.max_files is None:
            return
        rotated = [path for _, path in rotated_files(self.path)]
        excess = len(rotated) - self.max_files
        for index, old in enumerate(rotated[: max(0, excess)]):
            following = rotated[index + 1] if index + 1 < len(rotated) else self.path
            try:
                first, tail = read_first_entry(old), read_tail(old)
                successor = read_first_entry(following)
            except (OSError, EntryError) as exc:
                self._error(f"pruning {old.name}", exc)
                continue
            if tail.last is None or successor is None:
                continue
            try:
                last_hash = self.linker.link(tail.last_line, successor.alg)
                old.unlink()
            except (OSError, ValueError) as exc:
                self._error(f"pruning {old.name}", exc)
                continue
            self._append(AUDIT_PRUNE, None, {
                "file": old.name, "first_seq": first.seq if first else None,
                "last_seq": tail.last.seq, "last_hash": last_hash,
            })  # fmt: skip
        if excess > 0:
            fsync_directory(self.path.parent)
