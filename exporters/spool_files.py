"""The disk spool's files: record and ack formats, and the start-up check of a spool directory.

One directory per exporter, guarded by an exclusive ``flock`` on its ``LOCK`` file::

    00000000000000000007.seg   records, appended and fdatasync'd before clients are answered
    00000000000000000007.ack   12-byte entries (record offset + CRC32) of finished records
    quarantine/                damaged files moved aside, never deleted by the gateway

A record is ``magic(4) length(4) crc32(4)``, then ``length`` bytes of body: ``signal(1)
items(4)`` and the serialized OTLP request. The CRC covers the length field and the body, so a
torn tail, a flipped bit or a foreign file is detected; after a damaged region the scanner
resynchronises on the next magic whose record checks out, so every intact record is recovered.
A damaged segment is moved to ``quarantine/`` and its intact, unacknowledged records are written
back under the segment's name, so the live directory only ever holds clean segments.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import mmap
import os
import shutil
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gateway.otlp.batch import Signal

log = logging.getLogger("otelgate.spool")

MAGIC = b"\xa7OGS"
HEADER = struct.Struct("<4sII")  # magic, body length, crc32(length field + body)
PREFIX = struct.Struct("<BI")  # signal code, items: the start of the body
ACK = struct.Struct("<QI")  # record offset, crc32 of the offset field
OVERHEAD = HEADER.size + PREFIX.size
CODES = {Signal.TRACES: 1, Signal.METRICS: 2, Signal.LOGS: 3}
SIGNALS = {code: signal for signal, code in CODES.items()}
_IOV_MAX = 512

Region = tuple[int, int, Signal | None, int]
"""``(start, end, signal, items)`` of a record; ``signal`` None marks a damaged region."""


class SpoolLockedError(OSError):
    """Another exporter or gateway process holds the spool directory."""


@dataclass(eq=False, slots=True)
class Segment:
    """One segment file and what the spool knows about it (a few counters, no records)."""

    id: int
    path: Path
    size: int = 0  # bytes written and synced
    planned: int = 0  # size plus the bytes of the write under way
    records: int = 0
    acked: int = 0  # includes records acknowledged before a restart
    read_pos: int = 0
    unread_records: int = 0
    unread: dict[Signal, int] = field(default_factory=dict)  # items not yet handed out
    skip: set[int] = field(default_factory=set)  # offsets acknowledged before a restart
    sealed: bool = False
    damaged: bool = False

    @property
    def ack_path(self) -> Path:
        return self.path.with_suffix(".ack")

    def add_unread(self, signal: Signal, items: int) -> None:
        self.records += 1
        self.unread_records += 1
        self.unread[signal] = self.unread.get(signal, 0) + items


@dataclass(slots=True)
class Recovery:
    """What a start-up found: undelivered records and items per signal, and the damage."""

    directory: Path
    records: int = 0
    items: dict[Signal, int] = field(default_factory=dict)
    bytes: int = 0
    corrupt_bytes: int = 0
    quarantined: list[Path] = field(default_factory=list)


def segment_path(directory: Path, sid: int) -> Path:
    return directory / f"{sid:020d}.seg"


def encode_head(signal: Signal, items: int, payload: bytes) -> bytes:
    """Header and body prefix of a record; the payload follows it on disk."""
    prefix = PREFIX.pack(CODES[signal], items)
    length = PREFIX.size + len(payload)
    crc = zlib.crc32(payload, zlib.crc32(prefix, zlib.crc32(length.to_bytes(4, "little"))))
    return HEADER.pack(MAGIC, length, crc) + prefix


def check_payload(head: bytes, payload: bytes) -> bool:
    """Whether ``payload`` matches the CRC in ``head`` (header and prefix as read)."""
    crc = HEADER.unpack_from(head)[2]
    body_start = zlib.crc32(head[HEADER.size :], zlib.crc32(head[4:8]))
    return zlib.crc32(payload, body_start) == crc


def encode_ack(offset: int) -> bytes:
    field_ = offset.to_bytes(8, "little")
    return ACK.pack(offset, zlib.crc32(field_))


def read_acks(path: Path) -> set[int]:
    """Offsets in an ack file whose entry checks out (a torn or damaged entry is ignored)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return set()
    offsets = set()
    for i in range(0, len(data) - ACK.size + 1, ACK.size):
        offset, crc = ACK.unpack_from(data, i)
        if zlib.crc32(data[i : i + 8]) == crc:
            offsets.add(offset)
    return offsets


def scan(buf: mmap.mmap) -> Iterator[Region]:
    """Every record and damaged region of a segment, in order."""
    pos, end = 0, len(buf)
    while pos < end:
        record = _parse(buf, pos)
        if record is not None:
            yield record
            pos = record[1]
            continue
        resync = buf.find(MAGIC, pos + 1)
        while resync >= 0 and _parse(buf, resync) is None:
            resync = buf.find(MAGIC, resync + 1)
        resync = end if resync < 0 else resync
        yield pos, resync, None, 0
        pos = resync


def _parse(buf: mmap.mmap, pos: int) -> Region | None:
    if pos + OVERHEAD > len(buf):
        return None
    magic, length, crc = HEADER.unpack_from(buf, pos)
    end = pos + HEADER.size + length
    if magic != MAGIC or length < PREFIX.size or end > len(buf):
        return None
    if zlib.crc32(buf[pos + HEADER.size : end], zlib.crc32(buf[pos + 4 : pos + 8])) != crc:
        return None
    code, items = PREFIX.unpack_from(buf, pos + HEADER.size)
    signal = SIGNALS.get(code)
    return None if signal is None else (pos, end, signal, items)


def lock_directory(directory: Path) -> int:
    """Create ``directory`` and hold an exclusive lock on it; returns the lock's fd."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / "LOCK", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SpoolLockedError(
            f"spool directory {directory} is in use by another exporter or process"
        ) from None
    return fd


class DirectoryCheck:
    """Checks a locked spool directory at start-up (in a worker thread)."""

    def __init__(self, directory: Path, on_quarantine: Callable[[Path], None] | None) -> None:
        self.directory = directory
        self.on_quarantine = on_quarantine

    def run(self) -> tuple[list[Segment], Recovery, int]:
        """Clean segments in order, the report, and the next free segment id."""
        report = Recovery(self.directory)
        for leftover in self.directory.glob("*.tmp"):
            leftover.unlink(missing_ok=True)
        ids = []
        for path in self.directory.glob("*.seg"):
            if path.stem.isdigit():
                ids.append(int(path.stem))
            else:
                log.warning("spool %s: ignoring %s (not a segment name)", self.directory, path)
        segments = [s for sid in sorted(ids) if (s := self._check(sid, report)) is not None]
        live = {s.id for s in segments}
        for ack in self.directory.glob("*.ack"):
            if not ack.stem.isdigit() or int(ack.stem) not in live:
                ack.unlink(missing_ok=True)
        for s in segments:
            report.bytes += s.size
            report.records += s.unread_records
            for signal, items in s.unread.items():
                report.items[signal] = report.items.get(signal, 0) + items
        return segments, report, max(ids, default=0) + 1

    def _check(self, sid: int, report: Recovery) -> Segment | None:
        seg = Segment(sid, segment_path(self.directory, sid), sealed=True)
        if seg.path.stat().st_size == 0:
            seg.path.unlink()
            seg.ack_path.unlink(missing_ok=True)
            return None
        acked = read_acks(seg.ack_path)
        with seg.path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            damage = 0
            for start, end, signal, items in scan(mm):
                if signal is None:
                    damage += end - start
                elif start in acked:
                    seg.records, seg.acked = seg.records + 1, seg.acked + 1
                    seg.skip.add(start)
                else:
                    seg.add_unread(signal, items)
            seg.size = seg.planned = len(mm)
            if damage:
                report.corrupt_bytes += damage
                return self._salvage(seg, mm, acked, damage, report)
        if seg.acked == seg.records:
            seg.path.unlink()
            seg.ack_path.unlink(missing_ok=True)
            return None
        return seg

    def _salvage(
        self, seg: Segment, mm: mmap.mmap, acked: set[int], damage: int, report: Recovery
    ) -> Segment | None:
        """Move a damaged segment to quarantine/, keeping its intact unacknowledged records."""
        moved = quarantine(self.directory, seg.path, copy=True, on_quarantine=self.on_quarantine)
        report.quarantined.append(moved)
        tmp = seg.path.with_suffix(".tmp")
        kept = Segment(seg.id, seg.path, sealed=True)
        with tmp.open("wb") as out:
            for start, end, signal, items in scan(mm):
                if signal is not None and start not in acked:
                    out.write(mm[start:end])
                    kept.add_unread(signal, items)
            out.flush()
            os.fsync(out.fileno())
            kept.size = kept.planned = out.tell()
        log.error(
            "spool %s: %s is damaged (%d bad byte(s)); quarantined as %s, %d intact record(s) "
            "kept", self.directory, seg.path.name, damage, moved, kept.records,
        )  # fmt: skip
        if not kept.records:
            tmp.unlink()
            seg.path.unlink()
            return None
        os.replace(tmp, seg.path)
        fsync_dir(self.directory)
        return kept


def quarantine(
    directory: Path,
    path: Path,
    *,
    copy: bool = False,
    on_quarantine: Callable[[Path], None] | None = None,
) -> Path:
    """Move (or, to rewrite it in place, link) ``path`` and its ack file to quarantine/."""
    folder = directory / "quarantine"
    folder.mkdir(exist_ok=True)
    target, n = folder / path.name, 1
    while target.exists():
        target, n = folder / f"{path.name}.{n}", n + 1
    if copy:
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)
    else:
        os.replace(path, target)
    ack = path.with_suffix(".ack")
    if ack.exists():  # moved, never kept: stale acks must not apply to a rewritten file
        os.replace(ack, target.with_name(target.name.replace(".seg", ".ack")))
    fsync_dir(directory)
    if on_quarantine is not None:
        on_quarantine(target)
    return target


def pwrite_all(fd: int, buffers: list[bytes], offset: int) -> None:
    """Write ``buffers`` at ``offset`` with as few system calls as possible."""
    for i in range(0, len(buffers), _IOV_MAX):
        chunk = buffers[i : i + _IOV_MAX]
        total = sum(map(len, chunk))
        done = os.pwritev(fd, chunk, offset)
        if done < total:  # rare for regular files: finish byte-wise
            rest = b"".join(chunk)[done:]
            while rest:
                n = os.pwrite(fd, rest, offset + total - len(rest))
                rest = rest[n:]
        offset += total


def fsync_dir(directory: Path) -> None:
    """Make file creations, renames and removals in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with contextlib.suppress(OSError):  # some filesystems refuse fsync on directories
            os.fsync(fd)
    finally:
        os.close(fd)
