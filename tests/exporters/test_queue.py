"""ExporterQueue: bounded queue, retry policy, Retry-After, full-queue policies, draining."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import CollectorRegistry

from exporters.base import ExporterBase
from exporters.queue import ExporterQueue
from exporters.retry import RetryPolicy
from gateway.errors import (
    BackpressureError,
    NotReadyError,
    PermanentError,
    RetryableError,
    ThrottledError,
)
from gateway.otlp.batch import Batch
from gateway.selfmetrics import GatewayMetrics
from tests.factories import traces_batch

FAST_RETRY = RetryPolicy(initial_interval=0.01, max_interval=0.05, max_elapsed_time=5.0)


class ScriptedExporter(ExporterBase):
    """Raises the scripted errors in order, then succeeds; records every attempt."""

    def __init__(self, errors: list[Exception] | None = None, delay: float = 0.0) -> None:
        self.errors = list(errors or [])
        self.delay = delay
        self.attempts: list[float] = []
        self.delivered: list[Batch] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def push(self, batch: Batch) -> None:
        self.attempts.append(time.monotonic())
        await self.gate.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.errors:
            raise self.errors.pop(0)
        self.delivered.append(batch)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def make_queue(exporter: ScriptedExporter, **kwargs) -> tuple[ExporterQueue, CollectorRegistry]:
    registry = CollectorRegistry()
    kwargs.setdefault("retry", FAST_RETRY)
    return ExporterQueue("test", exporter, GatewayMetrics(registry), **kwargs), registry


async def drain(queue: ExporterQueue, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while queue.size and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert queue.size == 0, "queue did not drain"


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(initial_interval=1, max_interval=8, multiplier=2, randomization_factor=0)
    assert [policy.delay(a) for a in range(6)] == [1, 2, 4, 8, 8, 8]
    jittered = RetryPolicy(initial_interval=1, randomization_factor=0.5)
    delays = {round(jittered.delay(0), 6) for _ in range(50)}
    assert len(delays) > 1 and all(0.5 <= d <= 1.5 for d in delays)


async def test_delivers_and_counts_sent() -> None:
    exporter = ScriptedExporter()
    queue, registry = make_queue(exporter)
    await queue.start()
    queue.offer(traces_batch(3))
    queue.offer(traces_batch(2))
    await drain(queue)
    assert sum(b.items for b in exporter.delivered) == 5
    assert (
        sample(registry, "otelgate_exporter_sent_items_total", exporter="test", signal="traces")
        == 5
    )
    await queue.shutdown(1)


async def test_retryable_errors_are_retried_until_success() -> None:
    exporter = ScriptedExporter([RetryableError("down"), RetryableError("down")])
    queue, registry = make_queue(exporter)
    await queue.start()
    queue.offer(traces_batch(4))
    await drain(queue)
    assert len(exporter.attempts) == 3
    assert len(exporter.delivered) == 1
    labels = {"exporter": "test", "signal": "traces"}
    assert sample(registry, "otelgate_exporter_retries_total", **labels) == 2
    assert sample(registry, "otelgate_exporter_sent_items_total", **labels) == 4
    assert sample(registry, "otelgate_exporter_failed_items_total", **labels) == 0
    assert queue.status.state == "ok"
    await queue.shutdown(1)


async def test_retry_after_is_honoured_not_sooner() -> None:
    exporter = ScriptedExporter([ThrottledError("429", retry_after=0.6)])
    queue, _ = make_queue(exporter)
    await queue.start()
    queue.offer(traces_batch(1))
    await drain(queue)
    assert len(exporter.attempts) == 2
    assert exporter.attempts[1] - exporter.attempts[0] >= 0.6
    await queue.shutdown(1)


async def test_permanent_error_is_not_retried_and_counted_failed() -> None:
    exporter = ScriptedExporter([PermanentError("HTTP 400: bad")])
    queue, registry = make_queue(exporter)
    await queue.start()
    queue.offer(traces_batch(3))
    await drain(queue)
    assert len(exporter.attempts) == 1
    labels = {"exporter": "test", "signal": "traces"}
    assert sample(registry, "otelgate_exporter_failed_items_total", **labels) == 3
    assert sample(registry, "otelgate_exporter_sent_items_total", **labels) == 0
    assert queue.status.state == "failed" and "400" in (queue.status.last_error or "")
    await queue.shutdown(1)


async def test_gives_up_after_max_elapsed_time() -> None:
    exporter = ScriptedExporter([RetryableError("down")] * 100)
    policy = RetryPolicy(initial_interval=0.05, max_interval=0.05, max_elapsed_time=0.3)
    queue, registry = make_queue(exporter, retry=policy)
    await queue.start()
    queue.offer(traces_batch(2))
    await drain(queue)
    assert 3 <= len(exporter.attempts) <= 10
    labels = {"exporter": "test", "signal": "traces"}
    assert sample(registry, "otelgate_exporter_failed_items_total", **labels) == 2
    await queue.shutdown(1)


async def test_unexpected_exception_is_failed_not_retried() -> None:
    exporter = ScriptedExporter([ZeroDivisionError("bug")])
    queue, registry = make_queue(exporter)
    await queue.start()
    queue.offer(traces_batch(1))
    await drain(queue)
    assert len(exporter.attempts) == 1
    labels = {"exporter": "test", "signal": "traces"}
    assert sample(registry, "otelgate_exporter_failed_items_total", **labels) == 1
    await queue.shutdown(1)


async def test_full_queue_refuses_by_default_and_keeps_what_it_took() -> None:
    exporter = ScriptedExporter()
    exporter.gate.clear()  # the backend hangs
    queue, registry = make_queue(exporter, capacity=5, num_consumers=1)
    await queue.start()
    queue.offer(traces_batch(3))
    queue.offer(traces_batch(2))
    assert queue.full
    with pytest.raises(BackpressureError):
        queue.offer(traces_batch(1))
    assert queue.would_refuse(1, traces_batch(1).nbytes)
    exporter.gate.set()
    await drain(queue)
    assert sum(b.items for b in exporter.delivered) == 5
    labels = {"exporter": "test", "signal": "traces"}
    assert sample(registry, "otelgate_exporter_dropped_items_total", **labels) == 0
    await queue.shutdown(1)


async def test_full_queue_drops_and_counts_with_drop_policy() -> None:
    exporter = ScriptedExporter()
    exporter.gate.clear()
    queue, registry = make_queue(exporter, capacity=4, num_consumers=1, on_full="drop")
    await queue.start()
    assert queue.offer(traces_batch(4))
    assert not queue.would_refuse(1, traces_batch(1).nbytes)
    assert queue.offer(traces_batch(3)) is False
    labels = {"exporter": "test", "signal": "traces"}
    assert sample(registry, "otelgate_exporter_dropped_items_total", **labels) == 3
    exporter.gate.set()
    await drain(queue)
    await queue.shutdown(1)


async def test_oversized_batch_is_taken_by_an_empty_queue() -> None:
    exporter = ScriptedExporter()
    queue, _ = make_queue(exporter, capacity=2)
    await queue.start()
    assert queue.offer(traces_batch(10))
    await drain(queue)
    assert exporter.delivered[0].items == 10
    await queue.shutdown(1)


async def test_shutdown_drains_within_timeout() -> None:
    exporter = ScriptedExporter(delay=0.05)
    queue, _ = make_queue(exporter, num_consumers=1)
    await queue.start()
    for _ in range(5):
        queue.offer(traces_batch(1))
    await queue.shutdown(5)
    assert len(exporter.delivered) == 5
    with pytest.raises(NotReadyError):
        queue.offer(traces_batch(1))


async def test_shutdown_counts_undelivered_items_as_dropped() -> None:
    exporter = ScriptedExporter([RetryableError("down")] * 1000)
    queue, registry = make_queue(exporter, num_consumers=1)
    await queue.start()
    queue.offer(traces_batch(2))
    queue.offer(traces_batch(3))
    await queue.shutdown(0.2)
    labels = {"exporter": "test", "signal": "traces"}
    assert sample(registry, "otelgate_exporter_dropped_items_total", **labels) == 5
    assert sample(registry, "otelgate_exporter_queue_size", exporter="test") == 0


async def test_queue_is_bounded_in_bytes_as_well_as_items() -> None:
    """Issue 9, finding 4: 400 one-span requests of 4 MiB filled a queue sized only in items."""
    exporter = ScriptedExporter()
    exporter.gate.clear()  # the backend hangs
    queue, registry = make_queue(exporter, capacity=100_000, max_bytes=10_000, num_consumers=1)
    await queue.start()
    assert queue.offer(traces_batch(1, nbytes=6_000))  # an empty queue takes any one batch
    with pytest.raises(BackpressureError, match="bytes"):
        queue.offer(traces_batch(1, nbytes=6_000))
    assert queue.full is False and queue.usage == "1/100000 items, 6000/10000 bytes"
    assert queue.offer(traces_batch(1, nbytes=4_000))
    assert queue.full
    assert sample(registry, "otelgate_exporter_queue_bytes", exporter="test") == 10_000
    assert sample(registry, "otelgate_exporter_queue_capacity_bytes", exporter="test") == 10_000
    exporter.gate.set()
    await drain(queue)
    assert sample(registry, "otelgate_exporter_queue_bytes", exporter="test") == 0
    await queue.shutdown(1)
