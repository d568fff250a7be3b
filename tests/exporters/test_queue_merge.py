"""ExporterQueue merging: queued batches go out as one concatenated request per signal."""

from __future__ import annotations

import asyncio

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from exporters.merging import MergeLimits
from gateway.otlp.batch import Batch, Signal
from tests.exporters.test_queue import ScriptedExporter, drain, make_queue, sample
from tests.factories import logs_batch, traces_batch


class BytesExporter(ScriptedExporter):
    sends_encoded_batches = True


def span_ids(batch: Batch) -> list[bytes]:
    request = ExportTraceServiceRequest.FromString(batch.serialized())
    return [s.span_id for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]


async def queued_behind_a_blocked_call(exporter: ScriptedExporter, batches: list[Batch], **kw):
    """Start a one-worker queue, block its first call, queue ``batches``, then release it."""
    queue, registry = make_queue(exporter, num_consumers=1, **kw)
    await queue.start()
    exporter.gate.clear()
    queue.offer(traces_batch(1))  # taken at once; the worker waits on the gate with it
    while not exporter.attempts:
        await asyncio.sleep(0.001)
    for batch in batches:
        queue.offer(batch)
    exporter.gate.set()
    await drain(queue)
    await queue.shutdown(1)
    return registry


async def test_waiting_batches_of_a_signal_go_out_as_one_request() -> None:
    traces = [traces_batch(3) for _ in range(4)]
    logs = [logs_batch(2) for _ in range(2)]
    expected = [i for b in traces for i in span_ids(b)]
    exporter = BytesExporter()
    registry = await queued_behind_a_blocked_call(
        exporter, [traces[0], logs[0], traces[1], traces[2], logs[1], traces[3]],
        merge=MergeLimits(),
    )  # fmt: skip
    _, *merged = exporter.delivered
    assert [(b.signal, b.items) for b in merged] == [(Signal.TRACES, 12), (Signal.LOGS, 4)]
    assert span_ids(merged[0]) == expected  # every span, in queue order, decodable as one
    decoded = merged[0].request  # decoded lazily from the merged bytes
    assert isinstance(decoded, ExportTraceServiceRequest) and len(decoded.resource_spans) == 4
    assert sample(registry, "otelgate_exporter_sent_items_total", exporter="test",
                  signal="traces") == 13  # fmt: skip


async def test_merging_stops_at_the_item_and_byte_limits() -> None:
    batches = [traces_batch(5) for _ in range(6)]
    exporter = BytesExporter()
    await queued_behind_a_blocked_call(exporter, batches, merge=MergeLimits(max_items=10))
    assert [b.items for b in exporter.delivered[1:]] == [10, 10, 10]
    size = len(batches[0].serialized())
    exporter = BytesExporter()
    await queued_behind_a_blocked_call(
        exporter, batches, merge=MergeLimits(max_bytes=3 * size + size // 2)
    )
    assert [b.items for b in exporter.delivered[1:]] == [15, 15]


async def test_exporters_that_read_the_request_get_batches_unmerged() -> None:
    batches = [traces_batch(2) for _ in range(3)]
    exporter = ScriptedExporter()  # sends_encoded_batches is False
    await queued_behind_a_blocked_call(exporter, batches, merge=MergeLimits())
    assert exporter.delivered[1:] == batches


async def test_a_failed_merged_request_counts_every_item_failed() -> None:
    from gateway.errors import PermanentError

    exporter = BytesExporter([PermanentError("no"), PermanentError("bad request")])
    registry = await queued_behind_a_blocked_call(
        exporter, [traces_batch(4) for _ in range(3)], merge=MergeLimits()
    )
    assert sample(registry, "otelgate_exporter_failed_items_total", exporter="test",
                  signal="traces") == 13  # fmt: skip


async def test_shutdown_sends_a_gathering_group_at_once_and_counts_what_it_cannot() -> None:
    exporter = BytesExporter()
    queue, registry = make_queue(exporter, num_consumers=1, merge=MergeLimits(timeout=30.0))
    await queue.start()
    for _ in range(3):
        queue.offer(traces_batch(2))
    await asyncio.sleep(0.05)  # the worker is gathering, waiting up to 30 s for more
    assert exporter.attempts == []
    await asyncio.wait_for(queue.shutdown(5.0), 2.0)  # no 30 s wait: closing flushes
    assert [b.items for b in exporter.delivered] == [6]

    blocked = BytesExporter()
    blocked.gate.clear()  # the backend never answers
    queue, registry = make_queue(blocked, num_consumers=1, merge=MergeLimits(timeout=30.0))
    await queue.start()
    for _ in range(3):
        queue.offer(traces_batch(2))
    await asyncio.sleep(0.05)
    await queue.shutdown(0.2)
    assert sample(registry, "otelgate_exporter_dropped_items_total", exporter="test",
                  signal="traces") == 6  # fmt: skip
