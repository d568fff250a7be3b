"""The ``store`` exporter: recent logs and spans into the embedded SQLite store, for the
gateway's own API (``/logs``, ``/traces``) and dashboard. Not a Loki or Jaeger replacement:
it keeps days, not months, on one host (docs/store.md).

Its queue drops instead of refusing when full (``sending_queue.on_full: drop``, enforced), and
past ``store.max_write_rate`` items per second whole batches are shed before being decoded:
the store sheds load, counted as dropped items, and never slows or refuses ingest; its CPU
cost is bounded whatever the load. One writer thread does every write and the retention
passes (``store.retention_interval``), so writes are batched and never contend.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

from fastapi import APIRouter
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import model_validator

from exporters.base import ExporterBase, Refused, Shed
from exporters.settings import ExporterSettings
from gateway.api.telemetry import telemetry_router
from gateway.errors import PermanentError, RetryableError
from gateway.otlp.batch import Batch, Signal
from gateway.registry import ComponentFactory, Host
from gateway.store import default_store_path
from gateway.store.config import StoreConfig
from gateway.store.telemetry_queries import TelemetryReader
from gateway.store.telemetry_writer import TelemetryWriter, WriterCounts

log = logging.getLogger("otelgate.store")
STORE_QUEUE_BYTES = 32 * 1024 * 1024
# One merged write is one transaction: small enough for the WAL limit of a small store.
_QUEUE_DEFAULTS = {
    "on_full": "drop",
    "num_consumers": 1,
    "max_bytes": STORE_QUEUE_BYTES,
    "merge_max_items": 2000,
    "merge_max_bytes": 1_000_000,
}


class StoreExporterConfig(ExporterSettings):
    """Where logs and spans go for the gateway's own API. The store's file, retention and
    size cap are the top-level ``store:`` section's."""

    @model_validator(mode="before")
    @classmethod
    def _shedding_queue(cls, value: Any) -> Any:
        """The queue drops when full and has one consumer unless set otherwise."""
        if isinstance(value, dict):
            queue = value.get("sending_queue")
            queue = dict(queue) if isinstance(queue, dict) else {} if queue is None else queue
            if isinstance(queue, dict):
                value = {**value, "sending_queue": {**_QUEUE_DEFAULTS, **queue}}
        return value

    @model_validator(mode="after")
    def _never_refuses(self) -> StoreExporterConfig:
        queue = self.sending_queue
        if queue.on_full != "drop":
            raise ValueError("sending_queue.on_full must be drop: the store never refuses ingest")
        if queue.storage != "memory":
            raise ValueError("sending_queue.storage must be memory: the store is the disk")
        return self


class WriteBudget:
    """A token bucket of items per second (a second's worth of burst). A batch is taken whole
    while any token is left, so the long-run rate stays within ``rate``; 0 means no limit."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self.tokens = rate
        self._at = clock()

    def take(self, items: int) -> bool:
        """Whether ``items`` may be written now (and spend them)."""
        if self.rate <= 0:
            return True
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self._at) * self.rate)
        self._at = now
        if self.tokens <= 0:
            return False
        self.tokens -= items
        return True


class StoreExporter(ExporterBase):
    """Writes logs and spans with one :class:`TelemetryWriter` in its own thread."""

    sends_encoded_batches: ClassVar[bool] = True  # merged batches: one transaction for many
    sheds_by_design: ClassVar[bool] = True

    def __init__(
        self,
        path: Path,
        settings: StoreConfig,
        errors_in_trace: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.path = path
        self.settings = settings
        self.errors_in_trace = errors_in_trace
        self.budget = WriteBudget(settings.max_write_rate)
        self.writer: TelemetryWriter | None = None
        self.counts: WriterCounts | None = None  # the writer's, kept after it closed
        self.reader: TelemetryReader | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="otelgate-store")
        self._retention: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"StoreExporter({str(self.path)!r})"

    async def _in_thread(self, func: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, func, *args)

    async def start(self) -> None:
        settings = self.settings
        try:
            self.writer = await self._in_thread(
                lambda: TelemetryWriter(
                    self.path,
                    retention=settings.retention,
                    max_size_bytes=settings.max_size_bytes,
                    search_attributes=settings.search_attributes,
                )
            )
        except Exception as exc:
            raise OSError(f"cannot open the store {self.path}: {exc}") from exc
        self.counts = self.writer.counts
        self.reader = TelemetryReader(self.path)
        self._retention = asyncio.create_task(self._retain(), name="store-retention")

    async def push(self, batch: Batch) -> Refused | Shed | None:
        """Store the batch's logs or spans (metrics are not stored); shed the whole batch,
        before decoding it, when the write budget (``store.max_write_rate``) is spent."""
        if batch.signal is Signal.METRICS:
            return None
        if self.writer is None:
            raise RetryableError("store exporter is not started")
        if not self.budget.take(batch.items):
            return Shed(batch.items, "over store.max_write_rate")
        try:
            written: int = await self._in_thread(self.writer.write, batch)
        except PermanentError:
            raise
        except Exception as exc:
            raise RetryableError(f"store {self.path}: {exc}") from exc
        if written < batch.items:
            return Refused(batch.items - written, "not stored: over the size cap, or invalid ids")
        return None

    async def _retain(self) -> None:
        while True:
            await asyncio.sleep(self.settings.retention_interval)
            if self.writer is None:
                return
            try:
                await self._in_thread(self.writer.enforce_retention)
            except Exception:
                log.exception("store retention failed (will retry)")

    async def shutdown(self) -> None:
        if self._retention is not None:
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention
        if self.writer is not None:
            await self._in_thread(self.writer.close)
            self.writer = None
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        self._thread.shutdown(wait=True)

    def admin_router(self) -> APIRouter:
        """``/logs`` and ``/traces``, mounted on the admin listener by the gateway."""
        return telemetry_router(lambda: self.reader, self.errors_in_trace)


class StoreCollector(Collector):
    """``otelgate_store_deleted_items_total{signal, reason}`` (retention by age or size),
    ``otelgate_store_file_bytes`` and ``otelgate_store_max_size_bytes``."""

    def __init__(self, exporter: StoreExporter) -> None:
        self.exporter = exporter

    def collect(self) -> Iterator[Metric]:
        counts = self.exporter.counts
        deleted = CounterMetricFamily(
            "otelgate_store_deleted_items",
            "Logs and spans deleted from the embedded store, by retention reason",
            labels=["signal", "reason"],
        )
        if counts is not None:
            gone = counts.deleted
            deleted.add_metric(["logs", "age"], gone.logs_by_age)
            deleted.add_metric(["logs", "size"], gone.logs_by_size)
            deleted.add_metric(["traces", "age"], gone.spans_by_age)
            deleted.add_metric(["traces", "size"], gone.spans_by_size)
        yield deleted
        size = GaugeMetricFamily("otelgate_store_file_bytes", "Size of the store's SQLite file")
        with contextlib.suppress(OSError):
            size.add_metric([], self.exporter.path.stat().st_size)
        yield size
        yield GaugeMetricFamily(
            "otelgate_store_max_size_bytes",
            "store.max_size_mib in bytes: the file never grows past it",
            value=self.exporter.settings.max_size_bytes,
        )


def create_store(component_id: str, config: StoreExporterConfig, host: Host) -> StoreExporter:
    """The store exporter; the file is ``store.path`` (default ``<data dir>/otelgate.db``)."""
    settings = host.store if host.store is not None else StoreConfig()
    if not settings.enabled:
        raise PermanentError(f"exporter {component_id} needs store.enabled: true")
    path = Path(settings.path) if settings.path else default_store_path()
    exporter = StoreExporter(path, settings, host.errors_in_trace)
    host.metrics.registry.register(StoreCollector(exporter))
    return exporter


FACTORY = ComponentFactory(
    kind="exporter",
    type_name="store",
    config=StoreExporterConfig,
    signals=frozenset({Signal.TRACES, Signal.LOGS}),
    create=create_store,
)
