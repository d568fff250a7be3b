"""A durable disk spool behind an exporter's queue (``sending_queue.storage: disk``).

The files and their format are described in :mod:`exporters.spool_files`. Appends that arrive in
the same event-loop moment share one write and one fdatasync (group commit), and a batch is
acknowledged to its client only after that. All file I/O runs in worker threads, so the event
loop never waits for the disk. Memory holds only the records being delivered and a few counters
per segment: batches are read back from disk when it is their turn, in the spool's order. Acks
are appended without fsync (a lost ack only means a duplicate: delivery is at-least-once), and a
segment is deleted once it is sealed and read and acknowledged to the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from exporters.spool_files import (
    HEADER,
    MAGIC,
    OVERHEAD,
    PREFIX,
    SIGNALS,
    DirectoryCheck,
    Recovery,
    Segment,
    SpoolLockedError,
    check_payload,
    encode_ack,
    encode_head,
    fsync_dir,
    lock_directory,
    pwrite_all,
    quarantine,
    segment_path,
)
from gateway.batch import Batch, Signal
from gateway.errors import BackpressureError

__all__ = [
    "Recovery", "Spool", "SpoolEntry", "SpoolLockedError", "SpoolWriteError",
    "default_directory", "record_size",
]  # fmt: skip

log = logging.getLogger("otelgate.spool")
MIB = 1024 * 1024


class SpoolWriteError(BackpressureError):
    """The spool could not write a batch; the client is told to retry (503)."""

    reason = "spool_error"
    http_status = 503


def default_directory(exporter_id: str, environ: Mapping[str, str] | None = None) -> Path:
    """``<OTELGATE_DATA_DIR or ./otelgate-data>/spool/<exporter id, percent-encoded>``."""
    env = os.environ if environ is None else environ
    base = env.get("OTELGATE_DATA_DIR") or "./otelgate-data"
    return Path(base) / "spool" / quote(exporter_id, safe="")


def record_size(batch: Batch) -> int:
    """Bytes ``batch`` takes in the spool."""
    return OVERHEAD + len(batch.serialized())


@dataclass(frozen=True, slots=True, eq=False)
class SpoolEntry:
    """A record handed to a consumer; give it back to :meth:`Spool.ack` when it is done."""

    batch: Batch
    segment: Segment
    offset: int


@dataclass(slots=True)
class _Pending:
    signal: Signal
    items: int
    payload: bytes
    future: asyncio.Future[None]


_Plan = list[tuple[Segment, int, list[_Pending]]]


class Spool:
    """Append-only segments of CRC-checked records with out-of-order acks (see module doc)."""

    def __init__(
        self,
        directory: str | Path,
        *,
        max_bytes: int = 1024 * MIB,
        segment_bytes: int | None = None,
        on_lost: Callable[[Signal, int], None] | None = None,
        on_quarantine: Callable[[Path], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or min(64 * MIB, max(MIB // 16, max_bytes // 16))
        self.on_lost = on_lost  # (signal, items) lost to damage found while reading
        self.on_quarantine = on_quarantine  # a file was moved to quarantine/
        self._segments: list[Segment] = []
        self._active: Segment | None = None
        self._next_id = 1
        self._bytes = 0
        self._buffer: list[_Pending] = []
        self._buffered = 0  # bytes accepted but not yet synced
        self._unread_records = self._unacked_records = self._unacked_items = 0
        self._readable = asyncio.Event()
        self._read_lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._io_task: asyncio.Task[None] | None = None
        self._read_job: asyncio.Future[tuple[int | None, Batch | None]] | None = None
        self._io_ops: list[tuple[Segment, int]] = []
        self._write_fd: tuple[Segment, int] | None = None  # owned by the flush thread
        self._read_fd: tuple[Segment, int] | None = None  # owned by the reading thread
        self._ack_fds: dict[int, int] = {}  # owned by the ack thread
        self._lock_fd: int | None = None
        self._open = False

    # --- accounting --------------------------------------------------------------------------

    @property
    def bytes(self) -> int:
        """Bytes of the live segment files on disk."""
        return self._bytes

    @property
    def unacked_items(self) -> int:
        """Items spooled and not yet delivered (including the ones being delivered)."""
        return self._unacked_items

    @property
    def idle(self) -> bool:
        """Nothing to deliver and nothing being written."""
        return self._unacked_records == 0 and not self._buffered

    def has_room(self, nbytes: int) -> bool:
        """Whether ``nbytes`` more fit under ``max_bytes`` (an empty spool takes anything)."""
        if self.idle or self._bytes + self._buffered + nbytes <= self.max_bytes:
            return True
        active = self._active  # reclaim a finished active segment before saying no
        if active is not None and active.size and active.acked == active.records:
            self._seal(active)
        return self._bytes + self._buffered + nbytes <= self.max_bytes

    # --- start-up ----------------------------------------------------------------------------

    async def open(self) -> Recovery:
        """Lock the directory, check every segment, quarantine damage, index what is left."""
        self._lock_fd = await asyncio.to_thread(lock_directory, self.directory)
        try:
            check = DirectoryCheck(self.directory, self.on_quarantine)
            segments, report, self._next_id = await asyncio.to_thread(check.run)
        except BaseException:
            await asyncio.to_thread(self._close_files)
            raise
        self._segments = segments
        self._bytes = report.bytes
        self._unread_records = self._unacked_records = report.records
        self._unacked_items = sum(report.items.values())
        self._open = True
        if self._unread_records:
            self._readable.set()
        return report

    # --- writing -----------------------------------------------------------------------------

    async def append(self, batch: Batch) -> None:
        """Return once ``batch`` is on disk and synced; raises ``OSError`` if writing failed."""
        if not self._open:
            raise RuntimeError(f"spool {self.directory} is not open")
        payload = batch.serialized()
        future = asyncio.get_running_loop().create_future()
        self._buffer.append(_Pending(batch.signal, batch.items, payload, future))
        self._buffered += OVERHEAD + len(payload)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_loop())
        await asyncio.shield(future)

    async def _flush_loop(self) -> None:
        try:
            while self._buffer:  # whatever arrived meanwhile forms the next group
                group, self._buffer = self._buffer, []
                plan = self._place(group)
                try:
                    await asyncio.to_thread(self._write, plan)
                except Exception as exc:
                    log.error("spool %s: write failed: %s", self.directory, exc)
                    self._abort(plan)
                    outcome: BaseException | None = exc
                else:
                    self._commit(plan)
                    outcome = None
                self._buffered -= sum(OVERHEAD + len(p.payload) for p in group)
                for pending in group:
                    if pending.future.done():
                        continue
                    if outcome is None:
                        pending.future.set_result(None)
                    else:
                        pending.future.set_exception(outcome)
                        pending.future.exception()  # retrieved: the caller may be gone
        finally:
            self._flusher = None

    def _place(self, group: list[_Pending]) -> _Plan:
        plan: _Plan = []
        for pending in group:
            size = OVERHEAD + len(pending.payload)
            seg = self._active
            if seg is None or (seg.planned and seg.planned + size > self.segment_bytes):
                if seg is not None:
                    self._seal(seg)
                seg = self._active = Segment(
                    self._next_id, segment_path(self.directory, self._next_id)
                )
                self._next_id += 1
                self._segments.append(seg)
            if not plan or plan[-1][0] is not seg:
                plan.append((seg, seg.planned, []))
            plan[-1][2].append(pending)
            seg.planned += size
        return plan

    def _write(self, plan: _Plan) -> None:
        """In a thread: write each segment's part of the group, then fdatasync it."""
        for seg, offset, records in plan:
            created = False
            if self._write_fd is None or self._write_fd[0] is not seg:
                if self._write_fd is not None:
                    os.close(self._write_fd[1])
                    self._write_fd = None
                fd = os.open(seg.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
                self._write_fd, created = (seg, fd), True
            fd = self._write_fd[1]
            buffers: list[bytes] = []
            for r in records:
                buffers += (encode_head(r.signal, r.items, r.payload), r.payload)
            try:
                pwrite_all(fd, buffers, offset)
                os.fdatasync(fd)
                if created:
                    fsync_dir(self.directory)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, offset)
                raise

    def _commit(self, plan: _Plan) -> None:
        for seg, offset, records in plan:
            end = offset + sum(OVERHEAD + len(r.payload) for r in records)
            self._bytes += end - seg.size
            seg.size = end
            seg.records += len(records)
            seg.unread_records += len(records)
            for r in records:
                seg.unread[r.signal] = seg.unread.get(r.signal, 0) + r.items
                self._unacked_items += r.items
            self._unread_records += len(records)
            self._unacked_records += len(records)
            self._maybe_retire(seg)  # sealed meanwhile with everything already acknowledged
        self._readable.set()

    def _abort(self, plan: _Plan) -> None:
        """After a failed write: keep what was synced, continue in a fresh segment."""
        for seg, _, _ in plan:
            seg.planned = seg.size
        if self._active is not None:
            self._seal(self._active)

    def _seal(self, seg: Segment) -> None:
        seg.sealed = True
        if self._active is seg:
            self._active = None
        self._maybe_retire(seg)

    # --- reading and acknowledging -----------------------------------------------------------

    async def get(self) -> SpoolEntry:
        """The next undelivered record, read from disk; waits while there is none."""
        async with self._read_lock:
            while True:
                seg = next((s for s in self._segments if s.read_pos < s.size), None)
                if seg is None:
                    self._readable.clear()
                    await self._readable.wait()
                    continue
                if self._read_job is not None:  # a cancelled get() left its read running
                    await asyncio.wait([self._read_job])
                    self._read_job = None
                    continue
                pos, skip = seg.read_pos, seg.read_pos in seg.skip
                job = self._read_job = asyncio.ensure_future(
                    asyncio.to_thread(self._read, seg, pos, skip)
                )
                end, batch = await asyncio.shield(job)
                self._read_job = None
                if end is None:
                    self._damaged(seg, pos)
                    continue
                seg.read_pos = end
                if batch is None:  # acknowledged before the restart
                    seg.skip.discard(pos)
                    self._maybe_retire(seg)
                    continue
                seg.unread_records -= 1
                seg.unread[batch.signal] -= batch.items
                self._unread_records -= 1
                return SpoolEntry(batch, seg, pos)

    def _read(self, seg: Segment, pos: int, skip: bool) -> tuple[int | None, Batch | None]:
        """In a thread: the record at ``pos`` (end offset and batch); ``(None, None)`` if bad."""
        if self._read_fd is None or self._read_fd[0] is not seg:
            if self._read_fd is not None:
                os.close(self._read_fd[1])
                self._read_fd = None
            self._read_fd = (seg, os.open(seg.path, os.O_RDONLY | os.O_CLOEXEC))
        fd = self._read_fd[1]
        head = os.pread(fd, OVERHEAD, pos)
        if len(head) < OVERHEAD:
            return None, None
        magic, length, _ = HEADER.unpack_from(head)
        end = pos + HEADER.size + length
        if magic != MAGIC or length < PREFIX.size or end > seg.size:
            return None, None
        if skip:
            return end, None
        payload = os.pread(fd, length - PREFIX.size, pos + OVERHEAD)
        code, items = PREFIX.unpack_from(head, HEADER.size)
        signal = SIGNALS.get(code)
        if signal is None or not check_payload(head, payload):
            return None, None
        try:
            request = signal.request_type.FromString(payload)
        except Exception:
            return None, None
        return end, Batch(signal, request, items, payload)

    def _damaged(self, seg: Segment, pos: int) -> None:
        """A record failed its check while reading: give up the rest of the segment."""
        lost = dict(seg.unread)
        log.error(
            "spool %s: %s is damaged at offset %d; %d record(s) in it are lost (%s)",
            self.directory, seg.path.name, pos, seg.unread_records,
            ", ".join(f"{n} {s.value}" for s, n in lost.items() if n) or "no items",
        )  # fmt: skip
        seg.damaged = True
        seg.acked += seg.unread_records
        self._unread_records -= seg.unread_records
        self._unacked_records -= seg.unread_records
        self._unacked_items -= sum(lost.values())
        seg.unread_records, seg.unread, seg.read_pos = 0, {}, seg.size
        for signal, items in lost.items():
            if items and self.on_lost is not None:
                self.on_lost(signal, items)
        self._seal(seg)

    def ack(self, entry: SpoolEntry) -> None:
        """Record that ``entry`` was delivered (or failed for good): it will not be resent."""
        seg = entry.segment
        seg.acked += 1
        self._unacked_records -= 1
        self._unacked_items -= entry.batch.items
        self._io_ops.append((seg, entry.offset))
        self._maybe_retire(seg)
        self._kick_io()

    def _maybe_retire(self, seg: Segment) -> None:
        """Drop a sealed, fully read and acknowledged segment; its files go in the background."""
        done = seg.acked == seg.records and seg.read_pos >= seg.size and seg.planned == seg.size
        if seg.sealed and done and seg in self._segments:
            self._segments.remove(seg)
            self._bytes -= seg.size
            self._io_ops.append((seg, -1))
            self._kick_io()

    def _kick_io(self) -> None:
        if self._io_task is None:
            self._io_task = asyncio.create_task(self._io_loop())

    async def _io_loop(self) -> None:
        try:
            while self._io_ops:
                ops, self._io_ops = self._io_ops, []
                try:
                    await asyncio.to_thread(self._do_io, ops)
                except OSError as exc:  # a lost ack means a duplicate later, never a loss
                    log.warning("spool %s: cannot record acks: %s", self.directory, exc)
        finally:
            self._io_task = None

    def _do_io(self, ops: list[tuple[Segment, int]]) -> None:
        """In a thread: append acks (one write per segment), then delete finished segments."""
        acks: dict[Segment, bytearray] = {}
        retired = [seg for seg, offset in ops if offset < 0]
        for seg, offset in ops:
            if offset >= 0 and seg not in retired:
                acks.setdefault(seg, bytearray()).extend(encode_ack(offset))
        for seg, data in acks.items():
            fd = self._ack_fds.get(seg.id)
            if fd is None:
                flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
                fd = self._ack_fds[seg.id] = os.open(seg.ack_path, flags, 0o644)
            os.write(fd, data)
        for seg in retired:
            if (fd := self._ack_fds.pop(seg.id, None)) is not None:
                os.close(fd)
            if seg.damaged and seg.path.exists():
                moved = quarantine(self.directory, seg.path, on_quarantine=self.on_quarantine)
                log.error("spool %s: damaged %s moved to %s", self.directory, seg.path.name, moved)
                continue
            seg.path.unlink(missing_ok=True)
            seg.ack_path.unlink(missing_ok=True)

    # --- shutdown ----------------------------------------------------------------------------

    async def close(self) -> None:
        """Finish writes, acks and reads under way, sync the ack files and unlock."""
        self._open = False
        await self._settle()
        active = self._active  # delivered to the end: no need to keep it for the next start
        if active is not None and active.acked == active.records:
            self._seal(active)
            await self._settle()
        await asyncio.to_thread(self._close_files)

    async def _settle(self) -> None:
        while running := [t for t in (self._flusher, self._read_job, self._io_task) if t]:
            await asyncio.wait(running)
            if self._read_job is not None and self._read_job.done():
                self._read_job = None

    def _close_files(self) -> None:
        for fd in self._ack_fds.values():
            with contextlib.suppress(OSError):
                os.fsync(fd)
            os.close(fd)
        self._ack_fds.clear()
        for held in (self._write_fd, self._read_fd):
            if held is not None:
                os.close(held[1])
        self._write_fd = self._read_fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
