"""A managed file's rotation status: ``healthy | warning | critical`` from the free space of
its directory and from what failed, plus the counters its metrics export.

``critical``: writes are failing now, the directory can't be listed or its free space read,
or free space is below ``free_space.critical``. ``warning``: a rotation, compression or
cleanup failed (until that step next succeeds), or free space is below ``free_space.warning``
(below a level means below its ratio *and* its bytes). A step's problem clears when it next
succeeds.
"""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from gateway.logfiles.config import MIB, FreeSpaceThresholds

Level = Literal["healthy", "warning", "critical"]
Step = Literal["write", "rotate", "compress", "cleanup"]
LEVEL_VALUES: dict[Level, int] = {"healthy": 0, "warning": 1, "critical": 2}
DiskUsage = Callable[[str], tuple[int, int, int]]  # (total, used, free), like shutil's


def disk_usage(path: str) -> tuple[int, int, int]:
    """``shutil.disk_usage`` as a plain tuple: the default free-space probe, looked up at
    each call through :func:`probe` (so tests can replace it)."""
    usage = shutil.disk_usage(path)
    return usage.total, usage.used, usage.free


@dataclass(frozen=True, slots=True)
class FileStatus:
    """A snapshot of one managed file for ``/health`` and the metrics."""

    path: str
    level: Level
    reasons: list[str]
    size_bytes: int
    rotated_files: int
    free_bytes: int | None
    free_ratio: float | None
    last_rotation_at: float | None
    rotations: dict[str, int]  # by reason: size, daily
    compressed_bytes: int  # bytes of rotated files gzipped (before compression)
    gzip_bytes: int  # what they take once compressed
    removed_files: dict[str, int]  # by reason: age, count
    failures: dict[str, int]  # by step


def probe(usage: DiskUsage | None) -> DiskUsage:
    """``usage``, or this module's :func:`disk_usage` as it is now."""
    return usage if usage is not None else disk_usage


def space_level(free: int, total: int, thresholds: FreeSpaceThresholds) -> Level:
    """The level free space alone gives (pure)."""
    if thresholds.critical.below(free, total):
        return "critical"
    return "warning" if thresholds.warning.below(free, total) else "healthy"


@dataclass
class Tracker:
    """Counters and current problems of one file (thread safe)."""

    rotations: Counter[str] = field(default_factory=Counter)
    removed: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    compressed_bytes: int = 0
    gzip_bytes: int = 0
    last_rotation_at: float | None = None
    problems: dict[Step, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def failed(self, step: Step, error: BaseException) -> None:
        """``step`` failed: count it and remember why until it next succeeds."""
        with self._lock:
            self.failures[step] += 1
            self.problems[step] = f"{step} failed: {error}"

    def rotated(self, reason: str, at: float) -> None:
        """A rotation for ``reason`` (``size`` or ``daily``) at ``at``."""
        with self._lock:
            self.rotations[reason] += 1
            self.last_rotation_at = at
        self.succeeded("rotate")

    def compressed(self, source_bytes: int, gzip_bytes: int) -> None:
        """A rotated file of ``source_bytes`` now takes ``gzip_bytes``."""
        with self._lock:
            self.compressed_bytes += source_bytes
            self.gzip_bytes += gzip_bytes

    def removed_file(self, reason: str) -> None:
        """Retention removed a rotated file (``age`` or ``count``)."""
        with self._lock:
            self.removed[reason] += 1

    def succeeded(self, step: Step) -> None:
        """``step`` worked: its problem (if any) is over."""
        if step in self.problems:
            with self._lock:
                self.problems.pop(step, None)

    def level(self, free: int | None, total: int | None, thresholds: FreeSpaceThresholds,
              unreadable: Iterable[str] = ()) -> tuple[Level, list[str]]:  # fmt: skip
        """The status and its reasons (pure over the state and the free space given);
        ``unreadable``: why the directory could not be listed or measured (critical)."""
        with self._lock:
            problems = dict(self.problems)
        reasons = [problems[s] for s in ("write", "rotate", "compress", "cleanup") if s in problems]
        blind = list(unreadable)
        reasons += blind
        critical = "write" in problems or bool(blind)
        level: Level = "critical" if critical else "warning" if problems else "healthy"
        if free is not None and total is not None:
            space = space_level(free, total, thresholds)
            if space != "healthy":
                share = f", {free / total:.1%}" if total else ""
                reasons.append(f"{free / MIB:.0f} MiB free ({space}{share})")
                if LEVEL_VALUES[space] > LEVEL_VALUES[level]:
                    level = space
        return level, reasons


def degraded_reasons(files: Iterable[tuple[str, FileStatus]]) -> list[str]:
    """Why critical files make the gateway ``degraded``: one reason per ``(owner, status)``
    that is critical, naming the file (a warning is reported on the file only)."""
    return [
        f"log file {s.path} ({owner}) is critical: {'; '.join(s.reasons) or 'see /health'}"
        for owner, s in files
        if s.level == "critical"
    ]
