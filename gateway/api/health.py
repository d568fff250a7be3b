"""``GET /health``, ``/health/services`` and ``/health/services/{name}`` on the admin listener.

Responses are pydantic models, so the admin app's OpenAPI (``/openapi.json``) documents their
schemas. Each answer is computed at most once per ``health.cache_ttl`` (default 1 s) however
many monitors ask, and concurrent requests share one computation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gateway import __version__
from gateway.config_models import OtlpReceiverConfig, ServiceThresholds
from gateway.signals import instance_id
from gateway.signals.health import (
    GatewayStatus,
    Level,
    ResourceCheck,
    ServiceHealthTracker,
    ServiceReport,
    ServiceStatus,
    exporter_report,
    gateway_status,
    system_checks,
    worst,
)
from gateway.signals.hostmetrics import HostMetricsReceiver
from gateway.signals.system import SystemSampler, SystemSnapshot

if TYPE_CHECKING:
    from gateway.service import Gateway

T = TypeVar("T")
ATTENTION_LIMIT = 50


def _when(seconds: float | None) -> datetime | None:
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
    cpu_utilization: float
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
    cpu, memory, disks = checks[0], checks[1], checks[2:]
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
            memory_rss_bytes=s.process.memory_rss,
            threads=s.process.threads,
            open_fds=s.process.open_fds,
        ),
    )


class HealthService:
    """Computes (and caches) the health answers of one gateway."""

    def __init__(
        self,
        gateway: Gateway,
        tracker: ServiceHealthTracker,
        sampler: SystemSampler,
        hostmetrics: list[HostMetricsReceiver],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gateway = gateway
        self.config = gateway.config.health
        self.tracker = tracker
        self.sampler = sampler
        self.hostmetrics = hostmetrics
        self.clock = clock
        self.started = clock()
        intervals = [r.interval for r in hostmetrics]
        # With a hostmetrics receiver its samples are used (a fresh one only if it stalls);
        # without, /health samples itself, at most every 5 s.
        self.max_sample_age = 2 * min(intervals) + 1 if intervals else 5.0
        self._cache: dict[str, tuple[float, Any]] = {}
        self._locks = {"health": asyncio.Lock(), "services": asyncio.Lock()}

    async def _cached(self, key: str, build: Callable[[], Awaitable[T]]) -> T:
        async with self._locks[key]:  # one lock per key: building health reads services
            hit = self._cache.get(key)
            if hit is not None and self.clock() < hit[0]:
                return hit[1]
            value = await build()
            self._cache[key] = (self.clock() + self.config.cache_ttl, value)
            return value

    async def services(self) -> ServicesResponse:
        """Every tracked service (cached)."""

        async def build() -> ServicesResponse:
            services = [service_health(r) for r in self.tracker.reports()]
            return ServicesResponse(
                last_updated=datetime.now(UTC),
                count=len(services),
                max_services=self.config.max_services,
                untracked=self.tracker.untracked,
                services=services,
            )

        return await self._cached("services", build)

    async def health(self) -> HealthResponse:
        """The whole gateway (cached)."""
        return await self._cached("health", self._build_health)

    def _receivers(self) -> list[ReceiverHealth]:
        running = self.gateway.state == "running"
        internal = {r.name: r for r in self.hostmetrics}
        found = []
        for name, cfg in self.gateway.config.receivers.items():
            if name in internal:
                status = internal[name].status
                found.append(
                    ReceiverHealth(
                        name=name,
                        type="hostmetrics",
                        status=status.state if running else "stopped",
                        last_error=status.last_error,
                        last_run_at=_when(status.last_run_at),
                    )
                )
            elif isinstance(cfg, OtlpReceiverConfig):
                protocols = [("grpc", cfg.protocols.grpc), ("http", cfg.protocols.http)]
                endpoints = [f"{p} {c.endpoint}" for p, c in protocols if c is not None]
                state: Literal["ok", "stopped"] = "ok" if running else "stopped"
                found.append(
                    ReceiverHealth(name=name, type="otlp", status=state, endpoints=endpoints)
                )
        return found

    async def _build_health(self) -> HealthResponse:
        snapshot = await asyncio.to_thread(self.sampler.fresh, self.max_sample_age)
        checks = system_checks(snapshot, self.config.system)
        exporters = [exporter_report(q) for q in self.gateway.queues.values()]
        receivers = self._receivers()
        readiness = self.gateway.readiness()
        status, reasons = gateway_status(
            [] if readiness.ready else readiness.reasons,
            exporters,
            [r.name for r in receivers if r.status == "failed"],
            checks,
        )
        services = (await self.services()).services
        by_status = {
            s: [x.name for x in services if x.status == s]
            for s in ("healthy", "degraded", "unhealthy", "stale")
        }
        attention = [*by_status["unhealthy"], *by_status["degraded"], *by_status["stale"]]
        return HealthResponse(
            status=status,
            reasons=reasons,
            version=__version__,
            instance_id=instance_id(),
            state=self.gateway.state,
            uptime_seconds=self.clock() - self.started,
            last_updated=datetime.now(UTC),
            components=Components(
                receivers=receivers,
                pipelines=[
                    PipelineHealth(name=p.name, accepting=p.accepting)
                    for p in self.gateway.pipelines
                ],
            ),
            exporters=[
                ExporterHealth(
                    name=e.name,
                    status=e.state,
                    last_error=e.last_error,
                    last_error_at=_when(e.last_error_at),
                    last_success_at=_when(e.last_success_at),
                    queue_size=e.queue_size,
                    queue_capacity=e.queue_capacity,
                    queue_fill_ratio=e.queue_fill_ratio,
                    spool_bytes=e.spool_bytes,
                    spool_capacity_bytes=e.spool_capacity_bytes,
                    spool_error=e.spool_problem,
                    spool_error_since=_when(e.spool_problem_since),
                )
                for e in exporters
            ],
            system=system_health(snapshot, checks),
            services=ServicesSummary(
                total=len(services),
                **{k: len(v) for k, v in by_status.items()},
                untracked=self.tracker.untracked,
                attention=attention[:ATTENTION_LIMIT],
            ),
        )


def health_router(service: HealthService) -> APIRouter:
    """The health routes, for ``Gateway.admin_routers``."""
    router = APIRouter(tags=["health"])

    @router.get(
        "/health",
        response_model=HealthResponse,
        summary="Gateway health: components, exporters, system resources, services",
        responses={503: {"model": HealthResponse, "description": "The gateway is unhealthy"}},
    )
    async def health() -> JSONResponse:
        report = await service.health()
        code = 503 if report.status == "unhealthy" else 200
        return JSONResponse(report.model_dump(mode="json"), status_code=code)

    @router.get(
        "/health/services",
        response_model=ServicesResponse,
        summary="Health of every service seen (rates, error rate, latency percentiles)",
    )
    async def services() -> ServicesResponse:
        return await service.services()

    @router.get(
        "/health/services/{name:path}",
        response_model=ServiceHealth,
        summary="Health of one service",
        responses={404: {"description": "No such service has been seen"}},
    )
    async def one_service(name: str) -> ServiceHealth:
        for found in (await service.services()).services:
            if found.name == name:
                return found
        raise HTTPException(status_code=404, detail=f"service '{name}' has not been seen")

    return router
