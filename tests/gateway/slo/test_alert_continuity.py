"""``promtool test rules`` on the generated alerts: a burn that goes on while the window pair
that fires it changes stays one alert per severity, never resolved and fired again (issue 10,
finding 9: a ``sloth_window`` label on the alerts changed their label set at that moment)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.slo.rules import generate, render
from tests.gateway.slo.test_rules import SLOS, config

PROMTOOL = shutil.which("promtool")
SLO = SLOS[0]  # orders-availability: objective 99.9%, budget 0.1%, default factors
SELECTOR = 'traces_span_metrics_calls_total{service_name="orders",span_kind="SPAN_KIND_SERVER",'
# Per minute, 1000 SERVER spans. For 3 h, 30 are errors (3%: 30x the budget, so the page pairs
# 5m/1h at 14.4x and 30m/6h at 6x both fire), then for 2 h, 8 are (0.8%: 8x), so within
# minutes only the 30m/6h pair still fires the page. The ticket pairs fire all along.
ERRORS = "0+30x180 5408+8x119"
OK = "0+970x180 175592+992x119"
MOVED = (
    'slo:sli_error:ratio_rate5m{sloth_slo="orders-availability"} < 0.0144 and on() '
    'slo:sli_error:ratio_rate30m{sloth_slo="orders-availability"} >= 0.006'
)
EVAL_MINUTES = (20, 60, 150, 179, 181, 183, 185, 190, 200, 240, 299)


def expected_alert(severity: str) -> dict[str, Any]:
    labels = {"sloth_id": "orders-orders-availability", "sloth_service": "orders",
              "sloth_slo": "orders-availability", "sloth_severity": severity,
              "severity": severity}  # fmt: skip
    annotations = {
        "title": f"({severity}) orders orders-availability SLO error budget burn rate is too fast.",
        "summary": "orders orders-availability: the error budget of the 30d window "
        "(objective 99.9%) burns too fast.",
    }
    return {"exp_labels": labels, "exp_annotations": annotations}


def unit_test(rules: Path, minutes: tuple[int, ...]) -> dict[str, Any]:
    alerts = [expected_alert("page"), expected_alert("ticket")]
    return {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": SELECTOR + 'status_code="STATUS_CODE_ERROR"}', "values": ERRORS},
                    {"series": SELECTOR + 'status_code="STATUS_CODE_UNSET"}', "values": OK},
                ],
                "alert_rule_test": [
                    {
                        "eval_time": f"{m}m",
                        "alertname": "OrdersAvailabilityErrorBudgetBurn",
                        "exp_alerts": alerts,
                    }
                    for m in minutes
                ],
                "promql_expr_test": [
                    {  # the burn did move to the 30m/6h pair
                        "expr": MOVED,
                        "eval_time": "200m",
                        "exp_samples": [
                            {
                                "labels": 'slo:sli_error:ratio_rate5m{sloth_id="orders-orders-'
                                'availability",sloth_service="orders",sloth_slo="orders-'
                                'availability",sloth_window="5m"}',
                                "value": 0.008,
                            }
                        ],
                    }
                ],
            }
        ],
    }


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")
def test_a_burn_moving_between_window_pairs_is_one_alert(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    rules = tmp_path / "rules.yaml"
    rules.write_text(render(generate(config([SLO]))))
    tests = tmp_path / "tests.yaml"
    tests.write_text(yaml.safe_dump(unit_test(rules, EVAL_MINUTES), sort_keys=False))
    run = subprocess.run(
        [PROMTOOL, "test", "rules", str(tests)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout + run.stderr
