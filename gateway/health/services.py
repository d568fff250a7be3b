"""Service health: an observer of every accepted batch.

For each service (the resource's ``service.name``) seen in any signal the tracker keeps when
it was last seen, and from its SERVER spans a sliding window (``health.window``, default 5
minutes) split into buckets (``health.bucket``, default 10 s): requests, errors (status
ERROR) and a latency sketch (:mod:`gateway.health.sketch`, 2 % relative accuracy). Memory is
O(services x buckets x latency buckets seen); at most ``health.max_services`` services are
tracked: a new service replaces the one seen longest ago if that one is stale, else it is
not tracked (and counted).

Each service also keeps ``health.history_minutes`` (default 60) minutes of history
(:mod:`gateway.health.history`): a bucket is folded into its minute when the next one
starts, so the per-span path does no more work.

Spans count when they arrive (not by their own timestamps), so clock skew between services
and the gateway does not matter. Status, from the thresholds (with per-service overrides):
``stale`` when nothing arrived for ``stale_after``; with at least ``min_requests`` requests in
the window, ``unhealthy`` / ``degraded`` when the error rate or the p99 latency reaches that
threshold; ``healthy`` otherwise.

Component health is :mod:`gateway.health.status`.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from gateway.health import sketch
from gateway.health.config import (
    HealthConfig,
    ServiceThresholds,
)
from gateway.health.history import MinuteHistory, MinutePoint
from gateway.otlp.batch import Batch, Signal
from gateway.otlp.builders import service_name

ServiceStatus = Literal["healthy", "degraded", "unhealthy", "stale"]
_SERVER = Span.SPAN_KIND_SERVER
_ERROR = Status.STATUS_CODE_ERROR


@dataclass(slots=True)
class _Bucket:
    index: int  # floor(arrival time / bucket width)
    requests: int = 0
    errors: int = 0
    latencies: dict[int, int] = field(default_factory=dict)  # sketch bucket -> count


@dataclass(slots=True)
class _Service:
    first_seen: float
    last_seen: float
    history: MinuteHistory  # the closed buckets, by minute; the last bucket is still open
    signals: dict[str, float] = field(default_factory=dict)  # signal -> last seen
    buckets: deque[_Bucket] = field(default_factory=deque)
    touches: int = 0  # resource groups seen (a worker's drain says how many: untracked)


@dataclass(slots=True)
class ServiceDelta:
    """What a worker's tracker counted for one service since its last drain (mergeable)."""

    first_seen: float
    last_seen: float
    signals: dict[str, float]
    buckets: list[tuple[int, int, int, dict[int, int]]]  # (index, requests, errors, latencies)
    touches: int  # resource groups seen: what the supervisor counts as untracked if it must


@dataclass(frozen=True, slots=True)
class Latency:
    """Latency percentiles in seconds (within the sketch's 2 % relative accuracy)."""

    p50: float | None
    p95: float | None
    p99: float | None


@dataclass(frozen=True, slots=True)
class ServiceReport:
    """One service's health at one moment."""

    name: str
    status: ServiceStatus
    reasons: list[str]
    last_seen: float  # wall clock, seconds
    seconds_since_seen: float
    signals: dict[str, float]
    window_seconds: float  # the time the rates cover
    requests: int
    errors: int
    request_rate: float  # requests per second
    error_rate: float | None  # errors / requests; None without requests
    latency: Latency
    thresholds: ServiceThresholds


class ServiceHealthTracker:
    """Tracks every service seen; an :class:`~gateway.observers.Observer`."""

    def __init__(self, config: HealthConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.width = config.bucket
        self.slots = max(1, math.ceil(config.window / config.bucket))
        self.untracked = 0  # services refused because max_services were tracked and fresh
        self._services: dict[str, _Service] = {}

    def __len__(self) -> int:
        return len(self._services)

    def observe(self, batch: Batch) -> None:
        """Note the services in ``batch``; count the SERVER spans of traces."""
        now = self.clock()
        request = batch.request
        signal = batch.signal.value
        if batch.signal is Signal.TRACES:
            for rs in request.resource_spans:  # type: ignore[union-attr]
                service = self._touch(service_name(rs.resource), signal, now)
                if service is not None:
                    for ss in rs.scope_spans:
                        self._count(service, ss.spans, now)
            return
        groups = (
            request.resource_metrics  # type: ignore[union-attr]
            if batch.signal is Signal.METRICS
            else request.resource_logs  # type: ignore[union-attr]
        )
        for group in groups:
            self._touch(service_name(group.resource), signal, now)

    def _touch(self, name: str, signal: str, now: float) -> _Service | None:
        service = self._services.get(name)
        if service is None:
            if len(self._services) >= self.config.max_services and not self._evict(now):
                self.untracked += 1
                return None
            history = MinuteHistory(self.config.history_minutes)
            service = self._services[name] = _Service(now, now, history)
        service.last_seen = now
        service.signals[signal] = now
        service.touches += 1
        return service

    def _evict(self, now: float) -> bool:
        """Forget the service seen longest ago if it is stale; False if none is."""
        name, oldest = min(self._services.items(), key=lambda item: item[1].last_seen)
        if now - oldest.last_seen <= self.config.thresholds_for(name).stale_after:
            return False
        del self._services[name]
        return True

    def _count(self, service: _Service, spans: Iterable[Span], now: float) -> None:
        # Runs for every span received: filter in one comprehension, then touch only SERVER
        # spans, with the bucket and the sketch's function held in locals.
        servers = [span for span in spans if span.kind == _SERVER]
        if not servers:
            return
        bucket = self._bucket(service, now)
        bucket.requests += len(servers)
        latencies, index_of = bucket.latencies, sketch.bucket_index
        for span in servers:
            if span.status.code == _ERROR:
                bucket.errors += 1
            index = index_of(max(0, span.end_time_unix_nano - span.start_time_unix_nano) / 1e9)
            latencies[index] = latencies.get(index, 0) + 1

    def _bucket(self, service: _Service, now: float) -> _Bucket:
        return self._bucket_at(service, int(now // self.width))

    def _bucket_at(self, service: _Service, index: int) -> _Bucket:
        buckets = service.buckets
        if buckets and buckets[-1].index == index:
            return buckets[-1]
        if buckets:  # the open bucket is closed now: into its minute (once per bucket)
            done = buckets[-1]
            service.history.add(done.index * self.width, done.requests, done.errors, done.latencies)
        buckets.append(_Bucket(index))
        while buckets and buckets[0].index <= index - self.slots:
            buckets.popleft()
        return buckets[-1]

    def unbounded(self) -> ServiceHealthTracker:
        """This tracker without ``max_services`` (a worker's, drained often: the supervisor
        applies the limit when it merges)."""
        self.config = self.config.model_copy(update={"max_services": 2**62})
        return self

    def drain(self) -> dict[str, ServiceDelta]:
        """Everything counted since the last drain, then forget it (a worker's tracker,
        gateway.workers: the supervisor merges it with :meth:`merge`)."""
        taken, self._services = self._services, {}
        return {
            name: ServiceDelta(
                s.first_seen,
                s.last_seen,
                s.signals,
                [(b.index, b.requests, b.errors, b.latencies) for b in s.buckets],
                s.touches,
            )
            for name, s in taken.items()
        }

    def merge(self, deltas: dict[str, ServiceDelta]) -> None:
        """Add a worker's :meth:`drain`: the same counts as observing its batches here (a
        bucket's late share is added to it and, when already folded, to its minute)."""
        for name, delta in deltas.items():
            service = self._services.get(name)
            if service is None:
                # As one process would have met it: at its first arrival, once per group seen.
                if not self._touch(name, "traces", delta.first_seen):
                    self.untracked += delta.touches - 1
                    continue
                service = self._services[name]
                service.signals.clear()
            service.first_seen = min(service.first_seen, delta.first_seen)
            service.last_seen = max(service.last_seen, delta.last_seen)
            for signal, seen in delta.signals.items():
                service.signals[signal] = max(service.signals.get(signal, seen), seen)
            for index, requests, errors, latencies in delta.buckets:
                self._merge_bucket(service, index, requests, errors, latencies)

    def _merge_bucket(
        self, service: _Service, index: int, requests: int, errors: int, latencies: dict[int, int]
    ) -> None:
        buckets = service.buckets
        if buckets and index < buckets[-1].index:
            # A late share: its bucket was folded into its minute when a newer one started.
            service.history.add_late(index * self.width, requests, errors, latencies)
            if index <= buckets[-1].index - self.slots:
                return  # out of the window
            at = next(i for i, b in enumerate(buckets) if b.index >= index)
            if buckets[at].index != index:
                buckets.insert(at, _Bucket(index))
            target = buckets[at]
        else:
            target = self._bucket_at(service, index)
        target.requests += requests
        target.errors += errors
        for key, n in latencies.items():
            target.latencies[key] = target.latencies.get(key, 0) + n

    def names(self) -> list[str]:
        """The tracked services, sorted."""
        return sorted(self._services)

    def report(self, name: str) -> ServiceReport | None:
        """The health of one service now; None when it is not tracked."""
        service = self._services.get(name)
        if service is None:
            return None
        now = self.clock()
        oldest = int(now // self.width) - self.slots + 1
        live = [b for b in service.buckets if b.index >= oldest]
        requests = sum(b.requests for b in live)
        errors = sum(b.errors for b in live)
        window_start = max(oldest * self.width, service.first_seen)
        covered = min(
            self.config.window, max(now - window_start, min(self.width, self.config.window))
        )
        p50, p95, p99 = sketch.quantiles(
            sketch.merge(b.latencies for b in live), (0.50, 0.95, 0.99)
        )
        latency = Latency(p50, p95, p99)
        error_rate = errors / requests if requests else None
        thresholds = self.config.thresholds_for(name)
        since = max(0.0, now - service.last_seen)
        status, reasons = classify(thresholds, since, requests, error_rate, latency.p99)
        return ServiceReport(
            name=name,
            status=status,
            reasons=reasons,
            last_seen=service.last_seen,
            seconds_since_seen=since,
            signals=dict(service.signals),
            window_seconds=covered,
            requests=requests,
            errors=errors,
            request_rate=requests / covered if covered > 0 else 0.0,
            error_rate=error_rate,
            latency=latency,
            thresholds=thresholds,
        )

    def reports(self) -> list[ServiceReport]:
        """Every tracked service's health, by name."""
        found = (self.report(name) for name in self.names())
        return [r for r in found if r is not None]

    def history(self, name: str) -> list[MinutePoint] | None:
        """One point per minute of the last ``history_minutes`` up to now, oldest first
        (minutes without requests included); None when the service is not tracked."""
        service = self._services.get(name)
        return None if service is None else self._history(service, self.clock())

    def histories(self) -> dict[str, list[MinutePoint]]:
        """:meth:`history` of every tracked service, by name."""
        now = self.clock()
        return {name: self._history(self._services[name], now) for name in self.names()}

    def _history(self, service: _Service, now: float) -> list[MinutePoint]:
        pending = None
        if service.buckets:  # the open bucket, not folded into its minute yet
            b = service.buckets[-1]
            pending = (b.index * self.width, b.requests, b.errors, b.latencies)
        return service.history.points(now, pending)


def classify(
    t: ServiceThresholds,
    since_seen: float,
    requests: int,
    error_rate: float | None,
    p99: float | None,
) -> tuple[ServiceStatus, list[str]]:
    """A service's status and the reasons for it (pure; thresholds are inclusive)."""
    if since_seen > t.stale_after:
        return "stale", [f"nothing received for {since_seen:.0f}s (stale after {t.stale_after:g}s)"]
    if requests < t.min_requests:
        return "healthy", []
    unhealthy: list[str] = []
    degraded: list[str] = []
    if error_rate is not None:
        text = f"error rate {error_rate:.1%}"
        if error_rate >= t.error_rate_unhealthy:
            unhealthy.append(f"{text} >= {t.error_rate_unhealthy:.1%}")
        elif error_rate >= t.error_rate_degraded:
            degraded.append(f"{text} >= {t.error_rate_degraded:.1%}")
    if p99 is not None:
        text = f"p99 latency {p99:.3f}s"
        if p99 >= t.latency_p99_unhealthy:
            unhealthy.append(f"{text} >= {t.latency_p99_unhealthy:g}s")
        elif p99 >= t.latency_p99_degraded:
            degraded.append(f"{text} >= {t.latency_p99_degraded:g}s")
    if unhealthy:
        return "unhealthy", unhealthy + degraded
    if degraded:
        return "degraded", degraded
    return "healthy", []
