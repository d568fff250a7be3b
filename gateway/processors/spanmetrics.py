"""The ``spanmetrics`` processor: RED metrics (calls, errors, duration) from spans.

It reads every span of the traces pipelines it is in (it never changes them) and counts, per
``service.name`` (of the resource), span name, span kind and status code, the calls and a
duration histogram. Every ``flush_interval`` the totals go into the metrics pipelines as
CUMULATIVE OTLP metrics through the gateway's ``emit``, so a refused flush loses nothing.

Names and attributes are fixed (SLO rules are generated over them):
``traces.span.metrics.calls`` (monotonic sum, unit ``1``; Prometheus
``traces_span_metrics_calls_total``) and ``traces.span.metrics.duration`` (histogram, unit
``s``; ``traces_span_metrics_duration_seconds_bucket|sum|count``), with data point
attributes ``service.name``, ``span.name``, ``span.kind`` (``SPAN_KIND_SERVER``...) and
``status.code`` (``STATUS_CODE_UNSET|OK|ERROR``).

Cardinality is bounded: at most ``max_operations_per_service`` span names per service and
``max_services`` services; the rest are counted under ``span.name``/``service.name``
``other``, and each folded span is counted in ``otelgate_spanmetrics_overflow_spans_total``.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import HistogramDataPoint, Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from prometheus_client import CollectorRegistry, Counter
from pydantic import (
    Field,
    field_validator,
)

from gateway.config.values import (
    Duration,
    StrictModel,
)
from gateway.otlp.batch import Batch, Signal
from gateway.otlp.builders import (
    CUMULATIVE,
    attributes,
    cumulative_sum,
    gateway_resource,
    number_point,
    scope,
    service_name,
)
from gateway.pipeline import Emit
from gateway.registry import ComponentFactory, Host
from gateway.tasks import cancel_and_wait

log = logging.getLogger("otelgate.spanmetrics")

SCOPE = "otelgate.spanmetrics"
CALLS = "traces.span.metrics.calls"
DURATION = "traces.span.metrics.duration"
OTHER = "other"
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_KINDS = {v: k for k, v in Span.SpanKind.items()}
_STATUSES = {v: k for k, v in Status.StatusCode.items()}
_COUNTERS: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()


def overflow_counter(registry: CollectorRegistry) -> Counter:
    """The registry's counter of spans folded into ``other`` (created once per registry)."""
    counter = _COUNTERS.get(registry)
    if counter is None:
        counter = Counter(
            "otelgate_spanmetrics_overflow_spans",
            "Spans counted under span.name or service.name 'other' because a spanmetrics "
            "cardinality limit was reached.",
            ["processor", "limit"],
            registry=registry,
        )
        _COUNTERS[registry] = counter
    return counter


@dataclass(slots=True)
class _Series:
    start_ns: int
    bucket_counts: list[int]
    calls: int = 0
    total: float = 0.0
    low: float = field(default=float("inf"))
    high: float = field(default=float("-inf"))


SeriesKey = tuple[str, str, str, str]  # service, span name, kind, status


class SpanMetricsProcessor:
    """Counts spans into cumulative RED series and emits them every ``flush_interval``."""

    mutates = False

    def __init__(
        self,
        name: str,
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        flush_interval: float = 15.0,
        max_operations_per_service: int = 200,
        max_services: int = 1000,
        emit: Emit | None = None,
        registry: CollectorRegistry | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.name = name
        self.bounds = tuple(float(b) for b in buckets)
        self.flush_interval = flush_interval
        self.max_operations = max_operations_per_service
        self.max_services = max_services
        self._emit = emit
        self._clock_ns = clock_ns
        self._series: dict[SeriesKey, _Series] = {}
        self._operations: dict[str, set[str]] = {}
        counter = overflow_counter(registry if registry is not None else CollectorRegistry())
        self._op_overflow = counter.labels(name, "operations")
        self._svc_overflow = counter.labels(name, "services")
        self._task: asyncio.Task[None] | None = None

    @property
    def series(self) -> int:
        """How many series the processor holds."""
        return len(self._series)

    def process(self, batch: Batch) -> Batch:
        if batch.signal is Signal.TRACES:
            assert isinstance(batch.request, ExportTraceServiceRequest)
            self.record(batch.request)
        return batch

    def record(self, request: ExportTraceServiceRequest) -> None:
        """Count every span of ``request``."""
        # This loop runs for every span received, so it is written for CPython: the series
        # update is inlined (no call per span), and what it reads repeatedly is held in
        # locals. Explicit buckets are upper-inclusive: bucket i counts (bounds[i-1], bounds[i]].
        now = self._clock_ns()
        all_series, bounds, slots = self._series, self.bounds, len(self.bounds) + 1
        kinds, statuses, bucket_of = _KINDS, _STATUSES, bisect.bisect_left
        for rs in request.resource_spans:
            service = self._service(service_name(rs.resource))
            operations = self._operations[service]
            for ss in rs.scope_spans:
                for span in ss.spans:
                    operation = span.name
                    if operation not in operations:
                        operation = self._operation(operations, operation)
                    key = (
                        service,
                        operation,
                        kinds.get(span.kind, "SPAN_KIND_UNSPECIFIED"),
                        statuses.get(span.status.code, "STATUS_CODE_UNSET"),
                    )
                    series = all_series.get(key)
                    if series is None:
                        series = all_series[key] = _Series(now, [0] * slots)
                    seconds = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e9
                    if seconds < 0:
                        seconds = 0.0
                    series.calls += 1
                    series.total += seconds
                    if seconds < series.low:
                        series.low = seconds
                    if seconds > series.high:
                        series.high = seconds
                    series.bucket_counts[bucket_of(bounds, seconds)] += 1

    def _operation(self, operations: set[str], operation: str) -> str:
        """A span name not seen before for the service: tracked, or ``other`` over the limit."""
        if len(operations) >= self.max_operations and operation != OTHER:
            self._op_overflow.inc()
            return OTHER
        operations.add(operation)
        return operation

    def _service(self, name: str) -> str:
        if name not in self._operations:
            if len(self._operations) >= self.max_services and name != OTHER:
                self._svc_overflow.inc()
                name = OTHER
            self._operations.setdefault(name, set())
        return name

    def collect(self) -> ExportMetricsServiceRequest | None:
        """The cumulative totals so far as one OTLP request (None when nothing was seen)."""
        if not self._series:
            return None
        now = self._clock_ns()
        request = ExportMetricsServiceRequest()
        rm = request.resource_metrics.add()
        rm.resource.CopyFrom(gateway_resource())
        sm = rm.scope_metrics.add()
        sm.scope.CopyFrom(scope(SCOPE))
        sm.metrics.extend(self._metrics(now))
        return request

    def _metrics(self, now: int) -> Iterable[Metric]:
        rows = [
            ({"service.name": s, "span.name": op, "span.kind": k, "status.code": st}, x)
            for (s, op, k, st), x in sorted(self._series.items())
        ]
        yield cumulative_sum(
            CALLS,
            "1",
            "Spans seen, by service, span name, kind and status.",
            (number_point(x.calls, labels, now, x.start_ns) for labels, x in rows),
            monotonic=True,
        )
        duration = Metric(name=DURATION, unit="s", description="Span durations, in seconds.")
        duration.histogram.aggregation_temporality = CUMULATIVE
        duration.histogram.data_points.extend(
            HistogramDataPoint(
                attributes=attributes(labels),
                start_time_unix_nano=x.start_ns,
                time_unix_nano=now,
                count=x.calls,
                sum=x.total,
                bucket_counts=x.bucket_counts,
                explicit_bounds=self.bounds,
                min=x.low,
                max=x.high,
            )
            for labels, x in rows
        )
        yield duration

    async def flush(self) -> bool:
        """Emit the totals now; False when there was nothing or the pipelines refused."""
        request = self.collect()
        if request is None or self._emit is None:
            return False
        return await self._emit(Batch.from_request(Signal.METRICS, request), None)

    async def start(self) -> None:
        """Start the periodic flush."""
        if self._emit is not None and self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"processor:{self.name}")

    async def stop(self) -> None:
        """Stop the periodic flush, then flush once more so the last counts go out."""
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
            try:
                await self.flush()
            except Exception:
                log.exception("processor %s: final flush failed", self.name)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush()
            except Exception:
                log.exception("processor %s: flush failed", self.name)


class SpanMetricsProcessorConfig(StrictModel):
    """The ``spanmetrics`` processor: calls and duration histograms from spans."""

    buckets: list[Duration] = Field(default_factory=lambda: list(DEFAULT_BUCKETS))
    flush_interval: Duration = Field(default=15.0, gt=0)
    max_operations_per_service: int = Field(default=200, gt=0)
    max_services: int = Field(default=1000, gt=0)

    @field_validator("buckets")
    @classmethod
    def _increasing(cls, value: list[float]) -> list[float]:
        if not value:
            raise ValueError("must not be empty")
        if value[0] <= 0 or any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError("must be positive and strictly increasing")
        return value


def create_spanmetrics(
    name: str, config: SpanMetricsProcessorConfig, host: Host
) -> SpanMetricsProcessor:
    """The processor of a ``spanmetrics`` entry; its series go to every metrics pipeline."""
    return SpanMetricsProcessor(
        name,
        buckets=config.buckets,
        flush_interval=config.flush_interval,
        max_operations_per_service=config.max_operations_per_service,
        max_services=config.max_services,
        emit=host.emit,
        registry=host.metrics.registry,
    )


FACTORY = ComponentFactory(
    kind="processor",
    type_name="spanmetrics",
    config=SpanMetricsProcessorConfig,
    signals=frozenset({Signal.TRACES}),
    create=create_spanmetrics,
)
