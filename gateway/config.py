"""Configuration: collector-shaped YAML validated by pydantic models, every error with its path.

``load_config`` / ``parse_config`` read YAML, expand ``${env:VAR}`` (:mod:`gateway.config_env`),
validate each component with the model its type selects, check the pipelines' references and
apply the ``OTELGATE_*`` overrides; all problems are raised together as one ``ConfigError``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)

from gateway.config_env import Loc, expand_env
from gateway.config_models import (
    COMPONENT_SECTIONS,
    EXPORTER_SIGNALS,
    SINGLE_SECTIONS,
    AdminConfig,
    Config,
    ExporterSettings,
    FileExporterConfig,
    FileRotationSettings,
    GrpcProtocolConfig,
    HttpProtocolConfig,
    JaegerExporterConfig,
    LoggingConfig,
    LokiExporterConfig,
    OtlpExporterConfig,
    OtlpProtocols,
    OtlpReceiverConfig,
    PipelineConfig,
    QueueSettings,
    ResourceAction,
    ResourceProcessorConfig,
    RetrySettings,
    ServiceConfig,
    TlsSettings,
    parse_duration,
)
from gateway.redact import is_secret_name, redact_text

__all__ = [
    "AdminConfig", "Config", "ConfigError", "ConfigIssue", "ExporterSettings",
    "FileExporterConfig", "FileRotationSettings", "GrpcProtocolConfig", "HttpProtocolConfig",
    "JaegerExporterConfig", "LoggingConfig", "LokiExporterConfig", "OtlpExporterConfig",
    "OtlpProtocols", "OtlpReceiverConfig",
    "PipelineConfig", "QueueSettings", "ResourceAction", "ResourceProcessorConfig",
    "RetrySettings", "ServiceConfig", "TlsSettings", "apply_env_overrides", "component_type",
    "default_config", "load_config", "parse_config", "parse_duration",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem: a dotted ``path`` (list indexes in brackets) and a human ``message``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(Exception):
    """Every problem found in a configuration; ``str()`` gives one ``path: message`` per line.

    Messages may quote the value that was wrong: credentials in them (a URL's password, a
    token in its query) are masked here, so check-config and run never print them.
    """

    def __init__(self, errors: list[ConfigIssue]) -> None:
        errors = [ConfigIssue(i.path, redact_text(i.message)) for i in errors]
        super().__init__("\n".join(str(issue) for issue in errors))
        self.errors = errors


_MESSAGES = {
    "missing": "is required", "extra_forbidden": "unknown key", "string_type": "must be a string",
    "bool_type": "must be true or false", "bool_parsing": "must be true or false",
    "int_type": "must be a whole number", "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number", "float_type": "must be a number",
    "float_parsing": "must be a number", "dict_type": "must be a mapping",
    "model_type": "must be a mapping", "list_type": "must be a list",
    "greater_than": "must be greater than {gt}", "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}", "less_than_equal": "must be at most {le}",
    "literal_error": "must be {expected}",
}  # fmt: skip


def component_type(component_id: str) -> str:
    """The type part of ``type`` or ``type/name``."""
    return component_id.partition("/")[0]


def _path(loc: Loc) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc if p != "[key]"]
    return "".join(parts).removeprefix(".")


def _shown(value: Any) -> str:
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()
    text = repr(redact_text(value) if isinstance(value, str) else value)  # before truncating
    return text if len(text) <= 40 else text[:37] + "..."


def _message(error: Any) -> str:
    """A pydantic error in words a user understands; never quotes a secret setting's value
    (a header such as ``Authorization``, anything named like a token, key or password)."""
    kind, ctx = error["type"], error.get("ctx") or {}
    loc = [str(part) for part in error.get("loc", ())]
    secret = any(is_secret_name(part) for part in loc)
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in ("too_short", "string_too_short") and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind in ("missing", "extra_forbidden"):
        return _MESSAGES[kind]
    if kind in _MESSAGES:
        ctx = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in ctx.items()}
        shown = "a hidden value" if secret else _shown(error.get("input"))
        return _MESSAGES[kind].format(**ctx) + f" (got {shown})"
    return str(error["msg"])[:1].lower() + str(error["msg"])[1:]


def _validate(model: type[BaseModel], data: Any, loc: Loc, issues: list[ConfigIssue]) -> Any:
    """The validated model, or ``None`` after adding its problems to ``issues``."""
    try:
        return model.model_validate({} if data is None else data)
    except ValidationError as exc:
        issues.extend(ConfigIssue(_path((*loc, *e["loc"])), _message(e)) for e in exc.errors())
        return None


def _components(section: str, raw: Any, issues: list[ConfigIssue]) -> dict[str, Any]:
    kind, types = COMPONENT_SECTIONS[section]
    if not isinstance(raw, dict | None):
        issues.append(ConfigIssue(section, f"must be a mapping of {kind} id to settings"))
    built: dict[str, Any] = {}
    for cid, body in raw.items() if isinstance(raw, dict) else ():
        cid, type_ = str(cid), component_type(str(cid))
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*(/\S+)?", cid):
            issues.append(ConfigIssue(f"{section}.{cid}", "invalid id (want type or type/name)"))
        elif type_ not in types:
            message = f"unknown {kind} type '{type_}' (known: {', '.join(sorted(types))})"
            issues.append(ConfigIssue(f"{section}.{cid}", message))
        elif (component := _validate(types[type_], body, (section, cid), issues)) is not None:
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
        for section, (kind, _) in COMPONENT_SECTIONS.items():
            refs = body.get(section) if isinstance(body, dict) else None
            seen: set[str] = set()
            for i, ref in enumerate(refs if isinstance(refs, list) else ()):
                if not isinstance(ref, str):
                    continue
                if ref in seen:
                    issues.append(ConfigIssue(f"{base}.{section}[{i}]", f"'{ref}' is listed twice"))
                elif section in defined and ref not in defined[section]:
                    message = f"{kind} '{ref}' is not defined under '{section}'"
                    issues.append(ConfigIssue(f"{base}.{section}[{i}]", message))
                elif section == "exporters" and not _takes(ref, str(pid)):
                    signals = " and ".join(sorted(EXPORTER_SIGNALS[component_type(ref)]))
                    message = f"exporter '{ref}' takes only {signals}, not {str(pid).split('/')[0]}"
                    issues.append(ConfigIssue(f"{base}.{section}[{i}]", message))
                seen.add(ref)


def _takes(exporter_id: str, pipeline_id: str) -> bool:
    """Whether an exporter's type handles the signal of a pipeline."""
    signals = EXPORTER_SIGNALS.get(component_type(exporter_id))
    return signals is None or pipeline_id.partition("/")[0] in signals


def _build(data: Any, source: str, environ: Mapping[str, str]) -> Config:
    if not isinstance(data, dict) or not data:
        what = "empty configuration" if data in (None, {}) else "the top level must be a mapping"
        raise ConfigError([ConfigIssue(source, what)])
    problems: list[tuple[Loc, str]] = []
    data = expand_env(data, environ, (), problems)
    issues: list[ConfigIssue] = []
    sections = [*COMPONENT_SECTIONS, *SINGLE_SECTIONS]
    for key in map(str, data):
        if key not in sections:
            close = difflib.get_close_matches(key, sections, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            issues.append(ConfigIssue(key, f"unknown key{hint}"))
    built: dict[str, Any] = {s: _components(s, data.get(s), issues) for s in COMPONENT_SECTIONS}
    if "service" not in data:
        issues.append(ConfigIssue("service", "is required (it defines the pipelines)"))
    for section, model in SINGLE_SECTIONS.items():
        if section in data:
            built[section] = _validate(model, data[section], (section,), issues)
    # A section that is not a mapping is already an error: don't check references into it.
    defined = {s: set(map(str, data.get(s) or {})) for s in COMPONENT_SECTIONS
               if isinstance(data.get(s), dict | None)}  # fmt: skip
    _check_pipelines(data.get("service"), defined, issues)
    env_issues = [ConfigIssue(_path(loc), message) for loc, message in problems]
    failed = {issue.path for issue in env_issues}  # no second error for an unexpanded value
    issues = env_issues + [issue for issue in issues if issue.path not in failed]
    if issues:
        raise ConfigError(issues)
    return Config(**built)


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
    every signal kept as JSON lines under the data dir; metrics for Prometheus to scrape at
    the admin port's ``/metrics/otlp``."""
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
        },
        "service": {
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["spanmetrics"],
                    "exporters": ["file/traces"],
                },
                "metrics": {
                    "receivers": ["otlp", "hostmetrics"],
                    "exporters": ["file/metrics", "prometheus"],
                },
                "logs": {"receivers": ["otlp"], "exporters": ["file/logs"]},
            }
        },
        "admin": {"endpoint": "127.0.0.1:8888"},
    }
    return apply_env_overrides(_build(data, "<default>", {}), env)


def apply_env_overrides(config: Config, environ: Mapping[str, str]) -> Config:
    """A copy of ``config`` with the ``OTELGATE_*`` overrides applied; empty values count unset."""
    issues: list[ConfigIssue] = []

    def override(model: BaseModel | None, cls: type[BaseModel], var: str, key: str) -> Any:
        current = model.model_dump() if model is not None else {}
        try:
            return cls.model_validate({**current, key: environ[var]})
        except ValidationError as exc:
            issues.extend(ConfigIssue(f"env:{var}", _message(e)) for e in exc.errors())
            return None

    update: dict[str, Any] = {}
    if environ.get("OTELGATE_ADMIN_ENDPOINT"):
        var = "OTELGATE_ADMIN_ENDPOINT"
        update["admin"] = override(config.admin, AdminConfig, var, "endpoint")
    if environ.get("OTELGATE_LOG_LEVEL"):
        var = "OTELGATE_LOG_LEVEL"
        update["logging"] = override(config.logging, LoggingConfig, var, "level")
    models: dict[str, type[BaseModel]] = {"grpc": GrpcProtocolConfig, "http": HttpProtocolConfig}
    wanted = {p: f"OTELGATE_{p.upper()}_ENDPOINT" for p in models}
    wanted = {p: var for p, var in wanted.items() if environ.get(var)}
    otlp = [rid for rid in config.receivers if component_type(rid) == "otlp"]
    if wanted and len(otlp) != 1:
        found = f"found {len(otlp)}: {', '.join(otlp)}" if otlp else "found none"
        message = f"needs exactly one otlp receiver to apply to ({found})"
        issues.extend(ConfigIssue(f"env:{var}", message) for var in wanted.values())
    elif wanted:
        receiver = config.receivers[otlp[0]]
        assert isinstance(receiver, OtlpReceiverConfig)  # the otlp type selects this model
        changed = {
            p: override(getattr(receiver.protocols, p), models[p], var, "endpoint")
            for p, var in wanted.items()
        }
        protocols = receiver.protocols.model_copy(update=changed)
        receivers = {
            **config.receivers,
            otlp[0]: receiver.model_copy(update={"protocols": protocols}),
        }
        update["receivers"] = receivers
    if issues:
        raise ConfigError(issues)
    return config.model_copy(update=update)
