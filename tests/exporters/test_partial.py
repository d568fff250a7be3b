"""A backend that keeps part of a batch and asks for the rest again (:class:`Partial`): only
the rest is retried, with backoff, and every item is counted once as sent or failed."""

from __future__ import annotations

import asyncio
import time

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from prometheus_client import CollectorRegistry

from exporters.base import Exporter, ExporterBase, Partial, Refused
from exporters.delivery import Delivery
from exporters.queue import ExporterQueue
from exporters.retry import RetryPolicy
from exporters.splitting import select_items
from gateway.errors import PermanentError, RetryableError, ThrottledError
from gateway.otlp.batch import Batch, Signal
from gateway.selfmetrics import GatewayMetrics
from tests.support.otlp_samples import sample_request

FAST = RetryPolicy(initial_interval=0.01, max_interval=0.02, max_elapsed_time=5.0)


def _bodies(batch: Batch) -> list[str]:
    return [
        record.body.string_value
        for resource in batch.request.resource_logs  # type: ignore[union-attr]
        for scope in resource.scope_logs
        for record in scope.log_records
    ]


def _logs(n: int) -> Batch:
    request = sample_request(Signal.LOGS, n)
    assert isinstance(request, ExportLogsServiceRequest)
    records = (r for rl in request.resource_logs for sl in rl.scope_logs for r in sl.log_records)
    for i, record in enumerate(records):
        record.body.string_value = f"r{i}"
    return Batch.from_request(Signal.LOGS, request)


class ThrottlesSome(ExporterBase):
    """Keeps the items it has not seen ``throttle`` times; refuses items named ``bad``."""

    def __init__(self, throttle: dict[str, int], bad: set[str], retry_after: float | None) -> None:
        self.throttle = dict(throttle)
        self.bad = bad
        self.retry_after = retry_after
        self.pushes: list[list[str]] = []
        self.kept: list[str] = []

    async def push(self, batch: Batch) -> Refused | Partial | None:
        bodies = _bodies(batch)
        self.pushes.append(bodies)
        again, refused = [], 0
        for i, body in enumerate(bodies):
            if body in self.bad:
                refused += 1
            elif self.throttle.get(body, 0) > 0:
                self.throttle[body] -= 1
                again.append(i)
            else:
                self.kept.append(body)
        if again:
            error = ThrottledError("429 on some documents", self.retry_after)
            return Partial(select_items(batch, set(again)), error, refused, "mapper_parsing")
        return Refused(refused, "mapper_parsing") if refused else None


def _delivery(exporter: Exporter, retry: RetryPolicy = FAST) -> tuple[Delivery, CollectorRegistry]:
    registry = CollectorRegistry()
    return Delivery("es", exporter, GatewayMetrics(registry), retry), registry


def _count(registry: CollectorRegistry, name: str) -> float:
    return registry.get_sample_value(name, {"exporter": "es", "signal": "logs"}) or 0.0


def test_select_items_keeps_the_chosen_items_in_order_under_their_resources() -> None:
    batch = _logs(12)
    picked = select_items(batch, {0, 5, 11})
    assert picked.items == 3
    assert _bodies(picked) == ["r0", "r5", "r11"]
    assert select_items(batch, set()).items == 0


async def test_only_the_throttled_items_are_resent_and_counts_are_exact() -> None:
    exporter = ThrottlesSome({"r1": 2, "r4": 1}, bad={"r2"}, retry_after=0.05)
    delivery, registry = _delivery(exporter)
    started = time.monotonic()
    await delivery.deliver(_logs(6))
    assert exporter.pushes == [["r0", "r1", "r2", "r3", "r4", "r5"], ["r1", "r4"], ["r1"]]
    assert sorted(exporter.kept) == ["r0", "r1", "r3", "r4", "r5"]
    assert time.monotonic() - started >= 0.1  # Retry-After honoured twice
    assert _count(registry, "otelgate_exporter_sent_items_total") == 5
    assert _count(registry, "otelgate_exporter_failed_items_total") == 1
    assert _count(registry, "otelgate_exporter_retries_total") == 2
    assert "mapper_parsing" in (delivery.status.last_error or "")


async def test_the_remainder_gives_up_on_the_same_clock() -> None:
    exporter = ThrottlesSome({"r3": 10_000}, bad=set(), retry_after=0.05)
    policy = RetryPolicy(initial_interval=0.01, max_interval=0.02, max_elapsed_time=0.3)
    delivery, registry = _delivery(exporter, policy)
    await asyncio.wait_for(delivery.deliver(_logs(4)), 5)
    assert all(push == ["r3"] for push in exporter.pushes[1:])
    assert _count(registry, "otelgate_exporter_sent_items_total") == 3
    assert _count(registry, "otelgate_exporter_failed_items_total") == 1
    assert "gave up" in (delivery.status.last_error or "")


async def test_retry_disabled_fails_the_remainder_only() -> None:
    exporter = ThrottlesSome({"r0": 1}, bad=set(), retry_after=None)
    delivery, registry = _delivery(exporter, RetryPolicy(enabled=False))
    await delivery.deliver(_logs(3))
    assert len(exporter.pushes) == 1
    assert _count(registry, "otelgate_exporter_sent_items_total") == 2
    assert _count(registry, "otelgate_exporter_failed_items_total") == 1


class PartialThenFails(ExporterBase):
    """Keeps all but the last item, then fails the remainder with ``then``."""

    def __init__(self, then: Exception) -> None:
        self.then = then
        self.calls = 0

    async def push(self, batch: Batch) -> Partial | None:
        self.calls += 1
        if self.calls == 1:
            last = {batch.items - 1}
            return Partial(select_items(batch, last), RetryableError("503 on one"))
        raise self.then


@pytest.mark.parametrize("then", [PermanentError("401"), ValueError("bug")])
async def test_a_remainder_that_then_fails_for_good_counts_only_itself(then: Exception) -> None:
    delivery, registry = _delivery(PartialThenFails(then))
    await delivery.deliver(_logs(5))
    assert _count(registry, "otelgate_exporter_sent_items_total") == 4
    assert _count(registry, "otelgate_exporter_failed_items_total") == 1


class AsksForMore(ExporterBase):
    """Answers with a remainder bigger than the batch it was given: an exporter bug."""

    async def push(self, batch: Batch) -> Partial:
        return Partial(_logs(batch.items + 5), RetryableError("429"))


async def test_a_remainder_bigger_than_the_batch_fails_it_and_the_queue_goes_on() -> None:
    registry = CollectorRegistry()
    queue = ExporterQueue("es", AsksForMore(), GatewayMetrics(registry), num_consumers=1)
    await queue.start()
    try:
        queue.offer(_logs(4))
        queue.offer(_logs(2))
        deadline = time.monotonic() + 5
        while queue.size and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert queue.size == 0
    finally:
        await queue.shutdown(1.0)
    labels = {"exporter": "es", "signal": "logs"}
    assert registry.get_sample_value("otelgate_exporter_failed_items_total", labels) == 6
    assert registry.get_sample_value("otelgate_exporter_sent_items_total", labels) is None
    assert "exporter bug" in (queue.status.last_error or "")


async def test_shutdown_during_a_remainder_retry_counts_what_was_stored() -> None:
    """The stored items count as sent, only the remainder as dropped."""
    registry = CollectorRegistry()
    exporter = ThrottlesSome({"r3": 10_000, "r4": 10_000}, bad={"r0"}, retry_after=0.05)
    metrics = GatewayMetrics(registry)
    queue = ExporterQueue("es", exporter, metrics, num_consumers=1, retry=FAST)
    await queue.start()
    queue.offer(_logs(10))
    deadline = time.monotonic() + 5
    while len(exporter.pushes) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await queue.shutdown(0.1)
    labels = {"exporter": "es", "signal": "logs"}
    assert registry.get_sample_value("otelgate_exporter_sent_items_total", labels) == 7
    assert registry.get_sample_value("otelgate_exporter_failed_items_total", labels) == 1
    assert registry.get_sample_value("otelgate_exporter_dropped_items_total", labels) == 2
