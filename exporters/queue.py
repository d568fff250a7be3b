"""A bounded queue, worker(s) and retry loop in front of every exporter.

Each exporter gets its own :class:`ExporterQueue`, so one slow or dead backend never stalls
another. The queue is sized in items (spans, data points, log records) and in bytes (each
batch counted at the size it arrived with), not requests, so its memory bound does not depend
on how clients batch: many small items hit the first limit, a few huge ones the second. When it
is full the policy is explicit:
``refuse`` (default) makes the receiver answer 429/UNAVAILABLE so the client retries and
nothing is lost; ``drop`` drops the batch and counts it.

Delivery (:mod:`exporters.delivery`) retries retryable errors with exponential backoff and
jitter, waits exactly as long as the backend asked (``Retry-After`` / ``RetryInfo``), never
retries a permanent error, splits a batch whose data the backend refused so the other items
still go, and gives up only after ``max_elapsed_time`` (0 = never). Every item ends up counted
as sent, failed or dropped.

With a :class:`~exporters.spool.Spool` (``storage: disk``) the pending batches live on disk
instead: :meth:`ExporterQueue.put` returns only once the batch is synced, workers read batches
back when it is their turn, a batch is acknowledged in the spool once it was delivered (or failed
for good), and on shutdown whatever is left stays spooled for the next start instead of being
dropped. The spool's ``max_bytes`` then bounds the queue instead of ``capacity``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Literal

from exporters.base import Exporter
from exporters.delivery import Delivery, ExporterStatus
from exporters.merging import MergeGroup, MergeLimits
from exporters.retry import RetryPolicy
from exporters.spool import Recovery, Spool, SpoolEntry, SpoolWriteError, record_size
from exporters.spool_files import OVERHEAD
from gateway.errors import BackpressureError, NotReadyError
from gateway.otlp.batch import Batch, Signal
from gateway.selfmetrics import GatewayMetrics
from gateway.tasks import cancel_and_wait

log = logging.getLogger("otelgate.exporter")

OnFull = Literal["refuse", "drop"]


class ExporterQueue:
    """Bounded per-exporter queue with ``num_consumers`` delivery workers."""

    def __init__(
        self,
        name: str,
        exporter: Exporter,
        metrics: GatewayMetrics,
        *,
        capacity: int = 100_000,
        max_bytes: int = 64 * 1024 * 1024,
        num_consumers: int = 4,
        on_full: OnFull = "refuse",
        retry: RetryPolicy | None = None,
        spool: Spool | None = None,
        merge: MergeLimits | None = None,
    ) -> None:
        self.name = name
        self.exporter = exporter
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.on_full: OnFull = on_full
        self.delivery = Delivery(
            name, exporter, metrics, retry or RetryPolicy(), replayed=spool is not None
        )
        self._metrics = metrics
        self._num_consumers = num_consumers
        self._pending: deque[Batch] = deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._items = 0  # queued + being delivered
        self._bytes = 0  # their nbytes
        self._workers: list[asyncio.Task[None]] = []
        self._in_flight: set[Batch] = set()
        self._gather_lock = asyncio.Lock()
        self._gathering: MergeGroup | None = None  # batches taken, not yet in flight
        self._closed = True
        self._stopped = False
        self._size_gauge = metrics.exporter_queue_size.labels(name)
        metrics.exporter_queue_bytes.labels(name).set_function(lambda: self._bytes)
        self.spool = spool
        # Merging needs an exporter that only sends bytes; spooled batches are acknowledged
        # one by one, so they are never merged.
        sends_bytes = getattr(exporter, "sends_encoded_batches", False)
        self._merge = merge if sends_bytes and spool is None else None
        if spool is None:
            metrics.exporter_queue_capacity.labels(name).set(capacity)
            metrics.exporter_queue_capacity_bytes.labels(name).set(max_bytes)
        else:
            metrics.exporter_spool_capacity_bytes.labels(name).set(spool.max_bytes)
            self._spool_gauge = metrics.exporter_spool_bytes.labels(name)
            quarantined = metrics.exporter_spool_quarantined.labels(name)
            spool.on_quarantine = lambda _path: quarantined.inc()
            spool.on_lost = self._lost
            spool.on_unreadable = self._unreadable

    @property
    def status(self) -> ExporterStatus:
        """The exporter's delivery state, for the health endpoints."""
        return self.delivery.status

    @property
    def retry(self) -> RetryPolicy:
        return self.delivery.retry

    @property
    def size(self) -> int:
        """Items queued or being delivered."""
        return self._items if self.spool is None else self.spool.unacked_items

    @property
    def full(self) -> bool:
        if self.spool is not None:
            return not self.spool.has_room(1)
        return self._items >= self.capacity or self._bytes >= self.max_bytes

    @property
    def problem(self) -> str | None:
        """Why the queue cannot take data now though it has room (its disk spool cannot
        write), or None."""
        return None if self.spool is None else self.spool.problem

    @property
    def usage(self) -> str:
        """How full the queue is, for messages: items and bytes, or bytes on disk for a spool."""
        if self.spool is None:
            return f"{self._items}/{self.capacity} items, {self._bytes}/{self.max_bytes} bytes"
        return f"{self.spool.bytes}/{self.spool.max_bytes} bytes spooled on disk"

    async def start(self) -> None:
        """Open the spool (if any), start the exporter, then the workers."""
        if self.spool is not None:
            self._recovered(await self.spool.open())
        await self.exporter.start()
        self._closed = False
        work = self._work if self.spool is None else self._work_spooled
        self._workers = [
            asyncio.create_task(work(), name=f"exporter:{self.name}:{i}")
            for i in range(self._num_consumers)
        ]

    def _recovered(self, found: Recovery) -> None:
        metrics = self._metrics
        metrics.exporter_spool_corrupt_bytes.labels(self.name).inc(found.corrupt_bytes)
        for signal, items in found.items.items():
            metrics.exporter_spool_recovered.labels(self.name, signal.value).inc(items)
        if found.records:
            log.info(
                "exporter %s: %d undelivered item(s) in %d batch(es) found in spool %s; "
                "sending them first", self.name, sum(found.items.values()), found.records,
                found.directory,
            )  # fmt: skip
        if found.quarantined:
            log.error(
                "exporter %s: quarantined %d damaged spool file(s) (%d bad bytes): %s",
                self.name, len(found.quarantined), found.corrupt_bytes,
                ", ".join(map(str, found.quarantined)),
            )  # fmt: skip
        self._spool_changed()

    @property
    def closed(self) -> bool:
        """True once the queue is shutting down (or before it started)."""
        return self._closed

    def would_refuse(self, items: int, nbytes: int) -> bool:
        """True when :meth:`offer` would raise for a batch of this size (checked before any
        fan-out), or when the disk spool cannot write."""
        if self._closed or self.problem is not None:
            return True
        return self.on_full == "refuse" and not self.has_room(items, nbytes)

    def has_room(self, items: int, nbytes: int) -> bool:
        """Whether a batch of ``items`` and ``nbytes`` fits now."""
        if self.spool is not None:
            return self.spool.has_room(OVERHEAD + nbytes)
        # An empty queue takes a batch larger than its capacity; otherwise it could never go.
        if self._items == 0:
            return True
        return self._items + items <= self.capacity and self._bytes + nbytes <= self.max_bytes

    def _has_room(self, batch: Batch) -> bool:
        if self.spool is not None:
            return self.spool.has_room(record_size(batch))
        return self.has_room(batch.items, batch.nbytes)

    async def put(self, batch: Batch, *, reserved: bool = False) -> bool:
        """Enqueue ``batch`` like :meth:`offer`; with a spool, return once it is on disk.

        Raises :class:`SpoolWriteError` (the client retries) if the spool cannot write it.
        """
        if self.spool is None:
            return self.offer(batch, reserved=reserved)
        if self._closed:
            raise NotReadyError(f"exporter {self.name} is shutting down", retry_after=5.0)
        if not self._has_room(batch) and not self._refuse_or_drop(batch, reserved):
            return False
        self._idle.clear()
        try:
            await self.spool.append(batch)
        except OSError as exc:
            raise SpoolWriteError(f"exporter {self.name}: cannot spool the batch: {exc}") from exc
        finally:
            self._spool_changed()
        return True

    def _refuse_or_drop(self, batch: Batch, reserved: bool) -> bool:
        """For a full queue: False after dropping (``drop``), True if ``reserved``, else raise."""
        if self.on_full == "drop":
            self._metrics.exporter_dropped.labels(self.name, batch.signal.value).inc(batch.items)
            log.warning(
                "exporter %s queue full: dropped %d %s", self.name, batch.items, batch.signal
            )
            return False
        if not reserved:
            raise BackpressureError(f"exporter {self.name} queue is full ({self.usage})")
        return True

    def _spool_changed(self) -> None:
        assert self.spool is not None
        self._size_gauge.set(self.spool.unacked_items)
        self._spool_gauge.set(self.spool.bytes)
        if self.spool.idle:
            self._idle.set()
        else:
            self._idle.clear()

    def offer(self, batch: Batch, *, reserved: bool = False) -> bool:
        """Enqueue ``batch``. Returns False if it was dropped (``on_full: drop``).

        Raises :class:`BackpressureError` when full with ``on_full: refuse``, and
        :class:`NotReadyError` once the queue is shutting down. ``reserved`` means the caller
        already checked :meth:`would_refuse` for this batch (fan-out is all-or-nothing), so a
        ``refuse`` queue takes it even if processors made it slightly larger.
        """
        if self.spool is not None:
            raise TypeError("a spooled queue takes batches with: await put(batch)")
        if self._closed:
            raise NotReadyError(f"exporter {self.name} is shutting down", retry_after=5.0)
        if not self._has_room(batch) and not self._refuse_or_drop(batch, reserved):
            return False
        if self._merge is not None:  # the exporter sends bytes: queue no decoded request
            batch = batch.bytes_only()
        self._pending.append(batch)
        self._items += batch.items
        self._bytes += batch.nbytes
        self._size_gauge.set(self._items)
        self._idle.clear()
        self._wakeup.set()
        return True

    async def _work(self) -> None:
        while True:
            batch = await self._next_batch()
            self._in_flight.add(batch)
            try:
                await self.delivery.deliver(batch)
            finally:
                self._in_flight.discard(batch)
                self._release(batch)

    async def _next_batch(self) -> Batch:
        """The oldest pending batch; with merging, the batches of its signal that are waiting
        or arrive within ``timeout`` join it, up to the limits (see :mod:`exporters.merging`).
        One worker gathers at a time, so a group is not split between idle workers."""
        async with self._gather_lock:
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            first = self._pending.popleft()
            limits = self._merge
            if limits is None:
                return first
            self._gathering = group = MergeGroup(first, limits)
            deadline = time.monotonic() + limits.timeout
            group.absorb(self._pending)
            while not group.full and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                group.absorb(self._pending)
            self._gathering = None
            return group.batch()

    async def _work_spooled(self) -> None:
        assert self.spool is not None
        while True:
            try:
                entry: SpoolEntry = await self.spool.get()
            except OSError as exc:  # the disk failed; the record stays and is read again
                log.error("exporter %s: cannot read spool: %s; retrying in 1s", self.name, exc)
                await asyncio.sleep(1.0)
                continue
            self._in_flight.add(entry.batch)
            try:
                await self.delivery.deliver(entry.batch)  # cancelled at shutdown: not acknowledged
            finally:
                self._in_flight.discard(entry.batch)
            self.spool.ack(entry)
            self._spool_changed()

    def _release(self, batch: Batch) -> None:
        self._items -= batch.items
        self._bytes -= batch.nbytes
        self._size_gauge.set(self._items)
        if self._items == 0:
            self._idle.set()

    def _unreadable(self, signal: Signal, items: int, why: str) -> None:
        """A spooled record cannot be decoded: it can never be sent (the spool logged it)."""
        self.delivery.note_error("failed", why)
        self._metrics.exporter_failed.labels(self.name, signal.value).inc(items)
        self._spool_changed()

    def _lost(self, signal: Signal, items: int) -> None:
        """Spooled items were in damaged bytes (the spool logged it)."""
        self._metrics.exporter_dropped.labels(self.name, signal.value).inc(items)
        self._spool_changed()

    async def shutdown(self, timeout: float) -> None:
        """Stop accepting, deliver what is queued within ``timeout`` s, then stop.

        Whatever is still queued or in flight at the deadline is counted as dropped and
        logged, never lost silently.
        """
        self._closed = True
        self._wakeup.set()  # a worker gathering a merged request sends it now
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        if self._stopped:  # a concurrent, shorter shutdown already finished the job
            return
        self._stopped = True
        if self.spool is not None:
            await self._shutdown_spooled(timeout)
            return
        gathering = self._gathering.batches if self._gathering else []
        leftovers = [*self._pending, *gathering, *self._in_flight]  # before cancelling
        await cancel_and_wait(self._workers)
        # A batch cut short may have had pieces delivered (or refused): those are counted.
        settled = self.delivery.settled_when_cancelled
        dropped = 0
        for batch in leftovers:
            left = batch.items - settled.pop(batch, 0)
            self._metrics.exporter_dropped.labels(self.name, batch.signal.value).inc(left)
            dropped += left
        settled.clear()
        if dropped:
            log.error(
                "exporter %s: shutdown after %.1fs dropped %d undelivered item(s)",
                self.name, timeout, dropped,
            )  # fmt: skip
        self._pending.clear()
        self._items = self._bytes = 0
        self._size_gauge.set(0)
        self._idle.set()
        await self.exporter.shutdown()

    async def _shutdown_spooled(self, timeout: float) -> None:
        """Stop the workers and keep what is undelivered on disk (not counted as dropped)."""
        assert self.spool is not None
        await cancel_and_wait(self._workers)
        await self.spool.close()
        self._spool_changed()
        if left := self.spool.unacked_items:
            log.warning(
                "exporter %s: %d undelivered item(s) remain spooled in %s after %.1fs; "
                "they are sent after the next start", self.name, left, self.spool.directory,
                timeout,
            )  # fmt: skip
        await self.exporter.shutdown()
