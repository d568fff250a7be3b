"""An append-only file of lines that rotates itself, gzips what it rotated and removes what
retention no longer keeps (docs/log-files.md).

The standard library's ``RotatingFileHandler`` and ``TimedRotatingFileHandler`` rotate by
size *or* time, shift names (``.1`` becomes ``.2``, so a crash in the middle of a shift can
overwrite a file), neither gzip nor remove by age, and do not repair a torn last line; the
file exporter needs the same for bytes, not log records. Hence this small writer:

- every line is written with one unbuffered ``write`` and is whole or cut back (a failed
  write truncates to the previous line end);
- rotation is a ``rename`` to a new, never reused name (:mod:`gateway.logfiles.naming`), so a
  line is always in the active file or the rotated one, never in neither; nothing else
  happens on the writer's thread (often the event loop): no fsync;
- on open, a last line without its newline (a process killed mid-write) is truncated away;
- a maintenance thread, woken at each rotation and every ``check_interval``, fsyncs each
  rotated file and the directory, applies retention and compresses
  (:mod:`gateway.logfiles.compress`, ``.retention``); a failing gzip backs off, and none
  starts while free space is critical;
- one writer per file: :class:`~gateway.logfiles.lock.WriterLock` is held while it is open;
- :meth:`RotatingFile.status` never raises (what it can't read makes the file critical).

Rotation happens before a write that would take the file past ``max_size`` (a single line
larger than that still goes into a file of its own), or at the first write or maintenance
pass after the next ``daily_at`` following the moment the file was started (its last write
time when the file existed before this process).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from gateway.logfiles import compress, naming, retention, status
from gateway.logfiles.config import RotationConfig
from gateway.logfiles.lock import WriterLock
from gateway.logfiles.status import DiskUsage, FileStatus, Tracker
from gateway.logfiles.worker import Periodic

log = logging.getLogger("otelgate.logfiles")
_TAIL_CHUNK = 64 * 1024
MAX_BACKOFF = 3600.0  # a failing gzip is retried after check_interval, doubling up to this


def _to_log(message: str) -> None:
    log.warning("%s", message)


class RotatingFile:
    """Lines appended to ``path`` with rotation, compression and retention (thread safe).

    ``now`` is the wall clock (injected by tests); ``usage`` the free-space probe (None:
    :func:`gateway.logfiles.status.disk_usage`, looked up at each call); ``background=False``
    runs no maintenance thread (call :meth:`maintain` yourself); ``report`` tells of problems
    (default: a WARNING on ``otelgate.logfiles``; the gateway's own log file writes them to
    stderr instead, as logging through itself could deadlock).
    """

    def __init__(
        self,
        path: str | Path,
        config: RotationConfig | None = None,
        *,
        now: Callable[[], float] = time.time,
        usage: DiskUsage | None = None,
        background: bool = True,
        report: Callable[[str], None] = _to_log,
    ) -> None:
        self.path = Path(path)
        self.config = config if config is not None else RotationConfig()
        self.now = now
        self.usage = usage
        self.report = report
        self.tracker = Tracker()
        self.repaired_bytes = 0  # torn last-line bytes truncated on open
        self._lock = threading.Lock()  # the active file
        self._maintaining = threading.Lock()  # compression, retention, start-up repair
        self._closing = threading.Event()
        self._owner = WriterLock(self.path)
        self._file: io.FileIO | None = None
        self._size = 0
        self._next_daily: float | None = None
        self._rotate_after = 0.0  # after a failed rotation: not again before this
        self._unsynced: list[Path] = []  # rotated, not fsynced yet (maintenance does it)
        self._sync_failed = False
        self._compress_failures = 0  # in a row
        self._compress_after = -math.inf  # after a failed gzip: not again before this
        self._logged: set[str] = set()
        self._worker = (
            Periodic(f"logfiles {self.path.name}", self._run, self.config.check_interval)
            if background
            else None
        )

    def __repr__(self) -> str:
        return f"RotatingFile({str(self.path)!r})"

    # --- the owner's calls ---------------------------------------------------------------

    def open(self) -> None:
        """Take the file's writer lock (:class:`~gateway.logfiles.lock.FileInUseError` if
        another writer has it), repair what a crash left (torn line, compression cut short),
        open the active file and start the maintenance thread."""
        self._closing.clear()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._owner.acquire()
        with self._maintaining:
            for leftover in compress.repair(self.path):
                self.report(f"removed {leftover} left by an interrupted compression")
        with self._lock:
            self._ensure_open()
            torn = self.repaired_bytes
        if torn:
            self.report(f"{self.path} ended in a torn line: {torn} bytes cut off")
        if self._worker is not None:
            self._worker.start()

    def write(self, line: bytes) -> None:
        """Append one line (ending in ``\\n``), rotating first when due. OSError when the
        line could not be written; then nothing of it is left in the file."""
        if not line.endswith(b"\n"):
            raise ValueError("a line must end with a newline")
        with self._lock:
            try:
                self._ensure_open()
                self._rotate_if_due(len(line), self.now())
                self._append(line)
            except OSError as exc:
                self.tracker.failed("write", exc)
                raise
        self.tracker.succeeded("write")

    def maintain(self) -> None:
        """Rotate if the day turned, fsync what was rotated, remove what retention no longer
        keeps, gzip rotated files. Runs in the maintenance thread; safe to call from anywhere."""
        with self._maintaining:
            now = self.now()
            with self._lock:
                if self._file is not None:
                    try:
                        self._rotate_if_due(0, now)
                    except OSError as exc:  # the new active file could not be opened
                        self.tracker.failed("write", exc)
            synced = self._sync_rotated()
            self._clean_up(now)
            if self.config.compress and synced:
                self._compress_rotated(now)
        self._report_new_problems()

    def close(self) -> None:
        """Stop maintenance (waiting a few seconds at most for a gzip in progress), fsync
        what was rotated and apply retention once more, close the active file and release
        its lock. A later :meth:`write` reopens it (and takes the lock again)."""
        self._closing.set()
        if self._worker is not None:
            self._worker.stop()
        if self._maintaining.acquire(blocking=False):
            try:
                self._sync_rotated()
                self._clean_up(self.now())
            finally:
                self._maintaining.release()
        with self._lock:
            handle, self._file = self._file, None
            if handle is not None:
                with contextlib.suppress(OSError):
                    handle.close()
            self._owner.release()

    def status(self) -> FileStatus:
        """The file's rotation status now (reads the free space of its directory). Never
        raises: a directory that can't be listed or measured makes it critical."""
        total: int | None = None
        free: int | None = None
        blind: list[str] = []
        directory = self.path.parent
        try:
            total, _, free = status.probe(self.usage)(str(directory))
        except FileNotFoundError:
            pass  # not created yet
        except (OSError, ValueError) as exc:
            blind.append(f"cannot read the free space of {directory}: {exc}")
        try:
            rotated = len(naming.rotated_files(self.path))
        except OSError as exc:
            rotated = 0
            blind.append(f"cannot list {directory}: {exc}")
        level, reasons = self.tracker.level(free, total, self.config.free_space, blind)
        t = self.tracker
        return FileStatus(
            path=str(self.path),
            level=level,
            reasons=reasons,
            size_bytes=self._size,
            rotated_files=rotated,
            free_bytes=free,
            free_ratio=free / total if free is not None and total else None,
            last_rotation_at=t.last_rotation_at,
            rotations=dict(t.rotations),
            compressed_bytes=t.compressed_bytes,
            gzip_bytes=t.gzip_bytes,
            removed_files=dict(t.removed),
            failures=dict(t.failures),
        )

    # --- under self._lock ----------------------------------------------------------------

    def _ensure_open(self) -> None:
        if self._file is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._owner.acquire()
        handle = open(self.path, "a+b", buffering=0)  # noqa: SIM115  (kept open)
        try:
            self._size = self._cut_torn_line(handle.fileno())
            info = os.fstat(handle.fileno())
        except OSError:
            handle.close()
            raise
        self._file = handle
        started = info.st_mtime if self._size else self.now()
        self._next_daily = self.config.next_daily(started)

    def _cut_torn_line(self, fd: int) -> int:
        """Truncate a last line that has no newline (a write cut short); the size kept."""
        size = os.fstat(fd).st_size
        end = size
        while end > 0:
            start = max(0, end - _TAIL_CHUNK)
            chunk = os.pread(fd, end - start, start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                end = start + newline + 1
                break
            end = start
        if end != size:
            os.ftruncate(fd, end)
            self.repaired_bytes += size - end
        return end

    def _append(self, line: bytes) -> None:
        handle = self._file
        assert handle is not None
        start = self._size
        try:
            view = memoryview(line)
            while view:
                written = handle.write(view)
                if not written:
                    raise OSError(f"short write to {self.path}")
                view = view[written:]
        except OSError:
            with contextlib.suppress(OSError):  # no partial line left behind
                os.ftruncate(handle.fileno(), start)
            raise
        self._size = start + len(line)

    def _due(self, incoming: int, now: float) -> str | None:
        daily = self._next_daily is not None and now >= self._next_daily
        if self._size == 0:
            if daily:  # nothing to rotate: the empty file starts the new day
                self._next_daily = self.config.next_daily(now)
            return None
        limit = self.config.max_size
        if incoming and limit is not None and self._size + incoming > limit:
            return "size"
        return "daily" if daily else None

    def _rotate_if_due(self, incoming: int, now: float) -> None:
        reason = self._due(incoming, now)
        if reason is None or now < self._rotate_after:
            return
        handle = self._file
        assert handle is not None
        try:
            target = naming.new_name(self.path, now, naming.listing(self.path))
            if target is None:  # this second's names are all taken: rotate in the next
                self._rotate_after = math.floor(now) + 1
                return
            os.rename(self.path, target)  # the handover; its fsync waits for maintenance
        except OSError as exc:  # keep writing to the active file; retry later
            self.tracker.failed("rotate", exc)
            self._rotate_after = now + self.config.check_interval
            return
        self._file = None
        with contextlib.suppress(OSError):
            handle.close()
        self._unsynced.append(target)
        self.tracker.rotated(reason, now)
        if self._worker is not None:
            self._worker.wake()
        self._ensure_open()

    # --- in maintenance (under self._maintaining) ----------------------------------------

    def _run(self) -> None:
        """The maintenance thread's pass: a bug is reported, and the thread goes on."""
        try:
            self.maintain()
        except Exception as exc:
            if not self._closing.is_set():
                self.report(f"maintenance of {self.path} failed: {exc!r}")

    def _sync_rotated(self) -> bool:
        """fsync the files rotated since the last pass, then the directory (their renames
        and the new active file); False when one failed (tried again next pass)."""
        with self._lock:
            pending = list(self._unsynced)
        if not pending:
            return True
        try:
            for path in pending:
                with contextlib.suppress(FileNotFoundError):  # removed by retention meanwhile
                    compress.fsync_file(path)
        except OSError as exc:
            self.tracker.failed("rotate", exc)
            self._sync_failed = True
            return False
        compress.fsync_directory(self.path.parent)
        with self._lock:
            del self._unsynced[: len(pending)]  # only appended to meanwhile
        if self._sync_failed:
            self._sync_failed = False
            self.tracker.succeeded("rotate")
        return True

    def _clean_up(self, now: float) -> None:
        cfg = self.config
        try:
            files = naming.rotated_files(self.path)
            for rotated, reason in retention.expired(files, now, cfg.max_age, cfg.max_files):
                rotated.path.unlink(missing_ok=True)
                self.tracker.removed_file(reason)
        except OSError as exc:
            self.tracker.failed("cleanup", exc)
        else:
            self.tracker.succeeded("cleanup")

    def _space_is_critical(self) -> bool:
        try:
            total, _, free = status.probe(self.usage)(str(self.path.parent))
        except (OSError, ValueError):
            return False  # unknown: try; a failure is reported as such
        return status.space_level(free, total, self.config.free_space) == "critical"

    def _compress_rotated(self, now: float) -> None:
        """Gzip the plain rotated files, oldest first; not while a failure backs off (the
        wait doubles per failure in a row, up to an hour) or free space is critical (a
        gzip needs room for its temporary file)."""
        if now < self._compress_after or self._space_is_critical():
            return
        try:
            files = naming.rotated_files(self.path)
            for rotated in files:
                if self._closing.is_set():
                    return
                if rotated.compressed:
                    continue
                try:
                    done = compress.compress(rotated.path)
                except FileNotFoundError:
                    continue  # removed meanwhile
                self.tracker.compressed(done.source_bytes, done.gzip_bytes)
        except OSError as exc:
            self.tracker.failed("compress", exc)
            self._compress_failures += 1
            wait = self.config.check_interval * 2.0 ** min(self._compress_failures - 1, 32)
            self._compress_after = now + min(wait, MAX_BACKOFF)
            return
        self._compress_failures = 0
        self.tracker.succeeded("compress")

    def _report_new_problems(self) -> None:
        if self._closing.is_set():  # the owner may hold a lock the report would need
            return
        current = set(self.tracker.problems.values())
        for problem in sorted(current - self._logged):
            self.report(f"{self.path}: {problem}")
        self._logged = current
