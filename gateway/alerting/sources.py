"""What the rules look at, gathered from the running gateway once per evaluation."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from prometheus_client.metrics_core import Metric

from exporters.queue import ExporterQueue
from gateway.alerting.evaluation import ErrorGroupSource, Observations
from gateway.alerting.log_counter import LogCounter
from gateway.health.services import ServiceHealthTracker
from gateway.health.status import ExporterReport, exporter_report
from gateway.health.system import SystemSampler
from gateway.logfiles.managed import ManagedFile
from gateway.logfiles.status import FileStatus
from gateway.slo.tracker import SloTracker

LOSS_HISTORY_SECONDS = 24 * 3600.0


class Collects(Protocol):
    """A counter, or any collector of counter families (the merged ones of worker processes)."""

    def collect(self) -> Iterable[Metric]: ...


class LossHistory:
    """Items each exporter lost (dropped or failed for good), sampled at every evaluation,
    so a rule can ask how many were lost within a window. The counters start at zero with
    the process, so a window longer than the history counts from zero."""

    def __init__(self, counters: Sequence[Collects], clock: Callable[[], float] = time.time):
        self.counters = counters
        self.clock = clock
        self._samples: dict[str, deque[tuple[float, float]]] = {}

    def sample(self) -> None:
        """Record every exporter's total now."""
        totals: dict[str, float] = {}
        for counter in self.counters:
            for metric in counter.collect():
                for s in metric.samples:
                    if s.name.endswith("_total"):
                        name = s.labels.get("exporter", "")
                        totals[name] = totals.get(name, 0.0) + s.value
        now = self.clock()
        for name, total in totals.items():
            samples = self._samples.setdefault(name, deque())
            samples.append((now, total))
            while len(samples) > 1 and samples[1][0] <= now - LOSS_HISTORY_SECONDS:
                samples.popleft()

    def increase(self, exporter: str) -> Callable[[float], float]:
        """A function: window seconds -> items lost by ``exporter`` within it."""

        def within(window: float) -> float:
            samples = self._samples.get(exporter)
            if not samples:
                return 0.0
            start = self.clock() - window
            base = 0.0
            for at, total in samples:
                if at > start:
                    break
                base = total
            return samples[-1][1] - base

        return within


class GatewaySources:
    """Builds :class:`Observations` from the gateway's trackers, sampler and queues."""

    def __init__(
        self,
        services: ServiceHealthTracker,
        sampler: SystemSampler,
        queues: Mapping[str, ExporterQueue],
        losses: LossHistory,
        slos: SloTracker | None,
        logs: LogCounter | None,
        watched_paths: Sequence[str],
        max_sample_age: float = 5.0,
        error_groups: ErrorGroupSource | None = None,
        log_files: Callable[[], Sequence[ManagedFile]] = list,
        exporter_reports: Callable[[], list[ExporterReport]] | None = None,
    ) -> None:
        self.services = services
        self.sampler = sampler
        self.queues = queues
        self.losses = losses
        self.slos = slos
        self.logs = logs
        self.watched_paths = list(watched_paths)
        self.max_sample_age = max_sample_age
        self.error_groups = error_groups
        self.log_files = log_files
        #: The exporters' reports (with worker processes: totals over every process).
        self.exporter_reports = exporter_reports or (
            lambda: [exporter_report(q) for q in self.queues.values()]
        )

    async def observe(self) -> Observations:
        """Everything the rules may read, now."""
        system = await asyncio.to_thread(self.sampler.fresh, self.max_sample_age)
        files = await asyncio.to_thread(self._log_file_statuses)
        self.losses.sample()
        slo_alerts = {}
        if self.slos is not None:
            slo_alerts = {name: self.slos.evaluate(name).severities for name in self.slos.slos}
        return Observations(
            services=self.services.reports(),
            system=system,
            exporters=self.exporter_reports(),
            lost_items={name: self.losses.increase(name) for name in self.queues},
            shedding=frozenset(
                name
                for name, queue in self.queues.items()
                if getattr(queue.exporter, "sheds_by_design", False)
            ),
            slo_alerts=slo_alerts,
            log_counts=self.logs.counts if self.logs is not None else None,
            error_groups=self.error_groups,
            watched_paths=self.watched_paths,
            log_files=files,
        )

    def _log_file_statuses(self) -> list[tuple[str, FileStatus]]:
        return [(m.owner, m.file.status()) for m in self.log_files()]
