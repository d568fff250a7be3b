"""What ``/health`` says about a gateway of several processes (``service.workers`` > 1).

Pure functions over the supervisor's own reports and its :class:`WorkerSlot` records: the
workers themselves, each exporter's queues per process and in total, and the receivers the
workers run (each listed once). Only a slot's *live* report counts as current: one from the
process that runs in the slot now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Literal

from gateway.api.health_models import (
    ExporterHealth,
    ExporterPartHealth,
    WorkerHealth,
    WorkersHealth,
    from_epoch,
)
from gateway.health.status import QUEUE_FILL_DEGRADED, ExporterReport
from gateway.registry import ReceiverReport
from gateway.workers.status import WorkerSlot, WorkerStatus

LIVE_STATES = frozenset({"starting", "running", "stopping"})  # a process runs in the slot
SUPERVISOR = "supervisor"
_SEVERITY = ("ok", "retrying", "failed")

ReceiverState = Literal["ok", "failed", "stopped"]
Parts = list[tuple[str, ExporterReport]]  # (process, its report)


def process_name(index: int) -> str:
    """How ``/health`` names worker ``index``."""
    return f"worker-{index}"


def is_live(slot: WorkerSlot | None, pid: int | None) -> bool:
    """Whether process ``pid`` is the one running in ``slot`` now."""
    return slot is not None and pid is not None and slot.pid == pid and slot.state in LIVE_STATES


def live_status(slot: WorkerSlot) -> WorkerStatus | None:
    """The slot's last report, when it comes from the process running in it now."""
    status = slot.last_status
    return status if status is not None and is_live(slot, status.pid) else None


def _sum(values: Iterable[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def total_report(name: str, parts: Sequence[ExporterReport]) -> ExporterReport:
    """One exporter over all its processes: sizes and capacities summed, the worst state,
    the most recent error, the latest success, the first spool problem."""
    errors = [p for p in parts if p.last_error is not None]
    latest = max(errors, key=lambda p: p.last_error_at or float("-inf"), default=None)
    successes = [p.last_success_at for p in parts if p.last_success_at is not None]
    problem = next((p for p in parts if p.spool_problem is not None), None)
    return ExporterReport(
        name=name,
        state=max((p.state for p in parts), key=_SEVERITY.index, default="ok"),
        last_error=latest.last_error if latest else None,
        last_error_at=latest.last_error_at if latest else None,
        last_success_at=max(successes, default=None),
        queue_size=sum(p.queue_size for p in parts),
        queue_capacity=sum(p.queue_capacity for p in parts),
        spool_bytes=_sum(p.spool_bytes for p in parts),
        spool_capacity_bytes=_sum(p.spool_capacity_bytes for p in parts),
        spool_problem=problem.spool_problem if problem else None,
        spool_problem_since=problem.spool_problem_since if problem else None,
    )


def combine_exporters(
    own: Iterable[ExporterReport], slots: Iterable[WorkerSlot]
) -> list[tuple[ExporterReport, Parts]]:
    """Each exporter's total and its per-process reports: the supervisor's, then each live
    worker's by index (the supervisor's exporters first, then those only workers run)."""
    parts: dict[str, Parts] = {}
    for report in own:
        parts.setdefault(report.name, []).append((SUPERVISOR, report))
    for slot in sorted(slots, key=lambda s: s.index):
        status = live_status(slot)
        for report in status.exporters if status else ():
            parts.setdefault(report.name, []).append((process_name(slot.index), report))
    return [(total_report(name, [r for _, r in found]), found) for name, found in parts.items()]


def exporter_health(total: ExporterReport, parts: Parts | None = None) -> ExporterHealth:
    """The response model of one exporter (``parts``: None in single-process mode)."""
    return ExporterHealth(
        name=total.name,
        status=total.state,
        last_error=total.last_error,
        last_error_at=from_epoch(total.last_error_at),
        last_success_at=from_epoch(total.last_success_at),
        queue_size=total.queue_size,
        queue_capacity=total.queue_capacity,
        queue_fill_ratio=total.queue_fill_ratio,
        spool_bytes=total.spool_bytes,
        spool_capacity_bytes=total.spool_capacity_bytes,
        spool_error=total.spool_problem,
        spool_error_since=from_epoch(total.spool_problem_since),
        workers=None
        if parts is None
        else [
            ExporterPartHealth(
                process=process,
                status=r.state,
                last_error=r.last_error,
                queue_size=r.queue_size,
                queue_capacity=r.queue_capacity,
                queue_fill_ratio=r.queue_fill_ratio,
                spool_bytes=r.spool_bytes,
                spool_capacity_bytes=r.spool_capacity_bytes,
                spool_error=r.spool_problem,
            )
            for process, r in parts
        ],
    )


def _receiver(reports: Sequence[ReceiverReport]) -> ReceiverReport:
    """One receiver run by several processes: ok when one of them is ok."""
    states = {r.status for r in reports}
    status: ReceiverState = (
        "ok" if "ok" in states else "failed" if "failed" in states else "stopped"
    )
    errors = [r.last_error for r in reports if r.status == "failed" and r.last_error]
    runs = [r.last_run_at for r in reports if r.last_run_at is not None]
    return ReceiverReport(
        status=status,
        endpoints=next((list(r.endpoints) for r in reports if r.endpoints), []),
        last_error=errors[0] if errors else None,
        last_run_at=max(runs, default=None),
    )


def merge_receivers(
    own: Mapping[str, tuple[str, ReceiverReport]], slots: Iterable[WorkerSlot]
) -> dict[str, tuple[str, ReceiverReport]]:
    """Every receiver once: the supervisor's and the workers' (a report of a process that no
    longer runs counts as ``stopped``; it still names the receiver and its endpoints)."""
    found: dict[str, tuple[str, list[ReceiverReport]]] = {
        name: (type_, [report]) for name, (type_, report) in own.items()
    }
    for slot in sorted(slots, key=lambda s: s.index):
        status = slot.last_status
        if status is None:
            continue
        live = live_status(slot) is not None
        for name, (type_, report) in status.receivers.items():
            entry = report if live else replace(report, status="stopped")
            found.setdefault(name, (type_, []))[1].append(entry)
    return {name: (type_, _receiver(reports)) for name, (type_, reports) in found.items()}


def workers_health(slots: Iterable[WorkerSlot]) -> WorkersHealth:
    """The ``workers`` part of ``/health``."""
    workers = []
    for slot in sorted(slots, key=lambda s: s.index):
        status = live_status(slot)
        workers.append(
            WorkerHealth(
                index=slot.index,
                pid=slot.pid,
                state=slot.state,
                restarts=slot.restarts,
                started_at=from_epoch(slot.started_at),
                last_report_at=from_epoch(slot.last_status_at),
                accepted_items=dict(status.accepted_items) if status else {},
                not_ready=list(status.not_ready) if status else [],
            )
        )
    return WorkersHealth(
        count=len(workers), restarts=sum(w.restarts for w in workers), workers=workers
    )


def worker_reasons(
    slots: Iterable[WorkerSlot], combined: Sequence[tuple[ExporterReport, Parts]]
) -> list[str]:
    """Why a running gateway is degraded by one of its processes: a worker slot not running
    or not ready, one process's queue nearly full while the total is not."""
    reasons = []
    for slot in sorted(slots, key=lambda s: s.index):
        name = process_name(slot.index)
        status = live_status(slot)
        if slot.state != "running":
            reasons.append(f"{name} is {slot.state}")
        elif status is not None and status.not_ready:
            reasons.append(f"{name} not ready: {'; '.join(status.not_ready)}")
    for total, parts in combined:
        if total.queue_fill_ratio >= QUEUE_FILL_DEGRADED:
            continue  # gateway_status says so for the total
        reasons += [
            f"exporter {total.name} queue in {process} is {r.queue_fill_ratio:.0%} full"
            for process, r in parts
            if r.queue_fill_ratio >= QUEUE_FILL_DEGRADED
        ]
    return reasons
