"""Cumulative series as deltas: what the Collector's awsemf exporter does for CloudWatch.

CloudWatch aggregates the values it receives in each period (Sum, SampleCount...), so a
counter must arrive as the change since its previous point. Per series (metric, resource,
scope and attributes) the last cumulative point is kept and the next one is reported as the
difference; the components of a point are its value, or ``(count, sum, buckets...)``.

* The first point of a series is the baseline and reports nothing, unless the series started
  after this exporter did (its ``start_time`` is set, later than the exporter's start and not
  its own timestamp: a counter born since, whose whole value is new). This is the
  ``initial_value: auto`` rule of the Collector's cumulativetodelta processor.
* A reset (another ``start_time``, other bucket bounds, a count or bucket that went down)
  reports the new point whole: all of it happened since the reset.
* A point not newer than the last one reports nothing: the same point again is a duplicate,
  an older one is out of order (CloudWatch would count it twice).

Series not updated for ``expiration`` seconds are forgotten. The state lives in the process:
with ``service.workers`` above 1, metrics pipelines with this exporter run in the supervisor
(:mod:`gateway.workers.roles`), so every point of a series meets the same state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Literal

Values = tuple[float, ...]
Skip = Literal["baseline", "duplicate", "out_of_order"]


@dataclass(slots=True)
class _Last:
    start_ns: int
    time_ns: int
    values: Values
    shape: Hashable
    seen: float


class DeltaTracker:
    """The last cumulative point of every series (see the module doc)."""

    def __init__(
        self,
        started_ns: int,
        expiration: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.started_ns = started_ns
        self.expiration = expiration
        self._clock = clock
        self._series: dict[Hashable, _Last] = {}
        self._swept = clock()

    def __len__(self) -> int:
        return len(self._series)

    def delta(
        self, key: Hashable, start_ns: int, time_ns: int, values: Values, shape: Hashable = None
    ) -> Values | Skip:
        """The change of series ``key`` since its last point, or why there is none.
        ``values[0]`` and ``values[2:]`` never go down between resets; ``shape`` (bucket
        bounds) changes only with a reset."""
        now = self._clock()
        last = self._series.get(key)
        if last is None:
            self._series[key] = _Last(start_ns, time_ns, values, shape, now)
            born_since = start_ns and start_ns != time_ns and start_ns >= self.started_ns
            return values if born_since else "baseline"
        if time_ns <= last.time_ns:
            same = time_ns == last.time_ns and values == last.values
            return "duplicate" if same else "out_of_order"
        reset = (
            (start_ns and start_ns != last.start_ns)
            or shape != last.shape
            or len(values) != len(last.values)
            or values[0] < last.values[0]
            or any(v < p for v, p in zip(values[2:], last.values[2:], strict=False))
        )
        delta = values if reset else tuple(v - p for v, p in zip(values, last.values, strict=True))
        last.start_ns, last.time_ns, last.values, last.shape, last.seen = (
            start_ns, time_ns, values, shape, now
        )  # fmt: skip
        return delta

    def sweep(self) -> int:
        """Forget series not seen for ``expiration`` seconds (at most every half of it);
        returns how many."""
        now = self._clock()
        if now - self._swept < self.expiration / 2:
            return 0
        self._swept = now
        stale = [k for k, last in self._series.items() if now - last.seen > self.expiration]
        for key in stale:
            del self._series[key]
        return len(stale)
