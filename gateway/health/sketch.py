"""A small latency sketch: log-spaced buckets with a guaranteed relative accuracy.

A value ``v`` falls into bucket ``i = ceil(log_g(v))``, which covers ``(g**(i-1), g**i]``
with ``g = (1 + a) / (1 - a)``. Reporting ``2 * g**i / (g + 1)`` for any value of the bucket
is off by at most ``a`` (relative) from the true value, whatever the distribution. With
``a = 2 %`` and latencies clamped to 1 µs .. 1 day, a sketch never holds more than ~630
buckets, and in practice far fewer (only the buckets seen are stored).

A quantile is the nearest-rank sample (the ``ceil(q * n)``-th smallest), so the sketch's
answer is within 2 % of the exact nearest-rank percentile.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

RELATIVE_ACCURACY = 0.02
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(GAMMA)
MIN_VALUE = 1e-6  # seconds; smaller latencies count as 1 µs
MAX_VALUE = 86_400.0  # seconds; larger ones count as one day
_MIN_INDEX = math.ceil(math.log(MIN_VALUE) / _LOG_GAMMA)
_MAX_INDEX = math.ceil(math.log(MAX_VALUE) / _LOG_GAMMA)


def bucket_index(value: float) -> int:
    """The bucket of a latency in seconds."""
    if not value > MIN_VALUE:  # also NaN
        return _MIN_INDEX
    return min(_MAX_INDEX, math.ceil(math.log(value) / _LOG_GAMMA))


def bucket_value(index: int) -> float:
    """The value reported for every latency in bucket ``index``."""
    return 2 * GAMMA**index / (GAMMA + 1)


def merge(counts: Iterable[Mapping[int, int]]) -> dict[int, int]:
    """Several sketches' bucket counts added together."""
    merged: dict[int, int] = {}
    for sketch in counts:
        for index, n in sketch.items():
            merged[index] = merged.get(index, 0) + n
    return merged


def quantiles(counts: Mapping[int, int], qs: Iterable[float]) -> list[float | None]:
    """Nearest-rank quantiles (``qs`` in 0..1) of a sketch; None for an empty sketch."""
    wanted = list(qs)
    total = sum(counts.values())
    if total == 0:
        return [None] * len(wanted)
    ranks = [max(1, math.ceil(q * total)) for q in wanted]
    found: list[float | None] = [None] * len(wanted)
    seen = 0
    for index in sorted(counts):
        seen += counts[index]
        for i, rank in enumerate(ranks):
            if found[i] is None and seen >= rank:
                found[i] = bucket_value(index)
        if all(v is not None for v in found):
            break
    return found
