"""Which rules the gateway evaluates: the defaults (disabled, overridden, replaced), inline
rules and rule files (globs relative to the configuration), and the problems, with paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.alerting.config import AlertingConfig
from gateway.alerting.defaults import DEFAULT_NAMES, DEFAULT_RULES, merged
from gateway.alerting.rules import RuleConfig
from gateway.alerting.ruleset import locate_rules, resolve_rules
from gateway.config.issues import ConfigIssue


def resolved(base_dir: Path, **alerting: Any) -> tuple[dict[str, RuleConfig], list[ConfigIssue]]:
    rules, issues = resolve_rules(AlertingConfig.model_validate(alerting), base_dir)
    return {r.name: r for r in rules}, issues


def paths(issues: list[ConfigIssue]) -> list[str]:
    return [i.path for i in issues]


def test_the_default_rules_are_on_and_valid(tmp_path: Path) -> None:
    rules, issues = resolve_rules(AlertingConfig(), tmp_path)
    assert issues == []
    assert tuple(r.name for r in rules) == DEFAULT_NAMES
    assert {"ServiceStale", "HighErrorRate", "DiskFilling", "SloPageBurn"} <= set(DEFAULT_NAMES)
    by_name = {r.name: r for r in rules}
    errors = by_name["HighErrorRate"]
    assert errors.condition.error_rate is not None and errors.condition.error_rate.above == 0.05
    assert (errors.for_, errors.severity, errors.service) == (60.0, "critical", "*")
    assert errors.annotations["runbook_url"] == "docs/runbooks.md#higherrorrate"
    for rule in rules:
        assert rule.annotations["summary"]
        assert rule.enabled


def test_defaults_can_be_turned_off(tmp_path: Path) -> None:
    rules, issues = resolved(tmp_path, default_rules={"enabled": False})
    assert rules == {} and issues == []


def test_disable_defaults_by_name(tmp_path: Path) -> None:
    rules, issues = resolved(tmp_path, default_rules={"disable": ["HighCpu", "ItemsLost"]})
    assert issues == []
    assert list(rules) == [n for n in DEFAULT_NAMES if n not in ("HighCpu", "ItemsLost")]


def test_disable_an_unknown_default_is_an_issue(tmp_path: Path) -> None:
    _, issues = resolved(tmp_path, default_rules={"disable": ["HighCPU", "HighCpu"]})
    assert paths(issues) == ["alerting.default_rules.disable[0]"]
    assert "'HighCPU' is not a default rule" in issues[0].message
    assert "HighCpu" in issues[0].message  # the names it could be


def test_override_a_threshold_merges_in_depth(tmp_path: Path) -> None:
    override = {"HighErrorRate": {"condition": {"error_rate": {"min_requests": 50}},
                                  "for": "2m", "labels": {"team": "sre"}}}  # fmt: skip
    rules, issues = resolved(tmp_path, default_rules={"override": override})
    assert issues == []
    rule = rules["HighErrorRate"]
    assert rule.condition.error_rate is not None
    assert (rule.condition.error_rate.above, rule.condition.error_rate.min_requests) == (0.05, 50)
    assert (rule.for_, rule.labels, rule.severity) == (120.0, {"team": "sre"}, "critical")
    assert rule.annotations["summary"].startswith("{{ service }}: error rate")  # kept
    assert DEFAULT_RULES[1]["condition"] == {"error_rate": {"above": 0.05}}  # not changed


def test_override_with_another_condition_kind_replaces_it(tmp_path: Path) -> None:
    override = {"HighLatencyP99": {"condition": {"latency_p95": {"above": "500ms"}}}}
    rules, issues = resolved(tmp_path, default_rules={"override": override})
    assert issues == []
    condition = rules["HighLatencyP99"].condition
    assert condition.kind == "latency_p95" and condition.latency_p99 is None
    assert condition.latency_p95 is not None and condition.latency_p95.above == 0.5


@pytest.mark.parametrize(
    ("base", "change", "expected"),
    [
        ({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": 5}}, {"a": 1, "b": {"c": 5, "d": 3}}),
        ({"condition": {"cpu": {"above": 0.9}}}, {"condition": {"cpu": {"above": 0.5}}},
         {"condition": {"cpu": {"above": 0.5}}}),
        ({"condition": {"cpu": {"above": 0.9}}}, {"condition": {"memory": {"above": 0.5}}},
         {"condition": {"memory": {"above": 0.5}}}),
        ({"labels": {"a": "1"}}, {"labels": {"b": "2"}}, {"labels": {"a": "1", "b": "2"}}),
        ({"for": "5m"}, {"for": 0}, {"for": 0}),
    ],
)  # fmt: skip
def test_merged(base: dict[str, Any], change: dict[str, Any], expected: dict[str, Any]) -> None:
    assert merged(base, change) == expected


@pytest.mark.parametrize(
    ("override", "path"),
    [
        ({"Nope": {"for": "1m"}}, "alerting.default_rules.override.Nope"),
        ({"HighCpu": {"name": "Other"}}, "alerting.default_rules.override.HighCpu.name"),
        ({"HighCpu": {"condition": {"cpu": {"above": 2}}}},
         "alerting.default_rules.override.HighCpu.condition.cpu.above"),
        ({"HighCpu": {"severity": "loud"}}, "alerting.default_rules.override.HighCpu.severity"),
    ],
)  # fmt: skip
def test_bad_overrides_are_issues(tmp_path: Path, override: dict[str, Any], path: str) -> None:
    _, issues = resolved(tmp_path, default_rules={"override": override})
    assert paths(issues) == [path]


def test_runbook_base_url_replaces_the_bundled_runbooks(tmp_path: Path) -> None:
    rules, _ = resolved(tmp_path, runbook_base_url="https://wiki.example/runbooks")
    assert rules["HighCpu"].annotations["runbook_url"] == "https://wiki.example/runbooks#highcpu"


def test_a_user_rule_named_like_a_default_replaces_it(tmp_path: Path) -> None:
    mine = {"name": "HighErrorRate", "service": "orders",
            "condition": {"error_rate": {"above": 0.2}}, "severity": "info"}  # fmt: skip
    rules, issues = resolve_rules(AlertingConfig.model_validate({"rules": [mine]}), tmp_path)
    assert issues == []
    names = [r.name for r in rules]
    assert names.count("HighErrorRate") == 1
    assert names[-1] == "HighErrorRate"  # the defaults first, then the user's
    assert (rules[-1].service, rules[-1].severity) == ("orders", "info")


def test_inline_rules_follow_the_defaults(tmp_path: Path) -> None:
    inline = [{"name": "A", "condition": {"cpu": {"above": 0.5}}},
              {"name": "B", "condition": {"stale": True}}]  # fmt: skip
    rules, issues = resolve_rules(AlertingConfig.model_validate({"rules": inline}), tmp_path)
    assert issues == []
    assert [r.name for r in rules] == [*DEFAULT_NAMES, "A", "B"]


def test_duplicate_names_are_issues(tmp_path: Path) -> None:
    (tmp_path / "more.yaml").write_text(
        "rules:\n  - {name: A, condition: {memory: {above: 0.5}}}\n"
    )
    inline = [{"name": "A", "condition": {"cpu": {"above": 0.5}}},
              {"name": "A", "condition": {"stale": True}}]  # fmt: skip
    _, issues = resolved(tmp_path, rules=inline, rule_files=["more.yaml"])
    file = tmp_path / "more.yaml"
    assert paths(issues) == ["alerting.rules[1].name", f"{file}: rules[0].name"]
    assert all("also defined at alerting.rules[0]" in i.message for i in issues)


# -- rule files ------------------------------------------------------------------------------

RULE_FILE = """\
rules:
  - name: {name}
    condition: {{cpu: {{above: 0.5}}}}
"""


def test_rule_files_by_glob_relative_to_the_base_dir(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules.d"
    rules_dir.mkdir()
    (rules_dir / "b.yaml").write_text(RULE_FILE.format(name="FromB"))
    (rules_dir / "a.yaml").write_text(RULE_FILE.format(name="FromA"))
    (rules_dir / "skip.txt").write_text(RULE_FILE.format(name="NotMe"))
    (tmp_path / "one.yaml").write_text(RULE_FILE.format(name="One"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    absolute = elsewhere / "abs.yaml"
    absolute.write_text(RULE_FILE.format(name="Absolute"))
    config = AlertingConfig.model_validate(
        {
            "default_rules": {"enabled": False},
            "rules": [{"name": "Inline", "condition": {"stale": True}}],
            "rule_files": ["rules.d/*.yaml", "one.yaml", str(absolute), "rules.d/a.yaml"],
        }
    )
    rules, issues = resolve_rules(config, tmp_path)
    assert issues == []
    # Inline first, then the files in order (a glob's matches sorted; each file once).
    assert [r.name for r in rules] == ["Inline", "FromA", "FromB", "One", "Absolute"]
    located, _ = locate_rules(config, tmp_path)
    assert [where for where, _ in located] == [
        "alerting.rules[0]",
        f"{rules_dir / 'a.yaml'}: rules[0]",
        f"{rules_dir / 'b.yaml'}: rules[0]",
        f"{tmp_path / 'one.yaml'}: rules[0]",
        f"{absolute}: rules[0]",
    ]


def test_a_rule_file_may_be_a_single_string(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULE_FILE.format(name="R"))
    rules, issues = resolved(tmp_path, rule_files="r.yaml", default_rules={"enabled": False})
    assert issues == [] and list(rules) == ["R"]


def test_a_missing_rule_file_is_an_issue(tmp_path: Path) -> None:
    _, issues = resolved(tmp_path, rule_files=["ok/*.yaml", "missing.yaml"])
    assert paths(issues) == ["alerting.rule_files[1]"]  # a glob may match nothing
    assert issues[0].message == f"no such file: {tmp_path / 'missing.yaml'}"


def test_a_bad_rule_in_a_file_names_the_file_and_the_rule(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(
        "rules:\n"
        "  - name: Good\n"
        "    condition: {cpu: {above: 0.5}}\n"
        "  - name: Bad\n"
        "    condition: {error_rate: {above: 2}}\n"
        "  - name: Worse\n"
        "    condition: {cpu: {above: 0.5}}\n"
        "    for: soon\n"
    )
    rules, issues = resolved(tmp_path, rule_files=["bad.yaml"], default_rules={"enabled": False})
    assert list(rules) == ["Good"]
    assert paths(issues) == [
        f"{file}: rules[1].condition.error_rate.above",
        f"{file}: rules[2].for",
    ]
    assert issues[0].message == "must be at most 1 (got 2)"


@pytest.mark.parametrize(
    ("text", "path_suffix", "message"),
    [
        ("- {name: A}\n", "", "a rule file is a mapping with a 'rules' list"),
        ("rules: {name: A}\n", "", "a rule file is a mapping with a 'rules' list"),
        ("rules: []\ngroups: []\n", ": groups", "unknown key"),
        ("rules: [\n", "", "invalid YAML at line 2"),
    ],
)
def test_bad_rule_files(tmp_path: Path, text: str, path_suffix: str, message: str) -> None:
    file = tmp_path / "r.yaml"
    file.write_text(text)
    _, issues = resolved(tmp_path, rule_files=["r.yaml"])
    assert [(i.path, i.message) for i in issues] == [(f"{file}{path_suffix}", message)]
