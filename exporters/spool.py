"""A durable disk spool behind an exporter's queue (``sending_queue.storage: disk``).

The files and their format are described in :mod:`exporters.spool_files`, the file work done in
worker threads in :mod:`exporters.spool_io`. Appends that arrive in the same event-loop moment
share one write and one fdatasync (group commit), and a batch is acknowledged to its client only
after that. Memory holds only the records being delivered and a few counters per segment:
batches are read back from disk when it is their turn, in the spool's order. Acks are appended
without fsync (a lost ack only means a duplicate: delivery is at-least-once), and a segment is
deleted once it is sealed and read and acknowledged to the end.

When a write fails (a full disk, an I/O error) the spool closes the file, continues in a fresh
segment and reports :attr:`Spool.problem` until a write succeeds (:mod:`exporters.spool_health`).
Reading skips a record that checks out but cannot be decoded (counted as failed) and after
damage resynchronises on the next intact record (the damaged records are counted as dropped).
Which segments are live, what they hold and when one is finished is counted in
:mod:`exporters.spool_ledger`. With ``service.workers`` every process spools in a partition of
the exporter's spool directory and adopts orphaned partitions when it opens
(:mod:`exporters.spool_partitions`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from exporters.settings import QueueSettings
from exporters.spool_files import (
    OVERHEAD,
    DirectoryCheck,
    Recovery,
    Segment,
    SpoolLockedError,
    lock_directory,
)
from exporters.spool_health import WriteHealth
from exporters.spool_io import AckFiles, HeldFile, Outcome, Pending, Record, read_record, write_plan
from exporters.spool_ledger import Ledger
from exporters.spool_partitions import (
    SUPERVISOR_PARTITION,
    AdoptionReport,
    Partitioning,
    worker_partition,
)
from gateway.errors import BackpressureError
from gateway.otlp.batch import Batch, Signal

__all__ = [
    "SUPERVISOR_PARTITION", "AdoptionReport", "Partitioning", "Recovery", "Spool", "SpoolEntry",
    "SpoolLockedError", "SpoolWriteError", "default_directory", "record_size", "spool_directory",
    "worker_partition",
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


def spool_directory(exporter_id: str, config: object, partition: str | None = None) -> str | None:
    """The directory of an exporter's disk spool (its ``sending_queue``), if it has one: the
    spool root, or with ``partition`` (:func:`worker_partition` or ``SUPERVISOR_PARTITION``)
    that partition of it."""
    queue = getattr(config, "sending_queue", None)
    if not isinstance(queue, QueueSettings) or queue.storage != "disk":
        return None
    root = queue.directory or default_directory(exporter_id)
    return str(root) if partition is None else str(Path(root) / partition)


def record_size(batch: Batch) -> int:
    """Bytes ``batch`` takes in the spool."""
    return OVERHEAD + len(batch.serialized())


@dataclass(frozen=True, slots=True, eq=False)
class SpoolEntry:
    """A record handed to a consumer; give it back to :meth:`Spool.ack` when it is done."""

    batch: Batch
    segment: Segment
    offset: int


class Spool:
    """Append-only segments of CRC-checked records with out-of-order acks (see module doc)."""

    def __init__(
        self,
        directory: str | Path,
        *,
        max_bytes: int = 1024 * MIB,
        segment_bytes: int | None = None,
        retry_interval: float = 1.0,
        on_lost: Callable[[Signal, int], None] | None = None,
        on_unreadable: Callable[[Signal, int, str], None] | None = None,
        on_quarantine: Callable[[Path], None] | None = None,
        partitioning: Partitioning | None = None,
    ) -> None:
        self.directory = Path(directory)
        if partitioning is not None and partitioning.directory != self.directory:
            raise ValueError(f"{self.directory} is not the directory of {partitioning}")
        self.partitioning = partitioning  # adopt its orphans on open (exporters.spool_partitions)
        self.adopted: list[AdoptionReport] = []  # what the last open adopted
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or min(64 * MIB, max(MIB // 16, max_bytes // 16))
        self.on_lost = on_lost  # (signal, items) lost to damage found while reading
        self.on_unreadable = on_unreadable  # (signal, items, why) of a record that won't decode
        self.on_quarantine = on_quarantine  # a file was moved to quarantine/
        self.health = WriteHealth(self.directory, retry_interval)
        self._ledger = Ledger(
            self.directory,
            schedule=self._schedule_io,
            report_lost=self._report_lost,
            report_unreadable=self._report_unreadable,
        )
        self._buffer: list[Pending] = []
        self._buffered = 0  # bytes accepted but not yet synced
        self._readable = asyncio.Event()
        self._read_lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._io_task: asyncio.Task[None] | None = None
        self._read_job: asyncio.Future[Outcome] | None = None
        self._io_ops: list[tuple[Segment, int]] = []
        self._writer = HeldFile(os.O_WRONLY | os.O_CREAT)  # used by the flush thread
        self._reader = HeldFile(os.O_RDONLY)  # used by the reading thread
        self._acks = AckFiles(self.directory, self._release)  # used by the ack thread
        self._lock_fd: int | None = None
        self._open = False

    # --- accounting --------------------------------------------------------------------------

    @property
    def bytes(self) -> int:
        """Bytes of the live segment files on disk."""
        return self._ledger.bytes

    @property
    def unacked_items(self) -> int:
        """Items spooled and not yet delivered (including the ones being delivered)."""
        return self._ledger.unacked_items

    @property
    def problem(self) -> str | None:
        """Why the spool cannot write now (its data is refused), or None."""
        return self.health.problem

    @property
    def problem_since(self) -> float | None:
        """Since when :attr:`problem` is set (wall clock, seconds)."""
        return self.health.since

    @property
    def idle(self) -> bool:
        """Nothing to deliver and nothing being written."""
        return self._ledger.unacked_records == 0 and not self._buffered

    def has_room(self, nbytes: int) -> bool:
        """Whether ``nbytes`` more fit under ``max_bytes`` (an empty spool takes anything)."""
        if self.idle or self._ledger.bytes + self._buffered + nbytes <= self.max_bytes:
            return True
        active = self._ledger.active  # reclaim a finished active segment before saying no
        if active is not None and active.size and active.acked == active.records:
            self._ledger.seal(active)
        return self._ledger.bytes + self._buffered + nbytes <= self.max_bytes

    # --- start-up ----------------------------------------------------------------------------

    async def open(self) -> Recovery:
        """Lock the directory, adopt orphaned partitions (with a :class:`Partitioning`), check
        every segment, quarantine damage, index what is left."""
        self._lock_fd = await asyncio.to_thread(lock_directory, self.directory)
        try:
            if self.partitioning is not None:
                self.adopted = await asyncio.to_thread(self.partitioning.adopt)
            check = DirectoryCheck(self.directory, self.on_quarantine)
            segments, report, next_id = await asyncio.to_thread(check.run)
        except BaseException:
            await asyncio.to_thread(self._close_files)
            raise
        self._ledger.restore(segments, report, next_id)
        self._open = True
        if self._ledger.unread_records:
            self._readable.set()
        return report

    # --- writing -----------------------------------------------------------------------------

    async def append(self, batch: Batch) -> None:
        """Return once ``batch`` is on disk and synced; raises ``OSError`` if writing failed."""
        if not self._open:
            raise RuntimeError(f"spool {self.directory} is not open")
        payload = batch.serialized()
        future = asyncio.get_running_loop().create_future()
        self._buffer.append(Pending(batch.signal, batch.items, payload, future))
        self._buffered += OVERHEAD + len(payload)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_loop())
        await asyncio.shield(future)

    async def _flush_loop(self) -> None:
        try:
            while self._buffer:  # whatever arrived meanwhile forms the next group
                group, self._buffer = self._buffer, []
                size = sum(OVERHEAD + len(p.payload) for p in group)
                plan = self._ledger.place(group, self.segment_bytes)
                try:
                    await asyncio.to_thread(write_plan, self.directory, self._writer, plan)
                except Exception as exc:
                    self._ledger.abort(plan)
                    self.health.failed(exc, size)
                    outcome: BaseException | None = exc
                else:
                    self._ledger.commit(plan)
                    self._readable.set()
                    self.health.succeeded()
                    outcome = None
                self._buffered -= size
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

    # --- reading and acknowledging -----------------------------------------------------------

    async def get(self) -> SpoolEntry:
        """The next undelivered record, read from disk; waits while there is none."""
        async with self._read_lock:
            while True:
                seg = self._ledger.to_read()
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
                    asyncio.to_thread(read_record, self._reader, seg, pos, seg.size, skip)
                )
                outcome = await asyncio.shield(job)
                self._read_job = None
                if isinstance(outcome, Record):
                    self._ledger.hand_out(seg, outcome)
                    return SpoolEntry(outcome.batch, seg, pos)
                self._ledger.pass_over(seg, pos, outcome)

    def ack(self, entry: SpoolEntry) -> None:
        """Record that ``entry`` was delivered (or failed for good): it will not be resent."""
        self._ledger.finish(entry.segment, entry.offset, entry.batch.items)

    def _schedule_io(self, seg: Segment, offset: int) -> None:
        """Record an ack (``offset``) or delete a retired segment (-1), in the background."""
        self._io_ops.append((seg, offset))
        self._kick_io()

    def _report_lost(self, signal: Signal, items: int) -> None:
        """Pass a loss on to ``on_lost`` (read now: the queue sets it after construction)."""
        if self.on_lost is not None:
            self.on_lost(signal, items)

    def _report_unreadable(self, signal: Signal, items: int, why: str) -> None:
        """Pass an undecodable record on to ``on_unreadable`` (read now, likewise)."""
        if self.on_unreadable is not None:
            self.on_unreadable(signal, items, why)

    def _kick_io(self) -> None:
        if self._io_task is None:
            self._io_task = asyncio.create_task(self._io_loop())

    async def _io_loop(self) -> None:
        try:
            while self._io_ops:
                ops, self._io_ops = self._io_ops, []
                try:
                    await asyncio.to_thread(self._acks.apply, ops, self.on_quarantine)
                except OSError as exc:  # a lost ack means a duplicate later, never a loss
                    log.warning("spool %s: cannot record acks: %s", self.directory, exc)
                if any(offset < 0 and seg.size for seg, offset in ops):
                    self.health.space_freed()
        finally:
            self._io_task = None

    def _release(self, seg: Segment) -> None:
        """In the ack thread: close the descriptors others hold on a finished segment."""
        self._reader.release(seg)
        self._writer.release(seg)

    # --- shutdown ----------------------------------------------------------------------------

    async def close(self) -> None:
        """Finish writes, acks and reads under way, sync the ack files and unlock."""
        self._open = False
        await self.health.close()
        await self._settle()
        active = self._ledger.active  # delivered to the end: no need to keep it for the next start
        if active is not None and active.acked == active.records:
            self._ledger.seal(active)
            await self._settle()
        await asyncio.to_thread(self._close_files)

    async def _settle(self) -> None:
        while running := [t for t in (self._flusher, self._read_job, self._io_task) if t]:
            await asyncio.wait(running)
            if self._read_job is not None and self._read_job.done():
                self._read_job = None

    def _close_files(self) -> None:
        self._acks.close()
        self._writer.release()
        self._reader.release()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
