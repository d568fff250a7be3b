"""Service health counted in worker processes and merged by the supervisor (gateway.workers)
answers exactly what one tracker observing the same batches answers: windows, percentiles,
staleness and per-minute history, whatever the order the workers' shares arrive in."""

from __future__ import annotations

import random

import pytest

from gateway.health.config import HealthConfig
from gateway.health.services import ServiceDelta, ServiceHealthTracker
from gateway.otlp.batch import Batch, Signal
from tests.factories import logs_request
from tests.gateway.health.helpers import Clock, spans_batch

T0 = 1_800_000_000.0


def _config(bucket: str = "10s") -> HealthConfig:
    return HealthConfig.model_validate({"window": "60s", "bucket": bucket, "history_minutes": 5})


@pytest.mark.parametrize("bucket", ["10s", "100ms", "1.1s"])
@pytest.mark.parametrize("seed", range(6))
def test_two_workers_merged_equal_one_tracker(seed, bucket):
    rng = random.Random(seed)
    clock = Clock()
    one = ServiceHealthTracker(_config(bucket), clock=clock)
    merged = ServiceHealthTracker(_config(bucket), clock=clock)
    workers = [ServiceHealthTracker(_config(bucket), clock=clock).unbounded() for _ in range(2)]
    pending: list[dict[str, ServiceDelta]] = []  # drained, not merged yet: they arrive late
    for _ in range(400):  # ~4 minutes of traffic crossing bucket and minute boundaries
        clock.now += rng.uniform(0.0, 1.2)
        service = rng.choice(["checkout", "payments", "search"])
        durations = [rng.lognormvariate(-3, 1) for _ in range(rng.randint(1, 6))]
        errors = {i for i in range(len(durations)) if rng.random() < 0.1}
        batch = spans_batch(service, durations, errors)
        if rng.random() < 0.1:
            batch = Batch.from_request(Signal.LOGS, logs_request(1, service))
        one.observe(batch)
        rng.choice(workers).observe(batch)
        if rng.random() < 0.3:  # a worker drains; its share reaches the supervisor later
            pending.append(rng.choice(workers).drain())
        while pending and rng.random() < 0.5:
            merged.merge(pending.pop(rng.randrange(len(pending))))
        if rng.random() < 0.05:  # the supervisor answers while shares are still on their way
            merged.histories()
    for worker in workers:
        pending.append(worker.drain())
    for delta in pending:
        merged.merge(delta)
    assert merged.names() == one.names()
    for name in one.names():
        ours, theirs = merged.report(name), one.report(name)
        assert ours == theirs, name
    assert merged.histories() == one.histories()


def test_a_worker_share_for_a_bucket_the_supervisor_never_had_counts_in_the_window():
    clock = Clock()
    merged = ServiceHealthTracker(_config(), clock=clock)
    early = ServiceHealthTracker(_config(), clock=clock)
    late = ServiceHealthTracker(_config(), clock=clock)
    late.observe(spans_batch("checkout", [0.1, 0.2]))  # bucket k
    clock.now += 10
    early.observe(spans_batch("checkout", [0.3], errors={0}))  # bucket k + 1
    merged.merge(early.drain())
    merged.merge(late.drain())  # arrives after a newer bucket: inserted, not lost
    report = merged.report("checkout")
    assert report is not None
    assert (report.requests, report.errors) == (3, 1)
    assert sum(p.requests for p in merged.histories()["checkout"]) == 3


def test_a_worker_late_by_more_than_a_minute_still_counts_in_its_minute():
    clock = Clock(T0 - T0 % 60 + 55)  # 5 s before a minute starts
    one = ServiceHealthTracker(_config(), clock=clock)
    merged = ServiceHealthTracker(_config(), clock=clock)
    slow, fast = (ServiceHealthTracker(_config(), clock=clock).unbounded() for _ in range(2))
    batch = spans_batch("checkout", [0.2], errors={0})
    one.observe(batch)
    slow.observe(batch)
    held = slow.drain()  # stuck behind a long relay backlog
    for _ in range(3):
        clock.now += 30
        batch = spans_batch("checkout", [0.1, 0.3])
        one.observe(batch)
        fast.observe(batch)
        merged.merge(fast.drain())
    merged.merge(held)  # 90 s late: its minute had no share at all
    assert merged.histories() == one.histories()


def test_max_services_applies_to_merged_services_as_in_one_process():
    clock = Clock()
    config = HealthConfig.model_validate({"max_services": 2})
    one = ServiceHealthTracker(config, clock=clock)
    merged = ServiceHealthTracker(config, clock=clock)
    worker = ServiceHealthTracker(config, clock=clock).unbounded()
    for _ in range(10):
        for name in ("a", "b", "c"):  # more names than the limit between two drains
            batch = spans_batch(name, [0.1])
            one.observe(batch)
            worker.observe(batch)
        clock.now += 0.01
    merged.merge(worker.drain())
    assert merged.names() == one.names() == ["a", "b"]
    assert merged.untracked == one.untracked == 10
    assert merged.report("a") == one.report("a")
    assert worker.drain() == {}  # drained: nothing counted twice
