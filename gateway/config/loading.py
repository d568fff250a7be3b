"""Configuration: collector-shaped YAML validated by pydantic models, every error with its path.

``load_config`` / ``parse_config`` read YAML, expand ``${env:VAR}`` (:mod:`gateway.config.env`),
validate each component with the model its type selects, check the pipelines' references and
apply the ``OTELGATE_*`` overrides; all problems are raised together as one ``ConfigError``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from gateway.alerting.checks import check_alerting
from gateway.alerting.config import AlertingConfig
from gateway.alerting.rules import RuleConfig
from gateway.components import REGISTRY
from gateway.config.env import Loc, expand_env
from gateway.config.issues import ConfigError, ConfigIssue, path_of, validate
from gateway.config.model import SINGLE_SECTIONS, Config
from gateway.config.overrides import apply_env_overrides
from gateway.error_tracking.config import ErrorTrackingConfig
from gateway.otlp.batch import Signal
from gateway.registry import SECTIONS, Kind, UnknownComponentError, component_type
from gateway.slo.section import SloList
from gateway.store.config import StoreConfig


def _components(kind: Kind, raw: Any, issues: list[ConfigIssue]) -> dict[str, Any]:
    section = SECTIONS[kind]
    if not isinstance(raw, dict | None):
        issues.append(ConfigIssue(section, f"must be a mapping of {kind} id to settings"))
    built: dict[str, Any] = {}
    for cid, body in raw.items() if isinstance(raw, dict) else ():
        cid = str(cid)
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*(/\S+)?", cid):
            issues.append(ConfigIssue(f"{section}.{cid}", "invalid id (want type or type/name)"))
            continue
        try:
            factory = REGISTRY.factory(kind, component_type(cid))
        except UnknownComponentError as exc:
            issues.append(ConfigIssue(f"{section}.{cid}", str(exc)))
            continue
        if (component := validate(factory.config, body, (section, cid), issues)) is not None:
            built[cid] = component
    return built


def _check_pipelines(raw: Any, defined: dict[str, set[str]], issues: list[ConfigIssue]) -> None:
    """Pipeline ids and references, from the raw data so they are checked regardless."""
    pipelines = raw.get("pipelines") if isinstance(raw, dict) else None
    for pid, body in pipelines.items() if isinstance(pipelines, dict) else ():
        base = f"service.pipelines.{pid}"
        if not re.fullmatch(r"(traces|metrics|logs)(/\S+)?", str(pid)):
            message = "pipeline id must be traces, metrics or logs, optionally with /name"
            issues.append(ConfigIssue(base, message))
            signal = None
        else:
            signal = Signal(component_type(str(pid)))
        for kind, section in SECTIONS.items():
            refs = body.get(section) if isinstance(body, dict) else None
            seen: set[str] = set()
            for i, ref in enumerate(refs if isinstance(refs, list) else ()):
                if not isinstance(ref, str):
                    continue
                where = f"{base}.{section}[{i}]"
                if ref in seen:
                    issues.append(ConfigIssue(where, f"'{ref}' is listed twice"))
                elif section in defined and ref not in defined[section]:
                    message = f"{kind} '{ref}' is not defined under '{section}'"
                    issues.append(ConfigIssue(where, message))
                elif signal is not None and (problem := _refuses(kind, ref, signal)):
                    issues.append(ConfigIssue(where, problem))
                seen.add(ref)


def _check_store(built: dict[str, Any], exporters: set[str], issues: list[ConfigIssue]) -> None:
    """One ``store`` exporter at most, and only with the store enabled."""
    stores = sorted(e for e in exporters if component_type(e) == "store")
    for extra in stores[1:]:
        message = f"only one store exporter is allowed (already: '{stores[0]}')"
        issues.append(ConfigIssue(f"exporters.{extra}", message))
    store = built.get("store")
    if stores and isinstance(store, StoreConfig) and not store.enabled:
        message = f"exporter '{stores[0]}' writes into the store: store.enabled must be true"
        issues.append(ConfigIssue("store.enabled", message))


def _refuses(kind: Kind, component_id: str, signal: Signal) -> str | None:
    """Why a component's type does not handle a pipeline's signal (None if it does)."""
    factory = REGISTRY.types(kind).get(component_type(component_id))
    if factory is None or factory.takes(signal):
        return None  # an unknown type is reported where it is defined
    signals = " and ".join(s.value for s in Signal if s in factory.signals)
    return f"{kind} '{component_id}' takes only {signals}, not {signal.value}"


def _build(data: Any, source: str, environ: Mapping[str, str]) -> Config:
    if not isinstance(data, dict) or not data:
        what = "empty configuration" if data in (None, {}) else "the top level must be a mapping"
        raise ConfigError([ConfigIssue(source, what)])
    problems: list[tuple[Loc, str]] = []
    data = expand_env(data, environ, (), problems)
    issues: list[ConfigIssue] = []
    sections = [*SECTIONS.values(), *SINGLE_SECTIONS]
    for key in map(str, data):
        if key not in sections:
            close = difflib.get_close_matches(key, sections, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            issues.append(ConfigIssue(key, f"unknown key{hint}"))
    built: dict[str, Any] = {
        section: _components(kind, data.get(section), issues) for kind, section in SECTIONS.items()
    }
    if "service" not in data:
        issues.append(ConfigIssue("service", "is required (it defines the pipelines)"))
    for section, model in SINGLE_SECTIONS.items():
        if section in data:
            built[section] = validate(model, data[section], (section,), issues)
    # A section that is not a mapping is already an error: don't check references into it.
    defined = {s: set(map(str, data.get(s) or {})) for s in SECTIONS.values()
               if isinstance(data.get(s), dict | None)}  # fmt: skip
    _check_pipelines(data.get("service"), defined, issues)
    _check_store(built, defined.get("exporters", set()), issues)
    rules = _check_alerting(built, data, source, issues)
    env_issues = [ConfigIssue(path_of(loc), message) for loc, message in problems]
    failed = {issue.path for issue in env_issues}  # no second error for an unexpanded value
    issues = env_issues + [issue for issue in issues if issue.path not in failed]
    if issues:
        raise ConfigError(issues)
    config = Config(**built)
    config.alerting.use_rules(rules)
    return config


def _check_alerting(
    built: dict[str, Any], data: dict[str, Any], source: str, issues: list[ConfigIssue]
) -> list[RuleConfig]:
    """Resolve the alert rules (files relative to the config file) and check references."""
    alerting = built.get("alerting", AlertingConfig()) if "alerting" in data else AlertingConfig()
    slos = built.get("slos") if "slos" in data else SloList([])
    if alerting is None or slos is None:
        return []  # already reported
    base_dir = Path(source).parent if not source.startswith("<") else Path.cwd()
    exporters = (
        set(map(str, data.get("exporters") or {}))
        if isinstance(data.get("exporters"), dict | None)
        else set()
    )
    errors = built.get("errors") if "errors" in data else ErrorTrackingConfig()
    rules, found = check_alerting(
        alerting, base_dir, exporters, [s.name for s in slos.definitions()],
        error_tracking=errors is None or errors.enabled,
    )  # fmt: skip
    issues.extend(found)
    return rules


class _Loader(yaml.SafeLoader):
    """A safe loader that rejects duplicate mapping keys instead of keeping the last one."""


def _no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            key = loader.construct_object(key_node)
            if key in seen:
                problem = f"duplicate key {key!r} (first at line {seen[key]})"
                raise yaml.MarkedYAMLError(None, None, problem, key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def parse_config(
    text: str, source: str = "<string>", environ: Mapping[str, str] | None = None
) -> Config:
    """Parse, expand, validate and apply overrides; ``environ`` defaults to ``os.environ``."""
    env = os.environ if environ is None else environ
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: builds plain data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([ConfigIssue(source, f"invalid YAML{where}: {exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue(source, f"invalid YAML: {exc}")]) from None
    return apply_env_overrides(_build(data, source, env), env)


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and parse a YAML file; see :func:`parse_config`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(str(path), "configuration file not found")]) from None
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError([ConfigIssue(str(path), f"cannot read: {reason}")]) from None
    return parse_config(text, source=str(path), environ=environ)


def default_config(environ: Mapping[str, str] | None = None) -> Config:
    """The embedded default: OTLP in on 4317/4318; host metrics and span metrics (RED) on;
    every signal kept as JSON lines under the data dir; recent logs and spans in the embedded
    store (``/logs``, ``/traces``); metrics for Prometheus to scrape at the admin port's
    ``/metrics/otlp``."""
    env = os.environ if environ is None else environ
    data_dir = (env.get("OTELGATE_DATA_DIR") or "./otelgate-data").replace("${", "$${")

    def file(signal: str) -> dict[str, Any]:
        return {"path": os.path.join(data_dir, f"{signal}.jsonl")}

    data: dict[str, Any] = {
        "receivers": {"otlp": {"protocols": {"grpc": None, "http": None}}, "hostmetrics": None},
        "processors": {"spanmetrics": None},
        "exporters": {
            "file/traces": file("traces"),
            "file/metrics": file("metrics"),
            "file/logs": file("logs"),
            "prometheus": None,
            "store": None,
        },
        "service": {
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["spanmetrics"],
                    "exporters": ["file/traces", "store"],
                },
                "metrics": {
                    "receivers": ["otlp", "hostmetrics"],
                    "exporters": ["file/metrics", "prometheus"],
                },
                "logs": {"receivers": ["otlp"], "exporters": ["file/logs", "store"]},
            }
        },
        "admin": {"endpoint": "127.0.0.1:8888"},
    }
    return apply_env_overrides(_build(data, "<default>", {}), env)
