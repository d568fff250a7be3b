"""The SLO tracker: an observer counting good and total events per SLO into minute buckets.

Span SLIs (availability, latency) count the SERVER spans of the SLO's service as they are
accepted; ratio SLIs count the increments of two counters (OTLP monotonic sums) of the
service: a delta point is an increment, a cumulative point adds its difference from the
series' previous point (a lower value or a new start time is a reset: the value is counted
from zero). The first cumulative point of a series is only a baseline, unless the series
started after the tracker did.

Events land in the minute they are received. Buckets live in memory for the SLO's window;
with a store, new increments are written every ``flush_interval`` seconds (off the event
loop) and loaded again on start, so a restart continues the numbers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    Metric,
    NumberDataPoint,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from gateway.otlp.batch import Batch, Signal
from gateway.slo.burn_rate import REPORT_WINDOWS, Evaluation, evaluate, workbook_rules
from gateway.slo.config import SloConfig
from gateway.store.sqlite import SqliteStore
from gateway.tasks import cancel_and_wait

log = logging.getLogger("otelgate.slo")

SERVER = Span.SpanKind.SPAN_KIND_SERVER
ERROR = Status.StatusCode.STATUS_CODE_ERROR
DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
NO_RECORDED_VALUE = 1  # DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
MAX_SERIES = 10_000  # cumulative series remembered for ratio SLIs (oldest forgotten first)
RETENTION_MARGIN_MINUTES = 24 * 60  # kept in the store beyond the longest window
RETENTION_EVERY = 3600.0  # seconds between retention passes
LONGEST_REPORT_WINDOW = max(minutes for _, minutes in REPORT_WINDOWS)

Attrs = tuple[tuple[str, str], ...]


def _text(value: AnyValue) -> str:
    """An attribute value as text (how ratio SLI attribute filters compare)."""
    kind = value.WhichOneof("value")
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind in ("string_value", "int_value", "double_value"):
        return str(getattr(value, kind))
    return ""


def _attrs(values: Iterable[KeyValue]) -> Attrs:
    return tuple(sorted((kv.key, _text(kv.value)) for kv in values))


def service_name(resource: Resource) -> str:
    """The resource's ``service.name`` ("" when missing)."""
    for kv in resource.attributes:
        if kv.key == "service.name":
            return kv.value.string_value
    return ""


def _wanted(selector: dict[str, str], attrs: Attrs) -> bool:
    have = dict(attrs)
    return all(have.get(key) == value for key, value in selector.items())


def _as_text(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


class SloTracker:
    """Counts events for every configured SLO; an :class:`~gateway.observers.Observer`."""

    def __init__(
        self,
        slos: Sequence[SloConfig],
        store: SqliteStore | None = None,
        *,
        flush_interval: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.slos = {slo.name: slo for slo in slos}
        self.store = store
        self.flush_interval = flush_interval
        self._clock = clock
        self._rules = {s.name: workbook_rules(**s.alerting.model_dump()) for s in slos}
        self._buckets: dict[str, dict[int, list[float]]] = {name: {} for name in self.slos}
        self._version = dict.fromkeys(self.slos, 0)  # bumped on every change of an SLO's buckets
        self._cache: dict[str, tuple[int, int, Evaluation]] = {}
        self._pending: dict[tuple[str, int], list[float]] = {}
        self._by_service: dict[str, list[SloConfig]] = {}
        self._by_metric: dict[str, list[SloConfig]] = {}
        self._filters: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
        for slo in slos:
            if slo.sli.ratio is None:
                self._by_service.setdefault(slo.service, []).append(slo)
                continue
            good, total = slo.sli.ratio.good, slo.sli.ratio.total
            for name in {good.metric, total.metric}:
                self._by_metric.setdefault(name, []).append(slo)
            self._filters[slo.name] = (
                {k: _as_text(v) for k, v in good.attributes.items()},
                {k: _as_text(v) for k, v in total.attributes.items()},
            )
        self._series: dict[tuple[str, Attrs, Attrs], tuple[int, float]] = {}
        self._started_ns = int(clock() * 1e9)
        self._task: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self._last_prune = -1
        self._last_retention = 0.0

    # -- counting ------------------------------------------------------------------------

    def counts(self, signal: Signal) -> bool:
        """Whether an SLO counts events of ``signal`` (spans or counter increments)."""
        if signal is Signal.TRACES:
            return bool(self._by_service)
        return signal is Signal.METRICS and bool(self._by_metric)

    def observe(self, batch: Batch) -> None:
        """Count the batch's events (spans or counter increments) for the SLOs they serve."""
        if batch.signal is Signal.TRACES and self._by_service:
            assert isinstance(batch.request, ExportTraceServiceRequest)
            self._observe_spans(batch.request)
        elif batch.signal is Signal.METRICS and self._by_metric:
            assert isinstance(batch.request, ExportMetricsServiceRequest)
            self._observe_metrics(batch.request)

    def _add(self, name: str, minute: int, good: float, total: float) -> None:
        self._version[name] += 1
        bucket = self._buckets[name].setdefault(minute, [0.0, 0.0])
        bucket[0] += good
        bucket[1] += total
        pending = self._pending.setdefault((name, minute), [0.0, 0.0])
        pending[0] += good
        pending[1] += total

    def _observe_spans(self, request: ExportTraceServiceRequest) -> None:
        minute = int(self._clock() // 60)
        for resource_spans in request.resource_spans:
            slos = self._by_service.get(service_name(resource_spans.resource))
            if not slos:
                continue
            for slo in slos:
                good = total = 0
                latency = slo.sli.latency
                chosen = slo.sli.availability or latency
                assert chosen is not None
                span_filter = chosen.span_name
                limit = round(latency.threshold * 1e9) if latency else 0
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        if span.kind != SERVER or (span_filter and span.name != span_filter):
                            continue
                        total += 1
                        if latency:
                            good += span.end_time_unix_nano - span.start_time_unix_nano <= limit
                        else:
                            good += span.status.code != ERROR
                if total:
                    self._add(slo.name, minute, good, total)

    def _observe_metrics(self, request: ExportMetricsServiceRequest) -> None:
        minute = int(self._clock() // 60)
        for resource_metrics in request.resource_metrics:
            service = service_name(resource_metrics.resource)
            resource = _attrs(resource_metrics.resource.attributes)
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    slos = [s for s in self._by_metric.get(metric.name, ()) if s.service == service]
                    if slos and metric.WhichOneof("data") == "sum" and metric.sum.is_monotonic:
                        self._observe_counter(metric, resource, slos, minute)

    def _observe_counter(
        self, metric: Metric, resource: Attrs, slos: list[SloConfig], minute: int
    ) -> None:
        temporality = metric.sum.aggregation_temporality
        for point in metric.sum.data_points:
            if point.flags & NO_RECORDED_VALUE:
                continue
            value = point.as_double if point.WhichOneof("value") == "as_double" else point.as_int
            attrs = _attrs(point.attributes)
            if temporality == DELTA:
                increment = float(value)
            elif temporality == CUMULATIVE:
                increment = self._cumulative((metric.name, resource, attrs), point, value)
            else:
                continue
            if increment <= 0:
                continue
            for slo in slos:
                ratio, (good_filter, total_filter) = slo.sli.ratio, self._filters[slo.name]
                assert ratio is not None
                good = ratio.good.metric == metric.name and _wanted(good_filter, attrs)
                total = ratio.total.metric == metric.name and _wanted(total_filter, attrs)
                if good or total:
                    self._add(slo.name, minute, increment * good, increment * total)

    def _cumulative(
        self, key: tuple[str, Attrs, Attrs], point: NumberDataPoint, value: float
    ) -> float:
        start = point.start_time_unix_nano
        previous = self._series.pop(key, None)
        self._series[key] = (start, float(value))  # re-inserted: most recently seen last
        if len(self._series) > MAX_SERIES:
            del self._series[next(iter(self._series))]
        if previous is None:  # a baseline, unless the series began while we were watching
            return float(value) if start and start >= self._started_ns else 0.0
        previous_start, previous_value = previous
        if (start and previous_start and start != previous_start) or value < previous_value:
            return float(value)  # reset
        return float(value) - previous_value

    # -- state ---------------------------------------------------------------------------

    def evaluate(self, name: str) -> Evaluation:
        """The SLO ``name`` now (``KeyError`` if unknown). Safe from other threads (the admin
        endpoints run in a thread pool): it works on a snapshot of the buckets."""
        slo = self.slos[name]
        now, version = int(self._clock() // 60), self._version[name]
        cached = self._cache.get(name)
        if cached is not None and cached[:2] == (now, version):
            return cached[2]
        snapshot = [(m, b[0], b[1]) for m, b in list(self._buckets[name].items())]
        result = evaluate(snapshot, now, slo.objective, slo.window_minutes, self._rules[name])
        self._cache[name] = (now, version, result)
        return result

    def _prune(self) -> None:
        """Forget in-memory buckets that left every window (once a minute)."""
        now = int(self._clock() // 60)
        if now == self._last_prune:
            return
        self._last_prune = now
        for name, buckets in self._buckets.items():
            oldest = now - self._keep(name)
            for minute in [m for m in buckets if m <= oldest]:
                del buckets[minute]

    # -- persistence ---------------------------------------------------------------------

    def _keep(self, name: str) -> int:
        """Minutes of buckets an SLO needs: its window, or the longest reported one."""
        return max(self.slos[name].window_minutes, LONGEST_REPORT_WINDOW)

    @property
    def retention_minutes(self) -> int:
        """How long buckets stay in the store: the longest window plus a day."""
        longest = max((self._keep(name) for name in self.slos), default=0)
        return longest + RETENTION_MARGIN_MINUTES

    async def start(self) -> None:
        """Load the buckets still inside each window from the store, then flush periodically."""
        if self.store is not None and self.slos:
            now = int(self._clock() // 60)
            since = now - max(self._keep(name) for name in self.slos) + 1
            loaded = await asyncio.to_thread(self.store.load_slo_buckets, self.slos, since)
            for name, buckets in loaded.items():
                for minute, (good, total) in buckets.items():
                    bucket = self._buckets[name].setdefault(minute, [0.0, 0.0])
                    bucket[0] += good
                    bucket[1] += total
                self._version[name] += 1
            await self._retention()
            log.info("SLO state loaded from %s (%d buckets)", self.store.path,
                     sum(len(b) for b in loaded.values()))  # fmt: skip
        self._task = asyncio.create_task(self._flush_loop(), name="slo-flush")

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush()
            except Exception:
                log.exception("SLO flush failed; retrying in %.0fs", self.flush_interval)

    async def flush(self) -> None:
        """Write the increments counted since the last flush (kept for the next one if the
        write fails) and apply retention now and then."""
        self._prune()
        async with self._flush_lock:
            if self.store is None:  # in memory only: nothing to write
                self._pending.clear()
                return
            if not self._pending:
                return
            deltas = {key: (good, total) for key, (good, total) in self._pending.items()}
            self._pending = {}
            try:
                await asyncio.to_thread(self.store.add_slo_buckets, deltas)
            except Exception:  # not cancellation: the thread still completes that write
                for key, (good, total) in deltas.items():
                    bucket = self._pending.setdefault(key, [0.0, 0.0])
                    bucket[0] += good
                    bucket[1] += total
                raise
            if time.monotonic() - self._last_retention >= RETENTION_EVERY:
                await self._retention()

    async def _retention(self) -> None:
        if self.store is None:
            return
        self._last_retention = time.monotonic()
        oldest = int(self._clock() // 60) - self.retention_minutes
        removed = await asyncio.to_thread(self.store.delete_slo_buckets_before, oldest)
        if removed:
            log.info("SLO store retention removed %d buckets", removed)

    async def stop(self) -> None:
        """Stop flushing periodically and write what is left."""
        await cancel_and_wait(self._task)
        self._task = None
        await self.flush()
