"""A bounded queue, worker(s) and retry loop in front of every exporter.

Each exporter gets its own :class:`ExporterQueue`, so one slow or dead backend never stalls
another. The queue is sized in items (spans, data points, log records), not requests, so its
memory bound does not depend on how clients batch. When it is full the policy is explicit:
``refuse`` (default) makes the receiver answer 429/UNAVAILABLE so the client retries and
nothing is lost; ``drop`` drops the batch and counts it.

Delivery retries retryable errors with exponential backoff and jitter, waits exactly as long
as the backend asked (``Retry-After`` / ``RetryInfo``), never retries a permanent error, and
gives up only after ``max_elapsed_time`` (0 = never). Every item ends up counted as sent,
failed or dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Literal

from exporters.base import Exporter
from gateway.batch import Batch
from gateway.errors import BackpressureError, NotReadyError, PermanentError, RetryableError
from gateway.selfmetrics import GatewayMetrics

log = logging.getLogger("otelgate.exporter")

OnFull = Literal["refuse", "drop"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter; ``max_elapsed_time`` 0 means retry forever."""

    enabled: bool = True
    initial_interval: float = 1.0
    max_interval: float = 30.0
    multiplier: float = 2.0
    randomization_factor: float = 0.5
    max_elapsed_time: float = 300.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait before retry number ``attempt`` (0-based), jittered."""
        base = min(self.max_interval, self.initial_interval * self.multiplier**attempt)
        spread = base * self.randomization_factor
        return max(0.0, base + (rng or random).uniform(-spread, spread))


@dataclass(slots=True)
class ExporterStatus:
    """What the health endpoints say about one exporter."""

    state: Literal["ok", "retrying", "failed"] = "ok"
    last_error: str | None = None
    last_error_at: float | None = None  # wall clock, seconds
    last_success_at: float | None = None


class ExporterQueue:
    """Bounded per-exporter queue with ``num_consumers`` delivery workers."""

    def __init__(
        self,
        name: str,
        exporter: Exporter,
        metrics: GatewayMetrics,
        *,
        capacity: int = 100_000,
        num_consumers: int = 4,
        on_full: OnFull = "refuse",
        retry: RetryPolicy | None = None,
    ) -> None:
        self.name = name
        self.exporter = exporter
        self.capacity = capacity
        self.on_full: OnFull = on_full
        self.retry = retry or RetryPolicy()
        self.status = ExporterStatus()
        self._metrics = metrics
        self._num_consumers = num_consumers
        self._pending: deque[Batch] = deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._items = 0  # queued + being delivered
        self._workers: list[asyncio.Task[None]] = []
        self._in_flight: set[Batch] = set()
        self._closed = True
        self._stopped = False
        self._rng = random.Random()
        metrics.exporter_queue_capacity.labels(name).set(capacity)
        self._size_gauge = metrics.exporter_queue_size.labels(name)

    @property
    def size(self) -> int:
        """Items queued or being delivered."""
        return self._items

    @property
    def full(self) -> bool:
        return self._items >= self.capacity

    async def start(self) -> None:
        """Start the exporter, then the workers."""
        await self.exporter.start()
        self._closed = False
        self._workers = [
            asyncio.create_task(self._work(), name=f"exporter:{self.name}:{i}")
            for i in range(self._num_consumers)
        ]

    def would_refuse(self, batch: Batch) -> bool:
        """True when :meth:`offer` would raise for ``batch`` (checked before any fan-out)."""
        return self._closed or (self.on_full == "refuse" and not self._has_room(batch))

    def _has_room(self, batch: Batch) -> bool:
        # An empty queue takes a batch larger than its capacity; otherwise it could never go.
        return self._items == 0 or self._items + batch.items <= self.capacity

    def offer(self, batch: Batch, *, reserved: bool = False) -> bool:
        """Enqueue ``batch``. Returns False if it was dropped (``on_full: drop``).

        Raises :class:`BackpressureError` when full with ``on_full: refuse``, and
        :class:`NotReadyError` once the queue is shutting down. ``reserved`` means the caller
        already checked :meth:`would_refuse` for this batch (fan-out is all-or-nothing), so a
        ``refuse`` queue takes it even if processors made it slightly larger.
        """
        if self._closed:
            raise NotReadyError(f"exporter {self.name} is shutting down", retry_after=5.0)
        if not self._has_room(batch):
            if self.on_full == "drop":
                self._metrics.exporter_dropped.labels(self.name, batch.signal.value).inc(
                    batch.items
                )
                log.warning(
                    "exporter %s queue full: dropped %d %s", self.name, batch.items, batch.signal
                )
                return False
            if not reserved:
                raise BackpressureError(
                    f"exporter {self.name} queue is full ({self._items}/{self.capacity} items)"
                )
        self._pending.append(batch)
        self._items += batch.items
        self._size_gauge.set(self._items)
        self._idle.clear()
        self._wakeup.set()
        return True

    async def _work(self) -> None:
        while True:
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            batch = self._pending.popleft()
            self._in_flight.add(batch)
            try:
                await self._deliver(batch)
            finally:
                self._in_flight.discard(batch)
                self._release(batch)

    def _release(self, batch: Batch) -> None:
        self._items -= batch.items
        self._size_gauge.set(self._items)
        if self._items == 0:
            self._idle.set()

    async def _deliver(self, batch: Batch) -> None:
        signal = batch.signal.value
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                await self.exporter.push(batch)
            except PermanentError as exc:
                self._fail(batch, f"permanent error, not retried: {exc}")
                return
            except RetryableError as exc:
                if not self.retry.enabled:
                    self._fail(batch, f"retry disabled: {exc}")
                    return
                delay = (
                    exc.retry_after
                    if exc.retry_after is not None
                    else self.retry.delay(attempt, self._rng)
                )
                elapsed = time.monotonic() - started
                limit = self.retry.max_elapsed_time
                if limit and elapsed + delay > limit:
                    self._fail(
                        batch, f"gave up after {elapsed:.1f}s and {attempt + 1} tries: {exc}"
                    )
                    return
                self._note_error("retrying", str(exc))
                self._metrics.exporter_retries.labels(self.name, signal).inc()
                log.warning(
                    "exporter %s: %s; retrying %d %s in %.2fs",
                    self.name, exc, batch.items, signal, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                attempt += 1
            except Exception as exc:  # a bug in an exporter: never retry blindly, never hide
                log.exception("exporter %s failed unexpectedly", self.name)
                self._fail(batch, f"unexpected {type(exc).__name__}: {exc}")
                return
            else:
                self._metrics.exporter_sent.labels(self.name, signal).inc(batch.items)
                self.status.state = "ok"
                self.status.last_success_at = time.time()
                return

    def _note_error(self, state: Literal["retrying", "failed"], message: str) -> None:
        self.status.state = state
        self.status.last_error = message
        self.status.last_error_at = time.time()

    def _fail(self, batch: Batch, why: str) -> None:
        self._note_error("failed", why)
        self._metrics.exporter_failed.labels(self.name, batch.signal.value).inc(batch.items)
        log.error("exporter %s: %d %s failed: %s", self.name, batch.items, batch.signal, why)

    async def shutdown(self, timeout: float) -> None:
        """Stop accepting, deliver what is queued within ``timeout`` s, then stop.

        Whatever is still queued or in flight at the deadline is counted as dropped and
        logged, never lost silently.
        """
        self._closed = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        if self._stopped:  # a concurrent, shorter shutdown already finished the job
            return
        self._stopped = True
        leftovers = list(self._pending) + list(self._in_flight)  # before cancelling empties it
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        for batch in leftovers:
            self._metrics.exporter_dropped.labels(self.name, batch.signal.value).inc(batch.items)
        if leftovers:
            log.error(
                "exporter %s: shutdown after %.1fs dropped %d undelivered item(s)",
                self.name, timeout, sum(b.items for b in leftovers),
            )  # fmt: skip
        self._pending.clear()
        self._items = 0
        self._size_gauge.set(0)
        self._idle.set()
        await self.exporter.shutdown()
