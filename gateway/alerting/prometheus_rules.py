"""``otelgate alert-rules``: the gateway's alert rules as a Prometheus rule file.

Each gateway evaluates its rules over what it alone sees. Behind a load balancer, or to keep
alerting when a gateway is down, the same rules can run in Prometheus over the metrics every
gateway exports. One alerting rule per :class:`RuleConfig`, in one group ``otelgate-alerts``;
the alert keeps the rule's name, ``for``, ``keep_firing_for``, ``severity``, labels and
annotations (placeholders become Prometheus templates). Prometheus sums over every gateway,
so a per-service alert describes the cluster, not one gateway.

The PromQL of each condition is in :mod:`gateway.alerting.promql`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from gateway import __version__
from gateway.alerting.evaluation import Unit, format_value
from gateway.alerting.promql import SKIPPED_KINDS, PromQL, Skip, prom_duration, quote
from gateway.alerting.rules import PLACEHOLDER, RuleConfig
from gateway.config.issues import ConfigError
from gateway.config.model import Config
from gateway.health.config import HealthConfig
from gateway.processors.spanmetrics import DEFAULT_BUCKETS

GROUP = "otelgate-alerts"
_DURATION = re.compile(r"(?:[0-9]+(?:ms|[smhdwy]))+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TEMPLATE_OPEN = re.compile(r"\{\{")


def _literal(text: str) -> str:
    """``text`` as Go template text: ``{{`` would open an action."""
    return _TEMPLATE_OPEN.sub('{{ "{{" }}', text)


def _value(kind: str, unit: Unit) -> str:
    if kind == "stale":
        return "at least {{ $value | humanizeDuration }}"
    if unit == "ratio":
        return "{{ $value | humanizePercentage }}"
    if unit == "seconds":
        return "{{ $value | humanizeDuration }}"
    if unit == "rate":
        return '{{ printf "%.3g" $value }}/s'
    return '{{ printf "%.0f" $value }}'


def translate_template(text: str, rule: RuleConfig, unit: Unit, threshold: float | None) -> str:
    """An annotation with the gateway's placeholders as Prometheus template actions:
    ``{{ service }}`` -> ``{{ $labels.service }}``, ``{{ labels.X }}`` -> ``{{ $labels.X }}``,
    ``{{ value }}`` -> ``{{ $value }}`` humanized for the unit, ``{{ threshold }}``,
    ``{{ rule }}`` and ``{{ severity }}`` -> their text. Other ``{{`` are kept as text."""
    kind = rule.condition.kind
    pieces, last = [], 0
    for match in PLACEHOLDER.finditer(text):
        pieces.append(_literal(text[last : match.start()]))
        key = match[1]
        if key == "service":
            pieces.append("{{ $labels.service }}")
        elif key.startswith("labels."):
            label = key.removeprefix("labels.")
            if _IDENTIFIER.fullmatch(label):
                pieces.append(f"{{{{ $labels.{label} }}}}")
            else:
                pieces.append(f"{{{{ index $labels {quote(label)} }}}}")
        elif key == "value":
            pieces.append(_value(kind, unit))
        elif key == "threshold":
            if kind == "stale":
                pieces.append("{{ $value | humanizeDuration }}")
            elif threshold is not None:
                pieces.append(_literal(format_value(threshold, unit)))
        elif key == "rule":
            pieces.append(rule.name)
        elif key == "severity":
            pieces.append(rule.severity)
        last = match.end()
    pieces.append(_literal(text[last:]))
    return "".join(pieces)


def _alerting_rule(promql: PromQL, rule: RuleConfig) -> dict[str, Any]:
    """One Prometheus alerting rule (:class:`Skip` when the rule has no Prometheus form)."""
    kind = rule.condition.kind
    if not rule.enabled:
        raise Skip("disabled")
    if kind in SKIPPED_KINDS:
        raise Skip(SKIPPED_KINDS[kind])
    expr, unit, threshold = promql.kinds[kind](rule)
    body: dict[str, Any] = {"alert": rule.name, "expr": expr}
    if rule.for_ > 0:
        body["for"] = prom_duration(rule.for_)
    if rule.keep_firing_for > 0:
        body["keep_firing_for"] = prom_duration(rule.keep_firing_for)
    labels = {"severity": rule.severity, **rule.labels}
    body["labels"] = {key: _literal(value) for key, value in labels.items()}
    if rule.annotations:
        body["annotations"] = {
            key: translate_template(text, rule, unit, threshold)
            for key, text in rule.annotations.items()
        }
    return body


def alert_rules(
    rules: Sequence[RuleConfig],
    *,
    group_interval: str = "30s",
    health: HealthConfig | None = None,
    buckets: Sequence[float] = DEFAULT_BUCKETS,
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The rule file (as data) for ``rules``, and the ``(rule name, reason)`` of the rules it
    leaves out. ``health`` gives the window of rates and the ``stale_after`` thresholds (the
    defaults without it); ``buckets`` the span duration boundaries (latency rules)."""
    if not _DURATION.fullmatch(group_interval):
        raise ValueError(f"invalid Prometheus duration {group_interval!r} (e.g. 30s, 1m)")
    promql = PromQL(health or HealthConfig(), buckets)
    alerting, skipped = [], []
    for rule in rules:
        try:
            alerting.append(_alerting_rule(promql, rule))
        except Skip as why:
            skipped.append((rule.name, str(why)))
    group = {"name": GROUP, "interval": group_interval, "rules": alerting}
    return {"groups": [group]}, skipped


def generate(
    config: Config, base_dir: Path, *, group_interval: str = "30s"
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The rule file for every rule ``config`` resolves to (defaults, inline, rule files
    relative to ``base_dir``); a :class:`ConfigError` lists the problems of the rules."""
    from gateway.alerting.ruleset import resolve_rules
    from gateway.slo.rules import histogram_buckets

    rules, issues = resolve_rules(config.alerting, base_dir)
    if issues:
        raise ConfigError(issues)
    return alert_rules(
        rules,
        group_interval=group_interval,
        health=config.health,
        buckets=histogram_buckets(config),
    )


def config_dir(path: str | None) -> Path:
    """Where relative rule files are looked up: the configuration file's directory (or
    ``OTELGATE_CONFIG``'s), else the working directory (the embedded default)."""
    path = path or os.environ.get("OTELGATE_CONFIG")
    return Path(path).resolve().parent if path else Path.cwd()


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as ``|-`` blocks, keys in the order given."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(rules: Mapping[str, Any], skipped: Sequence[tuple[str, str]] = ()) -> str:
    """The rule file as YAML, with a header saying where it came from and what it left out."""
    header = (f"# Generated by otelgate {__version__} (otelgate alert-rules). Do not edit: "
              "change the alert rules and generate again.\n")  # fmt: skip
    if skipped:
        header += "# Rules the gateway evaluates that have no Prometheus form here:\n"
        header += "".join(f"#   {name}: {why}\n" for name, why in skipped)
    return header + yaml.dump(dict(rules), Dumper=_Dumper, sort_keys=False, width=1000)
