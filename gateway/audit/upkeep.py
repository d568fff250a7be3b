"""Upkeep of an audit trail's rotated files (docs/audit.md#rotation-compression-and-retention).

A maintenance thread (:class:`gateway.logfiles.worker.Periodic`), woken at each rotation and
every ``check_interval``: it rotates a quiet trail whose day has turned, removes the oldest
rotated files that retention no longer keeps (the trail records each removal in the chain),
and gzips the others with :func:`gateway.logfiles.compress.compress` (crash-safe: the plain
file or the complete ``.gz`` always exists). At start, :meth:`Upkeep.repair` removes what a
compression cut short left; the plain files a crash left uncompressed are gzipped by the first
pass. It also keeps the trail's rotation status for ``/health`` and ``otelgate_log_file_*``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from gateway.audit.files import interrupted, is_gzip, rotated_files
from gateway.audit.retention import Reason, Removal, Summaries, Summary, expired
from gateway.logfiles import compress
from gateway.logfiles.config import FreeSpaceThresholds
from gateway.logfiles.status import DiskUsage, FileStatus, Tracker, probe
from gateway.logfiles.worker import Periodic

log = logging.getLogger("otelgate.audit")


class Maintained(Protocol):
    """What upkeep needs of the trail it keeps."""

    path: Path
    clock: Callable[[], float]

    def rotate_if_daily_due(self) -> None:
        """Rotate now if the active file's day has turned."""
        ...

    def remove_rotated(self, removals: Sequence[Removal]) -> None:
        """Remove these oldest rotated files, recording each in the chain."""
        ...


class Upkeep:
    """Compression, retention and the daily check of one trail; its rotation status."""

    def __init__(
        self,
        trail: Maintained,
        *,
        compress: bool = False,
        max_age: float | None = None,
        max_files: int | None = None,
        check_interval: float = 60.0,
        free_space: FreeSpaceThresholds | None = None,
        usage: DiskUsage | None = None,
        background: bool = True,
    ) -> None:
        self.trail = trail
        self.compress = compress
        self.max_age, self.max_files = max_age, max_files
        self.check_interval = check_interval
        self.free_space = free_space or FreeSpaceThresholds()
        self.usage = usage
        self.tracker = Tracker()
        self.summaries = Summaries()
        self._maintaining = threading.Lock()
        self._closing = threading.Event()
        self._logged: set[str] = set()
        name = f"audit {trail.path.name}"
        self._worker = Periodic(name, self.run, check_interval) if background else None

    def repair(self) -> None:
        """Remove what an interrupted compression left (a ``.gz.tmp``, a plain file whose
        ``.gz`` is complete). Call it holding the trail's lock file, before :meth:`start`."""
        for leftover in interrupted(self.trail.path):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
            log.warning("removed %s left by an interrupted compression", leftover)

    def start(self) -> None:
        """Start the maintenance thread (its first pass is at once)."""
        self._closing.clear()
        if self._worker is not None:
            self._worker.start()

    def stop(self) -> None:
        """Stop the thread (after the file it is compressing) and apply retention once more."""
        self._closing.set()
        if self._worker is not None:
            self._worker.stop()
        with self._maintaining:
            self.retain(self.trail.clock())

    def rotated(self, reason: str, at: float, path: Path, summary: Summary) -> None:
        """The trail rotated its active file to ``path`` (writer's thread, under its lock)."""
        self.tracker.rotated(reason, at)
        self.summaries.remember(path, summary)
        if self._worker is not None:
            self._worker.wake()

    def removed(self, path: Path, reason: Reason) -> None:
        """Retention removed ``path`` (recorded in the chain)."""
        self.summaries.forget(path)
        self.tracker.removed_file(reason)

    def run(self) -> None:
        """One pass: the daily rotation of a quiet trail, retention, then compression."""
        with self._maintaining:
            self.trail.rotate_if_daily_due()
            self.retain(self.trail.clock())
            if self.compress:
                self._compress_rotated()
        current = set(self.tracker.problems.values())
        for problem in sorted(current - self._logged):
            log.warning("audit trail %s: %s", self.trail.path, problem)
        self._logged = current

    def retain(self, now: float) -> None:
        """Remove (through the trail, which records them) the files retention drops."""
        if self.max_age is None and self.max_files is None:
            return
        files = [path for _, path in rotated_files(self.trail.path)]
        plan = expired(files, self.summaries, now, self.max_age, self.max_files)
        self.trail.remove_rotated(plan.removals)
        if plan.blocked is not None:  # after the removals, whose success clears "cleanup"
            self.tracker.failed("cleanup", plan.blocked)

    def _compress_rotated(self) -> None:
        for _, path in rotated_files(self.trail.path):
            if self._closing.is_set():
                return
            if is_gzip(path):
                continue
            try:
                done = compress.compress(path)
            except FileNotFoundError:
                continue  # removed meanwhile
            except OSError as exc:
                self.tracker.failed("compress", exc)
                return
            self.tracker.compressed(done.source_bytes, done.gzip_bytes)
        self.tracker.succeeded("compress")

    def status(self, size: int) -> FileStatus:
        """The rotation status of the trail, whose active file holds ``size`` bytes."""
        path = self.trail.path
        total: int | None = None
        free: int | None = None
        with contextlib.suppress(OSError):
            total, _, free = probe(self.usage)(str(path.parent))
        level, reasons = self.tracker.level(free, total, self.free_space)
        t = self.tracker
        return FileStatus(
            path=str(path), level=level, reasons=reasons, size_bytes=size,
            rotated_files=len(rotated_files(path)), free_bytes=free,
            free_ratio=free / total if free is not None and total else None,
            last_rotation_at=t.last_rotation_at, rotations=dict(t.rotations),
            compressed_bytes=t.compressed_bytes, gzip_bytes=t.gzip_bytes,
            removed_files=dict(t.removed), failures=dict(t.failures),
        )  # fmt: skip
