"""OpenSLO v1 files mapped onto the gateway's SLO definitions (:class:`SloConfig`).

What fits is mapped; anything else is a :class:`~gateway.config.ConfigError` whose paths are
``FILE[n].spec...`` (``n`` counts the objects of the file, across YAML documents and lists):

- ``kind: SLO`` with ``spec.service``, one ``spec.objectives[]`` entry (``target`` or
  ``targetPercent``), one rolling ``spec.timeWindow[]`` (``28d``, ``4w``, ``12h``...) and
  ``budgetingMethod: Occurrences``; the SLI inline (``spec.indicator``) or by name
  (``spec.indicatorRef`` to a ``kind: SLI`` object of the same file).
- ``kind: SLI`` whose metric sources are ``type: otelgate``:
  ``ratioMetric`` with ``good``/``total`` sources ``{spans: non_error}``/``{spans: all}``
  (availability) or ``{metric, attributes, prometheusName}`` counters (ratio);
  ``thresholdMetric`` with ``{spans: duration}`` and the objective's ``op: lte`` and ``value``
  in seconds (latency). ``spanName`` narrows span-based SLIs to one span name.
- ``Service``, ``DataSource`` and alerting objects are accepted and ignored.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from gateway.config.issues import ConfigError, ConfigIssue
from gateway.config.values import StrictModel
from gateway.slo.config import SloConfig

API_VERSION = "openslo/v1"
_IGNORED_KINDS = {"Service", "DataSource", "AlertPolicy", "AlertCondition",
                  "AlertNotificationTarget"}  # fmt: skip
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
# Where SloConfig fields come from, for errors found when validating the mapped result.
_FIELD_PATHS = {
    "name": "metadata.name", "service": "spec.service", "objective": "spec.objectives[0]",
    "window": "spec.timeWindow[0].duration",
}  # fmt: skip


class _Problems:
    """The issues found so far."""

    def __init__(self) -> None:
        self.issues: list[ConfigIssue] = []

    def add(self, path: str, message: str) -> None:
        self.issues.append(ConfigIssue(path, message))


def _objects(path: str, problems: _Problems) -> list[Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(path, "OpenSLO file not found")]) from None
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError([ConfigIssue(path, f"cannot read: {reason}")]) from None
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([ConfigIssue(path, f"invalid YAML{where}")]) from None
    found: list[Any] = []
    for document in documents:
        if isinstance(document, list):
            found.extend(document)
        elif document is not None:
            found.append(document)
    if not found:
        problems.add(path, "no OpenSLO objects in the file")
    return found


def load_openslo(path: str) -> list[SloConfig]:
    """The SLOs of one OpenSLO v1 file; raises :class:`ConfigError` listing every problem."""
    problems = _Problems()
    objects = _objects(path, problems)
    slis: dict[str, tuple[str, dict[str, Any]]] = {}
    slos: list[tuple[str, dict[str, Any]]] = []
    for index, obj in enumerate(objects):
        where = f"{path}[{index}]"
        if not isinstance(obj, dict):
            problems.add(where, "must be a mapping (an OpenSLO object)")
            continue
        if obj.get("apiVersion") != API_VERSION:
            got = obj.get("apiVersion")
            problems.add(f"{where}.apiVersion", f"must be {API_VERSION} (got {got!r})")
            continue
        kind, name = obj.get("kind"), (obj.get("metadata") or {}).get("name")
        spec = obj.get("spec")
        if kind in _IGNORED_KINDS:
            continue
        if kind not in ("SLO", "SLI"):
            problems.add(f"{where}.kind", f"unsupported kind {kind!r} (SLO, SLI, Service, ...)")
        elif not isinstance(name, str) or not name:
            problems.add(f"{where}.metadata.name", "is required")
        elif not isinstance(spec, dict):
            problems.add(f"{where}.spec", "is required and must be a mapping")
        elif kind == "SLI":
            slis[name] = (f"{where}.spec", spec)
        else:
            slos.append((where, obj))
    built = [slo for where, obj in slos if (slo := _slo(where, obj, slis, problems))]
    if problems.issues:
        raise ConfigError(problems.issues)
    return built


def _slo(
    where: str, obj: dict[str, Any], slis: dict[str, tuple[str, dict[str, Any]]], p: _Problems
) -> SloConfig | None:
    spec: dict[str, Any] = obj["spec"]
    before = len(p.issues)
    for key, why in (("alertPolicies", "otelgate alerts on multi-window burn rates itself"),
                     ("budgetAdjustments", "budget adjustments are not supported")):  # fmt: skip
        if spec.get(key):
            p.add(f"{where}.spec.{key}", f"not supported ({why})")
    method = spec.get("budgetingMethod", "Occurrences")
    if method != "Occurrences":
        p.add(f"{where}.spec.budgetingMethod", f"only Occurrences is supported (got {method!r})")
    window = _window(f"{where}.spec.timeWindow", spec.get("timeWindow"), p)
    objective = _objective(f"{where}.spec.objectives", spec.get("objectives"), p)
    indicator, ref = spec.get("indicator"), spec.get("indicatorRef")
    sli_path, sli_spec = f"{where}.spec.indicator.spec", None
    if (indicator is None) == (ref is None):
        p.add(f"{where}.spec", "give exactly one of indicator or indicatorRef")
    elif ref is not None:
        if ref not in slis:
            p.add(f"{where}.spec.indicatorRef", f"no kind: SLI named {ref!r} in this file")
        else:
            sli_path, sli_spec = slis[ref]
    elif not isinstance(indicator, dict) or not isinstance(indicator.get("spec"), dict):
        p.add(f"{where}.spec.indicator", "must be a mapping with metadata and spec")
    else:
        sli_spec = indicator["spec"]
    sli = _sli(sli_path, sli_spec, objective, p) if sli_spec is not None else None
    if len(p.issues) > before or sli is None or objective is None:
        return None
    data = {
        "name": obj["metadata"]["name"],
        "service": spec.get("service"),
        "description": spec.get("description") or "",
        "sli": sli,
        "objective": objective["target"],
        "window": window,
    }
    try:
        return SloConfig.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            first = str(error["loc"][0]) if error["loc"] else ""
            path = _FIELD_PATHS.get(first, "spec.indicator")
            p.add(f"{where}.{path}", str(error["msg"]))
        return None


def _window(path: str, value: Any, p: _Problems) -> str | None:
    if value is None:
        return "30d"
    if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], dict):
        p.add(path, "must be a list with one {duration, isRolling: true} entry")
        return None
    entry = value[0]
    if entry.get("isRolling") is not True or entry.get("calendar") is not None:
        p.add(f"{path}[0]", "only rolling windows are supported (isRolling: true, no calendar)")
        return None
    duration = str(entry.get("duration", ""))
    match = re.fullmatch(r"(\d+)([mhdw])", duration)
    if match is None:
        p.add(f"{path}[0].duration", f"unsupported duration {duration!r} (use m, h, d or w)")
        return None
    return f"{int(match[1]) * _UNIT_SECONDS[match[2]]}s"


def _objective(path: str, value: Any, p: _Problems) -> dict[str, Any] | None:
    if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], dict):
        p.add(path, "must be a list with exactly one objective")
        return None
    objective = dict(value[0])
    for key in ("timeSliceTarget", "timeSliceWindow", "indicator", "indicatorRef",
                "compositeWeight"):  # fmt: skip
        if key in objective:
            p.add(f"{path}[0].{key}", "not supported")
    if "targetPercent" in objective and "target" not in objective:
        percent = objective["targetPercent"]
        if isinstance(percent, int | float) and not isinstance(percent, bool):
            objective["target"] = percent / 100
    target = objective.get("target")
    if isinstance(target, bool) or not isinstance(target, int | float) or not 0 < target < 1:
        p.add(f"{path}[0].target", f"must be a ratio between 0 and 1 (got {target!r})")
        return None
    return objective


def _source(path: str, metric: Any, p: _Problems) -> dict[str, Any] | None:
    """The ``spec`` of a ``metricSource`` of type otelgate."""
    source = metric.get("metricSource") if isinstance(metric, dict) else None
    if not isinstance(source, dict):
        p.add(path, "must be a mapping with metricSource")
        return None
    kind = source.get("type")
    if not isinstance(kind, str) or kind.lower() != "otelgate":
        p.add(f"{path}.metricSource.type", f"only type otelgate is supported (got {kind!r})")
        return None
    spec = source.get("spec")
    if not isinstance(spec, dict):
        p.add(f"{path}.metricSource.spec", "is required and must be a mapping")
        return None
    known = {"spans", "spanName", "metric", "attributes", "prometheusName"}
    for key in spec:
        if key not in known:
            p.add(f"{path}.metricSource.spec.{key}", "unknown key")
    return spec


def _span_name(spec: dict[str, Any]) -> dict[str, Any]:
    return {"span_name": spec["spanName"]} if "spanName" in spec else {}


def _sli(
    path: str, spec: dict[str, Any], objective: dict[str, Any] | None, p: _Problems
) -> dict[str, Any] | None:
    ratio, threshold = spec.get("ratioMetric"), spec.get("thresholdMetric")
    if (ratio is None) == (threshold is None):
        p.add(path, "give exactly one of ratioMetric or thresholdMetric")
        return None
    if threshold is not None:
        source = _source(f"{path}.thresholdMetric", threshold, p)
        if source is None:
            return None
        if source.get("spans") != "duration":
            p.add(f"{path}.thresholdMetric.metricSource.spec.spans", "must be duration")
            return None
        op, value = (objective or {}).get("op"), (objective or {}).get("value")
        if objective is not None and (op != "lte" or value is None):
            p.add(f"{path}.thresholdMetric", "the objective needs op: lte and value (seconds)")
            return None
        return {"latency": {"threshold": value, **_span_name(source)}}
    if not isinstance(ratio, dict):
        p.add(f"{path}.ratioMetric", "must be a mapping")
        return None
    for key in ("bad", "raw"):
        if key in ratio:
            p.add(f"{path}.ratioMetric.{key}", "not supported (use good and total)")
    good = _source(f"{path}.ratioMetric.good", ratio.get("good"), p)
    total = _source(f"{path}.ratioMetric.total", ratio.get("total"), p)
    if good is None or total is None:
        return None
    if "spans" in good or "spans" in total:
        if good.get("spans") != "non_error" or total.get("spans") != "all":
            p.add(f"{path}.ratioMetric", "span ratios are good {spans: non_error} over "
                                         "total {spans: all}")  # fmt: skip
            return None
        if good.get("spanName") != total.get("spanName"):
            p.add(f"{path}.ratioMetric.good", "good and total must name the same spanName")
            return None
        return {"availability": _span_name(good)}
    if ratio.get("counter") is False:
        p.add(f"{path}.ratioMetric.counter", "must be true: good and total are counters")
        return None
    selectors = []
    for role, source in (("good", good), ("total", total)):
        if not isinstance(source.get("metric"), str):
            p.add(f"{path}.ratioMetric.{role}.metricSource.spec.metric", "is required")
            return None
        selector: dict[str, Any] = {"metric": source["metric"]}
        selector["attributes"] = source.get("attributes") or {}
        if "prometheusName" in source:
            selector["prometheus_name"] = source["prometheusName"]
        selectors.append(selector)
    return {"ratio": {"good": selectors[0], "total": selectors[1]}}


class OpenSloFile(StrictModel):
    """``openslo: FILE``: the SLOs of an OpenSLO v1 file (relative to the working directory)."""

    openslo: str = Field(min_length=1)
    _slos: list[SloConfig] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _load(self) -> OpenSloFile:
        try:
            self._slos = load_openslo(self.openslo)
        except ConfigError as exc:
            problems = "\n  ".join(map(str, exc.errors))
            raise ValueError(f"invalid OpenSLO file:\n  {problems}") from None
        return self

    @property
    def slos(self) -> list[SloConfig]:
        """The SLOs the file defines."""
        return list(self._slos)
