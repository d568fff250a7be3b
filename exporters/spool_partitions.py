"""Spool partitions of ``service.workers``: one per process, and adopting the orphaned ones.

A spool directory is locked by one process, so with ``service.workers: N`` (N > 1) every process
spools under the exporter's spool root ``D`` in a partition of its own: ``D/worker-<k>`` for
worker k and ``D/supervisor`` for the supervisor. With one process the spool is ``D`` itself.

When a spool opens (its own partition locked, before it takes data) it adopts the partitions no
live process owns, so a change of N strands nothing (:func:`claims`): worker k takes
``worker-<j>`` for every j >= N with j % N == k, worker 0 also the segments spooled directly in
``D`` by a single process, and a single process takes every ``worker-<j>`` and ``supervisor``.
The supervisor adopts nothing. An orphan is adopted only under its own lock: one a process still
holds (an older gateway draining it) is left alone with a warning, for a later start.

Adopting moves each segment, oldest first, to the next free segment id of the own partition, so
the adopted batches are read after the own leftovers and in their own order. The move is
crash-safe (:meth:`_Target.take`): the segment's ack file is copied and synced first, then the
segment is renamed and both directories synced, and only then is the old ack file removed. An
interruption at any point leaves every record in exactly one place, or with the EXDEV fallback
(a partition on another filesystem: copy, sync, rename, unlink) possibly in two, which only means
a duplicate: delivery is at-least-once. An ack copy whose segment never arrived is ignored (new
ids start above every id in use) and deleted by the spool's start-up check.
"""

from __future__ import annotations

import errno
import logging
import mmap
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from exporters.spool_files import (
    SpoolLockedError,
    fsync_dir,
    lock_directory,
    read_acks,
    scan,
    segment_path,
)
from gateway.otlp.batch import Signal

__all__ = [
    "SUPERVISOR_PARTITION", "AdoptionReport", "Partitioning", "adopt_orphans", "claims",
    "orphans_for", "worker_index", "worker_partition",
]  # fmt: skip

log = logging.getLogger("otelgate.spool")

SUPERVISOR_PARTITION = "supervisor"
_WORKER = re.compile(r"worker-(0|[1-9][0-9]*)")


def worker_partition(index: int) -> str:
    """The partition of worker ``index``: ``worker-<index>``."""
    if index < 0:
        raise ValueError(f"a worker index is >= 0, not {index}")
    return f"worker-{index}"


def worker_index(name: str) -> int | None:
    """k for a partition named ``worker-<k>``, else None."""
    match = _WORKER.fullmatch(name)
    return None if match is None else int(match.group(1))


def claims(partition: str | None, workers: int, name: str) -> bool:
    """Whether the process of ``partition`` (None: the single process) among ``workers``
    adopts the partition ``name`` (a directory under the spool root)."""
    index = worker_index(name)
    if partition is None:
        return index is not None or name == SUPERVISOR_PARTITION
    own = worker_index(partition)
    return own is not None and index is not None and index >= workers and index % workers == own


def orphans_for(root: Path, partition: str | None, workers: int) -> list[Path]:
    """The directories whose segments the process of ``partition`` adopts, in adoption order:
    ``root`` itself (its loose segments) for worker 0 of several, then the claimed partitions
    by worker index, ``supervisor`` last. Only existing directories are listed."""
    if not root.is_dir():
        return []
    found = [root] if workers > 1 and partition == worker_partition(0) else []
    names = [e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=False)]
    claimed = [n for n in names if claims(partition, workers, n)]
    claimed.sort(key=lambda n: (worker_index(n) is None, worker_index(n) or 0))
    return found + [root / n for n in claimed]


@dataclass(frozen=True, slots=True)
class Partitioning:
    """Where one process spools under an exporter's spool ``root``, and what it adopts."""

    root: Path
    partition: str | None = None  # worker_partition(k) or SUPERVISOR_PARTITION; None: single
    workers: int = 1  # service.workers

    def __post_init__(self) -> None:
        index = None if self.partition is None else worker_index(self.partition)
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, not {self.workers}")
        if self.partition is None and self.workers > 1:
            raise ValueError(f"with {self.workers} workers every process needs a partition")
        if self.partition is not None and self.workers == 1:
            raise ValueError("a single process spools in the root, without a partition")
        if self.partition not in (None, SUPERVISOR_PARTITION) and index is None:
            raise ValueError(f"not a spool partition: {self.partition!r}")
        if index is not None and index >= self.workers:
            raise ValueError(f"{self.partition} does not exist with {self.workers} workers")

    @property
    def directory(self) -> Path:
        """This process's spool directory."""
        return self.root if self.partition is None else self.root / self.partition

    def adopt(self) -> list[AdoptionReport]:
        """Adopt the orphans into :attr:`directory`; the caller holds its lock (blocking)."""
        return adopt_orphans(self.directory, orphans_for(self.root, self.partition, self.workers))


@dataclass(slots=True)
class AdoptionReport:
    """What was adopted from one orphan: segments, bytes, undelivered batches and items."""

    source: Path
    locked: bool = False  # another process holds it: nothing was adopted
    segments: int = 0
    bytes: int = 0
    batches: int = 0
    items: dict[Signal, int] = field(default_factory=dict)
    error: str | None = None  # the move stopped here; the rest stays for a later start

    def count(self, path: Path) -> None:
        """Count the segment at ``path`` (its unacknowledged, intact records)."""
        size = path.stat().st_size
        self.segments, self.bytes = self.segments + 1, self.bytes + size
        if not size:
            return
        acked = read_acks(path.with_suffix(".ack"))
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            for start, _, signal, items in scan(mm):
                if signal is not None and start not in acked:
                    self.batches += 1
                    self.items[signal] = self.items.get(signal, 0) + items


def adopt_orphans(own: Path, orphans: Sequence[Path]) -> list[AdoptionReport]:
    """Move the segments (with their ack files) of each of ``orphans`` into ``own``, taking
    each orphan's lock first; the caller holds ``own``'s lock. Blocking: run it in a thread.
    A locked orphan is skipped with a warning; an I/O error stops that orphan's move (logged)."""
    target = _Target(own)
    reports = []
    for orphan in orphans:
        if orphan.resolve() == own.resolve() or not orphan.is_dir():
            continue
        report = AdoptionReport(orphan)
        try:
            fd = lock_directory(orphan)
        except SpoolLockedError:
            report.locked = True
            log.warning(
                "spool %s: %s is locked by another process (still draining it?); its batches "
                "are left there and adopted at a later start", own, orphan,
            )  # fmt: skip
            reports.append(report)
            continue
        try:
            target.adopt(orphan, report)
        except OSError as exc:
            report.error = str(exc)
            log.error("spool %s: adopting %s stopped: %s; the rest stays there", own, orphan, exc)
        finally:
            os.close(fd)  # releases the flock
        if report.segments:
            log.info(
                "spool %s: adopted %d batch(es) (%s), %d byte(s) in %d segment(s) from %s",
                own, report.batches, _describe(report.items), report.bytes, report.segments,
                orphan,
            )  # fmt: skip
        reports.append(report)
    return reports


class _Target:
    """The own partition segments move to, with the next free segment id."""

    def __init__(self, own: Path) -> None:
        self.own = own
        # Above every segment *and* ack id: an ack copied by an interrupted move never pairs.
        self.next_id = max(_ids(own.glob("*.seg")) + _ids(own.glob("*.ack")), default=0) + 1

    def adopt(self, orphan: Path, report: AdoptionReport) -> None:
        """Move every segment of ``orphan`` (locked) here, oldest first."""
        for leftover in orphan.glob("*.tmp"):  # the spool's scratch files; never data
            leftover.unlink(missing_ok=True)
        for sid in sorted(_ids(orphan.glob("*.seg"))):
            src = segment_path(orphan, sid)
            report.count(src)
            self.take(src)
        live = set(_ids(orphan.glob("*.seg")))
        for ack in orphan.glob("*.ack"):  # left by an interrupted move: their segment is here
            if ack.stem.isdigit() and int(ack.stem) not in live:
                ack.unlink(missing_ok=True)
        fsync_dir(orphan)

    def take(self, src: Path) -> None:
        """Move one segment and its acks: ack copy synced, segment renamed, old acks removed."""
        dst = segment_path(self.own, self.next_id)
        self.next_id += 1
        src_ack, dst_ack = src.with_suffix(".ack"), dst.with_suffix(".ack")
        if src_ack.exists():
            _copy_synced(src_ack, dst_ack)
            fsync_dir(self.own)
        _rename(src, dst)
        fsync_dir(self.own)
        fsync_dir(src.parent)
        src_ack.unlink(missing_ok=True)


def _rename(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``; across filesystems copy, sync, rename, then unlink."""
    try:
        os.rename(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        tmp = dst.with_name(dst.name + ".tmp")  # the start-up check removes a leftover
        _copy_synced(src, tmp)
        os.rename(tmp, dst)
        fsync_dir(dst.parent)
        src.unlink()


def _copy_synced(src: Path, dst: Path) -> None:
    with src.open("rb") as fin, dst.open("wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
        fout.flush()
        os.fsync(fout.fileno())


def _ids(paths: Iterable[Path]) -> list[int]:
    return [int(p.stem) for p in paths if p.stem.isdigit()]


def _describe(items: dict[Signal, int]) -> str:
    return ", ".join(f"{n} {signal.value}" for signal, n in items.items() if n) or "no items"
