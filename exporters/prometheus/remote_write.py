"""Prometheus remote write 1.0: OTLP metrics pushed as a snappy-compressed ``WriteRequest``.

Points are translated like the pull exporter's (:mod:`exporters.prometheus.translate`) and go
through a :class:`~exporters.prometheus.state.SeriesStore` first: delta sums and histograms are
accumulated into cumulative series (remote write needs cumulative values), and points not
newer than the last one of their series are dropped and counted, since Prometheus would
refuse the whole request for one out-of-order sample.

A batch is translated once: when its delivery is retried the same series are sent again, so
deltas are never added twice. Send it with one queue consumer (the default for this exporter)
so the samples of a series reach Prometheus in time order. Requests stay under
``max_request_bytes``, and series the receiver refuses cost only their own data points
(:mod:`exporters.prometheus.remote_write_send`).

With ``created_series=True`` counters, histograms and summaries whose start time is known
also get a ``<family>_created`` series: the start time in seconds, as OpenMetrics exposes it
(the Collector's ``export_created_metric`` sends milliseconds). Off by default, as in the
Collector: it is one more series per counter, histogram and summary.
"""

from __future__ import annotations

import logging
import math
import struct
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from prometheus_client import CollectorRegistry
from prometheus_client.utils import floatToGoString
from pydantic import (
    Field,
    field_validator,
)

from exporters.base import ExporterBase, Refused
from exporters.http_post import post
from exporters.prometheus import remote_write_pb as pb
from exporters.prometheus.remote_write_send import (
    DEFAULT_MAX_REQUEST_BYTES,
    Translated,
    classify_response,
    send,
)
from exporters.prometheus.remote_write_send import (
    DEFAULT_MAX_REQUEST_BYTES as REMOTE_WRITE_MAX_REQUEST_BYTES,
)
from exporters.prometheus.state import store_for
from exporters.prometheus.translate import Kind, Labels, PromExemplar, PromPoint, translate
from exporters.settings import DEFAULT_EXPORT_TIMEOUT, ExporterSettings, QueueSettings
from gateway import __version__
from gateway.config.values import Duration
from gateway.errors import PermanentError
from gateway.otlp.batch import Batch, Signal
from gateway.redact import redact_url
from gateway.registry import ComponentFactory, Host

log = logging.getLogger("otelgate.exporter.remote_write")

USER_AGENT = f"otelgate/{__version__}"
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
_HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}
_MAX_PENDING = 256  # translated batches kept for retries (the queue holds the batches)

__all__ = ["RemoteWriteExporter", "classify_response", "samples"]


class RemoteWriteExporter(ExporterBase):
    """Pushes metrics batches to a remote write receiver (Prometheus, Mimir, Thanos...)."""

    def __init__(
        self,
        endpoint: str,
        *,
        name: str = "prometheusremotewrite",
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        metric_expiration: float = 300.0,
        created_series: bool = False,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        registry: CollectorRegistry | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._transport = transport  # tests inject one; None is a normal network client
        self.name = name
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.created_series = created_series
        self.max_request_bytes = max_request_bytes  # before snappy; 0 = no limit
        self.store = store_for(
            name,
            registry if registry is not None else CollectorRegistry(),
            expiration=metric_expiration,
            max_series_per_metric=0,
        )
        self._http: httpx.AsyncClient | None = None
        self._pending: OrderedDict[Batch, Translated] = OrderedDict()
        self._target_times: dict[tuple[str, str], int] = {}

    def __repr__(self) -> str:
        return f"RemoteWriteExporter({redact_url(self.endpoint)!r})"

    async def start(self) -> None:
        if self._http is None:
            headers = {"User-Agent": USER_AGENT, **self.headers}
            self._http = httpx.AsyncClient(
                headers=headers, timeout=self.timeout, transport=self._transport
            )

    async def shutdown(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def push(self, batch: Batch) -> Refused | None:
        """Send one metrics batch; raise a classified error when it was not accepted, return
        the data points the receiver refused when it took the rest."""
        if batch.signal is not Signal.METRICS:
            raise PermanentError(f"remote write takes metrics, not {batch.signal}")
        http = self._http
        if http is None:
            raise RuntimeError(f"{self!r} used before start()")
        translated = self._pending.get(batch)
        if translated is None:
            translated = self.translate(batch.request)  # type: ignore[arg-type]  # metrics
            if not translated.request.timeseries:
                return None
            self._pending[batch] = translated
            while len(self._pending) > _MAX_PENDING:
                self._pending.popitem(last=False)

        async def post_body(body: bytes) -> httpx.Response:
            return await post(http, self.endpoint, "remote write", body, _HEADERS)

        try:
            refused, reason = await send(translated, post_body, self.max_request_bytes)
        except PermanentError:
            self._pending.pop(batch, None)  # never sent again: forget its translation
            raise
        self._pending.pop(batch, None)
        return Refused(len(refused), reason) if reason else None

    def write_request(self, request: ExportMetricsServiceRequest) -> Any:
        """The ``WriteRequest`` for an OTLP metrics request (updates the series state)."""
        return self.translate(request).request

    def translate(self, request: ExportMetricsServiceRequest) -> Translated:
        """The ``WriteRequest`` for an OTLP metrics request and the point of each series
        (updates the series state)."""
        translation = translate(request)
        points = self.store.apply(translation)
        out = pb.WriteRequest()
        owners: list[int | None] = []
        families: dict[str, PromPoint] = {}
        newest: dict[tuple[str, str], int] = {}
        for index, point in enumerate(points):
            for name, labels, value, exemplars in samples(point, self.created_series):
                owners.append(index)
                series = out.timeseries.add()
                _set_labels(series.labels, (("__name__", name), *labels))
                series.samples.add(value=value, timestamp=point.time_ns // 1_000_000)
                for exemplar in exemplars:
                    stamp = exemplar.time_ns // 1_000_000
                    proto = series.exemplars.add(value=exemplar.value, timestamp=stamp)
                    _set_labels(proto.labels, exemplar.labels)
            families.setdefault(point.family, point)
            key = (_label(point.labels, "job"), _label(point.labels, "instance"))
            newest[key] = max(newest.get(key, 0), point.time_ns // 1_000_000)
        for key, labels in translation.targets.items():
            latest = newest.get(key)
            if latest is None or latest <= self._target_times.get(key, -1):
                continue  # an older or equal timestamp would be refused as out of order
            self._target_times[key] = latest
            owners.append(None)
            series = out.timeseries.add()
            _set_labels(series.labels, (("__name__", "target_info"), *labels))
            series.samples.add(value=1.0, timestamp=latest)
        if len(self._target_times) > 2 * len(self.store.targets) + 100:
            self._target_times = {k: v for k, v in self._target_times.items()
                                  if k in self.store.targets}  # fmt: skip
        for point in families.values():
            out.metadata.add(
                type=pb.METRIC_TYPES[point.kind.value],
                metric_family_name=_main_name(point),
                help=point.help,
                unit=point.unit,
            )
        return Translated(out, owners)


def _within(point: PromPoint, lower: float, upper: float) -> tuple[PromExemplar, ...]:
    return tuple(e for e in point.exemplars if lower < e.value <= upper)


def _main_name(point: PromPoint) -> str:
    return f"{point.family}_total" if point.kind is Kind.COUNTER else point.family


def _label(labels: Labels, name: str) -> str:
    return next((v for k, v in labels if k == name), "")


def _set_labels(target: Any, labels: Labels) -> None:
    """Labels sorted by name (``__name__`` sorts first), no empty values."""
    for name, value in sorted(labels):
        if value:
            target.add(name=name, value=value)


def samples(
    point: PromPoint, created: bool = False
) -> Iterator[tuple[str, Labels, float, tuple[PromExemplar, ...]]]:
    """``(metric name, labels, value, exemplars)`` of every sample of a cumulative point
    (and its ``_created`` sample if ``created``); stale markers for a point flagged as having
    no recorded value."""
    if created and point.kind is not Kind.GAUGE and point.start_ns > 0:
        start = STALE_NAN if point.stale else point.start_ns / 1e9
        yield f"{point.family}_created", point.labels, start, ()
    name, labels = _main_name(point), point.labels
    if point.kind in (Kind.COUNTER, Kind.GAUGE):
        value = STALE_NAN if point.stale else point.value
        yield name, labels, value, () if point.stale else point.exemplars
        return
    if point.kind is Kind.SUMMARY:
        for quantile, value in point.quantiles:
            yield name, (*labels, ("quantile", floatToGoString(quantile))), value, ()
    else:
        total, lower = 0, -math.inf
        for bound, count in zip(point.bounds, point.counts, strict=False):
            total += count
            yield (
                f"{name}_bucket",
                (*labels, ("le", floatToGoString(bound))),
                STALE_NAN if point.stale else float(total),
                _within(point, lower, bound),
            )
            lower = bound
        everything = max(point.count, sum(point.counts))
        yield (
            f"{name}_bucket",
            (*labels, ("le", "+Inf")),
            STALE_NAN if point.stale else float(everything),
            _within(point, lower, math.inf),
        )
    count = max(point.count, sum(point.counts))
    yield f"{name}_count", labels, STALE_NAN if point.stale else float(count), ()
    if point.sum is not None or point.stale:
        yield f"{name}_sum", labels, STALE_NAN if point.stale else point.sum or 0.0, ()


class PrometheusRemoteWriteExporterConfig(ExporterSettings):
    """The ``prometheusremotewrite`` exporter, metrics only: remote write 1.0 to
    ``endpoint`` (the full URL, e.g. ``http://prometheus:9090/api/v1/write``). One queue
    consumer by default, so each series' samples arrive in time order. ``created_series``
    also sends ``<name>_created`` series (off by default, as in the Collector)."""

    endpoint: str
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = Field(default=DEFAULT_EXPORT_TIMEOUT, gt=0)
    metric_expiration: Duration = Field(default=300.0, gt=0)
    created_series: bool = False
    # Largest request sent, before snappy; more series go in several requests. 0: no limit.
    max_request_bytes: int = Field(default=REMOTE_WRITE_MAX_REQUEST_BYTES, ge=0)
    sending_queue: QueueSettings = QueueSettings(num_consumers=1)

    @field_validator("endpoint")
    @classmethod
    def _url(cls, value: str) -> str:
        url = urlsplit(value)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(
                f"'{value}' must be an http:// or https:// URL, e.g. "
                "http://prometheus:9090/api/v1/write"
            )
        try:
            url.port  # noqa: B018  # raises on a bad port
        except ValueError:
            raise ValueError(f"port in '{value}' must be a number in 1..65535") from None
        return value


def create_remote_write(
    name: str, config: PrometheusRemoteWriteExporterConfig, host: Host
) -> RemoteWriteExporter:
    """The exporter of a ``prometheusremotewrite`` entry."""
    return RemoteWriteExporter(
        config.endpoint,
        name=name,
        headers=config.headers,
        timeout=config.timeout,
        metric_expiration=config.metric_expiration,
        created_series=config.created_series,
        max_request_bytes=config.max_request_bytes,
        registry=host.metrics.registry,
    )


FACTORY = ComponentFactory(
    kind="exporter",
    type_name="prometheusremotewrite",
    config=PrometheusRemoteWriteExporterConfig,
    signals=frozenset({Signal.METRICS}),
    create=create_remote_write,
    example={"endpoint": "http://127.0.0.1:9090/api/v1/write"},
)
