"""The ingest path: large requests in pieces, whole or not at all, counted exactly."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry

from exporters.base import ExporterBase
from exporters.queue import ExporterQueue
from gateway.errors import BackpressureError, BadRequestError, TooLargeError
from gateway.otlp.batch import Batch, Signal, count_items
from gateway.otlp.json_codec import encode_json
from gateway.otlp.split import MAX_ENTRIES, PIECE_BYTES
from gateway.pipeline import Pipeline, Router
from gateway.receivers.ingest import Ingest
from gateway.selfmetrics import GatewayMetrics
from tests.support.hostile import empty_groups, tiny_spans


class Holding(ExporterBase):
    async def push(self, batch: Batch) -> None:  # pragma: no cover - no workers run
        raise AssertionError("the test queue has no workers")


def make_ingest(capacity: int = 1_000_000) -> tuple[Ingest, ExporterQueue, CollectorRegistry]:
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry)
    queue = ExporterQueue("q", Holding(), metrics, capacity=capacity, max_bytes=2**40)
    queue._closed = False  # accepts batches; no workers, so the test sees what it holds
    router = Router(Signal.TRACES, [Pipeline("traces", Signal.TRACES, [], [queue])])
    return Ingest("http", {Signal.TRACES: router}, metrics), queue, registry


def big_request(spans: int, pad: int = 200) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for i in range(spans):
        scope.spans.add(trace_id=os.urandom(16), span_id=os.urandom(8), name=f"{i}:" + "x" * pad)
    return request


def queued_names(queue: ExporterQueue) -> list[str]:
    return [
        span.name
        for batch in queue._pending
        for rs in batch.request.resource_spans  # type: ignore[union-attr]
        for ss in rs.scope_spans
        for span in ss.spans
    ]


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
async def test_a_large_request_is_queued_in_pieces_with_every_item(encoding: str) -> None:
    ingest, queue, registry = make_ingest()
    request = big_request(6000)
    body = request.SerializeToString() if encoding == "protobuf" else encode_json(request)
    assert len(body) > 2 * PIECE_BYTES
    response = await ingest.receive(Signal.TRACES, body, encoding)  # type: ignore[arg-type]
    assert not response.HasField("partial_success")
    assert len(queue._pending) > 2
    assert queued_names(queue) == [s.name for s in request.resource_spans[0].scope_spans[0].spans]
    labels = {"signal": "traces", "transport": "http"}
    assert registry.get_sample_value("otelgate_receiver_accepted_items_total", labels) == 6000


async def test_invalid_items_of_every_piece_are_counted_in_one_partial_success() -> None:
    ingest, queue, registry = make_ingest()
    request = big_request(6000)
    spans = request.resource_spans[0].scope_spans[0].spans
    for i in range(0, 6000, 1000):
        spans[i].trace_id = b"short"
    response = await ingest.receive(Signal.TRACES, request.SerializeToString(), "protobuf")
    assert response.partial_success.rejected_spans == 6  # type: ignore[union-attr]
    assert sum(b.items for b in queue._pending) == 5994
    labels = {"signal": "traces", "transport": "http", "reason": "invalid"}
    assert registry.get_sample_value("otelgate_receiver_refused_items_total", labels) == 6


async def test_no_room_for_the_whole_request_refuses_all_of_it() -> None:
    ingest, queue, registry = make_ingest(capacity=5000)
    queue.offer(Batch.from_request(Signal.TRACES, big_request(1)))
    with pytest.raises(BackpressureError):
        await ingest.receive(Signal.TRACES, big_request(6000).SerializeToString(), "protobuf")
    assert sum(b.items for b in queue._pending) == 1  # no piece went in
    labels = {"signal": "traces", "transport": "http", "reason": "backpressure"}
    assert registry.get_sample_value("otelgate_receiver_refused_items_total", labels) == 6000


async def test_an_undecodable_piece_refuses_the_request_before_any_is_queued() -> None:
    ingest, queue, _ = make_ingest()
    request = big_request(6000)
    request.resource_spans[0].scope_spans[0].spans[5999].name = "valid"
    body = request.SerializeToString().replace(b"valid", b"\xff\xfeid")  # invalid UTF-8
    with pytest.raises(BadRequestError, match="cannot decode"):
        await ingest.receive(Signal.TRACES, body, "protobuf")
    assert not queue._pending


async def test_a_bomb_of_empty_groups_queues_nothing_and_keeps_the_loop_free() -> None:
    """500,000 empty resource groups (1 MiB) decoded at once take ~100 MB and a second of the
    loop in validation; in pieces off the loop, a timer on the loop keeps firing meanwhile."""
    ingest, queue, _ = make_ingest()
    ticks: list[float] = []
    loop = asyncio.get_running_loop()

    async def tick() -> None:
        while True:
            ticks.append(loop.time())
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    body = empty_groups(500_000) + tiny_spans(3)
    response = await ingest.receive(Signal.TRACES, body, "protobuf")
    ticker.cancel()
    assert not response.HasField("partial_success")
    assert sum(b.items for b in queue._pending) == 3
    # The loop ran all along: more than a few ticks, none stuck for long.
    assert len(ticks) > 5
    assert count_items(Signal.TRACES, queue._pending[0].request) == 3


async def test_json_too_deep_for_protobuf_is_a_bad_request_in_the_large_path_too() -> None:
    ingest, queue, _ = make_ingest()
    spans: list[dict[str, Any]] = [
        {"traceId": os.urandom(16).hex(), "spanId": os.urandom(8).hex(), "name": "x" * 500}
        for _ in range(2000)
    ]
    deep: dict = {"intValue": "1"}
    for _ in range(40):
        deep = {"kvlistValue": {"values": [{"key": "k", "value": deep}]}}
    spans[-1]["attributes"] = [{"key": "deep", "value": deep}]
    body = orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})
    assert len(body) > PIECE_BYTES
    with pytest.raises(BadRequestError, match="nested deeper than 100 levels"):
        await ingest.receive(Signal.TRACES, body, "json")
    assert not queue._pending


async def test_a_request_too_many_entries_to_take_apart_is_refused_and_counted() -> None:
    ingest, queue, registry = make_ingest()
    with pytest.raises(TooLargeError, match="too many entries"):
        await ingest.receive(Signal.TRACES, empty_groups(MAX_ENTRIES + 1), "protobuf")
    assert not queue._pending
    labels = {"signal": "traces", "transport": "http", "reason": "too_large"}
    assert registry.get_sample_value("otelgate_receiver_refused_requests_total", labels) == 1


async def test_a_small_body_with_many_entries_leaves_the_fast_path() -> None:
    """The fast path counts entries without a loop over them; 20,000 tiny spans in 700 KB
    go in pieces."""
    ingest, queue, _ = make_ingest()
    await ingest.receive(Signal.TRACES, tiny_spans(20_000), "protobuf")
    assert sum(b.items for b in queue._pending) == 20_000
    assert len(queue._pending) > 1
