"""Per-identity rate limits: token buckets for items and bytes per second.

A request is charged once its items are counted (after decoding). It is refused when a
bucket does not hold its cost, and the refusal says exactly when it would: the time until the
bucket has refilled enough (``Retry-After``). A request larger than a whole bucket is taken
when the bucket is full and leaves it in debt, so the average rate still holds and a big
request is never refused for ever.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gateway.security.auth_config import RateLimitConfig


@dataclass(slots=True)
class TokenBucket:
    """``rate`` per second, holding at most ``capacity``; starts full."""

    rate: float
    capacity: float
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    _stamp: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = self.capacity
        self._stamp = self.clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def wait(self, cost: float) -> float:
        """Seconds until ``cost`` can be taken (0: now). Costs above the capacity need a full
        bucket."""
        self._refill()
        short = min(cost, self.capacity) - self.tokens
        return 0.0 if short <= 1e-9 * self.capacity else short / self.rate  # float slack

    def take(self, cost: float) -> None:
        """Take ``cost`` (after :meth:`wait` said 0); may leave the bucket in debt."""
        self.tokens -= cost


@dataclass(slots=True)
class Limit:
    """The buckets of one rate-limit config (items, bytes, or both)."""

    label: str  # the token name or ``tenant:<name>``, for messages
    items: TokenBucket | None
    nbytes: TokenBucket | None
    last: tuple[int, int] = (0, 0)  # the last request's items and bytes: the next one's guess

    @classmethod
    def of(
        cls, label: str, config: RateLimitConfig, clock: Callable[[], float] = time.monotonic
    ) -> Limit:
        """Buckets for ``config``'s rates, each holding ``burst`` seconds' worth."""

        def bucket(rate: float | None) -> TokenBucket | None:
            if rate is None:
                return None
            return TokenBucket(rate, max(1.0, rate * config.burst), clock)

        return cls(label, bucket(config.items_per_second), bucket(config.bytes_per_second))

    def wait(self, items: int, nbytes: int) -> float:
        """Seconds until a request of ``items`` and ``nbytes`` fits."""
        waits = [0.0]
        if self.items is not None:
            waits.append(self.items.wait(items))
        if self.nbytes is not None:
            waits.append(self.nbytes.wait(nbytes))
        return max(waits)

    def take(self, items: int, nbytes: int) -> None:
        """Charge a request (a negative cost gives back)."""
        if self.items is not None:
            self.items.take(items)
            self.items.tokens = min(self.items.tokens, self.items.capacity)
        if self.nbytes is not None:
            self.nbytes.take(nbytes)
            self.nbytes.tokens = min(self.nbytes.tokens, self.nbytes.capacity)


def _longest_wait(limits: Sequence[Limit], costs: Sequence[tuple[int, int]]) -> tuple[float, str]:
    wait, label = 0.0, ""
    for limit, (items, nbytes) in zip(limits, costs, strict=True):
        needed = limit.wait(items, nbytes)
        if needed > wait:
            wait, label = needed, limit.label
    return wait, label


def admit(limits: Sequence[Limit], items: int, nbytes: int) -> tuple[float, str]:
    """Charge every limit if all of them hold the request, and return ``(0.0, "")``; else
    charge none and return the longest wait with the label of the limit that asked for it."""
    wait, label = _longest_wait(limits, [(items, nbytes)] * len(limits))
    for limit in limits:
        limit.last = (items, nbytes)
        if wait == 0.0:
            limit.take(items, nbytes)
    return wait, label


def foresee(limits: Sequence[Limit]) -> tuple[float, str]:
    """Before a request's body is read: the wait a request as large as each limit's last one
    would get (so a client told to wait this long is taken when it comes back with the same)."""
    return _longest_wait(limits, [limit.last for limit in limits])


def give_back(limits: Sequence[Limit], items: int, nbytes: int) -> None:
    """Return a charged request's cost (it was refused after all: a full queue, shutdown)."""
    for limit in limits:
        limit.take(-items, -nbytes)
