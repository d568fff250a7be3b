"""Spool partitions of ``service.workers``: who adopts which orphaned partition, and adoption by
real spools: every undelivered batch is read back exactly once, in its partition's order, when
N changes, when an orphan is still locked, across filesystems and after a crash mid-move."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from exporters import spool_partitions
from exporters.base import ExporterBase
from exporters.sending import build_spool, queue_around
from exporters.settings import ExporterSettings, QueueSettings
from exporters.spool import (
    SUPERVISOR_PARTITION,
    Partitioning,
    Spool,
    record_size,
    spool_directory,
    worker_partition,
)
from exporters.spool_partitions import claims, orphans_for
from gateway.otlp.batch import Batch, Signal
from gateway.selfmetrics import GatewayMetrics
from tests.factories import traces_request

W0, W1, W2, W3 = (worker_partition(k) for k in range(4))
SUP = SUPERVISOR_PARTITION


class Killed(BaseException):
    """Stands for a kill -9: nothing after it runs (the dead process's locks are released)."""


def batch(tag: str) -> Batch:
    return Batch.from_request(Signal.TRACES, traces_request(3, service=tag))


def layout(root: Path, partition: str | None = None, workers: int = 1) -> Partitioning:
    return Partitioning(root, partition, workers)


async def fill(where: Partitioning, count: int, acked: tuple[int, ...] = ()) -> list[bytes]:
    """Spool ``count`` batches, two per segment, acknowledge those at ``acked`` and close; the
    undelivered ones, in order."""
    sample = batch(where.partition or "root")
    spool = Spool(where.directory, segment_bytes=2 * record_size(sample), partitioning=where)
    await spool.open()
    sent = [batch(where.partition or "root") for _ in range(count)]
    for b in sent:
        await spool.append(b)
    for i in range(count):
        entry = await asyncio.wait_for(spool.get(), 5)
        if i in acked:
            spool.ack(entry)
    await spool.close()
    return [b.serialized() for i, b in enumerate(sent) if i not in acked]


async def read_all(where: Partitioning) -> tuple[list[bytes], Spool]:
    """Open the spool of ``where`` (adopting), read and acknowledge everything, close."""
    spool = Spool(where.directory, partitioning=where)
    found = await spool.open()
    got = []
    for _ in range(found.records):
        entry = await asyncio.wait_for(spool.get(), 5)
        spool.ack(entry)
        got.append(entry.batch.serialized())
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(spool.get(), 0.05)
    await spool.close()
    return got, spool


def spool_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.suffix in (".seg", ".ack", ".tmp"))


# --- who adopts what -------------------------------------------------------------------------


def test_claims_follow_the_worker_count() -> None:
    for name in (W0, W1, "worker-7", SUP):
        assert claims(None, 1, name)  # one process takes every partition
    for name in ("quarantine", "worker-01", "worker-", "worker-x", "supervisor-2"):
        assert not claims(None, 1, name)
    assert [j for j in range(9) if claims(W0, 2, worker_partition(j))] == [2, 4, 6, 8]
    assert [j for j in range(9) if claims(W1, 2, worker_partition(j))] == [3, 5, 7]
    assert [j for j in range(9) if claims(W2, 3, worker_partition(j))] == [5, 8]
    assert not claims(W0, 2, SUP) and not claims(W0, 2, "quarantine")
    assert not any(claims(SUP, 2, name) for name in (W0, W2, "worker-5", SUP))


def test_orphans_for_lists_existing_partitions_in_order(tmp_path: Path) -> None:
    for name in ("worker-10", W0, W1, W2, W3, "worker-4", SUP, "quarantine"):
        (tmp_path / name).mkdir()
    (tmp_path / "worker-6").write_text("a file, not a partition")
    assert orphans_for(tmp_path, W0, 2) == [
        tmp_path,
        *(tmp_path / n for n in (W2, "worker-4", "worker-10")),
    ]
    assert orphans_for(tmp_path, W1, 2) == [tmp_path / W3]
    assert orphans_for(tmp_path, W1, 3) == [tmp_path / "worker-4", tmp_path / "worker-10"]
    assert orphans_for(tmp_path, W0, 11) == [tmp_path]  # only the loose segments
    assert orphans_for(tmp_path, SUP, 2) == []
    names = [W0, W1, W2, W3, "worker-4", "worker-10", SUP]
    assert orphans_for(tmp_path, None, 1) == [tmp_path / n for n in names]
    assert orphans_for(tmp_path / "missing", W0, 2) == []


def test_partitioning_checks_its_arguments(tmp_path: Path) -> None:
    assert layout(tmp_path).directory == tmp_path
    assert layout(tmp_path, W1, 2).directory == tmp_path / "worker-1"
    assert layout(tmp_path, SUP, 3).directory == tmp_path / "supervisor"
    for partition, workers in ((None, 2), (W0, 1), (SUP, 1), (W2, 2), ("worker-01", 4), (W0, 0)):
        with pytest.raises(ValueError):
            layout(tmp_path, partition, workers)
    with pytest.raises(ValueError):
        worker_partition(-1)
    with pytest.raises(ValueError, match="not the directory"):
        Spool(tmp_path, partitioning=layout(tmp_path, W0, 2))


def test_spool_directory_of_a_partition(tmp_path: Path) -> None:
    disk = ExporterSettings(sending_queue=QueueSettings(storage="disk", directory=str(tmp_path)))
    assert spool_directory("otlp", disk) == str(tmp_path)
    assert spool_directory("otlp", disk, W1) == str(tmp_path / "worker-1")
    assert spool_directory("otlp", disk, SUP) == str(tmp_path / "supervisor")
    assert spool_directory("otlp", ExporterSettings(), W1) is None
    spool = build_spool("otlp", disk.sending_queue, partition=W1, workers=2)
    assert spool is not None and spool.directory == tmp_path / "worker-1"
    assert spool.partitioning == layout(tmp_path, W1, 2)
    spool = build_spool("otlp", disk.sending_queue)
    assert spool is not None and spool.directory == tmp_path
    assert spool.partitioning == layout(tmp_path)


# --- adoption by real spools -----------------------------------------------------------------


async def test_one_to_two_workers_worker_0_takes_the_loose_segments(tmp_path: Path) -> None:
    loose = await fill(layout(tmp_path), 5, acked=(1, 2))
    got, spool = await read_all(layout(tmp_path, W0, 2))
    assert got == loose  # exactly the undelivered ones, in order
    [report] = spool.adopted
    assert (report.source, report.segments, report.batches) == (tmp_path, 3, 3)
    assert report.items == {Signal.TRACES: 9}
    assert spool_files(tmp_path) == []  # nothing left behind for anyone
    assert (await read_all(layout(tmp_path, W1, 2)))[0] == []
    assert (await read_all(layout(tmp_path, SUP, 2)))[0] == []


async def test_three_to_two_workers_the_extra_partition_goes_to_worker_0(tmp_path: Path) -> None:
    own = await fill(layout(tmp_path, W0, 3), 3, acked=(0,))
    one = await fill(layout(tmp_path, W1, 3), 2)
    two = await fill(layout(tmp_path, W2, 3), 6, acked=(0, 3))
    sup = await fill(layout(tmp_path, SUP, 3), 2)
    got, spool = await read_all(layout(tmp_path, W0, 2))
    assert got == own + two  # its own leftovers first, then the adopted ones in their order
    assert [(r.source, r.segments) for r in spool.adopted] == [(tmp_path, 0), (tmp_path / W2, 3)]
    assert (await read_all(layout(tmp_path, W1, 2)))[0] == one
    assert (await read_all(layout(tmp_path, SUP, 2)))[0] == sup
    assert spool_files(tmp_path / W2) == []


async def test_two_workers_to_one_process_takes_every_partition(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    zero = await fill(layout(tmp_path, W0, 2), 3, acked=(2,))
    one = await fill(layout(tmp_path, W1, 2), 4, acked=(0, 1))
    sup = await fill(layout(tmp_path, SUP, 2), 1)
    (tmp_path / W2).mkdir()  # an empty partition of an older N: nothing to say about it
    with caplog.at_level(logging.INFO, logger="otelgate.spool"):
        got, spool = await read_all(layout(tmp_path))
    assert got == zero + one + sup
    assert [(r.source.name, r.batches) for r in spool.adopted] == [
        (W0, 2), (W1, 2), (W2, 0), (SUP, 1)
    ]  # fmt: skip
    lines = [r.getMessage() for r in caplog.records if "adopted" in r.getMessage()]
    assert len(lines) == 3
    assert "adopted 2 batch(es) (6 traces)" in lines[0] and lines[0].endswith(str(tmp_path / W0))
    for name in (W0, W1, SUP):
        assert spool_files(tmp_path / name) == []


async def test_a_partition_locked_by_a_live_process_is_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    two = await fill(layout(tmp_path, W2, 3), 3)
    draining = Spool(tmp_path / W2, partitioning=layout(tmp_path, W2, 3))
    await draining.open()  # an older worker 2, still draining
    with caplog.at_level(logging.WARNING, logger="otelgate.spool"):
        got, spool = await read_all(layout(tmp_path, W0, 2))
    assert got == []
    loose, report = spool.adopted
    assert report.locked and report.segments == 0 and not loose.locked
    assert "is locked by another process" in caplog.text
    assert len(spool_files(tmp_path / W2)) == 2  # untouched
    await draining.close()
    assert (await read_all(layout(tmp_path, W0, 2)))[0] == two  # the next start takes it


async def test_adoption_across_filesystems_copies(tmp_path: Path, monkeypatch) -> None:
    two = await fill(layout(tmp_path, W2, 3), 5, acked=(1,))
    rename = os.rename
    moved = []

    def cross_device(src: Path, dst: Path) -> None:
        if Path(src).parent != Path(dst).parent:
            moved.append(src)
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        rename(src, dst)

    with monkeypatch.context() as m:
        m.setattr(spool_partitions.os, "rename", cross_device)
        got, _ = await read_all(layout(tmp_path, W0, 2))
    assert got == two and len(moved) == 3
    assert spool_files(tmp_path / W2) == [] and spool_files(tmp_path / W0) == []


# Worker 0 syncs the (empty) root once, then a move of a segment with acks syncs a directory
# three times (after the ack copy, after the rename, the source after the rename), and the orphan
# once at the end: 1 + 3 * 3 + 1 syncs, a crash before each of them.
@pytest.mark.parametrize("crash_at", range(1, 12))
@pytest.mark.parametrize("next_start", ["same", "one process"])
async def test_a_crash_mid_adoption_loses_nothing(
    tmp_path: Path, monkeypatch, crash_at: int, next_start: str
) -> None:
    own = await fill(layout(tmp_path, W0, 3), 2, acked=(1,))
    two = await fill(layout(tmp_path, W2, 3), 6, acked=(0, 3, 4))  # every segment has acks
    calls = 0
    real_sync = spool_partitions.fsync_dir

    def sync_then_die(directory: Path) -> None:
        nonlocal calls
        calls += 1
        if calls == crash_at:
            raise Killed
        real_sync(directory)

    with monkeypatch.context() as m:
        m.setattr(spool_partitions, "fsync_dir", sync_then_die)
        spool = Spool(tmp_path / W0, partitioning=layout(tmp_path, W0, 2))
        with pytest.raises(Killed):
            await spool.open()
    assert calls == crash_at
    if next_start == "same":
        got, _ = await read_all(layout(tmp_path, W0, 2))
        assert got == own + two  # exactly once, and the adopted ones still in order
    else:  # the gateway comes back with one process: it takes both partitions
        got, _ = await read_all(layout(tmp_path))
        assert sorted(got) == sorted(own + two) and len(got) == len(own + two)
        assert [b for b in got if b in two] == two
    assert spool_files(tmp_path / W2) == []


class Collecting(ExporterBase):
    def __init__(self) -> None:
        self.batches: list[Batch] = []

    async def push(self, batch: Batch) -> None:
        self.batches.append(batch)


async def test_queue_around_passes_the_partition_to_its_spool(tmp_path: Path) -> None:
    config = ExporterSettings(sending_queue=QueueSettings(storage="disk", directory=str(tmp_path)))
    two = await fill(layout(tmp_path, W2, 3), 3)
    registry = CollectorRegistry()
    backend = Collecting()
    queue = queue_around("otlp", backend, config, GatewayMetrics(registry), partition=W0, workers=2)
    assert queue.spool is not None and queue.spool.directory == tmp_path / W0
    await queue.start()
    for _ in range(250):
        if len(backend.batches) == 3:
            break
        await asyncio.sleep(0.02)
    assert [b.serialized() for b in backend.batches] == two
    labels = {"exporter": "otlp", "signal": "traces"}
    assert registry.get_sample_value("otelgate_exporter_spool_recovered_items_total", labels) == 9
    await queue.shutdown(1)
