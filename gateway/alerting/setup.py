"""Alerting built for one gateway: its sources, its history and the service itself."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry

from exporters.queue import ExporterQueue
from gateway.alerting.config import AlertingConfig
from gateway.alerting.history import AlertHistory
from gateway.alerting.log_counter import LogCounter
from gateway.alerting.rules import RuleConfig
from gateway.alerting.ruleset import resolve_rules
from gateway.alerting.service import AlertingMetrics, AlertingService
from gateway.alerting.sources import GatewaySources, LossHistory
from gateway.config.issues import ConfigError
from gateway.error_tracking.tracker import ErrorTracker
from gateway.health.services import ServiceHealthTracker
from gateway.health.system import SystemSampler
from gateway.logfiles.managed import ManagedFile
from gateway.selfmetrics import GatewayMetrics
from gateway.slo.tracker import SloTracker


def rules_of(config: AlertingConfig) -> list[RuleConfig]:
    """The rules the loader resolved, or resolved now (relative to the working directory)."""
    if config.resolved_rules is not None:
        return config.resolved_rules
    rules, issues = resolve_rules(config, Path.cwd())
    if issues:
        raise ConfigError(issues)
    return rules


def filesystem_paths(rules: Sequence[RuleConfig]) -> list[str]:
    """Paths rules name explicitly (the sampler must watch their filesystems)."""
    return [
        p for r in rules if r.condition.filesystem is not None for p in r.condition.filesystem.paths
    ]


def external_url(config: AlertingConfig, admin_endpoint: str) -> str:
    """Where alerts link to: ``alerting.external_url`` or the admin listener."""
    if config.external_url:
        return config.external_url.rstrip("/")
    host, _, port = admin_endpoint.rpartition(":")
    if host in ("0.0.0.0", "[::]", "::", ""):
        host = "localhost"
    return f"http://{host}:{port}"


def build_alerting(
    config: AlertingConfig,
    rules: Sequence[RuleConfig],
    *,
    admin_endpoint: str,
    registry: CollectorRegistry,
    metrics: GatewayMetrics,
    services: ServiceHealthTracker,
    sampler: SystemSampler,
    queues: Mapping[str, ExporterQueue],
    slos: SloTracker | None,
    watched_paths: Sequence[str],
    max_sample_age: float,
    error_groups: ErrorTracker | None = None,
    log_files: Callable[[], Sequence[ManagedFile]] = list,
) -> tuple[AlertingService, LogCounter]:
    """The alerting service (its history gets a store on start) and its log counter (an
    observer to register when it is active)."""
    logs = LogCounter(rules)
    sources = GatewaySources(
        services=services,
        sampler=sampler,
        queues=queues,
        losses=LossHistory([metrics.exporter_dropped, metrics.exporter_failed]),
        slos=slos,
        logs=logs,
        watched_paths=watched_paths,
        max_sample_age=max_sample_age,
        error_groups=error_groups,
        log_files=log_files,
    )
    if error_groups is not None:  # a change is reported to two evaluations at least
        error_groups.change_window = 2.5 * config.evaluation_interval
    service = AlertingService(
        config,
        rules,
        sources.observe,
        AlertHistory(None),
        AlertingMetrics.register(registry),
        external_url=external_url(config, admin_endpoint),
    )
    service.log_counter = logs
    service.sources = sources
    return service, logs
