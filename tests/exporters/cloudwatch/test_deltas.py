"""Cumulative series as deltas: the baseline, series born after the start, resets, duplicates,
out-of-order points, expiry; and the points of cumulative sums and histograms through them."""

from __future__ import annotations

import json
import time
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from exporters.cloudwatch.batching import Plan
from exporters.cloudwatch.deltas import DeltaTracker
from exporters.cloudwatch.emf import EmfMapping
from exporters.cloudwatch.names import NameTemplate
from exporters.cloudwatch.points import OUT_OF_ORDER
from tests.exporters.cloudwatch.helpers import metrics
from tests.exporters.cloudwatch.metric_builders import (
    CUMULATIVE,
    DELTA,
    counter,
    histogram,
    hpoint,
    number,
)
from tests.support import emf

S = 10**9  # a second in nanoseconds


def test_the_first_point_of_an_old_series_is_the_baseline() -> None:
    tracker = DeltaTracker(started_ns=100 * S, expiration=60)
    assert tracker.delta("k", 50 * S, 110 * S, (10.0,)) == "baseline"
    assert tracker.delta("k", 50 * S, 120 * S, (15.0,)) == (5.0,)
    assert tracker.delta("k", 50 * S, 130 * S, (15.0,)) == (0.0,)


def test_a_series_born_after_the_start_counts_from_zero() -> None:
    tracker = DeltaTracker(started_ns=100 * S, expiration=60)
    assert tracker.delta("k", 105 * S, 110 * S, (3.0,)) == (3.0,)
    # no start time, or a start equal to the point's time, says nothing about birth
    assert tracker.delta("a", 0, 110 * S, (3.0,)) == "baseline"
    assert tracker.delta("b", 110 * S, 110 * S, (3.0,)) == "baseline"


def test_a_reset_reports_the_new_value_whole() -> None:
    tracker = DeltaTracker(started_ns=0, expiration=60)
    tracker.delta("k", 1, 10 * S, (100.0,))
    assert tracker.delta("k", 1, 20 * S, (4.0,)) == (4.0,)  # went down: restarted
    assert tracker.delta("k", 15 * S, 30 * S, (9.0,)) == (9.0,)  # another start time
    assert tracker.delta("k", 15 * S, 40 * S, (10.0,)) == (1.0,)
    h = (5.0, 50.0, 2.0, 3.0)  # count, sum, buckets
    tracker.delta("h", 1, 10 * S, h, shape=(1.0,))
    after = tracker.delta("h", 1, 20 * S, (6.0, 40.0, 3.0, 3.0), shape=(1.0,))
    assert after == (1.0, -10.0, 1.0, 0.0)  # a sum may go down (negative values)
    bucket_down = (7.0, 45.0, 1.0, 6.0)
    assert tracker.delta("h", 1, 30 * S, bucket_down, shape=(1.0,)) == bucket_down
    other_bounds = (8.0, 46.0, 1.0, 7.0)
    assert tracker.delta("h", 1, 40 * S, other_bounds, shape=(2.0,)) == other_bounds


def test_the_same_point_again_is_a_duplicate_and_an_older_one_out_of_order() -> None:
    tracker = DeltaTracker(started_ns=0, expiration=60)
    tracker.delta("k", 1, 10 * S, (1.0,))
    assert tracker.delta("k", 1, 20 * S, (2.0,)) == (1.0,)
    assert tracker.delta("k", 1, 20 * S, (2.0,)) == "duplicate"
    assert tracker.delta("k", 1, 15 * S, (1.5,)) == "out_of_order"
    assert tracker.delta("k", 1, 20 * S, (2.5,)) == "out_of_order"
    assert tracker.delta("k", 1, 30 * S, (4.0,)) == (2.0,)  # unchanged by the refused ones


def test_series_not_seen_for_the_expiration_are_forgotten() -> None:
    now = [0.0]
    tracker = DeltaTracker(started_ns=0, expiration=60, clock=lambda: now[0])
    tracker.delta("old", 1, 10 * S, (1.0,))
    now[0] = 40.0
    tracker.delta("young", 1, 10 * S, (1.0,))
    now[0] = 70.0
    assert tracker.sweep() == 1 and len(tracker) == 1
    assert tracker.delta("old", 1, 20 * S, (5.0,)) == (5.0,)  # a new series, born since
    now[0] = 75.0
    assert tracker.sweep() == 0  # at most every half expiration


def mapping() -> EmfMapping:
    return EmfMapping(
        NameTemplate.parse("/m", "group"), NameTemplate.parse("s", "stream"),
        DeltaTracker(time.time_ns(), 300.0), namespace="Shop", resource_dimensions=[],
        max_event_size=1_048_550,
    )  # fmt: skip


def values(
    m: EmfMapping, request: ExportMetricsServiceRequest, name: str
) -> tuple[list[Any], Plan]:
    plan = Plan()
    out = []
    for events in m.events(request, plan).values():
        for event in events:
            doc = json.loads(event.message)
            assert emf.problems(doc) == []
            out.append(doc[name])
    return out, plan


def test_cumulative_counters_are_sent_as_deltas_and_delta_ones_as_they_are() -> None:
    m = mapping()
    t0, old_start = time.time_ns(), time.time_ns() - 3600 * S
    sent, plan = values(m, metrics([counter("c", number(100, t0, old_start))]), "c")
    assert sent == [] and plan.adjusted == {"cumulative_baseline": 1} and plan.refused == 0
    sent, _ = values(m, metrics([counter("c", number(130, t0 + S, old_start))]), "c")
    assert sent == [30]
    sent, plan = values(m, metrics([counter("c", number(130, t0 + S, old_start))]), "c")
    assert sent == [] and plan.adjusted == {"cumulative_duplicate": 1}
    sent, plan = values(m, metrics([counter("c", number(120, t0, old_start))]), "c")
    assert sent == [] and (plan.refused, plan.reasons) == (1, [OUT_OF_ORDER])
    sent, _ = values(m, metrics([counter("d", number(5, t0, old_start), temporality=DELTA)]), "d")
    assert sent == [5]
    updown = counter("u", number(-4, t0, old_start), monotonic=False)  # a level: as it is
    assert values(m, metrics([updown]), "u")[0] == [-4]


def test_cumulative_histograms_are_sent_as_deltas_of_their_buckets() -> None:
    m = mapping()
    start = time.time_ns()  # born after the mapping: the first point counts whole
    first = hpoint([1, 2, 0], [10, 100], total=120.0, ns=start + S, start=start, low=2, high=90)
    sent, _ = values(m, metrics([histogram("h", first, temporality=CUMULATIVE)]), "h")
    assert sent[0]["Counts"] == [1, 2] and (sent[0]["Min"], sent[0]["Max"]) == (2, 90)
    second = hpoint([1, 5, 1], [10, 100], total=700.0, ns=start + 2 * S, start=start, low=2,
                    high=400)  # fmt: skip
    sent, _ = values(m, metrics([histogram("h", second, temporality=CUMULATIVE)]), "h")
    assert sent[0]["Counts"] == [3, 1] and sent[0]["Count"] == 4 and sent[0]["Sum"] == 580.0
    assert sent[0]["Values"][0] == 55.0  # the middle of (10, 100]
    same = hpoint([1, 5, 1], [10, 100], total=700.0, ns=start + 3 * S, start=start)
    sent, plan = values(m, metrics([histogram("h", same, temporality=CUMULATIVE)]), "h")
    assert sent == [] and plan.adjusted == {"no_observations": 1}
