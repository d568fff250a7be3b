"""Error groups in the store: written, reloaded after a restart, samples trimmed, retention."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from gateway.error_tracking.config import ErrorTrackingConfig
from gateway.error_tracking.persistence import ErrorStore
from gateway.error_tracking.service import ErrorTrackingService
from gateway.error_tracking.tracker import ErrorTracker
from gateway.store.sqlite import SqliteStore
from tests.gateway.error_tracking.batches import (
    OTHER_STACK,
    log_with_exception,
    logs,
    span_with_exception,
    traces,
)


def _service(path: Path, **settings: object) -> ErrorTrackingService:
    config = ErrorTrackingConfig.model_validate(settings)
    service = ErrorTrackingService(ErrorTracker(config), flush_interval=60)
    service.store = ErrorStore(SqliteStore(path), config.samples_per_group)
    return service


def test_groups_and_samples_survive_a_restart(tmp_path: Path) -> None:
    async def first_run() -> str:
        service = _service(tmp_path / "o.db", samples_per_group=2, sample_interval=0)
        await service.start()
        for _ in range(5):
            service.tracker.observe(traces(span_with_exception()))
        service.tracker.observe(traces(span_with_exception("KeyError", "'o'", OTHER_STACK)))
        group_id = next(g.id for g in service.tracker.groups.values() if g.type == "ValueError")
        await service.set_status(group_id, "resolved", "carol")
        await service.stop()
        assert service.store is not None
        service.store.store.close()
        return group_id

    async def second_run(group_id: str) -> None:
        service = _service(tmp_path / "o.db", samples_per_group=2)
        await service.start()
        group = service.tracker.groups[group_id]
        assert (group.count, group.status, group.status_changed_by) == (5, "resolved", "carol")
        assert group.frames and group.frames[0].function
        samples = await service.samples(group_id)
        assert len(samples) == 2  # trimmed to samples_per_group, newest kept
        assert all(s.trace_id and s.attributes == {"http.route": "/checkout"} for s in samples)
        assert service.groups_in_trace(samples[0].trace_id or "") == [group_id]
        service.tracker.observe(traces(span_with_exception()))  # counting goes on
        assert group.count == 6
        await service.stop()

    group_id = asyncio.run(first_run())
    asyncio.run(second_run(group_id))


def test_a_failed_write_keeps_the_changes_for_the_next_one(tmp_path: Path) -> None:
    async def run() -> None:
        service = _service(tmp_path / "o.db")
        service.tracker.observe(traces(span_with_exception()))
        assert service.store is not None
        real = service.store
        service.store.store.close()  # writing now fails
        try:
            await service.flush()
        except Exception:
            pass
        else:
            raise AssertionError("the write should have failed")
        assert service.tracker.dirty and service.tracker.pending_samples
        service.store = ErrorStore(SqliteStore(tmp_path / "o.db"), real.samples_per_group)
        await service.flush()
        assert not service.tracker.dirty
        assert len(service.store.load(10)) == 1

    asyncio.run(run())


def test_retention_removes_groups_and_samples(tmp_path: Path) -> None:
    store = ErrorStore(SqliteStore(tmp_path / "o.db"), 10)
    tracker = ErrorTracker(ErrorTrackingConfig())
    tracker.observe(traces(span_with_exception()))
    store.save(*tracker.take_changes())
    (group_id,) = tracker.groups
    store.delete([group_id])
    assert store.load(10) == [] and store.samples(group_id) == []


def test_a_sample_completed_after_it_was_written_is_written_again(tmp_path: Path) -> None:
    async def run() -> None:
        service = _service(tmp_path / "o.db")
        service.tracker.observe(logs(log_with_exception()))  # traceless report first
        await service.flush()
        trace_id = os.urandom(16)
        service.tracker.observe(traces(span_with_exception(trace_id=trace_id)))
        await service.flush()
        assert service.store is not None
        (group,) = service.tracker.groups.values()
        (sample,) = service.store.samples(group.id)
        assert sample.trace_id == trace_id.hex() and sample.source == "span"
        assert sample.attributes == {"http.route": "/checkout"}

    asyncio.run(run())
