"""``GET /health``, ``/health/services[/{name}]`` and ``/health/history[/{name}]`` on the admin
listener.

Responses are pydantic models, so the admin app's OpenAPI (``/openapi.json``) documents their
schemas. Each answer is computed at most once per ``health.cache_ttl`` (default 1 s) however
many monitors ask, and concurrent requests share one computation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse, Response

from exporters.queue import ExporterQueue
from gateway import __version__
from gateway.alerting.service import AlertingService
from gateway.api.admin import Readiness
from gateway.api.health_models import (
    ATTENTION_LIMIT,
    AlertingHealth,
    Components,
    HealthResponse,
    LogFileHealth,
    NotificationHealth,
    PipelineHealth,
    ReceiverHealth,
    ServiceHealth,
    ServicesResponse,
    ServicesSummary,
    from_epoch,
    service_health,
    system_health,
)
from gateway.api.history_models import (
    HistoryResponse,
    ServiceHistoryResponse,
    service_minutes,
    system_samples,
)
from gateway.health.config import HealthConfig
from gateway.health.history import SystemHistory
from gateway.health.services import ServiceHealthTracker
from gateway.health.status import exporter_report, gateway_status, system_checks
from gateway.health.system import SystemSampler
from gateway.logfiles.managed import ManagedFile
from gateway.logfiles.status import FileStatus, degraded_reasons
from gateway.otlp.builders import instance_id
from gateway.pipeline import Pipeline
from gateway.registry import ReceiverReport
from gateway.workers.status import WorkerSlot
from gateway.workers.view import (
    combine_exporters,
    exporter_health,
    merge_receivers,
    worker_reasons,
    workers_health,
)


class GatewayView(Protocol):
    """What the health answers read of the running gateway."""

    @property
    def state(self) -> str:
        """``created``, ``starting``, ``running``, ``stopping`` or ``stopped``."""
        ...

    @property
    def queues(self) -> Mapping[str, ExporterQueue]:
        """The exporters' queues by exporter id."""
        ...

    @property
    def pipelines(self) -> Sequence[Pipeline]:
        """Every pipeline."""
        ...

    def readiness(self) -> Readiness:
        """Whether every pipeline can take data, and why not."""
        ...

    def receiver_reports(self) -> Mapping[str, tuple[str, ReceiverReport]]:
        """Each receiver's type and report, by id."""
        ...


T = TypeVar("T")


class HealthService:
    """Computes (and caches) the health answers of one gateway."""

    def __init__(
        self,
        gateway: GatewayView,
        config: HealthConfig,
        tracker: ServiceHealthTracker,
        sampler: SystemSampler,
        hostmetrics_intervals: Sequence[float],
        clock: Callable[[], float] = time.monotonic,
        worker_slots: Callable[[], Iterable[WorkerSlot]] | None = None,
    ) -> None:
        self.gateway = gateway
        self.config = config
        self.tracker = tracker
        self.sampler = sampler
        self.clock = clock
        self.started = clock()
        intervals = list(hostmetrics_intervals)
        # With a hostmetrics receiver its samples are used (a fresh one only if it stalls);
        # without, /health samples itself, at most every 5 s.
        self.max_sample_age = 2 * min(intervals) + 1 if intervals else 5.0
        self._cache: dict[str, tuple[float, Any]] = {}
        self.alerting: AlertingService | None = None  # set by the gateway when alerting is on
        self.system_history: SystemHistory | None = None  # set by the gateway when sampling
        self.log_files: Callable[[], Sequence[ManagedFile]] = list  # set by the gateway
        # Set by the supervisor with service.workers > 1 (gateway.workers.view).
        self.worker_slots = worker_slots
        self._locks = {k: asyncio.Lock() for k in ("health", "services", "history")}

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

    async def history(self) -> HistoryResponse:
        """Every tracked service's minutes and the system samples (cached)."""

        async def build() -> HistoryResponse:
            system = self.system_history
            return HistoryResponse(
                minutes=self.config.history_minutes,
                system=system_samples(system.points()) if system is not None else [],
                services={
                    name: service_minutes(points)
                    for name, points in self.tracker.histories().items()
                },
            )

        return await self._cached("history", build)

    def service_history(self, name: str) -> ServiceHistoryResponse | None:
        """One service's minutes; None when it is not tracked."""
        points = self.tracker.history(name)
        if points is None:
            return None
        return ServiceHistoryResponse(
            service=name, minutes=self.config.history_minutes, points=service_minutes(points)
        )

    async def health(self) -> HealthResponse:
        """The whole gateway (cached)."""
        return await self._cached("health", self._build_health)

    def _receivers(self, slots: list[WorkerSlot] | None) -> list[ReceiverHealth]:
        running = self.gateway.state == "running"
        reports = self.gateway.receiver_reports()
        if slots is not None:  # OTLP receivers run in the workers
            reports = merge_receivers(reports, slots)
        return [
            ReceiverHealth(
                name=name,
                type=type_,
                status=report.status if running else "stopped",
                endpoints=report.endpoints,
                last_error=report.last_error,
                last_run_at=from_epoch(report.last_run_at),
            )
            for name, (type_, report) in reports.items()
        ]

    async def _build_health(self) -> HealthResponse:
        snapshot = await asyncio.to_thread(self.sampler.fresh, self.max_sample_age)
        checks = system_checks(snapshot, self.config.system)
        slots = None if self.worker_slots is None else list(self.worker_slots())
        own = [exporter_report(q) for q in self.gateway.queues.values()]
        combined = combine_exporters(own, slots) if slots is not None else None
        exporters = own if combined is None else [total for total, _ in combined]
        receivers = self._receivers(slots)
        readiness = self.gateway.readiness()
        status, reasons = gateway_status(
            [] if readiness.ready else readiness.reasons,
            exporters,
            [r.name for r in receivers if r.status == "failed"],
            checks,
        )
        files = await asyncio.to_thread(self._log_file_statuses)
        critical = degraded_reasons(files)
        if slots is not None and combined is not None and self.gateway.state == "running":
            critical += worker_reasons(slots, combined)
        if critical:
            status = "degraded" if status == "healthy" else status
            reasons = [*reasons, *critical]
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
            exporters=[exporter_health(e) for e in exporters]
            if combined is None
            else [exporter_health(total, parts) for total, parts in combined],
            system=system_health(snapshot, checks),
            services=ServicesSummary(
                total=len(services),
                **{k: len(v) for k, v in by_status.items()},
                untracked=self.tracker.untracked,
                attention=attention[:ATTENTION_LIMIT],
            ),
            alerting=await self._alerting(),
            log_files=[_log_file_health(owner, s) for owner, s in files],
            workers=workers_health(slots) if slots is not None else None,
        )

    def _log_file_statuses(self) -> list[tuple[str, FileStatus]]:
        return [(m.owner, m.file.status()) for m in self.log_files()]

    async def _alerting(self) -> AlertingHealth | None:
        alerting = self.alerting
        if alerting is None:
            return None
        waiting = {}
        if alerting.history.has_store:
            waiting = await asyncio.to_thread(alerting.history.waiting_counts)
        states = [a.state for a in alerting.engine.alerts.values()]
        return AlertingHealth(
            rules=len(alerting.engine.rules),
            last_evaluation=from_epoch(alerting.last_evaluation),
            last_error=alerting.last_error,
            firing=states.count("firing"),
            pending=states.count("pending"),
            acknowledged=states.count("acknowledged"),
            notifications=[
                NotificationHealth(
                    receiver=receiver,
                    integration=integration,
                    sent=st.sent,
                    failed=st.failed,
                    retried=st.retried,
                    waiting=waiting.get((receiver, integration), 0),
                    last_error=st.last_error,
                    last_error_at=from_epoch(st.last_error_at),
                    last_success_at=from_epoch(st.last_success_at),
                )
                for (receiver, integration), st in sorted(alerting.deliverer.status.items())
            ],
        )


def _log_file_health(owner: str, s: FileStatus) -> LogFileHealth:
    return LogFileHealth(
        owner=owner,
        path=s.path,
        status=s.level,
        reasons=s.reasons,
        size_bytes=s.size_bytes,
        rotated_files=s.rotated_files,
        free_bytes=s.free_bytes,
        free_ratio=s.free_ratio,
        last_rotation_at=from_epoch(s.last_rotation_at),
        rotations=sum(s.rotations.values()),
        compressed_bytes=s.compressed_bytes,
        removed_files=sum(s.removed_files.values()),
        failures={step: n for step, n in s.failures.items() if n},
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

    @router.get(
        "/health/history",
        response_model=HistoryResponse,
        summary="Per-minute history of every service, and recent system samples",
    )
    async def history() -> Response:
        # Up to max_services x history_minutes points: serialized once, by pydantic-core.
        answer = await service.history()
        return Response(answer.model_dump_json(), media_type="application/json")

    @router.get(
        "/health/history/{name:path}",
        response_model=ServiceHistoryResponse,
        summary="Per-minute history of one service",
        responses={404: {"description": "No such service is tracked"}},
    )
    async def one_history(name: str) -> ServiceHistoryResponse:
        found = service.service_history(name)
        if found is None:
            raise HTTPException(status_code=404, detail=f"service '{name}' has not been seen")
        return found

    return router
