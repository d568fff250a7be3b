"""CloudWatch exporter: logs to CloudWatch Logs with ``PutLogEvents``, metrics as Embedded
Metric Format records (log events CloudWatch extracts metrics from). Traces are not supported.

A batch is turned once into a plan of calls (:mod:`.batching`, :mod:`.logs`, :mod:`.emf`), sent
by :mod:`.sender`. The plan is kept while the queue retries the batch, so that a retried push
resumes with the first call not done and the cumulative-to-delta state advances once per batch
(as the remote write exporter keeps its translation). What the exporter refused or CloudWatch
rejected is returned as :class:`~exporters.base.Refused` with exact counts; what it changed to
fit (truncated messages, dimensions left out, baseline points) is counted in
``otelgate_exporter_adjusted_total``.

A push fails as a whole only when nothing of it was delivered. When some calls succeeded and
the next one failed, a final error (credentials, access) refuses the rest and returns the
count; a retryable one returns :class:`~exporters.base.Partial`: the queue counts what was
delivered and refused, and retries only the items of the calls not done (with their plan). A
retryable error before any call succeeded is raised, and the retry of the same batch resumes
its plan. After a restart, a batch replayed from the disk spool is planned again: calls done
before the restart are sent again.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from exporters.base import ExporterBase, Partial, Refused
from exporters.cloudwatch.batching import Plan, plan_calls
from exporters.cloudwatch.client import open_client
from exporters.cloudwatch.config import CloudWatchExporterConfig
from exporters.cloudwatch.deltas import DeltaTracker
from exporters.cloudwatch.emf import EmfMapping
from exporters.cloudwatch.logs import LogMapping
from exporters.cloudwatch.names import NameTemplate
from exporters.cloudwatch.sender import Sender
from exporters.splitting import select_items
from gateway.errors import PermanentError, RetryableError
from gateway.otlp.batch import Batch, Signal
from gateway.redact import redact_url
from gateway.registry import ComponentFactory, Host

_THREAD_ITEMS = 1000  # plan big batches in a worker thread, off the event loop


class CloudWatchExporter(ExporterBase):
    """Pushes logs and metrics batches to CloudWatch Logs (see the module doc)."""

    def __init__(
        self,
        logs: LogMapping,
        metrics: EmfMapping,
        *,
        region: str | None = None,
        endpoint: str | None = None,
        retention_days: int = 0,
        timeout: float = 30.0,
        on_adjusted: Callable[[Mapping[str, int]], None] | None = None,
        client: Any = None,
    ) -> None:
        self.logs = logs
        self.metrics = metrics
        self.region = region
        self.endpoint = endpoint
        self.retention_days = retention_days
        self.timeout = timeout
        self.on_adjusted = on_adjusted
        self.client = client  # tests inject one; None: made by start()
        self._stack: AsyncExitStack | None = None
        self._sender: Sender | None = None
        # The plan of each batch being retried, freed with the batch once the queue is done
        # with it (delivered, or given up).
        self._pending: weakref.WeakKeyDictionary[Batch, Plan] = weakref.WeakKeyDictionary()
        self._metrics_lock = asyncio.Lock()

    def __repr__(self) -> str:
        where = redact_url(self.endpoint) if self.endpoint else "AWS"
        return f"CloudWatchExporter({self.region!r}, {where!r})"

    async def start(self) -> None:
        if self._sender is not None:
            return
        if self.client is None:
            self._stack = AsyncExitStack()
            self.client, self.region = await open_client(
                self._stack, self.region, self.endpoint, self.timeout
            )
        self.metrics.reader.tracker.started_ns = time.time_ns()
        self._sender = Sender(self.client, self.retention_days)

    async def shutdown(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
            self._stack, self.client = None, None
        self._sender = None

    def plan(self, batch: Batch) -> Plan:
        """The calls that deliver ``batch`` (updates the delta state of metrics)."""
        plan = Plan()
        if batch.signal is Signal.LOGS:
            assert isinstance(batch.request, ExportLogsServiceRequest)
            destinations = self.logs.events(batch.request, plan)
        else:
            assert isinstance(batch.request, ExportMetricsServiceRequest)
            destinations = self.metrics.events(batch.request, plan)
        return plan_calls(destinations, time.time_ns() // 1_000_000, plan)

    async def push(self, batch: Batch) -> Refused | Partial | None:
        """Send one logs or metrics batch; see the module doc for what is raised."""
        if batch.signal is Signal.TRACES:
            raise PermanentError("the cloudwatch exporter takes logs and metrics, not traces")
        if self._sender is None:
            raise RuntimeError(f"{self!r} used before start()")
        plan = self._pending.get(batch)
        if plan is None:
            plan = await self._planned(batch)
            if plan.adjusted and self.on_adjusted is not None:
                self.on_adjusted(plan.adjusted)
            self._pending[batch] = plan
        try:
            await self._sender.run(plan)
        except RetryableError as exc:
            if not plan.sent:
                raise  # nothing done: the queue retries this batch and its kept plan
            return self._partial(batch, plan, exc)
        except PermanentError as exc:
            self._pending.pop(batch, None)
            if not plan.sent:
                raise
            plan.refuse(plan.remaining, str(exc))
        self._pending.pop(batch, None)
        return Refused(plan.refused, plan.reason) if plan.refused else None

    async def _planned(self, batch: Batch) -> Plan:
        """The plan of a new batch; a big one is planned in a worker thread. Metrics batches
        are planned one at a time (the lock), as planning moves the delta state."""
        if batch.signal is Signal.LOGS:
            if batch.items < _THREAD_ITEMS:
                return self.plan(batch)
            return await asyncio.to_thread(self.plan, batch)
        async with self._metrics_lock:
            if batch.items < _THREAD_ITEMS:
                return self.plan(batch)
            return await asyncio.to_thread(self.plan, batch)

    def _partial(self, batch: Batch, plan: Plan, error: RetryableError) -> Partial:
        """Some calls done, the next one failed: the queue counts what is settled and retries
        the items of the calls not done, which keep their plan."""
        self._pending.pop(batch, None)
        remainder = select_items(batch, plan.positions())
        outcome = Partial(remainder, error, plan.refused, plan.reason)
        plan.renumber()
        self._pending[remainder] = plan
        return outcome


def create_cloudwatch(
    name: str, config: CloudWatchExporterConfig, host: Host
) -> CloudWatchExporter:
    """The exporter of a ``cloudwatch`` entry; what it changes to fit CloudWatch is counted."""
    m = config.metrics
    logs = LogMapping(
        NameTemplate.parse(config.log_group_name, "group"),
        NameTemplate.parse(config.log_stream_name, "stream"),
        raw=config.raw_log,
        max_event_size=config.max_event_size,
    )
    metrics = EmfMapping(
        NameTemplate.parse(m.log_group_name, "group"),
        NameTemplate.parse(m.log_stream_name, "stream"),
        DeltaTracker(time.time_ns(), m.metric_expiration),
        namespace=m.namespace,
        resource_dimensions=m.resource_dimensions,
        attribute_dimensions=m.attribute_dimensions,
        high_resolution=m.storage_resolution == 1,
        max_event_size=config.max_event_size,
    )
    return CloudWatchExporter(
        logs,
        metrics,
        region=config.region,
        endpoint=config.endpoint,
        retention_days=config.log_retention,
        timeout=config.timeout,
        on_adjusted=host.metrics.adjusted_counter(name),
    )


FACTORY = ComponentFactory(
    kind="exporter",
    type_name="cloudwatch",
    config=CloudWatchExporterConfig,
    signals=frozenset({Signal.LOGS, Signal.METRICS}),
    create=create_cloudwatch,
    example={"region": "us-east-1", "endpoint": "http://127.0.0.1:4566"},
)
