"""The running gateway: builds pipelines from config, starts exporters then receivers, and
stops in reverse (receivers first, then the exporter queues are drained)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Literal

from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry
from starlette.types import Receive, Scope, Send

from exporters.queue import ExporterQueue
from gateway.admission import Admission
from gateway.api.admin import Readiness, create_admin_app
from gateway.api.health import HealthService, health_router
from gateway.api.slo import SloCollector, create_slo_router
from gateway.batch import Batch, Signal
from gateway.components import build_processor, build_queue
from gateway.config import Config, component_type
from gateway.config_listeners import HttpListenerSettings
from gateway.config_models import HostMetricsReceiverConfig, OtlpReceiverConfig
from gateway.errors import RefusedError
from gateway.fd_limit import ensure_fd_budget
from gateway.http_guard import ConnectionGuard, HttpLimits
from gateway.http_server import EmbeddedServer
from gateway.observers import Observer
from gateway.pipeline import Pipeline, Router
from gateway.receivers.grpc_limits import server_options
from gateway.receivers.ingest import Ingest
from gateway.receivers.otlp_grpc import OtlpGrpcReceiver
from gateway.receivers.otlp_http import OtlpHttpReceiver
from gateway.selfmetrics import GatewayMetrics
from gateway.signals.health import ServiceHealthTracker
from gateway.signals.hostmetrics import HostMetricsReceiver
from gateway.signals.slo_tracker import SloTracker
from gateway.signals.system import SystemSampler, data_paths
from gateway.store import SqliteStore, open_store

log = logging.getLogger("otelgate")

State = Literal["created", "starting", "running", "stopping", "stopped"]
MIB = 1024 * 1024


class Gateway:
    """All receivers, pipelines and exporters of one configuration."""

    def __init__(self, config: Config, registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = GatewayMetrics(self.registry)
        limits = config.service.admission
        self.admission = Admission(
            self.metrics,
            max_inflight_bytes=limits.max_inflight_bytes,
            max_loop_delay=limits.max_loop_delay,
            retry_after=limits.retry_after,
        )
        self.state: State = "created"
        self.observers: list[Observer] = []
        self._admin: FastAPI | None = None
        self.queues: dict[str, ExporterQueue] = {
            name: build_queue(name, cfg, self.metrics) for name, cfg in config.exporters.items()
        }
        self.processors = {
            name: build_processor(name, cfg, emit=self.emit, metrics=self.metrics)
            for name, cfg in config.processors.items()
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
        self.grpc_receivers: list[OtlpGrpcReceiver] = []
        self.http_servers: list[EmbeddedServer] = []
        self._build_receivers()
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
        # Host metrics, service and component health, /health (gateway.signals).
        spools = [getattr(q, "spool", None) for q in self.queues.values()]
        watched = [*data_paths(config), *config.health.system.paths]
        self.sampler = SystemSampler(watched + [str(s.directory) for s in spools if s is not None])
        self.hostmetrics = [
            HostMetricsReceiver(name, self.sampler, cfg.collection_interval, self.emit)
            for name, cfg in config.receivers.items()
            if isinstance(cfg, HostMetricsReceiverConfig)
        ]
        self.health = ServiceHealthTracker(config.health)
        self.observers.append(self.health)
        self.health_api = HealthService(self, self.health, self.sampler, self.hostmetrics)
        self.admin_routers.append(health_router(self.health_api))
        self.admin_server = EmbeddedServer(
            "admin", self._admin_app, config.admin.endpoint, self._guard("admin", config.admin)
        )

    def _guard(self, listener: str, settings: HttpListenerSettings) -> ConnectionGuard:
        limits = HttpLimits(
            max_connections=settings.max_connections,
            read_header_timeout=settings.read_header_timeout,
            read_body_timeout=settings.read_body_timeout,
            idle_timeout=settings.idle_timeout,
            max_request_header_size=settings.max_request_header_size,
        )
        return ConnectionGuard(listener, limits, self.metrics.connections)

    def max_connections(self) -> int:
        """The listeners' connection caps added up."""
        total = self.config.admin.max_connections
        for receiver in self.config.receivers.values():
            if isinstance(receiver, OtlpReceiverConfig):
                for protocol in (receiver.protocols.grpc, receiver.protocols.http):
                    total += protocol.max_connections if protocol is not None else 0
        return total

    async def _admin_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Built on first use, so routes registered after __init__ are included.
        if self._admin is None:
            self._admin = create_admin_app(self.registry, self.readiness, self.admin_routers)
        await self._admin(scope, receive, send)

    def _build_receivers(self) -> None:
        for name, receiver in self.config.receivers.items():
            if not isinstance(receiver, OtlpReceiverConfig):
                continue  # internal receivers (hostmetrics) feed pipelines through emit()
            routers = {}
            for signal in Signal:
                pipelines = [
                    p
                    for p in self.pipelines
                    if p.signal is signal
                    and name in self.config.service.pipelines[p.name].receivers
                ]
                if pipelines:
                    routers[signal] = Router(signal, pipelines)
            grpc_cfg, http_cfg = receiver.protocols.grpc, receiver.protocols.http
            if grpc_cfg is not None:
                ingest = Ingest("grpc", routers, self.metrics, self.observers, self.admission)
                size = grpc_cfg.max_recv_msg_size_mib * MIB
                self.grpc_receivers.append(
                    OtlpGrpcReceiver(
                        ingest,
                        grpc_cfg.endpoint,
                        size,
                        name=f"{name}/grpc",
                        options=server_options(grpc_cfg),
                        metrics=self.metrics.connections,
                        max_connections=grpc_cfg.max_connections,
                    )
                )
            if http_cfg is not None:
                ingest = Ingest("http", routers, self.metrics, self.observers, self.admission)
                http = OtlpHttpReceiver(
                    ingest, http_cfg.max_request_body_size, http_cfg.max_decompressed_size
                )
                listener = f"{name}/http"
                guard = self._guard(listener, http_cfg)
                self.http_servers.append(
                    EmbeddedServer(listener, http.app(), http_cfg.endpoint, guard)
                )

    async def emit(self, batch: Batch, source: str | None = None) -> bool:
        """Feed a batch the gateway produced itself (system metrics, span metrics) into the
        pipelines of its signal that list ``source`` as a receiver (all of them when None).

        Returns False, counting the items as refused for transport ``internal``, when the
        pipelines cannot take it now; internal producers use cumulative temporality, so the
        next batch carries the totals and nothing is lost for good.
        """
        pipelines = [
            p
            for p in self.pipelines
            if p.signal is batch.signal
            and (source is None or source in self.config.service.pipelines[p.name].receivers)
        ]
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
        ensure_fd_budget(self.max_connections())
        for server in [self.admin_server, *self.http_servers]:
            server.bind()
        await self.admin_server.start()
        for queue in self.queues.values():
            await queue.start()
        for processor in self.processors.values():  # periodic work, e.g. span metrics flush
            start = getattr(processor, "start", None)
            if start is not None:
                await start()
        for internal in self.hostmetrics:
            await internal.start()
        await self._start_slos()
        await self.admission.start()
        for grpc_receiver in self.grpc_receivers:
            await grpc_receiver.start()
        for server in self.http_servers:
            await server.start()
        self.state = "running"
        log.info(
            "otelgate running: %s; admin on %s",
            ", ".join(
                [f"OTLP/gRPC on {r.endpoint}" for r in self.grpc_receivers]
                + [f"OTLP/HTTP on {s.endpoint}" for s in self.http_servers]
            ),
            self.config.admin.endpoint,
        )

    async def _start_slos(self) -> None:
        """Open the store (when there are SLOs to keep) and load the SLO state from it."""
        if self.slo_tracker.slos and self.config.store.enabled:
            try:
                self.store = await asyncio.to_thread(open_store, self.config.store)
            except (OSError, sqlite3.Error, RuntimeError) as exc:  # RuntimeError: newer schema
                raise OSError(f"cannot open the store: {exc}") from exc
            self.slo_tracker.store = self.store
        await self.slo_tracker.start()

    async def _stop_slos(self) -> None:
        """Write the last SLO counts and close the store."""
        try:
            await self.slo_tracker.stop()
        except Exception:
            log.exception("could not write the last SLO counts")
        if self.store is not None:
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
        await asyncio.gather(
            *(r.stop(grace=2.0) for r in self.grpc_receivers),
            *(s.stop(timeout=2.0) for s in self.http_servers),
        )
        for internal in self.hostmetrics:
            await internal.stop()
        for processor in self.processors.values():  # span metrics flush their last counts
            stop = getattr(processor, "stop", None)
            if stop is not None:
                await stop()
        await self._stop_slos()
        await asyncio.gather(*(q.shutdown(timeout) for q in self.queues.values()))
        await self.admission.stop()
        await self.admin_server.stop(timeout=2.0)
        self.state = "stopped"
        log.info("otelgate stopped")
