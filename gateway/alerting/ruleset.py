"""The rules the gateway evaluates: the defaults (minus disabled ones, with overrides), the
inline ``alerting.rules`` and those of ``alerting.rule_files`` (globs, relative to the
configuration file). A rule named like a default replaces it; other duplicates are errors."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

import yaml

from gateway.alerting.config import AlertingConfig
from gateway.alerting.defaults import DEFAULT_NAMES, DEFAULT_RULES, RUNBOOKS, merged
from gateway.alerting.rules import RuleConfig
from gateway.config.issues import ConfigIssue, path_of, validate


def resolve_rules(
    config: AlertingConfig, base_dir: Path
) -> tuple[list[RuleConfig], list[ConfigIssue]]:
    """Every rule, in order (defaults first), and the problems found."""
    located, issues = locate_rules(config, base_dir)
    return [rule for _, rule in located], issues


def locate_rules(
    config: AlertingConfig, base_dir: Path
) -> tuple[list[tuple[str, RuleConfig]], list[ConfigIssue]]:
    """Like :func:`resolve_rules`, each rule with the path of its definition (for issues):
    ``alerting.rules[0]``, ``<file>: rules[0]``, ``alerting.default_rules.override.NAME``."""
    issues: list[ConfigIssue] = []
    own: list[tuple[str, RuleConfig]] = [
        (f"alerting.rules[{i}]", rule) for i, rule in enumerate(config.rules)
    ]
    for path in _rule_file_paths(config.rule_files, base_dir, issues):
        own += _read_rule_file(path, issues)
    seen: dict[str, str] = {}
    for where, rule in own:
        if rule.name in seen:
            issues.append(
                ConfigIssue(f"{where}.name", f"'{rule.name}' is also defined at {seen[rule.name]}")
            )
        seen.setdefault(rule.name, where)
    defaults = _defaults(config, set(seen), issues)
    return [*defaults, *own], issues


def _defaults(
    config: AlertingConfig, replaced: set[str], issues: list[ConfigIssue]
) -> list[tuple[str, RuleConfig]]:
    settings = config.default_rules
    for i, name in enumerate(settings.disable):
        if name not in DEFAULT_NAMES:
            issues.append(ConfigIssue(f"alerting.default_rules.disable[{i}]", _unknown(name)))
    for name in settings.override:
        if name not in DEFAULT_NAMES:
            issues.append(ConfigIssue(f"alerting.default_rules.override.{name}", _unknown(name)))
    if not settings.enabled:
        return []
    rules = []
    for body in DEFAULT_RULES:
        name = body["name"]
        if name in settings.disable or name in replaced:
            continue
        change = settings.override.get(name, {})
        if "name" in change:
            issues.append(
                ConfigIssue(
                    f"alerting.default_rules.override.{name}.name",
                    "a default rule cannot be renamed",
                )
            )
            continue
        data = merged(body, change)
        runbook = data.get("annotations", {}).get("runbook_url", "")
        if config.runbook_base_url and runbook.startswith(RUNBOOKS):
            data["annotations"]["runbook_url"] = config.runbook_base_url + runbook[len(RUNBOOKS) :]
        loc = ("alerting", "default_rules", "override", name)
        rule = validate(RuleConfig, data, loc, issues)
        if rule is not None:
            rules.append((path_of(loc), rule))
    return rules


def _unknown(name: str) -> str:
    return f"'{name}' is not a default rule (they are: {', '.join(DEFAULT_NAMES)})"


def _rule_file_paths(patterns: list[str], base_dir: Path, issues: list[ConfigIssue]) -> list[Path]:
    found: list[Path] = []
    for i, pattern in enumerate(patterns):
        full = pattern if os.path.isabs(pattern) else str(base_dir / pattern)
        if glob.has_magic(full):
            found += sorted(Path(p) for p in glob.glob(full) if os.path.isfile(p))
        elif os.path.isfile(full):
            found.append(Path(full))
        else:
            issues.append(ConfigIssue(f"alerting.rule_files[{i}]", f"no such file: {full}"))
    return list(dict.fromkeys(found))


def _read_rule_file(path: Path, issues: list[ConfigIssue]) -> list[tuple[str, RuleConfig]]:
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError) as exc:
        issues.append(ConfigIssue(str(path), f"cannot read: {exc}"))
        return []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        issues.append(ConfigIssue(str(path), f"invalid YAML{where}"))
        return []
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        issues.append(ConfigIssue(str(path), "a rule file is a mapping with a 'rules' list"))
        return []
    for key in data:
        if key != "rules":
            issues.append(ConfigIssue(f"{path}: {key}", "unknown key"))
    found = []
    for i, body in enumerate(data["rules"]):
        loc = (f"{path}: rules", i)
        rule = validate(RuleConfig, body, loc, issues)
        if rule is not None:
            found.append((f"{path}: rules[{i}]", rule))
    return found
