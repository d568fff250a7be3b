"""The running gateway: builds pipelines from config, starts exporters then receivers, and
stops in reverse (receivers first, then the exporter queues are drained)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter
from prometheus_client import CollectorRegistry
from starlette.types import Receive, Scope, Send

from exporters.prometheus.pull import PrometheusExporterConfig
from exporters.queue import ExporterQueue
from exporters.sending import queue_around
from exporters.settings import ExporterSettings
from exporters.spool import spool_directory
from gateway.alerting.service import AlertingService
from gateway.alerting.setup import build_alerting, filesystem_paths, rules_of
from gateway.api.admin import Readiness, create_admin_app
from gateway.api.alerts import alerts_router
from gateway.api.audit import audit_router
from gateway.api.errors import errors_router
from gateway.api.health import HealthService, health_router
from gateway.api.slo import SloCollector, create_slo_router
from gateway.audit.trail import AuditTrail
from gateway.components import REGISTRY
from gateway.config.model import Config
from gateway.dashboard.router import dashboard_router
from gateway.dashboard.sources import DashboardSources
from gateway.error_tracking.persistence import ErrorStore
from gateway.error_tracking.service import ErrorTrackingCollector, ErrorTrackingService
from gateway.error_tracking.tracker import ErrorTracker
from gateway.errors import RefusedError
from gateway.health.data_paths import data_paths
from gateway.health.history import SystemHistory
from gateway.health.services import ServiceHealthTracker
from gateway.health.system import SystemSampler
from gateway.listeners.fd_limit import ensure_fd_budget
from gateway.listeners.http_guard import ConnectionGuard, HttpLimits
from gateway.listeners.http_server import EmbeddedServer
from gateway.listeners.settings import HttpListenerSettings
from gateway.logfiles.managed import ManagedFile, managed_files
from gateway.logfiles.metrics import LogFilesCollector
from gateway.observers import Observer
from gateway.otlp.batch import Batch, Signal
from gateway.pipeline import Pipeline, Router
from gateway.receivers.admission import Admission
from gateway.receivers.hostmetrics import HostMetricsReceiverConfig
from gateway.registry import Host, ReceiverReport, component_type
from gateway.reload import ConfigReloader
from gateway.security.access import AdminAccess, RouteAccess
from gateway.security.auth import Authenticator
from gateway.security.sessions import Sessions
from gateway.selfmetrics import GatewayMetrics
from gateway.slo.tracker import SloTracker
from gateway.store import SqliteStore, open_store
from gateway.store.sqlite import MEMORY
from gateway.store.telemetry_queries import TelemetryReader

log = logging.getLogger("otelgate")

State = Literal["created", "starting", "running", "stopping", "stopped"]


class Gateway:
    """All receivers, pipelines and exporters of one configuration."""

    def __init__(
        self,
        config: Config,
        registry: CollectorRegistry | None = None,
        reload_config: Callable[[], Config] | None = None,
        spool_partition: str | None = None,  # the supervisor's, with worker processes
        workers: int = 1,
    ) -> None:
        self.config = config
        self.registry = registry if registry is not None else CollectorRegistry()
        self.exposition: Any = self.registry  # what /metrics shows (workers' merged in too)
        self.metrics = GatewayMetrics(self.registry)
        self.admission = Admission.of(self.metrics, config.service.admission)
        self.state: State = "created"
        self.observers: list[Observer] = []
        self._admin: AdminAccess | None = None
        spools = [spool_directory(name, cfg) for name, cfg in config.exporters.items()]
        rules = rules_of(config.alerting) if config.alerting.enabled else []
        watched = [*data_paths(config), *config.health.system.paths]
        watched += [d for d in spools if d is not None]
        self.sampler = SystemSampler([*watched, *filesystem_paths(rules)])
        # Error tracking: exceptions grouped by an observer, kept in the store, /errors.
        self.errors: ErrorTrackingService | None = None
        if config.errors.enabled:
            tracker = ErrorTracker(config.errors)
            self.errors = ErrorTrackingService(tracker, config.store.flush_interval)
        # Security: the audit trail (when configured) and who may send and read.
        self.audit: AuditTrail | None = None
        if config.audit.enabled:
            self.audit = AuditTrail.from_config(config.audit, registry=self.registry)
        self.auth = Authenticator(config.auth, self.registry, audit=self.audit)
        host = Host(
            metrics=self.metrics,
            emit=self.emit,
            routes=self._routes,
            admission=self.admission,
            observers=self.observers,
            sampler=self.sampler,
            guard=self._guard,
            store=config.store,
            errors_in_trace=self.errors.groups_in_trace if self.errors else None,
            auth=self.auth,
        )
        self.queues: dict[str, ExporterQueue] = {}
        for name, cfg in config.exporters.items():
            assert isinstance(cfg, ExporterSettings)  # every exporter config has these
            exporter = REGISTRY.exporter(name, cfg, host)
            self.queues[name] = queue_around(
                name, exporter, cfg, self.metrics, partition=spool_partition, workers=workers
            )
        self.processors = {
            name: REGISTRY.processor(name, cfg, host) for name, cfg in config.processors.items()
        }
        self.pipelines = [
            Pipeline(
                name,
                Signal(component_type(name)),
                [self.processors[p] for p in cfg.processors],
                [self.queues[e] for e in cfg.exporters],
            )
            for name, cfg in config.service.pipelines.items()
        ]
        self.receivers = {
            name: REGISTRY.receiver(name, cfg, host) for name, cfg in config.receivers.items()
        }
        # Components add their admin routes (health, SLO, ...) here before start().
        self.admin_routers: list[APIRouter] = []
        for queue in self.queues.values():  # exporters that serve something (Prometheus pull)
            admin_router = getattr(queue.exporter, "admin_router", None)
            if callable(admin_router):
                self.admin_routers.append(admin_router())
        # SLOs: counted by an observer, kept in the store (opened by start()), served on admin.
        self.store: SqliteStore | None = None
        self.slo_tracker = SloTracker(
            config.slos.definitions(), flush_interval=config.store.flush_interval
        )
        self.observers.append(self.slo_tracker)
        self.admin_routers.append(create_slo_router(self.slo_tracker))
        if self.slo_tracker.slos:
            self.registry.register(SloCollector(self.slo_tracker))
        # Service and component health, system resources: /health (gateway.health).
        self.health = ServiceHealthTracker(config.health)
        self.observers.append(self.health)
        intervals = [
            cfg.collection_interval
            for cfg in config.receivers.values()
            if isinstance(cfg, HostMetricsReceiverConfig)
        ]
        self.health_api = HealthService(self, config.health, self.health, self.sampler, intervals)
        # Files it writes and rotates (its log file, file exporters): /health and /metrics.
        self.health_api.log_files = self.log_files
        self.registry.register(LogFilesCollector(self.log_files))
        self.admin_routers.append(health_router(self.health_api))
        if self.errors is not None:
            self.observers.append(self.errors.tracker)
            self.admin_routers.append(errors_router(self.errors))
            self.registry.register(ErrorTrackingCollector(self.errors.tracker))
        # Alerting: rules over all of the above, notifications, history (gateway.alerting).
        self.alerting: AlertingService | None = None
        if config.alerting.enabled:
            self.alerting, log_counter = build_alerting(
                config.alerting, rules, admin_endpoint=config.admin.endpoint,
                registry=self.registry, metrics=self.metrics, services=self.health,
                sampler=self.sampler, queues=self.queues, slos=self.slo_tracker,
                watched_paths=watched, max_sample_age=self.health_api.max_sample_age,
                error_groups=self.errors.tracker if self.errors else None,
                log_files=self.log_files,
            )  # fmt: skip
            self.observers.append(log_counter)
            self.admin_routers.append(alerts_router(self.alerting))
            self.health_api.alerting = self.alerting
        # SIGHUP and POST /-/reload (gateway.reload), when the gateway knows its config source.
        self.reloader: ConfigReloader | None = None
        if reload_config is not None:
            self.reloader = ConfigReloader(self, reload_config, self.registry, self.audit)
            self.admin_routers.append(self.reloader.router())
        if self.audit is not None:
            self.admin_routers.append(audit_router(self.audit))
        # The dashboard at / (gateway.dashboard), and the system samples its sparklines show.
        self.sessions = Sessions()
        self.system_history = SystemHistory()
        self.health_api.system_history = self.system_history
        self._history_task: asyncio.Task[None] | None = None
        if config.dashboard.enabled:
            sources = DashboardSources(
                config.dashboard, self.health_api, self.slo_tracker, self.alerting, self.errors,
                self._telemetry_reader, self.auth, self.sessions,
            )  # fmt: skip
            self.admin_routers.append(dashboard_router(sources))
        self.admin_server = EmbeddedServer(
            "admin",
            self.admin_app,
            config.admin.endpoint,
            self._guard("admin", config.admin),
            tls=config.admin.tls,
        )

    def _guard(self, listener: str, settings: HttpListenerSettings) -> ConnectionGuard:
        return ConnectionGuard(listener, HttpLimits.of(settings), self.metrics.connections)

    def max_connections(self) -> int:
        """The listeners' connection caps added up."""
        receivers = sum(r.max_connections() for r in self.receivers.values())
        return self.config.admin.max_connections + receivers

    @property
    def http_servers(self) -> list[EmbeddedServer]:
        """The OTLP/HTTP listeners (their bound ports, for tools and tests)."""
        found = [getattr(r, "http", None) for r in self.receivers.values()]
        return [server for server in found if isinstance(server, EmbeddedServer)]

    def receiver_reports(self) -> dict[str, tuple[str, ReceiverReport]]:
        """Each receiver's type and health report, by id."""
        return {name: (component_type(name), r.report()) for name, r in self.receivers.items()}

    async def admin_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The admin listener's ASGI application, behind its access control."""
        # Built on first use, so routes registered after __init__ are included.
        if self._admin is None:
            app = create_admin_app(self.exposition, self.readiness, self.admin_routers)
            # A Prometheus exporter's scrape path is configurable: readable like /metrics.
            scrape = tuple(
                RouteAccess("GET", cfg.path, "read")
                for cfg in self.config.exporters.values()
                if isinstance(cfg, PrometheusExporterConfig)
            )
            self._admin = AdminAccess(app, self.auth, self.audit, scrape, self.sessions)
        await self._admin(scope, receive, send)

    def log_files(self) -> list[ManagedFile]:
        """The rotating files it writes: its log, the file exporters' and the audit trail."""
        exporters = ((name, queue.exporter) for name, queue in self.queues.items())
        return managed_files(exporters, audit=self.audit)

    def _telemetry_reader(self) -> TelemetryReader | None:
        """The store exporter's reader (None without one, or before it started)."""
        for queue in self.queues.values():
            reader = getattr(queue.exporter, "reader", None)
            if isinstance(reader, TelemetryReader):
                return reader
        return None

    def _pipelines(self, signal: Signal, receiver: str | None) -> list[Pipeline]:
        """The pipelines of ``signal`` that list ``receiver`` (all of them when None)."""
        listed = self.config.service.pipelines
        return [
            p
            for p in self.pipelines
            if p.signal is signal and (receiver is None or receiver in listed[p.name].receivers)
        ]

    def _routes(self, receiver: str) -> dict[Signal, Router]:
        """The routers of the pipelines that list ``receiver``, per signal."""
        found = {signal: self._pipelines(signal, receiver) for signal in Signal}
        return {signal: Router(signal, p) for signal, p in found.items() if p}

    async def emit(self, batch: Batch, source: str | None = None) -> bool:
        """Feed a batch the gateway produced itself (system metrics, span metrics) into the
        pipelines of its signal that list ``source`` as a receiver (all of them when None).

        Returns False, counting the items as refused for transport ``internal``, when the
        pipelines cannot take it now; internal producers use cumulative temporality, so the
        next batch carries the totals and nothing is lost for good.
        """
        pipelines = self._pipelines(batch.signal, source)
        if not pipelines or not batch.items:
            return False
        try:
            await Router(batch.signal, pipelines).consume(batch)
        except RefusedError as exc:
            counter = self.metrics.receiver_refused
            counter.labels(batch.signal.value, "internal", exc.reason).inc(batch.items)
            return False
        return True

    def readiness(self) -> Readiness:
        """Ready when running and every pipeline can take data."""
        if self.state != "running":
            return Readiness(False, self.state, [f"gateway is {self.state}"])
        reasons = [f"pipeline {p.name} cannot accept data ({why})" for p in self.pipelines
                   if (why := p.refusal()) is not None]  # fmt: skip
        if self.admission.shedding:
            reasons.append(
                f"shedding load: event loop {self.admission.loop_delay:.2f}s behind "
                f"(limit {self.admission.max_loop_delay:.2f}s)"
            )
        return Readiness(not reasons, self.state, reasons)

    async def start(self) -> None:
        """Bind every port, then start exporters, then receivers."""
        self.state = "starting"
        self.sampler.loop_thread = threading.get_native_id()  # /health judges this thread's CPU
        ensure_fd_budget(self.max_connections())
        if self.audit is not None:
            await self.audit.start()
        self.admin_server.bind()
        for receiver in self.receivers.values():
            receiver.bind()
        await self.admin_server.start()
        for queue in self.queues.values():
            await queue.start()
        for processor in self.processors.values():  # periodic work, e.g. span metrics flush
            await processor.start()
        await self._start_slos()
        if self.alerting is not None:
            await self.alerting.start()
        await self.admission.start()
        self._history_task = asyncio.create_task(
            self.system_history.run(self.sampler), name="system-history"
        )
        for receiver in self.receivers.values():
            await receiver.start()
        self.state = "running"
        listening = [e for r in self.receivers.values() for e in r.listening()]
        if listening:  # a supervisor's gateway has none: the supervisor says what runs
            admin = self.config.admin.endpoint
            log.info("otelgate running: %s; admin on %s", ", ".join(listening), admin)

    async def _start_slos(self) -> None:
        """Open the store (when SLOs, alerting or error tracking keep state) and load their
        state from it. With ``store.enabled: false`` alerts and error groups stay in memory."""
        keeps_state = self.alerting is not None or self.errors is not None
        wanted = self.slo_tracker.slos or keeps_state
        if wanted and self.config.store.enabled:
            try:
                self.store = await asyncio.to_thread(open_store, self.config.store)
            except (OSError, sqlite3.Error, RuntimeError) as exc:  # RuntimeError: newer schema
                raise OSError(f"cannot open the store: {exc}") from exc
            self.slo_tracker.store = self.store if self.slo_tracker.slos else None
        elif keeps_state:
            self.store = SqliteStore(MEMORY)
        if self.alerting is not None and self.store is not None:
            self.alerting.history.store = self.store
        await self.slo_tracker.start()
        if self.errors is not None:
            assert self.store is not None
            self.errors.store = ErrorStore(self.store, self.config.errors.samples_per_group)
            await self.errors.start()

    async def _stop_slos(self) -> None:
        """Stop alerting, write the last SLO counts and error groups, close the store."""
        if self.alerting is not None:
            await self.alerting.stop()
        if self.errors is not None:
            await self.errors.stop()
            self.errors.store = None
        try:
            await self.slo_tracker.stop()
        except Exception:
            log.exception("could not write the last SLO counts")
        if self.store is not None:
            if self.alerting is not None:
                self.alerting.history.store = None
            await asyncio.to_thread(self.store.close)
            self.store = None

    async def stop(self, drain_timeout: float | None = None) -> None:
        """Stop receivers, drain exporter queues (``service.shutdown_timeout`` at most), then
        stop the admin listener. A call with ``drain_timeout=0`` during a stop cuts it short."""
        timeout = self.config.service.shutdown_timeout if drain_timeout is None else drain_timeout
        if self.state == "stopped":
            return
        if self.state == "stopping":
            for queue in self.queues.values():
                await queue.shutdown(timeout)
            return
        self.state = "stopping"
        log.info("otelgate stopping: draining exporter queues (up to %.0fs)", timeout)
        await asyncio.gather(*(r.stop() for r in self.receivers.values()))
        for processor in self.processors.values():  # span metrics flush their last counts
            await processor.stop()
        await self._stop_slos()
        await asyncio.gather(*(q.shutdown(timeout) for q in self.queues.values()))
        await self.admission.stop()
        if self._history_task is not None:
            self._history_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._history_task
        await self.admin_server.stop(timeout=2.0)
        if self.audit is not None:
            await self.audit.stop()
        self.state = "stopped"
        log.info("otelgate stopped")
