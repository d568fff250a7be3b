"""Per-service minute history (folding of closed buckets, the open minute, contiguity, bounds)
and the system sample ring, with an injected clock."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging

import pytest
from pydantic import ValidationError

from gateway.health.config import HealthConfig
from gateway.health.history import MinuteHistory, SystemHistory
from gateway.health.services import ServiceHealthTracker
from gateway.health.system import ProcessUsage, SystemSampler, SystemSnapshot
from gateway.otlp.batch import Batch, Signal
from tests.factories import logs_request
from tests.gateway.health.helpers import spans_batch

T0 = 1_800_000_000.0  # a minute boundary


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def tracker(clock: Clock, **health) -> ServiceHealthTracker:
    return ServiceHealthTracker(HealthConfig.model_validate(health), clock=clock)


def counts(points) -> list[tuple[float, int, int]]:
    return [(p.start - T0, p.requests, p.errors) for p in points]


def test_points_are_contiguous_minutes_up_to_now_with_empty_ones_zero():
    clock = Clock(T0 + 30)
    health = tracker(clock, history_minutes=5)
    health.observe(spans_batch("a", [0.01] * 4, errors={0}))
    clock.now = T0 + 3 * 60 + 5  # minute 3, the bucket of minute 0 is still open
    points = health.history("a")
    assert points is not None
    assert [p.start for p in points] == [T0 + m * 60 for m in range(-1, 4)]
    assert counts(points) == [(-60, 0, 0), (0, 4, 1), (60, 0, 0), (120, 0, 0), (180, 0, 0)]
    assert points[1].p50 == pytest.approx(0.01, rel=0.02)
    assert [p.p99 for p in points if p.requests == 0] == [None] * 4


def test_closed_buckets_fold_into_their_minute_and_the_open_one_is_merged_once():
    clock = Clock()
    health = tracker(clock, history_minutes=3)
    for second in (0, 15, 25, 59.9, 61, 75):  # five buckets of minute 0, two of minute 1
        clock.now = T0 + second
        health.observe(spans_batch("a", [0.001, 0.002], errors={1}))
    clock.now = T0 + 80
    first = counts(health.history("a") or [])
    assert first == [(-60, 0, 0), (0, 8, 4), (60, 4, 2)]
    assert counts(health.history("a") or []) == first  # reading does not fold twice
    health.observe(spans_batch("a", [0.003]))  # opens 80..90: 70..80 is folded
    assert counts(health.history("a") or [])[-1] == (60, 5, 2)
    clock.now = T0 + 125  # minute 2: minute 1's last bucket is still the open one
    assert counts(health.history("a") or []) == [(0, 8, 4), (60, 5, 2), (120, 0, 0)]


def test_percentiles_cover_folded_and_open_buckets_of_the_minute():
    clock = Clock()
    health = tracker(clock)
    clock.now = T0 + 5
    health.observe(spans_batch("a", [0.001] * 90))  # closed once the next bucket starts
    clock.now = T0 + 15
    health.observe(spans_batch("a", [1.0] * 10))  # the open bucket
    last = (health.history("a") or [])[-1]
    assert last.requests == 100
    assert last.p50 == pytest.approx(0.001, rel=0.02)
    assert last.p95 == pytest.approx(1.0, rel=0.021)  # the sketch's 2 %
    assert last.p99 == pytest.approx(1.0, rel=0.021)
    clock.now = T0 + 65  # the next minute starts: minute 0 is closed, same answer
    health.observe(spans_batch("a", [0.5]))
    closed = (health.history("a") or [])[-2]
    assert (closed.requests, closed.p50, closed.p99) == (100, last.p50, last.p99)


def test_only_the_newest_two_minutes_keep_a_sketch():
    history = MinuteHistory(10)
    for minute in range(4):
        history.add(T0 + minute * 60, 2, 0, {10: 1, 20: 1})
        history.add(T0 + minute * 60 + 10, 1, 1, {30: 1})
    minutes = list(history._minutes)
    assert [m.latencies for m in minutes[:-2]] == [{}] * 2
    assert all(m.percentiles is not None for m in minutes[:-2])
    assert [m.latencies for m in minutes[-2:]] == [{10: 1, 20: 1, 30: 1}] * 2
    assert minutes[-1].percentiles is None
    points = history.points(T0 + 4 * 60 - 1)
    assert [(p.requests, p.errors) for p in points[-4:]] == [(3, 1)] * 4
    assert len({(p.p50, p.p95, p.p99) for p in points[-4:]}) == 1


def test_a_late_share_lands_in_its_own_minute_while_it_keeps_a_sketch():
    history = MinuteHistory(10)
    history.add(T0, 2, 0, {10: 2})
    history.add(T0 + 60, 1, 0, {10: 1})  # the next minute started
    history.add_late(T0 + 50, 1, 1, {40: 1})  # a worker's share of the first minute's bucket
    points = history.points(T0 + 119)
    assert [(p.requests, p.errors) for p in points[-2:]] == [(3, 1), (1, 0)]
    assert points[-2].p99 is not None and points[-2].p99 > points[-1].p99  # type: ignore[operator]
    history.add(T0 + 120, 1, 0, {10: 1})
    history.add(T0 + 180, 1, 0, {10: 1})
    settled = history.points(T0 + 239)[-4]
    history.add_late(T0 + 50, 5, 0, {10: 5})  # its minute has no sketch any more
    points = history.points(T0 + 239)[-4:]
    assert [p.requests for p in points] == [8, 1, 1, 1]  # the counts still land in it
    assert (points[0].p50, points[0].p99) == (settled.p50, settled.p99)  # percentiles kept
    history.add_late(T0 - 120, 1, 0, {10: 1})  # a minute nobody counted in yet: in its place
    assert [p.requests for p in history.points(T0 + 239)[-6:]] == [1, 0, 8, 1, 1, 1]


def test_old_minutes_leave_the_ring_and_memory_stays_bounded():
    clock = Clock()
    health = tracker(clock, history_minutes=4)
    for minute in range(10):
        clock.now = T0 + minute * 60 + 1
        health.observe(spans_batch("a", [0.01] * (minute + 1)))
    points = health.history("a") or []
    assert counts(points) == [(360, 7, 0), (420, 8, 0), (480, 9, 0), (540, 10, 0)]
    assert len(health._services["a"].history) <= 4
    clock.now = T0 + 100 * 60  # long idle: every point empty, still contiguous
    assert [p.requests for p in health.history("a") or []] == [0, 0, 0, 0]


def test_a_bucket_counts_in_the_minute_its_start_falls_in():
    clock = Clock()
    health = tracker(clock, bucket="25s", window="300s")
    for second in (10, 55, 70):  # buckets 0..25, 50..75 (minute 0), 50..75 again
        clock.now = T0 + second
        health.observe(spans_batch("a", [0.01]))
    clock.now = T0 + 76  # 75..100 starts in minute 1
    health.observe(spans_batch("a", [0.01]))
    assert counts(health.history("a") or [])[-2:] == [(0, 3, 0), (60, 1, 0)]


def test_folding_happens_once_per_bucket_not_per_span(monkeypatch):
    calls = []
    original = MinuteHistory.add

    def add(self, *args):
        calls.append(args)
        original(self, *args)

    monkeypatch.setattr(MinuteHistory, "add", add)
    clock = Clock()
    health = tracker(clock)
    for i in range(50):
        clock.now = T0 + i * 0.1
        health.observe(spans_batch("a", [0.01] * 20))
    assert calls == []
    clock.now = T0 + 10
    health.observe(spans_batch("a", [0.01]))
    assert [(start, requests) for start, requests, *_ in calls] == [(T0, 1000)]


def test_a_clock_stepped_back_loses_no_request():
    clock = Clock(T0 + 130)
    health = tracker(clock, history_minutes=3)
    health.observe(spans_batch("a", [0.01]))
    clock.now = T0 + 70  # back one minute
    health.observe(spans_batch("a", [0.01] * 2))
    clock.now = T0 + 135
    health.observe(spans_batch("a", [0.01] * 4))
    clock.now = T0 + 150
    assert sum(p.requests for p in health.history("a") or []) == 7


def test_unknown_and_span_less_services_and_histories():
    clock = Clock(T0 + 1)
    health = tracker(clock, history_minutes=2)
    assert health.history("nope") is None
    health.observe(Batch.from_request(Signal.LOGS, logs_request(1, service="logs-only")))
    health.observe(spans_batch("web", [0.2]))
    all_ = health.histories()
    assert list(all_) == ["logs-only", "web"]
    assert counts(all_["logs-only"]) == [(-60, 0, 0), (0, 0, 0)]
    assert counts(all_["web"]) == [(-60, 0, 0), (0, 1, 0)]


def test_history_minutes_is_bounded_in_config():
    assert HealthConfig().history_minutes == 60
    assert HealthConfig(history_minutes=1440).history_minutes == 1440
    for bad in (0, 1441):
        with pytest.raises(ValidationError):
            HealthConfig(history_minutes=bad)


def snapshot(at: float, cpu_idle: float = 0.75, rss: int = 1000) -> SystemSnapshot:
    return SystemSnapshot(
        at=at,
        interval=10.0,
        cpu_modes={"idle": cpu_idle, "user": 1 - cpu_idle},
        memory_total=1000,
        memory_states={"used": 250},
        filesystems=(),
        network=(),
        process=ProcessUsage(cpu_utilization=0.05, memory_rss=rss, threads=3, open_fds=9),
    )


def test_system_history_keeps_one_point_per_interval_within_its_size():
    ring = SystemHistory(interval=10, size=3)
    assert ring.record(snapshot(T0)) is True
    assert ring.record(snapshot(T0 + 5)) is False  # too soon
    assert ring.record(snapshot(T0 + 9.5)) is True  # timer jitter tolerated
    assert ring.record(snapshot(T0 + 1), now=T0 + 20) is True  # ``now`` wins over ``at``
    assert ring.record(snapshot(T0 + 30, rss=7)) is True
    points = ring.points()
    assert [p.at for p in points] == [T0 + 9.5, T0 + 20, T0 + 30] and len(ring) == 3
    last = points[-1]
    assert (last.cpu_utilization, last.memory_utilization) == (0.25, 0.25)
    assert (last.process_cpu_utilization, last.process_rss_bytes) == (0.05, 7)
    assert ring.record(snapshot(T0 - 100)) is True  # a clock stepped back does not stall it
    with pytest.raises(ValueError):
        SystemHistory(interval=0)


class FakeSampler:
    def __init__(self, fail: int = 0) -> None:
        self.calls = 0
        self.fail = fail
        self.max_ages: list[float] = []

    def fresh(self, max_age: float) -> SystemSnapshot:
        self.calls += 1
        if self.calls <= self.fail:
            raise OSError("no /proc")
        self.max_ages.append(max_age)
        return snapshot(T0 + self.calls * 10)


@pytest.mark.timeout(10)
async def test_run_samples_every_interval_until_stopped_and_survives_failures(caplog):
    ring = SystemHistory(interval=0.01, size=5)
    sampler = FakeSampler(fail=3)
    stop = asyncio.Event()
    with caplog.at_level(logging.WARNING, logger="otelgate.health"):
        task = asyncio.create_task(ring.run(sampler, stop))
        while len(ring) < 5:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 1)
    assert sampler.calls >= 8 and len(ring) == 5
    assert [r.getMessage() for r in caplog.records] == ["system history: sampling failed: no /proc"]


@pytest.mark.timeout(10)
async def test_run_stops_at_once_and_is_cancellable():
    ring = SystemHistory(interval=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(ring.run(FakeSampler(), stop))
    while len(ring) < 1:  # samples at once, then waits an hour
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 1)
    task = asyncio.create_task(ring.run(FakeSampler()))  # no stop event: until cancelled
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.timeout(10)
async def test_run_keeps_a_point_every_interval_with_the_real_sampler():
    """Found in review: reusing a snapshot up to a whole interval old made every other tick
    the previous point again, so points were two intervals apart."""
    ring = SystemHistory(interval=0.25, size=100)
    sampler = SystemSampler()
    task = asyncio.create_task(ring.run(sampler))
    await asyncio.sleep(1.4)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    times = [p.at for p in ring.points()]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) >= 5 and max(gaps) < 0.4, gaps


def test_run_asks_only_for_a_nearly_new_snapshot():
    sampler = FakeSampler()
    ring = SystemHistory(interval=10)
    asyncio.run(_one_tick(ring, sampler))
    assert sampler.max_ages == [10 * SystemHistory.TOLERANCE]


async def _one_tick(ring: SystemHistory, sampler: FakeSampler) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(ring.run(sampler, stop))
    while not sampler.max_ages:
        await asyncio.sleep(0.01)
    stop.set()
    await task
