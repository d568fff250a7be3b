"""The supervisor's gateway: everything except the worker receivers, fed by relayed batches.

A relayed batch goes through the pipelines the workers do not run (:mod:`gateway.workers.roles`),
then to every observer, as :mod:`gateway.receivers.ingest` does after a client's request: so
health, SLOs, error groups, alert counts, span metrics, the store and the Prometheus exposition
are what one process would have for the same input.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Sequence

from prometheus_client.metrics_core import Metric

from exporters.spool import SUPERVISOR_PARTITION
from gateway.alerting.sources import LossHistory
from gateway.api.admin import Readiness
from gateway.config.model import Config
from gateway.errors import BackpressureError, RefusedError
from gateway.health.status import ExporterReport, exporter_report
from gateway.observers import notify
from gateway.otlp.batch import Batch, Signal
from gateway.pipeline import Router
from gateway.service import Gateway
from gateway.workers.link import COUNT_HEALTH, EXCEPTIONS_ONLY
from gateway.workers.metrics_merge import MergedMetrics
from gateway.workers.relay import Need
from gateway.workers.roles import worker_pipeline, worker_receiver
from gateway.workers.status import WorkerSlot
from gateway.workers.view import combine_exporters

log = logging.getLogger("otelgate.supervisor")
LOSS_FAMILIES = frozenset({"otelgate_exporter_dropped_items", "otelgate_exporter_failed_items"})
WARN_EVERY = 10.0  # seconds between two warnings about relayed data dropped
RETRY_INTERVAL = 0.05  # seconds between two tries of a relayed batch a full queue refused


class _Families:
    """The merged families of ``names`` (a collector, for the alert rules' loss history)."""

    def __init__(self, merged: MergedMetrics, names: frozenset[str]) -> None:
        self.merged = merged
        self.names = names

    def collect(self) -> Iterator[Metric]:
        return (family for family in self.merged.collect() if family.name in self.names)


class CentralGateway(Gateway):
    """A gateway without the worker receivers, with :meth:`relay_in` and a merged view."""

    def __init__(
        self,
        config: Config,
        slots: Callable[[], Sequence[WorkerSlot]],
        reload_config: Callable[[], Config] | None = None,
    ) -> None:
        super().__init__(
            config, reload_config=reload_config, spool_partition=SUPERVISOR_PARTITION,
            workers=len(slots()),
        )  # fmt: skip
        self.receivers = {n: r for n, r in self.receivers.items() if not worker_receiver(n)}
        self.slots = slots
        self.merged_metrics = MergedMetrics(self.registry, slots)
        self.exposition = self.merged_metrics
        self.health_api.worker_slots = slots
        self.metrics.admission_max_inflight_bytes.set(0)  # no client sends here: no budget
        if self.alerting is not None and self.alerting.sources is not None:
            # Alert rules on exporters read every process's queues and losses, like /health.
            self.alerting.sources.exporter_reports = self._exporter_totals
            losses = _Families(self.merged_metrics, LOSS_FAMILIES)
            self.alerting.sources.losses = LossHistory([losses])
        self._central: dict[str, dict[Signal, Router]] = {}
        self._warned = 0.0

    def _exporter_totals(self) -> list[ExporterReport]:
        """Each exporter's report over the supervisor and every worker."""
        own = [exporter_report(q) for q in self.queues.values()]
        return [total for total, _ in combine_exporters(own, self.slots())]

    def _central_routes(self, receiver: str) -> dict[Signal, Router]:
        """Per signal, the pipelines listing ``receiver`` that the workers do not run."""
        routes = self._central.get(receiver)
        if routes is None:
            routes = {}
            for signal in Signal:
                full = self._pipelines(signal, receiver)
                here = [p for p in full if not worker_pipeline(self.config, p.name)]
                if here:  # copies as one process makes them: by the full pipeline count
                    routes[signal] = Router(signal, here, shared=len(full) > 1)
            self._central[receiver] = routes
        return routes

    async def relay_in(self, receiver: str, batch: Batch, flags: int = 0) -> None:
        """A batch a worker accepted from ``receiver``: the supervisor's pipelines, then the
        observers. While a queue here is full this waits (the worker's relay then fills and
        the worker refuses new requests, retryably): the client was answered already."""
        if flags & EXCEPTIONS_ONLY:  # only what error tracking reads, for it alone
            if self.errors is not None:
                notify([self.errors.tracker], batch)
            return
        router = self._central_routes(receiver).get(batch.signal)
        while router is not None:
            try:
                await router.consume(batch)
                break
            except BackpressureError as exc:
                if self.state == "running":
                    await asyncio.sleep(RETRY_INTERVAL)
                    continue
                self._dropped(receiver, batch, exc)
            except RefusedError as exc:
                self._dropped(receiver, batch, exc)
            break
        counted = bool(flags & COUNT_HEALTH)  # else the worker counted its service health
        notify([o for o in self.observers if counted or o is not self.health], batch)

    def _dropped(self, receiver: str, batch: Batch, exc: RefusedError) -> None:
        """A relayed batch no queue here can take (shutting down): counted and logged."""
        counter = self.metrics.receiver_refused
        counter.labels(batch.signal.value, "relay", exc.reason).inc(batch.items)
        now = time.monotonic()
        if now - self._warned > WARN_EVERY:
            self._warned = now
            log.warning("relayed %s from %s dropped: %s", batch, receiver, exc)

    def relay_needs(self) -> dict[Signal, Need]:
        """Per signal, which batches the observers here need from the workers (service
        health is counted in the workers and merged: it needs none)."""
        counter = self.alerting.log_counter if self.alerting is not None else None
        log_rules = counter is not None and counter.active
        errors = "exceptions" if self.errors is not None else "none"
        return {
            Signal.TRACES: "all" if self.slo_tracker.counts(Signal.TRACES) else errors,
            Signal.METRICS: "all" if self.slo_tracker.counts(Signal.METRICS) else "none",
            Signal.LOGS: "all" if log_rules else errors,
        }

    def readiness(self) -> Readiness:
        """Ready when this process is and at least one running worker can take data."""
        own = super().readiness()
        if not own.ready:
            return own
        running = [s for s in self.slots() if s.state == "running"]
        if not running:
            return Readiness(False, self.state, ["no worker process is running"])
        blocked = [s.last_status.not_ready for s in running if s.last_status is not None]
        if len(blocked) == len(running) and all(blocked):
            return Readiness(False, self.state, [r for reasons in blocked for r in reasons])
        return own
