"""``otelgate alert-rules``: the alert rules as Prometheus alerting rules. PromQL checked by
hand, then by promtool (syntax, and ``promtool test rules`` over series shaped like the
gateway's metrics), then loaded into a real Prometheus."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.alerting.defaults import DEFAULT_NAMES, DEFAULT_RULES
from gateway.alerting.prometheus_rules import alert_rules, prom_duration, render
from gateway.alerting.rules import RuleConfig
from gateway.cli import main
from gateway.health.config import HealthConfig
from tests.support.prometheus_server import PrometheusServer

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


# --- PromQL, by hand ---------------------------------------------------------------------------


def test_error_rate_is_a_ratio_of_server_calls_with_a_request_guard():
    expr = expr_of(rule(service="orders", condition={"error_rate": {"above": 0.05}}))
    svc = 'service_name="orders"'
    assert expr == (
        "label_replace(\n"
        "  (\n"
        f"    sum by (service_name) (rate({CALLS}{{{svc},{SERVER},{ERROR}}}[5m]))\n"
        "    /\n"
        f"    sum by (service_name) (rate({CALLS}{{{svc},{SERVER}}}[5m]))\n"
        "  ) > 0.05\n"
        "  and on (service_name)\n"
        f"  (sum by (service_name) (increase({CALLS}{{{svc},{SERVER}}}[5m])) >= 10),\n"
        '  "service", "$1", "service_name", "(.*)"\n'
        ")"
    )
    # The window is the gateway's health window; "*" (the default) has no service filter.
    expr = expr_of(rule(condition={"error_rate": {"above": 0.1, "min_requests": 3}}),
                   health=HealthConfig(window=600))  # fmt: skip
    assert f"rate({CALLS}{{{SERVER},{ERROR}}}[10m])" in expr
    assert "[10m])) >= 3)" in expr and "service_name=" not in expr


@pytest.mark.parametrize(("kind", "quantile"), [("latency_p95", "0.95"), ("latency_p99", "0.99")])
def test_latency_is_a_histogram_quantile_per_service(kind: str, quantile: str):
    expr = expr_of(rule(condition={kind: {"above": "1500ms", "min_requests": 5}}))
    assert expr == (
        "label_replace(\n"
        f"  histogram_quantile({quantile}, sum by (service_name, le) (rate("
        f"traces_span_metrics_duration_seconds_bucket{{{SERVER}}}[5m]))) > 1.5\n"
        "  and on (service_name)\n"
        "  (sum by (service_name) (increase("
        f"traces_span_metrics_duration_seconds_count{{{SERVER}}}[5m])) >= 5),\n"
        '  "service", "$1", "service_name", "(.*)"\n'
        ")"
    )


def test_latency_at_or_above_the_largest_bucket_could_never_fire():
    slow = rule(name="Slow", condition={"latency_p99": {"above": "10s"}})
    data, skipped = alert_rules([slow])
    assert data["groups"][0]["rules"] == []
    assert skipped == [("Slow", "10s is not below the largest span duration bucket boundary "
                                "(10s): histogram_quantile never exceeds it")]  # fmt: skip
    # With the spanmetrics processor's own buckets, it can.
    assert "> 10\n" in expr_of(slow, buckets=[1, 10, 30, float("inf")])


def test_request_rate_below():
    expr = expr_of(rule(service="batch", condition={"request_rate": {"below": 0.2}}))
    assert expr == (
        "label_replace(\n"
        f'  sum by (service_name) (rate({CALLS}{{service_name="batch",{SERVER}}}[5m])) < 0.2,\n'
        '  "service", "$1", "service_name", "(.*)"\n'
        ")"
    )


def test_stale_means_the_span_counter_stopped_moving():
    expr = expr_of(rule(condition={"stale": True}), health=HealthConfig.model_validate(
        {"thresholds": {"stale_after": "10m"}}))  # fmt: skip
    assert expr == (
        "label_replace(\n"
        "  (\n"
        f"    sum by (service_name) (increase({CALLS}[10m])) == 0\n"
        "    or\n"
        "    (\n"
        f"      count by (service_name) (count_over_time({CALLS}[1h]))\n"
        "      unless on (service_name)\n"
        f"      count by (service_name) (count_over_time({CALLS}[10m]))\n"
        "    )\n"
        "  ) * 0 + 600,\n"
        '  "service", "$1", "service_name", "(.*)"\n'
        ")"
    )


def test_stale_follows_per_service_thresholds_and_needs_two_scrapes():
    health = HealthConfig.model_validate({
        "thresholds": {"stale_after": "30s"},
        "services": {"batch.jobs": {"stale_after": "2h"}, "same": {"min_requests": 3}},
    })  # fmt: skip
    expr = expr_of(rule(condition={"stale": True}), health=health)
    # 30s is raised to 2m (two scrapes at 1m); batch.jobs gets its own window and lookback.
    assert f'increase({CALLS}{{service_name!~"batch\\\\.jobs"}}[2m])) == 0' in expr
    assert f'increase({CALLS}{{service_name="batch.jobs"}}[2h])) == 0' in expr
    assert f'count_over_time({CALLS}{{service_name="batch.jobs"}}[4h])' in expr
    assert ") * 0 + 120" in expr and ") * 0 + 7200" in expr and "same" not in expr
    one = expr_of(rule(service="batch.jobs", condition={"stale": True}), health=health)
    assert f'{CALLS}{{service_name="batch.jobs"}}[2h]' in one and "!~" not in one


def test_cpu_and_memory_come_from_the_gateways_hostmetrics():
    cpu = expr_of(rule(condition={"cpu": {"above": 0.9}}))
    assert cpu == (
        "(1 - sum by (job, instance) (system_cpu_utilization_ratio"
        f'{{{HOST},cpu_mode=~"idle|iowait"}})) > 0.9'
    )
    memory = expr_of(rule(condition={"memory": {"above": 0.85}}))
    assert memory == (
        "max by (job, instance) (system_memory_utilization_ratio"
        f'{{{HOST},system_memory_state="used"}}) > 0.85'
    )


def test_filesystem_without_paths_checks_every_reported_filesystem():
    expr = expr_of(rule(condition={"filesystem": {"above": 0.9}}))
    assert expr == (
        "label_replace(\n"
        "  (\n"
        "    label_replace(\n"
        "      max by (job, instance, system_filesystem_mountpoint) "
        f"(system_filesystem_utilization_ratio{{{HOST}}}),\n"
        '      "path", "$1", "system_filesystem_mountpoint", "(.*)"\n'
        "    )\n"
        "  ) > 0.9,\n"
        '  "mountpoint", "$1", "system_filesystem_mountpoint", "(.*)"\n'
        ")"
    )


def test_filesystem_with_paths_takes_the_nearest_mount_point():
    expr = expr_of(rule(condition={"filesystem": {"above": 0.8, "paths": ["/data/x/", "/d$"]}}))

    def usage(mountpoint: str) -> str:
        series = f'{{{HOST},system_filesystem_mountpoint="{mountpoint}"}}'
        return f"max by (job, instance, system_filesystem_mountpoint) ({FILESYSTEM}{series})"

    assert expr == (
        "label_replace(\n"
        "  (\n"
        "    label_replace(\n"
        "      (\n"
        f"        {usage('/d$')}\n"
        "        or on (job, instance)\n"
        f"        {usage('/')}\n"
        "      ),\n"
        '      "path", "/d$$", "", ""\n'
        "    )\n"
        "    or on (job, instance, system_filesystem_mountpoint)\n"
        "    label_replace(\n"
        "      (\n"
        f"        {usage('/data/x')}\n"
        "        or on (job, instance)\n"
        f"        {usage('/data')}\n"
        "        or on (job, instance)\n"
        f"        {usage('/')}\n"
        "      ),\n"
        '      "path", "/data/x", "", ""\n'
        "    )\n"
        "  ) > 0.8,\n"
        '  "mountpoint", "$1", "system_filesystem_mountpoint", "(.*)"\n'
        ")"
    )
    relative = rule(name="Rel", condition={"filesystem": {"above": 0.8, "paths": ["data"]}})
    assert alert_rules([relative])[1] == [("Rel", "path 'data' is relative: the mount point "
        "holding it is only known on the gateway's host (use absolute paths)")]  # fmt: skip


def test_exporter_rules_read_the_gateways_own_metrics():
    failing = expr_of(rule(condition={"exporter": {"failing": True, "name": "otlp/a"}}))
    by = "sum by (job, instance, exporter)"
    only = '{exporter="otlp/a"}'
    assert failing == (
        "(\n"
        f"  {by} (rate(otelgate_exporter_retries_total{only}[2m])) > 0\n"
        "  or\n"
        f"  {by} (rate(otelgate_exporter_failed_items_total{only}[2m])) > 0\n"
        ")\n"
        "unless on (job, instance, exporter)\n"
        f"{by} (rate(otelgate_exporter_sent_items_total{only}[2m])) > 0"
    )
    queue = expr_of(rule(condition={"queue_fill": {"above": 0.8}}))
    assert queue == (
        "(\n"
        "  max by (job, instance, exporter) (otelgate_exporter_spool_bytes / "
        "(otelgate_exporter_spool_capacity_bytes > 0))\n"
        "  or\n"
        "  max by (job, instance, exporter) (otelgate_exporter_queue_size / "
        "(otelgate_exporter_queue_capacity > 0))\n"
        ") > 0.8"
    )
    lost = expr_of(rule(condition={"dropped_items": {"above": 0, "window": "15m"}}))
    dropped = f"{by} (increase(otelgate_exporter_dropped_items_total[15m]))"
    failed = f"{by} (increase(otelgate_exporter_failed_items_total[15m]))"
    assert lost == (
        f"(\n  (\n    {dropped}\n    +\n    {failed}\n  )\n  or\n  {dropped}\n  or\n"
        f"  {failed}\n) > 0"
    )


# --- the rest of a rule ------------------------------------------------------------------------


def test_timing_labels_and_annotations():
    data, _ = alert_rules(every_kind())
    errors = data["groups"][0]["rules"][0]
    assert errors == {
        "alert": "Errors",
        "expr": errors["expr"],
        "for": "1m",
        "keep_firing_for": "5m",
        "labels": {"severity": "warning", "team": "shop"},
        "annotations": {"summary": "{{ $labels.service }}: errors "
                                   "{{ $value | humanizePercentage }} above 10.0%"},
    }  # fmt: skip
    assert 'service_name="orders"' in errors["expr"]
    plain = alert_rules([rule(condition={"cpu": {"above": 0.9}})])[0]["groups"][0]["rules"][0]
    assert plain == {"alert": "R", "expr": plain["expr"], "labels": {"severity": "warning"}}
    assert data["groups"][0]["name"] == "otelgate-alerts"
    assert data["groups"][0]["interval"] == "30s"
    assert alert_rules([], group_interval="1m")[0]["groups"][0]["interval"] == "1m"
    with pytest.raises(ValueError, match="invalid Prometheus duration"):
        alert_rules([], group_interval="30 seconds")


@pytest.mark.parametrize(
    ("condition", "text", "expected"),
    [
        ({"error_rate": {"above": 0.05}}, "{{ value }} > {{threshold}}",
         "{{ $value | humanizePercentage }} > 5.0%"),
        ({"latency_p99": {"above": "1500ms"}}, "{{ value }} > {{ threshold }}",
         "{{ $value | humanizeDuration }} > 1.5s"),
        ({"request_rate": {"below": 2}}, "{{ value }} < {{ threshold }}",
         '{{ printf "%.3g" $value }}/s < 2/s'),
        ({"stale": True}, "{{ service }}: {{ value }} (after {{ threshold }})",
         "{{ $labels.service }}: at least {{ $value | humanizeDuration }} "
         "(after {{ $value | humanizeDuration }})"),
        ({"queue_fill": {"above": 0.8}}, "{{ labels.exporter }} {{ value }}",
         "{{ $labels.exporter }} {{ $value | humanizePercentage }}"),
        ({"dropped_items": {"above": 100}}, "{{ value }} > {{ threshold }}",
         '{{ printf "%.0f" $value }} > 100'),
        ({"exporter": {"failing": True}}, "{{ rule }}/{{ severity }}: [{{ threshold }}]",
         "R/warning: []"),
        ({"cpu": {"above": 0.9}}, "{{ labels.host.name }} {{ labels.missing }}",
         '{{ index $labels "host.name" }} {{ $labels.missing }}'),
        ({"cpu": {"above": 0.9}}, "literal {{ 1 }} braces", 'literal {{ "{{" }} 1 }} braces'),
    ],
)  # fmt: skip
def test_placeholders_become_prometheus_templates(
    condition: dict[str, Any], text: str, expected: str
):
    data, _ = alert_rules([rule(condition=condition, annotations={"a": text})])
    assert data["groups"][0]["rules"][0]["annotations"] == {"a": expected}


def test_skipped_kinds_and_disabled_rules_are_reported():
    off = rule(name="Off", enabled=False, condition={"cpu": {"above": 0.9}})
    data, skipped = alert_rules([*every_kind(), off])
    names = [r["alert"] for r in data["groups"][0]["rules"]]
    assert names == [b["name"] for b in EVERY_KIND if b["name"] not in SKIPPED]
    assert skipped == [
        ("Unhealthy", "service health is a status computed inside the gateway; no metric in "
                      "Prometheus has it"),
        ("Burn", "SLO burn-rate alerts are in the `otelgate slo-rules` output "
                 "(<Slo>ErrorBudgetBurn, severity page and ticket)"),
        ("Logs", "no metric in Prometheus counts log records"),
        ("NewErrors", "no metric in Prometheus has error groups"),
        ("Off", "disabled"),
    ]  # fmt: skip
    text = render(data, skipped)
    assert text.startswith("# Generated by otelgate ")
    assert "#   Burn: SLO burn-rate alerts are in the `otelgate slo-rules` output" in text
    assert yaml.safe_load(text) == data


def test_durations():
    assert [prom_duration(s) for s in (300, 90, 0.25, 86400, 3600 * 26, 1e-6)] == [
        "5m", "1m30s", "250ms", "1d", "1d2h", "1ms"
    ]  # fmt: skip


def test_default_rules():
    data, skipped = alert_rules(defaults())
    names = [r["alert"] for r in data["groups"][0]["rules"]]
    assert names == [n for n in DEFAULT_NAMES if n not in ("SloPageBurn", "SloTicketBurn")]
    assert [name for name, _ in skipped] == ["SloPageBurn", "SloTicketBurn"]
    by_name = {r["alert"]: r for r in data["groups"][0]["rules"]}
    assert by_name["DiskFilling"]["annotations"]["summary"] == (
        "filesystem of {{ $labels.path }} at {{ $value | humanizePercentage }} (above 90.0%)"
    )
    assert by_name["ServiceStale"]["annotations"]["runbook_url"] == "docs/runbooks.md#servicestale"


# --- promtool ----------------------------------------------------------------------------------


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )  # fmt: skip


@pytest.mark.parametrize(("rules", "count"), [(defaults, 9), (every_kind, 13)])
def test_generated_rules_pass_promtool(tmp_path: Path, rules: Any, count: int):
    path = tmp_path / "alerts.yml"
    path.write_text(render(*alert_rules(rules())))
    check = promtool("check", "rules", str(path), cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {count} rules found" in check.stdout


def _span_series(service: str, span_kind: str = SERVER, status: str = "STATUS_CODE_UNSET") -> str:
    return (f'{CALLS}{{job="otelgate",instance="gw1",service_name="{service}",'
            f'span_name="GET /",{span_kind},status_code="{status}"}}')  # fmt: skip


def _series(name: str, **labels: str) -> str:
    text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{text}}}"


def _input_series() -> list[dict[str, str]]:
    """Series as the gateway exports them, per minute for 20 minutes (promtool's notation)."""
    gw1 = {"job": "otelgate", "instance": "gw1"}
    gw2 = {"job": "otelgate", "instance": "gw2"}
    host1, host2 = {**gw1, "otel_scope_name": "otelgate.hostmetrics"}, {
        **gw2, "otel_scope_name": "otelgate.hostmetrics"}  # fmt: skip
    duration = "traces_span_metrics_duration_seconds"
    orders = {**gw1, "service_name": "orders", "span_name": "GET /", "span_kind":
              "SPAN_KIND_SERVER", "status_code": "STATUS_CODE_UNSET"}  # fmt: skip
    series = [
        # orders: 120 SERVER calls a minute, 20 of them errors (16.7%); p95 0.85s, p99 0.97s.
        (_span_series("orders"), "0+100x20"),
        (_span_series("orders", status="STATUS_CODE_ERROR"), "0+20x20"),
        # payments: 1% errors; batch: 10 calls a minute (0.17/s); legacy: silent for 20m.
        (_span_series("payments"), "0+99x20"),
        (_span_series("payments", status="STATUS_CODE_ERROR"), "0+1x20"),
        (_span_series("batch"), "0+10x20"),
        (_span_series("legacy"), "7x20"),
        # gone: CLIENT spans for 3 minutes, then the gateway restarted (the series ended).
        (_span_series("gone", span_kind='span_kind="SPAN_KIND_CLIENT"'), "0+1x3 stale"),
        (_series(f"{duration}_bucket", **orders, le="0.1"), "0+50x20"),
        (_series(f"{duration}_bucket", **orders, le="0.25"), "0+60x20"),
        (_series(f"{duration}_bucket", **orders, le="0.5"), "0+100x20"),
        (_series(f"{duration}_bucket", **orders, le="1"), "0+120x20"),
        (_series(f"{duration}_bucket", **orders, le="+Inf"), "0+120x20"),
        (_series(f"{duration}_count", **orders), "0+120x20"),
        # CPU: gw1 90% busy, gw2 50%; a service's own host metrics (another scope) don't count.
        (_series("system_cpu_utilization_ratio", **host1, cpu_mode="idle"), "0.06x20"),
        (_series("system_cpu_utilization_ratio", **host1, cpu_mode="iowait"), "0.04x20"),
        (_series("system_cpu_utilization_ratio", **host1, cpu_mode="user"), "0.9x20"),
        (_series("system_cpu_utilization_ratio", **host2, cpu_mode="idle"), "0.5x20"),
        (_series("system_cpu_utilization_ratio", **gw1, otel_scope_name="app",
                 cpu_mode="idle"), "0x20"),
        (_series("system_memory_utilization_ratio", **host1, system_memory_state="used"),
         "0.95x20"),
        (_series("system_memory_utilization_ratio", **host1, system_memory_state="free"),
         "0.05x20"),
        # Filesystems: gw1 has the data on its own mount; gw2 on /.
        (_series("system_filesystem_utilization_ratio", **host1,
                 system_filesystem_mountpoint="/"), "0.5x20"),
        (_series("system_filesystem_utilization_ratio", **host1,
                 system_filesystem_mountpoint="/var/lib/otelgate"), "0.85x20"),
        (_series("system_filesystem_utilization_ratio", **host1,
                 system_filesystem_mountpoint="/boot"), "0.95x20"),
        (_series("system_filesystem_utilization_ratio", **host2,
                 system_filesystem_mountpoint="/"), "0.81x20"),
        # Exporters: otlp/down retries and delivers nothing; otlp/flaky retries but delivers;
        # loki gives items up and delivers nothing.
        (_series("otelgate_exporter_retries_total", **gw1, exporter="otlp/down",
                 signal="traces"), "0+3x20"),
        (_series("otelgate_exporter_sent_items_total", **gw1, exporter="otlp/down",
                 signal="traces"), "500x20"),
        (_series("otelgate_exporter_retries_total", **gw1, exporter="otlp/flaky",
                 signal="traces"), "0+1x20"),
        (_series("otelgate_exporter_sent_items_total", **gw1, exporter="otlp/flaky",
                 signal="traces"), "0+100x20"),
        (_series("otelgate_exporter_failed_items_total", **gw1, exporter="loki",
                 signal="logs"), "0+3x20"),
        # Queues: otlp/down 80% of its items, otlp/spooled 60% of its spool's bytes.
        (_series("otelgate_exporter_queue_size", **gw1, exporter="otlp/down"), "800x20"),
        (_series("otelgate_exporter_queue_capacity", **gw1, exporter="otlp/down"), "1000x20"),
        (_series("otelgate_exporter_queue_size", **gw1, exporter="loki"), "10x20"),
        (_series("otelgate_exporter_queue_capacity", **gw1, exporter="loki"), "1000x20"),
        (_series("otelgate_exporter_queue_size", **gw1, exporter="otlp/spooled"), "5x20"),
        (_series("otelgate_exporter_spool_bytes", **gw1, exporter="otlp/spooled"), "600x20"),
        (_series("otelgate_exporter_spool_capacity_bytes", **gw1, exporter="otlp/spooled"),
         "1000x20"),
        # Lost in 10 minutes: otlp/down drops 50; otlp/flaky drops 6 and fails 6 (12 in all).
        (_series("otelgate_exporter_dropped_items_total", **gw1, exporter="otlp/down",
                 signal="traces"), "0+5x20"),
        (_series("otelgate_exporter_dropped_items_total", **gw1, exporter="otlp/flaky",
                 signal="traces"), "0+0.6x20"),
        (_series("otelgate_exporter_failed_items_total", **gw1, exporter="otlp/flaky",
                 signal="traces"), "0+0.6x20"),
    ]  # fmt: skip
    return [{"series": s, "values": v} for s, v in series]


def _alert(summary: str | None = None, **labels: str) -> dict[str, Any]:
    body: dict[str, Any] = {"exp_labels": {"severity": "warning", **labels}}
    if summary is not None:
        body["exp_annotations"] = {"summary": summary}
    return body


def _service(name: str) -> dict[str, str]:
    return {"service": name, "service_name": name}


EXPORTER = {"job": "otelgate", "instance": "gw1"}
EXPECTED: dict[str, list[dict[str, Any]]] = {
    "Errors": [_alert("orders: errors 16.67% above 10.0%", team="shop",
                      **_service("orders"))],
    "SlowP95": [_alert("orders: p95 850ms above 0.25s", **_service("orders"))],
    "SlowP99": [],  # 0.97s
    "LowTraffic": [_alert("batch: 0.167/s below 0.5/s", **_service("batch")),
                   _alert("legacy: 0/s below 0.5/s", **_service("legacy"))],
    "Stale": [_alert("gone silent for at least 2m 0s", **_service("gone")),
              _alert("legacy silent for at least 2m 0s", **_service("legacy"))],
    "Cpu": [_alert("CPU 90% on gw1", job="otelgate", instance="gw1")],
    "Memory": [_alert(job="otelgate", instance="gw1")],
    "DataDisk": [
        _alert("/var/lib/otelgate on /var/lib/otelgate: 85%", job="otelgate",
               instance="gw1", path="/var/lib/otelgate", mountpoint="/var/lib/otelgate",
               system_filesystem_mountpoint="/var/lib/otelgate"),
        _alert("/var/lib/otelgate on /: 81%", job="otelgate", instance="gw2",
               path="/var/lib/otelgate", mountpoint="/", system_filesystem_mountpoint="/"),
    ],
    "AnyDisk": [_alert(job="otelgate", instance="gw1", path="/boot",
                       mountpoint="/boot", system_filesystem_mountpoint="/boot")],
    "Exporter": [
        _alert("loki cannot deliver (Exporter, warning)", exporter="loki",
               **EXPORTER),
        _alert("otlp/down cannot deliver (Exporter, warning)",
               exporter="otlp/down", **EXPORTER),
    ],
    "ExporterDown": [_alert(exporter="otlp/down", **EXPORTER)],
    "Queue": [_alert("otlp/down queue at 80%", exporter="otlp/down", **EXPORTER),
              _alert("otlp/spooled queue at 60%", exporter="otlp/spooled",
                     **EXPORTER)],
    "Lost": [_alert("loki lost 30 items", exporter="loki", **EXPORTER),
             _alert("otlp/down lost 50 items", exporter="otlp/down", **EXPORTER),
             _alert("otlp/flaky lost 12 items", exporter="otlp/flaky", **EXPORTER)],
}  # fmt: skip


def test_every_kind_fires_for_the_right_series(tmp_path: Path):
    """``promtool test rules``: the alerts that fire after 12 minutes of the series above,
    with their labels and rendered annotations."""
    (tmp_path / "alerts.yml").write_text(render(*alert_rules(every_kind())))
    tests = {
        "rule_files": ["alerts.yml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": _input_series(),
            "alert_rule_test": [
                {"eval_time": "12m", "alertname": name, "exp_alerts": alerts}
                for name, alerts in EXPECTED.items()
            ],
        }],
    }  # fmt: skip
    (tmp_path / "test.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = promtool("test", "rules", "test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_for_and_keep_firing_for_hold_in_promtool(tmp_path: Path):
    """Errors (for 1m, keep_firing_for 5m) is pending at first, then fires, and keeps firing
    for 5 minutes after the errors stopped."""
    (tmp_path / "alerts.yml").write_text(render(*alert_rules(every_kind()[:1])))
    errors = _span_series("orders", status="STATUS_CODE_ERROR")
    labels = {"team": "shop", **_service("orders")}

    def firing(ratio: str) -> list[dict[str, Any]]:
        return [_alert(f"orders: errors {ratio} above 10.0%", **labels)]

    tests = {
        "rule_files": ["alerts.yml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            # 10 good calls a minute, and 10 errors a minute until minute 10.
            "input_series": [{"series": _span_series("orders"), "values": "0+10x30"},
                             {"series": errors, "values": "0+10x10 100x20"}],
            "alert_rule_test": [
                {"eval_time": "1m", "alertname": "Errors", "exp_alerts": []},  # pending
                {"eval_time": "3m", "alertname": "Errors", "exp_alerts": firing("50%")},
                # The condition last holds at minute 14 (the 5m window has 10 errors in 60
                # calls); the alert keeps firing, with that value, for 5 minutes more.
                {"eval_time": "14m", "alertname": "Errors", "exp_alerts": firing("16.67%")},
                {"eval_time": "19m", "alertname": "Errors", "exp_alerts": firing("16.67%")},
                {"eval_time": "21m", "alertname": "Errors", "exp_alerts": []},
            ],
        }],
    }  # fmt: skip
    (tmp_path / "test.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = promtool("test", "rules", "test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# --- a real Prometheus -------------------------------------------------------------------------


@pytest.mark.e2e
def test_a_real_prometheus_loads_and_evaluates_every_rule(tmp_path: Path):
    rules_path = tmp_path / "alerts.yml"
    data, skipped = alert_rules([*defaults(), *every_kind()[:14]], group_interval="1s")
    rules_path.write_text(render(data, skipped))
    server = PrometheusServer(tmp_path / "prometheus")
    config = yaml.safe_load(server.config_path.read_text())
    server.config_path.write_text(yaml.safe_dump({**config, "rule_files": [str(rules_path)]}))
    expected = [r["alert"] for r in data["groups"][0]["rules"]]
    with server:
        deadline = time.monotonic() + 30
        while True:
            body = httpx.get(f"{server.url}/api/v1/rules", timeout=5).json()
            loaded = [r for g in body["data"]["groups"] for r in g["rules"]]
            evaluated = [r for r in loaded if r["health"] != "unknown"]
            if len(evaluated) == len(expected) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert [r["name"] for r in loaded] == expected
    assert body["data"]["groups"][0]["name"] == "otelgate-alerts"
    problems = {r["name"]: r.get("lastError") for r in loaded if r["health"] != "ok"}
    assert problems == {}, server.logs()
    errors = next(r for r in loaded if r["name"] == "Errors")
    assert errors["duration"] == 60
    assert errors["keepFiringFor"] == 300  # Prometheus 2.42 knows keep_firing_for


# --- the command -------------------------------------------------------------------------------

BASE = {
    "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}}},
    "receivers": {"otlp": {"protocols": {"http": None}}},
    "exporters": {"file": {"path": "traces.jsonl"}},
}


def test_cli_writes_the_rules_and_lists_what_it_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "more.yaml").write_text(yaml.safe_dump({"rules": [EVERY_KIND[15]]}))
    alerting = {
        "rule_files": ["rules/*.yaml"],  # relative to the configuration file
        "default_rules": {"disable": ["HighCpu"], "override": {"HighErrorRate": {"for": "3m"}}},
        "rules": [EVERY_KIND[0]],
    }
    config_path = tmp_path / "otelgate.yaml"
    config_path.write_text(yaml.safe_dump({**BASE, "alerting": alerting}))
    out = tmp_path / "alerts.yml"
    assert main(["alert-rules", "-c", str(config_path), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"{out}: 9 alerting rules" in err
    assert "otelgate: skipped SloPageBurn: SLO burn-rate alerts are in the `otelgate " in err
    assert "otelgate: skipped Logs: no metric in Prometheus counts log records" in err
    text = out.read_text()
    assert text.startswith("# Generated by otelgate")
    alerts = {r["alert"]: r for r in yaml.safe_load(text)["groups"][0]["rules"]}
    assert "HighCpu" not in alerts and alerts["HighErrorRate"]["for"] == "3m"
    assert "Errors" in alerts
    check = promtool("check", "rules", str(out), cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr

    assert main(["alert-rules", "-c", str(config_path)]) == 0  # to stdout
    assert "- alert: ServiceStale" in capsys.readouterr().out


def test_cli_reports_problems_with_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    config_path = tmp_path / "otelgate.yaml"
    alerting = {"rule_files": ["missing.yaml"], "default_rules": {"disable": ["Nope"]}}
    config_path.write_text(yaml.safe_dump({**BASE, "alerting": alerting}))
    assert main(["alert-rules", "-c", str(config_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("otelgate: cannot generate alert rules:\n")
    assert f"alerting.rule_files[0]: no such file: {tmp_path / 'missing.yaml'}" in err
    assert "alerting.default_rules.disable[0]: 'Nope' is not a default rule" in err
    config_path.write_text(yaml.safe_dump({**BASE, "alerting": {"rules": [{"name": "x"}]}}))
    assert main(["alert-rules", "-c", str(config_path)]) == 1
    assert "alerting.rules[0].condition" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["alert-rules", "--bogus"])
    assert usage.value.code == 2


# --- the compose stack and the runbooks --------------------------------------------------------

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "compose"


def test_compose_rules_are_generated_from_the_compose_configuration(
    capsys: pytest.CaptureFixture[str],
):
    """compose/rules/ holds the output of both commands for compose/otelgate.yaml; generate
    them again (see compose/prometheus.yml) when this fails."""
    config = str(COMPOSE / "otelgate.yaml")
    for command, name in (("alert-rules", "otelgate-alert-rules.yml"),
                          ("slo-rules", "otelgate-slo-rules.yml")):  # fmt: skip
        assert main([command, "-c", config]) == 0
        assert capsys.readouterr().out == (COMPOSE / "rules" / name).read_text(), name
    check = promtool("check", "rules", *sorted(str(p) for p in (COMPOSE / "rules").glob("*.yml")),
                     cwd=COMPOSE)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr


def test_compose_alertmanager_config_passes_amtool():
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool is not installed (Debian: prometheus-alertmanager)")
    result = subprocess.run(
        [amtool, "check-config", str(COMPOSE / "alertmanager.yml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    # Mail goes to the stack's Mailpit, which the gateway mails too.
    alertmanager = yaml.safe_load((COMPOSE / "alertmanager.yml").read_text())
    assert alertmanager["global"]["smtp_smarthost"] == "mailpit:1025"
    assert "mailpit" in yaml.safe_load((COMPOSE / "docker-compose.yaml").read_text())["services"]


def test_every_default_rule_has_a_runbook_section():
    headings = {
        line.removeprefix("## ").strip().lower()
        for line in (ROOT / "docs" / "runbooks.md").read_text().splitlines()
        if line.startswith("## ")
    }
    for body in DEFAULT_RULES:
        anchor = body["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor in headings, body["name"]
