"""The disk spool's blocking file work, done in worker threads (see :mod:`exporters.spool`).

Each open file descriptor belongs to a :class:`HeldFile`, so that whichever thread finishes a
segment can release the descriptors other threads keep on it: a deleted file whose descriptor
stays open keeps its disk space, and a full disk would never empty. Reading is record by record;
a record that checks out but does not decode is reported as such (skip just it), and damage is
reported with the offset of the next record that checks out (skip just the damaged bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from exporters.spool_files import (
    HEADER,
    MAGIC,
    OVERHEAD,
    PREFIX,
    SIGNALS,
    Segment,
    check_payload,
    encode_ack,
    encode_head,
    fsync_dir,
    pwrite_all,
    quarantine,
)
from gateway.otlp.batch import Batch, Signal

log = logging.getLogger("otelgate.spool")

PROBE_NAME = "PROBE.tmp"
_CHUNK = 1 << 20  # bytes read at a time while looking for the next intact record


@dataclass(slots=True)
class Pending:
    """A batch waiting for its group commit."""

    signal: Signal
    items: int
    payload: bytes
    future: asyncio.Future[None]


Plan = list[tuple[Segment, int, list[Pending]]]
"""Per segment of a group commit: the offset its records start at, and the records."""


class Record(NamedTuple):
    """The record read: the offset it ends at, and its batch."""

    end: int
    batch: Batch


class Acked(NamedTuple):
    """A record acknowledged before a restart: only its end is needed."""

    end: int


class Unreadable(NamedTuple):
    """A record whose length and CRC check out but whose payload protobuf cannot decode."""

    end: int
    signal: Signal
    items: int
    error: str


class Damaged(NamedTuple):
    """No intact record at the offset read; ``resume`` is the next one that checks out
    (or the segment's size when there is none)."""

    resume: int


Outcome = Record | Acked | Unreadable | Damaged


class HeldFile:
    """One segment file kept open between uses; any thread may release it (thread-safe)."""

    def __init__(self, flags: int) -> None:
        self._flags = flags | os.O_CLOEXEC
        self._lock = threading.Lock()
        self._held: tuple[Segment, int] | None = None

    @contextlib.contextmanager
    def use(self, seg: Segment) -> Iterator[tuple[int, bool]]:
        """The descriptor of ``seg`` (opened if needed, closing the previous file) and whether
        it was opened just now; nobody can release it meanwhile."""
        with self._lock:
            opened = False
            if self._held is None or self._held[0] is not seg:
                self._close()
                self._held, opened = (seg, os.open(seg.path, self._flags, 0o644)), True
            yield self._held[1], opened

    def release(self, seg: Segment | None = None) -> None:
        """Close the file if it is ``seg``'s (any file when ``seg`` is None)."""
        if seg is not None and self.segment is not seg:
            return  # a finished segment is never opened again: no need to wait for the lock
        with self._lock:
            if self._held is not None and (seg is None or self._held[0] is seg):
                self._close()

    @property
    def segment(self) -> Segment | None:
        held = self._held
        return None if held is None else held[0]

    def _close(self) -> None:
        if self._held is not None:
            fd, self._held = self._held[1], None
            os.close(fd)


def write_plan(directory: Path, file: HeldFile, plan: Plan) -> None:
    """Write each segment's part of a group commit, then fdatasync it. On failure every part
    is truncated away and the file is closed (the spool seals it and moves on)."""
    for i, (seg, offset, records) in enumerate(plan):
        buffers: list[bytes] = []
        for r in records:
            buffers += (encode_head(r.signal, r.items, r.payload), r.payload)
        try:
            with file.use(seg) as (fd, opened):
                try:
                    pwrite_all(fd, buffers, offset)
                    os.fdatasync(fd)
                    if opened:
                        fsync_dir(directory)
                except OSError:
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, offset)
                    raise
        except OSError:
            file.release()
            for done, start, _ in plan[:i]:  # its clients hear of the failure: no duplicates
                with contextlib.suppress(OSError):
                    os.truncate(done.path, start)
            raise


def probe(directory: Path, nbytes: int) -> None:
    """Write ``nbytes`` to a scratch file and sync them, then delete it: raises ``OSError``
    while the spool's filesystem cannot take that much."""
    path = directory / PROBE_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        pwrite_all(fd, [bytes(nbytes)], 0)
        os.fdatasync(fd)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)


def read_record(file: HeldFile, seg: Segment, pos: int, size: int, skip: bool) -> Outcome:
    """The record at ``pos`` of ``seg``, whose first ``size`` bytes are synced."""
    with file.use(seg) as (fd, _):
        found = _checked(fd, pos, size, with_payload=not skip)
        if found is None:
            return Damaged(_next_intact(fd, pos, size))
        end, signal, items, payload = found
        if skip:
            return Acked(end)
        try:
            request = signal.request_type.FromString(payload)
        except Exception as exc:  # e.g. nested deeper than protobuf's decoding limit
            return Unreadable(end, signal, items, f"{type(exc).__name__}: {exc}")
        return Record(end, Batch(signal, request, items, payload))


def _checked(
    fd: int, pos: int, size: int, *, with_payload: bool = True
) -> tuple[int, Signal, int, bytes] | None:
    """End, signal, items and payload of the record at ``pos`` if its header checks out (and
    its CRC, when the payload is read); None if not."""
    head = os.pread(fd, OVERHEAD, pos)
    if len(head) < OVERHEAD:
        return None
    magic, length, _ = HEADER.unpack_from(head)
    end = pos + HEADER.size + length
    code, items = PREFIX.unpack_from(head, HEADER.size)
    signal = SIGNALS.get(code)
    if magic != MAGIC or length < PREFIX.size or end > size or signal is None:
        return None
    if not with_payload:
        return end, signal, items, b""
    payload = os.pread(fd, length - PREFIX.size, pos + OVERHEAD)
    if len(payload) != length - PREFIX.size or not check_payload(head, payload):
        return None
    return end, signal, items, payload


def _next_intact(fd: int, pos: int, size: int) -> int:
    """The offset of the first record after ``pos`` that checks out, else ``size``
    (like :func:`exporters.spool_files.scan`, but reading a chunk at a time)."""
    start = pos + 1
    while start < size:
        window = os.pread(fd, min(_CHUNK, size - start) + len(MAGIC) - 1, start)
        found = window.find(MAGIC)
        if found >= 0:
            if _checked(fd, start + found, size) is not None:
                return start + found
            start += found + 1
        elif len(window) <= len(MAGIC) - 1:
            break  # the file is shorter than it should be
        else:
            start += len(window) - (len(MAGIC) - 1)
    return size


class AckFiles:
    """The ack files of the live segments, and the removal of finished segments."""

    def __init__(self, directory: Path, release: Callable[[Segment], None]) -> None:
        self.directory = directory
        self._release = release  # closes other threads' descriptors of a finished segment
        self._fds: dict[int, int] = {}

    def apply(
        self, ops: list[tuple[Segment, int]], on_quarantine: Callable[[Path], None] | None
    ) -> None:
        """Append acks (one write per segment), then delete the finished segments (``offset``
        -1), or move a damaged one to quarantine/."""
        acks: dict[Segment, bytearray] = {}
        retired = [seg for seg, offset in ops if offset < 0]
        for seg, offset in ops:
            if offset >= 0 and seg not in retired:
                acks.setdefault(seg, bytearray()).extend(encode_ack(offset))
        for seg, data in acks.items():
            fd = self._fds.get(seg.id)
            if fd is None:
                flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
                fd = self._fds[seg.id] = os.open(seg.ack_path, flags, 0o644)
            os.write(fd, data)
        for seg in retired:
            if (fd := self._fds.pop(seg.id, None)) is not None:
                os.close(fd)
            self._release(seg)
            if seg.damaged and seg.path.exists():
                moved = quarantine(self.directory, seg.path, on_quarantine=on_quarantine)
                log.error("spool %s: damaged %s moved to %s", self.directory, seg.path.name, moved)
                continue
            seg.path.unlink(missing_ok=True)
            seg.ack_path.unlink(missing_ok=True)

    def close(self) -> None:
        """Sync and close every ack file."""
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.fsync(fd)
            os.close(fd)
        self._fds.clear()
