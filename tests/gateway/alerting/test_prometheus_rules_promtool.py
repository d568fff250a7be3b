"""Generated rules checked by promtool (syntax and unit tests) and loaded by a real Prometheus."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.alerting.prometheus_rules import alert_rules, render
from tests.gateway.alerting.prometheus_rules_inputs import (
    CALLS,
    SERVER,
    defaults,
    every_kind,
    promtool,
)
from tests.support.prometheus_server import PrometheusServer

# --- promtool ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("rules", "count"), [(defaults, 10), (every_kind, 13)])
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
