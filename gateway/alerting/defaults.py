"""The built-in rule set, on in the embedded default (every setting overridable, every rule
can be disabled by name: ``alerting.default_rules``). Runbooks: docs/runbooks.md."""

from __future__ import annotations

import copy
from typing import Any

RUNBOOKS = "docs/runbooks.md"  # alerting.runbook_base_url replaces it (a hosted copy)


def _rule(
    name: str, condition: dict[str, Any], severity: str, summary: str, **more: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "condition": condition,
        "severity": severity,
        "annotations": {
            "summary": summary,
            "runbook_url": f"{RUNBOOKS}#{name.lower()}",
        },
        **more,
    }


DEFAULT_RULES: tuple[dict[str, Any], ...] = (
    _rule(
        "ServiceStale", {"stale": True}, "warning", "{{ service }} has sent nothing for {{ value }}"
    ),
    _rule(
        "HighErrorRate",
        {"error_rate": {"above": 0.05}},
        "critical",
        "{{ service }}: error rate {{ value }} above {{ threshold }}",
        **{"for": "1m"},
    ),
    _rule(
        "HighLatencyP99",
        {"latency_p99": {"above": "2s"}},
        "warning",
        "{{ service }}: p99 latency {{ value }} above {{ threshold }}",
        **{"for": "5m"},
    ),
    _rule(
        "HighCpu",
        {"cpu": {"above": 0.9}},
        "warning",
        "host CPU at {{ value }} (above {{ threshold }})",
        **{"for": "5m"},
    ),
    _rule(
        "HighMemory",
        {"memory": {"above": 0.9}},
        "warning",
        "host memory at {{ value }} (above {{ threshold }})",
        **{"for": "5m"},
    ),
    _rule(
        "DiskFilling",
        {"filesystem": {"above": 0.9}},
        "critical",
        "filesystem of {{ labels.path }} at {{ value }} (above {{ threshold }})",
        **{"for": "5m"},
    ),
    _rule(
        "ExporterFailing",
        {"exporter": {"failing": True}},
        "critical",
        "exporter {{ labels.exporter }} cannot deliver",
        **{"for": "2m"},
    ),
    _rule(
        "QueueFilling",
        {"queue_fill": {"above": 0.8}},
        "warning",
        "exporter {{ labels.exporter }} queue at {{ value }} of capacity",
        **{"for": "1m"},
    ),
    _rule(
        "ItemsLost",
        {"dropped_items": {"above": 0, "window": "5m"}},
        "critical",
        "exporter {{ labels.exporter }} lost {{ value }} items in 5 minutes",
    ),
    _rule(
        "LogFileProblem",
        {"log_file": {"status": "warning"}},
        "warning",
        "{{ labels.owner }} file {{ labels.path }}: rotation status {{ value }} "
        "(1 warning, 2 critical; see /health log_files)",
        **{"for": "5m"},
    ),
    _rule(
        "SloPageBurn",
        {"slo_burn": {"slo": "*", "severity": "page"}},
        "critical",
        "SLO {{ labels.slo }} burns its error budget at a paging rate",
    ),
    _rule(
        "SloTicketBurn",
        {"slo_burn": {"slo": "*", "severity": "ticket"}},
        "warning",
        "SLO {{ labels.slo }} burns its error budget at a ticket rate",
    ),
)

DEFAULT_NAMES = tuple(rule["name"] for rule in DEFAULT_RULES)


def merged(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``change`` merged in depth; a condition of another kind replaces it."""
    result = copy.deepcopy(base)
    for key, value in change.items():
        old = result.get(key)
        if (
            key == "condition"
            and isinstance(value, dict)
            and isinstance(old, dict)
            and (set(value) != set(old))
        ):
            result[key] = copy.deepcopy(value)
        elif isinstance(old, dict) and isinstance(value, dict):
            result[key] = merged(old, value)
        else:
            result[key] = copy.deepcopy(value)
    return result
