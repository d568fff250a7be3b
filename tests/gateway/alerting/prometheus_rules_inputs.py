"""What the Prometheus rule tests share: metric names, rule builders, the default and
every-kind rule sets, promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from gateway.alerting.defaults import DEFAULT_RULES
from gateway.alerting.prometheus_rules import alert_rules
from gateway.alerting.rules import RuleConfig

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
SERVER = 'span_kind="SPAN_KIND_SERVER"'
ERROR = 'status_code="STATUS_CODE_ERROR"'
CALLS = "traces_span_metrics_calls_total"
HOST = 'otel_scope_name="otelgate.hostmetrics"'
FILESYSTEM = "system_filesystem_utilization_ratio"


def rule(**body: Any) -> RuleConfig:
    return RuleConfig.model_validate({"name": "R", **body})


def expr_of(*rules: RuleConfig, **options: Any) -> str:
    data, skipped = alert_rules(list(rules), **options)
    assert skipped == []
    return str(data["groups"][0]["rules"][0]["expr"])


def defaults() -> list[RuleConfig]:
    return [RuleConfig.model_validate(body) for body in DEFAULT_RULES]


# Every kind of condition, with the settings each one takes.
EVERY_KIND: list[dict[str, Any]] = [
    {"name": "Errors", "service": "orders", "for": "1m", "keep_firing_for": "5m",
     "condition": {"error_rate": {"above": 0.1, "min_requests": 20}},
     "labels": {"team": "shop"},
     "annotations": {"summary": "{{ service }}: errors {{ value }} above {{ threshold }}"}},
    {"name": "SlowP95", "condition": {"latency_p95": {"above": "250ms"}},
     "annotations": {"summary": "{{ service }}: p95 {{ value }} above {{ threshold }}"}},
    {"name": "SlowP99", "condition": {"latency_p99": {"above": 1}}},
    {"name": "LowTraffic", "condition": {"request_rate": {"below": 0.5}},
     "annotations": {"summary": "{{ service }}: {{ value }} below {{ threshold }}"}},
    {"name": "Stale", "condition": {"stale": True},
     "annotations": {"summary": "{{ service }} silent for {{ value }}"}},
    {"name": "Unhealthy", "condition": {"health": "unhealthy"}},
    {"name": "Cpu", "condition": {"cpu": {"above": 0.8}},
     "annotations": {"summary": "CPU {{ value }} on {{ labels.instance }}"}},
    {"name": "Memory", "condition": {"memory": {"above": 0.9}}},
    {"name": "DataDisk", "condition": {"filesystem": {
        "above": 0.8, "paths": ["/var/lib/otelgate/spool", "/var/lib/otelgate"]}},
     "annotations": {"summary": "{{ labels.path }} on {{ labels.mountpoint }}: {{ value }}"}},
    {"name": "AnyDisk", "condition": {"filesystem": {"above": 0.9}}},
    {"name": "Exporter", "condition": {"exporter": {"failing": True}}, "for": "2m",
     "annotations": {"summary": "{{ labels.exporter }} cannot deliver ({{ rule }}, "
                                "{{ severity }})"}},
    {"name": "ExporterDown", "condition": {"exporter": {"failing": True, "name": "otlp/down"}}},
    {"name": "Queue", "condition": {"queue_fill": {"above": 0.5}},
     "annotations": {"summary": "{{ labels.exporter }} queue at {{ value }}"}},
    {"name": "Lost", "condition": {"dropped_items": {"above": 10, "window": "10m"}},
     "annotations": {"summary": "{{ labels.exporter }} lost {{ value }} items"}},
    {"name": "Burn", "condition": {"slo_burn": {"slo": "*"}}},
    {"name": "Logs", "condition": {"log_count": {"above": 5}}},
    {"name": "NewErrors", "condition": {"error_group": "new"}},
]  # fmt: skip
SKIPPED = ["Unhealthy", "Burn", "Logs", "NewErrors"]


def every_kind() -> list[RuleConfig]:
    return [RuleConfig.model_validate(body) for body in EVERY_KIND]


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )  # fmt: skip
