"""Error tracking in the running gateway: the tracker's groups kept in the store (written
every ``store.flush_interval`` from a worker thread), retention, operator status changes and
the tracker's own metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.error_tracking.groups import STATUSES, ErrorGroup, Sample, Status
from gateway.error_tracking.persistence import ErrorStore, rows_of
from gateway.error_tracking.tracker import ErrorTracker

log = logging.getLogger("otelgate.errors")
RETENTION_EVERY = 60.0  # seconds between retention passes
MAX_WAITING_SAMPLES = 10_000  # samples kept for the store while writing fails (newest)


class ErrorTrackingService:
    """Owns the tracker's persistence; ``store`` is set by the gateway once it is open."""

    def __init__(
        self,
        tracker: ErrorTracker,
        flush_interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tracker = tracker
        self.flush_interval = flush_interval
        self.clock = clock
        self.store: ErrorStore | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._last_retention = 0.0

    async def start(self) -> None:
        """Load the groups kept by a previous run, then write changes periodically."""
        if self.store is not None:
            limit = self.tracker.config.max_groups
            self.tracker.restore(await asyncio.to_thread(self.store.load, limit))
        self._task = asyncio.create_task(self._run(), name="error-tracking")

    async def stop(self) -> None:
        """Write what is left."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except Exception:
            log.exception("could not write the last error groups")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush()
                await self._retention()
            except Exception:
                log.exception("could not write error groups (will retry)")

    async def flush(self) -> None:
        """Write the changed groups and new samples; kept for the next try if it fails."""
        async with self._lock:
            groups, samples = self.tracker.take_changes()
            if self.store is None or not (groups or samples):
                return
            try:
                rows = rows_of(groups, samples)  # here, where the groups change
                await asyncio.to_thread(self.store.write, rows)
            except BaseException:  # kept for the next try; samples bounded while it fails
                self.tracker.dirty.update(g.id for g in groups)
                waiting = samples + self.tracker.pending_samples
                self.tracker.pending_samples = waiting[-MAX_WAITING_SAMPLES:]
                raise

    async def _retention(self) -> None:
        now = self.clock()
        if now - self._last_retention < RETENTION_EVERY:
            return
        self._last_retention = now
        gone = self.tracker.forget_before(now - self.tracker.config.retention)
        if gone and self.store is not None:
            async with self._lock:
                await asyncio.to_thread(self.store.delete, gone)
            log.info("error tracking: %d groups past retention removed", len(gone))

    async def set_status(self, group_id: str, status: Status, by: str | None) -> ErrorGroup | None:
        """Change a group's status and write it at once; None when the group is unknown."""
        group = self.tracker.set_status(group_id, status, by)
        if group is not None:
            await self.flush()
        return group

    async def samples(self, group_id: str) -> list[Sample]:
        """A group's samples, newest first (the ones not yet written included)."""
        waiting = {s.id: s for s in self.tracker.pending_samples if s.group_id == group_id}
        kept = [] if self.store is None else await asyncio.to_thread(self.store.samples, group_id)
        found = {**{s.id: s for s in kept}, **waiting}  # a waiting one is the newer version
        newest = sorted(found.values(), key=lambda s: (-s.time, s.id))
        return newest[: self.tracker.config.samples_per_group]

    def groups_in_trace(self, trace_id: str) -> list[str]:
        """Ids of the groups with a sample in ``trace_id`` (written or waiting). Blocks: call
        it from a worker thread."""
        waiting = {s.group_id for s in list(self.tracker.pending_samples) if s.trace_id == trace_id}
        store = self.store
        if store is not None:
            waiting.update(store.groups_in_trace(trace_id))
        return sorted(waiting)


class ErrorTrackingCollector(Collector):
    """``otelgate_error_occurrences_total``, ``otelgate_error_groups{status}`` and
    ``otelgate_error_occurrences_untracked_total``."""

    def __init__(self, tracker: ErrorTracker) -> None:
        self.tracker = tracker

    def collect(self) -> Iterator[Metric]:
        tracker = self.tracker
        yield CounterMetricFamily(
            "otelgate_error_occurrences",
            "Exceptions seen in span events and log records",
            value=tracker.occurrences,
        )
        yield CounterMetricFamily(
            "otelgate_error_occurrences_untracked",
            "Exceptions of new groups not tracked because errors.max_groups groups were",
            value=tracker.untracked,
        )
        by_status = dict.fromkeys(STATUSES, 0)
        for group in list(tracker.groups.values()):
            by_status[group.status] += 1
        gauge = GaugeMetricFamily(
            "otelgate_error_groups", "Error groups tracked, by status", labels=["status"]
        )
        for status, count in by_status.items():
            gauge.add_metric([status], count)
        yield gauge
