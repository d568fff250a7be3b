"""OTel attributes -> Prometheus labels: names, values, scope labels, and the sanitising that
keeps a label set valid for every Prometheus consumer.

Following the OTel specification "Prometheus and OpenMetrics compatibility" (OTLP metric
points to Prometheus: "Metric Attributes" and "Instrumentation Scope"). A label set built
here never holds two labels of one name, an empty name or a ``__``-prefixed (reserved) name,
and never the ``le`` / ``quantile`` label the exposition adds to a histogram bucket or a
summary quantile: Prometheus remote write refuses such a series ("label name "le" is not
unique") and ``promtool check metrics`` and the OpenMetrics parser refuse such an exposition.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

Labels = tuple[tuple[str, str], ...]  # sorted by name, no empty values

_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")
_UNDERSCORES = re.compile(r"__+")
# Resource attributes that become job/instance instead of target_info labels.
IDENTIFYING = frozenset({"service.name", "service.namespace", "service.instance.id"})
SCOPE_PREFIX = "otel_scope_"
# The labels the translation itself sets from the scope; a scope attribute mapping to one of
# them is dropped (spec, "Instrumentation Scope": it MUST be dropped).
SCOPE_LABELS = frozenset({"otel_scope_name", "otel_scope_version", "otel_scope_schema_url"})
EXPORTED_PREFIX = "exported_"  # Prometheus' own prefix for a label that lost a collision


def collapse(text: str) -> str:
    """Runs of ``_`` collapsed to one."""
    return _UNDERSCORES.sub("_", text)


def label_name(key: str) -> str:
    """A valid Prometheus label name: invalid characters -> ``_``, runs collapsed, a leading
    digit gets ``key_`` and a leading ``_`` gets ``key`` (``__`` is reserved). Never empty and
    never ``__``-prefixed: an empty key becomes ``key_``, ``__name__`` becomes ``key_name_``."""
    name = collapse(_INVALID_LABEL_CHARS.sub("_", key))
    if not name:
        return "key_"
    if name[0].isdigit():
        return "key_" + name
    if name[0] == "_":
        return "key" + name
    return name


def attribute_value(value: AnyValue) -> str:
    """An attribute value as a label value (non-strings as in the OTel attribute spec)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind is None:
        return ""
    plain = _plain(value)
    return plain if isinstance(plain, str) else json.dumps(plain, separators=(",", ":"))


def _plain(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return _float_text(value.double_value)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind == "array_value":
        return [_json(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _json(kv.value) for kv in value.kvlist_value.values}
    return value.string_value if kind == "string_value" else ""


def _json(value: AnyValue) -> Any:
    """Nested values keep their JSON type (numbers stay numbers inside arrays)."""
    kind = value.WhichOneof("value")
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        number = value.double_value
        return number if math.isfinite(number) else _float_text(number)
    return _plain(value)


def _float_text(number: float) -> str:
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return repr(number)


def labels_from(attributes: Iterable[KeyValue], prefix: str = "") -> dict[str, str]:
    """Sanitised labels (named ``label_name(prefix + key)``); keys that collide are joined
    with ``;`` in original-key order. Empty values are left out (Prometheus treats them as
    absent)."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    for kv in attributes:
        text = attribute_value(kv.value)
        if text:
            grouped.setdefault(label_name(prefix + kv.key), []).append((kv.key, text))
    return {name: ";".join(v for _, v in sorted(pairs)) for name, pairs in grouped.items()}


def job_instance(resource_attributes: Iterable[KeyValue]) -> tuple[str, str]:
    """``job`` (``service.namespace/service.name`` or ``service.name``) and ``instance``
    (``service.instance.id``); empty when absent."""
    found = {kv.key: attribute_value(kv.value) for kv in resource_attributes
             if kv.key in IDENTIFYING}  # fmt: skip
    name, namespace = found.get("service.name", ""), found.get("service.namespace", "")
    job = f"{namespace}/{name}" if namespace and name else name
    return job, found.get("service.instance.id", "")


def scope_labels(
    name: str, version: str, schema_url: str, attributes: Iterable[KeyValue]
) -> tuple[dict[str, str], int]:
    """The instrumentation scope's labels, and how many attribute labels were dropped.

    The OTel specification, "Prometheus and OpenMetrics Compatibility" (OTLP Metric points
    to Prometheus > Instrumentation Scope, status Stable; opentelemetry-specification
    ``specification/compatibility/prometheus_and_openmetrics.md``, since v1.46.0, #4505):
    exporters MUST add the scope name, version and schema URL as ``otel_scope_name``,
    ``otel_scope_version`` and ``otel_scope_schema_url``, and every scope attribute as a
    label with the ``otel_scope_`` prefix, converted like a metric attribute after the
    prefix is added; one that then conflicts with those three MUST be dropped.
    """
    labels = labels_from(attributes, SCOPE_PREFIX)
    dropped = 0
    for reserved in SCOPE_LABELS & labels.keys():
        del labels[reserved]
        dropped += 1
    labels.update(
        otel_scope_name=name, otel_scope_version=version, otel_scope_schema_url=schema_url
    )
    return labels, dropped


def reserve(labels: dict[str, str], name: str, counts: Counter[str]) -> None:
    """Make room for label ``name``, which the exposition adds (``le``, ``quantile``).

    An attribute label of that name is renamed ``exported_<name>`` (Prometheus' convention
    for a scraped label that collides with a target label), or dropped when that name is
    taken too; counted in ``counts`` as ``<name>_renamed`` / ``<name>_dropped``.
    """
    value = labels.pop(name, None)
    if value is None:
        return
    exported = EXPORTED_PREFIX + name
    if exported in labels:
        counts[f"{name}_dropped"] += 1
    else:
        labels[exported] = value
        counts[f"{name}_renamed"] += 1


def freeze(labels: Mapping[str, str]) -> Labels:
    """A label set as sorted pairs, empty values left out."""
    return tuple(sorted((k, v) for k, v in labels.items() if v))
