"""Hand-built inputs of the condition evaluators: rules, service reports, system samples and
exporter reports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from gateway.alerting.evaluation import Sample
from gateway.alerting.rules import RuleConfig
from gateway.health.config import ServiceThresholds
from gateway.health.services import Latency, ServiceReport, ServiceStatus
from gateway.health.status import ExporterReport
from gateway.health.system import FilesystemUsage, ProcessUsage, SystemSnapshot

T0 = 1_800_000_000.0


def rule(condition: dict[str, Any], **more: Any) -> RuleConfig:
    return RuleConfig.model_validate({"name": "R", "condition": condition, **more})


def service(
    name: str = "orders",
    *,
    status: ServiceStatus = "healthy",
    requests: int = 100,
    errors: int = 0,
    request_rate: float = 1.0,
    p95: float | None = None,
    p99: float | None = None,
    since_seen: float = 1.0,
    stale_after: float = 60.0,
) -> ServiceReport:
    return ServiceReport(
        name=name,
        status=status,
        reasons=[],
        last_seen=T0 - since_seen,
        seconds_since_seen=since_seen,
        signals={"traces": T0 - since_seen},
        window_seconds=300.0,
        requests=requests,
        errors=errors,
        request_rate=request_rate,
        error_rate=errors / requests if requests else None,
        latency=Latency(p50=None, p95=p95, p99=p99),
        thresholds=ServiceThresholds(stale_after=stale_after),
    )


def snapshot(
    *,
    idle: float = 0.5,
    iowait: float = 0.0,
    used: int = 50,
    total: int = 100,
    filesystems: Sequence[FilesystemUsage] = (),
) -> SystemSnapshot:
    return SystemSnapshot(
        at=T0,
        interval=5.0,
        cpu_modes={"user": 1.0 - idle - iowait, "idle": idle, "iowait": iowait},
        memory_total=total,
        memory_states={"used": used, "free": total - used},
        filesystems=tuple(filesystems),
        network=(),
        process=ProcessUsage(cpu_utilization=0.01, memory_rss=1, threads=1, open_fds=3),
    )


def disk(mountpoint: str, used: int, free: int, holds: Sequence[str]) -> FilesystemUsage:
    return FilesystemUsage(
        device=f"/dev/{mountpoint.strip('/') or 'root'}",
        mountpoint=mountpoint,
        type="ext4",
        total=used + free + 5,  # a root reserve: utilization is used / (used + free)
        used=used,
        free=free,
        holds=tuple(holds),
    )


def exporter(
    name: str,
    state: Literal["ok", "retrying", "failed"] = "ok",
    size: int = 0,
    capacity: int = 100,
) -> ExporterReport:
    return ExporterReport(
        name=name,
        state=state,
        last_error=None if state == "ok" else "connection refused",
        last_error_at=None if state == "ok" else T0,
        last_success_at=T0,
        queue_size=size,
        queue_capacity=capacity,
    )


def labelled(samples: list[Sample]) -> list[tuple[dict[str, str], float]]:
    return [(s.labels, s.value) for s in samples]
