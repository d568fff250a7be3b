"""Metrics as EMF records in moto's CloudWatch Logs: read back, every record parses and follows
the EMF specification (tests/support/emf.py), and carries the values CloudWatch would extract,
cumulative counters as deltas across pushes."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from exporters.cloudwatch.exporter import CloudWatchExporter
from tests.exporters.cloudwatch.helpers import (
    NOW_MS,
    NOW_NS,
    batch,
    client_error,
    make_exporter,
    metrics,
)
from tests.exporters.cloudwatch.metric_builders import (
    DELTA,
    counter,
    gauge,
    histogram,
    hpoint,
    number,
    summary,
)
from tests.support import emf
from tests.support.moto_server import MotoServer

S = 10**9


@pytest.fixture
async def exporter(moto: MotoServer) -> AsyncIterator[CloudWatchExporter]:
    started = make_exporter(endpoint=moto.url, log_retention=7,
                            metrics={"namespace": "Shop/Checkout"})  # fmt: skip
    await started.start()
    yield started
    await started.shutdown()


def records(moto: MotoServer, stream: str = "checkout") -> list[dict[str, Any]]:
    """The EMF records stored, each checked against the specification."""
    docs = [json.loads(e["message"]) for e in moto.events("/otelgate/metrics", stream)]
    for doc in docs:
        assert emf.problems(doc) == [], doc
    return docs


def extracted(docs: list[dict[str, Any]]) -> dict[tuple[str, tuple], Any]:
    return {(name, tuple(sorted(dims.items()))): value
            for doc in docs for _, name, dims, value in emf.metrics(doc)}  # fmt: skip


async def test_emf_records_in_cloudwatch_parse_as_metrics(
    moto: MotoServer, exporter: CloudWatchExporter
) -> None:
    born = time.time_ns()  # a summary started after the exporter: its first point counts
    request = metrics([
        gauge("queue.depth", number(7, route="/pay"), number(3, route="/refund"), unit="{items}"),
        counter("http.requests", number(12, route="/pay"), temporality=DELTA),
        histogram("http.duration", hpoint([2, 5, 3], [10, 50], total=240.0, low=1.0, high=90.0,
                                          route="/pay")),
        summary("gc.pause", 4, 0.2, {0.0: 0.01, 1.0: 0.1}, ns=born + S, start=born),
    ], **{"deployment.environment.name": "prod"})  # fmt: skip
    assert await exporter.push(batch(request)) is None
    assert moto.groups()["/otelgate/metrics"]["retentionInDays"] == 7
    docs = records(moto)
    assert {d["_aws"]["CloudWatchMetrics"][0]["Namespace"] for d in docs} == {"Shop/Checkout"}
    pay = (("route", "/pay"), ("service.name", "checkout"))
    found = extracted(docs)
    assert found[("queue.depth", pay)] == 7
    assert found[("queue.depth", (("route", "/refund"), ("service.name", "checkout")))] == 3
    assert found[("http.requests", pay)] == 12
    assert found[("http.duration", pay)]["Counts"] == [2, 5, 3]
    assert found[("gc.pause", (("service.name", "checkout"),))] == {
        "Max": 0.1, "Min": 0.01, "Count": 4, "Sum": 0.2}  # fmt: skip
    # points of one time and dimensions share a record
    (pay_record,) = [d for d in docs if d.get("route") == "/pay"]
    assert {"queue.depth", "http.requests", "http.duration"} <= pay_record.keys()
    assert "deployment.environment.name" not in pay_record  # only resource_dimensions go in


async def test_cumulative_counters_arrive_as_deltas(
    moto: MotoServer, exporter: CloudWatchExporter
) -> None:
    old = NOW_NS - 3600 * S
    for i, value in enumerate([100, 130, 175]):
        request = metrics([counter("orders", number(value, NOW_NS + i * S, old, shop="a"))])
        assert await exporter.push(batch(request)) is None
    docs = records(moto)
    assert [(d["_aws"]["Timestamp"] - NOW_MS, d["orders"]) for d in docs] == [(1000, 30),
                                                                            (2000, 45)]  # fmt: skip
    (definition,) = docs[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    assert definition == {"Name": "orders", "Unit": "Count"}


async def test_a_retried_metrics_batch_counts_its_deltas_once(
    moto: MotoServer, exporter: CloudWatchExporter
) -> None:
    old = NOW_NS - 3600 * S
    first = metrics([counter("orders", number(100, NOW_NS, old, shop=s)) for s in ("a", "b")])
    assert await exporter.push(batch(first)) is None  # baselines only
    second = metrics([counter("orders", number(150, NOW_NS + S, old, shop="a")),
                      counter("orders", number(110, NOW_NS + S, old, shop="b"))],
                     **{"service.name": "checkout"})  # fmt: skip
    pushed = batch(second)
    real = exporter.client.put_log_events
    throttled: list[dict[str, Any]] = []

    async def throttle_once(**args: Any) -> Any:
        if not throttled:
            throttled.append(args)
            raise client_error("ThrottlingException")
        return await real(**args)

    exporter.client.put_log_events = throttle_once
    with pytest.raises(Exception, match="throttled"):
        await exporter.push(pushed)
    outcome = await exporter.push(pushed)  # the same batch again: its plan, not new deltas
    assert outcome is None  # the throttled call was the first: nothing to split off
    assert sorted((d["shop"], d["orders"]) for d in records(moto)) == [("a", 50), ("b", 10)]
