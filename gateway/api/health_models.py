"""The response models of the health routes (their schemas are in the admin app's OpenAPI)
and the conversions from the health trackers' reports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from gateway.health.config import ServiceThresholds
from gateway.health.services import ServiceReport, ServiceStatus
from gateway.health.status import GatewayStatus, Level, ResourceCheck, worst
from gateway.health.system import SystemSnapshot

ATTENTION_LIMIT = 50


def from_epoch(seconds: float | None) -> datetime | None:
    """A UTC datetime from wall-clock seconds."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


class Latency(BaseModel):
    """Latency percentiles of SERVER spans in the window, in seconds (2 % relative accuracy)."""

    p50: float | None
    p95: float | None
    p99: float | None


class ServiceHealth(BaseModel):
    """One service, from everything it sent."""

    name: str
    status: ServiceStatus
    reasons: list[str] = Field(description="Why the status is not healthy.")
    last_seen: datetime
    seconds_since_seen: float
    signals: dict[str, datetime] = Field(description="When each signal was last received.")
    window_seconds: float = Field(description="The time the counts and rates cover.")
    requests: int = Field(description="SERVER spans in the window.")
    errors: int = Field(description="SERVER spans with status ERROR in the window.")
    request_rate: float = Field(description="Requests per second.")
    error_rate: float | None = Field(description="errors / requests (null without requests).")
    latency: Latency
    thresholds: ServiceThresholds


class ServicesResponse(BaseModel):
    """Every tracked service."""

    last_updated: datetime
    count: int
    max_services: int
    untracked: int = Field(description="Services not tracked because max_services was reached.")
    services: list[ServiceHealth]


class ServicesSummary(BaseModel):
    """Services by status; ``attention`` names those not healthy (at most 50)."""

    total: int
    healthy: int
    degraded: int
    unhealthy: int
    stale: int
    untracked: int
    attention: list[str]


class ReceiverHealth(BaseModel):
    name: str
    type: str
    status: Literal["ok", "failed", "stopped"]
    endpoints: list[str] = Field(default_factory=list)
    last_error: str | None = None
    last_run_at: datetime | None = None


class ExporterPartHealth(BaseModel):
    """One process's queue of an exporter (``service.workers`` > 1)."""

    process: str = Field(description="`supervisor` or `worker-<index>`.")
    status: Literal["ok", "retrying", "failed"]
    last_error: str | None = None
    queue_size: int
    queue_capacity: int
    queue_fill_ratio: float
    spool_bytes: int | None = None
    spool_capacity_bytes: int | None = None
    spool_error: str | None = None


class ExporterHealth(BaseModel):
    name: str
    status: Literal["ok", "retrying", "failed"]
    last_error: str | None
    last_error_at: datetime | None
    last_success_at: datetime | None
    queue_size: int
    queue_capacity: int
    queue_fill_ratio: float
    spool_bytes: int | None = Field(description="Bytes in the disk spool (null: no spool).")
    spool_capacity_bytes: int | None = Field(description="The spool's limit (max_bytes).")
    spool_error: str | None = Field(
        default=None, description="Why the disk spool cannot write now (data is refused)."
    )
    spool_error_since: datetime | None = Field(default=None, description="Since when.")
    workers: list[ExporterPartHealth] | None = Field(
        default=None,
        description="With service.workers > 1: the queue of each process that runs the "
        "exporter; the fields above are then their total (null with one process).",
    )


class PipelineHealth(BaseModel):
    name: str
    accepting: bool


class Components(BaseModel):
    receivers: list[ReceiverHealth]
    pipelines: list[PipelineHealth]


class Cpu(BaseModel):
    utilization: float
    status: Level
    modes: dict[str, float]


class Memory(BaseModel):
    total_bytes: int
    used_bytes: int
    utilization: float
    status: Level


class Filesystem(BaseModel):
    mountpoint: str
    device: str
    type: str
    total_bytes: int
    used_bytes: int
    free_bytes: int
    utilization: float
    status: Level
    holds: list[str] = Field(description="Gateway data directories on this filesystem.")


class Process(BaseModel):
    cpu_utilization: float = Field(description="Share of all CPUs.")
    cpu_cores: float = Field(description="CPU seconds per second, all threads (1.0: one core).")
    event_loop_cpu: float | None = Field(
        description="CPU seconds per second of the event loop's thread (null until known)."
    )
    cpu_status: Level = Field(
        description="event_loop_cpu (else cpu_cores, capped at 1) against process_cpu."
    )
    memory_rss_bytes: int
    threads: int
    open_fds: int | None


class SystemHealth(BaseModel):
    """Host resources (utilizations 0..1) and the gateway process."""

    status: Level
    sampled_at: datetime
    cpu: Cpu
    memory: Memory
    filesystems: list[Filesystem]
    process: Process


class NotificationHealth(BaseModel):
    """Delivery of one integration of one alerting receiver (since the gateway started)."""

    receiver: str
    integration: str
    sent: int
    failed: int
    retried: int
    waiting: int = Field(description="Notifications in the outbox not delivered yet")
    last_error: str | None
    last_error_at: datetime | None
    last_success_at: datetime | None


class AlertingHealth(BaseModel):
    """The alerting engine: evaluations, open alerts and notification delivery."""

    rules: int
    last_evaluation: datetime | None
    last_error: str | None
    firing: int
    pending: int
    acknowledged: int
    notifications: list[NotificationHealth]


class LogFileHealth(BaseModel):
    """A file the gateway writes and rotates (its own log, a file exporter's output)."""

    owner: str = Field(description="`logging` or `exporter <id>`.")
    path: str
    status: Level = Field(description="critical: writes fail or the disk is nearly full.")
    reasons: list[str]
    size_bytes: int = Field(description="Size of the active file.")
    rotated_files: int = Field(description="Rotated files kept beside it.")
    free_bytes: int | None = Field(description="Free space of its filesystem.")
    free_ratio: float | None
    last_rotation_at: datetime | None
    rotations: int
    compressed_bytes: int = Field(description="Rotated bytes gzipped (before compression).")
    removed_files: int = Field(description="Rotated files removed by retention.")
    failures: dict[str, int] = Field(description="Failed steps: write, rotate, compress, cleanup.")


class WorkerHealth(BaseModel):
    """One worker slot and the process running in it."""

    index: int
    pid: int | None = Field(description="null while no process runs in the slot.")
    state: str = Field(description="starting, running, restarting, stopping or stopped.")
    restarts: int = Field(description="Processes started in this slot after the first.")
    started_at: datetime | None = Field(description="When the current process started.")
    last_report_at: datetime | None = Field(description="Its last status report.")
    accepted_items: dict[str, int] = Field(
        description="Items accepted per signal by the current process (since it started)."
    )
    not_ready: list[str] = Field(description="Why the worker cannot take data (empty: ready).")


class WorkersHealth(BaseModel):
    """The worker processes of a gateway with ``service.workers`` > 1."""

    count: int
    restarts: int = Field(description="Restarts of all slots since the supervisor started.")
    workers: list[WorkerHealth]


class HealthResponse(BaseModel):
    """The gateway's health (HTTP 503 when ``unhealthy``), its parts and its services."""

    status: GatewayStatus
    reasons: list[str]
    version: str
    instance_id: str
    state: str
    uptime_seconds: float
    last_updated: datetime
    components: Components
    exporters: list[ExporterHealth]
    system: SystemHealth
    services: ServicesSummary
    alerting: AlertingHealth | None = None
    log_files: list[LogFileHealth] = Field(
        default_factory=list, description="Rotation status of each file the gateway writes."
    )
    workers: WorkersHealth | None = Field(
        default=None, description="The worker processes (null with service.workers: 1)."
    )


def service_health(r: ServiceReport) -> ServiceHealth:
    """The response model of a tracker report."""
    return ServiceHealth(
        name=r.name,
        status=r.status,
        reasons=r.reasons,
        last_seen=datetime.fromtimestamp(r.last_seen, UTC),
        seconds_since_seen=r.seconds_since_seen,
        signals={k: datetime.fromtimestamp(v, UTC) for k, v in sorted(r.signals.items())},
        window_seconds=r.window_seconds,
        requests=r.requests,
        errors=r.errors,
        request_rate=r.request_rate,
        error_rate=r.error_rate,
        latency=Latency(p50=r.latency.p50, p95=r.latency.p95, p99=r.latency.p99),
        thresholds=r.thresholds,
    )


def system_health(s: SystemSnapshot, checks: list[ResourceCheck]) -> SystemHealth:
    """The response model of a system snapshot and its :func:`system_checks`."""
    cpu, memory = checks[0], checks[1]
    disks = [c for c in checks if c.resource == "disk"]
    own_cpu = next(c for c in checks if c.resource == "process_cpu")
    return SystemHealth(
        status=worst(c.status for c in checks),
        sampled_at=datetime.fromtimestamp(s.at, UTC),
        cpu=Cpu(utilization=cpu.utilization, status=cpu.status, modes=s.cpu_modes),
        memory=Memory(
            total_bytes=s.memory_total,
            used_bytes=s.memory_states.get("used", 0),
            utilization=memory.utilization,
            status=memory.status,
        ),
        filesystems=[
            Filesystem(
                mountpoint=fs.mountpoint,
                device=fs.device,
                type=fs.type,
                total_bytes=fs.total,
                used_bytes=fs.used,
                free_bytes=fs.free,
                utilization=fs.utilization,
                status=check.status,
                holds=list(fs.holds),
            )
            for fs, check in zip(s.filesystems, disks, strict=True)
        ],
        process=Process(
            cpu_utilization=s.process.cpu_utilization,
            cpu_cores=s.process.cpu_cores,
            event_loop_cpu=s.process.loop_cpu,
            cpu_status=own_cpu.status,
            memory_rss_bytes=s.process.memory_rss,
            threads=s.process.threads,
            open_fds=s.process.open_fds,
        ),
    )
