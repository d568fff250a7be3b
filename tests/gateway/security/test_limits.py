"""Token buckets: what fits, what waits and for how long (a fake clock)."""

from __future__ import annotations

import pytest

from gateway.security.auth_config import RateLimitConfig
from gateway.security.limits import Limit, TokenBucket, admit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("taken", "elapsed", "cost", "wait"),
    [
        (0, 0.0, 10, 0.0),  # a full bucket (10) takes 10
        (10, 0.0, 1, 0.1),  # empty: one more after 1/rate
        (10, 0.5, 5, 0.0),  # half a second refills 5
        (10, 0.5, 6, 0.1),
        (0, 0.0, 25, 0.0),  # larger than the bucket: taken when full ...
        (25, 0.0, 1, 1.6),  # ... leaving it 15 in debt
        (10, 60.0, 10, 0.0),  # refills only up to the capacity
    ],
)
def test_bucket(taken, elapsed, cost, wait):
    clock = Clock()
    bucket = TokenBucket(rate=10.0, capacity=10.0, clock=clock)
    bucket.take(taken)
    clock.now += elapsed
    assert bucket.wait(cost) == pytest.approx(wait)


def test_a_request_larger_than_the_bucket_waits_for_a_full_one():
    clock = Clock()
    bucket = TokenBucket(rate=10.0, capacity=10.0, clock=clock)
    bucket.take(4)
    assert bucket.wait(1000) == pytest.approx(0.4)


def test_admit_charges_all_limits_or_none():
    clock = Clock()
    token = Limit.of("svc", RateLimitConfig(items_per_second=100, burst=1), clock)
    tenant = Limit.of("tenant acme", RateLimitConfig(bytes_per_second=1000, burst=1), clock)
    assert admit([token, tenant], 50, 900) == (0.0, "")
    wait, label = admit([token, tenant], 10, 200)  # items fit, bytes do not
    assert label == "tenant acme" and wait == pytest.approx(0.1)
    assert token.items is not None and token.items.tokens == pytest.approx(50)  # not charged
    clock.now += 0.1
    assert admit([token, tenant], 10, 200) == (0.0, "")


def test_burst_sets_the_capacity():
    config = RateLimitConfig.model_validate(
        {"items_per_second": 50, "bytes_per_second": 10, "burst": "4s"}
    )
    limit = Limit.of("x", config)
    assert limit.items is not None and limit.items.capacity == 200
    assert limit.nbytes is not None and limit.nbytes.capacity == 40
