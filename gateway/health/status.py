"""Component health: pure functions over exporter queues, system snapshots and readiness,
combined by :func:`gateway_status` into the gateway's own ``healthy | degraded | unhealthy``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from exporters.queue import ExporterQueue
from gateway.health.config import (
    SystemHealthConfig,
    UsageThresholds,
)
from gateway.health.system import SystemSnapshot

Level = Literal["healthy", "warning", "critical"]

GatewayStatus = Literal["healthy", "degraded", "unhealthy"]

_LEVELS: tuple[Level, ...] = ("healthy", "warning", "critical")

QUEUE_FILL_DEGRADED = 0.8


def usage_level(utilization: float, thresholds: UsageThresholds) -> Level:
    """``critical`` / ``warning`` at or above those thresholds, else ``healthy``."""
    if utilization >= thresholds.critical:
        return "critical"
    return "warning" if utilization >= thresholds.warning else "healthy"


@dataclass(frozen=True, slots=True)
class ResourceCheck:
    """One system resource compared with its thresholds."""

    resource: Literal["cpu", "memory", "disk", "process_cpu"]
    name: str  # "cpu", "memory", the filesystem's mount point or "event loop"
    utilization: float
    status: Level


def system_checks(snapshot: SystemSnapshot, config: SystemHealthConfig) -> list[ResourceCheck]:
    """Host CPU, memory, every reported filesystem, and the gateway's own CPU against
    ``health.system``: its event loop thread's share of one core (the whole process's, capped
    at 1, until the loop thread is known)."""
    checks = [
        ResourceCheck("cpu", "cpu", snapshot.cpu_utilization,
                      usage_level(snapshot.cpu_utilization, config.cpu)),
        ResourceCheck("memory", "memory", snapshot.memory_utilization,
                      usage_level(snapshot.memory_utilization, config.memory)),
    ]  # fmt: skip
    checks += [
        ResourceCheck(
            "disk", fs.mountpoint, fs.utilization, usage_level(fs.utilization, config.disk)
        )
        for fs in snapshot.filesystems
    ]
    process = snapshot.process
    own = min(1.0, process.cpu_cores if process.loop_cpu is None else process.loop_cpu)
    checks.append(
        ResourceCheck("process_cpu", "event loop", own, usage_level(own, config.process_cpu))
    )
    return checks


def worst(levels: Iterable[Level]) -> Level:
    """The worst of some levels (``healthy`` for none)."""
    return max(levels, key=_LEVELS.index, default="healthy")


@dataclass(frozen=True, slots=True)
class ExporterReport:
    """One exporter: delivery state and its queue."""

    name: str
    state: Literal["ok", "retrying", "failed"]
    last_error: str | None
    last_error_at: float | None
    last_success_at: float | None
    queue_size: int
    queue_capacity: int
    spool_bytes: int | None = None  # None: no disk spool
    spool_capacity_bytes: int | None = None
    spool_problem: str | None = None  # why the disk spool cannot write now
    spool_problem_since: float | None = None  # wall clock, seconds

    @property
    def queue_fill_ratio(self) -> float:
        """How full the queue is: its spool's bytes when it has one (they bound it), else items."""
        if self.spool_bytes is not None and self.spool_capacity_bytes:
            return self.spool_bytes / self.spool_capacity_bytes
        return self.queue_size / self.queue_capacity if self.queue_capacity else 0.0


def _number(owner: object, attr: str) -> int | None:
    value = getattr(owner, attr, None)
    value = value() if callable(value) else value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    return None


def _spool(queue: ExporterQueue) -> tuple[int | None, int | None]:
    """Bytes in the queue's disk spool and its limit, when it has one (read defensively)."""
    spool = getattr(queue, "spool", None)
    if spool is None:
        return None, None
    return _number(spool, "bytes"), _number(spool, "max_bytes")


def exporter_report(queue: ExporterQueue) -> ExporterReport:
    """What ``/health`` says about one exporter queue."""
    status = queue.status
    spool_bytes, spool_capacity = _spool(queue)
    problem = getattr(getattr(queue, "spool", None), "problem", None)
    since = getattr(getattr(queue, "spool", None), "problem_since", None)
    return ExporterReport(
        name=queue.name,
        state=status.state,
        last_error=status.last_error,
        last_error_at=status.last_error_at,
        last_success_at=status.last_success_at,
        queue_size=queue.size,
        queue_capacity=queue.capacity,
        spool_bytes=spool_bytes,
        spool_capacity_bytes=spool_capacity,
        spool_problem=problem if isinstance(problem, str) else None,
        spool_problem_since=since if isinstance(since, float) else None,
    )


def gateway_status(
    not_ready: Iterable[str],
    exporters: Iterable[ExporterReport],
    failed_receivers: Iterable[str],
    checks: Iterable[ResourceCheck],
) -> tuple[GatewayStatus, list[str]]:
    """The gateway's own status and why (pure).

    ``unhealthy`` (503) when it cannot take data (``not_ready`` reasons) or memory or disk
    space is critical; ``degraded`` when an exporter is retrying or failed, a queue is at
    least 80 % full, an internal receiver failed, the gateway's event loop keeps its core busy
    (``process_cpu``) or memory or disk is at warning. Host CPU is informational: other
    processes using the CPU do not make the gateway degraded. Services' health is reported
    beside it and does not change it: a load balancer must not take a gateway out because a
    service it watches is failing.
    """
    unhealthy = list(not_ready)
    degraded: list[str] = []
    for e in exporters:
        if e.state != "ok":
            degraded.append(f"exporter {e.name} is {e.state}: {e.last_error}")
        if e.queue_fill_ratio >= QUEUE_FILL_DEGRADED:
            degraded.append(f"exporter {e.name} queue is {e.queue_fill_ratio:.0%} full")
    degraded += [f"receiver {name} failed" for name in failed_receivers]
    for c in checks:
        if c.status == "healthy" or c.resource == "cpu":
            continue
        what = c.name if c.name == c.resource else f"{c.resource} {c.name}"  # memory, disk /
        text = f"{what} at {c.utilization:.0%} ({c.status})"
        if c.resource == "process_cpu":
            text = f"gateway event loop CPU at {c.utilization:.0%} of one core ({c.status})"
            degraded.append(text)
            continue
        (unhealthy if c.status == "critical" else degraded).append(text)
    if unhealthy:
        return "unhealthy", unhealthy + degraded
    return ("degraded", degraded) if degraded else ("healthy", [])
