"""The cloudwatch exporter against moto's server mode (a real AWS API emulator): log groups
and streams created with their retention, every event stored exactly once and in order, every
call within CloudWatch's limits (checked on the requests as they went on the wire)."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from prometheus_client import CollectorRegistry

from exporters.base import Refused
from exporters.cloudwatch.batching import TOO_NEW, TOO_OLD, TRUNCATED
from exporters.cloudwatch.exporter import CloudWatchExporter
from exporters.cloudwatch.limits import MAX_EVENT_BYTES, MAX_SPAN_MS
from exporters.delivery import Delivery
from exporters.retry import RetryPolicy
from gateway.selfmetrics import GatewayMetrics
from tests.exporters.cloudwatch.helpers import (
    HOUR_MS,
    NOW_MS,
    add_resource_logs,
    batch,
    logs,
    make_exporter,
    record,
)
from tests.support.moto_server import MotoServer, RecordedCall, accepted, record_calls

Factory = Callable[..., Any]


@pytest.fixture
async def exporter_for(moto: MotoServer) -> AsyncIterator[Factory]:
    """Started exporters on the moto server, with the calls each makes recorded."""
    made: list[CloudWatchExporter] = []

    async def make(**settings: Any) -> tuple[CloudWatchExporter, list[RecordedCall]]:
        exporter = make_exporter(endpoint=moto.url, **settings)
        await exporter.start()
        made.append(exporter)
        return exporter, record_calls(exporter.client)

    yield make
    for exporter in made:
        await exporter.shutdown()


def within_limits(calls: list[RecordedCall]) -> None:
    for call in calls:
        stamps = [e["timestamp"] for e in call.events]
        assert 0 < len(call.events) <= 10_000
        assert call.nbytes <= 1_048_576
        assert stamps == sorted(stamps) and stamps[-1] - stamps[0] < MAX_SPAN_MS


async def test_groups_streams_and_retention_are_created(moto: MotoServer, exporter_for: Factory):
    group = "/apps/{deployment.environment.name}"
    exporter, calls = await exporter_for(log_retention=90, raw_log=True, log_group_name=group)
    prod = {"deployment.environment.name": "prod"}
    request = logs([record("a")], **prod)
    add_resource_logs(request, [record("b")], **{"service.name": "payments", **prod})
    add_resource_logs(request, [record("c")])  # no environment: "undefined"
    assert await exporter.push(batch(request)) is None
    groups = moto.groups()
    assert {g: v.get("retentionInDays") for g, v in groups.items()} == {
        "/apps/prod": 90, "/apps/undefined": 90}  # fmt: skip
    assert moto.streams("/apps/prod") == ["checkout", "payments"]
    assert [e["message"] for e in moto.events("/apps/prod", "payments")] == ["b"]
    assert [e["message"] for e in moto.events("/apps/undefined", "checkout")] == ["c"]
    # each stream: a first call answered "not found", then the one that landed
    assert [c.status for c in calls] == [400, 200] * 3


async def test_every_event_once_in_order_in_calls_within_limits(
    moto: MotoServer, exporter_for: Factory
) -> None:
    rng = random.Random(18)
    records: list[LogRecord] = []
    expected: Counter[str] = Counter()
    for i in range(24_000):
        size = 200_000 if i % 2000 == 0 else rng.randrange(10, 300)
        body = f"{i:05} " + "é" * (size // 2)  # multibyte: counted in UTF-8 bytes
        records.append(record(body, NOW_MS - rng.randrange(0, 3 * 24 * HOUR_MS)))
        expected[body] += 1
    exporter, calls = await exporter_for(raw_log=True)
    assert await exporter.push(batch(logs(records))) is None
    within_limits(calls)
    calls = accepted(calls)
    assert len(calls) >= 4  # 24,000 events over three days cannot go in fewer
    stored = moto.events("/otelgate/logs", "checkout")
    assert Counter(e["message"] for e in stored) == expected  # every event exactly once
    by_message = {r.body.string_value: r.time_unix_nano // 1_000_000 for r in records}
    assert all(by_message[e["message"]] == e["timestamp"] for e in stored)
    sent = [e["timestamp"] for c in calls for e in c.events]
    assert sent == sorted(sent)  # calls of one stream go in time order, one after the other


async def test_events_cloudwatch_would_reject_are_refused_and_never_sent(
    moto: MotoServer, exporter_for: Factory
) -> None:
    exporter, calls = await exporter_for(raw_log=True)
    records = [record("15 days old", NOW_MS - 15 * 24 * HOUR_MS), record("fresh", NOW_MS),
               record("3 hours ahead", NOW_MS + 3 * HOUR_MS), record("13 days old",
               NOW_MS - 13 * 24 * HOUR_MS)]  # fmt: skip
    refused = await exporter.push(batch(logs(records)))
    assert refused == Refused(2, f"{TOO_OLD}; {TOO_NEW}")
    sent = [e["message"] for c in accepted(calls) for e in c.events]
    assert sent == ["13 days old", "fresh"]
    assert [e["message"] for e in moto.events("/otelgate/logs", "checkout")] == [
        "13 days old", "fresh"]  # fmt: skip


async def test_an_event_over_the_size_limit_is_truncated(moto: MotoServer, exporter_for: Factory):
    exporter, calls = await exporter_for(raw_log=True)
    big = "ü" * 700_000  # 1,400,000 bytes
    assert await exporter.push(batch(logs([record(big), record("small")]))) is None
    within_limits(calls)
    (stored, small) = moto.events("/otelgate/logs", "checkout")
    assert small["message"] == "small"
    assert stored["message"].endswith(TRUNCATED) and big.startswith(stored["message"][:-14])
    assert MAX_EVENT_BYTES - 2 <= len(stored["message"].encode()) <= MAX_EVENT_BYTES


async def test_json_messages_and_counts_through_the_queue(moto: MotoServer, exporter_for: Factory):
    exporter, _ = await exporter_for()
    metrics = GatewayMetrics(CollectorRegistry())
    delivery = Delivery("cloudwatch", exporter, metrics, RetryPolicy(initial_interval=0.01))
    records = [record(f"order {i}", NOW_MS + i, **{"order.id": i}) for i in range(300)]
    await delivery.deliver(batch(logs(records)))
    assert metrics.exporter_sent.labels("cloudwatch", "logs")._value.get() == 300
    stored = [json.loads(e["message"]) for e in moto.events("/otelgate/logs", "checkout")]
    assert [s["attributes"]["order.id"] for s in stored] == list(range(300))
    assert stored[0]["resource"] == {"service.name": "checkout"}
    assert stored[0]["severity_text"] == "INFO"
