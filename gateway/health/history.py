"""Short in-memory history for the dashboard: per-service minutes and system samples.

:class:`MinuteHistory` is one service's ring of minute buckets (``health.history_minutes``,
default 60). The service tracker folds each of its 10 s buckets in once the bucket is
closed, so nothing is added per span; a bucket counts in the minute its *start* falls in
(with a ``health.bucket`` that does not divide 60, a bucket straddling two minutes counts
in the first). Only the newest two minutes keep a latency sketch (a worker's share of a
bucket can arrive just after the next minute started): when a later minute starts, the
percentiles of the one before the newest are computed once and its sketch is dropped, so
memory is O(minutes) per service. Reading merges the bucket still open, so the current
minute is always up to date.

:class:`SystemHistory` is a ring of host and gateway-process samples for sparklines (one
per ``interval``, default 10 s; 360 points = 1 h).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from gateway.health import sketch
from gateway.health.system import SystemSnapshot

log = logging.getLogger("otelgate.health")

MINUTE = 60
_QUANTILES = (0.50, 0.95, 0.99)
_Percentiles = tuple[float | None, float | None, float | None]
_NONE: _Percentiles = (None, None, None)


class MinutePoint(NamedTuple):
    """One minute of one service: SERVER spans, errors and latency percentiles (seconds)."""

    start: float  # epoch seconds of the minute
    requests: int
    errors: int
    p50: float | None
    p95: float | None
    p99: float | None


@dataclass(slots=True)
class _Minute:
    index: int  # floor(start / 60)
    requests: int = 0
    errors: int = 0
    latencies: dict[int, int] = field(default_factory=dict)  # emptied once closed
    percentiles: _Percentiles | None = None  # of ``latencies``; None: not computed since a fold


def _percentiles(latencies: Mapping[int, int]) -> _Percentiles:
    p50, p95, p99 = sketch.quantiles(latencies, _QUANTILES)
    return p50, p95, p99


def _fold(minute: _Minute, requests: int, errors: int, latencies: Mapping[int, int]) -> None:
    minute.requests += requests
    minute.errors += errors
    minute.percentiles = None
    merged = minute.latencies
    for bucket, n in latencies.items():
        merged[bucket] = merged.get(bucket, 0) + n


def _settled(minute: _Minute) -> _Percentiles:
    if minute.percentiles is None:
        minute.percentiles = _percentiles(minute.latencies)
    return minute.percentiles


class MinuteHistory:
    """One service's minutes, oldest first, at most ``minutes`` of them."""

    __slots__ = ("_merged", "_minutes", "size")

    def __init__(self, minutes: int) -> None:
        self.size = minutes
        self._minutes: deque[_Minute] = deque(maxlen=minutes)
        # The percentiles of the newest minute with the open bucket, and what they cover.
        self._merged: tuple[tuple[int, int, float, int], _Percentiles] | None = None

    def __len__(self) -> int:
        return len(self._minutes)

    def _minute_of(self, start: float) -> int:
        # A clock stepped back must not reopen a closed minute: count in the newest one.
        index = int(start // MINUTE)
        return max(index, self._minutes[-1].index) if self._minutes else index

    def add(self, start: float, requests: int, errors: int, latencies: Mapping[int, int]) -> None:
        """Fold in a closed bucket that started at ``start`` (epoch seconds)."""
        index = self._minute_of(start)
        minutes = self._minutes
        if not minutes or minutes[-1].index != index:
            if len(minutes) > 1:  # the minute before the newest: keep its percentiles only
                _settled(minutes[-2])
                minutes[-2].latencies = {}
            minutes.append(_Minute(index))
        _fold(minutes[-1], requests, errors, latencies)

    def add_late(
        self, start: float, requests: int, errors: int, latencies: Mapping[int, int]
    ) -> None:
        """Fold in more of a bucket already folded (a worker's late share, gateway.workers),
        into its own minute: its sketch too while it has one (the newest two minutes, or a
        minute inserted late); a minute settled already keeps its percentiles."""
        index = int(start // MINUTE)
        minutes = self._minutes
        if not minutes or index > minutes[-1].index:
            self.add(start, requests, errors, latencies)
            return
        minute = next((m for m in reversed(minutes) if m.index == index), None)
        if minute is None:  # no share of that minute yet: in its place
            if len(minutes) == minutes.maxlen:
                if index < minutes[0].index:
                    return  # older than the whole ring
                minutes.popleft()
            minute = _Minute(index)
            minutes.insert(sum(1 for m in minutes if m.index < index), minute)
        if minute.latencies or minute.percentiles is None:
            _fold(minute, requests, errors, latencies)
        else:  # settled: exact counts, percentiles as they were
            minute.requests += requests
            minute.errors += errors

    def points(
        self,
        now: float,
        pending: tuple[float, int, int, Mapping[int, int]] | None = None,
    ) -> list[MinutePoint]:
        """One point per minute of the last ``size`` minutes up to ``now``, oldest first.

        ``pending`` is the open bucket (start, requests, errors, latencies), not folded in
        yet: it counts in its minute here, and is not kept.
        """
        current = int(now // MINUTE)
        first = current - self.size + 1
        by_index = {m.index: m for m in self._minutes if first <= m.index <= current}
        extra_at = self._minute_of(pending[0]) if pending is not None else None
        points = []
        for index in range(first, current + 1):
            minute = by_index.get(index)
            if pending is not None and index == extra_at:
                points.append(self._with_pending(index, minute, pending))
            elif minute is None:
                points.append(MinutePoint(index * MINUTE, 0, 0, None, None, None))
            else:
                points.append(
                    MinutePoint(index * MINUTE, minute.requests, minute.errors, *_settled(minute))
                )
        return points

    def _with_pending(
        self,
        index: int,
        minute: _Minute | None,
        pending: tuple[float, int, int, Mapping[int, int]],
    ) -> MinutePoint:
        # Only the newest minute can share the open bucket's minute, and it is not closed.
        requests = pending[1] + (minute.requests if minute is not None else 0)
        errors = pending[2] + (minute.errors if minute is not None else 0)
        # A count of requests grows with every latency counted: unchanged counts, same sketch.
        key = (index, minute.requests if minute is not None else 0, pending[0], pending[1])
        if self._merged is None or self._merged[0] != key:
            latencies = minute.latencies if minute is not None else {}
            self._merged = key, _percentiles(sketch.merge((latencies, pending[3])))
        return MinutePoint(index * MINUTE, requests, errors, *self._merged[1])


@dataclass(frozen=True, slots=True)
class SystemPoint:
    """One system sample: host and gateway-process usage (utilizations 0..1)."""

    at: float  # epoch seconds
    cpu_utilization: float
    memory_utilization: float
    process_cpu_utilization: float
    process_rss_bytes: int


class Sampler(Protocol):
    """What :meth:`SystemHistory.run` needs of :class:`~gateway.health.system.SystemSampler`."""

    def fresh(self, max_age: float) -> SystemSnapshot:
        """The latest snapshot if younger than ``max_age`` seconds, else a new one."""
        ...


class SystemHistory:
    """The last ``size`` system samples, at most one per ``interval`` seconds."""

    # A sample up to 10 % early still counts as the next one (timer jitter).
    TOLERANCE = 0.1

    def __init__(self, interval: float = 10.0, size: int = 360) -> None:
        if interval <= 0 or size < 1:
            raise ValueError("interval must be positive and size at least 1")
        self.interval = interval
        self.size = size
        self._points: deque[SystemPoint] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self._points)

    def record(self, snapshot: SystemSnapshot, now: float | None = None) -> bool:
        """Keep a point of ``snapshot`` taken at ``now`` (default: its own time); False when
        the previous point is less than ``interval`` old (the sample is dropped)."""
        at = snapshot.at if now is None else now
        if self._points:
            since = at - self._points[-1].at
            # A clock stepped back (since < 0) restarts the spacing rather than stalling it.
            if 0 <= since < self.interval * (1 - self.TOLERANCE):
                return False
        self._points.append(
            SystemPoint(
                at=at,
                cpu_utilization=snapshot.cpu_utilization,
                memory_utilization=snapshot.memory_utilization,
                process_cpu_utilization=snapshot.process.cpu_utilization,
                process_rss_bytes=snapshot.process.memory_rss,
            )
        )
        return True

    def points(self) -> list[SystemPoint]:
        """Every point kept, oldest first."""
        return list(self._points)

    async def run(self, sampler: Sampler, stop: asyncio.Event | None = None) -> None:
        """Sample now and then every ``interval`` (off the event loop) until ``stop`` is set
        (without one, until cancelled). A failing sample is logged once per run of failures."""
        stop = stop or asyncio.Event()
        failing = False
        next_at = time.monotonic()
        while not stop.is_set():
            try:
                # A snapshot someone else took (hostmetrics, /health) within the interval is
                # reused: each new sample restarts the shared CPU baseline.
                # (Only a nearly new one: an older one would be the previous point again.)
                snapshot = await asyncio.to_thread(sampler.fresh, self.interval * self.TOLERANCE)
            except Exception as exc:  # psutil raises OS-specific errors; keep going
                if not failing:
                    log.warning("system history: sampling failed: %s", exc)
                failing = True
            else:
                failing = False
                self.record(snapshot)
            # Keep the schedule; after a sample slower than the interval, wait a whole one.
            next_at += self.interval
            if next_at <= time.monotonic():
                next_at = time.monotonic() + self.interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=next_at - time.monotonic())
