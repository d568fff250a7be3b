"""The worker-to-supervisor link: relayed batches round-trip byte for byte, frames arrive in
order and whole, a closed link drops frames, and the relay refuses when the buffer is full."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.errors import BackpressureError
from gateway.health.config import HealthConfig
from gateway.health.services import ServiceHealthTracker
from gateway.otlp.batch import Batch, Signal
from gateway.workers.link import (
    AUDIT,
    BATCH,
    COUNT_HEALTH,
    EXCEPTIONS_ONLY,
    LOG,
    STATUS,
    LinkWriter,
    decode_batch,
    encode_batch,
    load_object,
    read_frames,
    socket_pair,
)
from gateway.workers.relay import (
    AuditRelay,
    LogRelayHandler,
    RelayNeeds,
    RelayPipeline,
    replay_log,
)

pytestmark = pytest.mark.timeout(30)


def _batch(spans: int) -> Batch:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for i in range(spans):
        span = scope.spans.add()
        span.name = f"span {i}"
        span.trace_id = bytes(range(16))
        span.span_id = i.to_bytes(8, "big")
    return Batch.from_request(Signal.TRACES, request)


def test_a_batch_round_trips_with_its_receiver_items_and_size():
    batch = _batch(3)
    receiver, back, flags = decode_batch(encode_batch("otlp/edge", batch, COUNT_HEALTH))
    assert (receiver, flags) == ("otlp/edge", COUNT_HEALTH)
    assert back.signal is Signal.TRACES
    assert (back.items, back.nbytes) == (3, batch.nbytes)
    assert back.serialized() == batch.serialized()
    request = back.request
    assert isinstance(request, ExportTraceServiceRequest)
    assert [s.name for s in request.resource_spans[0].scope_spans[0].spans] == [
        "span 0", "span 1", "span 2",
    ]  # fmt: skip


_KEEP: list[asyncio.StreamWriter] = []  # the supervisor ends stay open during a test


async def _connected() -> tuple[LinkWriter, asyncio.StreamReader, asyncio.StreamReader]:
    ours, theirs = socket_pair()
    link, worker_reader = await LinkWriter.connect(theirs.detach())
    reader, writer = await asyncio.open_unix_connection(sock=ours)
    _KEEP.append(writer)
    return link, reader, worker_reader


async def test_frames_arrive_in_order_from_the_loop_and_from_other_threads():
    link, reader, _ = await _connected()
    link.send_batch("otlp", _batch(2))
    link.send_object(STATUS, {"n": 1})
    thread = threading.Thread(target=link.send_object, args=(AUDIT, ("note_token_use", ("a",))))
    thread.start()
    thread.join()
    await asyncio.sleep(0.05)  # the thread's frame is written by the loop
    link.send_object(LOG, {"msg": "last"})
    await link.close()
    frames = [(kind, payload) async for kind, payload in read_frames(reader)]
    assert [kind for kind, _ in frames] == [BATCH, STATUS, AUDIT, LOG]
    assert decode_batch(frames[0][1])[1].items == 2
    assert load_object(frames[1][1]) == {"n": 1}
    assert load_object(frames[2][1]) == ("note_token_use", ("a",))


async def test_the_relay_refuses_retryably_when_the_supervisor_is_behind():
    link, _reader, _ = await _connected()
    relay = RelayPipeline(link, "otlp", Signal.TRACES, RelayNeeds(), central=True, health=None)
    big = _batch(2000)
    link.limit = 3 * big.nbytes  # nobody reads: the kernel buffer fills, then the transport's
    sent = 0
    with pytest.raises(BackpressureError, match="supervisor is behind"):
        for _ in range(10_000):
            relay.check_room(big.items, big.nbytes)
            await relay.consume(big)
            sent += 1
    assert sent > 3  # the kernel's buffer took some before the transport's filled
    assert 0 < link.buffered <= link.limit


async def test_a_closed_link_drops_frames_and_says_so():
    link, _reader, _ = await _connected()
    await link.close()
    relay = RelayPipeline(link, "otlp", Signal.LOGS, RelayNeeds(), central=True, health=None)
    assert relay.refusal() == "the link to the supervisor is closed"
    link.send_object(STATUS, {"late": True})  # no error: the supervisor is gone


async def test_the_worker_sees_eof_when_the_supervisor_goes():
    ours, theirs = socket_pair()
    _link, worker_reader = await LinkWriter.connect(theirs.detach())
    ours.close()
    assert await asyncio.wait_for(worker_reader.read(), 5) == b""


async def test_audit_notes_and_log_records_reach_the_supervisor(caplog):
    link, reader, _ = await _connected()
    AuditRelay(link).note_auth_failure("bad token", "127.0.0.1:5000", None)
    handler = LogRelayHandler(link, "worker 1")
    logger = logging.getLogger("otelgate.test-relay")
    logger.addHandler(handler)
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            logger.error("export failed: %s", "x", exc_info=True)
    finally:
        logger.removeHandler(handler)
    await link.close()
    frames = [(kind, load_object(p)) async for kind, p in read_frames(reader)]
    assert frames[0] == (AUDIT, ("note_auth_failure", ("bad token", "127.0.0.1:5000", None)))
    kind, fields = frames[1]
    assert kind == LOG and fields["msg"] == "worker 1: export failed: x"
    with caplog.at_level(logging.ERROR, logger="otelgate.test-relay"):
        replay_log(fields)
    record = caplog.records[-1]
    assert record.getMessage() == "worker 1: export failed: x"
    assert record.levelno == logging.ERROR and "ValueError: boom" in (record.exc_text or "")


async def test_the_relay_sends_what_the_supervisor_needs():
    link, reader, _ = await _connected()
    needs = RelayNeeds()
    health = ServiceHealthTracker(HealthConfig())
    relay = RelayPipeline(link, "otlp", Signal.TRACES, needs, central=False, health=health)
    plain, failing = _batch(2), _batch(1)
    event = failing.request.resource_spans[0].scope_spans[0].spans[0].events.add()  # type: ignore[union-attr]
    event.name = "exception"
    failing.mark_modified()
    for need in ("all", "exceptions", "none"):  # what the supervisor may say
        needs.by_signal[Signal.TRACES] = need
        await relay.consume(plain)
        await relay.consume(failing)
    central = RelayPipeline(link, "otlp", Signal.TRACES, needs, central=True, health=None)
    await central.consume(plain)  # the supervisor runs a pipeline of it: always
    await link.close()
    got = [decode_batch(p)[1:] async for _, p in read_frames(reader)]
    # all: both; exceptions: the one that holds an exception; none: nothing; central: all,
    # and the supervisor counts its health (the worker's relay stage did not)
    assert [(b.items, flags) for b, flags in got] == [
        (2, 0), (1, 0), (1, EXCEPTIONS_ONLY), (2, COUNT_HEALTH),
    ]  # fmt: skip
    # the worker's stage counted health for the 6 batches it saw: 1 service, 9 spans in all
    delta = health.drain()
    assert list(delta) == ["unknown_service"] and delta["unknown_service"].touches == 6
