"""The Prometheus pull exporter: OTLP metrics served for scraping on the admin listener.

``push`` translates a metrics batch (:mod:`exporters.prometheus.translate`) into the exporter's
series (:mod:`exporters.prometheus.state`); a scrape of :attr:`PrometheusExporter.path` (default
``/metrics/otlp``) renders them with prometheus_client's exposition, negotiating OpenMetrics
or the classic text format from ``Accept``. The gateway's own metrics stay on ``/metrics``:
the OTLP-derived series carry their services' ``job``/``instance`` and are scraped with
``honor_labels: true``, the gateway's own series must not be.

``_created`` series (the start time of counters, histograms and summaries) are served only
with ``created_series=True``: like the Collector's exporters by default, they are left out,
since Prometheus 2.x stores each as one more series per counter and histogram.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from fastapi import APIRouter, Request
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar
from prometheus_client.utils import floatToGoString
from pydantic import (
    Field,
    field_validator,
)
from starlette.responses import Response

from exporters.base import ExporterBase
from exporters.prometheus.state import Family, SeriesStore, store_for
from exporters.prometheus.translate import (
    Kind,
    PromExemplar,
    PromPoint,
    bucket_exemplars,
    translate,
)
from exporters.settings import ExporterSettings
from gateway.config.values import Duration
from gateway.errors import PermanentError
from gateway.otlp.batch import Batch, Signal
from gateway.registry import ComponentFactory, Host

DEFAULT_PATH = "/metrics/otlp"


class PrometheusExporter(ExporterBase):
    """Keeps the latest value of every series and serves them on ``path``."""

    def __init__(
        self,
        name: str = "prometheus",
        *,
        path: str = DEFAULT_PATH,
        metric_expiration: float = 300.0,
        max_series_per_metric: int = 2000,
        created_series: bool = False,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.name = name
        self.path = path
        self.store: SeriesStore = store_for(
            name,
            registry if registry is not None else CollectorRegistry(),
            expiration=metric_expiration,
            max_series_per_metric=max_series_per_metric,
        )
        # The OTLP-derived series live in a private registry, never the gateway's own.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StoreCollector(self.store, created_series=created_series))

    def __repr__(self) -> str:
        return f"PrometheusExporter({self.path!r})"

    async def push(self, batch: Batch) -> None:
        """Fold a metrics batch into the served series (other signals are refused)."""
        if batch.signal is not Signal.METRICS:
            raise PermanentError(f"the prometheus exporter takes metrics, not {batch.signal}")
        self.store.apply(translate(batch.request))  # type: ignore[arg-type]  # metrics

    def render(self, accept: str) -> tuple[bytes, str]:
        """The exposition for an ``Accept`` header, and its Content-Type."""
        self.store.expire()
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    def admin_router(self) -> APIRouter:
        """The scrape route, mounted on the admin listener by the gateway."""
        router = APIRouter()

        # async: runs on the event loop, like push, so the store is never read mid-update.
        @router.get(self.path, include_in_schema=False)
        async def scrape(request: Request) -> Response:
            body, content_type = self.render(request.headers.get("accept", ""))
            return Response(body, media_type=content_type)

        return router


class StoreCollector(Collector):
    """A prometheus_client collector yielding the store's families on each scrape
    (with their ``_created`` samples when ``created_series``)."""

    def __init__(self, store: SeriesStore, *, created_series: bool = False) -> None:
        self.store = store
        self.created_series = created_series

    def collect(self) -> Iterable[Metric]:
        for family in self.store:
            if family.series:
                yield _family_metric(family, self.created_series)
        if self.store.targets:
            info = InfoMetricFamily("target", "Target metadata")
            for target in self.store.targets.values():
                info.add_sample("target_info", dict(target.labels), 1.0)
            yield info


def _family_metric(family: Family, created: bool) -> Metric:
    name, doc, unit = family.name, family.help, family.unit
    points = (s.point for s in family.series.values())
    if family.kind is Kind.COUNTER:
        counter = CounterMetricFamily(name, doc, unit=unit)
        for p in points:
            labels = dict(p.labels)
            counter.add_sample(f"{counter.name}_total", labels, p.value, None, _latest(p))
            if created:
                _created(counter, p, labels)
        return counter
    if family.kind is Kind.GAUGE:
        gauge = GaugeMetricFamily(name, doc, unit=unit)
        for p in points:
            gauge.add_sample(gauge.name, dict(p.labels), p.value)
        return gauge
    if family.kind is Kind.HISTOGRAM:
        histogram = HistogramMetricFamily(name, doc, unit=unit)
        for p in points:
            _histogram_samples(histogram, p)
            if created:
                _created(histogram, p, dict(p.labels))
        return histogram
    summary = SummaryMetricFamily(name, doc, unit=unit)
    for p in points:
        labels = dict(p.labels)
        for quantile, value in p.quantiles:
            summary.add_sample(summary.name, {**labels, "quantile": floatToGoString(quantile)},
                               value)  # fmt: skip
        summary.add_sample(f"{summary.name}_count", labels, float(p.count))
        summary.add_sample(f"{summary.name}_sum", labels, p.sum or 0.0)
        if created:
            _created(summary, p, labels)
    return summary


def _histogram_samples(histogram: Metric, p: PromPoint) -> None:
    labels = dict(p.labels)
    exemplars = bucket_exemplars(p.bounds, p.exemplars) if p.exemplars else None
    total = 0
    for i, bound in enumerate(p.bounds):
        total += p.counts[i]
        exemplar = _exemplar(exemplars[i]) if exemplars else None
        bucket_labels = {**labels, "le": floatToGoString(bound)}
        histogram.add_sample(f"{histogram.name}_bucket", bucket_labels, float(total), None,
                             exemplar)  # fmt: skip
    count = max(p.count, total + (p.counts[-1] if p.counts else 0))
    inf_exemplar = _exemplar(exemplars[-1]) if exemplars else None
    histogram.add_sample(f"{histogram.name}_bucket", {**labels, "le": "+Inf"}, float(count),
                         None, inf_exemplar)  # fmt: skip
    histogram.add_sample(f"{histogram.name}_count", labels, float(count))
    if p.sum is not None:
        histogram.add_sample(f"{histogram.name}_sum", labels, p.sum)


def _created(metric: Metric, p: PromPoint, labels: dict[str, str]) -> None:
    """The point's start time, in seconds, as ``<name>_created`` (when it is known)."""
    if p.start_ns > 0:
        metric.add_sample(f"{metric.name}_created", labels, p.start_ns / 1e9)


def _exemplar(exemplar: PromExemplar | None) -> Exemplar | None:
    if exemplar is None:
        return None
    return Exemplar(dict(exemplar.labels), exemplar.value, exemplar.time_ns / 1e9 or None)


def _latest(p: PromPoint) -> Exemplar | None:
    return _exemplar(max(p.exemplars, key=lambda e: e.time_ns)) if p.exemplars else None


_ADMIN_PATHS = ("/metrics", "/health", "/slo", "/alerts", "/errors", "/api", "/docs")


class PrometheusExporterConfig(ExporterSettings):
    """The ``prometheus`` pull exporter, metrics only: served on the admin listener at
    ``path``; series not updated for ``metric_expiration`` are removed; a metric takes at
    most ``max_series_per_metric`` series (0 = no limit). ``created_series`` adds the
    ``_created`` samples (off, as in the Collector: one more series per counter/histogram)."""

    path: str = "/metrics/otlp"
    metric_expiration: Duration = Field(default=300.0, gt=0)
    max_series_per_metric: int = Field(default=2000, ge=0)
    created_series: bool = False

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", value):
            raise ValueError(f"'{value}' must be a URL path such as /metrics/otlp")
        if value in _ADMIN_PATHS or value == "/" or value.startswith("/health/"):
            raise ValueError(f"'{value}' is an admin route of the gateway; pick another path")
        return value


def create_prometheus(
    name: str, config: PrometheusExporterConfig, host: Host
) -> PrometheusExporter:
    """The exporter of a ``prometheus`` entry; its series count in the gateway's metrics."""
    return PrometheusExporter(
        name,
        path=config.path,
        metric_expiration=config.metric_expiration,
        max_series_per_metric=config.max_series_per_metric,
        created_series=config.created_series,
        registry=host.metrics.registry,
    )


FACTORY = ComponentFactory(
    kind="exporter",
    type_name="prometheus",
    config=PrometheusExporterConfig,
    signals=frozenset({Signal.METRICS}),
    create=create_prometheus,
)
