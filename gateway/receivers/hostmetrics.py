"""The ``hostmetrics`` receiver: samples host and gateway-process usage on a timer and feeds
the result into the metrics pipelines that list the receiver.

Sampling runs in a worker thread (a stuck network filesystem must not stall the event loop).
Everything is a gauge or a cumulative sum, so a sample the pipelines refuse loses nothing: the
next one carries the totals.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Literal

from pydantic import (
    Field,
)

from gateway.config.values import (
    Duration,
    StrictModel,
)
from gateway.health.system import SystemSampler, to_request
from gateway.otlp.batch import Batch, Signal
from gateway.pipeline import Emit
from gateway.registry import ComponentFactory, Host, ReceiverReport
from gateway.tasks import cancel_and_wait

log = logging.getLogger("otelgate.hostmetrics")


@dataclass(slots=True)
class ReceiverStatus:
    """What ``/health`` says about an internal receiver."""

    state: Literal["ok", "failed"] = "ok"
    last_error: str | None = None
    last_run_at: float | None = None  # wall clock, seconds


class HostMetricsReceiver:
    """One ``hostmetrics`` receiver: sample every ``interval`` seconds and emit."""

    type = "hostmetrics"

    def __init__(self, name: str, sampler: SystemSampler, interval: float, emit: Emit) -> None:
        self.name = name
        self.sampler = sampler
        self.interval = interval
        self.status = ReceiverStatus()
        self._emit = emit
        self._task: asyncio.Task[None] | None = None

    def bind(self) -> None:
        """Nothing to bind: the receiver listens on no port."""

    def max_connections(self) -> int:
        """None: the receiver listens on no port."""
        return 0

    def listening(self) -> list[str]:
        """Nothing: the receiver listens on no port."""
        return []

    def report(self) -> ReceiverReport:
        """The last sample's outcome; ``stopped`` when not running."""
        status = self.status.state if self._task is not None else "stopped"
        return ReceiverReport(status, [], self.status.last_error, self.status.last_run_at)

    async def start(self) -> None:
        """Start the sampling loop (first sample after one interval)."""
        self._task = asyncio.create_task(self._run(), name=f"receiver:{self.name}")

    async def stop(self) -> None:
        """Stop the loop; a sample being taken is abandoned."""
        await cancel_and_wait(self._task)
        self._task = None

    async def collect(self) -> bool:
        """Sample once and emit; False when sampling failed or the pipelines refused."""
        try:
            snapshot = await asyncio.to_thread(self.sampler.sample)
            request = to_request(snapshot, self.sampler.started_ns, self.sampler.boot_ns)
        except Exception as exc:  # psutil raises OS-specific errors; keep the loop alive
            log.warning("receiver %s: sampling failed: %s", self.name, exc)
            self.status.state, self.status.last_error = "failed", f"sampling failed: {exc}"
            return False
        self.status.state, self.status.last_error = "ok", None
        self.status.last_run_at = snapshot.at
        return await self._emit(Batch.from_request(Signal.METRICS, request), self.name)

    async def _run(self) -> None:
        next_at = time.monotonic() + self.interval
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            # Keep the schedule, but never try to catch up on missed ticks.
            next_at = max(next_at + self.interval, time.monotonic())
            try:
                await self.collect()
            except Exception:
                log.exception("receiver %s: emitting host metrics failed", self.name)


class HostMetricsReceiverConfig(StrictModel):
    """The ``hostmetrics`` receiver: host and gateway-process usage as OTLP metrics."""

    collection_interval: Duration = Field(default=10.0, gt=0)


def create_hostmetrics(
    name: str, config: HostMetricsReceiverConfig, host: Host
) -> HostMetricsReceiver:
    """The receiver of a ``hostmetrics`` entry, sampling with the gateway's sampler."""
    if host.sampler is None:
        raise ValueError("the hostmetrics receiver needs the host's system sampler")
    return HostMetricsReceiver(name, host.sampler, config.collection_interval, host.emit)


FACTORY = ComponentFactory(
    kind="receiver",
    type_name="hostmetrics",
    config=HostMetricsReceiverConfig,
    signals=frozenset({Signal.METRICS}),
    create=create_hostmetrics,
)
