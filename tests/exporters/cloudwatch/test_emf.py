"""OTLP metrics as Embedded Metric Format records: each record checked against the
specification's rules (tests/support/emf.py), dimensions, grouping, units, and what cannot be
carried."""

from __future__ import annotations

import json
import math
import time
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from exporters.cloudwatch.batching import Plan
from exporters.cloudwatch.deltas import DeltaTracker
from exporters.cloudwatch.emf import BAD_NAME, NAME_TAKEN, TOO_BIG, EmfMapping
from exporters.cloudwatch.names import NameTemplate
from exporters.cloudwatch.points import NOT_FINITE
from tests.exporters.cloudwatch.helpers import NOW_MS, NOW_NS, metrics
from tests.exporters.cloudwatch.metric_builders import (
    DELTA,
    counter,
    exponential,
    gauge,
    histogram,
    hpoint,
    number,
    summary,
)
from tests.support import emf


def mapping(**settings: Any) -> EmfMapping:
    options: dict[str, Any] = {"namespace": "Shop", "resource_dimensions": ["service.name"],
                               "max_event_size": 1_048_550, **settings}  # fmt: skip
    return EmfMapping(
        NameTemplate.parse("/otelgate/metrics", "group"),
        NameTemplate.parse("{service.name}", "stream"),
        DeltaTracker(time.time_ns(), 300.0),
        **options,
    )


def convert(request: ExportMetricsServiceRequest, plan: Plan | None = None,
            **settings: Any) -> tuple[list[dict[str, Any]], Plan]:  # fmt: skip
    """The records of ``request`` (each checked against the spec) and the plan."""
    plan = plan or Plan()
    found = mapping(**settings).events(request, plan)
    docs = []
    positions: list[int] = []
    for events in found.values():
        for event in events:
            doc = json.loads(event.message)
            assert emf.problems(doc) == [], doc
            assert doc["_aws"]["Timestamp"] == event.timestamp
            assert event.size == len(event.message.encode())
            positions += event.positions
            docs.append(doc)
    assert len(positions) == len(set(positions))  # no point in two records
    return docs, plan


def test_points_of_one_time_and_dimensions_share_a_record() -> None:
    request = metrics([
        gauge("queue.depth", number(7, route="/pay"), unit="{items}"),
        counter("http.requests", number(12, route="/pay"), temporality=DELTA),
        gauge("cpu.load", number(0.25, route="/pay"), unit="1"),
    ])  # fmt: skip
    (doc,), plan = convert(request)
    assert plan.refused == 0 and not plan.adjusted
    assert doc["_aws"]["Timestamp"] == NOW_MS
    assert sorted(emf.metrics(doc)) == sorted([
        ("Shop", "queue.depth", {"service.name": "checkout", "route": "/pay"}, 7),
        ("Shop", "http.requests", {"service.name": "checkout", "route": "/pay"}, 12),
        ("Shop", "cpu.load", {"service.name": "checkout", "route": "/pay"}, 0.25),
    ])  # fmt: skip
    units = {m["Name"]: m.get("Unit") for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units == {"queue.depth": None, "http.requests": "Count", "cpu.load": None}


def test_other_times_or_attributes_make_other_records() -> None:
    request = metrics([gauge("g", number(1, route="/a"), number(2, route="/b"),
                             number(3, NOW_NS + 1_000_000, route="/a"))])  # fmt: skip
    docs, _ = convert(request)
    got = sorted((d["_aws"]["Timestamp"], d["route"], d["g"]) for d in docs)
    assert got == [(NOW_MS, "/a", 1), (NOW_MS, "/b", 2), (NOW_MS + 1, "/a", 3)]


def test_at_most_100_metrics_per_record_and_a_name_once() -> None:
    many = [gauge(f"m{i}", number(i)) for i in range(150)]
    again = gauge("m0", number(1000))  # the same name and dimensions: another record
    docs, _ = convert(metrics([*many, again]))
    # m0 again goes to the second record, which has room and no m0 yet
    assert [len(d["_aws"]["CloudWatchMetrics"][0]["Metrics"]) for d in docs] == [100, 51]
    assert [d["m0"] for d in docs] == [0, 1000]


def test_dimensions_resource_first_then_attributes_at_most_30() -> None:
    attrs = {f"a{i:02}": f"v{i}" for i in range(40)}
    docs, plan = convert(metrics([gauge("g", number(1, **attrs))], tier="gold"),
                         resource_dimensions=["tier", "service.name", "absent"])  # fmt: skip
    (doc,) = docs
    (dims,) = doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert dims == ["tier", "service.name", *[f"a{i:02}" for i in range(28)]]
    assert doc["a39"] == "v39"  # kept in the record, not a dimension
    assert plan.adjusted == {"dimensions_over_limit": 1}


def test_attributes_cloudwatch_cannot_take_as_dimensions_stay_properties() -> None:
    point = number(1, ok="fine", accent="café", blank=" ", long="x" * 1025, **{":colon": "c"})
    (doc,), plan = convert(metrics([gauge("g", point)]))
    (dims,) = doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert dims == ["service.name", "ok"]
    assert (doc["accent"], doc["blank"], doc[":colon"]) == ("café", " ", "c")
    assert plan.adjusted == {"dimension_invalid": 1}


def test_attribute_dimensions_off_keeps_attributes_as_properties() -> None:
    (doc,), _ = convert(metrics([gauge("g", number(1, route="/a"))]), attribute_dimensions=False)
    assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service.name"]]
    assert doc["route"] == "/a"
    (doc,), _ = convert(metrics([gauge("g", number(1))]), resource_dimensions=[])
    assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[]]


def test_units_and_high_resolution() -> None:
    request = metrics([gauge("t", number(1.5), unit="ms"), gauge("b", number(9), unit="By"),
                       gauge("r", number(3), unit="By/s"), gauge("p", number(50), unit="%"),
                       gauge("odd", number(1), unit="furlong")])  # fmt: skip
    (doc,), _ = convert(request, high_resolution=True)
    definitions = {m["Name"]: m for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {n: d.get("Unit") for n, d in definitions.items()} == {
        "t": "Milliseconds",
        "b": "Bytes",
        "r": "Bytes/Second",
        "p": "Percent",
        "odd": None,
    }
    assert {d["StorageResolution"] for d in definitions.values()} == {1}


def test_values_emf_cannot_carry_are_refused_and_counted() -> None:
    request = metrics([gauge("g", number(math.nan, k="a"), number(math.inf, k="b"),
                             number(-(2.0**361), k="c"),
                             number(4.0, k="d"))])  # fmt: skip
    docs, plan = convert(request)
    assert [d["g"] for d in docs] == [4.0]
    assert (plan.refused, plan.reasons) == (3, [NOT_FINITE])


def test_bad_names_and_names_taken_by_an_attribute_are_refused() -> None:
    request = metrics([gauge("_aws", number(1), number(2, k="x")), gauge("k", number(3, k="v")),
                       gauge("x" * 1025, number(4)), gauge("fine", number(5))])  # fmt: skip
    docs, plan = convert(request)
    assert [d["fine"] for d in docs] == [5]
    assert plan.refused == 4 and set(plan.reasons) == {BAD_NAME, NAME_TAKEN}


def test_explicit_histograms_become_distributions() -> None:
    point = hpoint([2, 0, 5, 3], [10, 20, 50], total=140.0, low=1.0, high=80.0)
    (doc,), _ = convert(metrics([histogram("latency", point)]))
    value = doc["latency"]
    assert value["Values"] == [5.5, 35.0, 65.0]  # (1+10)/2, (20+50)/2, (50+80)/2
    assert value["Counts"] == [2, 5, 3]
    assert (value["Count"], value["Sum"], value["Min"], value["Max"]) == (10, 140.0, 1.0, 80.0)


def test_a_histogram_without_min_max_or_sum_is_still_a_possible_distribution() -> None:
    no_sum = hpoint([1, 0, 0, 4], [1, 2, 3], total=None)
    one_bucket = hpoint([3], [], total=9.0, route="x")
    docs, _ = convert(metrics([histogram("h", no_sum, one_bucket)]))
    by_route = {d.get("route"): d["h"] for d in docs}
    assert by_route[None]["Values"] == [1.0, 3.0] and by_route[None]["Count"] == 5
    assert by_route["x"] == {"Values": [3.0], "Counts": [3], "Max": 3.0, "Min": 3.0,
                             "Count": 3, "Sum": 9.0}  # fmt: skip


def test_an_impossible_histogram_is_made_possible() -> None:
    # buckets say values near 1, the sum says far more: Min/Max widen so the set is possible
    (doc,), _ = convert(metrics([histogram("h", hpoint([0, 4], [1], total=400.0))]))
    assert emf.value_problems("h", doc["h"]) == []
    assert doc["h"]["Max"] >= 100.0


def test_exponential_histograms_keep_at_most_100_values() -> None:
    small = exponential("e", 0, (0, [1, 2, 3]), zero=1, negative=(1, [4]), total=-5.0)
    (doc,), _ = convert(metrics([small]))
    value = doc["e"]
    assert value["Counts"] == [4, 1, 1, 2, 3]
    assert value["Values"][1] == 0.0 and value["Values"][0] < 0 < value["Values"][2]
    big = exponential("big", 3, (-50, [1] * 250), total=300.0)
    (doc,), _ = convert(metrics([big]))
    assert len(doc["big"]["Values"]) <= 100 and sum(doc["big"]["Counts"]) == 250


def test_summaries_become_statistic_sets_of_their_deltas() -> None:
    emf_mapping = mapping()
    start = time.time_ns()  # a series born after the mapping's start: its first point counts
    quantiles = {0.0: 0.1, 0.5: 0.4, 1.0: 2.0}
    docs = []
    for count, total, ns in [(10, 5.0, start + 10**9), (14, 9.0, start + 2 * 10**9)]:
        request = metrics([summary("rt", count, total, quantiles, ns=ns, start=start)])
        for events in emf_mapping.events(request, Plan()).values():
            docs += [json.loads(e.message) for e in events]
    assert [emf.problems(d) for d in docs] == [[], []]
    assert docs[0]["rt"] == {"Max": 2.0, "Min": 0.1, "Count": 10, "Sum": 5.0}
    assert docs[1]["rt"]["Count"] == 4 and docs[1]["rt"]["Sum"] == 4.0


def test_a_record_over_the_event_size_is_split_and_one_metric_over_it_refused() -> None:
    names = [f"metric.with.a.long.name.{i:03}" + "x" * 200 for i in range(40)]
    docs, plan = convert(metrics([gauge(n, number(i)) for i, n in enumerate(names)]),
                         max_event_size=4096)  # fmt: skip
    assert len(docs) > 1 and all(len(json.dumps(d)) <= 4096 for d in docs)
    assert sorted(n for d in docs for n in d if n.startswith("metric")) == names
    docs, plan = convert(metrics([gauge("m" * 1000, number(1)), gauge("ok", number(2))]),
                         max_event_size=1024)  # fmt: skip
    assert [d["ok"] for d in docs] == [2]
    assert (plan.refused, plan.reasons) == (1, [TOO_BIG])
