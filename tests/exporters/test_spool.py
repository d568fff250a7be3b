"""The disk spool: durable round trips, restart recovery, damage detection and quarantine,
the size cap, bounded memory with a dead backend, and the queue keeping what it spooled."""

from __future__ import annotations

import asyncio
import gc
import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from exporters.base import ExporterBase
from exporters.queue import ExporterQueue
from exporters.retry import RetryPolicy
from exporters.spool import Spool, SpoolLockedError, default_directory, record_size
from gateway.components import build_queue
from gateway.config.loading import parse_config
from gateway.errors import BackpressureError, RetryableError
from gateway.otlp.batch import Batch, Signal
from gateway.selfmetrics import GatewayMetrics
from tests.factories import logs_request, metrics_request, traces_batch


def big_logs_batch(payload_bytes: int, records: int = 4, service: str = "checkout") -> Batch:
    """A logs batch of about ``payload_bytes`` serialized bytes."""
    request = logs_request(records, service=service)
    body = os.urandom(payload_bytes // (2 * records)).hex()  # random: no compression tricks
    for record in request.resource_logs[0].scope_logs[0].log_records:
        record.body.string_value = body
    return Batch.from_request(Signal.LOGS, request)


def is_ours(batch: Batch) -> bool:
    """Made by the memory test (other tests may leave batches of their own alive)."""
    if batch.signal is not Signal.LOGS:
        return False
    resource = batch.request.resource_logs[0].resource  # type: ignore[union-attr]
    return any(a.value.string_value == "memory-test" for a in resource.attributes)


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


async def spooled(directory: Path, batches: list[Batch], **kwargs) -> Spool:
    spool = Spool(directory, **kwargs)
    await spool.open()
    for batch in batches:
        await spool.append(batch)
    return spool


async def drain(spool: Spool, n: int, ack: bool = True) -> list[Batch]:
    out = []
    for _ in range(n):
        entry = await asyncio.wait_for(spool.get(), 5)
        if ack:
            spool.ack(entry)
        out.append(entry.batch)
    return out


async def nothing_left(spool: Spool) -> bool:
    try:
        await asyncio.wait_for(spool.get(), 0.2)
    except TimeoutError:
        return True
    return False


async def test_write_read_ack_round_trip(tmp_path: Path) -> None:
    sent = [
        traces_batch(3),
        Batch.from_request(Signal.LOGS, logs_request(2)),
        Batch.from_request(Signal.METRICS, metrics_request(4)),
    ]
    spool = await spooled(tmp_path, sent)
    assert spool.unacked_items == 9
    assert spool.bytes == sum(record_size(b) for b in sent)
    got = await drain(spool, 3)
    assert [(b.signal, b.items, b.serialized()) for b in got] == [
        (b.signal, b.items, b.serialized()) for b in sent
    ]
    assert got[0].request == sent[0].request  # decoded back into the OTLP message
    assert spool.unacked_items == 0 and spool.idle
    await spool.close()

    again = Spool(tmp_path)
    found = await again.open()
    assert found.records == 0 and found.items == {}
    assert segments(tmp_path) == []  # fully acknowledged segments are removed
    await again.close()


async def test_restart_yields_exactly_the_unacknowledged_records(tmp_path: Path) -> None:
    sent = [traces_batch(i + 1) for i in range(5)]
    spool = await spooled(tmp_path, sent)
    first = await spool.get()
    second = await spool.get()
    spool.ack(second)  # delivered out of order
    await spool.get()  # third: in flight when the process goes away, never acknowledged
    assert first.batch.items == 1
    await spool.close()

    again = Spool(tmp_path)
    found = await again.open()
    assert found.records == 4 and found.items == {Signal.TRACES: 1 + 3 + 4 + 5}
    got = await drain(again, 4)
    assert [b.serialized() for b in got] == [sent[i].serialized() for i in (0, 2, 3, 4)]
    assert await nothing_left(again)
    await again.close()


async def test_truncated_tail_is_quarantined_and_the_rest_recovered(tmp_path: Path) -> None:
    sent = [traces_batch(2), traces_batch(3), traces_batch(4)]
    await (await spooled(tmp_path, sent)).close()
    [segment] = segments(tmp_path)
    original = segment.read_bytes()
    segment.write_bytes(original[:-7])  # the last record lost its end (a torn write)

    quarantined: list[Path] = []
    spool = Spool(tmp_path, on_quarantine=quarantined.append)
    found = await spool.open()
    assert found.records == 2 and found.items == {Signal.TRACES: 5}
    assert found.corrupt_bytes == record_size(sent[2]) - 7
    assert quarantined == found.quarantined == [tmp_path / "quarantine" / segment.name]
    assert quarantined[0].read_bytes() == original[:-7]  # moved aside as it was
    got = await drain(spool, 2)
    assert [b.serialized() for b in got] == [b.serialized() for b in sent[:2]]
    assert await nothing_left(spool)
    await spool.close()


async def test_bad_crc_and_garbage_files_are_quarantined(tmp_path: Path) -> None:
    sent = [traces_batch(2), traces_batch(3), traces_batch(4)]
    await (await spooled(tmp_path, sent)).close()
    [segment] = segments(tmp_path)
    data = bytearray(segment.read_bytes())
    data[record_size(sent[0]) + 40] ^= 0xFF  # one flipped bit pattern inside record 2
    segment.write_bytes(bytes(data))
    garbage = tmp_path / f"{99:020d}.seg"
    garbage.write_bytes(os.urandom(5000))

    spool = Spool(tmp_path)
    found = await spool.open()
    assert found.records == 2 and found.items == {Signal.TRACES: 6}
    assert found.corrupt_bytes == record_size(sent[1]) + 5000
    assert sorted(p.name for p in found.quarantined) == [segment.name, garbage.name]
    assert sorted(p.name for p in (tmp_path / "quarantine").iterdir()) == sorted(
        [segment.name, garbage.name]
    )
    assert not garbage.exists()
    got = await drain(spool, 2)
    assert [b.serialized() for b in got] == [sent[0].serialized(), sent[2].serialized()]
    await spool.close()

    # The salvaged segment is clean now: a further start finds nothing wrong.
    again = Spool(tmp_path)
    assert (await again.open()).quarantined == []
    await again.close()


async def test_damage_found_while_reading_loses_only_the_damaged_record(tmp_path: Path) -> None:
    lost: list[tuple[Signal, int]] = []
    sent = [traces_batch(2), traces_batch(3)]
    spool = await spooled(tmp_path, sent, on_lost=lambda *a: lost.append(a))
    [segment] = segments(tmp_path)
    with segment.open("r+b") as f:  # the disk goes bad under the running gateway
        f.seek(30)
        f.write(b"\0\0\0\0")
    entry = await asyncio.wait_for(spool.get(), 5)  # the reader resynchronises on record 2
    assert entry.batch.serialized() == sent[1].serialized()
    assert lost == [(Signal.TRACES, 2)] and spool.unacked_items == 3
    spool.ack(entry)
    assert await nothing_left(spool)
    fresh = traces_batch(1)
    await spool.append(fresh)  # the spool goes on in a new segment
    [entry] = [await spool.get()]
    assert entry.batch.serialized() == fresh.serialized()
    spool.ack(entry)
    await spool.close()
    assert [p.name for p in (tmp_path / "quarantine").iterdir()] == [segment.name]
    assert lost == [(Signal.TRACES, 2)]  # counted once


async def test_a_directory_has_one_user(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    await first.open()
    with pytest.raises(SpoolLockedError):
        await Spool(tmp_path).open()
    await first.close()
    second = Spool(tmp_path)  # released on close (and by the kernel on kill -9)
    await second.open()
    await second.close()


async def test_appends_in_the_same_moment_share_one_sync(tmp_path: Path, monkeypatch) -> None:
    syncs = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        syncs.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    spool = Spool(tmp_path)
    await spool.open()
    await asyncio.gather(*(spool.append(traces_batch(1)) for _ in range(50)))
    assert spool.unacked_items == 50
    assert 1 <= len(syncs) <= 2, syncs  # group commit, not 50 syncs
    await spool.close()


async def test_segments_roll_and_finished_ones_are_deleted(tmp_path: Path) -> None:
    batches = [big_logs_batch(20_000) for _ in range(12)]
    spool = await spooled(tmp_path, batches, segment_bytes=50_000)
    assert len(segments(tmp_path)) >= 4
    await drain(spool, 11)
    assert spool.bytes <= 2 * 50_000  # the delivered segments are gone (files in background)
    for _ in range(100):
        if len(segments(tmp_path)) <= 2:
            break
        await asyncio.sleep(0.02)
    assert 1 <= len(segments(tmp_path)) <= 2
    await drain(spool, 1)
    await spool.close()
    assert segments(tmp_path) == []  # all delivered: nothing left for the next start


class DeadExporter(ExporterBase):
    """A backend that is down: every push fails with a retryable error."""

    def __init__(self) -> None:
        self.attempts = 0

    async def push(self, batch: Batch) -> None:
        self.attempts += 1
        await asyncio.sleep(0.01)
        raise RetryableError("connection refused")


class Collecting(ExporterBase):
    def __init__(self) -> None:
        self.batches: list[Batch] = []

    async def push(self, batch: Batch) -> None:
        self.batches.append(batch)


FAST = RetryPolicy(initial_interval=0.01, max_interval=0.05, max_elapsed_time=0)


def spool_queue(exporter, directory: Path, **kwargs):
    registry = CollectorRegistry()
    spool = Spool(directory, max_bytes=kwargs.pop("max_bytes", 1 << 30))
    queue = ExporterQueue(
        "disk", exporter, GatewayMetrics(registry), retry=FAST, spool=spool, **kwargs
    )
    return queue, registry


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_full_spool_refuses_or_drops(tmp_path: Path) -> None:
    one = big_logs_batch(10_000)
    cap = 3 * record_size(one)
    refusing, _ = spool_queue(DeadExporter(), tmp_path / "refuse", max_bytes=cap)
    dropping, registry = spool_queue(
        DeadExporter(), tmp_path / "drop", max_bytes=cap, on_full="drop"
    )
    for queue in (refusing, dropping):
        await queue.start()
        for _ in range(3):
            assert await queue.put(big_logs_batch(10_000))
    assert refusing.would_refuse(one.items, one.nbytes) and refusing.full
    with pytest.raises(BackpressureError, match="bytes spooled on disk"):
        await refusing.put(one)
    assert not dropping.would_refuse(one.items, one.nbytes)
    assert await dropping.put(one) is False
    assert sample(registry, "otelgate_exporter_dropped_items_total", exporter="disk",
                  signal="logs") == one.items  # fmt: skip
    assert dropping.size == 3 * one.items
    for queue in (refusing, dropping):
        await queue.shutdown(0.1)


async def test_empty_spool_takes_a_batch_larger_than_the_cap(tmp_path: Path) -> None:
    queue, _ = spool_queue(Collecting(), tmp_path, max_bytes=1000)
    await queue.start()
    assert await queue.put(big_logs_batch(20_000))
    await queue.shutdown(5)
    assert len(queue.exporter.batches) == 1


async def test_memory_stays_bounded_while_megabytes_are_spooled(tmp_path: Path) -> None:
    exporter = DeadExporter()
    queue, registry = spool_queue(exporter, tmp_path, num_consumers=2)
    await queue.start()
    items = 0
    for _ in range(100):  # about 20 MB
        batch = big_logs_batch(200_000, service="memory-test")
        items += batch.items
        assert await queue.put(batch)
    del batch
    gc.collect()
    live = [o for o in gc.get_objects() if isinstance(o, Batch) and is_ours(o)]
    spooled_bytes = sample(registry, "otelgate_exporter_spool_bytes", exporter="disk")
    print(f"\n[spool memory] spooled={spooled_bytes / 1e6:.1f}MB batches_in_memory={len(live)}")
    assert spooled_bytes > 20e6
    assert len(live) <= 2  # only the two being retried; the rest is on disk
    assert not queue._pending
    assert queue.size == items
    assert sample(registry, "otelgate_exporter_queue_size", exporter="disk") == items
    assert exporter.attempts > 2
    await queue.shutdown(0.1)


async def test_shutdown_keeps_what_is_spooled_for_the_next_start(tmp_path: Path) -> None:
    queue, registry = spool_queue(DeadExporter(), tmp_path)
    await queue.start()
    sent = [traces_batch(2), traces_batch(3)]
    for batch in sent:
        await queue.put(batch)
    await queue.shutdown(0.2)
    labels = {"exporter": "disk", "signal": "traces"}
    assert sample(registry, "otelgate_exporter_dropped_items_total", **labels) == 0
    assert sample(registry, "otelgate_exporter_queue_size", exporter="disk") == 5

    backend = Collecting()
    restarted, registry = spool_queue(backend, tmp_path)
    await restarted.start()
    assert sample(registry, "otelgate_exporter_spool_recovered_items_total", **labels) == 5
    for _ in range(200):
        if restarted.size == 0:
            break
        await asyncio.sleep(0.02)
    assert sorted(b.serialized() for b in backend.batches) == sorted(b.serialized() for b in sent)
    assert sample(registry, "otelgate_exporter_sent_items_total", **labels) == 5
    await restarted.shutdown(1)


def test_config_builds_a_spool_per_exporter(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OTELGATE_DATA_DIR", str(tmp_path))
    config = parse_config(
        """
exporters:
  otlp/a: {endpoint: "127.0.0.1:1", sending_queue: {storage: disk, max_bytes: 5000000}}
  otlp/b:
    endpoint: "127.0.0.1:2"
    sending_queue: {storage: disk, directory: /var/spool/b}
    retry_on_failure: {max_elapsed_time: 60s}
  otlp/c: {endpoint: "127.0.0.1:3"}
receivers: {otlp: {protocols: {grpc: null}}}
service: {pipelines: {traces: {receivers: [otlp], exporters: [otlp/a, otlp/b, otlp/c]}}}
"""
    )
    metrics = GatewayMetrics(CollectorRegistry())
    a, b, c = (build_queue(n, config.exporters[n], metrics) for n in ("otlp/a", "otlp/b", "otlp/c"))
    assert a.spool is not None and b.spool is not None and c.spool is None
    assert a.spool.directory == tmp_path / "spool" / "otlp%2Fa" == default_directory("otlp/a")
    assert a.spool.max_bytes == 5_000_000
    assert b.spool.directory == Path("/var/spool/b")
    assert a.retry.max_elapsed_time == 0  # a spool outlasts outages unless told otherwise
    assert b.retry.max_elapsed_time == 60
    assert c.retry.max_elapsed_time == 300
