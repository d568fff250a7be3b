"""``otelgate slo-rules``: Prometheus recording and alerting rules for the configured SLOs.

The rules compute cluster-wide SLOs from the metrics every gateway exports (several gateways
behind a load balancer: each query sums over all of them). Series names and labels follow
Sloth (``slo:sli_error:ratio_rate5m``..., ``slo:objective:ratio``, labels ``sloth_id``,
``sloth_service``, ``sloth_slo``, ``sloth_window``), so Sloth's Grafana dashboards work. Alerts
carry Sloth's labels and no ``sloth_window``: one alert per SLO and severity, whichever window
pair fires it.

SLIs come from the span metrics (``spanmetrics`` processor): availability from
``traces_span_metrics_calls_total``, latency from the ``traces_span_metrics_duration_seconds``
histogram (the threshold must be one of its bucket boundaries), ratio SLIs from the two
counters as the Prometheus exporter names them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from prometheus_client.utils import floatToGoString

from exporters.prometheus.translate import Kind, label_name, metric_name
from gateway import __version__
from gateway.config.issues import ConfigError, ConfigIssue
from gateway.config.model import Config
from gateway.processors.spanmetrics import DEFAULT_BUCKETS
from gateway.registry import component_type
from gateway.slo.burn_rate import (
    REPORT_WINDOWS,
    BurnRateRule,
    budget_ratio,
    format_window,
    workbook_rules,
)
from gateway.slo.config import MetricSelector, SloConfig
from gateway.slo.openslo import OpenSloFile, load_openslo

CALLS = "traces_span_metrics_calls_total"
BUCKET = "traces_span_metrics_duration_seconds_bucket"
COUNT = "traces_span_metrics_duration_seconds_count"
SERVER = 'span_kind="SPAN_KIND_SERVER"'
ERROR = 'status_code="STATUS_CODE_ERROR"'


@dataclass(frozen=True, slots=True)
class SloSource:
    """An SLO and where it was defined (for error messages)."""

    slo: SloConfig
    path: str
    threshold_path: str


def collect_slos(config: Config, openslo_files: Iterable[str] = ()) -> list[SloSource]:
    """The SLOs of ``config`` and of extra OpenSLO files; names must be unique."""
    found: list[SloSource] = []
    for index, entry in enumerate(config.slos.root):
        if isinstance(entry, OpenSloFile):
            for slo in entry.slos:
                where = f"slos[{index}].openslo ({entry.openslo}: SLO {slo.name})"
                found.append(SloSource(slo, where, f"{where}.spec.objectives[0].value"))
        else:
            where = f"slos[{index}]"
            found.append(SloSource(entry, where, f"{where}.sli.latency.threshold"))
    issues: list[ConfigIssue] = []
    for path in openslo_files:
        try:
            slos = load_openslo(path)
        except ConfigError as exc:
            issues.extend(exc.errors)
            continue
        for slo in slos:
            where = f"{path} (SLO {slo.name})"
            found.append(SloSource(slo, where, f"{where}: spec.objectives[0].value"))
    seen: dict[str, str] = {}
    for source in found:
        if source.slo.name in seen:
            message = f"SLO name '{source.slo.name}' is also defined at {seen[source.slo.name]}"
            issues.append(ConfigIssue(source.path, message))
        seen.setdefault(source.slo.name, source.path)
    if not found and not issues:
        message = "no SLOs defined: add them to the configuration or pass --openslo FILE"
        issues.append(ConfigIssue("slos", message))
    if issues:
        raise ConfigError(issues)
    return found


def histogram_buckets(config: Config) -> tuple[float, ...]:
    """The span duration boundaries every spanmetrics processor exports (the default when
    none is configured)."""
    configured = [tuple(getattr(cfg, "buckets", DEFAULT_BUCKETS))
                  for name, cfg in config.processors.items()
                  if component_type(name) == "spanmetrics"]  # fmt: skip
    if not configured:
        return tuple(DEFAULT_BUCKETS)
    return tuple(b for b in configured[0] if all(_has(other, b) for other in configured[1:]))


def _has(bounds: Sequence[float], value: float) -> bool:
    return any(math.isclose(value, bound, rel_tol=1e-9) for bound in bounds)


def _selector(*matchers: str) -> str:
    return "{" + ",".join(m for m in matchers if m) + "}"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _le(bound: float) -> str:
    """Match the bucket whatever the exporter's float format (``1`` or ``1.0``)."""
    text = floatToGoString(bound)
    if text.endswith(".0"):
        return "le=~" + _quote(re.escape(text[:-2]) + r"(\.0)?")
    return f"le={_quote(text)}"


def _counter_selector(selector: MetricSelector, service: str) -> str:
    name = selector.prometheus_name or metric_name(selector.metric, "", Kind.COUNTER)[0] + "_total"
    job = "job=~" + _quote(f"(.+/)?{re.escape(service)}")
    attrs = [f"{label_name(k)}={_quote(_text(v))}" for k, v in sorted(selector.attributes.items())]
    return name + _selector(job, *attrs)


def _text(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def error_ratio_query(slo: SloConfig, window: str) -> str:
    """The PromQL error ratio (bad / total events) of ``slo`` over ``window``."""
    service = f"service_name={_quote(slo.service)}"
    sli = slo.sli
    if sli.ratio is not None:
        good = _counter_selector(sli.ratio.good, slo.service)
        total = _counter_selector(sli.ratio.total, slo.service)
        return (f"1 - (\n  (sum(rate({good}[{window}])) or vector(0))\n  /\n"
                f"  sum(rate({total}[{window}]))\n)")  # fmt: skip
    spans = sli.availability or sli.latency
    assert spans is not None
    name = f"span_name={_quote(spans.span_name)}" if spans.span_name else ""
    if sli.latency is not None:
        fast = BUCKET + _selector(service, SERVER, name, _le(sli.latency.threshold))
        every = COUNT + _selector(service, SERVER, name)
        return (f"1 - (\n  sum(rate({fast}[{window}]))\n  /\n"
                f"  sum(rate({every}[{window}]))\n)")  # fmt: skip
    errors = CALLS + _selector(service, SERVER, ERROR, name)
    calls = CALLS + _selector(service, SERVER, name)
    return (f"(sum(rate({errors}[{window}])) or vector(0))\n/\n"
            f"sum(rate({calls}[{window}]))")  # fmt: skip


def _ids(slo: SloConfig) -> dict[str, str]:
    return {"sloth_id": f"{slo.service}-{slo.name}", "sloth_service": slo.service,
            "sloth_slo": slo.name}  # fmt: skip


def _filter(slo: SloConfig) -> str:
    return _selector(*(f"{k}={_quote(v)}" for k, v in _ids(slo).items()))


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name))


def _windows(slo: SloConfig, rules: Sequence[BurnRateRule]) -> list[int]:
    minutes = {m for _, m in REPORT_WINDOWS} | {slo.window_minutes}
    minutes |= {r.long_window for r in rules} | {r.short_window for r in rules}
    return sorted(minutes)


def _over(minutes: int, flt: str, factor: float, budget: float) -> str:
    """The error ratio over a window where it burns at ``factor`` or faster, without the
    ``sloth_window`` label: every window pair then yields the same label set, so an alert
    whose firing pair changes stays one alert (Sloth writes its conditions this way)."""
    window = format_window(minutes)
    return (f"max(slo:sli_error:ratio_rate{window}{flt} >= ({factor!r} * {budget!r}))"
            " without (sloth_window)")  # fmt: skip


def slo_groups(slo: SloConfig) -> list[dict[str, Any]]:
    """The three rule groups of one SLO: SLI recordings, metadata, alerts."""
    ids, flt, budget = _ids(slo), _filter(slo), budget_ratio(slo.objective)
    rules = workbook_rules(**slo.alerting.model_dump())
    period = format_window(slo.window_minutes)
    sli_rules = [
        {"record": f"slo:sli_error:ratio_rate{format_window(m)}",
         "expr": error_ratio_query(slo, format_window(m)),
         "labels": {**ids, "sloth_window": format_window(m)}}
        for m in _windows(slo, rules)
    ]  # fmt: skip

    def burn(window: str) -> str:
        return (f"slo:sli_error:ratio_rate{window}{flt}\n/ on(sloth_id, sloth_slo, sloth_service)"
                f" group_left\nslo:error_budget:ratio{flt}")  # fmt: skip

    meta = [
        ("slo:objective:ratio", f"vector({slo.objective!r})"),
        ("slo:error_budget:ratio", f"vector({budget!r})"),
        ("slo:time_period:days", f"vector({slo.window_minutes / 1440:g})"),
        ("slo:current_burn_rate:ratio", burn("5m")),
        ("slo:period_burn_rate:ratio", burn(period)),
        ("slo:period_error_budget_remaining:ratio", f"1 - slo:period_burn_rate:ratio{flt}"),
    ]
    meta_rules: list[dict[str, Any]] = [{"record": r, "expr": e, "labels": ids} for r, e in meta]
    info = {"sloth_version": f"otelgate-{__version__}", "sloth_mode": "cli-gen-otelgate",
            "sloth_spec": "otelgate/v1", "sloth_objective": f"{slo.objective * 100:g}"}  # fmt: skip
    meta_rules.append({"record": "sloth_slo_info", "expr": "vector(1)", "labels": {**ids, **info}})
    alerts = []
    for severity in ("page", "ticket"):
        conditions = [
            f"(\n  {_over(r.short_window, flt, r.factor, budget)}\n  and\n"
            f"  {_over(r.long_window, flt, r.factor, budget)}\n)"
            for r in rules
            if r.severity == severity
        ]
        alerts.append({
            "alert": f"{_camel(slo.name)}ErrorBudgetBurn",
            "expr": "\nor\n".join(conditions),
            "labels": {"sloth_severity": severity, "severity": severity},
            "annotations": {
                "title": f"({severity}) {{{{$labels.sloth_service}}}} {{{{$labels.sloth_slo}}}} "
                         "SLO error budget burn rate is too fast.",
                "summary": f"{slo.service} {slo.name}: the error budget of the {period} window "
                           f"(objective {slo.objective * 100:g}%) burns too fast.",
            },
        })  # fmt: skip
    ident = ids["sloth_id"]
    return [
        {"name": f"sloth-slo-sli-recordings-{ident}", "rules": sli_rules},
        {"name": f"sloth-slo-meta-recordings-{ident}", "rules": meta_rules},
        {"name": f"sloth-slo-alerts-{ident}", "rules": alerts},
    ]


def generate(config: Config, openslo_files: Iterable[str] = ()) -> dict[str, Any]:
    """The rule file (as data) for every SLO; latency thresholds must be histogram bounds."""
    sources = collect_slos(config, openslo_files)
    bounds = histogram_buckets(config)
    issues = []
    for source in sources:
        latency = source.slo.sli.latency
        if latency is not None and not _has(bounds, latency.threshold):
            shown = ", ".join(f"{b:g}" for b in bounds)
            message = (f"{latency.threshold:g}s is not a span duration bucket boundary, so "
                       f"Prometheus cannot count spans below it (boundaries: {shown})")  # fmt: skip
            issues.append(ConfigIssue(source.threshold_path, message))
    if issues:
        raise ConfigError(issues)
    return {"groups": [group for source in sources for group in slo_groups(source.slo)]}


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as ``|-`` blocks, keys in the order given."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(rules: dict[str, Any]) -> str:
    """The rule file as YAML, with a header saying where it came from."""
    header = (f"# Generated by otelgate {__version__} (otelgate slo-rules). Do not edit: change "
              "the SLOs and generate again.\n")  # fmt: skip
    return header + yaml.dump(rules, Dumper=_Dumper, sort_keys=False, width=1000)
