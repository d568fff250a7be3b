"""The running gateway: builds pipelines from config, starts exporters then receivers, and
stops in reverse (receivers first, then the exporter queues are drained)."""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry
from starlette.types import Receive, Scope, Send

from exporters.queue import ExporterQueue
from gateway.api.admin import Readiness, create_admin_app
from gateway.batch import Batch, Signal
from gateway.components import build_processor, build_queue
from gateway.config import Config, component_type
from gateway.errors import RefusedError
from gateway.http_server import EmbeddedServer
from gateway.observers import Observer
from gateway.pipeline import Pipeline, Router
from gateway.receivers.ingest import Ingest
from gateway.receivers.otlp_grpc import OtlpGrpcReceiver
from gateway.receivers.otlp_http import OtlpHttpReceiver
from gateway.selfmetrics import GatewayMetrics

log = logging.getLogger("otelgate")

State = Literal["created", "starting", "running", "stopping", "stopped"]
MIB = 1024 * 1024


class Gateway:
    """All receivers, pipelines and exporters of one configuration."""

    def __init__(self, config: Config, registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = GatewayMetrics(self.registry)
        self.state: State = "created"
        self.observers: list[Observer] = []
        self._admin: FastAPI | None = None
        self.queues: dict[str, ExporterQueue] = {
            name: build_queue(name, cfg, self.metrics) for name, cfg in config.exporters.items()
        }
        processors = {name: build_processor(name, cfg) for name, cfg in config.processors.items()}
        self.pipelines = [
            Pipeline(
                name,
                Signal(component_type(name)),
                [processors[p] for p in cfg.processors],
                [self.queues[e] for e in cfg.exporters],
            )
            for name, cfg in config.service.pipelines.items()
        ]
        self.grpc_receivers: list[OtlpGrpcReceiver] = []
        self.http_servers: list[EmbeddedServer] = []
        self._build_receivers()
        # Components add their admin routes (health, SLO, ...) here before start().
        self.admin_routers: list[APIRouter] = []
        self.admin_server = EmbeddedServer("admin", self._admin_app, config.admin.endpoint)

    async def _admin_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Built on first use, so routes registered after __init__ are included.
        if self._admin is None:
            self._admin = create_admin_app(self.registry, self.readiness, self.admin_routers)
        await self._admin(scope, receive, send)

    def _build_receivers(self) -> None:
        for name, receiver in self.config.receivers.items():
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
                ingest = Ingest("grpc", routers, self.metrics, self.observers)
                size = grpc_cfg.max_recv_msg_size_mib * MIB
                self.grpc_receivers.append(OtlpGrpcReceiver(ingest, grpc_cfg.endpoint, size))
            if http_cfg is not None:
                ingest = Ingest("http", routers, self.metrics, self.observers)
                http = OtlpHttpReceiver(
                    ingest, http_cfg.max_request_body_size, http_cfg.max_decompressed_size
                )
                self.http_servers.append(
                    EmbeddedServer(f"{name}/http", http.app(), http_cfg.endpoint)
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
        reasons = [f"pipeline {p.name} cannot accept data (queue full)" for p in self.pipelines
                   if not p.accepting]  # fmt: skip
        return Readiness(not reasons, self.state, reasons)

    async def start(self) -> None:
        """Bind every port, then start exporters, then receivers."""
        self.state = "starting"
        for server in [self.admin_server, *self.http_servers]:
            server.bind()
        await self.admin_server.start()
        for queue in self.queues.values():
            await queue.start()
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
        await asyncio.gather(*(q.shutdown(timeout) for q in self.queues.values()))
        await self.admin_server.stop(timeout=2.0)
        self.state = "stopped"
        log.info("otelgate stopped")
