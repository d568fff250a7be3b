"""Gateway-wide admission control: a budget for request bytes in flight, and load shedding.

Every OTLP request holds a :class:`Ticket` from the moment its body starts to arrive until it is
answered: its body bytes, then also its decompressed bytes. When taking a request would put the
total over ``max_inflight_bytes`` it is refused with 503 + ``Retry-After`` (gRPC UNAVAILABLE
with ``RetryInfo``), the memory limiter of the OpenTelemetry Collector applied where memory is
actually taken. A request is always admitted when nothing else is in flight, so a budget below
the largest allowed request still lets it through one at a time.

Load shedding: a task measures how late the event loop wakes it up. While the delay is over
``max_loop_delay`` new requests are refused the same way, cheaply, before their bodies are read:
a client told to come back later costs less than one left waiting in an overloaded loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from gateway.errors import MemoryLimitError, OverloadedError
from gateway.selfmetrics import GatewayMetrics
from gateway.tasks import cancel_and_wait


class AdmissionLimits(Protocol):
    """The ``service.admission`` settings (gateway.config.model.AdmissionConfig)."""

    max_inflight_bytes: int
    max_loop_delay: float
    retry_after: float


log = logging.getLogger("otelgate.admission")

PROBE_INTERVAL = 0.05  # seconds between event-loop delay probes


class Ticket:
    """The bytes one request holds against the budget; :meth:`release` once answered."""

    __slots__ = ("_admission", "nbytes")

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self.nbytes = 0

    def grow(self, nbytes: int) -> None:
        """Hold ``nbytes`` more, or raise :class:`MemoryLimitError` (holding nothing more)."""
        self._admission._take(self, nbytes)

    def release(self) -> None:
        """Give every byte back (idempotent)."""
        self._admission._give(self.nbytes)
        self.nbytes = 0


class Admission:
    """The in-flight byte budget and the load shedder shared by every receiver."""

    def __init__(
        self,
        metrics: GatewayMetrics,
        *,
        max_inflight_bytes: int,
        max_loop_delay: float,
        retry_after: float = 1.0,
    ) -> None:
        self.max_inflight_bytes = max_inflight_bytes
        self.max_loop_delay = max_loop_delay
        self.retry_after = retry_after
        self.in_flight = 0
        self.loop_delay = 0.0
        # Read when scraped: nothing per request.
        metrics.admission_inflight_bytes.set_function(lambda: self.in_flight)
        metrics.event_loop_delay.set_function(lambda: self.loop_delay)
        metrics.admission_max_inflight_bytes.set(max_inflight_bytes)
        self._probe: asyncio.Task[None] | None = None

    @classmethod
    def of(cls, metrics: GatewayMetrics, limits: AdmissionLimits) -> Admission:
        """The admission of the ``service.admission`` settings."""
        return cls(
            metrics,
            max_inflight_bytes=limits.max_inflight_bytes,
            max_loop_delay=limits.max_loop_delay,
            retry_after=limits.retry_after,
        )

    @property
    def shedding(self) -> bool:
        """True while the event loop is later than ``max_loop_delay`` (0 = never shed)."""
        return 0 < self.max_loop_delay < self.loop_delay

    def admit(self, nbytes: int = 0) -> Ticket:
        """A ticket holding ``nbytes``; raises :class:`OverloadedError` while shedding and
        :class:`MemoryLimitError` when the bytes do not fit."""
        if self.shedding:
            raise OverloadedError(
                f"the gateway is overloaded (event loop {self.loop_delay:.2f}s behind, limit "
                f"{self.max_loop_delay:.2f}s); retry later",
                retry_after=self.retry_after,
            )
        ticket = Ticket(self)
        ticket.grow(nbytes)
        return ticket

    def _take(self, ticket: Ticket, nbytes: int) -> None:
        total = self.in_flight + nbytes
        # A lone request always fits: the per-request limits bound it.
        if total > self.max_inflight_bytes and self.in_flight > ticket.nbytes:
            raise MemoryLimitError(
                f"{self.in_flight} request bytes are in flight; {nbytes} more would exceed "
                f"the limit of {self.max_inflight_bytes}; retry later",
                retry_after=self.retry_after,
            )
        self.in_flight = total
        ticket.nbytes += nbytes

    def _give(self, nbytes: int) -> None:
        self.in_flight -= nbytes

    async def start(self) -> None:
        """Start probing the event loop's delay (when shedding is on)."""
        if self.max_loop_delay > 0 and self._probe is None:
            self._probe = asyncio.create_task(self._measure(), name="admission:loop-delay")

    async def stop(self) -> None:
        if self._probe is not None:
            await cancel_and_wait([self._probe])
            self._probe = None

    async def _measure(self) -> None:
        loop = asyncio.get_running_loop()
        was_shedding = False
        while True:
            start = loop.time()
            await asyncio.sleep(PROBE_INTERVAL)
            self.loop_delay = max(0.0, loop.time() - start - PROBE_INTERVAL)
            if self.shedding != was_shedding:
                was_shedding = self.shedding
                log.warning(
                    "event loop %.2fs behind: %s shedding load",
                    self.loop_delay, "started" if was_shedding else "stopped",
                )  # fmt: skip
