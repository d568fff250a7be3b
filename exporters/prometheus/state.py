"""The in-memory Prometheus series the exporters keep: delta points accumulated into
cumulative ones, a per-metric series limit, and expiry of series nobody updates any more.

Both Prometheus exporters use a :class:`SeriesStore`: the pull exporter renders it on every
scrape; remote write feeds points through it so that deltas become cumulative and
out-of-order points are dropped before Prometheus would refuse the whole request.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge

from exporters.prometheus.translate import Kind, Labels, PromPoint, Translation

log = logging.getLogger("otelgate.exporter.prometheus")
_MS = 1_000_000  # Prometheus keeps millisecond timestamps: a point must be at least 1 ms newer


@dataclass(slots=True)
class Series:
    """One series' latest cumulative state."""

    point: PromPoint
    updated: float  # monotonic clock of the last update


@dataclass(slots=True)
class Family:
    """A metric family: its type, HELP, UNIT and series keyed by label set."""

    name: str
    kind: Kind
    help: str
    unit: str
    series: dict[Labels, Series] = field(default_factory=dict)


@dataclass(slots=True)
class Target:
    """The ``target_info`` labels of one job+instance."""

    labels: Labels
    updated: float


class SeriesStore:
    """Cumulative series by family and label set.

    ``max_series_per_metric`` (0 = no limit) refuses new label sets of a family once it has
    that many series; ``expiration`` (seconds) removes series not updated for that long.
    ``on_refused(family)`` and ``on_dropped(reason, points)`` report what was not kept,
    ``on_relabelled(reason, labels)`` the attribute labels translation renamed or dropped.
    """

    def __init__(
        self,
        *,
        expiration: float = 300.0,
        max_series_per_metric: int = 0,
        clock: Callable[[], float] = time.monotonic,
        on_refused: Callable[[str], None] | None = None,
        on_dropped: Callable[[str, int], None] | None = None,
        on_relabelled: Callable[[str, int], None] | None = None,
    ) -> None:
        self.expiration = expiration
        self.max_series_per_metric = max_series_per_metric
        self.families: dict[str, Family] = {}
        self.targets: dict[tuple[str, str], Target] = {}
        self._clock = clock
        self._on_refused = on_refused
        self._on_dropped = on_dropped
        self._on_relabelled = on_relabelled
        self._last_sweep = clock()
        self._conflicts_logged: set[str] = set()

    @property
    def series_count(self) -> int:
        """How many series are held."""
        return sum(len(f.series) for f in self.families.values())

    def apply(self, translation: Translation) -> list[PromPoint]:
        """Take a translated request; returns the cumulative state of every series it
        updated (valid until the next call) and its stale points, in request order."""
        now = self._clock()
        for reason, points in translation.dropped.items():
            self._dropped(reason, points)
        if self._on_relabelled is not None:
            for reason, renamed in translation.relabelled.items():
                self._on_relabelled(reason, renamed)
        for key, labels in translation.targets.items():
            self.targets[key] = Target(labels, now)
        updated: list[PromPoint] = []
        for point in translation.points:
            result = self._update(point, now)
            if result is not None:
                updated.append(result)
        if now - self._last_sweep >= min(5.0, self.expiration):
            self.expire(now)
        return updated

    def _dropped(self, reason: str, points: int = 1) -> None:
        if self._on_dropped is not None and points:
            self._on_dropped(reason, points)

    def _update(self, point: PromPoint, now: float) -> PromPoint | None:
        family = self.families.get(point.family)
        if family is None:
            family = Family(point.family, point.kind, point.help, point.unit)
            self.families[point.family] = family
        elif family.kind is not point.kind:
            self._dropped("type_conflict")
            if point.family not in self._conflicts_logged:
                self._conflicts_logged.add(point.family)
                log.warning(
                    "metric %s arrives as %s and %s; dropping the %s points",
                    point.family, family.kind, point.kind, point.kind,
                )  # fmt: skip
            return None
        if point.stale:
            family.series.pop(point.labels, None)
            return point
        series = family.series.get(point.labels)
        if series is None:
            limit = self.max_series_per_metric
            if limit and len(family.series) >= limit:
                if self._on_refused is not None:
                    self._on_refused(family.name)
                return None
            family.series[point.labels] = Series(point, now)
            return point
        if point.time_ns // _MS <= series.point.time_ns // _MS:  # older, or the same again
            self._dropped("out_of_order")
            return None
        if point.delta:
            _accumulate(series.point, point)
        else:
            series.point = point
        series.updated = now
        return series.point

    def expire(self, now: float | None = None) -> int:
        """Remove series and targets not updated for ``expiration`` seconds."""
        now = self._clock() if now is None else now
        self._last_sweep = now
        cutoff = now - self.expiration
        removed = 0
        for name in list(self.families):
            family = self.families[name]
            old = [labels for labels, s in family.series.items() if s.updated < cutoff]
            for labels in old:
                del family.series[labels]
            removed += len(old)
            if not family.series:
                del self.families[name]
        for key in [k for k, t in self.targets.items() if t.updated < cutoff]:
            del self.targets[key]
        return removed

    def __iter__(self) -> Iterator[Family]:
        return iter(list(self.families.values()))


def _accumulate(total: PromPoint, delta: PromPoint) -> None:
    """Add a delta point to a series' running total (in place)."""
    total.time_ns = delta.time_ns
    if delta.exemplars:
        total.exemplars = delta.exemplars
    if total.kind is Kind.COUNTER:
        total.value += delta.value
        return
    if total.bounds != delta.bounds or len(total.counts) != len(delta.counts):
        # New bucket layout: a reset, the series starts again from this point.
        total.bounds, total.counts, total.count = delta.bounds, delta.counts, delta.count
        total.sum, total.start_ns = delta.sum, delta.start_ns
        return
    total.counts = tuple(a + b for a, b in zip(total.counts, delta.counts, strict=True))
    total.count += delta.count
    total.sum = None if total.sum is None or delta.sum is None else total.sum + delta.sum


class PromExporterMetrics:
    """What the Prometheus exporters count, on the gateway's registry (its ``/metrics``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.refused_series = Counter(
            "otelgate_prometheus_refused_series",
            "New series refused because their metric reached max_series_per_metric.",
            ["exporter", "metric"],
            registry=registry,
        )
        self.dropped_points = Counter(
            "otelgate_prometheus_dropped_points",
            "Data points not turned into Prometheus samples, by reason.",
            ["exporter", "reason"],
            registry=registry,
        )
        self.label_conflicts = Counter(
            "otelgate_prometheus_label_conflicts",
            "Attribute labels that collided with a label the translation sets, renamed to "
            "exported_<name> or dropped so the series stays valid, by reason.",
            ["exporter", "reason"],
            registry=registry,
        )
        self.series = Gauge(
            "otelgate_prometheus_series",
            "Series held in memory by a Prometheus exporter.",
            ["exporter"],
            registry=registry,
        )


_METRICS: weakref.WeakKeyDictionary[CollectorRegistry, PromExporterMetrics] = (
    weakref.WeakKeyDictionary()
)


def exporter_metrics(registry: CollectorRegistry) -> PromExporterMetrics:
    """The exporters' metrics on ``registry``, registered once however many exporters."""
    metrics = _METRICS.get(registry)
    if metrics is None:
        metrics = _METRICS[registry] = PromExporterMetrics(registry)
    return metrics


def store_for(
    name: str, registry: CollectorRegistry, *, expiration: float, max_series_per_metric: int
) -> SeriesStore:
    """A store whose refusals and drops are counted on ``registry`` for exporter ``name``."""
    metrics = exporter_metrics(registry)
    store = SeriesStore(
        expiration=expiration,
        max_series_per_metric=max_series_per_metric,
        on_refused=lambda metric: metrics.refused_series.labels(name, metric).inc(),
        on_dropped=lambda reason, n: metrics.dropped_points.labels(name, reason).inc(n),
        on_relabelled=lambda reason, n: metrics.label_conflicts.labels(name, reason).inc(n),
    )
    metrics.series.labels(name).set_function(lambda: store.series_count)
    return store
