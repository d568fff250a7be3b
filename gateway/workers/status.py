"""What a worker tells its supervisor every second (picklable, sent over the link)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.metrics_core import Metric

from gateway.health.status import ExporterReport
from gateway.registry import ReceiverReport


@dataclass(slots=True)
class WorkerStatus:
    """One worker's state at one moment."""

    index: int
    pid: int
    state: str  # the worker gateway's state: starting | running | stopping | stopped
    accepted_items: dict[str, int]  # signal -> items accepted since the worker started
    exporters: list[ExporterReport] = field(default_factory=list)  # its own queues and spools
    receivers: dict[str, tuple[str, ReceiverReport]] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)  # its registry, collected
    not_ready: list[str] = field(default_factory=list)  # readiness reasons, empty when ready


@dataclass(slots=True)
class WorkerSlot:
    """The supervisor's record of worker ``index`` (one slot, many processes over time)."""

    index: int
    pid: int | None = None  # None while no process runs in the slot
    state: str = "starting"  # starting | running | restarting | stopping | stopped
    restarts: int = 0  # processes started in this slot after the first
    started_at: float | None = None  # wall clock of the current process's start
    last_status: WorkerStatus | None = None  # the current process's last report
    last_status_at: float | None = None  # wall clock
