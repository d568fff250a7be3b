"""Histograms and summaries as EMF values.

CloudWatch takes a distribution in an EMF record as an object: ``{"Values": [...], "Counts":
[...], "Max", "Min", "Count", "Sum"}`` (a histogram: each value with how many times it
occurred, at most 100 of them) or ``{"Max", "Min", "Count", "Sum"}`` (a statistic set). These
are the shapes AWS's own EMF library writes (aws-embedded-metrics-java, ``model/Histogram.java``
and ``model/StatisticSet.java``, "CloudWatch will drop Histograms with more than 100 bins"), and
the Collector's awsemf exporter sends exponential histograms the same way. A statistic set must
be possible (the library's ``Statistics.isValid``): a positive count, ``Min <= Max``, and a sum
that ``Count`` values between them can make.

* An explicit-bucket histogram gives one value per non-empty bucket: the middle of its bounds,
  the middle of ``min`` and the first bound for the lowest bucket and of the last bound and
  ``max`` for the highest (the bound itself when ``min`` / ``max`` is not known).
* An exponential histogram gives the geometric middle of each bucket, and 0 for the zero bucket.
* More than 100 non-empty buckets: neighbours are merged (count-weighted) until 100 remain.
* A summary becomes a statistic set: ``Min`` and ``Max`` from its 0 and 1 quantiles when it
  has them, else the average.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from exporters.cloudwatch.limits import EMF_MAX_VALUES

Bucket = tuple[float, int]  # (a value standing for the bucket, how many fell in it)


def explicit_buckets(
    bounds: Sequence[float], counts: Sequence[float], low: float | None, high: float | None
) -> list[Bucket]:
    """One value per non-empty bucket of an explicit-bucket histogram."""
    out: list[Bucket] = []
    last = len(bounds)
    for i, count in enumerate(counts[: last + 1]):
        if count <= 0:
            continue
        if not bounds:
            continue  # a single bucket: the caller uses the average
        if i == 0:
            value = (low + bounds[0]) / 2 if low is not None and low < bounds[0] else bounds[0]
        elif i == last:
            top = bounds[-1]
            value = (top + high) / 2 if high is not None and high > top else top
        else:
            value = (bounds[i - 1] + bounds[i]) / 2
        out.append((value, int(count)))
    return out


def exponential_buckets(
    scale: int,
    zero_count: int,
    positive: tuple[int, Sequence[int]],
    negative: tuple[int, Sequence[int]],
) -> list[Bucket]:
    """One value per non-empty bucket of an exponential histogram, ascending; OverflowError
    when a bucket lies beyond what a float holds."""
    base = 2.0 ** (2.0**-scale)
    log_base = math.log(base)

    def middle(index: int) -> float:
        return math.exp((index + 0.5) * log_base)  # OverflowError far out

    offset, counts = negative
    out = [(-middle(offset + i), int(c)) for i, c in enumerate(counts) if c > 0]
    out.reverse()
    if zero_count > 0:
        out.append((0.0, int(zero_count)))
    offset, counts = positive
    out += [(middle(offset + i), int(c)) for i, c in enumerate(counts) if c > 0]
    return out


def merge(buckets: list[Bucket], limit: int = EMF_MAX_VALUES) -> list[Bucket]:
    """Neighbouring buckets merged in pairs until at most ``limit`` remain."""
    while len(buckets) > limit:
        merged: list[Bucket] = []
        for i in range(0, len(buckets) - 1, 2):
            (v1, c1), (v2, c2) = buckets[i], buckets[i + 1]
            merged.append(((v1 * c1 + v2 * c2) / (c1 + c2), c1 + c2))
        if len(buckets) % 2:
            merged.append(buckets[-1])
        buckets = merged
    return buckets


def consistent(count: int, total: float, low: float, high: float) -> tuple[float, float]:
    """``(Min, Max)`` widened so that ``count`` values between them can sum to ``total``."""
    if count == 1:
        return total, total
    average = total / count
    low, high = min(low, average), max(high, average)
    if total > low + high * (count - 1):
        high = (total - low) / (count - 1)
    if total < high + low * (count - 1):
        low = (total - high) / (count - 1)
    return low, high


def statistic_set(
    count: int, total: float, low: float | None, high: float | None
) -> dict[str, Any]:
    """``{"Max", "Min", "Count", "Sum"}`` for ``count`` > 0 values summing to ``total``."""
    average = total / count
    low, high = consistent(
        count, total, average if low is None else low, average if high is None else high
    )
    return {"Max": high, "Min": low, "Count": count, "Sum": total}


def distribution(
    buckets: list[Bucket], count: int, total: float | None, low: float | None, high: float | None
) -> dict[str, Any]:
    """The histogram object of the module doc, for ``count`` > 0 observations."""
    buckets = merge(buckets)
    if total is None:
        total = sum(v * c for v, c in buckets)
    if not buckets:
        buckets = [(total / count, count)]
    values = [v for v, _ in buckets]
    stats = statistic_set(
        count, total, min(values) if low is None else low, max(values) if high is None else high
    )
    lo, hi = stats["Min"], stats["Max"]
    return {
        "Values": [min(max(v, lo), hi) for v in values],
        "Counts": [c for _, c in buckets],
        **stats,
    }
