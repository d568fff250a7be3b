"""Pipelines and routers: processor order, private copies, all-or-nothing fan-out."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from exporters.base import ExporterBase
from exporters.queue import ExporterQueue
from gateway.errors import BackpressureError, NoPipelineError, NotReadyError
from gateway.otlp.batch import Batch, Signal
from gateway.pipeline import Pipeline, Router
from gateway.processors.resource import AttributeAction, ResourceProcessor
from gateway.selfmetrics import GatewayMetrics
from tests.factories import traces_batch


class Collecting(ExporterBase):
    def __init__(self) -> None:
        self.batches: list[Batch] = []

    async def push(self, batch: Batch) -> None:
        self.batches.append(batch)


def queue(name: str, metrics: GatewayMetrics, capacity: int = 100) -> ExporterQueue:
    """A queue that accepts batches but has no workers, so tests can look at what it holds."""
    q = ExporterQueue(name, Collecting(), metrics, capacity=capacity, num_consumers=1)
    q._closed = False
    return q


def resource_attrs(batch: Batch) -> dict[str, str]:
    resource = batch.request.resource_spans[0].resource  # type: ignore[union-attr]
    return {kv.key: kv.value.string_value for kv in resource.attributes}


async def test_processors_run_in_order_and_mutating_pipelines_get_copies():
    metrics = GatewayMetrics(CollectorRegistry())
    plain_q, tagged_q = queue("plain", metrics), queue("tagged", metrics)
    set_env = ResourceProcessor("resource/a", [AttributeAction("env", "upsert", "prod")])
    rename = ResourceProcessor("resource/b", [AttributeAction("env", "update", "staging")])
    plain = Pipeline("traces/plain", Signal.TRACES, [], [plain_q])
    tagged = Pipeline("traces/tagged", Signal.TRACES, [set_env, rename], [tagged_q])
    router = Router(Signal.TRACES, [plain, tagged])
    batch = traces_batch(2)
    original = batch.serialized()
    await router.consume(batch)
    [to_plain] = list(plain_q._pending)
    [to_tagged] = list(tagged_q._pending)
    assert to_plain is batch and to_plain.serialized() == original
    assert to_tagged is not batch
    assert resource_attrs(to_tagged)["env"] == "staging"  # upsert, then update: in order
    assert "env" not in resource_attrs(to_plain)
    assert to_tagged.encoded is None or to_tagged.encoded != original


async def test_fan_out_is_all_or_nothing_when_one_queue_is_full():
    metrics = GatewayMetrics(CollectorRegistry())
    roomy, tight = queue("roomy", metrics), queue("tight", metrics, capacity=2)
    router = Router(Signal.TRACES, [Pipeline("traces", Signal.TRACES, [], [roomy, tight])])
    await router.consume(traces_batch(2))
    with pytest.raises(BackpressureError, match="tight"):
        await router.consume(traces_batch(1))
    assert roomy.size == 2 and tight.size == 2  # the refused batch went nowhere


async def test_router_without_pipelines_refuses_permanently():
    with pytest.raises(NoPipelineError):
        await Router(Signal.LOGS, []).consume(traces_batch(1))


def test_resource_actions():
    batch = traces_batch(1)
    actions = [
        AttributeAction("service.name", "insert", "ignored"),  # exists: insert does nothing
        AttributeAction("region", "update", "eu"),  # absent: update does nothing
        AttributeAction("team", "upsert", "core"),
        AttributeAction("replicas", "upsert", 3),
        AttributeAction("service.name", "delete"),
    ]
    ResourceProcessor("resource", actions).process(batch)
    resource = batch.request.resource_spans[0].resource  # type: ignore[union-attr]
    values = {kv.key: kv.value for kv in resource.attributes}
    assert set(values) == {"team", "replicas"}
    assert values["team"].string_value == "core"
    assert values["replicas"].int_value == 3


async def test_a_batch_larger_than_the_room_left_is_backpressure_not_shutdown():
    """Issue 10, finding 8: a batch bigger than the room left was refused as "shutting down"
    (503, not_ready) while the gateway was ready; it is backpressure (429)."""
    metrics = GatewayMetrics(CollectorRegistry())
    q = queue("q", metrics, capacity=10)
    router = Router(Signal.TRACES, [Pipeline("traces", Signal.TRACES, [], [q])])
    await router.consume(traces_batch(6))
    assert not q.full
    with pytest.raises(BackpressureError) as info:
        await router.consume(traces_batch(6))
    assert info.value.reason == "backpressure" and info.value.http_status == 429
    assert "no room for 6 item(s)" in str(info.value)
    q._closed = True
    with pytest.raises(NotReadyError):
        await router.consume(traces_batch(1))
