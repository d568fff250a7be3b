"""The ``ecs`` mapping mode's tables and document assembly, on plain Python values.

:mod:`exporters.elasticsearch.mapping` converts the OTLP values; this module renames
semantic-convention attributes to Elastic Common Schema fields and turns flat dotted fields
into the nested objects the Collector's ``ecs`` mode writes (it serialises with ``dedot``).

Rules, each with its source (URLs in :mod:`exporters.elasticsearch.mapping`):

- Resource attributes are renamed by :data:`RESOURCE_FIELDS` (the Collector's
  ``resourceAttrsConversionMap``; ``host.name`` is kept as well as ``host.hostname``), plus
  ``deployment.environment.name`` (semconv >= 1.27; Elasticsearch's own OTel mapping aliases it
  to ``service.environment``). ``telemetry.sdk.*`` / ``telemetry.distro.*`` become ``agent.name``
  (``<sdk name or "otlp">[/<language>[/<distro>]]``), ``agent.version`` and
  ``service.language.name``; ``os.type`` / ``os.name`` give ``host.os.type`` as the Collector does.
- The scope's name and version become ``otel.scope.name`` / ``otel.scope.version``, the
  semantic conventions' attributes for exporters to non-OTLP formats (the Collector drops
  them); scope attributes keep their names.
- Record attributes: :data:`RECORD_FIELDS` (``event.name`` -> ``event.action``,
  ``exception.*`` -> ``error.*``); every other attribute keeps its name at the top level.
- Map values are flattened into dotted keys, then all keys are nested at the dots.
- Collisions never lose a value silently: the fields the mapping sets itself (``@timestamp``,
  ``message``, ``log.level``, ``trace.id``...) win, a later source overrides an earlier one
  (record > scope > resource), and every value that loses goes to ``labels.<key with dots as
  _>`` as text (ECS ``labels`` are keywords). A value at ``a`` and an object at ``a.b`` become
  ``a.value`` and ``a.b``, as the Collector's ``Dedup`` renames them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

# OTel semantic-convention resource attribute -> ECS field; None: read below, not copied.
RESOURCE_FIELDS: dict[str, str | None] = {
    "service.instance.id": "service.node.name",
    "deployment.environment": "service.environment",
    "deployment.environment.name": "service.environment",
    "telemetry.sdk.name": None, "telemetry.sdk.language": None, "telemetry.sdk.version": None,
    "telemetry.distro.name": None, "telemetry.distro.version": None,
    "cloud.platform": "cloud.service.name",
    "container.image.tags": "container.image.tag",
    "host.name": "host.hostname",
    "host.arch": "host.architecture",
    "process.executable.path": "process.executable",
    "process.runtime.name": "service.runtime.name",
    "process.runtime.version": "service.runtime.version",
    "os.name": "host.os.name",
    "os.type": "host.os.platform",
    "os.description": "host.os.full",
    "os.version": "host.os.version",
    "k8s.deployment.name": "kubernetes.deployment.name",
    "k8s.namespace.name": "kubernetes.namespace",
    "k8s.node.name": "kubernetes.node.name",
    "k8s.pod.name": "kubernetes.pod.name",
    "k8s.pod.uid": "kubernetes.pod.uid",
    "k8s.job.name": "kubernetes.job.name",
    "k8s.cronjob.name": "kubernetes.cronjob.name",
    "k8s.statefulset.name": "kubernetes.statefulset.name",
    "k8s.replicaset.name": "kubernetes.replicaset.name",
    "k8s.daemonset.name": "kubernetes.daemonset.name",
    "k8s.container.name": "kubernetes.container.name",
    "k8s.cluster.name": "orchestrator.cluster.name",
}  # fmt: skip
PRESERVED = frozenset({"host.name"})  # copied under their own name too
RECORD_FIELDS = {
    "event.name": "event.action",
    "exception.message": "error.message",
    "exception.type": "error.type",
    # ECS names it error.stack_trace; the Collector writes error.stacktrace, which no ECS
    # template maps. exception.escaped is kept as it is: the Collector's
    # event.error.exception.handled inverts its meaning.
    "exception.stacktrace": "error.stack_trace",
}
# ECS host.os.type takes only these values (the Collector's encodeLogHostOsTypeECSMode).
_OS_TYPES = {"windows": "windows", "linux": "linux", "darwin": "macos", "aix": "unix",
             "hpux": "unix", "solaris": "unix"}  # fmt: skip
_OS_NAMES = {"Android": "android", "iOS": "ios"}
# First segments of the fields a record sets (see mapping.py): only keys starting with one
# of these can collide with them.
FIELD_ROOTS = frozenset({"@timestamp", "data_stream", "log", "message", "trace", "span", "event"})
MAX_SEGMENTS = 32  # object depth from one key's dots (orjson stops at 254 levels)
_MISSING: Any = object()

Pairs = list[tuple[str, Any]]


def flatten(key: str, value: Any, out: Pairs) -> None:
    """Append ``key -> value`` to ``out``, a non-empty map as one dotted key per leaf; an
    empty value (None) adds nothing, as in the Collector."""
    if type(value) is dict and value:
        for k, v in value.items():
            flatten(f"{key}.{k}", v, out)
    elif value is not None:
        out.append((key, value))


def resource_pairs(attributes: Mapping[str, Any]) -> Pairs:
    """The ECS fields of a resource, from its converted attributes (see the module doc)."""
    out: Pairs = []
    for key, value in attributes.items():
        target = RESOURCE_FIELDS.get(key, key)
        if target is not None:
            flatten(target, value, out)
        if key in PRESERVED:
            flatten(key, value, out)
    text = {k: v for k, v in attributes.items() if type(v) is str and v}
    language = text.get("telemetry.sdk.language", "")
    distro = text.get("telemetry.distro.name", "")
    agent = text.get("telemetry.sdk.name", "otlp")
    if distro:
        agent = f"{agent}/{language or 'unknown'}/{distro}"
    elif language:
        agent = f"{agent}/{language}"
    out.append(("agent.name", agent))
    version = text.get("telemetry.distro.version") or text.get("telemetry.sdk.version")
    if version:
        out.append(("agent.version", version))
    if language:
        out.append(("service.language.name", language))
    os_type = _OS_NAMES.get(text.get("os.name", "")) or _OS_TYPES.get(text.get("os.type", ""))
    if os_type:
        out.append(("host.os.type", os_type))
    return out


def scope_pairs(name: str, version: str, attributes: Mapping[str, Any]) -> Pairs:
    """The ECS fields of an instrumentation scope."""
    out: Pairs = []
    if name:
        out.append(("otel.scope.name", name))
    if version:
        out.append(("otel.scope.version", version))
    for key, value in attributes.items():
        flatten(key, value, out)
    return out


def record_pairs(attributes: Mapping[str, Any]) -> Pairs:
    """The ECS fields of a log record's converted attributes."""
    out: Pairs = []
    for key, value in attributes.items():
        flatten(RECORD_FIELDS.get(key, key), value, out)
    return out


@dataclass(frozen=True, slots=True)
class Template:
    """The fields a scope's records share (its resource's and its own), nested once."""

    tree: dict[str, Any]
    by_root: dict[str, Pairs]  # the flat fields under each top-level name
    lost: Pairs


def template(*sources: Iterable[tuple[str, Any]]) -> Template:
    """The shared fields of ``sources`` (increasing precedence)."""
    flat: dict[str, Any] = {}
    lost: Pairs = []
    _merge(flat, sources, {}, lost)
    tree = _nest(flat, lost)
    by_root: dict[str, Pairs] = {}
    for key, value in flat.items():
        by_root.setdefault(key.partition(".")[0], []).append((key, value))
    return Template(tree, by_root, lost)


def document(fields: dict[str, Any], record: Pairs, shared: Template) -> dict[str, Any]:
    """The nested document: ``fields`` (set by the mapping, they win), then the record's
    attributes, then the ``shared`` ones; every value that loses goes to ``labels``."""
    flat = dict(fields)
    lost = list(shared.lost)
    _merge(flat, (record,), fields, lost)
    root = _nest(flat, lost)
    for top, subtree in shared.tree.items():
        if top not in root:
            root[top] = subtree  # shared between documents: never changed after this
            continue
        for key, value in shared.by_root[top]:
            if _shadowed(key, fields):
                lost.append((key, value))
            else:
                _insert(root, key, value, lost, override=False)
    if lost:
        _add_labels(root, lost)
    return root


def _merge(
    flat: dict[str, Any],
    sources: Iterable[Iterable[tuple[str, Any]]],
    fields: Mapping[str, Any],
    lost: Pairs,
) -> None:
    for source in sources:
        for key, value in source:
            if key.partition(".")[0] in FIELD_ROOTS and _shadowed(key, fields):
                lost.append((key, value))
                continue
            old = flat.get(key, _MISSING)
            if old is not _MISSING and old != value:
                lost.append((key, old))
            flat[key] = value


def _shadowed(key: str, fields: Mapping[str, Any]) -> bool:
    """Whether ``key`` is a field the mapping sets, or lies inside one."""
    if key in fields:
        return True
    dot = key.find(".")
    while dot != -1:
        if key[:dot] in fields:
            return True
        dot = key.find(".", dot + 1)
    return False


def _nest(flat: Mapping[str, Any], lost: Pairs) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in flat.items():
        _insert(root, key, value, lost, override=True)
    return root


def _insert(root: dict[str, Any], key: str, value: Any, lost: Pairs, *, override: bool) -> None:
    """Put ``value`` at the path ``key``; a value already there wins unless ``override``."""
    *parents, last = key.split(".", MAX_SEGMENTS)
    node = root
    for part in parents:
        child = node.get(part, _MISSING)
        if child is _MISSING:
            child = node[part] = {}
        elif type(child) is not dict:
            child = node[part] = {"value": child}
        node = child
    old = node.get(last, _MISSING)
    if old is _MISSING:
        node[last] = {} if type(value) is dict else value  # (never share a dict: it may grow)
    elif type(old) is dict:
        if type(value) is not dict:  # (a dict here is an empty map: nothing to add)
            if "value" in old:
                lost.append((key, value))
            else:
                old["value"] = value
    elif not override:
        if old != value:
            lost.append((key, value))
    else:  # (flat keys are unique: this is a leaf renamed to <parent>.value)
        lost.append((key.rpartition(".")[0], old))
        node[last] = value


def _add_labels(root: dict[str, Any], lost: Pairs) -> None:
    labels = root.get("labels", _MISSING)
    if labels is _MISSING:
        labels = root["labels"] = {}
    elif type(labels) is dict:
        labels = root["labels"] = dict(labels)  # it may be shared (see document)
    else:
        labels = root["labels"] = {"value": labels}
    for key, value in lost:
        name = key.replace(".", "_")
        while name in labels:
            name += "_"
        labels[name] = value if type(value) is str else orjson.dumps(value).decode()
