"""Conditions evaluated over one :class:`Observations` of the gateway: pure functions.

Each rule yields the label sets for which its condition holds now, with the value that made
it hold (Prometheus' model: one alert per label set). Per-service rules add ``service``;
resource rules add ``path``/``mountpoint``, exporter rules ``exporter``, SLO rules ``slo``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from gateway.alerting.conditions import Condition
from gateway.alerting.rules import RuleConfig
from gateway.health.services import ServiceReport
from gateway.health.status import ExporterReport
from gateway.health.system import SystemSnapshot
from gateway.logfiles.status import LEVEL_VALUES, FileStatus

Unit = Literal["ratio", "seconds", "count", "rate"]


@dataclass(frozen=True, slots=True)
class Sample:
    """A label set for which a condition holds, its value and the threshold it crossed."""

    labels: dict[str, str]
    value: float
    threshold: float | None
    unit: Unit


class ErrorGroupSource(Protocol):
    """What error tracking tells alerting: groups seen for the first time, or again after
    being resolved, within the last evaluation (the error-grouping issue provides it)."""

    def changed_groups(self, kind: Literal["new", "regression"]) -> Sequence[Mapping[str, str]]:
        """Label sets (``service``, ``group``, ...) of groups that are new / regressed."""
        ...


@dataclass(slots=True)
class Observations:
    """What the gateway knows at one evaluation."""

    services: Sequence[ServiceReport] = ()
    system: SystemSnapshot | None = None
    exporters: Sequence[ExporterReport] = ()
    lost_items: Mapping[str, Callable[[float], float]] = field(default_factory=dict)
    #: Exporters that drop by design when behind (the embedded store): a ``dropped_items``
    #: condition counts them only when it names them.
    shedding: frozenset[str] = frozenset()
    slo_alerts: Mapping[str, Mapping[str, bool]] = field(default_factory=dict)
    log_counts: Callable[[RuleConfig], Mapping[str, float]] | None = None
    error_groups: ErrorGroupSource | None = None
    watched_paths: Sequence[str] = ()
    #: The files the gateway writes and rotates: (owner, status).
    log_files: Sequence[tuple[str, FileStatus]] = ()


def evaluate(rule: RuleConfig, seen: Observations) -> list[Sample]:
    """The label sets for which ``rule``'s condition holds now."""
    condition = rule.condition
    samples = _EVALUATORS[condition.kind](condition, seen, rule)
    if rule.service not in (None, "*"):
        samples = [s for s in samples if s.labels.get("service") == rule.service]
    return samples


def _services(seen: Observations, rule: RuleConfig) -> list[ServiceReport]:
    if rule.service in (None, "*"):
        return list(seen.services)
    return [s for s in seen.services if s.name == rule.service]


def _live(report: ServiceReport) -> bool:
    return report.status != "stale"


def _error_rate(c: Condition, seen: Observations, rule: RuleConfig) -> list[Sample]:
    spec = c.error_rate
    assert spec is not None
    return [
        Sample({"service": s.name}, s.error_rate, spec.above, "ratio")
        for s in _services(seen, rule)
        if _live(s)
        and s.requests >= spec.min_requests
        and s.error_rate is not None
        and s.error_rate > spec.above
    ]


def _latency(which: Literal["p95", "p99"]) -> Callable[..., list[Sample]]:
    def evaluate_latency(c: Condition, seen: Observations, rule: RuleConfig) -> list[Sample]:
        spec = getattr(c, f"latency_{which}")
        found = []
        for s in _services(seen, rule):
            value = getattr(s.latency, which)
            enough = _live(s) and s.requests >= spec.min_requests
            if enough and value is not None and value > spec.above:
                found.append(Sample({"service": s.name}, value, spec.above, "seconds"))
        return found

    return evaluate_latency


def _request_rate(c: Condition, seen: Observations, rule: RuleConfig) -> list[Sample]:
    spec = c.request_rate
    assert spec is not None
    return [
        Sample({"service": s.name}, s.request_rate, spec.below, "rate")
        for s in _services(seen, rule)
        if "traces" in s.signals and s.request_rate < spec.below  # services that serve requests
    ]


def _stale(c: Condition, seen: Observations, rule: RuleConfig) -> list[Sample]:
    return [
        Sample({"service": s.name}, s.seconds_since_seen, s.thresholds.stale_after, "seconds")
        for s in _services(seen, rule)
        if s.status == "stale"
    ]


def _health(c: Condition, seen: Observations, rule: RuleConfig) -> list[Sample]:
    wanted = {"unhealthy"} if c.health == "unhealthy" else {"unhealthy", "degraded"}
    return [
        Sample({"service": s.name}, 1.0 if s.status == "unhealthy" else 0.5, None, "count")
        for s in _services(seen, rule)
        if s.status in wanted
    ]


def _host(resource: Literal["cpu", "memory"]) -> Callable[..., list[Sample]]:
    def evaluate_host(c: Condition, seen: Observations, rule: RuleConfig) -> list[Sample]:
        spec = getattr(c, resource)
        if seen.system is None:
            return []
        value = getattr(seen.system, f"{resource}_utilization")
        return [Sample({}, value, spec.above, "ratio")] if value > spec.above else []

    return evaluate_host


def _filesystem(c: Condition, seen: Observations, rule: RuleConfig) -> list[Sample]:
    spec = c.filesystem
    assert spec is not None
    if seen.system is None:
        return []
    wanted = {os.path.abspath(p) for p in (spec.paths or seen.watched_paths)}
    found = []
    for fs in seen.system.filesystems:
        held = sorted(p for p in fs.holds if os.path.abspath(p) in wanted)
        if held and fs.utilization > spec.above:
            labels = {"path": held[0], "mountpoint": fs.mountpoint}
            found.append(Sample(labels, fs.utilization, spec.above, "ratio"))
    return found


def _exporter(c: Condition, seen: Observations, rule: RuleConfig) -> list[Sample]:
    spec = c.exporter
    assert spec is not None
    return [
        Sample({"exporter": e.name}, 1.0, None, "count")
        for e in seen.exporters
        if e.state != "ok" and spec.name in (None, e.name)
    ]


def _queue_fill(c: Condition, seen: Observations, rule: RuleConfig) -> list[Sample]:
    spec = c.queue_fill
    assert spec is not None
    return [
        Sample({"exporter": e.name}, e.queue_fill_ratio, spec.above, "ratio")
        for e in seen.exporters
        if e.queue_fill_ratio > spec.above and spec.name in (None, e.name)
    ]


def _dropped(c: Condition, seen: Observations, rule: RuleConfig) -> list[Sample]:
    spec = c.dropped_items
    assert spec is not None
    found = []
    for name, increase in sorted(seen.lost_items.items()):
        if spec.name != name and (spec.name is not None or name in seen.shedding):
            continue
        lost = increase(spec.window)
        if lost > spec.above:
            found.append(Sample({"exporter": name}, lost, spec.above, "count"))
    return found


def _slo_burn(c: Condition, seen: Observations, rule: RuleConfig) -> list[Sample]:
    spec = c.slo_burn
    assert spec is not None
    return [
        Sample({"slo": name}, 1.0, None, "count")
        for name, severities in sorted(seen.slo_alerts.items())
        if spec.slo in ("*", name) and severities.get(spec.severity, False)
    ]


def _log_count(c: Condition, seen: Observations, rule: RuleConfig) -> list[Sample]:
    spec = c.log_count
    assert spec is not None
    counts = seen.log_counts(rule) if seen.log_counts is not None else {}
    return [
        Sample({"service": service}, count, spec.above, "count")
        for service, count in sorted(counts.items())
        if count > spec.above
    ]


def _error_group(c: Condition, seen: Observations, rule: RuleConfig) -> list[Sample]:
    if seen.error_groups is None or c.error_group is None:
        return []
    return [
        Sample(dict(labels), 1.0, None, "count")
        for labels in seen.error_groups.changed_groups(c.error_group)
    ]


def _log_file(c: Condition, seen: Observations, rule: RuleConfig) -> list[Sample]:
    spec = c.log_file
    assert spec is not None
    least = LEVEL_VALUES[spec.status]
    return [
        Sample({"path": s.path, "owner": owner}, LEVEL_VALUES[s.level], least, "count")
        for owner, s in seen.log_files
        if LEVEL_VALUES[s.level] >= least and spec.path in (None, s.path)
    ]


_EVALUATORS: dict[str, Callable[[Condition, Observations, RuleConfig], list[Sample]]] = {
    "error_rate": _error_rate,
    "latency_p95": _latency("p95"),
    "latency_p99": _latency("p99"),
    "request_rate": _request_rate,
    "stale": _stale,
    "health": _health,
    "cpu": _host("cpu"),
    "memory": _host("memory"),
    "filesystem": _filesystem,
    "exporter": _exporter,
    "queue_fill": _queue_fill,
    "dropped_items": _dropped,
    "slo_burn": _slo_burn,
    "log_count": _log_count,
    "error_group": _error_group,
    "log_file": _log_file,
}


def format_value(value: float, unit: Unit) -> str:
    """A value as annotations show it: ``7.3%``, ``1.25s``, ``12``, ``0.5/s``."""
    if unit == "ratio":
        return f"{value:.1%}"
    if unit == "seconds":
        return f"{value:.3g}s" if value < 100 else f"{value:.0f}s"
    if unit == "rate":
        return f"{value:.3g}/s"
    return f"{value:g}"
