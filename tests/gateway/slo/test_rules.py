"""``otelgate slo-rules``: Sloth-compatible rules, checked by promtool, and their errors."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli import main
from gateway.config.issues import ConfigError
from gateway.config.loading import parse_config
from gateway.slo.rules import error_ratio_query, generate, render

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
BASE = {
    "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}}},
    "receivers": {"otlp": {"protocols": {"http": None}}},
    "exporters": {"file": {"path": "traces.jsonl"}},
}
SLOS = [
    {
        "name": "orders-availability",
        "service": "orders",
        "objective": 0.999,
        "sli": {"availability": None},
    },
    {
        "name": "orders-latency",
        "service": "orders",
        "objective": 0.95,
        "window": "28d",
        "sli": {"latency": {"threshold": "250ms", "span_name": "GET /orders"}},
        "alerting": {"page_quick": 10},
    },
    {
        "name": "checkout-ratio",
        "service": "shop",
        "objective": 0.99,
        "sli": {
            "ratio": {
                "good": {"metric": "http.server.requests", "attributes": {"code": 200}},
                "total": {"metric": "http.server.requests"},
            }
        },
    },
]


def config(slos: list[dict[str, Any]] = SLOS, **more: Any) -> Any:
    return parse_config(yaml.safe_dump({**BASE, "slos": slos, **more}), environ={})


def _rules(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {group["name"]: group["rules"] for group in data["groups"]}


def test_rule_names_and_labels_follow_sloth():
    groups = _rules(generate(config()))
    assert list(groups)[:3] == [
        "sloth-slo-sli-recordings-orders-orders-availability",
        "sloth-slo-meta-recordings-orders-orders-availability",
        "sloth-slo-alerts-orders-orders-availability",
    ]
    sli = groups["sloth-slo-sli-recordings-orders-orders-availability"]
    windows = ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"]
    assert [r["record"] for r in sli] == [f"slo:sli_error:ratio_rate{w}" for w in windows]
    assert sli[0]["labels"] == {
        "sloth_id": "orders-orders-availability",
        "sloth_service": "orders",
        "sloth_slo": "orders-availability",
        "sloth_window": "5m",
    }
    latency = groups["sloth-slo-sli-recordings-orders-orders-latency"]
    assert latency[-1]["record"] == "slo:sli_error:ratio_rate28d"
    meta = {r["record"]: r for r in groups["sloth-slo-meta-recordings-orders-orders-availability"]}
    assert list(meta) == [
        "slo:objective:ratio",
        "slo:error_budget:ratio",
        "slo:time_period:days",
        "slo:current_burn_rate:ratio",
        "slo:period_burn_rate:ratio",
        "slo:period_error_budget_remaining:ratio",
        "sloth_slo_info",
    ]
    assert meta["slo:objective:ratio"]["expr"] == "vector(0.999)"
    assert meta["slo:error_budget:ratio"]["expr"] == "vector(0.001)"
    assert meta["slo:time_period:days"]["expr"] == "vector(30)"
    assert "slo:sli_error:ratio_rate30d{" in meta["slo:period_burn_rate:ratio"]["expr"]
    assert meta["sloth_slo_info"]["labels"]["sloth_objective"] == "99.9"


def test_alerts_are_multiwindow_multi_burn_rate():
    groups = _rules(generate(config()))
    page, ticket = groups["sloth-slo-alerts-orders-orders-availability"]
    assert page["labels"]["sloth_severity"] == "page"
    assert ticket["labels"]["sloth_severity"] == "ticket"
    # Budget 0.1%: page at 14.4x over 5m and 1h, or 6x over 30m and 6h; ticket 3x / 1x.
    assert "ratio_rate5m{" in page["expr"] and "ratio_rate1h{" in page["expr"]
    assert ">= (14.4 * 0.001)" in page["expr"] and ">= (6.0 * 0.001)" in page["expr"]
    assert "ratio_rate30m{" in page["expr"] and "ratio_rate6h{" in page["expr"]
    assert ">= (3.0 * 0.001)" in ticket["expr"] and ">= (1.0 * 0.001)" in ticket["expr"]
    assert "ratio_rate1d{" in ticket["expr"] and "ratio_rate3d{" in ticket["expr"]
    # Sloth's shape: no sloth_window on the alert, whichever pair fires (issue 10, finding 9)
    for alert in (page, ticket):
        assert alert["expr"].count(") without (sloth_window)") == 4
        assert "ignoring" not in alert["expr"] and "sloth_window" not in alert["labels"]
    latency_page = groups["sloth-slo-alerts-orders-orders-latency"][0]
    assert ">= (10.0 * 0.05)" in latency_page["expr"]  # the configured factor


def test_sli_queries_sum_the_span_metrics_of_every_gateway():
    slos = config().slos.definitions()
    availability = error_ratio_query(slos[0], "5m")
    assert availability == (
        '(sum(rate(traces_span_metrics_calls_total{service_name="orders",'
        'span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_ERROR"}[5m])) or vector(0))\n/\n'
        'sum(rate(traces_span_metrics_calls_total{service_name="orders",'
        'span_kind="SPAN_KIND_SERVER"}[5m]))'
    )
    latency = error_ratio_query(slos[1], "1h")
    assert 'traces_span_metrics_duration_seconds_bucket{service_name="orders",' in latency
    assert 'span_name="GET /orders",le="0.25"}[1h]' in latency
    assert "traces_span_metrics_duration_seconds_count{" in latency
    ratio = error_ratio_query(slos[2], "5m")
    assert 'http_server_requests_total{job=~"(.+/)?shop",code="200"}[5m]' in ratio
    assert "by (" not in availability + latency + ratio  # summed across instances


def test_integral_bucket_bounds_match_both_float_formats():
    slo = {
        "name": "slow",
        "service": "orders",
        "objective": 0.9,
        "sli": {"latency": {"threshold": 1}},
    }
    query = error_ratio_query(config([slo]).slos.definitions()[0], "5m")
    assert 'le=~"1(\\\\.0)?"' in query  # matches le="1" (Go) and le="1.0" (Python)


def test_generated_rules_pass_promtool(tmp_path: Path):
    path = tmp_path / "rules.yaml"
    path.write_text(render(generate(config())))
    check = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 51 rules found" in check.stdout  # 3 SLOs x (8 SLIs + 7 meta + 2 alerts)


def test_a_latency_threshold_must_be_a_histogram_boundary():
    slo = {
        "name": "slow",
        "service": "orders",
        "objective": 0.9,
        "sli": {"latency": {"threshold": "300ms"}},
    }
    with pytest.raises(ConfigError) as caught:
        generate(config([SLOS[0], slo]))
    assert [i.path for i in caught.value.errors] == ["slos[1].sli.latency.threshold"]
    assert "0.3s is not a span duration bucket boundary" in str(caught.value)
    assert "0.005, 0.01, 0.025" in str(caught.value)
    # With the spanmetrics processor's own buckets, the same threshold is fine.
    processors = {"spanmetrics": {"buckets": [0.1, 0.3, 1]}}
    rules = generate(config([slo], processors=processors))
    assert 'le="0.3"' in rules["groups"][0]["rules"][0]["expr"]


def test_cli_writes_rules_with_openslo_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    config_path = tmp_path / "otelgate.yaml"
    config_path.write_text(yaml.safe_dump({**BASE, "slos": SLOS[:1]}))
    openslo = tmp_path / "slo.yaml"
    openslo.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "openslo/v1",
                "kind": "SLO",
                "metadata": {"name": "api-availability"},
                "spec": {
                    "service": "api",
                    "timeWindow": [{"duration": "7d", "isRolling": True}],
                    "objectives": [{"target": 0.99}],
                    "indicator": {
                        "metadata": {"name": "api"},
                        "spec": {
                            "ratioMetric": {
                                "good": {
                                    "metricSource": {
                                        "type": "otelgate",
                                        "spec": {"spans": "non_error"},
                                    }
                                },
                                "total": {
                                    "metricSource": {"type": "otelgate", "spec": {"spans": "all"}}
                                },
                            }
                        },
                    },
                },
            }
        )
    )
    out = tmp_path / "rules.yaml"
    assert (
        main(["slo-rules", "-c", str(config_path), "--openslo", str(openslo), "-o", str(out)]) == 0
    )
    data = yaml.safe_load(out.read_text())
    names = [g["name"] for g in data["groups"]]
    assert "sloth-slo-sli-recordings-api-api-availability" in names
    assert "sloth-slo-alerts-orders-orders-availability" in names
    assert "slo:sli_error:ratio_rate7d" in out.read_text()
    assert out.read_text().startswith("# Generated by otelgate")

    assert main(["slo-rules", "-c", str(config_path)]) == 0  # to stdout
    assert "sloth-slo-sli-recordings-orders-orders-availability" in capsys.readouterr().out


def test_cli_reports_problems_with_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    config_path = tmp_path / "otelgate.yaml"
    config_path.write_text(yaml.safe_dump(BASE))
    assert main(["slo-rules", "-c", str(config_path)]) == 1
    assert "slos: no SLOs defined" in capsys.readouterr().err
    openslo = tmp_path / "bad.yaml"
    openslo.write_text(
        "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\n"
        "spec: {service: a, objectives: [{target: 2}], indicatorRef: nope}\n"
    )
    assert main(["slo-rules", "-c", str(config_path), "--openslo", str(openslo)]) == 1
    err = capsys.readouterr().err
    assert f"{openslo}[0].spec.objectives[0].target: must be a ratio between 0 and 1" in err
    assert f"{openslo}[0].spec.indicatorRef: no kind: SLI named 'nope'" in err
    config_path.write_text(yaml.safe_dump({**BASE, "slos": SLOS[:1]}))
    same = tmp_path / "same.yaml"
    same.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "openslo/v1",
                "kind": "SLO",
                "metadata": {"name": "orders-availability"},
                "spec": {
                    "service": "orders",
                    "objectives": [{"target": 0.9, "op": "lte", "value": 0.25}],
                    "indicator": {
                        "spec": {
                            "thresholdMetric": {
                                "metricSource": {"type": "otelgate", "spec": {"spans": "duration"}}
                            }
                        }
                    },
                },
            }
        )
    )
    assert main(["slo-rules", "-c", str(config_path), "--openslo", str(same)]) == 1
    err = capsys.readouterr().err
    assert "SLO name 'orders-availability' is also defined at slos[0]" in err
