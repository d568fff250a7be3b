"""The disk spool under faults: a full disk (ENOSPC injected by a filesystem model that, like
the kernel, counts deleted files still held open) refuses data with a retryable 503, releases
its files, says why in readiness and ``/health``, and resumes when space returns, losing
nothing; a record protobuf cannot decode is skipped alone and counted failed once; damage found
while reading costs only the damaged record."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry

from exporters import spool_io
from exporters.base import ExporterBase
from exporters.queue import ExporterQueue
from exporters.retry import RetryPolicy
from exporters.spool import Spool, SpoolWriteError, record_size
from gateway.config.loading import parse_config
from gateway.errors import RetryableError
from gateway.otlp.batch import Batch, Signal
from gateway.selfmetrics import GatewayMetrics
from gateway.service import Gateway
from tests.exporters.test_spool import big_logs_batch, segments, spooled
from tests.factories import traces_batch, traces_request
from tests.support.otlp_sink import OtlpSink
from tests.support.spool_faults import (
    FullDisk,
    open_files,
    open_for_writing,
    undecodable_traces_batch,
)

pytestmark = pytest.mark.timeout(60)

FAST = RetryPolicy(initial_interval=0.01, max_interval=0.05, max_elapsed_time=0)


class Backend(ExporterBase):
    """Down (retryable errors) until ``up`` is set; then keeps what it receives."""

    def __init__(self, up: bool = False) -> None:
        self.up = up
        self.batches: list[Batch] = []

    async def push(self, batch: Batch) -> None:
        if not self.up:
            await asyncio.sleep(0.01)
            raise RetryableError("connection refused")
        self.batches.append(batch)


def spool_queue(backend: Backend, directory: Path) -> tuple[ExporterQueue, CollectorRegistry]:
    registry = CollectorRegistry()
    spool = Spool(directory, retry_interval=0.05)  # default size: one segment holds it all
    queue = ExporterQueue("disk", backend, GatewayMetrics(registry), retry=FAST, spool=spool)
    return queue, registry


def count(registry: CollectorRegistry, name: str, signal: Signal) -> float:
    labels = {"exporter": "disk", "signal": signal.value}
    return registry.get_sample_value(f"otelgate_exporter_{name}_items_total", labels) or 0.0


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def deleted_but_open(directory: Path) -> list[str]:
    return [target for _, target in open_files(directory) if target.endswith("(deleted)")]


def payloads(batches: list[Batch]) -> list[bytes]:
    return sorted(b.serialized() for b in batches)


async def test_a_full_disk_refuses_releases_its_files_and_resumes_when_space_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "spool"
    disk = FullDisk(directory, capacity=150_000)
    monkeypatch.setattr(spool_io, "pwrite_all", disk.pwrite_all)
    backend = Backend()
    queue, registry = spool_queue(backend, directory)
    await queue.start()
    accepted: list[Batch] = []
    refusal: SpoolWriteError | None = None
    for _ in range(100):  # the backend is down: the spool fills the disk
        batch = big_logs_batch(10_000)
        try:
            await queue.put(batch)
        except SpoolWriteError as exc:
            refusal = exc
            break
        accepted.append(batch)
    assert refusal is not None and len(accepted) > 5
    assert refusal.http_status == 503 and refusal.retry_after  # the client retries later
    assert "No space left on device" in str(refusal)
    assert queue.problem is not None and "No space left on device" in queue.problem
    assert queue.spool is not None and queue.spool.problem_since is not None
    assert queue.would_refuse(1, 100)  # refused before any fan-out, like a full queue
    assert open_for_writing(directory) == []  # the segment that failed is closed
    assert deleted_but_open(directory) == []

    await asyncio.sleep(0.3)  # still full: the probes fail, nothing changes
    assert queue.problem is not None and disk.refused > 2

    backend.up = True  # deliveries free the space; the spool notices without any traffic
    await wait_until(lambda: queue.size == 0 and queue.problem is None)
    assert deleted_but_open(directory) == []
    assert not queue.would_refuse(1, 100)
    later = [big_logs_batch(10_000) for _ in range(3)]
    for batch in later:
        await queue.put(batch)
    await wait_until(lambda: queue.size == 0)
    assert payloads(backend.batches) == payloads(accepted + later)  # nothing lost, no duplicate
    items = sum(b.items for b in accepted + later)
    assert count(registry, "sent", Signal.LOGS) == items
    assert count(registry, "failed", Signal.LOGS) == count(registry, "dropped", Signal.LOGS) == 0
    await queue.shutdown(1)
    assert open_files(directory) == []


def _bytes_on_disk(directory: Path) -> int:
    """The segments' sizes; a segment the spool's background I/O deletes meanwhile (the
    emptied second one, retired) counts as nothing."""
    total = 0
    for path in segments(directory):
        with contextlib.suppress(FileNotFoundError):
            total += path.stat().st_size
    return total


async def test_a_group_commit_that_fails_in_its_second_segment_keeps_nothing_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, big = traces_batch(2), traces_batch(2), big_logs_batch(10_000)
    size = record_size(first)
    disk = FullDisk(tmp_path, capacity=2 * size + 100)  # room for two small records only
    monkeypatch.setattr(spool_io, "pwrite_all", disk.pwrite_all)
    spool = await spooled(tmp_path, [first], segment_bytes=2 * size, retry_interval=60)
    results = await asyncio.gather(  # one group: `second` fills segment 1, `big` starts segment 2
        spool.append(second), spool.append(big), return_exceptions=True
    )
    assert all(isinstance(r, OSError) and "No space left" in str(r) for r in results), results
    assert spool.bytes == size  # both clients were told to retry: neither may stay on disk
    assert _bytes_on_disk(tmp_path) == size
    disk.capacity = 10**9  # space is back: a real append clears the problem before any probe
    await spool.append(second)
    assert spool.problem is None
    await spool.close()
    again = Spool(tmp_path)
    found = await again.open()
    assert found.quarantined == [] and found.records == 2  # `second` once, not twice
    got = [(await again.get()).batch.serialized() for _ in range(2)]
    assert got == [first.serialized(), second.serialized()]
    await again.close()


async def gateway_with_spool(directory: Path, sink: OtlpSink) -> Gateway:
    config: dict[str, Any] = {
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:0"}}}},
        "exporters": {
            "otlp/sink": {
                "endpoint": sink.http_endpoint,
                "protocol": "http/protobuf",
                "retry_on_failure": {"initial_interval": "50ms", "max_interval": "200ms"},
                "sending_queue": {"storage": "disk", "directory": str(directory)},
            }
        },
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["otlp/sink"]}}},
        "admin": {"endpoint": "127.0.0.1:0"},
        "health": {"cache_ttl": 0},
    }
    gateway = Gateway(parse_config(yaml.safe_dump(config), environ={}))
    await gateway.start()
    return gateway


async def test_readiness_and_health_say_why_while_the_spool_cannot_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "spool"
    disk = FullDisk(directory, capacity=100_000)
    monkeypatch.setattr(spool_io, "pwrite_all", disk.pwrite_all)
    sink = OtlpSink().start()  # only to reserve its ports: the backend is down at first
    ports = (sink.grpc_port, sink.http_port)
    sink.stop()
    gateway = await gateway_with_spool(directory, sink)
    admin = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.admin_app), base_url="http://admin"
    )
    otlp = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{gateway.http_servers[0].port}", timeout=10
    )

    async def post() -> tuple[httpx.Response, set[bytes]]:
        request = traces_request(50)
        spans = request.resource_spans[0].scope_spans[0].spans
        response = await otlp.post(
            "/v1/traces",
            content=request.SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
        )
        return response, {s.span_id for s in spans}

    try:
        accepted: set[bytes] = set()
        for _ in range(200):
            response, ids = await post()
            if response.status_code != 200:
                break
            accepted |= ids
        assert accepted and response.status_code == 503
        assert int(response.headers["Retry-After"]) >= 1
        labels = {"signal": "traces", "transport": "http", "reason": "spool_error"}
        refused = gateway.registry.get_sample_value("otelgate_receiver_refused_items_total", labels)
        assert refused == 50

        ready = await admin.get("/health/ready")
        assert ready.status_code == 503
        [reason] = ready.json()["reasons"]
        assert "otlp/sink" in reason and "No space left on device" in reason, reason
        health = await admin.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "unhealthy"
        [exporter] = health.json()["exporters"]
        assert "No space left on device" in exporter["spool_error"]
        assert exporter["spool_error_since"] is not None

        sink = OtlpSink(*ports).start()  # the backend is back: the spool drains, space returns
        deadline = time.monotonic() + 20
        while (await admin.get("/health/ready")).status_code != 200:
            assert time.monotonic() < deadline, (await admin.get("/health/ready")).text
            await asyncio.sleep(0.1)
        [exporter] = (await admin.get("/health")).json()["exporters"]
        assert exporter["spool_error"] is None
        response, ids = await post()
        assert response.status_code == 200
        accepted |= ids
        assert await asyncio.to_thread(
            sink.wait_for, lambda s: {x.span_id for x in s.spans()} >= accepted, 20
        )
        delivered = [s.span_id for s in sink.spans()]
        assert sorted(delivered) == sorted(accepted)  # every accepted span, once
    finally:
        await otlp.aclose()
        await admin.aclose()
        await gateway.stop(drain_timeout=1.0)
        sink.stop()


async def test_an_undecodable_record_is_skipped_alone_and_counted_failed_once(
    tmp_path: Path,
) -> None:
    backend = Backend(up=True)
    queue, registry = spool_queue(backend, tmp_path)
    await queue.start()
    good = [traces_batch(2) for _ in range(1000)]
    poison = undecodable_traces_batch(spans=3)
    for batch in [*good[:1], poison, *good[1:]]:
        await queue.put(batch)
    await wait_until(lambda: queue.size == 0)
    assert payloads(backend.batches) == payloads(good)  # every good one after the poison too
    accepted = 3 + 2 * len(good)
    sent, failed = count(registry, "sent", Signal.TRACES), count(registry, "failed", Signal.TRACES)
    dropped = count(registry, "dropped", Signal.TRACES)
    assert (sent, failed, dropped) == (2 * len(good), 3, 0)
    assert accepted == sent + failed + dropped + queue.size
    assert queue.status.last_error is not None and "cannot be decoded" in queue.status.last_error
    await queue.shutdown(1)


async def test_an_undecodable_record_found_after_a_restart_is_skipped_once(
    tmp_path: Path,
) -> None:
    unreadable: list[tuple[Signal, int, str]] = []
    sent = [traces_batch(1), undecodable_traces_batch(spans=2), traces_batch(3)]
    await (await spooled(tmp_path, sent)).close()  # the start-up check only verifies CRCs

    spool = Spool(tmp_path, on_unreadable=lambda *a: unreadable.append(a))
    found = await spool.open()
    assert found.records == 3 and found.quarantined == []
    first = await asyncio.wait_for(spool.get(), 5)
    spool.ack(first)
    second = await asyncio.wait_for(spool.get(), 5)  # the poison is passed over
    assert [first.batch.items, second.batch.items] == [1, 3]
    [(signal, items, why)] = unreadable
    assert (signal, items) == (Signal.TRACES, 2) and "MaxDepth" in why
    await spool.close()  # the second record is in flight: it stays, the poison does not

    again = Spool(tmp_path, on_unreadable=lambda *a: unreadable.append(a))
    found = await again.open()
    assert found.records == 1 and found.items == {Signal.TRACES: 3}
    entry = await asyncio.wait_for(again.get(), 5)
    assert entry.batch.serialized() == sent[2].serialized()
    assert len(unreadable) == 1  # counted once
    await again.close()


def _flip_payload(data: bytearray, at: int) -> None:
    data[at + 40] ^= 0xFF  # a bad CRC


def _zero_header(data: bytearray, at: int) -> None:
    data[at : at + 12] = bytes(12)  # a torn header: no magic


def _huge_length(data: bytearray, at: int) -> None:
    data[at + 4 : at + 8] = (1 << 30).to_bytes(4, "little")  # a length past the file's end


@pytest.mark.parametrize("damage", [_flip_payload, _zero_header, _huge_length])
async def test_damage_while_reading_resynchronises_on_the_next_intact_record(
    tmp_path: Path, damage: Callable[[bytearray, int], None]
) -> None:
    lost: list[tuple[Signal, int]] = []
    sent = [traces_batch(n) for n in (1, 2, 3, 4, 5)]
    spool = await spooled(tmp_path, sent, on_lost=lambda *a: lost.append(a))
    [segment] = segments(tmp_path)
    data = bytearray(segment.read_bytes())
    damage(data, sum(map(record_size, sent[:2])))  # the third record
    segment.write_bytes(bytes(data))  # the disk goes bad under the running gateway

    got = []
    for _ in range(4):
        entry = await asyncio.wait_for(spool.get(), 5)
        spool.ack(entry)
        got.append(entry.batch.serialized())
    assert got == [sent[i].serialized() for i in (0, 1, 3, 4)]
    assert lost == [(Signal.TRACES, 3)] and spool.unacked_items == 0
    await spool.close()
    assert [p.name for p in (tmp_path / "quarantine").glob("*.seg")] == [segment.name]
