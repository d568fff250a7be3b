"""Checks of ``alerting`` that need the rest of the configuration: receivers named by routes,
exporters and SLOs named by rules, conditions this gateway cannot evaluate."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from gateway.alerting.config import AlertingConfig, RouteConfig
from gateway.alerting.rules import RuleConfig
from gateway.alerting.ruleset import locate_rules
from gateway.config.issues import ConfigIssue


def check_alerting(
    config: AlertingConfig,
    base_dir: Path,
    exporters: Collection[str],
    slos: Collection[str],
    error_tracking: bool = True,
) -> tuple[list[RuleConfig], list[ConfigIssue]]:
    """The resolved rules and every problem, each with its path."""
    located, issues = locate_rules(config, base_dir)
    receivers = set(config.receivers)
    if config.route is None:
        if receivers:
            issues.append(ConfigIssue("alerting.route", "is required when receivers are defined"))
    else:
        if config.route.receiver is None:
            issues.append(ConfigIssue("alerting.route.receiver", "the root route needs a receiver"))
        _check_route(config.route, "alerting.route", receivers, issues)
    for name, receiver in config.receivers.items():
        if receiver.apprise is not None:
            _check_apprise(name, receiver.apprise.urls, issues)
    for where, rule in located:
        issues += _rule_issues(where, rule, exporters, slos, error_tracking)
    return [rule for _, rule in located], issues


def _check_route(
    route: RouteConfig, path: str, receivers: set[str], issues: list[ConfigIssue]
) -> None:
    if route.receiver is not None and route.receiver not in receivers:
        issues.append(ConfigIssue(f"{path}.receiver", _unknown(route.receiver, receivers)))
    for i, step in enumerate(route.escalation or ()):
        for j, name in enumerate(step.receivers):
            if name not in receivers:
                where = f"{path}.escalation[{i}].receivers[{j}]"
                issues.append(ConfigIssue(where, _unknown(name, receivers)))
    for i, child in enumerate(route.routes):
        _check_route(child, f"{path}.routes[{i}]", receivers, issues)


def _unknown(name: str, receivers: set[str]) -> str:
    known = ", ".join(sorted(receivers)) or "none"
    return f"receiver '{name}' is not defined under alerting.receivers (defined: {known})"


def _check_apprise(name: str, urls: list[str], issues: list[ConfigIssue]) -> None:
    from gateway.alerting.notifiers.apprise_notifier import AppriseNotifier
    from gateway.alerting.notifiers.config import AppriseConfig
    from gateway.errors import PermanentError

    for i, url in enumerate(urls):
        try:
            AppriseNotifier(name, AppriseConfig(urls=[url]))
        except (ValueError, PermanentError) as exc:
            issues.append(ConfigIssue(f"alerting.receivers.{name}.apprise.urls[{i}]", str(exc)))


def _rule_issues(
    where: str,
    rule: RuleConfig,
    exporters: Collection[str],
    slos: Collection[str],
    error_tracking: bool,
) -> list[ConfigIssue]:
    """Problems of one rule; ``where`` is the path of its definition."""
    spec = rule.condition.spec
    kind = rule.condition.kind
    at = f"{where}.condition.{kind}"
    name = getattr(spec, "name", None)
    if kind in ("exporter", "queue_fill", "dropped_items") and name not in (None, *exporters):
        message = f"rule '{rule.name}': exporter '{name}' is not defined under exporters"
        return [ConfigIssue(f"{at}.name", message)]
    slo = getattr(spec, "slo", None)
    if kind == "slo_burn" and slo not in ("*", *slos):
        message = f"rule '{rule.name}': SLO '{slo}' is not defined under slos"
        return [ConfigIssue(f"{at}.slo", message)]
    if kind == "error_group" and not error_tracking:
        message = f"rule '{rule.name}': error_group conditions need errors.enabled: true"
        return [ConfigIssue(at, message)]
    return []
