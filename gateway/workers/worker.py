"""One worker process: the OTLP receivers on the shared ports, the pipelines workers run
(:func:`gateway.workers.roles.worker_pipeline`) with their own queues and spool partition, and
the relay of every accepted batch to the supervisor.

Started by :mod:`gateway.workers.supervisor` as ``python -m gateway.workers.worker`` with its
index, the worker count and the link's file descriptor in ``OTELGATE_WORKER_*`` variables; the
configuration (with the OTLP endpoints the supervisor reserved) is the link's first frame.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from exporters.queue import ExporterQueue
from exporters.sending import queue_around
from exporters.settings import ExporterSettings
from exporters.spool import worker_partition
from gateway.components import REGISTRY
from gateway.config.model import Config
from gateway.health.services import ServiceHealthTracker
from gateway.health.status import exporter_report
from gateway.health.system import SystemSampler
from gateway.listeners.fd_limit import ensure_fd_budget
from gateway.listeners.http_guard import ConnectionGuard, HttpLimits
from gateway.listeners.settings import HttpListenerSettings
from gateway.otlp.batch import Batch, Signal
from gateway.pipeline import Pipeline, Router
from gateway.receivers.admission import Admission
from gateway.registry import Host, component_type
from gateway.security.auth import Authenticator
from gateway.selfmetrics import GatewayMetrics
from gateway.workers.link import (
    CONFIG,
    HEALTH,
    NEEDS,
    STATUS,
    LinkWriter,
    load_object,
    read_frames,
    read_object,
)  # fmt: skip
from gateway.workers.relay import AuditRelay, LogRelayHandler, RelayNeeds, RelayPipeline
from gateway.workers.roles import worker_exporters, worker_pipeline, worker_receiver
from gateway.workers.status import WorkerStatus

log = logging.getLogger("otelgate.worker")
STATUS_INTERVAL = 1.0  # seconds between two status reports
HEALTH_INTERVAL = 0.25  # seconds between two health deltas


class WorkerGateway:
    """The receivers, forwarding pipelines and relay of worker ``index`` of ``count``."""

    def __init__(
        self,
        config: Config,
        index: int,
        count: int,
        link: LinkWriter,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.config = config
        self.index = index
        self.link = link
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = GatewayMetrics(self.registry)
        self.admission = Admission.of(self.metrics, config.service.admission)
        self.state = "created"
        audit = AuditRelay(link) if config.audit.enabled else None
        self.auth = Authenticator(config.auth, self.registry, audit=audit)
        # Service health is counted here, per item (by the relay stage, where observers would
        # see the batch), and merged by the supervisor every HEALTH_INTERVAL.
        self.health = ServiceHealthTracker(config.health).unbounded()
        self.needs = RelayNeeds()  # what the supervisor's observers need: it says so
        self.relayed = Counter(
            "otelgate_worker_relayed_items",
            "Accepted items a worker sent on to the supervisor (its pipelines and observers).",
            ["signal"],
            registry=self.registry,
        )
        host = Host(
            metrics=self.metrics, emit=self._emit, routes=self._routes, admission=self.admission,
            sampler=SystemSampler([]), guard=self._guard, store=config.store, auth=self.auth,
            reuse_port=True,
        )  # fmt: skip
        self.queues: dict[str, ExporterQueue] = {}
        for name in worker_exporters(config):
            cfg = config.exporters[name]
            assert isinstance(cfg, ExporterSettings)
            exporter = REGISTRY.exporter(name, cfg, host)
            self.queues[name] = queue_around(
                name, exporter, cfg, self.metrics, partition=worker_partition(index), workers=count
            )
        self.pipelines: list[Pipeline] = []
        self.processors: dict[str, Any] = {}
        for name, pc in config.service.pipelines.items():
            if not worker_pipeline(config, name):
                continue  # the supervisor runs it, on what the workers relay
            for p in pc.processors:
                if p not in self.processors:
                    self.processors[p] = REGISTRY.processor(p, config.processors[p], host)
            steps = [self.processors[p] for p in pc.processors]
            queues = [self.queues[e] for e in pc.exporters]
            self.pipelines.append(Pipeline(name, Signal(component_type(name)), steps, queues))
        self.receivers = {
            name: REGISTRY.receiver(name, cfg, host)
            for name, cfg in config.receivers.items()
            if worker_receiver(name)
        }
        self._status_task: asyncio.Task[None] | None = None

    def _guard(self, listener: str, settings: HttpListenerSettings) -> ConnectionGuard:
        return ConnectionGuard(listener, HttpLimits.of(settings), self.metrics.connections)

    async def _emit(self, batch: Batch, source: str | None = None) -> bool:
        return False  # what the gateway produces itself is produced by the supervisor

    def _routes(self, receiver: str) -> dict[Signal, Router]:
        """Per signal: this worker's pipelines, then the relay stage, which sees the batch the
        observers would see in one process (changed in place by the only pipeline, else as
        received) once every queue here took it. Copies as one process makes them: when the
        receiver feeds several pipelines of the signal, wherever they run."""
        listed = self.config.service.pipelines
        routes: dict[Signal, Router] = {}
        for kind in Signal:
            fed = {
                name
                for name, pc in listed.items()
                if component_type(name) == kind.value and receiver in pc.receivers
            }
            if not fed:
                continue
            mine = [p for p in self.pipelines if p.name in fed]
            # The only pipeline runs in the supervisor: observers see what it made of the
            # batch, so the supervisor counts service health after it.
            health_here = len(fed) > 1 or bool(mine)
            relay = RelayPipeline(
                self.link, receiver, kind, self.needs, central=len(mine) < len(fed),
                health=self.health if health_here else None, relayed=self.relayed,
            )  # fmt: skip
            routes[kind] = Router(kind, [*mine, relay], shared=len(fed) > 1)
        return routes

    def not_ready(self) -> list[str]:
        """Why this worker cannot take data now (empty when it can)."""
        if self.state != "running":
            return [f"worker {self.index} is {self.state}"]
        reasons = [f"pipeline {p.name} cannot accept data ({why})" for p in self.pipelines
                   if (why := p.refusal()) is not None]  # fmt: skip
        if self.link.closed:
            reasons.append("the link to the supervisor is closed")
        return reasons

    def status(self, with_metrics: bool = True) -> WorkerStatus:
        """What the supervisor shows for this worker now."""
        accepted = {s.value: 0 for s in Signal}
        for metric in self.metrics.receiver_accepted.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    accepted[sample.labels["signal"]] += int(sample.value)
        return WorkerStatus(
            index=self.index,
            pid=os.getpid(),
            state=self.state,
            accepted_items=accepted,
            exporters=[exporter_report(q) for q in self.queues.values()],
            receivers={n: (component_type(n), r.report()) for n, r in self.receivers.items()},
            metrics=list(self.registry.collect()) if with_metrics else [],
            not_ready=self.not_ready(),
        )

    def report(self) -> None:
        """Send the status now."""
        self.link.send_object(STATUS, self.status())

    def send_health(self) -> None:
        """Send what the health tracker counted since the last time (nothing when idle)."""
        delta = self.health.drain()
        if delta:
            self.link.send_object(HEALTH, delta)

    async def _report_loop(self) -> None:
        ticks = round(STATUS_INTERVAL / HEALTH_INTERVAL)
        while True:
            self.report()
            for _ in range(ticks):
                await asyncio.sleep(HEALTH_INTERVAL)
                self.send_health()

    async def start(self) -> None:
        """Bind the shared ports, start the queues, then the receivers."""
        self.state = "starting"
        ensure_fd_budget(sum(r.max_connections() for r in self.receivers.values()))
        for receiver in self.receivers.values():
            receiver.bind()
        for queue in self.queues.values():
            await queue.start()
        for processor in self.processors.values():
            await processor.start()
        await self.admission.start()
        for receiver in self.receivers.values():
            await receiver.start()
        self.state = "running"
        self._status_task = asyncio.create_task(self._report_loop(), name="worker-status")

    async def stop(self, drain_timeout: float | None = None) -> None:
        """Stop the receivers, drain the queues, send the last status and close the link."""
        timeout = self.config.service.shutdown_timeout if drain_timeout is None else drain_timeout
        if self.state in ("stopping", "stopped"):
            for queue in self.queues.values():  # a second call cuts the drain short
                await queue.shutdown(timeout)
            return
        self.state = "stopping"
        await asyncio.gather(*(r.stop() for r in self.receivers.values()))
        for processor in self.processors.values():
            await processor.stop()
        await asyncio.gather(*(q.shutdown(timeout) for q in self.queues.values()))
        await self.admission.stop()
        if self._status_task is not None:
            self._status_task.cancel()
        self.state = "stopped"
        self.send_health()
        self.report()
        await self.link.close(timeout=max(timeout, 5.0))


async def serve_worker(index: int, count: int, fd: int) -> int:
    """Run worker ``index`` until SIGTERM/SIGINT or until the supervisor goes away."""
    link, reader = await LinkWriter.connect(fd)
    config: Config = await read_object(reader, CONFIG)
    root = logging.getLogger()
    root.handlers[:] = [LogRelayHandler(link, f"worker {index}")]
    root.setLevel(config.logging.level.upper())
    worker = WorkerGateway(config, index, count, link)
    stop = asyncio.Event()
    hurry = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set() and sig is signal.SIGINT:
            hurry.set()
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    loop.add_signal_handler(signal.SIGHUP, lambda: None)  # the supervisor replaces workers
    orphaned = asyncio.create_task(_listen(reader, worker, stop))
    try:
        await worker.start()
    except OSError as exc:
        log.error("%s", exc)
        worker.report()
        await worker.stop(drain_timeout=0.0)
        return 1
    log.info("running (pid %d)", os.getpid())
    await stop.wait()
    stopping = asyncio.create_task(worker.stop())
    hurried = asyncio.create_task(hurry.wait())
    done, _ = await asyncio.wait({stopping, hurried}, return_when=asyncio.FIRST_COMPLETED)
    if stopping not in done:
        await worker.stop(drain_timeout=0.0)
        await stopping
    hurried.cancel()
    orphaned.cancel()
    return 0


async def _listen(reader: asyncio.StreamReader, worker: WorkerGateway, stop: asyncio.Event) -> None:
    """What the supervisor says (which batches it needs), until EOF: then it is gone, and
    the worker stops (drains)."""
    async for kind, payload in read_frames(reader):
        if kind == NEEDS:
            worker.needs.by_signal = load_object(payload)
    if not stop.is_set():
        log.warning("the supervisor is gone: stopping")
        stop.set()


def main() -> int:
    """Entry point of a worker process (the supervisor sets the environment)."""
    from gateway.cli import run_async

    env = os.environ
    index = int(env["OTELGATE_WORKER_INDEX"])
    count = int(env["OTELGATE_WORKER_COUNT"])
    fd = int(env["OTELGATE_WORKER_LINK_FD"])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)  # until the link is up
    threading.current_thread().name = f"worker-{index}"
    return run_async(serve_worker(index, count, fd))


if __name__ == "__main__":
    sys.exit(main())
