"""``alerting:`` through the configuration loader: every problem with the exact path of its
key, and ``otelgate check-config`` printing them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.alerting.defaults import DEFAULT_NAMES
from gateway.config.issues import ConfigError
from gateway.config.loading import parse_config
from gateway.config.model import Config
from tests.support.gateway_process import otelgate_command

BASE: dict[str, Any] = {
    "receivers": {"otlp": {"protocols": {"http": None}}},
    "exporters": {"otlp/down": {"endpoint": "http://127.0.0.1:14318", "protocol": "http/protobuf"}},
    "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["otlp/down"]}}},
}
SLOS = [{"name": "orders-availability", "service": "orders", "objective": 0.999,
         "sli": {"availability": None}}]  # fmt: skip
TEAM = {"team": {"webhook": {"url": "http://hooks.example/alerts"}}}


def text(alerting: dict[str, Any], **more: Any) -> str:
    return yaml.safe_dump({**BASE, "alerting": alerting, **more})


def load(alerting: dict[str, Any], **more: Any) -> Config:
    return parse_config(text(alerting, **more), environ={})


def problems(alerting: dict[str, Any], **more: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        load(alerting, **more)
    return [(i.path, i.message) for i in caught.value.errors]


def cpu_rule(**more: Any) -> dict[str, Any]:
    return {"name": "Busy", "condition": {"cpu": {"above": 0.8}}, **more}


BAD: dict[str, tuple[dict[str, Any], str, str]] = {
    "unknown condition kind": (
        {"rules": [{"name": "X", "condition": {"cpu_load": {"above": 1}}}]},
        "alerting.rules[0].condition",
        "unknown condition 'cpu_load'",
    ),
    "two condition kinds": (
        {"rules": [{"name": "X", "condition": {"cpu": {"above": 0.5},
                                               "memory": {"above": 0.5}}}]},
        "alerting.rules[0].condition",
        "a rule has exactly one condition (got cpu, memory)",
    ),
    "external_url without a scheme": (
        {"external_url": "gw.example.com:8888"},
        "alerting.external_url",
        "must be an http:// or https:// URL",
    ),
    "negative duration": (
        {"rules": [cpu_rule(**{"for": "-5s"})]},
        "alerting.rules[0].for",
        "invalid duration '-5s'",
    ),
    "negative number of seconds": (
        {"rules": [cpu_rule(keep_firing_for=-5)]},
        "alerting.rules[0].keep_firing_for",
        "duration must be zero or positive",
    ),
    "threshold out of range": (
        {"rules": [{"name": "X", "condition": {"memory": {"above": 1.5}}}]},
        "alerting.rules[0].condition.memory.above",
        "must be at most 1",
    ),
    "bad rule name": (
        {"rules": [cpu_rule(name="high-cpu")]},
        "alerting.rules[0].name",
        "'high-cpu' is not a valid rule name",
    ),
    "reserved label": (
        {"rules": [cpu_rule(labels={"severity": "page"})]},
        "alerting.rules[0].labels",
        "label 'severity' is set by the rule itself",
    ),
    "bad log_count regex": (
        {"rules": [{"name": "X", "condition": {"log_count": {"above": 1, "match": "("}}}]},
        "alerting.rules[0].condition.log_count.match",
        "invalid regular expression",
    ),
    "unknown placeholder": (
        {"rules": [cpu_rule(annotations={"summary": "{{ host }} is busy"})]},
        "alerting.rules[0].annotations",
        "annotation 'summary': unknown placeholder '{{ host }}'",
    ),
    "service on a host condition": (
        {"rules": [cpu_rule(service="orders")]},
        "alerting.rules[0]",
        "'service' applies to service conditions only, not cpu",
    ),
    "exporter not defined": (
        {"rules": [{"name": "X", "condition": {"exporter": {"failing": True, "name": "otlp/x"}}}]},
        "alerting.rules[0].condition.exporter.name",
        "rule 'X': exporter 'otlp/x' is not defined under exporters",
    ),
    "queue_fill exporter not defined": (
        {"rules": [cpu_rule(), {"name": "Q", "condition": {"queue_fill": {"above": 0.5,
                                                                         "name": "file"}}}]},
        "alerting.rules[1].condition.queue_fill.name",
        "rule 'Q': exporter 'file' is not defined under exporters",
    ),
    "dropped_items exporter of a default override": (
        {"default_rules": {"override": {"ItemsLost": {"condition": {"dropped_items": {
            "name": "otlp/gone"}}}}}},
        "alerting.default_rules.override.ItemsLost.condition.dropped_items.name",
        "rule 'ItemsLost': exporter 'otlp/gone' is not defined under exporters",
    ),
    "slo not defined": (
        {"rules": [{"name": "Burn", "condition": {"slo_burn": {"slo": "checkout"}}}]},
        "alerting.rules[0].condition.slo_burn.slo",
        "rule 'Burn': SLO 'checkout' is not defined under slos",
    ),
    "unknown receiver in a route": (
        {"receivers": TEAM, "route": {"receiver": "team", "routes": [{"receiver": "dba"}]}},
        "alerting.route.routes[0].receiver",
        "receiver 'dba' is not defined under alerting.receivers (defined: team)",
    ),
    "unknown root receiver": (
        {"receivers": TEAM, "route": {"receiver": "teams"}},
        "alerting.route.receiver",
        "receiver 'teams' is not defined",
    ),
    "unknown escalation receiver": (
        {"receivers": TEAM, "route": {"receiver": "team", "routes": [
            {"matchers": ['severity="critical"'],
             "escalation": [{"after": "15m", "receivers": ["team", "boss"]}]}]}},
        "alerting.route.routes[0].escalation[0].receivers[1]",
        "receiver 'boss' is not defined under alerting.receivers (defined: team)",
    ),
    "route required with receivers": (
        {"receivers": TEAM},
        "alerting.route",
        "is required when receivers are defined",
    ),
    "root route without a receiver": (
        {"receivers": TEAM, "route": {"group_by": ["service"]}},
        "alerting.route.receiver",
        "the root route needs a receiver",
    ),
    "bad matcher": (
        {"receivers": TEAM, "route": {"receiver": "team", "routes": [{"matchers": ["sev"]}]}},
        "alerting.route.routes[0].matchers",
        "invalid matcher 'sev'",
    ),
    "zero group_interval": (
        {"receivers": TEAM, "route": {"receiver": "team", "group_interval": 0}},
        "alerting.route.group_interval",
        "must be greater than 0",
    ),
    "unknown default rule": (
        {"default_rules": {"disable": ["HighCPU"]}},
        "alerting.default_rules.disable[0]",
        "'HighCPU' is not a default rule",
    ),
    "unknown key": (
        {"rule": []},
        "alerting.rule",
        "unknown key",
    ),
}  # fmt: skip


def test_error_group_rules_need_error_tracking() -> None:
    rules = {"rules": [{"name": "NewErrors", "condition": {"error_group": "new"}}]}
    assert [r.name for r in load(rules).alerting.resolved_rules or [] if r.name == "NewErrors"]
    found = problems(rules, errors={"enabled": False})
    assert found == [
        (
            "alerting.rules[0].condition.error_group",
            "rule 'NewErrors': error_group conditions need errors.enabled: true",
        )
    ]


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_each_problem_has_the_path_of_its_key(case: str) -> None:
    alerting, path, message = BAD[case]
    found = problems(alerting)
    assert [p for p, _ in found] == [path], found
    assert message in found[0][1]


def test_every_cross_check_problem_is_reported_at_once() -> None:
    found = problems(
        {
            "receivers": TEAM,
            "route": {"receiver": "team", "routes": [{"receiver": "nobody"}]},
            "default_rules": {"disable": ["Nope"]},
            "rules": [
                {"name": "Down", "condition": {"exporter": {"failing": True, "name": "x"}}},
                {"name": "Burn", "condition": {"slo_burn": {"slo": "nope"}}},
            ],
        }
    )
    assert sorted(p for p, _ in found) == [
        "alerting.default_rules.disable[0]",
        "alerting.route.routes[0].receiver",
        "alerting.rules[0].condition.exporter.name",
        "alerting.rules[1].condition.slo_burn.slo",
    ]


def test_schema_problems_are_reported_together() -> None:
    found = problems(
        {"rules": [cpu_rule(**{"for": "-5s"}), {"name": "X", "condition": {"disk": {}}}],
         "route": {"receiver": "team", "group_interval": 0}}
    )  # fmt: skip
    # The route's unknown receiver is not among them: once the section does not validate, the
    # loader skips the cross checks (gateway/config/loading.py, _check_alerting).
    assert [p for p, _ in found] == [
        "alerting.rules[0].for",
        "alerting.rules[1].condition",
        "alerting.route.group_interval",
    ]


def test_a_valid_alerting_section() -> None:
    config = load(
        {
            "receivers": {**TEAM, "am": {"alertmanager": {"endpoint": "http://am.example:9093"}}},
            "route": {
                "receiver": "team",
                "group_by": ["alertname"],
                "routes": [{"matchers": ['severity="critical"'], "receiver": "am",
                            "continue": True,
                            "escalation": [{"after": "15m", "receivers": ["team"]}]}],
            },
            "default_rules": {"disable": ["HighCpu"]},
            "rules": [
                {"name": "Down", "condition": {"exporter": {"failing": True, "name": "otlp/down"}}},
                {"name": "Burn", "condition": {"slo_burn": {"slo": "orders-availability"}}},
                {"name": "Errors", "service": "orders", "for": "30s",
                 "condition": {"log_count": {"above": 10, "match": "timeout|refused"}},
                 "annotations": {"summary": "{{ service }}: {{ value }} errors ({{ labels.x }})"}},
            ],
        },
        slos=SLOS,
    )  # fmt: skip
    rules = config.alerting.resolved_rules
    assert rules is not None
    expected = [n for n in DEFAULT_NAMES if n != "HighCpu"] + ["Down", "Burn", "Errors"]
    assert [r.name for r in rules] == expected
    assert config.alerting.route is not None
    assert config.alerting.route.routes[0].continue_ is True


def test_without_an_alerting_section_the_defaults_apply() -> None:
    config = parse_config(yaml.safe_dump(BASE), environ={})
    assert config.alerting.enabled
    rules = config.alerting.resolved_rules
    assert rules is not None and tuple(r.name for r in rules) == DEFAULT_NAMES


def test_rule_files_are_relative_to_the_configuration_file(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "mine.yaml").write_text(
        "rules:\n  - {name: Mine, condition: {stale: true}}\n"
        "  - {name: Broken, condition: {exporter: {failing: true, name: nope}}}\n"
    )
    source = str(tmp_path / "otelgate.yaml")
    with pytest.raises(ConfigError) as caught:
        parse_config(text({"rule_files": ["rules/*.yaml"]}), source=source, environ={})
    file = tmp_path / "rules" / "mine.yaml"
    assert [i.path for i in caught.value.errors] == [f"{file}: rules[1].condition.exporter.name"]


# -- otelgate check-config -------------------------------------------------------------------


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*otelgate_command(), "check-config", str(path)], capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def printed_paths(stderr: str) -> list[str]:
    """The path of each ``path: message`` line after the heading (file paths contain ': ')."""
    found = []
    for line in stderr.splitlines()[1:]:
        head, _, rest = line.partition(": ")
        found.append(f"{head}: {rest.partition(': ')[0]}" if head.endswith(".yaml") else head)
    return found


def test_check_config_prints_the_schema_problems_and_exits_1(tmp_path: Path) -> None:
    config = tmp_path / "otelgate.yaml"
    config.write_text(
        text(
            {
                "rules": [
                    cpu_rule(**{"for": "-5s"}),
                    cpu_rule(name="Svc", service="orders"),
                    {"name": "Ann", "condition": {"stale": True},
                     "annotations": {"summary": "{{ nope }}"}},
                    {"name": "Kind", "condition": {"disk": {"above": 0.5}}},
                ],
            }
        )
    )  # fmt: skip
    result = check_config(config)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines()[0] == f"{config}: 4 error(s)"
    assert printed_paths(result.stderr) == [
        "alerting.rules[0].for",
        "alerting.rules[1]",
        "alerting.rules[2].annotations",
        "alerting.rules[3].condition",
    ]


def test_check_config_prints_the_cross_check_problems_and_exits_1(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "team.yaml").write_text("rules:\n  - {name: Bad, condition: {cpu: {above: 7}}}\n")
    config = tmp_path / "otelgate.yaml"
    config.write_text(
        text(
            {
                "receivers": TEAM,
                "route": {"receiver": "team", "routes": [{"receiver": "dba"}],
                          "escalation": [{"after": "10m", "receivers": ["boss"]}]},
                "default_rules": {"disable": ["Nope"]},
                "rule_files": ["rules/*.yaml"],
                "rules": [
                    {"name": "Exp", "condition": {"exporter": {"failing": True, "name": "x"}}},
                    {"name": "Slo", "condition": {"slo_burn": {"slo": "x"}}},
                    {"name": "Grp", "condition": {"error_group": "regression"}},
                ],
            },
            errors={"enabled": False},
        )
    )  # fmt: skip
    result = check_config(config)
    assert result.returncode == 1, result.stdout + result.stderr
    expected = [
        f"{rules_dir / 'team.yaml'}: rules[0].condition.cpu.above",
        "alerting.default_rules.disable[0]",
        "alerting.route.routes[0].receiver",
        "alerting.route.escalation[0].receivers[0]",
        "alerting.rules[0].condition.exporter.name",
        "alerting.rules[1].condition.slo_burn.slo",
        "alerting.rules[2].condition.error_group",
    ]
    assert result.stderr.splitlines()[0] == f"{config}: {len(expected)} error(s)", result.stderr
    assert sorted(printed_paths(result.stderr)) == sorted(expected), result.stderr
