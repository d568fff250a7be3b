"""The PromQL of each condition, by hand, and the rest of a rule (timing, labels, templates)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from gateway.alerting.defaults import DEFAULT_NAMES
from gateway.alerting.prometheus_rules import alert_rules, prom_duration, render
from gateway.health.config import HealthConfig
from tests.gateway.alerting.prometheus_rules_inputs import (
    CALLS,
    ERROR,
    EVERY_KIND,
    FILESYSTEM,
    HOST,
    SERVER,
    SKIPPED,
    defaults,
    every_kind,
    expr_of,
    rule,
)

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
