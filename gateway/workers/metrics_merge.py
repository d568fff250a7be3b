"""One ``/metrics`` for a gateway of several processes (``service.workers`` > 1).

The supervisor's admin listener serves :class:`MergedMetrics`: its own registry and the last
families every worker reported, merged into one series per label set. A
:class:`WorkerMetricsBook` keeps each process's last snapshot and, when a process ends, folds
its counters into a retired total, so merged counters never go backwards (Prometheus would see
a reset). Gauges of a process that is gone, or replaced and draining, are dropped.

Merge rules, per sample (name and label set): counters, histograms and summaries are summed
(``_created``: the earliest; summary quantiles: the largest); gauges follow
:data:`GAUGE_RULES` (sum by default); info and stateset families come from the first source
that has them (the supervisor's own). Exemplars and sample timestamps are dropped.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.samples import Sample

from gateway.workers.status import WorkerSlot, WorkerStatus
from gateway.workers.view import is_live

Rule = Literal["sum", "max", "min", "first"]

#: Gauges that are not additive across processes; every other gauge is summed (queue sizes,
#: capacities, in-flight bytes and budgets, connections and their limits: each process has
#: its own, so the gateway's total is the sum and ratios of two sums stay meaningful).
GAUGE_RULES: dict[str, Rule] = {
    # How late each process's own event loop is (each one sheds on its own delay): the worst.
    "otelgate_event_loop_delay_seconds": "max",
    # One file (by path) seen by several processes: a status level 0/1/2 (the worst), its
    # size (one file, not a sum) and its filesystem's free space (the most pessimistic).
    "otelgate_log_file_status": "max",
    "otelgate_log_file_size_bytes": "max",
    "otelgate_log_file_free_bytes": "min",
    # A flag: 1 only when every process's last reload succeeded; then the last such time.
    "otelgate_config_last_reload_successful": "min",
    "otelgate_config_last_reload_success_timestamp_seconds": "max",
    # Computed from state only the supervisor holds (one store file, the SLO tracker, the
    # alert engine, error groups): ratios, flags and counts a worker's empty copy must not
    # add to or outvote.
    "otelgate_store_file_bytes": "first",
    "otelgate_store_max_size_bytes": "first",
    "otelgate_slo_sli": "first",
    "otelgate_slo_error_budget_remaining_ratio": "first",
    "otelgate_slo_burn_rate": "first",
    "otelgate_slo_objective_ratio": "first",
    "otelgate_slo_alert": "first",
    "otelgate_alerts": "first",
    "otelgate_error_groups": "first",
}

CUMULATIVE = frozenset({"counter", "histogram", "summary"})
WHOLE = frozenset({"info", "stateset"})  # enums are statesets
SLOT_STATES = ("starting", "running", "restarting", "stopping", "stopped")

_Key = tuple[str, tuple[tuple[str, str], ...]]  # sample name, sorted labels


def _sample_rule(family: Metric, sample: Sample) -> Rule:
    if family.type in CUMULATIVE:
        if sample.name.endswith("_created"):
            return "min"
        return "max" if "quantile" in sample.labels else "sum"
    return GAUGE_RULES.get(family.name, "sum")


def _combine(rule: Rule, old: float, new: float) -> float:
    if rule == "sum":
        return old + new
    if rule == "first" or math.isnan(new):
        return old
    if math.isnan(old):
        return new
    return max(old, new) if rule == "max" else min(old, new)


def _bound(value: str | None) -> float:
    """An ``le`` or ``quantile`` label as a number, for ordering (0 when absent)."""
    if value is None:
        return 0.0
    try:
        return float(value)
    except ValueError:
        return math.inf


@dataclass(slots=True)
class _Family:
    metric: Metric  # type, documentation and unit of the first source
    values: dict[_Key, float]
    labels: dict[_Key, dict[str, str]]  # as first seen (in their order)
    names: dict[str, int]  # sample name -> first-seen rank
    whole: bool = False  # info/stateset: samples copied from the first source

    def add(self, family: Metric) -> None:
        if self.whole:
            return
        for s in family.samples:
            self.names.setdefault(s.name, len(self.names))
            key = (s.name, tuple(sorted(s.labels.items())))
            old = self.values.get(key)
            if old is None:
                self.labels[key] = dict(s.labels)
                self.values[key] = float(s.value)
            else:
                self.values[key] = _combine(_sample_rule(family, s), old, float(s.value))

    def build(self) -> Metric:
        metric = Metric(self.metric.name, self.metric.documentation, self.metric.type)
        metric.unit = self.metric.unit
        if self.whole:
            metric.samples = [
                Sample(s.name, s.labels, s.value, s.timestamp) for s in self.metric.samples
            ]
            return metric

        # Keep each label set's samples together (buckets by le, then _count, _sum, _created),
        # as OpenMetrics requires, in the order the label sets were first seen.
        def series(key: _Key) -> tuple[tuple[str, str], ...]:
            return tuple(kv for kv in key[1] if kv[0] not in ("le", "quantile"))

        groups: dict[tuple[tuple[str, str], ...], int] = {}
        for key in self.values:
            groups.setdefault(series(key), len(groups))

        def order(key: _Key) -> tuple[int, int, float]:
            labels = self.labels[key]
            bound = _bound(labels.get("le", labels.get("quantile")))
            return groups[series(key)], self.names[key[0]], bound

        for key in sorted(self.values, key=order):
            metric.add_sample(key[0], self.labels[key], self.values[key])
        return metric


def merge_families(sources: Iterable[Iterable[Metric]]) -> list[Metric]:
    """One family per name with one sample per label set, by the rules above (pure)."""
    families: dict[str, _Family] = {}
    for source in sources:
        for family in source:
            found = families.get(family.name)
            if found is None:
                found = families[family.name] = _Family(family, {}, {}, {}, family.type in WHOLE)
            elif found.metric.type != family.type:
                continue  # a clash cannot be exposed validly: the first source's type wins
            found.add(family)
    return [f.build() for f in families.values()]


def cumulative_only(families: Iterable[Metric]) -> list[Metric]:
    """What outlives a process: its counter, histogram and summary samples (no quantiles)."""
    kept = []
    for family in families:
        if family.type in CUMULATIVE:
            copy = Metric(family.name, family.documentation, family.type)
            copy.unit = family.unit
            copy.samples = [s for s in family.samples if "quantile" not in s.labels]
            kept.append(copy)
    return kept


class WorkerMetricsBook:
    """The last families of every worker process, and the total of the processes that ended.

    Keyed by process (pid), not by slot: a worker replaced on reload keeps serving and
    draining while its successor runs, and both count. A process is retired when its link
    reaches its end (it exited; its last report was read): its counters, histograms and
    summaries move into :attr:`retired`, so merged counters never go backwards (Prometheus
    would see a reset); its gauges go.

    Thread-safe: statuses arrive on the event loop while ``/metrics`` (a sync route) collects
    in a thread; a scrape must never see a retired process both in the total and current.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._processes: dict[int, list[Metric]] = {}
        self._ended: set[int] = set()
        self.retired: list[Metric] = []

    def note(self, pid: int, metrics: list[Metric]) -> None:
        """Record the families process ``pid`` reported (call on every status); a report of
        a process already retired is ignored."""
        with self._lock:
            if pid not in self._ended:
                self._processes[pid] = list(metrics)

    def retire(self, pid: int) -> None:
        """Process ``pid`` ended: fold its cumulative families into :attr:`retired`."""
        with self._lock:
            self._ended.add(pid)
            metrics = self._processes.pop(pid, None)
            if metrics is not None:
                self.retired = merge_families([self.retired, cumulative_only(metrics)])

    def note_status(self, status: WorkerStatus) -> None:
        """:meth:`note` for one :class:`WorkerStatus`."""
        self.note(status.pid, status.metrics)

    def sources(self, slots: Iterable[WorkerSlot]) -> list[list[Metric]]:
        """Each process's families (only cumulative ones when it is not the one running in
        its slot: a replaced process still draining), then the retired total."""
        live = {s.pid for s in slots if is_live(s, s.pid)}
        with self._lock:
            processes, retired = sorted(self._processes.items()), self.retired
        found = [m if pid in live else cumulative_only(m) for pid, m in processes]
        return [*found, retired]


def worker_families(slots: Iterable[WorkerSlot]) -> list[Metric]:
    """The supervisor's own metrics about its worker slots."""
    slots = sorted(slots, key=lambda s: s.index)
    restarts = CounterMetricFamily(
        "otelgate_worker_restarts",
        "Worker processes started in a slot after its first one (a crash or a kill).",
        labels=["worker"],
    )
    up = GaugeMetricFamily(
        "otelgate_worker_up", "1 while the worker slot's process is running.", labels=["worker"]
    )
    states = GaugeMetricFamily("otelgate_workers", "Worker slots by state.", labels=["state"])
    for slot in slots:
        restarts.add_metric([str(slot.index)], slot.restarts)
        up.add_metric([str(slot.index)], 1 if slot.state == "running" else 0)
    known = [*SLOT_STATES, *sorted({s.state for s in slots} - set(SLOT_STATES))]
    for state in known:
        states.add_metric([state], sum(1 for s in slots if s.state == state))
    return [restarts, up, states]


class MergedMetrics:
    """A collector for the supervisor's ``/metrics``: its registry, its worker metrics and
    every worker's families, merged. Serve it directly (``generate_latest(merged)``) or
    through :func:`merged_registry`."""

    def __init__(
        self,
        own: CollectorRegistry,
        slots: Callable[[], Iterable[WorkerSlot]],
        book: WorkerMetricsBook | None = None,
    ) -> None:
        self.own = own
        self.slots = slots
        self.book = book if book is not None else WorkerMetricsBook()

    def note(self, status: WorkerStatus) -> None:
        """Record a worker's status (the supervisor calls this for every one it receives)."""
        self.book.note_status(status)

    def retire(self, pid: int) -> None:
        """Worker process ``pid`` ended (its link is read to the end)."""
        self.book.retire(pid)

    def collect(self) -> Iterator[Metric]:
        slots = list(self.slots())
        yield from merge_families(
            [self.own.collect(), worker_families(slots), *self.book.sources(slots)]
        )


def merged_registry(merged: MergedMetrics) -> CollectorRegistry:
    """A registry holding only ``merged``, for code that takes a :class:`CollectorRegistry`
    (``create_admin_app``)."""
    registry = CollectorRegistry()
    registry.register(merged)
    return registry
