"""The chain on disk: appending entries to the active file, resuming after a restart,
rotating by size and daily, and removing the oldest rotated files (docs/audit.md).

:class:`ChainWriter` holds the active file and the chain's state under one lock;
:class:`gateway.audit.trail.AuditTrail` builds the trail's API on it, and
:class:`gateway.audit.upkeep.Upkeep` (compression, retention, the daily check of a quiet
trail) calls :meth:`ChainWriter.rotate_if_daily_due` and :meth:`ChainWriter.remove_rotated`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from gateway.audit.chain import (
    AUDIT_PRUNE,
    AUDIT_ROTATE,
    GENESIS,
    Entry,
    EntryError,
    Linker,
    encode_entry,
    epoch_seconds,
    rfc3339,
)
from gateway.audit.files import (
    fsync_directory,
    plain_name,
    read_first_entry,
    rotated_files,
    rotated_name,
    write_all,
)
from gateway.audit.metrics import AuditMetrics, Failures
from gateway.audit.resume import AuditError, plan_resume
from gateway.audit.retention import Removal, Summary
from gateway.audit.upkeep import Upkeep
from gateway.logfiles.config import FreeSpaceThresholds, next_daily
from gateway.logfiles.status import DiskUsage, FileStatus


@dataclass(frozen=True)
class Head:
    """The newest entry: its ``seq``, its hash (the next entry's ``prev``) and its file."""

    seq: int
    hash: str
    file: Path


class ChainWriter:
    """The active file of the trail in ``path`` and the chain's state (see the module).

    The defaults rotate by size only and keep every file as written; ``background=False``
    runs no maintenance thread (call :meth:`maintain` yourself).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        key: bytes | None = None,
        max_size: int = 100 * 1024 * 1024,
        max_files: int | None = None,
        daily_at: str | None = None,
        compress: bool = False,
        max_age: float | None = None,
        check_interval: float = 60.0,
        free_space: FreeSpaceThresholds | None = None,
        sync_interval: float = 1.0,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
        usage: DiskUsage | None = None,
        background: bool = True,
    ) -> None:
        self.path = Path(path)
        self.linker = Linker(key)
        self.max_size = max_size
        self.max_files = max_files
        self.daily_at = daily_at
        self.sync_interval = sync_interval
        self.clock = clock
        self.metrics = None if registry is None else AuditMetrics(registry)
        upkept = compress or not (max_age is None and max_files is None and daily_at is None)
        self._upkeep = Upkeep(
            self, compress=compress, max_age=max_age, max_files=max_files,
            check_interval=check_interval, free_space=free_space, usage=usage,
            background=background and upkept,
        )  # fmt: skip
        self._error = Failures(self.path, self.metrics, self._upkeep.tracker)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._reopen = False  # a failed write left the file in doubt: re-read it first
        self._size = 0
        self._seq = 0
        self._head = GENESIS
        self._last_line, self._last_time = b"", 0.0  # the newest entry: summarised at rotation
        self._next_daily: float | None = None
        self._first_seq: int | None = None
        self._file_entries = 0
        self._written = 0
        self._dirty = False
        self._rotating = False
        self._pruned: set[str] = set()  # recorded by an audit.prune entry, not removed yet

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

    def status(self) -> FileStatus:
        """The rotation status of the trail's files (``/health``'s ``log_files``)."""
        return self._upkeep.status(self._size)

    def maintain(self) -> None:
        """One maintenance pass now: daily rotation, retention, compression (thread safe)."""
        self._upkeep.run()

    # --- what maintenance calls --------------------------------------------------------------

    def rotate_if_daily_due(self) -> None:
        """Rotate the active file if its day has turned (a quiet trail too)."""
        with self._lock:
            now = self.clock()
            if self._fd is not None and self._daily_due(now):
                self._rotate("daily", now)

    def remove_rotated(self, removals: Sequence[Removal]) -> None:
        """Remove the oldest rotated files, each recorded first by an ``audit.prune`` entry
        naming its ``seq`` range and last hash (written and fsynced before the file goes, so a
        full disk keeps the file); stop at the first that is no longer the oldest."""
        with self._lock, self._not_rotating():
            if self._fd is None and not self._reopen:
                return  # closed
            for path, reason, summary in removals:
                rotated = [p for _, p in rotated_files(self.path)]
                if not rotated or rotated[0] != path:
                    break
                if not self._record_prune(path, reason, summary, rotated):
                    return
                try:
                    path.unlink()
                except OSError as exc:  # recorded: the next pass removes it without a new entry
                    self._error(f"removing {path.name}", exc, "cleanup")
                    return
                self._pruned.discard(plain_name(path))
                self._upkeep.removed(path, reason)
            if removals:
                fsync_directory(self.path.parent)
            self._upkeep.tracker.succeeded("cleanup")

    def _record_prune(self, path: Path, reason: str, summary: Summary, rotated: list[Path]) -> bool:
        """Write and fsync ``path``'s ``audit.prune`` entry (once per process: a file whose
        removal failed after it is not recorded again); False when it cannot be."""
        if plain_name(path) in self._pruned:
            return True
        following = rotated[1] if len(rotated) > 1 else self.path
        try:
            successor = read_first_entry(following)
            if successor is None:
                return False
            last_hash = self.linker.link(summary.last_line, successor.alg)
        except (OSError, EntryError, ValueError) as exc:
            self._error(f"removing {path.name}", exc, "cleanup")
            return False
        entry = self._append(AUDIT_PRUNE, None, {
            "file": path.name, "first_seq": summary.first_seq,
            "last_seq": summary.last_seq, "last_hash": last_hash, "reason": reason,
        })  # fmt: skip
        try:
            if entry is None or self._fd is None:
                raise OSError("its audit.prune entry could not be written")
            os.fsync(self._fd)
        except OSError as exc:
            self._upkeep.tracker.failed("cleanup", OSError(f"{path.name} kept: {exc}"))
            return False
        self._pruned.add(plain_name(path))
        return True

    # --- inside the lock ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _not_rotating(self) -> Iterator[None]:
        """Entries written inside do not rotate the file (a removal's ``audit.prune``, the
        stop's entries): the file may pass ``max_size`` by them, as it did before."""
        rotating, self._rotating = self._rotating, True
        try:
            yield
        finally:
            self._rotating = rotating

    def _append(self, action: str, actor: str | None, details: dict[str, Any]) -> Entry | None:
        now = self.clock()
        if self._fd is not None and self._daily_due(now):
            self._rotate("daily", now)  # this entry starts the new day's file
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
            seq=self._seq + 1, time=rfc3339(now), action=action, actor=actor,
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
        self._last_line, self._last_time = line, now
        self._file_entries += 1
        self._written += 1
        self._dirty = True
        if self.metrics is not None:
            self.metrics.entries.labels(action).inc()
        if self.sync_interval == 0:
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
        self._upkeep.tracker.succeeded("write")
        if self._size >= self.max_size and self._file_entries > 1 and not self._rotating:
            self._rotate("size", now)
        return entry

    def _daily_due(self, now: float) -> bool:
        if self._rotating or self._next_daily is None or now < self._next_daily:
            return False
        if self._size == 0:  # nothing to rotate: the empty file starts the new day
            self._next_daily = next_daily(self.daily_at, now)
            return False
        return True

    def _write_failed(self, exc: OSError) -> None:
        self._error("write", exc)
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, self._size)  # no half-written line stays behind
        except OSError:
            os.close(self._fd)
            self._fd, self._reopen = None, True

    def _resume(self) -> None:
        plan = plan_resume(self.path, self.linker)
        self._open_active()
        now = self.clock()
        self._next_daily = next_daily(self.daily_at, now)
        if plan.last is None:
            self._seq, self._head, self._first_seq, self._file_entries = 0, GENESIS, 1, 0
            return
        self._seq, self._head = plan.last.seq, self.linker.link(plan.last_line)
        self._last_line = plan.last_line
        self._last_time = epoch_seconds(plan.last.time) or now
        if plan.first_entry is None:
            self._first_seq = plan.first_seq
            self._file_entries = 2  # not a new file: it may rotate after audit.start
            self._next_daily = next_daily(self.daily_at, plan.started or now)
            return
        self._first_seq, self._file_entries = self._seq + 1, 0
        action, details = plan.first_entry
        if self._append(action, None, details) is None:
            raise AuditError(f"{self.path}: cannot write the first entry of a new file")

    def _open_active(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size

    def _rotate(self, reason: str, now: float) -> None:
        assert self._fd is not None
        self._rotating = True
        try:
            size, first = self._size, self._first_seq or self._seq
            try:
                os.fsync(self._fd)
                target = rotated_name(self.path, first)
                os.rename(self.path, target)
            except OSError as exc:  # keep writing to the same, larger, file
                self._error("rotation", exc, "rotate")
                if reason == "daily":  # not again at every entry
                    self._next_daily = now + self._upkeep.check_interval
                return
            os.close(self._fd)
            self._fd = None
            fsync_directory(self.path.parent)
            summary = Summary(first, self._seq, self._last_line, self._last_time)
            self._upkeep.rotated(reason, now, target, summary)
            self._next_daily = next_daily(self.daily_at, now)
            try:
                self._open_active()
            except OSError as exc:
                self._error("rotation", exc, "rotate")
                self._reopen = True  # the next entry resumes from the rotated file
                return
            self._first_seq, self._file_entries = self._seq + 1, 0
            details = {"previous_file": target.name, "previous_last_seq": self._seq,
                       "previous_size": size, "reason": reason}  # fmt: skip
            self._append(AUDIT_ROTATE, None, details)
        finally:
            self._rotating = False
